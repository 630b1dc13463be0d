"""What every view shares: the one error boundary (JSON shape, HTML page, 405),
URLs, file JSON."""

from __future__ import annotations

import functools
import inspect
import json
import logging
from urllib.parse import quote

from datasette import Forbidden, NotFound, Response
from datasette.utils import error_body
from datasette.utils.asgi import BadRequest, PayloadTooLarge

from ..base import StorageFull, StorageUnavailable
from ..errors import HTTPError
from ..registry import FileRow
from ..state import get_state
from ..streaming_form import BodyTimeout, FormError, read_body
from ..thumbnails.pillow import PillowGenerator

log = logging.getLogger("datasette_files")

MAX_JSON_BODY = 64 * 1024


def json_error(
    message: str | list[str], status: int, extra: dict | None = None
) -> Response:
    """The one error shape; ``extra`` adds keys, e.g. ``duplicate_of``."""
    body = error_body(message, status)
    if extra:
        body.update({key: value for key, value in extra.items() if key not in body})
    return Response.json(body, status=status)


def error_for(ex: BaseException) -> tuple[int, str] | None:
    """Map an exception to (status, message); None means it is a bug."""
    if isinstance(ex, HTTPError):
        return ex.status, ex.message
    if isinstance(ex, StorageUnavailable):
        return 503, str(ex)
    if isinstance(ex, StorageFull):
        return 507, str(ex)
    if isinstance(ex, FileNotFoundError):
        # A registered file whose bytes are gone. Not str(ex): it may hold
        # the storage's absolute path.
        return 404, "File is missing from its storage"
    if isinstance(ex, Forbidden):
        return 403, str(ex.args[0] if ex.args else "Forbidden")
    if isinstance(ex, NotFound):
        return 404, str(ex.args[0] if ex.args else "Not found")
    if isinstance(ex, PayloadTooLarge):
        return 413, str(ex)
    if isinstance(ex, BadRequest):
        return 400, str(ex)
    return None


def status_and_message(ex: Exception, view_name: str) -> tuple[int, str]:
    """What a failed view answers: the mapped error, or a logged 500."""
    mapped = error_for(ex)
    if mapped is None:
        log.exception("datasette-files: unexpected error in %s", view_name)
        return 500, "Internal error; see the server log"
    return mapped


async def error_page(request, datasette, status: int, message: str) -> Response:
    """The HTML error page, with the error's status."""
    return Response.html(
        await datasette.render_template(
            "files_error.html", {"message": message}, request=request
        ),
        status=status,
    )


def wants_json(request) -> bool:
    """Routes that serve both HTML and ``.json`` capture the suffix as ``format``."""
    return request.url_vars.get("format") == ".json"


def error_boundary(view, as_json):
    """Wrap ``view`` so that every failure, even a bug, becomes an answer:
    the JSON error shape when ``as_json(request)``, else the HTML error page.

    Datasette passes view arguments by the names in the view's signature,
    which ``functools.wraps`` exposes, so the wrapper forwards them as given.
    """
    names = list(inspect.signature(view).parameters)

    @functools.wraps(view)
    async def wrapper(*args):
        try:
            return await view(*args)
        except Exception as ex:  # noqa: BLE001 - the one place errors become answers
            status, message = status_and_message(ex, view.__name__)
            arguments = dict(zip(names, args, strict=True))
            request = arguments.get("request")
            if as_json(request):
                return json_error(message, status, getattr(ex, "extra", None))
            return await error_page(request, arguments["datasette"], status, message)

    return wrapper


def json_view(view):
    """A JSON endpoint: every failure answers in the JSON error shape."""
    return error_boundary(view, lambda request: True)


def html_view(view):
    """An HTML page: every failure renders the error page with its status."""
    return error_boundary(view, lambda request: False)


def html_or_json_view(view):
    """A page that is also served as JSON with ``.json``: errors to match."""
    return error_boundary(view, wants_json)


