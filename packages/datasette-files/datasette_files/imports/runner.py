"""Background imports: stream the file, parse it in a worker thread, insert in batches.

The worker thread pulls chunks from the storage stream (an async iterator on
the event loop) one at a time and hands batches of rows back to the loop for
``db.execute_write_fn``, with at most one batch being written while the next
is parsed. So memory holds one chunk, one line and two batches, whatever the
size of the file, and parsing never blocks the event loop.

A failed import drops the table it created: nothing half-imported remains.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from ulid import ULID

from ..events import FileImportEvent, send_file_event
from ..permissions import actor_id
from ..registry import utcnow_iso
from .csvstream import Column, CSVFormatError, LineReader, read_records
from .settings import ImportSettings
from .store import QUEUED, ImportJob, ImportStore
from .targets import drop_table, insert_sql, numeric_indexes

log = logging.getLogger("datasette_files")

MAX_BATCH_ROWS = 1000
MAX_BATCH_CELLS = 100_000
MAX_BATCH_CHARS = 8 * 1024 * 1024
PROGRESS_EVERY = 0.25  # seconds between progress writes to the internal DB
RESTART_ERROR = "Interrupted: Datasette restarted before the import finished"
SHUTDOWN_ERROR = "Interrupted: Datasette shut down before the import finished"


class ImportCancelled(Exception):
    pass


def new_job_id() -> str:
    return f"imp-{str(ULID()).lower()}"


class ImportManager:
    """Starts, runs and recovers import jobs for one Datasette."""

    def __init__(self, datasette, store: ImportStore, settings: ImportSettings):
        self.datasette = datasette
        self.store = store
        self.settings = settings
        self.executor = ThreadPoolExecutor(
            max_workers=settings.max_concurrent,
            thread_name_prefix="datasette-files-import",
        )
        self.stopping = threading.Event()
        self.tasks: set[asyncio.Task] = set()

    async def recover(self) -> None:
        """Jobs a restart interrupted: mark them failed and drop their tables."""
        for job in await self.store.unfinished():
            await self.store.fail(job.id, RESTART_ERROR, None)
            db = self.datasette.databases.get(job.database_name)
            if db is not None and db.is_mutable:
                try:
                    await drop_table(db, job.table_name)
                except Exception as ex:  # noqa: BLE001 - keep recovering the others
                    log.warning(
                        "datasette-files: could not drop %s.%s of import %s: %s",
                        job.database_name,
                        job.table_name,
                        job.id,
                        ex,
                    )

    async def start(self, file, actor, db, table: str, analysis) -> ImportJob:
        """Record a job for a table that has just been created, and run it."""
        job = ImportJob(
            id=new_job_id(),
            file_id=file.id,
            database_name=db.name,
            table_name=table,
            actor_id=actor_id(actor),
            status=QUEUED,
            options={
                "encoding": analysis.encoding,
                "delimiter": analysis.delimiter,
                "columns": [[c.name, c.type] for c in analysis.columns],
            },
            rows_imported=0,
            bytes_read=0,
            bytes_total=file.size,
            error=None,
            error_line=None,
            created_at=utcnow_iso(),
            finished_at=None,
        )
        await self.store.insert(job)
        task = asyncio.get_running_loop().create_task(self._run(job, file, actor, db))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return job

    async def _run(self, job: ImportJob, file, actor, db) -> None:
        loop = asyncio.get_running_loop()
        worker = ImportWorker(self, job, db, loop)
        try:
            async with file.open() as chunks:
                worker.chunks = chunks
                await loop.run_in_executor(self.executor, worker.run)
            await self.store.finish(job.id, worker.rows, worker.bytes_read)
        except asyncio.CancelledError:
            # The loop is going away; the startup recovery finishes the job off.
            worker.cancelled.set()
            raise
        except CSVFormatError as ex:
            error, line = str(ex), ex.line
        except ImportCancelled:
            error, line = SHUTDOWN_ERROR, None
        except Exception as ex:  # noqa: BLE001 - reported on the job page
            log.warning("datasette-files: import %s failed: %s", job.id, ex)
            error, line = f"Import failed: {ex}", None
        else:
            await send_file_event(
                self.datasette,
                FileImportEvent,
                actor,
                file,
                database=job.database_name,
                table=job.table_name,
                rows=worker.rows,
            )
            return
        await self._fail(job, db, error, line)

    async def _fail(self, job: ImportJob, db, error: str, line: int | None) -> None:
        try:
            await drop_table(db, job.table_name)
        except Exception as ex:  # noqa: BLE001 - still record the failure
            log.warning("datasette-files: could not drop %s: %s", job.table_name, ex)
        await self.store.fail(job.id, error, line)

    async def close(self) -> None:
        """Stop running imports (marked failed, tables dropped) and the threads."""
        self.stopping.set()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=10)
        self.executor.shutdown(wait=False, cancel_futures=True)


class ImportWorker:
    """One import, run in a worker thread; talks to the event loop by futures."""

    def __init__(self, manager: ImportManager, job: ImportJob, db, loop):
        self.manager = manager
        self.store = manager.store
        self.job = job
        self.db = db
        self.loop = loop
        self.chunks: AsyncIterator[bytes] | None = None
        self.columns = [Column(name, type_) for name, type_ in job.options["columns"]]
        self.cancelled = threading.Event()
        self.rows = 0
        self.bytes_read = 0
        self.last_progress = 0.0

    # Calls onto the event loop

    def _stopped(self) -> bool:
        # A loop that stopped without a shutdown would never answer: give up
        # rather than keep the process from exiting.
        return (
            self.manager.stopping.is_set()
            or self.cancelled.is_set()
            or self.loop.is_closed()
            or not self.loop.is_running()
        )

    def _wait(self, future: concurrent.futures.Future):
        while True:
            try:
                return future.result(timeout=0.5)
            except concurrent.futures.TimeoutError:
                if self._stopped():
                    future.cancel()
                    raise ImportCancelled() from None

    def _submit(self, coroutine) -> concurrent.futures.Future:
        if self._stopped():
            coroutine.close()
            raise ImportCancelled()
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def _call(self, coroutine):
        return self._wait(self._submit(coroutine))

    async def _next_chunk(self):
        assert self.chunks is not None  # set before the worker starts
        try:
            return await self.chunks.__anext__()
        except StopAsyncIteration:
            return None

    def _read_chunks(self):
        while (chunk := self._call(self._next_chunk())) is not None:
            if chunk:
                yield chunk

    async def _write(self, batch: list, rows: int, bytes_read: int) -> None:
        sql = insert_sql(self.job.table_name, self.columns)

        def run(conn):
            conn.executemany(sql, batch)

        await self.db.execute_write_fn(run)
        now = time.monotonic()
        if now - self.last_progress >= PROGRESS_EVERY:
            self.last_progress = now
            await self.store.progress(self.job.id, rows, bytes_read)

    # The import

    def run(self) -> None:
        self._call(self.store.mark_running(self.job.id))
        width = len(self.columns)
        numeric = numeric_indexes(self.columns)
        max_rows = max(1, min(MAX_BATCH_ROWS, MAX_BATCH_CELLS // max(width, 1)))
        lines = LineReader(self._read_chunks(), self.job.options["encoding"])
        records = read_records(lines, self.job.options["delimiter"])
        header_seen = False
        batch: list = []
        batch_chars = lines.chars_out
        writing = None
        for line, record in records:
            if not record:
                continue  # a blank line
            if not header_seen:
                header_seen = True  # the columns come from the preview's analysis
                continue
            found = len(record)
            if found != width:
                if found > width:
                    raise CSVFormatError(
                        f"found {found} fields, but the header has {width}", line
                    )
                record.extend([None] * (width - found))
            for i in numeric:
                value = record[i]
                if not value or value.isspace():
                    record[i] = None
            batch.append(record)
            if (
                len(batch) >= max_rows
                or lines.chars_out - batch_chars > MAX_BATCH_CHARS
            ):
                writing = self._flush(batch, writing, lines)
                batch, batch_chars = [], lines.chars_out
        writing = self._flush(batch, writing, lines)
        if writing is not None:
            self._wait(writing)
        self.bytes_read = lines.bytes_read

    def _flush(self, batch, writing, lines):
        """Wait for the batch being written, then start writing this one."""
        if writing is not None:
            self._wait(writing)
        if not batch:
            return None
        self.rows += len(batch)
        self.bytes_read = lines.bytes_read
        return self._submit(self._write(batch, self.rows, self.bytes_read))
