"""The built-in ``filesystem`` storage: files in a directory on local disk."""

from __future__ import annotations

import asyncio
import errno
import math
import os
import secrets
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import Future
from datetime import datetime, timezone
from functools import lru_cache
from stat import S_ISREG

from .base import (
    FileMetadata,
    FileTooLarge,
    PathOutsideRoot,
    Storage,
    StorageCapabilities,
    StorageConfigError,
    StorageFull,
    StorageUnavailable,
    safe_join,
)
from .batched_writes import BUFFERS, Batches, finished, submit, write_all
from .filenames import guess_content_type
from .settings import int_setting

DEFAULT_MAX_FILE_SIZE = 100 * 1024 * 1024
CHUNK_SIZE = 2 * 1024 * 1024
# Temp files live in the source root (same filesystem, so rename is atomic)
# under a prefix that listings skip and the sweep removes.
TEMP_PREFIX = ".datasette-files-tmp-"
CONFIG_KEYS = {"root", "max_file_size"}


# An fdatasync() every this many bytes, beside the writes, so the final
# fsync() has little left to flush.
FLUSH_EVERY = 64 * 1024 * 1024


def utc_isoformat(timestamp: float) -> str:
    """``datetime.fromtimestamp(timestamp, timezone.utc).isoformat()``, the
    date and time of day formatted once per second (a listing formats one
    per file, and files written together share their seconds)."""
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    seconds, second = _utc_seconds(math.floor(timestamp))
    if second != moment.second:
        # The microseconds rounded up into the next second.
        seconds = moment.replace(microsecond=0).isoformat()[:19]
    if moment.microsecond:
        return f"{seconds}.{moment.microsecond:06d}+00:00"
    return seconds + "+00:00"


@lru_cache(maxsize=1024)
def _utc_seconds(timestamp: int) -> tuple[str, int]:
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.isoformat()[:19], moment.second


def _run(func, *args):
    return asyncio.get_running_loop().run_in_executor(None, func, *args)


def _move_into_place(temp: str, full: str) -> None:
    """Rename the finished temp file to ``full``, creating its directories."""
    os.makedirs(os.path.dirname(full), exist_ok=True)
    os.replace(temp, full)