def allow(methods: str, view):
    """Route ``view`` for ``methods`` only (e.g. ``"GET POST"``); any other
    method gets a JSON 405 with an ``Allow`` header. HEAD goes with GET.

    Routes without it accept every method, as Datasette's own views do.
    """
    allowed = methods.split()
    if "GET" in allowed and "HEAD" not in allowed:
        allowed.insert(allowed.index("GET") + 1, "HEAD")
    message = "Use " + " or ".join(methods.split())
    header = ", ".join(allowed)
    position = list(inspect.signature(view).parameters).index("request")

    @functools.wraps(view)
    async def wrapper(*args):
        if args[position].method not in allowed:
            response = json_error(message, 405)
            response.headers["allow"] = header
            return response
        return await view(*args)

    return wrapper


async def read_json(
    request, max_bytes: int = MAX_JSON_BODY, idle_timeout: float | None = None
) -> object:
    """Parse a small JSON body; 400 for anything that is not JSON, 413 past
    ``max_bytes``, 408 if the client goes quiet for ``idle_timeout``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type not in ("application/json", ""):
        raise HTTPError(400, "Content-Type must be application/json")
    too_large = HTTPError(413, f"Request body is larger than {max_bytes} bytes")
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
        raise HTTPError(408, str(ex)) from None
    except FormError as ex:
        raise HTTPError(400, str(ex)) from None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HTTPError(400, "Request body is not valid JSON") from None
    except RecursionError:
        raise HTTPError(400, "Request body is JSON nested too deeply") from None


def source_or_404(datasette, slug: str):
    source = get_state(datasette).source(slug)
    if source is None:
        raise HTTPError(404, f"Source '{slug}' not found")
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
        "thumbnail_srcset": thumbnail_srcset(datasette, file),
    }


def thumbnail_sizes(datasette) -> tuple[int, ...]:
    thumbnailer = get_state(datasette).thumbnailer
    return thumbnailer.settings.sizes if thumbnailer is not None else ()


def thumbnail_srcset(datasette, file: FileRow) -> str:
    """``srcset`` for the thumbnail: one ``?w=`` variant per allowed size."""
    url = files_path(datasette, file.id, "thumbnail")
    return ", ".join(f"{url}?w={size} {size}w" for size in thumbnail_sizes(datasette))


def preview_srcset(datasette, file: FileRow) -> str | None:
    """``srcset`` for an image's preview on its page: the variants narrower
    than the image, then the image itself.

    Only for an image whose width and height are recorded (a ``w``
    descriptor must be the width the variant really has, and a ``contain``
    variant of a tall image is narrower than its box), that the built-in
    generator takes and that is within the byte and pixel limits. Otherwise
    None: the browser loads the original, as it would without variants.
    """
    thumbnailer = get_state(datasette).thumbnailer
    if thumbnailer is None or not file.width or not file.height:
        return None
    policy = thumbnailer.policy
    if (
        not PillowGenerator().accepts(file)
        or (file.size or 0) > policy.max_bytes
        or file.width * file.height > policy.max_pixels
    ):
        return None
    url = files_path(datasette, file.id, "thumbnail")
    candidates = []
    for size in thumbnailer.settings.sizes:
        # What ?w=size (a size x size box, contain) comes out as.
        width = round(file.width * min(size / file.width, size / file.height))
        if width < file.width:
            candidates.append(f"{url}?w={size} {width}w")
    download = files_path(datasette, file.id, "download")
    candidates.append(f"{download} {file.width}w")
    return ", ".join(candidates)


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size)


async def not_found_view(request, datasette):
    """Any other path under /-/files: a 404 in the JSON shape (HTML for browsers).

    Without this route Datasette answers these itself, with its own page
    (and, when ``rich`` is installed, a 500 from its exception handler).
    """
    path = (request.scope.get("raw_path") or request.path.encode()).partition(b"?")[0]
    if path.endswith(b"/"):
        # As Datasette does: the same URL without its trailing slash.
        target = path.rstrip(b"/").decode("latin-1")
        if request.query_string:
            target += "?" + request.query_string
        return Response.redirect(target)
    message = "Not found"
    accept = request.headers.get("accept", "")
    if "text/html" in accept and not request.path.endswith(".json"):
        return Response.html(
            await datasette.render_template(
                "files_error.html", {"message": message}, request=request
            ),
            status=404,
        )
    return json_error(message, 404)
