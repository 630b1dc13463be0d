"""Import pages: preview and start (``/-/files/{id}/-/import``), job progress.

Both answer HTML, or JSON with ``.json``; JSON errors use the one error shape.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

from datasette import Response

from ..errors import HTTPError
from ..files import File
from ..permissions import BROWSE, actor_id, can
from ..state import get_state
from ..views.common import (
    file_json,
    files_path,
    html_or_json_view,
    html_view,
    human_size,
    json_view,
    read_json,
    wants_json,
)
from ..views.files import browsable_file, file_source
from .actions import import_url, importable_file
from .csvstream import DELIMITERS, SAMPLE_BYTES, CSVFormatError, analyse, file_kind
from .store import DONE, FAILED, ImportJob
from .targets import (
    check_target,
    create_table,
    default_table_name,
    import_databases,
)

MAX_FORM_BODY = 16 * 1024
DELIMITER_NAMES = {name: char for char, name in DELIMITERS.items()}


def requested_delimiter(value) -> str | None:
    """``comma``/``tab``/``semicolon``/``pipe`` (or the character); None: detect."""
    if value in (None, "", "auto"):
        return None
    if value in DELIMITER_NAMES:
        return DELIMITER_NAMES[value]
    if value in DELIMITERS:
        return value
    raise HTTPError(
        400, f"delimiter must be one of: auto, {', '.join(DELIMITER_NAMES)}"
    )


async def importable(request, datasette) -> tuple[File, str, list[str]]:
    """The file, its kind and the databases the actor may import into.

    404 for files the actor may not see, 400 for files that are not CSV/TSV,
    403 for actors who may not create tables anywhere.
    """
    row = await browsable_file(request, datasette, request.url_vars["file_id"])
    state = get_state(datasette)
    if state.imports is None or not state.imports.settings.enabled:
        raise HTTPError(404, "Importing files as tables is turned off")
    file = File(row, file_source(datasette, row))
    preview = await read_head(file, 2048)
    kind = file_kind(row.filename, row.content_type)
    if kind is None or not importable_file(row.filename, row.content_type, preview):
        raise HTTPError(400, "Only CSV and TSV files can be imported as tables")
    databases = await import_databases(datasette, request.actor)
    if not databases:
        raise HTTPError(
            403,
            "You need create-table and insert-row permission on a writable "
            "database to import files",
        )
    return file, kind, databases


async def read_head(file: File, max_bytes: int) -> bytes:
    try:
        return await file.read_bytes(max_bytes)
    except FileNotFoundError:
        raise HTTPError(404, "The file is missing from its storage") from None


async def analyse_file(file: File, kind: str, delimiter: str | None):
    data = await read_head(file, SAMPLE_BYTES + 1)
    complete = len(data) <= SAMPLE_BYTES
    try:
        return await asyncio.to_thread(
            analyse, data[:SAMPLE_BYTES], complete, kind, delimiter
        )
    except CSVFormatError as ex:
        raise HTTPError(400, f"Cannot import this file. {ex}") from None


def preview_json(datasette, file, analysis, databases) -> dict:
    return {
        "ok": True,
        "file": file_json(datasette, file._row),
        "encoding": analysis.encoding,
        "delimiter": analysis.delimiter_name,
        "columns": [{"name": c.name, "type": c.type} for c in analysis.columns],
        "sample_rows": analysis.sample_rows,
        "rows_sampled": analysis.rows_sampled,
        "databases": databases,
        "table": default_table_name(file.filename),
        "import_url": import_url(datasette, file.id) + ".json",
    }


async def render_preview(
    request, datasette, file, analysis, databases, *, error=None, status=200, form=None
) -> Response:
    form = form or {}
    return Response.html(
        await datasette.render_template(
            "files_import.html",
            {
                "file": file_json(datasette, file._row),
                "size_human": human_size(file.size),
                "source_url": files_path(datasette, "source", file.source_slug),
                "import_url": import_url(datasette, file.id),
                "analysis": analysis,
                "delimiters": DELIMITERS,
                "databases": databases,
                "database": form.get("database") or databases[0],
                "table": form.get("table", default_table_name(file.filename)),
                "error": error,
            },
            request=request,
        ),
        status=status,
    )


@html_or_json_view
async def import_view(request, datasette):
    """GET: the preview. POST: create the table and start the import."""
    if request.method == "POST":
        return await start_import(request, datasette, wants_json(request))
    return await preview_import(request, datasette, wants_json(request))


async def preview_import(request, datasette, wants_json: bool) -> Response:
    file, kind, databases = await importable(request, datasette)
    delimiter = requested_delimiter(request.args.get("delimiter"))
    analysis = await analyse_file(file, kind, delimiter)
    if wants_json:
        return Response.json(preview_json(datasette, file, analysis, databases))
    return await render_preview(request, datasette, file, analysis, databases)


async def read_form(request, wants_json: bool) -> dict:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if wants_json or content_type == "application/json":
        body = await read_json(request)
        if not isinstance(body, dict):
            raise HTTPError(400, 'Body must be {"database": ..., "table": ...}')
        return body
    if content_type not in ("application/x-www-form-urlencoded", ""):
        raise HTTPError(400, "Send the form as application/x-www-form-urlencoded")
    body = await request.post_body(MAX_FORM_BODY)
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise HTTPError(400, "The form is not valid UTF-8") from None


async def start_import(request, datasette, wants_json: bool) -> Response:
    file, kind, databases = await importable(request, datasette)
    form = await read_form(request, wants_json)
    database, table = form.get("database"), form.get("table")
    delimiter = requested_delimiter(form.get("delimiter"))
    try:
        db = await check_target(datasette, request.actor, database, table)
        refused = None
    except HTTPError as ex:
        if wants_json:
            raise
        refused = ex
    analysis = await analyse_file(file, kind, delimiter)
    if refused is None:
        assert isinstance(table, str)  # check_target refuses anything else
        try:
            await create_table(db, table, analysis.columns)
        except HTTPError as ex:
            if wants_json:
                raise
            refused = ex
    if refused is not None:
        return await render_preview(
            request,
            datasette,
            file,
            analysis,
            databases,
            error=refused.message,
            status=refused.status,
            form={"database": database, "table": table or ""},
        )
    manager = get_state(datasette).imports
    # importable() answered 404 if imports are off; check_target vetted table.
    assert manager is not None and isinstance(table, str)
    job = await manager.start(file, request.actor, db, table, analysis)
    if wants_json:
        return Response.json(
            {"ok": True, "job": job_json(datasette, job)},
            status=202,
            headers={"location": job_url(datasette, job.id)},
        )
    return Response.redirect(job_url(datasette, job.id))


# Jobs


def job_url(datasette, job_id: str) -> str:
    return files_path(datasette, "imports", job_id)


def job_json(datasette, job: ImportJob) -> dict:
    finished = job.status in (DONE, FAILED)
    fraction = None
    if job.status == DONE:
        fraction = 1.0
    elif job.bytes_total:
        fraction = min(1.0, job.bytes_read / job.bytes_total)
    return {
        "id": job.id,
        "status": job.status,
        "finished": finished,
        "file_id": job.file_id,
        "file_url": files_path(datasette, job.file_id),
        "database": job.database_name,
        "table": job.table_name,
        "table_url": (
            datasette.urls.table(job.database_name, job.table_name)
            if job.status == DONE
            else None
        ),
        "columns": [
            {"name": name, "type": type_} for name, type_ in job.options["columns"]
        ],
        "rows_imported": job.rows_imported,
        "bytes_read": job.bytes_read,
        "bytes_total": job.bytes_total,
        "progress": fraction,
        "error": job.error,
        "error_line": job.error_line,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "url": job_url(datasette, job.id),
        "json_url": job_url(datasette, job.id) + ".json",
    }


async def visible_job(request, datasette) -> ImportJob:
    """The job, if the actor started it; 404 otherwise (ids do not leak)."""
    job_id = request.url_vars["job_id"]
    manager = get_state(datasette).imports
    job = await manager.store.get(job_id) if manager else None
    if job is None or job.actor_id != actor_id(request.actor):
        raise HTTPError(404, "Import not found")
    return job


@json_view
async def job_json_view(request, datasette):
    job = await visible_job(request, datasette)
    return Response.json(
        {"ok": True, "job": job_json(datasette, job)},
        headers={"cache-control": "no-store"},
    )


@html_view
async def job_page_view(request, datasette):
    job = await visible_job(request, datasette)
    state = get_state(datasette)
    row = await state.registry.get_file(job.file_id)
    filename = None
    if row is not None and await can(datasette, request.actor, BROWSE, row.source_slug):
        filename = row.filename
    return Response.html(
        await datasette.render_template(
            "files_import_job.html",
            {
                "job": job_json(datasette, job),
                "filename": filename,
                "bytes_read_human": human_size(job.bytes_read),
                "bytes_total_human": human_size(job.bytes_total),
            },
            request=request,
        ),
        headers={"cache-control": "no-store"},
    )
