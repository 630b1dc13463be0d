"""Making thumbnails: pick a generator, bound the work, cache the outcome.

One ``Thumbnailer`` per Datasette. At most ``thumbnail_concurrency``
generations run at once, whether started after an upload completes or by a
request for a thumbnail that is not cached yet; a file never has two
generations of the same thumbnail (or sized variant) in flight, and a request waits for one at most
``thumbnail_wait`` seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import TYPE_CHECKING

from datasette.utils import await_me_maybe

from ..base import StorageUnavailable
from ..files import File
from ..registry import FileRow
from .cache import (
    ADOPTED_KEY,
    FAILED,
    OK,
    SKIPPED,
    TRANSIENT,
    CachedThumbnail,
    ThumbnailCache,
)
from .generators import (
    Thumbnail,
    ThumbnailFailed,
    ThumbnailSkipped,
    discover_generators,
)
from .pillow import PillowGenerator
from .policy import ThumbnailSettings, Variant

if TYPE_CHECKING:
    from ..state import FilesState

log = logging.getLogger("datasette_files")

# Only raster types a browser shows as an image, never scriptable ones (SVG).
SAFE_CONTENT_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif"}
# Generators are cancelled this long after the policy's timeout, in case they
# do not enforce it themselves.
TIMEOUT_GRACE = 1.0
MAX_COOLDOWN = 24 * 3600


class Thumbnailer:
    """Schedules generation and answers "what is this file's thumbnail?"."""

    def __init__(
        self, state: FilesState, settings: ThumbnailSettings, generators, concurrency
    ):
        self.state = state
        self.settings = settings
        self.policy = settings.policy
        self.generators = generators
        self.cache = ThumbnailCache(state.registry.db)
        self.limit = asyncio.Semaphore(concurrency)
        # One generation in flight per file ("id") and variant ("id:key").
        self.tasks: dict[str, asyncio.Task] = {}

    async def generator_for(self, file: File):
        """The first generator that accepts ``file`` (``accepts`` may be async)."""
        for generator in self.generators:
            try:
                if await await_me_maybe(generator.accepts(file)):
                    return generator
            except Exception as ex:  # noqa: BLE001 - a plugin bug: try the next
                log.warning(
                    "datasette-files: %s.accepts failed: %s", generator.name, ex
                )
        return None

    def cache_key(self, generator, file, variant: Variant | None = None) -> str:
        """``generator:version:policy:file[:variant]``.

        The file part hashes the file's size and content hash, so a file
        whose bytes change (and whose row says so) gets new thumbnails; the
        variant part keeps each sized variant apart from the plain thumbnail.
        """
        base = self.family(generator, file)
        return base if variant is None else f"{base}:{variant.key}"

    def family(self, generator, file) -> str:
        """The key of the plain thumbnail, which its variants' keys extend.

        ``file``: a ``File`` or ``FileRow`` (both have size and content_hash).
        """
        seen = f"{file.size}:{file.content_hash or ''}"
        file_part = hashlib.sha256(seen.encode()).hexdigest()[:12]
        return (
            f"{generator.name}:{generator.version}:{self.policy.digest()}:{file_part}"
        )

    def _file(self, row: FileRow) -> File | None:
        source = self.state.source(row.source_slug)
        return File(row, source) if source is not None else None

    async def current(
        self, row: FileRow, variant: Variant | None = None
    ) -> tuple[CachedThumbnail | None, bool]:
        """(outcome, final). Waits up to ``thumbnail_wait`` for a new one.

        ``variant``: a sized variant instead of the plain thumbnail, made,
        cached and answered for in the same way; while it is made past the
        wait, or after a transient failure, the plain thumbnail (when made)
        stands in for it.

        ``(None, True)``: no generator takes this file. ``(None, False)``:
        still being made. ``final`` is False for a transient failure too.
        A thumbnail adopted from 0.1a3 stands in, without waiting, while ours
        is made or after a transient failure, and is final when no generator
        takes the file.
        """
        file = self._file(row)
        generator = await self.generator_for(file) if file is not None else None
        if file is None or generator is None:
            return await self.cache.get(row.id, ADOPTED_KEY), True
        entry = await self.cache.get(row.id, self.cache_key(generator, row, variant))
        if entry is None or not entry.is_current(time.time()):
            task = self._start(file, generator, variant)
            adopted = await self.cache.get(row.id, ADOPTED_KEY)
            if adopted is not None:
                return adopted, False
            try:
                entry = await asyncio.wait_for(asyncio.shield(task), self.settings.wait)
            except asyncio.TimeoutError:
                return await self._stand_in(row, generator, variant), False
            if entry is None:  # the task found no generator after all
                return None, True
        if entry.outcome == TRANSIENT:
            stand_in = await self._stand_in(row, generator, variant)
            return stand_in or await self.cache.get(row.id, ADOPTED_KEY) or entry, False
        return entry, True

    async def _stand_in(self, row: FileRow, generator, variant):
        """For a variant not made yet: the plain thumbnail, if it is made.

        A list whose thumbnails were made eagerly on upload then shows them
        at once, rather than type icons, while its variants are made.
        """
        if variant is None:
            return None
        plain = await self.cache.get(row.id, self.cache_key(generator, row))
        return plain if plain is not None and plain.outcome == OK else None

    def schedule(self, row: FileRow) -> None:
        """Make the thumbnail in the background (after an upload completes).

        Does nothing with ``thumbnail_eager: false``: thumbnails are then
        made on their first request.
        """
        file = self._file(row) if self.settings.eager else None
        if file is not None:
            # The generator is chosen in the task: accepts may be async.
            self._start(file, None)

    def _start(self, file: File, generator, variant=None) -> asyncio.Task:
        key = file.id if variant is None else f"{file.id}:{variant.key}"
        task = self.tasks.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(
                self._make(file, generator, variant)
            )
            self.tasks[key] = task
            task.add_done_callback(lambda _: self.tasks.pop(key, None))
        return task

    async def _make(self, file: File, generator, variant=None):
        try:
            if generator is None:
                generator = await self.generator_for(file)
                if generator is None:
                    return None
            return await self._make_once(file, generator, variant)
        except Exception as ex:  # noqa: BLE001 - e.g. the internal DB; never leak
            log.warning("datasette-files: thumbnail for %s failed: %s", file.id, ex)
            name = generator.name if generator is not None else "none"
            return CachedThumbnail(TRANSIENT, name, str(ex))

    async def _make_once(self, file: File, generator, variant) -> CachedThumbnail:
        key = self.cache_key(generator, file, variant)
        async with self.limit:
            previous = await self.cache.get(file.id, key)
            if previous is not None and previous.is_current(time.time()):
                return previous  # made while this task waited its turn
            policy = self.policy if variant is None else self.policy.variant(variant)
            entry = await self._generate(file, generator, policy)
            if entry.outcome == OK and entry.data is not None and variant is not None:
                # Its own ETag even when two variants come out byte-identical
                # (a small image is never enlarged by contain).
                entry.etag = etag_for(entry.data, variant.key)
            if entry.outcome == TRANSIENT:
                attempts = previous.attempts + 1 if previous is not None else 1
                cooldown = self.settings.retry_after * 2 ** (attempts - 1)
                entry.attempts = attempts
                entry.retry_at = time.time() + min(cooldown, MAX_COOLDOWN)
            if entry.outcome != OK:
                log.info(
                    "datasette-files: no thumbnail for %s (%s): %s",
                    file.id,
                    entry.outcome,
                    entry.reason,
                )
            try:
                await self.cache.put(file.id, key, entry, self.family(generator, file))
            except Exception as ex:  # noqa: BLE001 - serve it anyway, retry later
                log.warning("datasette-files: caching thumbnail failed: %s", ex)
            return entry

    async def _generate(self, file: File, generator, policy) -> CachedThumbnail:
        name = generator.name
        if file.size is not None and file.size > policy.max_bytes:
            return CachedThumbnail(SKIPPED, name, "larger than the byte limit")
        if file.size == 0:
            return CachedThumbnail(SKIPPED, name, "empty file")
        try:
            # Read at most the limit: the recorded size when known, else one
            # byte more than the limit to see whether the file is larger.
            limit = policy.max_bytes + 1 if file.size is None else file.size
            data = await file.read_bytes(limit)
        except FileNotFoundError:
            return CachedThumbnail(FAILED, name, "missing from its storage")
        except StorageUnavailable as ex:
            return CachedThumbnail(TRANSIENT, name, f"source unavailable: {ex}")
        except Exception as ex:  # noqa: BLE001 - a storage error: try again later
            return CachedThumbnail(TRANSIENT, name, f"read failed: {ex}")
        if len(data) > policy.max_bytes:
            return CachedThumbnail(SKIPPED, name, "larger than the byte limit")
        try:
            thumbnail = await asyncio.wait_for(
                generator.generate(data, file, policy), policy.timeout + TIMEOUT_GRACE
            )
        except asyncio.TimeoutError:
            return CachedThumbnail(
                TRANSIENT, name, f"timed out after {policy.timeout:g}s"
            )
        except ThumbnailSkipped as ex:
            return CachedThumbnail(SKIPPED, name, str(ex))
        except ThumbnailFailed as ex:
            return CachedThumbnail(TRANSIENT if ex.transient else FAILED, name, str(ex))
        except Exception as ex:  # noqa: BLE001 - a generator bug must not leak
            log.exception("datasette-files: thumbnail generator %s failed", name)
            return CachedThumbnail(TRANSIENT, name, f"generator error: {ex}")
        return checked(thumbnail, name)

    async def close(self) -> None:
        """Cancel running generations (their child processes are killed)."""
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)


def checked(thumbnail, name: str) -> CachedThumbnail:
    """A generator's result as a cache entry, if it is a safe image."""
    if (
        not isinstance(thumbnail, Thumbnail)
        or not isinstance(thumbnail.data, bytes)
        or not thumbnail.data
    ):
        return CachedThumbnail(FAILED, name, "generator returned no image")
    content_type = thumbnail.content_type.split(";")[0].strip().lower()
    if content_type not in SAFE_CONTENT_TYPES:
        return CachedThumbnail(
            FAILED, name, f"generator returned unsafe type {content_type!r}"
        )
    etag = etag_for(thumbnail.data)
    return CachedThumbnail(OK, name, None, content_type, thumbnail.data, etag)


def etag_for(data: bytes, variant_key: str = "") -> str:
    digest = hashlib.sha256(variant_key.encode() + data).hexdigest()[:24]
    return f'"t-{digest}"'


def start_thumbnailer(datasette, state: FilesState, plugin_config: dict) -> Thumbnailer:
    """The Thumbnailer for this Datasette: settings, then every generator."""
    return Thumbnailer(
        state,
        ThumbnailSettings.from_config(plugin_config),
        discover_generators(datasette, [PillowGenerator()]),
        state.settings.thumbnail_concurrency,
    )
