"""Latency of ordinary requests while one large proxied upload streams in.

Small requests (a file's JSON, a small file's download, the source listing)
go one after another, 10 ms apart, for as long as the upload runs; the
figure is their p95 (SPEC section 9 and issue 7: under 100 ms).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx

from .filesystem import datasette_args, upload_raw, wait_for_hash
from .harness import (
    Result,
    free_port,
    make_file,
    median,
    percentile,
    serve,
    size_label,
)


def probe_while(upload: threading.Thread, base: str, files: list[dict]) -> list[float]:
    """Milliseconds per probe, cycling through three kinds, until ``upload``
    finishes."""
    paths = [f"/-/files/{file['id']}.json" for file in files]
    paths += [file["download_url"] for file in files]
    paths.append("/-/files/source/bench.json")
    latencies = []
    # Idle connections are dropped before uvicorn's 5 s keep-alive close.
    limits = httpx.Limits(keepalive_expiry=2)
    with httpx.Client(base_url=base, timeout=60, limits=limits) as client:
        while upload.is_alive():
            path = paths[len(latencies) % len(paths)]
            began = time.perf_counter()
            response = client.get(path)
            latencies.append((time.perf_counter() - began) * 1000)
            response.raise_for_status()
            time.sleep(0.01)
    return latencies


def bench_latency(work: Path, big: Path, repeats: int = 3) -> list[Result]:
    """p95 of requests made during each of ``repeats`` uploads of ``big``."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    internal = work / "latency-internal.db"
    internal.unlink(missing_ok=True)
    runs: list[list[float]] = []
    with serve(datasette_args(port, work, internal), base + "/-/files/sources.json"):
        small = [
            upload_raw(base, "bench", make_file(work / f"small-{i}.bin", 2000))[1]
            for i in range(5)
        ]
        for _ in range(repeats):
            # curl, in its own process, sends the upload (as in bench_transfers).
            uploaded: list[dict] = []
            upload = threading.Thread(target=upload_into, args=(uploaded, base, big))
            upload.start()
            runs.append(probe_while(upload, base, small))
            upload.join()
            assert uploaded, "the large upload failed"
            wait_for_hash(base, uploaded[0])
            os.sync()
    p95s = [percentile(run, 95) for run in runs]
    everything = [ms for run in runs for ms in run]
    label = size_label(big.stat().st_size)
    return [
        Result(
            f"request latency during a {label} upload, p95",
            median(p95s),
            "ms",
            target="< 100 ms",
            passed=median(p95s) < 100,
            notes=(
                f"median of {repeats} uploads (p95s {min(p95s):.1f}–{max(p95s):.1f} ms); "
                f"{len(everything)} requests, p50 {median(everything):.1f} ms, "
                f"max {max(everything):.1f} ms"
            ),
        )
    ]


def upload_into(uploaded: list[dict], base: str, big: Path) -> None:
    """``upload_raw`` for a thread: the file object is appended."""
    uploaded.append(upload_raw(base, "bench", big)[1])
