"""``python limits.py MEMORY CPU_SECONDS COMMAND...``: run COMMAND under rlimits.

``run_limited`` starts generator commands through this script so every one,
plugins' included, gets a capped address space (a decompression bomb fails
with an out-of-memory error instead of swapping the machine) and a CPU-time
backstop, without ``preexec_fn`` (unsafe in a threaded parent). The limits
are set, then the command replaces this process, keeping its PID.
"""

from __future__ import annotations

import os
import sys


def set_limits(memory: int, cpu_seconds: int) -> None:
    try:
        import resource
    except ImportError:  # Windows: only the parent's timeout applies
        return
    for limit, value in (
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_CPU, cpu_seconds),
    ):
        if value <= 0:
            continue
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass  # e.g. macOS refuses RLIMIT_AS; the timeout still applies


def main(argv: list[str]) -> None:
    set_limits(int(argv[1]), int(argv[2]))
    os.execvp(argv[3], argv[3:])  # noqa: S606 - an argv list, no shell


if __name__ == "__main__":
    main(sys.argv)
