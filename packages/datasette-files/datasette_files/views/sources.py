"""The files index, source listings (HTML and JSON), sources.json, upload page."""

from __future__ import annotations

import base64
import json

from datasette import Response

from ..errors import HTTPError
from ..permissions import BROWSE, DELETE, EDIT, SYNC, UPLOAD, can
from ..state import get_state
from .common import (
    file_json,
    files_path,
    html_view,
    human_size,
    json_view,
    source_or_404,
)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# A real cursor holds a timestamp and a file id: well under this.
MAX_CURSOR_LENGTH = 1024


def encode_cursor(key: tuple[str, str] | None) -> str | None:
    if key is None:
        return None
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(token: str | None) -> tuple[str, str] | None:
    if not token:
        return None
    if len(token) > MAX_CURSOR_LENGTH:
        raise HTTPError(400, "_next is not a valid pagination token")
    try:
        padded = token + "=" * (-len(token) % 4)
        created_at, file_id = json.loads(base64.urlsafe_b64decode(padded))
        if isinstance(created_at, str) and isinstance(file_id, str):
            return created_at, file_id
    except (ValueError, TypeError, RecursionError):
        pass
    raise HTTPError(400, "_next is not a valid pagination token")


def page_size(request) -> int:
    raw = request.args.get("_size", str(DEFAULT_PAGE_SIZE))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise HTTPError(400, f"_size must be an integer from 1 to {MAX_PAGE_SIZE}")
    return int(raw)


async def source_summary(datasette, actor, source, count: int | None) -> dict:
    capabilities = source.capabilities
    can_upload = bool(capabilities.can_upload) and await can(
        datasette, actor, UPLOAD, source.slug
    )
    summary = {
        "slug": source.slug,
        "storage": source.storage_type,
        "available": source.ready,
        "url": files_path(datasette, "source", source.slug),
        "can_upload": can_upload,
        # Where an uploader component starts (the file picker uses it).
        "prepare_url": files_path(datasette, "upload", source.slug) + "/-/prepare"
        if can_upload
        else None,
        "capabilities": {
            "can_upload": capabilities.can_upload,
            "can_delete": capabilities.can_delete,
            "can_list": capabilities.can_list,
            "can_direct_upload": capabilities.can_direct_upload,
            "can_multipart_upload": capabilities.can_multipart_upload,
        },
        "max_file_size": capabilities.max_file_size,
        # What the source accepts (docs/configuration.md); null: anything.
        "allowed_types": list(source.accept.allowed_types)
        if source.accept.allowed_types is not None
        else None,
        "on_duplicate": source.accept.on_duplicate,
    }
    if count is not None:
        summary["file_count"] = count
    return summary


async def browsable_sources(datasette, actor) -> list:
    state = get_state(datasette)
    return [
        source
        for source in state.sources.values()
        if await can(datasette, actor, BROWSE, source.slug)
    ]


@json_view
async def sources_json_view(request, datasette):
    sources = await browsable_sources(datasette, request.actor)
    return Response.json(
        {
            "ok": True,
            "sources": [
                await source_summary(datasette, request.actor, s, None) for s in sources
            ],
        }
    )


@html_view
async def index_view(request, datasette):
    state = get_state(datasette)
    sources = await browsable_sources(datasette, request.actor)
    counts = await state.registry.file_counts([s.slug for s in sources])
    summaries = []
    for s in sources:
        summary = await source_summary(
            datasette, request.actor, s, counts.get(s.slug, 0)
        )
        # What this actor may do here, for the "You can" column.
        summary["may"] = ["browse"] + [
            verb
            for verb, action in (("edit", EDIT), ("delete", DELETE))
            if await can(datasette, request.actor, action, s.slug)
        ]
        summary["upload_url"] = files_path(datasette, "upload", s.slug)
        summaries.append(summary)
    return Response.html(
        await datasette.render_template(
            "files_index.html",
            {
                "sources": summaries,
                "show_temporary_warning": state.internal_is_temporary
                and any(s["can_upload"] for s in summaries),
                "search_url": files_path(datasette, "search"),
            },
            request=request,
        )
    )


async def listing(request, datasette):
    slug = request.url_vars["slug"]
    source = source_or_404(datasette, slug)
    if not await can(datasette, request.actor, BROWSE, slug):
        # Same answer as a missing source: slugs do not leak.
        raise HTTPError(404, f"Source '{slug}' not found")
    size = page_size(request)
    after = decode_cursor(request.args.get("_next"))
    files, next_key = await get_state(datasette).registry.list_files(slug, size, after)
    next_token = encode_cursor(next_key)
    next_url = None
    if next_token:
        next_url = files_path(datasette, "source", slug) + f"?_next={next_token}"
        if size != DEFAULT_PAGE_SIZE:
            next_url += f"&_size={size}"
    return source, files, next_token, next_url


@json_view
async def source_json_view(request, datasette):
    source, files, next_token, next_url = await listing(request, datasette)
    return Response.json(
        {
            "ok": True,
            "source": await source_summary(datasette, request.actor, source, None),
            "files": [file_json(datasette, f) for f in files],
            "next": next_token,
            "next_url": next_url.replace(
                f"/source/{source.slug}?", f"/source/{source.slug}.json?"
            )
            if next_url
            else None,
        }
    )


@html_view
async def source_page_view(request, datasette):
    source, files, next_token, next_url = await listing(request, datasette)
    actor = request.actor
    rows = []
    for f in files:
        data = file_json(datasette, f)
        data["size_human"] = human_size(f.size)
        rows.append(data)
    summary = await source_summary(datasette, actor, source, None)
    return Response.html(
        await datasette.render_template(
            "files_source.html",
            {
                "source": summary,
                "files": rows,
                "next_url": next_url,
                "upload_url": files_path(datasette, "upload", source.slug),
                "prepare_url": files_path(datasette, "upload", source.slug)
                + "/-/prepare",
                "search_url": files_path(datasette, "search"),
                "is_first_page": not request.args.get("_next"),
                "may_edit": await can(datasette, actor, EDIT, source.slug),
                "may_delete": await can(datasette, actor, DELETE, source.slug),
                "sync_url": files_path(datasette, "source", source.slug) + "/-/sync"
                if await can(datasette, actor, SYNC, source.slug)
                else None,
            },
            request=request,
        )
    )


@html_view
async def upload_page_view(request, datasette):
    slug = request.url_vars["slug"]
    state = get_state(datasette)
    source = state.source(slug)
    if source is None or not await can(datasette, request.actor, UPLOAD, slug):
        raise HTTPError(403, f"You may not upload to source '{slug}'")
    summary = await source_summary(datasette, request.actor, source, None)
    return Response.html(
        await datasette.render_template(
            "files_upload.html",
            {
                "source": summary,
                "prepare_url": files_path(datasette, "upload", slug) + "/-/prepare",
                "show_temporary_warning": state.internal_is_temporary,
            },
            request=request,
        )
    )
