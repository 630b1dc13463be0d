"""GET /-/files/{file_id}/thumbnail: the cached thumbnail, or the type icon.

``?w=&h=&fit=&format=`` asks for a sized variant (sizes from the
``thumbnail_sizes`` allowlist); anything else is a 400 naming the allowed
values. Visible to whoever may browse the file. A thumbnail not made yet is made on
demand (waiting up to ``thumbnail_wait`` seconds); until it exists, or when
the file gets none, the answer is the file's SVG type icon. Both carry an
ETag, and a matching ``If-None-Match`` gets a 304.
"""

from __future__ import annotations

import hashlib
import logging

from datasette import Response

from ..errors import HTTPError
from ..icons import type_icon_svg
from ..state import get_state
from ..thumbnails.cache import OK
from ..thumbnails.policy import VariantError
from .common import json_view
from .files import browsable_file

log = logging.getLogger("datasette_files")

# Also locks down the SVG icon should someone open it as a document.
CSP = "default-src 'none'; style-src 'unsafe-inline'"
# Final answers (a thumbnail, or the icon for a file that gets none) may be
# reused for an hour; the icon shown while a thumbnail is pending or after a
# transient failure is revalidated on every use.
FINAL = "private, max-age=3600"
PENDING = "private, no-cache"


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in candidates or any(
        tag.removeprefix("W/") == etag for tag in candidates
    )


def image_response(request, body: bytes, content_type: str, etag: str, cache: str):
    headers = {
        "etag": etag,
        "cache-control": cache,
        "x-content-type-options": "nosniff",
        "content-security-policy": CSP,
    }
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(b"", status=304, headers=headers, content_type=content_type)
    return Response(body, headers=headers, content_type=content_type)


@json_view
async def thumbnail_view(request, datasette):
    row = await browsable_file(request, datasette, request.url_vars["file_id"])
    thumbnailer = get_state(datasette).thumbnailer
    if thumbnailer is None:
        raise RuntimeError("the thumbnailer has not started")
    try:
        variant = thumbnailer.settings.parse_variant(request.args)
    except VariantError as ex:
        raise HTTPError(400, str(ex)) from None
    try:
        entry, final = await thumbnailer.current(row, variant)
    except Exception:  # noqa: BLE001 - the icon is always a valid answer
        log.exception("datasette-files: thumbnail lookup for %s failed", row.id)
        entry, final = None, False
    if entry is not None and entry.outcome == OK:
        # An OK entry always carries its image.
        assert entry.data is not None and entry.content_type and entry.etag
        # Not final: a thumbnail adopted from 0.1a3, shown until ours is made.
        return image_response(
            request,
            entry.data,
            entry.content_type,
            entry.etag,
            FINAL if final else PENDING,
        )
    svg = type_icon_svg(row.filename, row.content_type).encode("utf-8")
    etag = '"i-' + hashlib.sha256(svg).hexdigest()[:24] + '"'
    return image_response(
        request, svg, "image/svg+xml", etag, FINAL if final else PENDING
    )
