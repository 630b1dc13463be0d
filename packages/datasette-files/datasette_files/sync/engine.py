"""The sync engine: register the objects a source already holds.

The storage is listed one page at a time (``list_files(prefix, cursor,
limit)``); each page becomes one ``Batch`` of new, changed, missing and
unchanged files, written with its checkpoint in one transaction
(``store.SyncStore.apply``). Memory holds one page, whatever the size of the
source.

Missing files are found without remembering what was seen: storages list in
path order (filesystem and S3 do), so a registered path that falls between
two listed paths, or after the last one, is gone. A storage that lists out of
order is detected; missing files are then not reported, and not pruned.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..base import FileMetadata
from ..filenames import guess_content_type
from ..uploads import new_file_id
from .owners import is_stale
from .pages import ExistingFile, NewFile
from .rows import has_changed, new_file_ids, object_stamp, registry_time
from .sniff import sniff_content_type
from .store import (
    FINISHED,
    INTERRUPTED,
    RUNNING,
    Batch,
    SyncJob,
    SyncStatus,
    SyncStore,
)

log = logging.getLogger("datasette_files")

# Objects asked for per listing page, and so written per transaction. S3
# lists at most 1,000 per page; a filesystem page this big costs a few MB and
# makes fewer, larger transactions (each one commits and fsyncs).
PAGE_SIZE = 5000
FIRST_PAGE_SIZE = 500
MAX_PAGE_SIZE = 10_000
SNIFF_BYTES = 512
FILE_READS_AT_ONCE = 8


@dataclass
class SyncOptions:
    prefix: str = ""
    prune: bool = False
    dry_run: bool = False
    page_size: int = PAGE_SIZE


@dataclass
class SyncProgress:
    """What a sync has done so far: the job row's counters, live."""

    source_slug: str
    job_id: str | None = None
    resumed: bool = False
    status: SyncStatus = RUNNING
    listing_done: bool = False
    ordered: bool = True
    error: str | None = None
    seen: int = 0
    registered: int = 0
    updated: int = 0
    skipped: int = 0
    missing: int = 0
    removed: int = 0
    started: float = field(default_factory=time.monotonic)
    # Paths of missing files, reported (up to a bound) when not pruning.
    missing_paths: list[str] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.seen / self.elapsed if self.elapsed > 0 else 0.0

    def as_json(self) -> dict:
        return {
            "source": self.source_slug,
            "job_id": self.job_id,
            "status": self.status,
            "resumed": self.resumed,
            "listing_done": self.listing_done,
            "seen": self.seen,
            "registered": self.registered,
            "updated": self.updated,
            "skipped": self.skipped,
            "missing": self.missing if self.ordered else None,
            "removed": self.removed,
            "missing_paths": self.missing_paths,
            "elapsed": round(self.elapsed, 3),
            "error": self.error,
        }

    def load(self, job: SyncJob) -> None:
        for key, value in job.counters().items():
            setattr(self, key, value)
        self.listing_done = job.listing_done
        self.ordered = job.ordered


def page_sizes(largest: int):
    """FIRST_PAGE_SIZE, doubled page after page up to ``largest``."""
    size = min(FIRST_PAGE_SIZE, largest)
    while True:
        yield size
        size = min(size * 2, largest)


MISSING_PATHS_REPORTED = 100
ProgressCallback = Callable[[SyncProgress], None]


