"""Helpers for the thumbnail tests (a module, not fixtures: plain functions
the tests call; ``tests/`` is on pytest's ``pythonpath``)."""

from __future__ import annotations

import asyncio
import io
import struct
import time
import zlib

from PIL import Image

# A request waits for its thumbnail rather than getting the icon meanwhile.
WAIT = {"thumbnail_wait": 30}


def image_bytes(fmt: str, size=(600, 300), mode="RGB", **save) -> bytes:
    """A two-colour image: red left half, blue right half."""
    image = Image.new(mode, size, "blue")
    image.paste("red", (0, 0, size[0] // 2, size[1]))
    output = io.BytesIO()
    image.save(output, fmt, **save)
    return output.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


async def thumbnail_row(ds, file_id: str) -> dict | None:
    rows = await ds.get_internal_database().execute(
        "SELECT outcome, generator, reason, attempts, retry_at, cache_key "
        "FROM files_thumbnails WHERE file_id = ?",
        [file_id],
    )
    row = rows.first()
    return dict(row) if row else None


async def wait_for_row(ds, file_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = await thumbnail_row(ds, file_id)
        if row is not None:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"no thumbnail outcome for {file_id}")


async def wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


def decoded(response) -> Image.Image:
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def assert_icon(response):
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.text.startswith("<svg")
    assert response.headers["x-content-type-options"] == "nosniff"
