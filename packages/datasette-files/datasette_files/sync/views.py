"""``/-/files/source/{slug}/-/sync``: start a sync (POST), follow it (GET)."""

from __future__ import annotations

from datasette import Response

from ..errors import HTTPError
from ..permissions import SYNC, can
from ..state import get_state
from ..views.common import (
    files_path,
    json_view,
    read_json,
    source_or_404,
)
from .engine import SyncOptions
from .owners import is_stale
from .store import INTERRUPTED, RUNNING, SyncJob, SyncRunning


def sync_url(datasette, slug: str) -> str:
    return files_path(datasette, "source", slug) + "/-/sync"


def job_json(datasette, job: SyncJob | None, live=None) -> dict | None:
    if job is None:
        return None
    data = {
        "id": job.id,
        "source": job.source_slug,
        "status": job.status,
        "finished": job.status != RUNNING,
        "prefix": job.prefix,
        "prune": job.prune,
        "listing_done": job.listing_done,
        **job.counters(),
        "error": job.error,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "url": sync_url(datasette, job.source_slug),
    }
    if not job.ordered:
        data["missing"] = None
    if live is not None and live.job_id == job.id:
        data["rate"] = round(live.rate, 1)
        data["missing_paths"] = live.missing_paths
    return data


async def allowed_source(request, datasette):
    slug = request.url_vars["slug"]
    if not await can(datasette, request.actor, SYNC, slug):
        raise HTTPError(403, f"You may not sync source '{slug}'")
    return source_or_404(datasette, slug)


def read_options(body: object) -> SyncOptions:
    if body is None or body == {}:
        return SyncOptions()
    if not isinstance(body, dict):
        raise HTTPError(400, "Body must be a JSON object")
    unknown = set(body) - {"prune", "prefix"}
    if unknown:
        raise HTTPError(400, f"Unknown key '{sorted(unknown)[0]}'")
    prune = body.get("prune", False)
    prefix = body.get("prefix", "")
    if not isinstance(prune, bool):
        raise HTTPError(400, "'prune' must be true or false")
    if not isinstance(prefix, str) or len(prefix) > 1024 or "\x00" in prefix:
        raise HTTPError(400, "'prefix' must be a path prefix string")
    return SyncOptions(prune=prune, prefix=prefix)


@json_view
async def sync_view(request, datasette):
    source = await allowed_source(request, datasette)
    jobs = get_state(datasette).syncs
    if jobs is None:
        raise RuntimeError("datasette-files: sync jobs have not started")
    if request.method == "POST":
        body = await read_json(request) if await has_body(request) else None
        options = read_options(body)
        storage = await source.ensure_ready()
        try:
            job = await jobs.start(source, storage, options, request.actor)
        except SyncRunning as ex:
            raise HTTPError(
                409, str(ex), {"job_url": sync_url(datasette, ex.job.source_slug)}
            ) from None
        return Response.json(
            {"ok": True, "job": job_json(datasette, job, jobs.progress(source.slug))},
            status=202,
        )
    job = await jobs.store.latest(source.slug)
    if job is not None and job.status == RUNNING and is_stale(job, jobs.runs_here):
        # Its process is gone (a crash, a killed command): the next sync
        # resumes it; until then it is not running.
        job.status = INTERRUPTED
        job.error = "The process running this sync stopped; sync again to resume"
    return Response.json(
        {"ok": True, "job": job_json(datasette, job, jobs.progress(source.slug))},
        headers={"cache-control": "no-store"},
    )


async def has_body(request) -> bool:
    length = request.headers.get("content-length")
    return length is None or length != "0"
