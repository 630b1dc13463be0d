"""The per-object shortcuts of a sync give exactly what the slow, obvious
code gives: ids that are ULIDs, types as ``mimetypes`` guesses them, times
as ``datetime`` formats them (a stamp formatted differently would make a
re-run see every file as changed)."""

from __future__ import annotations

import itertools
import mimetypes
import random
import time
from datetime import datetime, timezone

import pytest
from datasette_files.filenames import guess_content_type
from datasette_files.filesystem import utc_isoformat
from datasette_files.sync.rows import new_file_ids, registry_time
from ulid import ULID


def test_new_file_ids_are_unique_lowercase_ulids_of_now():
    before = time.time()
    ids = new_file_ids(20_000)
    after = time.time()
    assert len(set(ids)) == len(ids) == 20_000
    for file_id in ids[:500]:
        assert file_id.startswith("df-") and file_id == file_id.lower()
        ulid = ULID.from_str(file_id[3:].upper())
        assert int(before * 1000) <= ulid.milliseconds <= int(after * 1000) + 1
    # 80 random bits each: every digit of the random part takes all values.
    for position in range(13, 29):
        assert len({file_id[position] for file_id in ids}) == 32
    assert new_file_ids(0) == []


NAMES = [
    "a.txt", "README", ".bashrc", "..txt", ".txt", "a.tar.gz", "a.tgz",
    "..tar.gz", "a..tar.gz", "x.y/z", "dir.d/f.PDF", "a.b.c", "a.", "a:b.txt",
    "data:text/plain,hi", "Foo.JPG", "a.svgz", "a.json.gz", "d/.hidden.png",
    "weird...", "a.b.c.d.e.html", "ü.mp4", "a.tar.xz", "a.Z",
]  # fmt: skip
EXTENSIONS = ["", ".txt", ".gz", ".tar", ".tgz", ".png", ".", ".."]
NAMES += [
    folder + stem + first + second
    for folder, stem, first, second in itertools.product(
        ["", "d.x/"], ["a", "", ".", "a.", ".a"], EXTENSIONS, EXTENSIONS
    )
]


@pytest.mark.parametrize("name", NAMES)
def test_guess_content_type_is_mimetypes_guess(name):
    for _ in range(2):  # uncached, then cached
        assert guess_content_type(name) == mimetypes.guess_type(name)[0]


def test_utc_isoformat_is_datetime_isoformat():
    rng = random.Random(13)
    stamps = [0.0, -1.5, -1e-7, 0.9999995, 0.99999949, 1764583200.9999996]
    stamps += [rng.uniform(-2e9, 4e9) for _ in range(20_000)]
    # Microseconds that round into the next second, or only just not.
    stamps += [
        rng.randint(0, 2**33) + rng.choice([0.9999995, 0.99999949, 5e-7, 4.9e-7])
        for _ in range(20_000)
    ]
    for stamp in stamps:
        expected = datetime.fromtimestamp(stamp, timezone.utc).isoformat()
        assert utc_isoformat(stamp) == expected, stamp


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-01T10:00:00+00:00",
        "2026-12-01T10:00:00.123456+00:00",
        "2026-12-01T10:00:00.000001Z",
        "2026-12-01T10:00:00Z",
        "2026-12-01T10:00:00.123+00:00",
        "2026-12-01T12:00:00.5+02:00",
        "2026-12-01T10:00:00",
    ],
)
def test_registry_time_is_the_parsed_time_in_utc(value):
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    expected = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert registry_time(value) == expected
