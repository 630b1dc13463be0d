"""One file: page and JSON, download, thumbnail, update, delete; batch metadata."""

from __future__ import annotations

import logging

from datasette import Response

from ..downloads import (
    RangeNotSatisfiable,
    StreamingResponse,
    download_headers,
    parse_range,
    started,
)
from ..errors import HTTPError
from ..events import FileDeleteEvent, FileUpdateEvent, send_file_event
from ..filenames import validate_filename
from ..permissions import BROWSE, DELETE, EDIT, can
from ..registry import FileRow
from ..search import browsable_files_by_id, browsable_files_with_hash
from ..sources import Source
from ..state import get_state
from .common import (
    MAX_JSON_BODY,
    file_json,
    files_path,
    html_view,
    human_size,
    json_error,
    json_view,
    preview_srcset,
    read_json,
)

log = logging.getLogger("datasette_files")

MAX_SEARCH_TEXT = 100_000
MAX_BATCH_IDS = 100
PREVIEW_BYTES = 2048
MAX_SAME_HASH = 20


async def browsable_file(request, datasette, file_id: str) -> FileRow:
    """The file, if it exists in a configured source the actor may browse.

    Files the actor may not see answer 404 too, so ids do not leak existence.
    """
    if not file_id.startswith("df-") or len(file_id) > 64:
        raise HTTPError(404, "File not found")
    row = await get_state(datasette).registry.get_file(file_id)
    if row is None or get_state(datasette).source(row.source_slug) is None:
        raise HTTPError(404, "File not found")
    if not await can(datasette, request.actor, BROWSE, row.source_slug):
        raise HTTPError(404, "File not found")
    return row


def file_source(datasette, row: FileRow) -> Source:
    """The source of a file ``browsable_file`` returned: configured."""
    source = get_state(datasette).source(row.source_slug)
    if source is None:
        raise HTTPError(404, "File not found")
    return source


@json_view
async def file_json_view(request, datasette):
    row = await browsable_file(request, datasette, request.url_vars["file_id"])
    return Response.json({"ok": True, "file": file_json(datasette, row)})


@html_view
async def file_page_view(request, datasette):
    row = await browsable_file(request, datasette, request.url_vars["file_id"])
    actor = request.actor
    may_edit = await can(datasette, actor, EDIT, row.source_slug, row.id)
    may_delete = await can(datasette, actor, DELETE, row.source_slug, row.id)
    state = get_state(datasette)
    from ..hooks import file_action_links

    actions = await file_action_links(datasette, actor, row, state, PREVIEW_BYTES)
    same_hash = []
    if row.content_hash:
        allowed_sql, allowed_params = await datasette.allowed_resources_sql(
            action=BROWSE, actor=actor
        )
        same_hash = await browsable_files_with_hash(
            state.registry.db,
            allowed_sql,
            allowed_params,
            row.content_hash,
            row.id,
            MAX_SAME_HASH,
        )
    return Response.html(
        await datasette.render_template(
            "files_file.html",
            {
                "file": file_json(datasette, row),
                "size_human": human_size(row.size),
                "source_url": files_path(datasette, "source", row.source_slug),
                "may_edit": may_edit,
                "may_delete": may_delete,
                "actions": actions,
                "same_hash": [file_json(datasette, other) for other in same_hash],
                "is_image": (row.content_type or "").startswith("image/")
                and row.content_type != "image/svg+xml",
                "preview_srcset": preview_srcset(datasette, row),
            },
            request=request,
        )
    )


@json_view
async def download_view(request, datasette):
    row = await browsable_file(request, datasette, request.url_vars["file_id"])
    source = file_source(datasette, row)
    storage = await source.ensure_ready()
    capabilities = storage.capabilities
    if (
        capabilities.can_generate_signed_urls
        and not capabilities.requires_proxy_download
    ):
        url = await source.call(
            storage.download_url(
                row.path, 300, filename=row.filename, content_type=row.content_type
            ),
        )
        if url:
            return Response.redirect(url, headers={"cache-control": "no-store"})
    size = row.size
    if size is None:
        metadata = await source.call(storage.get_file_metadata(row.path))
        if metadata is None:
            raise HTTPError(404, "File is missing from its storage")
        size = metadata.size or 0
    headers = download_headers(row.filename, row.content_type)
    if row.content_hash:
        headers["etag"] = f'"{row.content_hash}"'
    content_type = row.content_type or "application/octet-stream"
    try:
        byte_range = parse_range(request.headers.get("range"), size)
    except RangeNotSatisfiable:
        response = json_error(f"Range not satisfiable: the file is {size} bytes", 416)
        response.headers["content-range"] = f"bytes */{size}"
        return response
    if byte_range is None:
        headers["content-length"] = str(size)
        if size == 0:
            return Response(b"", headers=headers, content_type=content_type)
        status, chunks = 200, storage.stream_file(row.path, 0, size - 1)
    else:
        start, end = byte_range
        headers["content-length"] = str(end - start + 1)
        headers["content-range"] = f"bytes {start}-{end}/{size}"
        status, chunks = 206, storage.stream_file(row.path, start, end)
    # A backend failure on the first read is still a JSON error, not a 200.
    chunks = await source.call(started(chunks))
    return StreamingResponse(chunks, status, headers, content_type)


