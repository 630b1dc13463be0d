"""CSV import: a generated CSV (100 MiB by default) imported as a table.

Datasette: the file is uploaded to a filesystem source, then imported with
``POST /-/files/{id}/-/import.json`` while the server's RSS is sampled; the
job's JSON is polled until it is done. Baseline: the same file imported by a
plain Python process (``csv.reader`` + ``sqlite3.executemany`` in batches of
1,000 rows, the same column types), with no server, storage or progress.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .filesystem import upload_raw
from .harness import BIN, MIB, Result, RssSampler, free_port, serve

COLUMNS = "id,amount,ratio,name,category,created"
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]

BASELINE_SCRIPT = r"""
import csv, sqlite3, sys, time
path, db_path = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(db_path)
conn.execute("CREATE TABLE t (id INTEGER, amount INTEGER, ratio REAL, name TEXT, "
             "category TEXT, created TEXT)")
began = time.perf_counter()
rows = 0
with open(path, newline="", encoding="utf-8") as fp:
    reader = csv.reader(fp)
    next(reader)
    batch = []
    for record in reader:
        batch.append(record)
        if len(batch) == 1000:
            with conn:
                conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", batch)
            rows += len(batch)
            batch = []
    with conn:
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", batch)
    rows += len(batch)
print(rows, time.perf_counter() - began)
"""


def make_csv(path: Path, size: int) -> int:
    """A CSV of about ``size`` bytes, written once and reused; returns its rows."""
    marker = path.with_suffix(".rows")
    if path.exists() and marker.exists() and path.stat().st_size >= size:
        return int(marker.read_text())
    rng = random.Random(1)
    rows = 0
    with open(path, "w", newline="") as fp:
        fp.write(COLUMNS + "\n")
        written = 0
        while written < size:
            lines = []
            for _ in range(1000):
                rows += 1
                name = " ".join(rng.choices(WORDS, k=3))
                if rows % 7 == 0:
                    name = f'"{name}, with a comma"'
                lines.append(
                    f"{rows},{rng.randrange(-(10**6), 10**6)},"
                    f"{rng.random():.6f},{name},{rng.choice(WORDS)},"
                    f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}\n"
                )
            block = "".join(lines)
            fp.write(block)
            written += len(block)
    marker.write_text(str(rows))
    return rows


def datasette_args(port: int, work: Path) -> list[str]:
    grants = ("files-browse", "files-upload", "create-table", "insert-row")
    args = [
        str(BIN / "datasette"),
        "serve",
        str(work / "csv-data.db"),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--internal",
        str(work / "csv-internal.db"),
        "-s",
        "plugins.datasette-files.sources.bench.storage",
        "filesystem",
        "-s",
        "plugins.datasette-files.sources.bench.config.root",
        str(work / "csv-uploads"),
        "-s",
        "plugins.datasette-files.sources.bench.config.max_file_size",
        str(8 * 1024 * MIB),
    ]
    for action in grants:
        args += ["-s", f"permissions.{action}", "true"]
    return args


def upload(base: str, path: Path) -> dict:
    return upload_raw(base, "bench", path, filename=path.name, content_type="text/csv")[
        1
    ]


def import_through_datasette(base: str, pid: int, file_id: str, table: str):
    with httpx.Client(base_url=base, timeout=120) as client, RssSampler(pid) as rss:
        began = time.perf_counter()
        response = client.post(
            f"/-/files/{file_id}/-/import.json",
            json={"database": "csv-data", "table": table},
        )
        assert response.status_code == 202, response.text
        job = response.json()["job"]
        while not job["finished"]:
            time.sleep(0.1)
            job = client.get(job["json_url"]).json()["job"]
        seconds = time.perf_counter() - began
    assert job["status"] == "done", job
    return job, seconds, rss.growth_mib


def baseline_import(path: Path, work: Path) -> tuple[int, float]:
    db_path = work / "csv-baseline.db"
    db_path.unlink(missing_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", BASELINE_SCRIPT, str(path), str(db_path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    db_path.unlink(missing_ok=True)
    return int(out[0]), float(out[1])


def bench_csv_import(work: Path, size: int, repeats: int = 3) -> list[Result]:
    """Alternate baseline and Datasette runs; report medians (RSS: worst)."""
    path = work / f"import-{size // MIB}mib.csv"
    rows = make_csv(path, size)
    for name in ("csv-data.db", "csv-internal.db"):
        (work / name).unlink(missing_ok=True)
    sqlite3.connect(work / "csv-data.db").close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ours, theirs, growth = [], [], []
    with serve(datasette_args(port, work), url + "/-/files/sources.json") as ds:
        file_id = upload(url, path)["id"]
        for run in range(repeats):
            baseline_rows, baseline_seconds = baseline_import(path, work)
            assert baseline_rows == rows, (baseline_rows, rows)
            theirs.append(rows / baseline_seconds)
            job, seconds, rss = import_through_datasette(
                url, ds.pid, file_id, f"run_{run}"
            )
            assert job["rows_imported"] == rows, job
            ours.append(rows / seconds)
            growth.append(rss)
    ours.sort()
    theirs.sort()
    mib = path.stat().st_size / MIB
    rate, base_rate = ours[len(ours) // 2], theirs[len(theirs) // 2]
    return [
        Result(
            f"CSV import, {mib:.0f} MiB / {rows:,} rows: rows per second",
            rate,
            "rows/s",
            baseline=base_rate,
            target="≥ 0.5× plain csv + sqlite3",
            passed=rate >= 0.5 * base_rate,
            notes=f"{rate * path.stat().st_size / rows / MIB:.1f} MiB/s",
        ),
        Result(
            f"CSV import, {mib:.0f} MiB: Datasette peak RSS growth",
            max(growth),
            "MiB",
            target="≤ 64 MiB",
            passed=max(growth) <= 64,
        ),
    ]
