"""Sized thumbnail variants: a cached variant against a plain download, and
the time to make each default size from a 12-megapixel JPEG.

Both over HTTP against one ``datasette serve``. The cached figure is the p50
of ``GET /thumbnail?w=200`` once the variant exists; its baseline the p50 of
downloading a file of the same byte count from the same server (goal: within
1.5x). Generation is the first ``GET /thumbnail?w=SIZE`` of a freshly
uploaded 4000 x 3000 JPEG (so it includes the sandboxed child process), the
median over ``repeats`` uploads.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx

from .filesystem import datasette_args, upload_raw, wait_for_hash
from .harness import Result, free_port, median, percentile, serve

SIZES = (64, 200, 400, 800)
CACHED_SIZE = 200
REQUESTS = 300


def photo(path: Path) -> Path:
    """A 12-megapixel JPEG: coarse colour blobs (detail that survives down to
    a thumbnail), fine noise (what makes a photo's JPEG large) and a gradient."""
    from PIL import Image

    if path.exists():
        return path
    width, height = 4000, 3000
    coarse = Image.effect_noise((200, 150), 80).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    fine = Image.effect_noise((width, height), 30)
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", (coarse, fine, gradient))
    output = io.BytesIO()
    image.save(output, "JPEG", quality=90)
    path.write_bytes(output.getvalue())
    return path


def timed_gets(client: httpx.Client, url: str, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        began = time.perf_counter()
        response = client.get(url)
        latencies.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
    return latencies


def bench_variants(work: Path, repeats: int = 3) -> list[Result]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    internal = work / "variants-internal.db"
    internal.unlink(missing_ok=True)
    args = datasette_args(port, work, internal) + [
        # Made on request only, and the request waits for it.
        "-s",
        "plugins.datasette-files.thumbnail_eager",
        "false",
        "-s",
        "plugins.datasette-files.thumbnail_wait",
        "120",
    ]
    jpeg = photo(work / "photo-12mp.jpg")
    results = []
    with serve(args, base + "/-/files/sources.json"):
        generation: dict[int, list[float]] = {size: [] for size in SIZES}
        for _ in range(repeats):
            _, file = upload_raw(
                base, "bench", jpeg, filename="photo.jpg", content_type="image/jpeg"
            )
            wait_for_hash(base, file)
            with httpx.Client(base_url=base, timeout=120) as client:
                for size in SIZES:
                    url = f"{file['thumbnail_url']}?w={size}"
                    began = time.perf_counter()
                    response = client.get(url)
                    generation[size].append(time.perf_counter() - began)
                    assert response.headers["content-type"] == "image/webp", url
        for size in SIZES:
            results.append(
                Result(
                    f"variant w={size} from a 12 MP JPEG (first request)",
                    median(generation[size]) * 1000,
                    "ms",
                    notes=f"median of {repeats}",
                )
            )

        with httpx.Client(base_url=base, timeout=60) as client:
            variant_url = f"{file['thumbnail_url']}?w={CACHED_SIZE}"
            variant = client.get(variant_url).content
            small = work / "small-like-variant.bin"
            small.write_bytes(variant)
            _, plain = upload_raw(base, "bench", small)
            wait_for_hash(base, plain)
            # Warm both paths, then alternate runs so drift hits both alike.
            timed_gets(client, variant_url, 20)
            timed_gets(client, plain["download_url"], 20)
            cached, downloads = [], []
            for _ in range(3):
                cached += timed_gets(client, variant_url, REQUESTS // 3)
                downloads += timed_gets(client, plain["download_url"], REQUESTS // 3)
    p50, baseline = percentile(cached, 50), percentile(downloads, 50)
    label = (
        f"{len(variant) / 1024:.1f} KiB, photo {jpeg.stat().st_size / 2**20:.1f} MiB"
    )
    results.append(
        Result(
            f"cached variant w={CACHED_SIZE} ({label}), p50",
            p50,
            "ms",
            baseline=baseline,
            target="≤ 1.5× a plain download of the same size",
            passed=p50 <= 1.5 * baseline,
        )
    )
    results.append(
        Result(
            f"cached variant w={CACHED_SIZE} ({label}), p95",
            percentile(cached, 95),
            "ms",
            baseline=percentile(downloads, 95),
        )
    )
    return results
