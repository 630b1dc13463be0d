"""Search latency at 100k files, over HTTP against a real Datasette."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from .filesystem import datasette_args, fill_registry, startup_seconds
from .harness import Result, free_port, median, percentile, serve

QUERIES = ["report", "file 4242", "rep", '"report.txt"', "99999", "nomatchatall"]


def bench_search(work: Path, rows: int = 100_000, rounds: int = 30) -> list[Result]:
    internal = work / "search.db"
    internal.unlink(missing_ok=True)
    startup_seconds(work, internal, runs=1)  # creates and migrates the registry
    fill_registry(internal, rows)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    latencies: list[float] = []
    with serve(datasette_args(port, work, internal), url + "/-/files/sources.json"):
        with httpx.Client(base_url=url) as client:
            for _ in range(rounds):
                for q in QUERIES:
                    began = time.perf_counter()
                    response = client.get("/-/files/search.json", params={"q": q})
                    latencies.append((time.perf_counter() - began) * 1000)
                    assert response.status_code == 200, response.text
    p50 = median(latencies)
    return [
        Result(
            f"search at {rows:,} files, p50",
            p50,
            "ms",
            target="≤ 20 ms",
            passed=p50 <= 20,
            notes=f"p95 {percentile(latencies, 95):.2f} ms; {len(latencies)} requests over {len(QUERIES)} queries, HTTP round trip included",
        )
    ]
