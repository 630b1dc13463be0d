"""Running a generator command in a child process, with hard bounds.

The event loop never waits on the work itself: the child gets the input on
stdin and answers on stdout, and is killed (by its own PID) when it runs past
the timeout, writes more than allowed, or the waiting task is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
from dataclasses import dataclass

from .generators import ThumbnailFailed

log = logging.getLogger("datasette_files")

LIMITS_SCRIPT = os.path.join(os.path.dirname(__file__), "limits.py")
READ_CHUNK = 64 * 1024
MAX_STDERR = 64 * 1024


@dataclass
class Finished:
    """How a child process ended."""

    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def message(self) -> str:
        """The last line the child wrote to stderr (or its exit status)."""
        lines = self.stderr.decode("utf-8", "replace").strip().splitlines()
        return lines[-1][:500] if lines else f"exit status {self.returncode}"


class _OutputTooLarge(Exception):
    pass


async def _read(stream: asyncio.StreamReader, limit: int, overflow=None) -> bytes:
    """Read to the end, keeping at most ``limit`` bytes.

    Past the limit it reads on and discards: a pipe nobody reads fills up and
    pauses, and asyncio's ``Process.wait()`` returns only once every pipe is
    closed. ``overflow`` is called when the limit is first passed.
    """
    data = bytearray()
    while chunk := await stream.read(READ_CHUNK):
        room = limit - len(data)
        if len(chunk) > room and overflow is not None:
            overflow()
            overflow = None
        data += chunk[:room]
    return bytes(data)


async def _feed(stdin: asyncio.StreamWriter, data: bytes) -> None:
    try:
        stdin.write(data)
        await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the child stopped reading: it refused the input, its exit says why
    finally:
        stdin.close()


async def run_limited(
    args: list[str],
    data: bytes,
    *,
    timeout: float,
    max_output: int,
    memory_limit: int | None = None,
    env=None,
) -> Finished:
    """Run ``args`` with ``data`` on stdin; return its exit status and output.

    With ``memory_limit`` (bytes), the child's address space is capped
    (``RLIMIT_AS``) and its CPU time limited to about ``timeout``. Raises
    ``ThumbnailFailed`` (transient) when it times out, and ``ThumbnailFailed``
    when stdout exceeds ``max_output`` bytes. In both cases, and if the
    caller is cancelled, the child is killed and reaped.
    """
    if memory_limit is not None:
        cpu_seconds = math.ceil(timeout) + 1
        # -I -S: the shim needs only the standard library, so start it bare.
        limits = [sys.executable, "-I", "-S", LIMITS_SCRIPT]
        args = [*limits, str(memory_limit), str(cpu_seconds), *args]
    process = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )

    too_large = False

    def stop():
        # Too much output: end the child now; its pipes are still read to EOF.
        nonlocal too_large
        too_large = True
        if process.returncode is None:
            process.kill()

    # All three are pipes: the process was started with PIPE for each.
    assert process.stdin and process.stdout and process.stderr
    stdin, stdout_pipe, stderr_pipe = process.stdin, process.stdout, process.stderr

    async def communicate() -> Finished:
        stdout, stderr, _ = await asyncio.gather(
            _read(stdout_pipe, max_output, overflow=stop),
            _read(stderr_pipe, MAX_STDERR),
            _feed(stdin, data),
        )
        returncode = await process.wait()
        if too_large:
            raise _OutputTooLarge
        return Finished(returncode, stdout, stderr)

    try:
        return await asyncio.wait_for(communicate(), timeout)
    except asyncio.TimeoutError:
        raise ThumbnailFailed(
            f"generator timed out after {timeout:g}s", transient=True
        ) from None
    except _OutputTooLarge:
        raise ThumbnailFailed(f"generator wrote more than {max_output} bytes") from None
    finally:
        if process.returncode is None:
            process.kill()
            log.info("datasette-files: killed thumbnail process %s", process.pid)
        # What a cancelled reader left: a pipe nobody reads pauses, never sees
        # its EOF, and asyncio's wait() returns only once every pipe is closed.
        await asyncio.gather(_read(stdout_pipe, 0), _read(stderr_pipe, 0))
        await process.wait()
