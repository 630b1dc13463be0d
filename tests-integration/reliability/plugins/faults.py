"""Test-only controls, loaded into a real ``datasette serve`` process by the
reliability tests with ``--plugins-dir`` (never installed anywhere else).

- ``DATASETTE_FILES_TEST_CLOCK=path``: while that file holds a number, the
  upload protocol's clock (token expiry, the sweep) reads that number instead
  of ``time.time()``, so a test can stand exactly on an expiry instant; each
  read of the frozen clock is counted in ``path.reads``.
- ``DATASETTE_FILES_TEST_DISK_QUOTA=bytes``: writes into a filesystem
  source's directory fail with ``ENOSPC`` once the files in it would exceed
  that many bytes: a simulated full disk, for machines where the test may not
  mount a small tmpfs.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from types import SimpleNamespace

from datasette_files import batched_writes, filesystem, uploads


def clock(path: str):
    def now() -> float:
        try:
            with open(path) as fp:
                text = fp.read().strip()
        except FileNotFoundError:
            text = ""
        if not text:
            return time.time()
        # Count the reads of a frozen clock: how a test sees that a sweep
        # ran at that instant, instead of sleeping past a few of them.
        reads = f"{path}.reads"
        try:
            with open(reads) as fp:
                count = int(fp.read() or 0)
        except (FileNotFoundError, ValueError):
            count = 0
        with open(reads, "w") as fp:
            fp.write(str(count + 1))
        return float(text)

    return SimpleNamespace(time=now)


class QuotaOS:
    """``os`` for filesystem.py, with ``write``/``writev`` and
    ``pwrite``/``pwritev`` refusing past a byte quota.

    One write at a time: an upload has two batches in flight at once, and
    the bytes in use must not change between counting them and writing.
    """

    def __init__(self, quota: int):
        self.quota = quota
        self.lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(os, name)

    def write(self, fd: int, data) -> int:
        with self.lock:
            self._take(fd, len(data))
            return os.write(fd, data)

    def writev(self, fd: int, buffers) -> int:
        with self.lock:
            self._take(fd, sum(len(buffer) for buffer in buffers))
            return os.writev(fd, buffers)

    def pwrite(self, fd: int, data, offset: int) -> int:
        with self.lock:
            self._take(fd, self._growth(fd, len(data), offset))
            return os.pwrite(fd, data, offset)

    def pwritev(self, fd: int, buffers, offset: int) -> int:
        size = sum(len(buffer) for buffer in buffers)
        with self.lock:
            self._take(fd, self._growth(fd, size, offset))
            return os.pwritev(fd, buffers, offset)

    @staticmethod
    def _growth(fd: int, size: int, offset: int) -> int:
        """What a write at ``offset`` adds to the file: a later batch may
        have landed first, so the file can already reach past it."""
        return max(0, offset + size - os.fstat(fd).st_size)

    def _take(self, fd: int, size: int) -> None:
        directory = os.path.dirname(os.readlink(f"/proc/self/fd/{fd}"))
        if used(directory) + size > self.quota:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def used(directory: str) -> int:
    """Bytes in the files of ``directory``. Concurrent uploads rename and
    remove their temp files while it looks: a file gone by then counts 0."""
    total = 0
    for entry in os.scandir(directory):
        try:
            if entry.is_file():
                total += entry.stat().st_size
        except FileNotFoundError:
            pass
    return total


if os.environ.get("DATASETTE_FILES_TEST_CLOCK"):
    uploads.time = clock(os.environ["DATASETTE_FILES_TEST_CLOCK"])
if os.environ.get("DATASETTE_FILES_TEST_DISK_QUOTA"):
    # Uploads are written by batched_writes; the rest (temp files, renames)
    # by filesystem itself.
    batched_writes.os = filesystem.os = QuotaOS(
        int(os.environ["DATASETTE_FILES_TEST_DISK_QUOTA"])
    )
