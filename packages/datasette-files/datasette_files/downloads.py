"""Streaming file responses with HTTP Range support."""

from __future__ import annotations

import logging
import re

from .filenames import content_disposition

log = logging.getLogger("datasette_files")

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
# Anything we serve is a download, never a page: no scripts, no plugins.
DOWNLOAD_CSP = "default-src 'none'; sandbox"


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive for a single byte range, or None for the whole file.

    Malformed and multi-range headers are ignored (the whole file is sent, as
    RFC 9110 allows). A syntactically valid range outside the file raises
    RangeNotSatisfiable.
    """
    if not header:
        return None
    match = RANGE_RE.match(header.strip())
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable()
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable()
    return start, min(end, size - 1)


def download_headers(filename: str, content_type: str | None) -> dict:
    return {
        "content-disposition": content_disposition(filename),
        "x-content-type-options": "nosniff",
        "content-security-policy": DOWNLOAD_CSP,
        "accept-ranges": "bytes",
        "cache-control": "private, max-age=0",
    }


class StreamingResponse:
    """Send an async iterator of bytes; Datasette calls ``asgi_send``."""

    def __init__(self, chunks, status: int, headers: dict, content_type: str):
        self.chunks = chunks
        self.status = status
        self.headers = headers
        self.content_type = content_type

    async def asgi_send(self, send):
        headers = dict(self.headers)
        headers["content-type"] = self.content_type
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [
                    [key.encode("latin-1"), str(value).encode("latin-1")]
                    for key, value in headers.items()
                ],
            }
        )
        try:
            async for chunk in self.chunks:
                if chunk:
                    await send(
                        {"type": "http.response.body", "body": chunk, "more_body": True}
                    )
        except Exception as ex:  # noqa: BLE001 - headers are gone; cut the body short
            # Returning without the final body message makes the server drop
            # the connection, so the client sees a failed, not a short, file.
            log.warning("datasette-files: download interrupted: %s", ex)
            return
        finally:
            aclose = getattr(self.chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        await send({"type": "http.response.body", "body": b""})


async def started(chunks):
    """``chunks`` with the first one already read.

    Once the 200 headers are out, a failing backend can only cut the body
    short; reading ahead lets the view answer with a proper error instead.
    """
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""

    async def rest():
        try:
            yield first
            async for chunk in chunks:
                yield chunk
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    return rest()