def checked_search_text(value) -> str:
    if not isinstance(value, str) or len(value) > MAX_SEARCH_TEXT:
        raise HTTPError(
            400, f"search_text must be a string of at most {MAX_SEARCH_TEXT} characters"
        )
    return value


def checked_filename(value) -> str:
    try:
        return validate_filename(value)
    except ValueError as ex:
        raise HTTPError(400, str(ex)) from None


# What POST /-/files/{id}/-/update may change, each with its check.
UPDATABLE = {"search_text": checked_search_text, "filename": checked_filename}


@json_view
async def update_view(request, datasette):
    row = await browsable_file(request, datasette, request.url_vars["file_id"])
    if not await can(datasette, request.actor, EDIT, row.source_slug, row.id):
        raise HTTPError(403, "You may not edit this file")
    # Room for the longest allowed search_text, even if every character is
    # sent as a six-byte \uXXXX escape.
    body = await read_json(
        request,
        MAX_SEARCH_TEXT * 6 + MAX_JSON_BODY,
        get_state(datasette).settings.upload_idle_timeout,
    )
    update = body.get("update") if isinstance(body, dict) else None
    if not isinstance(update, dict) or not update:
        raise HTTPError(400, 'Body must be {"update": {"search_text": "..."}}')
    unknown = sorted(set(update) - set(UPDATABLE))
    if unknown:
        names = ", ".join(f"'{name[:100]}'" for name in unknown)
        raise HTTPError(
            400,
            f"Cannot update {names}; updatable fields: {', '.join(UPDATABLE)}",
        )
    # Every value is checked before any is written: a bad one changes nothing.
    changes = {
        name: UPDATABLE[name](update[name]) for name in UPDATABLE if name in update
    }
    registry = get_state(datasette).registry
    if "search_text" in changes:
        await registry.update_search_text(row.id, changes["search_text"])
    if "filename" in changes:
        await registry.update_filename(row.id, changes["filename"])
    updated = await registry.get_file(row.id)
    if updated is None:  # deleted meanwhile
        raise HTTPError(404, "File not found")
    # Only fields whose value differs: re-sending the same text is no change.
    changed = [name for name in changes if getattr(row, name) != changes[name]]
    if changed:
        await send_file_event(
            datasette, FileUpdateEvent, request.actor, updated, changed=changed
        )
    return Response.json({"ok": True, "file": file_json(datasette, updated)})


@json_view
async def delete_view(request, datasette):
    row = await browsable_file(request, datasette, request.url_vars["file_id"])
    if not await can(datasette, request.actor, DELETE, row.source_slug, row.id):
        raise HTTPError(403, "You may not delete this file")
    source = file_source(datasette, row)
    storage = await source.ensure_ready()
    if not storage.capabilities.can_delete:
        raise HTTPError(400, f"Source '{row.source_slug}' does not support deletes")
    # Row first: a crash between the two leaves an orphan object, never a
    # registered file whose bytes are gone. Once the row is gone the file is
    # deleted as far as anyone can see, so a backend failure after that is
    # logged (naming the orphan) rather than reported as a failed delete.
    await get_state(datasette).registry.delete_file(row.id)
    try:
        await storage.delete_file(row.path)
    except Exception as ex:  # noqa: BLE001 - the delete itself has happened
        log.warning(
            "datasette-files: deleted %s but could not remove %s from source %s: %s",
            row.id,
            row.path,
            row.source_slug,
            ex,
        )
    await send_file_event(datasette, FileDeleteEvent, request.actor, row)
    return Response.json({"ok": True, "deleted": row.id})


@json_view
async def batch_view(request, datasette):
    ids = request.args.getlist("id")
    if not ids:
        raise HTTPError(400, "Pass one or more ?id= parameters")
    if len(ids) > MAX_BATCH_IDS:
        raise HTTPError(400, f"At most {MAX_BATCH_IDS} ids per request")
    allowed_sql, allowed_params = await datasette.allowed_resources_sql(
        action=BROWSE, actor=request.actor
    )
    rows = await browsable_files_by_id(
        get_state(datasette).registry.db,
        allowed_sql,
        allowed_params,
        list(dict.fromkeys(ids)),
    )
    visible = {row.id: file_json(datasette, row) for row in rows}
    return Response.json(
        {"ok": True, "files": visible, "missing": [i for i in ids if i not in visible]}
    )