class SyncEngine:
    """One sync of one source."""

    def __init__(
        self,
        store: SyncStore,
        source_slug: str,
        storage,
        options: SyncOptions,
        *,
        owner: str,
        actor_id: str | None = None,
        on_progress: ProgressCallback | None = None,
        after_batch: Callable[[], Awaitable[None] | None] | None = None,
        alive_here: Callable[[str], bool] | None = None,
        on_finish: Callable[[SyncProgress], Awaitable[None]] | None = None,
    ):
        self.store = store
        self.slug = source_slug
        self.storage = storage
        self.options = options
        self.owner = owner
        self.actor_id = actor_id
        self.on_progress = on_progress
        self.after_batch = after_batch
        self.alive_here = alive_here
        # Told once a sync has finished (not when stopped): sends the event.
        self.on_finish = on_finish
        self.progress = SyncProgress(source_slug)
        self.stopping = asyncio.Event()
        # Reads of single files (sniffing, looking one up again), a few at once.
        self._file_reads = asyncio.Semaphore(FILE_READS_AT_ONCE)

    def stop(self) -> None:
        """Stop after the batch being written (Ctrl-C, shutdown)."""
        self.stopping.set()

    async def claim(self) -> SyncJob | None:
        """Take the job row (``SyncRunning`` if another sync runs)."""
        if self.options.dry_run:
            return None
        job, resumed = await self.store.claim(
            self.slug,
            self.options.prefix,
            self.options.prune,
            self.owner,
            self.actor_id,
            "sync-" + new_file_id()[1],
            lambda job: is_stale(job, self.alive_here),
        )
        self.progress.job_id = job.id
        self.progress.resumed = resumed
        self.progress.load(job)
        self._job = job
        return job

    async def run(self) -> SyncProgress:
        """Run to the end (or ``stop()``); returns the final progress."""
        job = getattr(self, "_job", None)
        if job is None and not self.options.dry_run:
            job = await self.claim()
        try:
            await self._run(job)
        except BaseException as ex:
            self.progress.status = INTERRUPTED
            if not isinstance(ex, (asyncio.CancelledError, KeyboardInterrupt)):
                self.progress.error = f"{type(ex).__name__}: {ex}"
            if job is not None:
                await asyncio.shield(
                    self.store.finish(
                        job.id, self.owner, INTERRUPTED, self.progress.error
                    )
                )
            self._report()
            raise
        return self.progress

    async def _run(self, job: SyncJob | None) -> None:
        cursor = job.cursor if job else None
        last_path = job.last_path if job else None
        listing_done = job.listing_done if job else False
        excluded = await self._excluded_paths()
        excluded |= await self.store.pending_paths(self.slug)
        prefix = self.options.prefix
        page_size = self.options.page_size
        # Pages start small and double: the first write starts early and
        # overlaps the listing; later pages are big, so fewer transactions.
        sizes = page_sizes(page_size)
        listing = writing = None
        if not listing_done:
            listing = asyncio.ensure_future(
                self.storage.list_files(prefix, cursor, next(sizes))
            )
        try:
            # Three stages overlap: page N+2 is listed and page N+1 compared
            # with the registry while page N is written. Writes stay in
            # order, so each checkpoint covers every page before it.
            while not listing_done and listing is not None:
                files, next_cursor = await listing
                listing = None
                if next_cursor is not None and not self.stopping.is_set():
                    listing = asyncio.ensure_future(
                        self.storage.list_files(prefix, next_cursor, next(sizes))
                    )
                batch = await self._page(files, last_path, excluded)
                batch.cursor = next_cursor
                batch.listing_done = next_cursor is None
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(self._apply(job, batch))
                last_path, listing_done = batch.last_path, batch.listing_done
                if self.stopping.is_set():
                    await writing
                    writing = None
                    return await self._stop(job)
            if writing is not None:
                await writing
                writing = None
            while self.progress.ordered:
                gone = await self.store.existing_after(
                    self.slug, prefix, last_path, page_size
                )
                if not gone:
                    break
                batch = await self._missing_batch(gone)
                await self._apply(job, batch)
                last_path = batch.last_path
                if self.stopping.is_set():
                    return await self._stop(job)
        finally:
            for task in (listing, writing):
                if task is not None:
                    # A write already sent still commits whole: the
                    # checkpoint then simply includes it.
                    task.cancel()
        self.progress.status = FINISHED
        if job is not None:
            await self.store.finish(job.id, self.owner, FINISHED)
        self._report()
        if job is not None and self.on_finish is not None:
            await self.on_finish(self.progress)

    async def _stop(self, job: SyncJob | None) -> None:
        self.progress.status = INTERRUPTED
        if job is not None:
            await self.store.finish(job.id, self.owner, INTERRUPTED)
        self._report()

    async def _excluded_paths(self) -> set[str]:
        """Partial uploads the backend holds: never registered."""
        try:
            unfinished = await self.storage.list_unfinished_uploads()
        except NotImplementedError:
            return set()
        return {item["path"] for item in unfinished if "path" in item}

    async def _page(
        self, files: list[FileMetadata], last_path: str | None, excluded: set[str]
    ) -> Batch:
        prefix = self.options.prefix
        listed = [
            f
            for f in files
            if f.path
            and f.path.startswith(prefix)
            and not f.path.endswith("/")
            and f.path not in excluded
        ]
        batch = Batch(
            last_path=last_path,
            listing_done=False,
            ordered=self.progress.ordered,
            seen=len(files),
            skipped=len(files) - len(listed),
        )
        if not listed:
            return batch
        paths = [f.path for f in listed]
        if batch.ordered and not (
            all(a < b for a, b in zip(paths, paths[1:], strict=False))
            and (last_path is None or paths[0] > last_path)
        ):
            log.warning(
                "datasette-files: source %s lists out of path order; missing "
                "files will not be reported or pruned",
                self.slug,
            )
            batch.ordered = self.progress.ordered = False
        missing_range = None
        if batch.ordered:
            # The range ends at the page's last object, counting those left
            # out of the comparison (a pending upload's): one the storage
            # lists is not gone, even if it was registered meanwhile.
            end = max(
                paths[-1], files[-1].path if files[-1].path.startswith(prefix) else ""
            )
            missing_range = (prefix, last_path, end)
            batch.last_path = end
        to_check, gone = await self.store.compare_page(self.slug, listed, missing_range)
        if len(listed) < len(files):
            present = {f.path for f in files}
            gone = [e for e in gone if e.path not in present]
        # What the registry matched and SQLite found unchanged.
        batch.skipped += len(listed) - len(to_check)
        needs_type = []
        ids = iter(new_file_ids(sum(current is None for _, current in to_check)))
        for f, current in to_check:
            if current is None:
                new = NewFile(
                    id=next(ids),
                    path=f.path,
                    filename=f.path.rsplit("/", 1)[-1],
                    # The storage's type if it gave one, else from the name.
                    content_type=f.content_type or guess_content_type(f.path),
                    size=f.size,
                    created_at=registry_time(f.created_at),
                    metadata={"object": object_stamp(f)},
                )
                batch.new.append(new)
                if new.content_type is None:
                    needs_type.append(new)
                continue
            changed = has_changed(current, f)
            if changed is False:
                batch.skipped += 1
                continue
            metadata = {**current.metadata, "object": object_stamp(f)}
            if changed:
                batch.changed.append((current.id, f.size, None, metadata))
            else:
                batch.stamped.append((current.id, metadata))
                batch.skipped += 1
        if batch.ordered:
            await self._missing(batch, gone)
        if needs_type and not self.options.dry_run:
            await asyncio.gather(*(self._sniff(new) for new in needs_type))
        return batch

    async def _missing(self, batch: Batch, gone: list[ExistingFile]) -> None:
        if self.options.prune and gone:
            # An upload completed after its place in the listing went by is
            # registered but was never listed: look again before removing.
            still_gone = await asyncio.gather(*(self._gone(e.path) for e in gone))
            gone = [e for e, really in zip(gone, still_gone, strict=True) if really]
        batch.missing += len(gone)
        if self.options.prune:
            batch.removed.extend(e.id for e in gone)
        room = MISSING_PATHS_REPORTED - len(self.progress.missing_paths)
        self.progress.missing_paths.extend(e.path for e in gone[: max(room, 0)])

    async def _missing_batch(self, gone: list[ExistingFile]) -> Batch:
        batch = Batch(
            last_path=gone[-1].path,
            listing_done=True,
            ordered=True,
        )
        await self._missing(batch, gone)
        return batch

    async def _gone(self, path: str) -> bool:
        """Whether the storage has no object at ``path`` (asked again)."""
        async with self._file_reads:
            try:
                return await self.storage.get_file_metadata(path) is None
            except Exception as ex:  # noqa: BLE001 - not known gone: kept
                log.info("datasette-files: could not look up %s: %s", path, ex)
                return False

    async def _sniff(self, new: NewFile) -> None:
        async with self._file_reads:
            try:
                head = await self.storage.read_bytes(new.path, SNIFF_BYTES)
            except Exception as ex:  # noqa: BLE001 - the type stays unknown
                log.info("datasette-files: could not sniff %s: %s", new.path, ex)
                return
        new.content_type = sniff_content_type(head)

    async def _apply(self, job: SyncJob | None, batch: Batch) -> None:
        progress = self.progress
        if job is None:
            # A dry run: count what would happen, write nothing.
            registered, updated = len(batch.new), len(batch.changed)
            removed = len(batch.removed)
        else:
            registered, updated, removed = await self.store.apply(
                job.id, self.owner, self.slug, batch
            )
        progress.seen += batch.seen
        progress.registered += registered
        progress.updated += updated
        progress.skipped += batch.skipped + len(batch.new) - registered
        progress.missing += batch.missing
        progress.removed += removed
        progress.ordered = batch.ordered
        progress.listing_done = batch.listing_done
        self._report()
        if (registered or updated) and self.after_batch is not None:
            result = self.after_batch()
            if asyncio.iscoroutine(result):
                await result

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress)
