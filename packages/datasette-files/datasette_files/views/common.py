"""What every view shares: the one JSON error shape, URLs, file JSON."""

from __future__ import annotations

import functools
import json
import logging
from urllib.parse import quote

from datasette import Forbidden, NotFound, Response
from datasette.utils import error_body
from datasette.utils.asgi import BadRequest, PayloadTooLarge

from ..base import StorageFull, StorageUnavailable
from ..registry import FileRow
from ..sources import SourceUnavailable
from ..state import get_state
from ..streaming_form import BodyTimeout, FormError, read_body
from ..uploads import UploadError

log = logging.getLogger("datasette_files")

MAX_JSON_BODY = 64 * 1024


class ClientError(Exception):
    """Raise from a view to answer with a JSON error."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def json_error(message: str | list[str], status: int, **extra) -> Response:
    """The one JSON error shape; ``extra`` adds keys (e.g. ``job_url``)."""
    return Response.json({**error_body(message, status), **extra}, status=status)


def error_for(ex: BaseException) -> tuple[int, str] | None:
    """Map an exception to (status, message); None means it is a bug."""
    if isinstance(ex, (ClientError, UploadError)):
        return ex.status, ex.message
    if isinstance(ex, (SourceUnavailable, StorageUnavailable)):
        return 503, str(ex)
    if isinstance(ex, StorageFull):
        return 507, str(ex)
    if isinstance(ex, Forbidden):
        return 403, str(ex.args[0] if ex.args else "Forbidden")
    if isinstance(ex, NotFound):
        return 404, str(ex.args[0] if ex.args else "Not found")
    if isinstance(ex, PayloadTooLarge):
        return 413, str(ex)
    if isinstance(ex, BadRequest):
        return 400, str(ex)
    return None


def json_view(view):
    """Wrap a view so every failure, even a bug, answers in the JSON shape.

    Datasette passes view arguments by the names in the view's signature,
    which ``functools.wraps`` exposes, so the wrapper forwards them as given.
    """

    @functools.wraps(view)
    async def wrapper(*args):
        try:
            return await view(*args)
        except Exception as ex:  # noqa: BLE001 - the one place errors become JSON
            mapped = error_for(ex)
            if mapped is None:
                log.exception("datasette-files: unexpected error in %s", view.__name__)
                return json_error("Internal error; see the server log", 500)
            return json_error(mapped[1], mapped[0])

    return wrapper


async def read_json(
    request, max_bytes: int = MAX_JSON_BODY, idle_timeout: float | None = None
) -> object:
    """Parse a small JSON body; 400 for anything that is not JSON, 413 past
    ``max_bytes``, 408 if the client goes quiet for ``idle_timeout``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type not in ("application/json", ""):
        raise ClientError(400, "Content-Type must be application/json")
    too_large = ClientError(413, f"Request body is larger than {max_bytes} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    body = bytearray()
    try:
        async for chunk in read_body(request.receive, idle_timeout):
            body += chunk
            if len(body) > max_bytes:
                raise too_large
    except BodyTimeout as ex:
        raise ClientError(408, str(ex)) from None
    except FormError as ex:
        raise ClientError(400, str(ex)) from None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ClientError(400, "Request body is not valid JSON") from None
    except RecursionError:
        raise ClientError(400, "Request body is JSON nested too deeply") from None


def source_or_404(datasette, slug: str):
    source = get_state(datasette).source(slug)
    if source is None:
        raise ClientError(404, f"Source '{slug}' not found")
    return source


def files_path(datasette, *parts: str) -> str:
    tail = "/".join(quote(part, safe="") for part in parts)
    return datasette.urls.path("/-/files" + (f"/{tail}" if tail else ""))


def file_json(datasette, file: FileRow) -> dict:
    return {
        "id": file.id,
        "filename": file.filename,
        "content_type": file.content_type,
        "content_hash": file.content_hash,
        "size": file.size,
        "width": file.width,
        "height": file.height,
        "source_slug": file.source_slug,
        "uploaded_by": file.uploaded_by,
        "created_at": file.created_at,
        "search_text": file.search_text,
        "url": files_path(datasette, file.id),
        "download_url": files_path(datasette, file.id, "download"),
        "thumbnail_url": files_path(datasette, file.id, "thumbnail"),
    }


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size)
