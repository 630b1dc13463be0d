"""Writing an upload's stream to a file in batches, from worker threads.

Used by the filesystem storage: chunks are gathered into ``WRITE_BATCH``
writes (``Batches``), each written at its own offset by a thread of this
module's pool (``submit``, ``write_all``), so that up to ``BUFFERS - 1``
batches are on their way to the disk while the next one fills.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

# Proxied uploads arrive in small chunks; they are written in batches of
# this size (see Batches).
WRITE_BATCH = 4 * 1024 * 1024
MAX_IOVECS = 512  # well under IOV_MAX (1024 on Linux)
# Batches in memory at once: one filling, the others being written. Two
# leave the event loop waiting whenever a worker thread is slow to get the
# CPU or the GIL back (about one batch in ten, measured on a busy machine).
BUFFERS = 3


_writer: ThreadPoolExecutor | None = None


def submit(func, *args) -> Future:
    """Start a thread call whose end the event loop hears of only if it asks.

    ``run_in_executor`` wakes the loop as each call ends (a write to its
    self-pipe, the worker thread taking the GIL again to do it); an upload
    mostly finds its last batch written by the time the next one is full,
    and then nothing needs to wake it.
    """
    global _writer
    if _writer is None:
        _writer = ThreadPoolExecutor(thread_name_prefix="datasette-files-write")
    return _writer.submit(func, *args)


async def finished(call: Future) -> None:
    """Wait for ``call``; raise its error.

    A cancelled wait cancels ``call`` only if no thread has started it: one
    already running goes on (a thread cannot be stopped), and is then not
    done, which is what the cleanup that follows looks at.
    """
    if not call.done():
        await asyncio.wrap_future(call)
    call.result()


def write_all(fd: int, chunks: list, offset: int) -> None:
    """Write every chunk, in order, at ``offset``, finishing any partial
    pwritev() by hand. Explicit offsets let batches be written by two
    threads at once."""
    if not chunks:
        return
    written = os.pwritev(fd, chunks, offset)
    total = sum(len(chunk) for chunk in chunks)
    if written < total:
        rest = memoryview(b"".join(chunks))[written:]
        while rest:
            step = os.pwrite(fd, rest, offset + written)
            rest, written = rest[step:], written + step


class Batches:
    """An upload's chunks gathered into writes of ``WRITE_BATCH`` bytes.

    The first batch is the chunks themselves, written with one pwritev() and
    no copy: most uploads end there. After it, chunks are copied into
    ``BUFFERS`` buffers used in turn (one filling while the others are
    written) and each is let go as soon as it is copied. Holding a batch of
    chunks until it is written and then freeing them together hands
    megabytes back to the C heap at once, which returns them to the kernel;
    the next chunks then fault that memory in again page by page: about
    100,000 page faults per GiB measured, costing more than the copy into
    memory that stays mapped.
    """

    def __init__(self):
        # The first batch, until it is full; then None.
        self.chunks: list | None = []
        self.batched = 0
        self.buffers: list[memoryview] = []
        self.turn = 0
        self.filled = 0

    def add(self, chunk: bytes) -> Iterator[list]:
        """Take ``chunk``; yield each batch it fills, as a list of buffers.

        Before this resumes after a yield, the batch yielded ``BUFFERS - 1``
        yields earlier must have been written: its buffer is the one filled
        next.
        """
        if self.chunks is not None:
            self.chunks.append(chunk)
            self.batched += len(chunk)
            if self.batched >= WRITE_BATCH or len(self.chunks) >= MAX_IOVECS:
                chunks, self.chunks = self.chunks, None
                yield chunks
            return
        size = len(chunk)
        end = self.filled + size
        if end < WRITE_BATCH and self.turn < len(self.buffers):  # it fits
            self.buffers[self.turn][self.filled : end] = chunk
            self.filled = end
            return
        rest = memoryview(chunk)
        while True:
            if self.turn == len(self.buffers):
                # Allocated as the upload grows to need it.
                self.buffers.append(memoryview(bytearray(WRITE_BATCH)))
            buffer = self.buffers[self.turn]
            room = WRITE_BATCH - self.filled
            if len(rest) < room:
                break
            buffer[self.filled :] = rest[:room]
            rest = rest[room:]
            self.turn, self.filled = (self.turn + 1) % BUFFERS, 0
            yield [buffer]
        buffer[self.filled : self.filled + len(rest)] = rest
        self.filled += len(rest)

    def last(self) -> list:
        """What is left to write once the stream has ended."""
        if self.chunks is not None:
            return self.chunks
        if not self.filled:
            return []
        return [self.buffers[self.turn][: self.filled]]
