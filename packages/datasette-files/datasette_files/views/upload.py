"""The upload endpoints: prepare, upload (raw or multipart), parts, complete, abort."""

from __future__ import annotations

from datasette import Response

from .. import uploads
from ..errors import HTTPError
from ..events import FileUploadEvent, send_file_event
from ..permissions import UPLOAD, can
from ..state import get_state
from ..streaming_form import BodyTimeout, FormError, StreamingForm, read_body
from .common import (
    file_json,
    files_path,
    json_view,
    read_json,
    source_or_404,
)

TOKEN_HEADER = "x-upload-token"  # noqa: S105 - a header name, not a secret


async def upload_source(request, datasette):
    """The source named in the URL, after checking ``files-upload`` on it."""
    slug = request.url_vars["slug"]
    source = source_or_404(datasette, slug)
    if not await can(datasette, request.actor, UPLOAD, slug):
        raise HTTPError(403, f"You may not upload to source '{slug}'")
    return source


def instructions_json(datasette, source, result) -> dict:
    pending = result["pending"]
    instructions = result["instructions"]
    token = result["token"]
    base = files_path(datasette, "upload", source.slug)
    if instructions is None:
        # Either a raw body with the X-Upload-Token header, or (as 0.1a3
        # clients do) a multipart form of ``fields`` then ``file``. No
        # Content-Type here: a client sending these headers along with a form
        # would otherwise lose the form's boundary.
        upload = {
            "mode": "proxy",
            "url": base + "/-/upload",
            "method": "POST",
            "headers": {"X-Upload-Token": token},
            "fields": {"upload_token": token},
        }
    else:
        upload = {
            "mode": pending.mode,
            "url": instructions.upload_url,
            "method": instructions.upload_method,
            "headers": instructions.upload_headers,
            "fields": instructions.upload_fields,
        }
        if instructions.multipart:
            upload["part_size"] = instructions.multipart.part_size
            upload["part_count"] = instructions.multipart.part_count
            upload["parts_url"] = base + "/-/parts"
            upload["part_tag_header"] = instructions.multipart.part_tag_header
    return {
        "ok": True,
        "upload_token": token,
        "file_id": pending.id,
        "expires_in": result["expires_in"],
        "filename": pending.filename,
        "content_type": pending.content_type,
        "size": pending.size,
        "upload": upload,
        # The same instructions as 0.1a3 clients read them, at the top level.
        "upload_url": upload["url"],
        "upload_method": upload["method"],
        "upload_headers": upload["headers"],
        "upload_fields": upload["fields"],
        "complete_url": base + "/-/complete",
        "abort_url": base + "/-/abort",
    }


@json_view
async def prepare_view(request, datasette):
    source = await upload_source(request, datasette)
    state = get_state(datasette)
    body = await read_json(request, idle_timeout=state.settings.upload_idle_timeout)
    result = await uploads.prepare(state, source, request.actor, body)
    return Response.json(instructions_json(datasette, source, result))


@json_view
async def upload_view(request, datasette):
    """The file's bytes: a raw body with X-Upload-Token, or a multipart form."""
    source = await upload_source(request, datasette)
    state = get_state(datasette)
    content_type = request.headers.get("content-type", "")
    idle_timeout = state.settings.upload_idle_timeout
    try:
        if content_type.startswith("multipart/form-data"):
            form = StreamingForm(request.receive, content_type, idle_timeout)
            stream = await form.file_stream("file")
            token = form.fields.get("upload_token") or request.headers.get(TOKEN_HEADER)
            if not token:
                raise HTTPError(400, "upload_token must be sent before the file field")
        else:
            token = request.headers.get(TOKEN_HEADER)
            stream = read_body(request.receive, idle_timeout)
        pending = await uploads.receive(state, source, request.actor, token, stream)
    except FormError as ex:
        raise HTTPError(400, str(ex)) from None
    except BodyTimeout as ex:
        # The partial bytes are gone and the token is usable again.
        raise HTTPError(408, str(ex)) from None
    return Response.json(
        {
            "ok": True,
            "file_id": pending.id,
            "size": pending.size,
            "content_hash": pending.content_hash,
        }
    )


async def token_step(request, datasette, step, *fields):
    """Run a JSON step after prepare (``uploads.part_urls``, ``complete`` or
    ``abort``) on the checked source, with the body's ``upload_token`` and
    ``fields``."""
    source = await upload_source(request, datasette)
    state = get_state(datasette)
    body = await read_json(request, idle_timeout=state.settings.upload_idle_timeout)
    if not isinstance(body, dict):
        raise HTTPError(400, "Request body must be a JSON object")
    values = [body.get(field) for field in fields]
    return await step(state, source, request.actor, body.get("upload_token"), *values)


@json_view
async def parts_view(request, datasette):
    urls = await token_step(request, datasette, uploads.part_urls, "part_numbers")
    return Response.json({"ok": True, "urls": urls})


@json_view
async def complete_view(request, datasette):
    completed = await token_step(request, datasette, uploads.complete, "parts")
    file = completed.file
    if completed.duplicate_of is not None:
        # on_duplicate: reuse. Nothing new was created, so no event either.
        return Response.json(
            {
                "ok": True,
                "file": file_json(datasette, file),
                "duplicate_of": completed.duplicate_of,
            }
        )
    await send_file_event(
        datasette,
        FileUploadEvent,
        request.actor,
        file,
        content_type=file.content_type,
        size=file.size,
    )
    return Response.json({"ok": True, "file": file_json(datasette, file)}, status=201)


@json_view
async def abort_view(request, datasette):
    await token_step(request, datasette, uploads.abort)
    return Response.json({"ok": True})
