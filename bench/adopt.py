"""Adopting a datasette-files 0.1a3 registry of 100k files at startup.

    uv run python -m bench.run --only adopt --no-write

A 0.1a3 registry (``datasette_files_sources``, ``datasette_files``,
``datasette_files_thumbnails``) is written into a fresh internal database;
the first ``datasette serve`` on it adopts every row. Measured as the time
until ``/-/files/sources.json`` answers, beside the same startup with an empty
registry and the second startup of the adopted one (nothing new to adopt).
The adoption's own transaction is also timed in-process on a copy.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

from testkit import REGISTRY_0_1A3

from .filesystem import startup_seconds
from .harness import Result, median

OLD_SCHEMA = (
    REGISTRY_0_1A3
    + """
INSERT INTO datasette_files_sources (id, slug, storage_type, config)
VALUES (1, 'bench', 'filesystem', '{}'), (2, 'gone', 'filesystem', '{}');
"""
)
THUMBNAILS = 1_000


def old_registry(path: Path, rows: int) -> None:
    """A 0.1a3 registry: 1% of files in an unconfigured source, every other
    one with search_text, the first 1,000 with a 2 KiB thumbnail."""
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    with conn:
        conn.executemany(
            "INSERT INTO datasette_files VALUES "
            "(?, ?, ?, ?, 'text/plain', ?, 10, NULL, NULL, 'alice', ?, '{}', ?)",
            (
                (
                    f"df-{i:026d}",
                    2 if i % 100 == 0 else 1,
                    f"{i:026d}/file-{i}.txt",
                    f"file {i} report.txt",
                    "sha256:" + f"{i:064x}",
                    f"2025-01-01T00:00:{i % 60:02d}.{i:06d}Z",
                    f"note {i}" if i % 2 else None,
                )
                for i in range(rows)
            ),
        )
        conn.executemany(
            "INSERT INTO datasette_files_thumbnails VALUES "
            "(?, ?, 'image/png', 32, 32, 'pillow', '2025-01-01 00:00:00')",
            ((f"df-{i:026d}", bytes(2048)) for i in range(min(rows, THUMBNAILS))),
        )
    conn.close()


def adoption_in_process(template: Path, work: Path) -> float:
    """The adoption transaction alone, on a migrated copy of the registry."""
    from datasette_files.adopt import adopt
    from datasette_files.registry import MIGRATIONS

    copy = work / "adopt-inprocess.db"
    shutil.copy(template, copy)
    conn = sqlite3.connect(copy, isolation_level=None)
    for _name, sql in MIGRATIONS:
        conn.executescript(sql)
    conn.execute("BEGIN IMMEDIATE")
    began = time.perf_counter()
    report = adopt(conn)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - began
    conn.close()
    assert report is not None and report.adopted > 0, report
    return seconds


def bench_adopt(work: Path, rows: int = 100_000, runs: int = 3) -> list[Result]:
    template = work / "adopt-template.db"
    old_registry(template, rows)
    empty = work / "adopt-empty.db"
    empty.unlink(missing_ok=True)
    startup_seconds(work, empty, runs=1)  # creates and migrates the registry
    baseline = startup_seconds(work, empty, runs=runs)
    internal = work / "adopt.db"
    first = []
    for _ in range(runs):
        shutil.copy(template, internal)
        first.append(startup_seconds(work, internal, runs=1))
    conn = sqlite3.connect(internal)
    adopted = conn.execute("SELECT count(*) FROM files_files").fetchone()[0]
    thumbnails = conn.execute("SELECT count(*) FROM files_thumbnails").fetchone()[0]
    conn.close()
    assert (adopted, thumbnails) == (rows, min(rows, THUMBNAILS)), (
        adopted,
        thumbnails,
    )
    again = startup_seconds(work, internal, runs=runs)
    in_process = adoption_in_process(template, work)
    return [
        Result(
            f"first startup adopting a 0.1a3 registry of {rows:,} files",
            median(first) * 1000,
            "ms",
            baseline=baseline * 1000,
            notes=f"median of {runs}; baseline: startup with an empty registry; "
            f"{THUMBNAILS:,} thumbnails adopted too",
        ),
        Result(
            "the adoption transaction alone (in-process)",
            in_process * 1000,
            "ms",
        ),
        Result(
            f"next startup, {rows:,} files already adopted",
            again * 1000,
            "ms",
            baseline=baseline * 1000,
            notes=f"median of {runs}; nothing new to adopt",
        ),
    ]
