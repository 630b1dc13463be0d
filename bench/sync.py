"""Sync throughput: registering objects already in a source, against the bare
listing speed of the same objects (``os.scandir`` walking with a stat per
file; boto3 ``list_objects_v2`` pages), with the peak RSS growth of the
syncing process, at a tenth of the objects and at all of them (flat memory
means the two are close).

    uv run python -m bench.run --only sync --rows 100000 --no-write
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from .harness import Result, RssSampler

BUCKET = "bench-sync"
FIRST_TARGET = 0.5
AGAIN_TARGET = 0.8
RSS_TARGET_MIB = 64


def write_tree(root: Path, count: int) -> None:
    for i in range(count):
        path = root / f"d{i % 100:02d}" / f"e{i // 100 % 10}" / f"scan-{i:07d}.txt"
        if i < 1000:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * (i % 500))


def scandir_walk(root: Path) -> tuple[int, float]:
    """Objects/s of a bare recursive walk with a stat per file: the best of
    three walks (one walk's rate varied by half from run to run here)."""
    return max((_walk_once(root) for _ in range(3)), key=lambda walk: walk[1])


def _walk_once(root: Path) -> tuple[int, float]:
    started = time.perf_counter()
    count = 0
    pending = [str(root)]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    entry.stat()
                    count += 1
    return count, count / (time.perf_counter() - started)


def boto3_listing(client, prefix: str) -> tuple[int, float]:
    """Objects/s of listing every page of the prefix with boto3."""
    started = time.perf_counter()
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=prefix, PaginationConfig={"PageSize": 1000}
    ):
        count += len(page.get("Contents", []))
    return count, count / (time.perf_counter() - started)


async def run_sync(config: Path, internal: Path, slug: str) -> tuple[dict, float]:
    """One sync in this process: (summary, peak RSS growth in MiB)."""
    from datasette_files.sync.cli import open_sources
    from datasette_files.sync.engine import SyncEngine, SyncOptions
    from datasette_files.sync.owners import owner_id

    datasette, store, sources = await open_sources(str(config), str(internal), [slug])
    try:
        gc.collect()
        engine = SyncEngine(
            store, slug, sources[0].storage, SyncOptions(), owner=owner_id("bench")
        )
        with RssSampler(os.getpid()) as rss:
            progress = await engine.run()
        return progress.as_json(), rss.growth_mib
    finally:
        await sources[0].storage.close()
        datasette.get_internal_database().close()


def write_config(path: Path, slug: str, source: dict) -> Path:
    path.write_text(
        yaml.safe_dump({"plugins": {"datasette-files": {"sources": {slug: source}}}})
    )
    return path


def measure(label, listing_rate, config, internal, slug, count) -> list[Result]:
    first, first_rss = asyncio.run(run_sync(config, internal, slug))
    assert first["registered"] == count, first
    again, again_rss = asyncio.run(run_sync(config, internal, slug))
    assert again["registered"] == 0 and again["skipped"] == count, again
    first_rate = first["seen"] / first["elapsed"]
    again_rate = again["seen"] / again["elapsed"]
    return [
        Result(
            f"sync {label}: {count:,} new objects",
            first_rate,
            "objects/s",
            listing_rate,
            f"≥ {FIRST_TARGET}× listing",
            first_rate / listing_rate >= FIRST_TARGET,
        ),
        Result(
            f"sync {label}: {count:,} objects, no change",
            again_rate,
            "objects/s",
            listing_rate,
            f"≥ {AGAIN_TARGET}× listing",
            again_rate / listing_rate >= AGAIN_TARGET,
        ),
        Result(
            f"sync {label}: {count:,} objects, peak RSS growth",
            max(first_rss, again_rss),
            "MiB",
            target=f"≤ {RSS_TARGET_MIB} MiB",
            passed=max(first_rss, again_rss) <= RSS_TARGET_MIB,
        ),
    ]


def bench_filesystem(work: Path, count: int) -> list[Result]:
    root = work / f"sync-files-{count}"
    if not root.exists():
        write_tree(root, count)
    listed, listing_rate = scandir_walk(root)
    assert listed == count
    internal = work / f"sync-files-{count}.db"
    internal.unlink(missing_ok=True)
    config = write_config(
        work / "sync-files.yaml",
        "files",
        {"storage": "filesystem", "config": {"root": str(root)}},
    )
    return measure("filesystem", listing_rate, config, internal, "files", count)


def bench_seaweedfs(work: Path, seaweed, count: int) -> list[Result]:
    prefix = f"sync-{count}/"
    client = seaweed.client()
    with ThreadPoolExecutor(32) as pool:
        list(
            pool.map(
                lambda i: client.put_object(
                    Bucket=BUCKET,
                    Key=f"{prefix}d{i % 100:02d}/scan-{i:07d}.txt",
                    Body=b"x" * (i % 500),
                ),
                range(count),
            )
        )
    # Outside the prefix: listed by neither side.
    client.put_object(Bucket=BUCKET, Key="elsewhere/other.txt", Body=b"other")
    listed, listing_rate = boto3_listing(seaweed.client(), prefix)
    assert listed == count
    internal = work / f"sync-s3-{count}.db"
    internal.unlink(missing_ok=True)
    source = {
        "bucket": BUCKET,
        "prefix": prefix,
        "region": seaweed.region,
        "endpoint_url": seaweed.endpoint_url,
        "access_key_id": seaweed.access_key_id,
        "secret_access_key": seaweed.secret_access_key,
    }
    config = write_config(
        work / "sync-s3.yaml", "bucket", {"storage": "s3", "config": source}
    )
    return measure("S3 (SeaweedFS)", listing_rate, config, internal, "bucket", count)


def bench_sync(work: Path, rows: int = 100_000, storage: str = "both") -> list[Result]:
    """``storage``: ``fs``, ``s3`` or ``both`` (``fs`` needs no SeaweedFS)."""
    results = []
    if storage in ("fs", "both"):
        for count in (rows // 10, rows):
            results += bench_filesystem(work, count)
    if storage in ("s3", "both"):
        results += bench_s3(work, rows)
    return results


def bench_s3(work: Path, rows: int) -> list[Result]:
    from conftest import SeaweedFS  # the same launcher the tests use

    results = []
    seaweed_dir = work / "seaweedfs-sync"
    seaweed_dir.mkdir(exist_ok=True)
    seaweed = SeaweedFS(seaweed_dir)
    seaweed.start()
    try:
        seaweed.make_bucket(BUCKET)
        for count in (rows // 10, rows):
            results += bench_seaweedfs(work, seaweed, count)
    finally:
        seaweed.stop()
    return results
