"""The ``debug-storages`` endpoints: what is configured and what backends hold."""

from __future__ import annotations

import re
from dataclasses import asdict

from datasette import Response

from ..errors import HTTPError
from ..permissions import DEBUG
from ..sources import discover_storage_types
from ..state import get_state
from .common import json_view, source_or_404

MAX_LIMIT = 1000


async def require_debug(request, datasette):
    if not await datasette.allowed(action=DEBUG, actor=request.actor):
        raise HTTPError(403, "debug-storages permission required")


@json_view
async def storages_view(request, datasette):
    await require_debug(request, datasette)
    state = get_state(datasette)
    return Response.json(
        {
            "ok": True,
            "storage_types": sorted(discover_storage_types(datasette)),
            "sources": [
                {
                    "slug": source.slug,
                    "storage": source.storage_type,
                    "available": source.ready,
                    "error": source.error,
                    "capabilities": asdict(source.capabilities),
                }
                for source in state.sources.values()
            ],
        }
    )


@json_view
async def storage_list_view(request, datasette):
    await require_debug(request, datasette)
    source = source_or_404(datasette, request.url_vars["slug"])
    storage = await source.ensure_ready()
    if not storage.capabilities.can_list:
        raise HTTPError(400, f"Source '{source.slug}' cannot list its files")
    raw_limit = request.args.get("limit", "100")
    if (
        not re.fullmatch(r"[0-9]{1,4}", raw_limit)
        or not 1 <= int(raw_limit) <= MAX_LIMIT
    ):
        raise HTTPError(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
    cursor = request.args.get("cursor") or None
    try:
        files, next_cursor = await source.call(
            storage.list_files(
                prefix=request.args.get("prefix", ""),
                cursor=cursor,
                limit=int(raw_limit),
            ),
        )
    except ValueError as ex:
        # A storage refuses a prefix or cursor it cannot use (e.g. S3 keys
        # with control characters): the client's input, not a server fault.
        raise HTTPError(400, f"Cannot list with that prefix or cursor: {ex}") from None
    return Response.json(
        {
            "ok": True,
            "source": source.slug,
            "files": [asdict(f) for f in files],
            "next_cursor": next_cursor,
        }
    )