class FilesystemStorage(Storage):
    """Stores each file under ``root``, written via temp file + fsync + rename."""

    # A class attribute, read from the class when storage types are found.
    storage_type = "filesystem"  # pyright: ignore[reportAssignmentType]

    def __init__(self):
        self.root = ""  # an absolute path once configured
        self.max_file_size = DEFAULT_MAX_FILE_SIZE

    @property
    def capabilities(self) -> StorageCapabilities:
        return StorageCapabilities(
            can_upload=True,
            can_delete=True,
            can_list=True,
            requires_proxy_download=True,
            can_range_read=True,
            max_file_size=self.max_file_size,
        )

    async def configure(self, config, get_secret) -> None:
        unknown = set(config) - CONFIG_KEYS
        if unknown:
            key = sorted(unknown)[0]
            raise StorageConfigError(f"unknown config key '{key}'", key=key)
        root = config.get("root")
        if not isinstance(root, str) or not root.strip():
            raise StorageConfigError(
                "'root' is required: the directory to store files in", key="root"
            )
        self.max_file_size = int_setting(
            config, "max_file_size", DEFAULT_MAX_FILE_SIZE, 1
        )
        self.root = os.path.realpath(root)  # noqa: ASYNC240 - once, at startup
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as ex:
            raise StorageConfigError(
                f"'root' {root!r} cannot be created: {ex.strerror}", key="root"
            ) from ex

    async def check_available(self) -> None:
        def writable():
            return os.path.isdir(self.root) and os.access(self.root, os.W_OK)

        if not await _run(writable):
            raise StorageUnavailable(f"directory {self.root} is not writable")

    def _full(self, path: str) -> str:
        """The absolute path for a storage path such as ``abc123/hello.txt``.

        Raises ``PathOutsideRoot`` (a ``ValueError``) for a path that would
        resolve outside the root.
        """
        if not path or path.startswith(TEMP_PREFIX) or "\x00" in path:
            raise ValueError(f"invalid path {path!r}")
        full = safe_join(self.root, path)
        if full == self.root:
            raise ValueError(f"invalid path {path!r}")
        return full

    def _metadata(self, path: str, full: str) -> FileMetadata | None:
        try:
            stat = os.stat(full)
        except FileNotFoundError:
            return None
        if not os.path.isfile(full):
            return None
        return FileMetadata(
            path=path,
            filename=os.path.basename(path),
            content_type=guess_content_type(path),
            size=stat.st_size,
            created_at=utc_isoformat(stat.st_mtime),
        )

    async def get_file_metadata(self, path: str) -> FileMetadata | None:
        return await _run(self._metadata, path, self._full(path))

    async def read_file(self, path: str) -> bytes:
        full = self._full(path)

        def read():
            with open(full, "rb") as fp:
                return fp.read()

        return await _run(read)

    async def read_file_limited(self, path: str, max_bytes: int) -> bytes:
        full = self._full(path)

        def read():
            with open(full, "rb") as fp:
                if os.fstat(fp.fileno()).st_size > max_bytes:
                    raise FileTooLarge.for_limit(max_bytes)
                data = fp.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise FileTooLarge.for_limit(max_bytes)
            return data

        return await _run(read)

    async def read_bytes(self, path: str, num_bytes: int = 2048) -> bytes:
        full = self._full(path)

        def read():
            with open(full, "rb") as fp:
                return fp.read(max(num_bytes, 0))

        return await _run(read)

    async def stream_file(
        self, path: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        full = self._full(path)
        fp = await _run(open, full, "rb")
        remaining = None if end is None else end - start + 1

        def read_next():
            nonlocal remaining
            size = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
            chunk = fp.read(size) if size > 0 else b""
            if remaining is not None:
                remaining -= len(chunk)
            return chunk

        reading = None
        try:
            if start:
                fp.seek(start)
            # Read one chunk ahead, so the disk read overlaps the socket send.
            reading = _run(read_next)
            while True:
                chunk = await reading
                reading = None
                if not chunk:
                    break
                reading = _run(read_next)
                yield chunk
        finally:
            if reading is not None:
                await asyncio.wait([reading])
            fp.close()

    async def receive_upload(self, path, stream, content_type) -> FileMetadata:
        full = self._full(path)
        temp = os.path.join(self.root, TEMP_PREFIX + secrets.token_hex(8))
        try:
            fd = await _run(os.open, temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as ex:
            raise self._write_error(ex) from ex
        size = 0
        batches = Batches()
        # Up to BUFFERS - 1 batches are written by worker threads while the
        # next one arrives. Every thread call on fd is in `writing` until it
        # is done: the cleanup below must wait for those still running
        # before closing fd (a number the next open() may reuse).
        writing: deque[Future] = deque()
        # Large uploads are flushed to disk as they arrive (one fdatasync at
        # a time, beside the writes), so the final fsync has little left.
        flushing: Future | None = None
        unflushed = 0
        try:
            async for chunk in stream:
                for batch in batches.add(chunk):
                    writing.append(submit(write_all, fd, batch, size))
                    batched = sum(len(buffer) for buffer in batch)
                    size += batched
                    unflushed += batched
                    # The buffer filled next must be written first.
                    if len(writing) >= BUFFERS:
                        await finished(writing[0])
                        writing.popleft()
                    if unflushed >= FLUSH_EVERY and (
                        flushing is None or flushing.done()
                    ):
                        if flushing is not None:
                            flushing.result()  # raise its error
                        flushing = submit(os.fdatasync, fd)
                        unflushed = 0
            last = batches.last()
            if last:
                writing.append(submit(write_all, fd, last, size))
                size += sum(len(buffer) for buffer in last)
            while writing:
                await finished(writing[0])
                writing.popleft()
            if flushing is not None:
                await finished(flushing)
                flushing = None
            writing.append(submit(os.fsync, fd))
            await finished(writing[0])
            writing.popleft()
            os.close(fd)
            fd = None
            # No other writer uses this path: names carry a fresh ULID.
            await _run(_move_into_place, temp, full)
        except BaseException as ex:
            # Worker threads may still be using fd: let them finish first,
            # even if cancelled again meanwhile (a shutdown): closing fd
            # under a running write, or not closing it at all, is worse.
            busy = [
                asyncio.wrap_future(call)
                for call in (*writing, flushing)
                if call is not None and not call.done()
            ]
            cancelled_again = None
            if busy:
                waiting = asyncio.ensure_future(asyncio.wait(busy))
                while not waiting.done():
                    try:
                        await asyncio.shield(waiting)
                    except asyncio.CancelledError as again:
                        cancelled_again = again
                for waited in busy:
                    if not waited.cancelled():
                        waited.exception()  # seen: this upload fails anyway
            if fd is not None:
                os.close(fd)
            try:
                os.unlink(temp)
            except FileNotFoundError:
                pass
            if cancelled_again is not None:
                raise cancelled_again from ex
            if isinstance(ex, OSError):
                raise self._write_error(ex) from ex
            raise
        return FileMetadata(
            path=path,
            filename=os.path.basename(path),
            content_type=content_type,
            size=size,
        )

    def _write_error(self, ex: OSError) -> Exception:
        if ex.errno in (errno.ENOSPC, errno.EDQUOT):
            return StorageFull(f"no space left in {self.root}")
        return StorageUnavailable(f"cannot write to {self.root}: {ex.strerror}")

    async def delete_file(self, path: str) -> None:
        try:
            await _run(os.unlink, self._full(path))
        except FileNotFoundError:
            pass

    async def list_files(self, prefix="", cursor=None, limit=100):
        """Files under the root, nested directories included, sorted by path.

        Paths use ``/`` (``abc123/hello.txt``); ``cursor`` is the last path of
        the previous page, so a listing resumes in another process too.
        Directories are visited in path order and those that end before the
        cursor or miss the prefix are not read at all: a page costs the
        directories on its way, not the whole tree. Symlinked directories are
        not followed, and symlinked files only when they stay inside the root.
        """
        return await _run(self._scan, prefix, cursor, max(1, int(limit)))

    def _scan(self, prefix: str, cursor: str | None, limit: int):
        found: list[FileMetadata] = []
        more = False

        def visit(directory: str, base: str) -> bool:
            """Append files of ``directory`` in path order; True once full."""
            nonlocal more
            try:
                entries = self._sorted_entries(directory, base)
            except OSError:
                return False  # vanished or unreadable: nothing to list there
            for key, entry, is_dir in entries:
                if is_dir:
                    if not (key.startswith(prefix) or prefix.startswith(key)):
                        continue
                    # Everything below `key` sorts before the cursor.
                    if cursor is not None and key < cursor:
                        if not cursor.startswith(key):
                            continue
                    if visit(entry.path, key):
                        return True
                    continue
                if not key.startswith(prefix):
                    continue
                if cursor is not None and key <= cursor:
                    continue
                if len(found) == limit:
                    more = True
                    return True
                metadata = self._entry_metadata(key, entry)
                if metadata is not None:
                    found.append(metadata)
            return False

        visit(self.root, "")
        return found, (found[-1].path if more and found else None)

    def _sorted_entries(self, directory: str, base: str) -> list:
        """(path, entry, is_dir) in path order: a directory sorts as
        ``name/``, so that a depth-first walk yields paths sorted as strings."""
        entries = []
        with os.scandir(directory) as scanned:
            for entry in scanned:
                name = entry.name
                if not base and name.startswith(TEMP_PREFIX):
                    continue
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                key = base + name + "/" if is_dir else base + name
                if not key.isascii():
                    try:
                        key.encode("utf-8")
                    except UnicodeEncodeError:
                        continue  # a name that is not UTF-8 cannot be a path here
                entries.append((key, entry, is_dir))
        # Keys are unique within a directory: tuples sort by key alone.
        entries.sort()
        return entries

    def _entry_metadata(self, path: str, entry) -> FileMetadata | None:
        try:
            if entry.is_symlink():
                safe_join(self.root, path)
            stat = entry.stat()
        except (OSError, PathOutsideRoot):
            return None  # gone, or a symlink leading out of the root
        if not S_ISREG(stat.st_mode):
            return None
        return FileMetadata(
            path=path,
            filename=entry.name,
            content_type=guess_content_type(entry.name),
            size=stat.st_size,
            created_at=utc_isoformat(stat.st_mtime),
        )

    async def list_unfinished_uploads(self) -> list[dict]:
        def scan():
            found = []
            for entry in os.scandir(self.root):
                if not entry.name.startswith(TEMP_PREFIX):
                    continue
                try:
                    # The last write: a temp file still being written is young.
                    written = entry.stat().st_mtime
                except FileNotFoundError:
                    continue
                found.append(
                    {
                        "path": entry.name,
                        "state": {"temp": True},
                        "initiated": datetime.fromtimestamp(
                            written, timezone.utc
                        ).isoformat(),
                    }
                )
            return found

        return await _run(scan)

    async def abort_upload(self, path: str, state: dict) -> None:
        if state.get("temp"):
            # A temp file from an interrupted upload: path is its own name.
            full = safe_join(self.root, path)
            if os.path.basename(full).startswith(TEMP_PREFIX):
                try:
                    await _run(os.unlink, full)
                except FileNotFoundError:
                    pass
            return
        await self.delete_file(path)
