"""Sync jobs and the registry writes of a sync, in the internal database.

Every batch of a sync is one write transaction: the new rows, the updated
rows, the pruned rows and the job's checkpoint (listing cursor, last path,
counters) commit together or not at all. A sync killed at any moment so
resumes from a checkpoint that matches the registry exactly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from ..base import FileMetadata
from ..registry import TextEnum, first_row, utcnow_iso
from .pages import ExistingFile, NewFile, compare, insert_new


class SyncStatus(TextEnum):
    """Where a sync job stands (column ``status``)."""

    RUNNING = "running"  # one per source at most (a partial unique index)
    FINISHED = "finished"
    INTERRUPTED = "interrupted"  # stopped or its process died: resumable
    FAILED = "failed"


RUNNING = SyncStatus.RUNNING
FINISHED = SyncStatus.FINISHED
INTERRUPTED = SyncStatus.INTERRUPTED
FAILED = SyncStatus.FAILED
COUNTERS = ("seen", "registered", "updated", "skipped", "missing", "removed")


class SyncRunning(Exception):
    """Another sync of this source is running; ``job`` is that sync."""

    def __init__(self, job: SyncJob):
        super().__init__(f"A sync of source '{job.source_slug}' is already running")
        self.job = job


class SyncLost(Exception):
    """Another process took this sync over (it looked dead): stop writing."""


@dataclass
class SyncJob:
    id: str
    source_slug: str
    prefix: str
    prune: bool
    status: SyncStatus
    owner: str | None
    actor_id: str | None
    cursor: str | None
    last_path: str | None
    listing_done: bool
    ordered: bool
    seen: int
    registered: int
    updated: int
    skipped: int
    missing: int
    removed: int
    error: str | None
    heartbeat_at: float | None
    created_at: str
    finished_at: str | None

    @classmethod
    def from_row(cls, row) -> SyncJob:
        values = dict(row)
        for key in ("prune", "listing_done", "ordered"):
            values[key] = bool(values[key])
        values["status"] = SyncStatus(values["status"])
        return cls(**{f.name: values[f.name] for f in fields(cls)})

    def counters(self) -> dict[str, int]:
        return {key: getattr(self, key) for key in COUNTERS}


@dataclass
class Batch:
    """What one page of the listing changes, and the checkpoint after it."""

    last_path: str | None
    listing_done: bool
    ordered: bool
    cursor: str | None = None
    new: list[NewFile] = field(default_factory=list)
    # (id, size, content_type or None to keep, metadata): content changed.
    changed: list[tuple[str, int | None, str | None, dict]] = field(
        default_factory=list
    )
    # (id, metadata): same content, stamp recorded for the first time.
    stamped: list[tuple[str, dict]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    seen: int = 0
    skipped: int = 0
    missing: int = 0


def prefix_bound(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix``."""
    if not prefix:
        return None
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class SyncStore:
    """Queries of the sync: jobs, and the batch writes to ``files_files``."""

    def __init__(self, db):
        self.db = db

    # Jobs

    async def claim(
        self,
        source_slug: str,
        prefix: str,
        prune: bool,
        owner: str,
        actor_id: str | None,
        job_id: str,
        is_stale: Callable[[SyncJob], bool],
    ) -> tuple[SyncJob, bool]:
        """Start a sync, or resume one that was interrupted or whose process
        died; ``(job, resumed)``. Raises ``SyncRunning`` if a live sync of
        the source is under way (here or in another process)."""

        def run(conn):
            now = utcnow_iso()
            with conn:
                row = conn.execute(
                    "SELECT * FROM files_sync_jobs WHERE source_slug = ? "
                    "AND status = ?",
                    [source_slug, RUNNING],
                ).fetchone()
                candidate = None
                if row is not None:
                    running = SyncJob.from_row(row)
                    if not is_stale(running):
                        raise SyncRunning(running)
                    candidate = running
                else:
                    row = conn.execute(
                        "SELECT * FROM files_sync_jobs WHERE source_slug = ? "
                        "AND status = ? ORDER BY created_at DESC LIMIT 1",
                        [source_slug, INTERRUPTED],
                    ).fetchone()
                    candidate = SyncJob.from_row(row) if row else None
                if candidate is not None:
                    if candidate.prefix == prefix and candidate.prune == prune:
                        conn.execute(
                            "UPDATE files_sync_jobs SET status = ?, "
                            "owner = ?, heartbeat_at = ?, "
                            "error = NULL WHERE id = ?",
                            [RUNNING, owner, time.time(), candidate.id],
                        )
                        return candidate.id, True
                    # A different sync was asked for: that one is abandoned.
                    conn.execute(
                        "UPDATE files_sync_jobs SET status = ?, error = ?, "
                        "finished_at = ? WHERE id = ?",
                        [
                            FAILED,
                            "Abandoned: a sync with other options started",
                            now,
                            candidate.id,
                        ],
                    )
                conn.execute(
                    "INSERT INTO files_sync_jobs (id, source_slug, prefix, prune, "
                    "status, owner, actor_id, heartbeat_at, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        job_id,
                        source_slug,
                        prefix,
                        int(prune),
                        RUNNING,
                        owner,
                        actor_id,
                        time.time(),
                        now,
                    ],
                )
                return job_id, False

        claimed_id, resumed = await self.db.execute_write_fn(run)
        job = await self.get(claimed_id)
        if job is None:
            raise RuntimeError(f"sync job {claimed_id} vanished as it was claimed")
        return job, resumed

    async def get(self, job_id: str) -> SyncJob | None:
        return await first_row(
            self.db, SyncJob, "SELECT * FROM files_sync_jobs WHERE id = ?", [job_id]
        )

    async def latest(self, source_slug: str) -> SyncJob | None:
        return await first_row(
            self.db,
            SyncJob,
            "SELECT * FROM files_sync_jobs WHERE source_slug = ? "
            "ORDER BY (status = ?) DESC, created_at DESC LIMIT 1",
            [source_slug, RUNNING],
        )

    async def finish(
        self, job_id: str, owner: str, status: SyncStatus, error: str | None = None
    ) -> None:
        await self.db.execute_write(
            "UPDATE files_sync_jobs SET status = ?, error = ?, finished_at = ?, "
            "heartbeat_at = ? WHERE id = ? AND owner = ? AND status = ?",
            [status, error, utcnow_iso(), time.time(), job_id, owner, RUNNING],
        )

    async def running_owned_by(self, owner_prefix: str) -> list[SyncJob]:
        rows = await self.db.execute(
            "SELECT * FROM files_sync_jobs WHERE status = ? AND owner LIKE ? || '%'",
            [RUNNING, owner_prefix],
        )
        return [SyncJob.from_row(row) for row in rows]

    # The registry, one page at a time

    async def compare_page(
        self,
        source_slug: str,
        listed: list[FileMetadata],
        missing_range: tuple[str, str | None, str] | None,
    ) -> tuple[list[tuple[FileMetadata, ExistingFile | None]], list[ExistingFile]]:
        """See ``pages.compare``."""
        return await self.db.execute_fn(
            lambda conn: compare(conn, source_slug, listed, missing_range)
        )

    async def existing_after(
        self, source_slug: str, prefix: str, after: str | None, limit: int
    ) -> list[ExistingFile]:
        """Registered files after the end of the listing: all missing."""
        # One lower bound (``after`` is under the prefix when given), so that
        # SQLite seeks to it instead of scanning from the prefix.
        if after is None:
            sql = "SELECT id, path FROM files_files WHERE source_slug = ? AND path >= ?"
            params: list = [source_slug, prefix]
        else:
            sql = "SELECT id, path FROM files_files WHERE source_slug = ? AND path > ?"
            params = [source_slug, after]
        bound = prefix_bound(prefix)
        if bound is not None:
            sql += " AND path < ?"
            params.append(bound)
        params.append(limit)
        rows = await self.db.execute(sql + " ORDER BY path LIMIT ?", params)
        return [
            ExistingFile(file_id, path, None, "{}")
            for file_id, path in rows
            if path.startswith(prefix)
        ]

    async def pending_paths(self, source_slug: str) -> set[str]:
        rows = await self.db.execute(
            "SELECT path FROM files_pending WHERE source_slug = ?", [source_slug]
        )
        return {row[0] for row in rows}

    async def apply(
        self, job_id: str, owner: str, source_slug: str, batch: Batch
    ) -> tuple[int, int, int]:
        """Write one batch and its checkpoint: ``(registered, updated,
        removed)``.

        New rows skip paths that another sync registered meanwhile
        (``ON CONFLICT DO NOTHING`` on the unique (source, path)) and paths
        a pending upload owns (its complete will register them): see
        ``pages.insert_new``.
        """

        def run(conn):
            with conn:
                registered = insert_new(conn, source_slug, batch.new)
                updated = 0
                for file_id, size, content_type, metadata in batch.changed:
                    cursor = conn.execute(
                        "UPDATE files_files SET size = ?, "
                        "content_type = coalesce(?, content_type), "
                        "content_hash = NULL, width = NULL, height = NULL, "
                        "metadata = ? WHERE id = ?",
                        [size, content_type, json.dumps(metadata), file_id],
                    )
                    updated += cursor.rowcount
                    conn.execute(
                        "DELETE FROM files_thumbnails WHERE file_id = ?", [file_id]
                    )
                conn.executemany(
                    "UPDATE files_files SET metadata = ? WHERE id = ?",
                    [(json.dumps(metadata), fid) for fid, metadata in batch.stamped],
                )
                removed = 0
                if batch.removed:
                    cursor = conn.executemany(
                        "DELETE FROM files_files WHERE id = ?",
                        [(file_id,) for file_id in batch.removed],
                    )
                    removed = cursor.rowcount
                cursor = conn.execute(
                    """
                    UPDATE files_sync_jobs SET cursor = ?, last_path = ?,
                        listing_done = ?, ordered = ?,
                        seen = seen + ?, registered = registered + ?,
                        updated = updated + ?, skipped = skipped + ?,
                        missing = missing + ?, removed = removed + ?,
                        heartbeat_at = ?
                    WHERE id = ? AND owner = ? AND status = ?
                    """,
                    [
                        batch.cursor,
                        batch.last_path,
                        int(batch.listing_done),
                        int(batch.ordered),
                        batch.seen,
                        registered,
                        updated,
                        # Paths registered by someone else meanwhile.
                        batch.skipped + len(batch.new) - registered,
                        batch.missing,
                        removed,
                        time.time(),
                        job_id,
                        owner,
                        RUNNING,
                    ],
                )
                if cursor.rowcount != 1:
                    raise SyncLost(job_id)
                return registered, updated, removed

        return await self.db.execute_write_fn(run)
