"""sha256 of files that were registered without one: direct uploads whose
backend gave none, and proxied uploads larger than ``inline_hash_max_size``.

Complete must not wait for a read of a possibly huge object, so the hash is
computed afterwards by a background task reading the stored bytes as a
stream, hashing each chunk in a worker thread. Files whose task was
interrupted (a restart) are picked up again by the periodic sweep.

Hashes are recorded as ``sha256:<hex>``, the format of datasette-files 0.1a3.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .state import FilesState

log = logging.getLogger("datasette_files")

MAX_CONCURRENT_HASHES = 2
SWEEP_BATCH = 20
STREAM_BATCH = 4 * 1024 * 1024
SHA256_PREFIX = "sha256:"
BARE_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def recorded_hash(value: str | None) -> str | None:
    """A hash as the registry records it: ``sha256:<lowercase hex>``.

    A storage may report a sha256 as bare hex; that gets the prefix.
    Anything else is kept as the storage gave it.
    """
    if not value:
        return None
    hex_digest = value.removeprefix(SHA256_PREFIX)
    if BARE_SHA256.fullmatch(hex_digest):
        return SHA256_PREFIX + hex_digest.lower()
    return value


class StreamHasher:
    """The sha256 of chunks as they stream past, without slowing the stream.

    Chunks are hashed in batches of about ``batch_bytes`` by a worker thread
    (hashlib releases the GIL), no copy made; at most two batches are
    referenced at once.
    """

    def __init__(self, batch_bytes: int = STREAM_BATCH):
        self.batch_bytes = batch_bytes
        self._hash = hashlib.sha256()
        self._batch: list[bytes] = []
        self._batched = 0
        self._running = None

    async def add(self, chunk: bytes) -> None:
        self._batch.append(chunk)
        self._batched += len(chunk)
        if self._batched >= self.batch_bytes:
            if self._running is not None:
                await self._running
            self._running = asyncio.get_running_loop().run_in_executor(
                None, _update_all, self._hash, self._batch
            )
            self._batch, self._batched = [], 0

    async def digest(self) -> bytes:
        """The digest of everything added; call once, at the end."""
        if self._running is not None:
            await self._running
            self._running = None
        if self._batch:
            # Up to batch_bytes: in the worker thread too, not on the loop.
            await asyncio.get_running_loop().run_in_executor(
                None, _update_all, self._hash, self._batch
            )
        self._batch, self._batched = [], 0
        return self._hash.digest()


def _update_all(hash_object, chunks: list[bytes]) -> None:
    for chunk in chunks:
        hash_object.update(chunk)


class Hasher:
    """Runs a bounded number of background hash tasks for one Datasette."""

    def __init__(self, state: FilesState):
        self.state = state
        self.tasks: set[asyncio.Task] = set()
        self.running: set[str] = set()
        self.limit = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
        self._draining: asyncio.Task | None = None
        self._failed: set[str] = set()

    def schedule(self, file_id: str, source_slug: str, path: str) -> None:
        if file_id in self.running:
            return
        self.running.add(file_id)
        task = asyncio.get_running_loop().create_task(
            self._hash(file_id, source_slug, path)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _hash(self, file_id: str, source_slug: str, path: str) -> None:
        try:
            async with self.limit:
                source = self.state.source(source_slug)
                if source is None:
                    return
                storage = await source.ensure_ready()
                hasher = StreamHasher()
                async for chunk in storage.stream_file(path):
                    await hasher.add(chunk)
                digest = SHA256_PREFIX + (await hasher.digest()).hex()
                await self.state.registry.set_content_hash(file_id, digest)
        except Exception as ex:  # noqa: BLE001 - retried by the next sweep
            log.warning("datasette-files: could not hash %s: %s", file_id, ex)
            self._failed.add(file_id)
        finally:
            self.running.discard(file_id)

    async def sweep(self) -> None:
        """Hash the files still missing a hash (all of them, a batch at a
        time: a sync from the command line may have registered many)."""
        self.kick()

    def kick(self) -> None:
        """Hash every file still missing a hash, a batch at a time; a sync
        calls it after each batch rather than wait for the next sweep."""
        if self._draining is not None and not self._draining.done():
            return
        self._draining = asyncio.get_running_loop().create_task(self._drain())
        self.tasks.add(self._draining)
        self._draining.add_done_callback(self.tasks.discard)

    async def _drain(self) -> None:
        self._failed.clear()
        while True:
            slugs = [s.slug for s in self.state.sources.values() if s.ready]
            # Files that failed this time round stay missing: skip past them.
            missing = await self.state.registry.files_missing_hash(
                slugs, SWEEP_BATCH + len(self._failed)
            )
            batch = [item for item in missing if item[0] not in self._failed]
            if not batch:
                return
            for file_id, slug, path in batch:
                self.schedule(file_id, slug, path)
            # At most MAX_CONCURRENT_HASHES run; wait for this batch.
            running = [t for t in self.tasks if t is not asyncio.current_task()]
            if running:
                await asyncio.wait(running)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks))
