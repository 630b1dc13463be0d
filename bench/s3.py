"""S3 source on a real SeaweedFS: proxied vs aioboto3, direct uploads, downloads."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aioboto3
import httpx
from testkit import CountingRelay

from .filesystem import prepare, upload_raw
from .harness import (
    BIN,
    MIB,
    Result,
    RssSampler,
    curl,
    free_port,
    median,
    percentile,
    serve,
)

BUCKET = "bench"


def s3_datasette_args(port: int, work: Path, seaweed) -> list[str]:
    config = {
        "bucket": BUCKET,
        "prefix": "bench",
        "endpoint_url": seaweed.endpoint_url,
        "access_key_id": seaweed.access_key_id,
        "secret_access_key": seaweed.secret_access_key,
        "max_file_size": str(8 * 1024 * MIB),
    }
    args = [
        str(BIN / "datasette"),
        "serve",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--internal",
        str(work / "s3-internal.db"),
        "-s",
        "plugins.datasette-files.sources.s3.storage",
        "s3",
        "-s",
        "permissions.files-browse",
        "true",
        "-s",
        "permissions.files-upload",
        "true",
    ]
    for key, value in config.items():
        args += ["-s", f"plugins.datasette-files.sources.s3.config.{key}", value]
    return args


async def aioboto3_upload(seaweed, path: Path, key: str) -> float:
    session = aioboto3.Session()
    async with session.client(
        "s3",
        endpoint_url=seaweed.endpoint_url,
        aws_access_key_id=seaweed.access_key_id,
        aws_secret_access_key=seaweed.secret_access_key,
        region_name="us-east-1",
    ) as client:
        began = time.perf_counter()
        await client.upload_file(str(path), BUCKET, key)
        return time.perf_counter() - began


def direct_upload(url: str, path: Path) -> dict:
    """Follow prepare's instructions the way the browser component does."""
    size = path.stat().st_size
    prepared = prepare(url, "s3", size)
    upload = prepared["upload"]
    parts = None
    with httpx.Client(timeout=600) as client:
        if upload["mode"] == "multipart":
            parts = []
            with open(path, "rb") as fp:
                for number in range(1, upload["part_count"] + 1):
                    urls = client.post(
                        url + upload["parts_url"],
                        json={
                            "upload_token": prepared["upload_token"],
                            "part_numbers": [number],
                        },
                    ).json()["urls"]
                    body = fp.read(upload["part_size"])
                    response = client.put(urls[str(number)], content=body)
                    response.raise_for_status()
                    parts.append(
                        {"PartNumber": number, "ETag": response.headers["etag"]}
                    )
        else:
            with open(path, "rb") as fp:
                response = client.post(
                    upload["url"], data=upload["fields"], files={"file": fp}
                )
                response.raise_for_status()
        response = client.post(
            url + prepared["complete_url"],
            json={"upload_token": prepared["upload_token"], "parts": parts},
        )
        response.raise_for_status()
        return response.json()["file"]


def bench_s3(work: Path, big: Path, repeats: int = 3) -> list[Result]:
    from conftest import SeaweedFS  # the same launcher the tests use

    size = big.stat().st_size
    seaweed_dir = work / "seaweedfs"
    seaweed_dir.mkdir(exist_ok=True)
    seaweed = SeaweedFS(seaweed_dir)
    seaweed.start()
    try:
        seaweed.make_bucket(BUCKET)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        (work / "s3-internal.db").unlink(missing_ok=True)
        base_times, proxy_speeds, proxy_rss = [], [], []
        with serve(
            s3_datasette_args(port, work, seaweed), url + "/-/files/sources.json"
        ) as ds:
            for i in range(repeats):
                base_times.append(
                    asyncio.run(aioboto3_upload(seaweed, big, f"baseline-{i}.bin"))
                )
                with RssSampler(ds.pid) as rss:
                    timing, file = upload_raw(url, "s3", big)
                proxy_speeds.append(timing["up"] / MIB)
                proxy_rss.append(rss.growth_mib)
            # Everything below goes through a counting relay: bytes that
            # reach Datasette are exactly what the relay forwards.
            relay = CountingRelay(port)
            relayed = f"http://127.0.0.1:{relay.port}"
            direct_file = direct_upload(relayed, big)
            upload_bytes = relay.to_server
            redirects = []
            with httpx.Client() as client:
                for _ in range(50):
                    began = time.perf_counter()
                    response = client.get(url + direct_file["download_url"])
                    redirects.append((time.perf_counter() - began) * 1000)
                    assert response.status_code == 302, response.text
            sent_before = relay.from_server
            down = curl(["-L", relayed + direct_file["download_url"]])
            download_bytes = relay.from_server - sent_before
            relay.close()
    finally:
        seaweed.stop()
    base_speed = median([size / t / MIB for t in base_times])
    proxy_speed = median(proxy_speeds)
    return [
        Result(
            f"S3 proxied upload ({size // MIB} MiB)",
            proxy_speed,
            "MiB/s",
            baseline=base_speed,
            target="≥ 0.8× aioboto3 straight to SeaweedFS",
            passed=proxy_speed >= 0.8 * base_speed,
            notes=f"median of {repeats}",
        ),
        Result(
            "S3 proxied upload: peak RSS growth",
            max(proxy_rss),
            "MiB",
            target="≤ 64 MiB",
            passed=max(proxy_rss) <= 64,
        ),
        Result(
            f"S3 direct upload ({size // MIB} MiB): bytes sent to Datasette",
            upload_bytes,
            "bytes",
            target="no file content (API JSON only)",
            passed=upload_bytes < 256 * 1024,
        ),
        Result(
            "S3 download redirect latency p50",
            median(redirects),
            "ms",
            notes=f"p95 {percentile(redirects, 95):.2f} ms",
        ),
        Result(
            f"S3 download ({size // MIB} MiB) via redirect: bytes sent by Datasette",
            download_bytes,
            "bytes",
            target="no file content (redirect only)",
            passed=download_bytes < 64 * 1024,
            notes=f"{down['down'] / MIB:,.0f} MiB/s end to end",
        ),
    ]
