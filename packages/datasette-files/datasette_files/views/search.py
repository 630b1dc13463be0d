"""Full-text search: /-/files/search (HTML) and /-/files/search.json."""

from __future__ import annotations

import re
import sqlite3

from datasette import Response

from ..errors import HTTPError
from ..permissions import BROWSE
from ..search import search_files
from ..state import get_state
from .common import file_json, files_path, human_size, json_view
from .sources import browsable_sources, page_size

MAX_QUERY_LENGTH = 500
NEXT_RE = re.compile(r"[0-9]{1,18}")


async def run_search(request, datasette):
    q = request.args.get("q", "")
    if len(q) > MAX_QUERY_LENGTH:
        raise HTTPError(400, f"q must be at most {MAX_QUERY_LENGTH} characters")
    source = request.args.get("source") or None
    raw_next = request.args.get("_next")
    # ASCII digits only ("²".isdigit() is true), and few enough for SQLite.
    if raw_next is not None and not NEXT_RE.fullmatch(raw_next):
        raise HTTPError(400, "_next is not a valid pagination token")
    size = page_size(request)
    allowed_sql, allowed_params = await datasette.allowed_resources_sql(
        action=BROWSE, actor=request.actor
    )
    try:
        files, next_rowid = await search_files(
            get_state(datasette).registry.db,
            allowed_sql,
            allowed_params,
            q,
            source,
            size,
            int(raw_next) if raw_next else None,
        )
    except sqlite3.OperationalError as ex:
        # fts_query() quotes everything, so this is not expected; but user
        # input must never become a 500.
        raise HTTPError(400, f"Could not run that search: {ex}") from None
    next_url = None
    if next_rowid is not None:
        args = {"q": q, "_next": str(next_rowid)}
        if source:
            args["source"] = source
        if request.args.get("_size"):
            args["_size"] = str(size)
        next_url = "?" + "&".join(
            f"{key}={quote_arg(value)}" for key, value in args.items()
        )
    return q, source, files, next_rowid, next_url


def quote_arg(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


@json_view
async def search_json_view(request, datasette):
    q, source, files, next_rowid, next_url = await run_search(request, datasette)
    return Response.json(
        {
            "ok": True,
            "q": q,
            "source": source,
            "files": [file_json(datasette, f) for f in files],
            "next": str(next_rowid) if next_rowid is not None else None,
            "next_url": files_path(datasette, "search.json") + next_url
            if next_url
            else None,
        }
    )


async def search_page_view(request, datasette):
    try:
        q, source, files, _, next_url = await run_search(request, datasette)
    except HTTPError as ex:
        q, source, files, next_url = request.args.get("q", ""), None, [], None
        error = ex.message
    else:
        error = None
    rows = []
    for f in files:
        data = file_json(datasette, f)
        data["size_human"] = human_size(f.size)
        rows.append(data)
    sources = await browsable_sources(datasette, request.actor)
    return Response.html(
        await datasette.render_template(
            "files_search.html",
            {
                "q": q,
                "source": source,
                "sources": [s.slug for s in sources],
                "files": rows,
                "error": error,
                "next_url": files_path(datasette, "search") + next_url
                if next_url
                else None,
            },
            request=request,
        )
    )
