"""Import jobs in the internal database (table ``files_imports``, migration 004).

The import-job part of the registry: every SQL statement on that table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..registry import TextEnum, dataclass_from_row, first_row, utcnow_iso


class ImportStatus(TextEnum):
    """Where an import job stands (column ``status``)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


QUEUED = ImportStatus.QUEUED
RUNNING = ImportStatus.RUNNING
DONE = ImportStatus.DONE
FAILED = ImportStatus.FAILED
UNFINISHED = (QUEUED, RUNNING)


@dataclass
class ImportJob:
    id: str
    file_id: str
    database_name: str
    table_name: str
    actor_id: str | None
    status: ImportStatus
    options: dict
    rows_imported: int
    bytes_read: int
    bytes_total: int | None
    error: str | None
    error_line: int | None
    created_at: str
    finished_at: str | None

    @classmethod
    def from_row(cls, row) -> ImportJob:
        return dataclass_from_row(cls, row, "options", status=ImportStatus)


class ImportStore:
    def __init__(self, db):
        self.db = db

    async def insert(self, job: ImportJob) -> None:
        await self.db.execute_write(
            """
            INSERT INTO files_imports (id, file_id, database_name, table_name,
                actor_id, status, options, bytes_total, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                job.id,
                job.file_id,
                job.database_name,
                job.table_name,
                job.actor_id,
                job.status,
                json.dumps(job.options),
                job.bytes_total,
                job.created_at,
            ],
        )

    async def get(self, job_id: str) -> ImportJob | None:
        return await first_row(
            self.db, ImportJob, "SELECT * FROM files_imports WHERE id = ?", [job_id]
        )

    async def unfinished(self) -> list[ImportJob]:
        rows = await self.db.execute(
            "SELECT * FROM files_imports WHERE status IN (?, ?)", list(UNFINISHED)
        )
        return [ImportJob.from_row(row) for row in rows]

    async def mark_running(self, job_id: str) -> None:
        await self.db.execute_write(
            "UPDATE files_imports SET status = ? WHERE id = ? AND status = ?",
            [RUNNING, job_id, QUEUED],
        )

    async def progress(self, job_id: str, rows: int, bytes_read: int) -> None:
        await self.db.execute_write(
            "UPDATE files_imports SET rows_imported = ?, bytes_read = ? WHERE id = ?",
            [rows, bytes_read, job_id],
        )

    async def finish(self, job_id: str, rows: int, bytes_read: int) -> None:
        await self.db.execute_write(
            "UPDATE files_imports SET status = ?, rows_imported = ?, bytes_read = ?, "
            "finished_at = ? WHERE id = ?",
            [DONE, rows, bytes_read, utcnow_iso(), job_id],
        )

    async def fail(self, job_id: str, error: str, line: int | None) -> None:
        await self.db.execute_write(
            "UPDATE files_imports SET status = ?, error = ?, error_line = ?, "
            "finished_at = ? WHERE id = ?",
            [FAILED, error, line, utcnow_iso(), job_id],
        )
