"""The per-object shortcuts of a sync give exactly what the slow, obvious
code gives: ids that are ULIDs, types as ``mimetypes`` guesses them, times
as ``datetime`` formats them (a stamp formatted differently would make a
re-run see every file as changed)."""

from __future__ import annotations

import itertools
import json
import mimetypes
import random
import sqlite3
import time
from datetime import datetime, timezone

import pytest
from datasette_files.base import FileMetadata
from datasette_files.filenames import guess_content_type
from datasette_files.filesystem import utc_isoformat
from datasette_files.sync.pages import ExistingFile, compare
from datasette_files.sync.rows import has_changed, new_file_ids, registry_time
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


def _registry(rows):
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE files_files (id TEXT PRIMARY KEY, source_slug TEXT, "
        "path TEXT, size INTEGER, metadata TEXT, UNIQUE (source_slug, path))"
    )
    conn.executemany(
        "INSERT INTO files_files VALUES (?, 'src', ?, ?, ?)",
        [
            (f"df-{i}", path, size, metadata)
            for i, (path, size, metadata) in enumerate(rows)
        ],
    )
    return conn


RECORDED = [
    None,
    {"modified": "2024-01-01T00:00:00+00:00"},
    {"modified": "2024-01-02T00:00:00+00:00"},
    {"modified": "2024-01-01T00:00:00+00:00", "etag": "abc"},
    {"modified": "2024-01-02T00:00:00+00:00", "etag": "abc"},
    {"modified": "2024-01-01T00:00:00+00:00", "etag": "xyz"},
    {"modified": "2024-01-01T00:00:00+00:00", "etag": ""},
    {"modified": None},
    {"etag": 12},
    "not an object",
]
LISTED = [
    (size, modified, etag)
    for size in (5, 6, None)
    for modified in ("2024-01-01T00:00:00+00:00", None)
    for etag in (None, "abc", "", "xyz")
]


def test_compare_leaves_out_only_what_has_changed_calls_unchanged():
    """SQLite keeps back the files it finds unchanged; each must be one
    that ``has_changed`` (what Python decides for the rest) calls unchanged,
    and new and missing files are all reported."""
    cases = list(itertools.product(RECORDED, (5, None), LISTED))
    rows = [
        (
            f"p{i:04d}",
            size,
            "{}" if stamp is None else json.dumps({"other": 1, "object": stamp}),
        )
        for i, (stamp, size, _) in enumerate(cases)
    ]
    rows.append(("p9999-gone", 1, "{}"))
    conn = _registry(rows)
    listed = [
        FileMetadata(
            path=f"p{i:04d}",
            filename="x",
            size=size,
            created_at=modified,
            metadata={} if etag is None else {"etag": etag},
        )
        for i, (_, _, (size, modified, etag)) in enumerate(cases)
    ]
    listed.append(FileMetadata(path="p9999-new", filename="x", size=1))
    to_check, missing = compare(conn, "src", listed, ("", None, "p9999-new"))
    checked = {f.path: existing for f, existing in to_check}
    assert checked.pop("p9999-new") is None
    assert [m.path for m in missing] == ["p9999-gone"]
    left_out = 0
    for f, (path, size, metadata) in zip(listed[:-1], rows[:-1], strict=True):
        recorded = ExistingFile(f"id-{path}", path, size, metadata)
        recorded.stamped = isinstance(json.loads(metadata).get("object"), dict)
        if recorded.stamped:
            stamp = json.loads(metadata)["object"]
            recorded.modified, recorded.etag = stamp.get("modified"), stamp.get("etag")
        if path in checked:
            existing = checked[path]
            assert existing is not None and existing.metadata == json.loads(metadata)
            assert has_changed(existing, f) == has_changed(recorded, f)
        else:
            left_out += 1
            assert has_changed(recorded, f) is False, (metadata, f)
    assert left_out > 20  # the shortcut is taken
