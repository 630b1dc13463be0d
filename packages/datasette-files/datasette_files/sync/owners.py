"""Who runs a sync: an owner id naming the process, and whether that process
is gone (so another may take its sync over)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

from .store import SyncJob

# A running sync whose checkpoint is older than this, and whose process is
# not known to be alive, is taken over by the next sync of its source.
STALE_AFTER = 120.0
PROCESS = f"{socket.gethostname()}:{os.getpid()}"


def owner_id(token: str) -> str:
    return f"{PROCESS}:{token}"


def is_stale(job: SyncJob, alive_here: Callable[[str], bool] | None = None) -> bool:
    """Whether the process running ``job`` is gone."""
    host, _, rest = (job.owner or "").partition(":")
    pid_text, _, _ = rest.partition(":")
    if host == socket.gethostname() and pid_text.isdigit():
        pid = int(pid_text)
        if pid == os.getpid():
            # One of ours: alive if this process still runs it.
            if alive_here is not None:
                return not alive_here(job.owner or "")
        else:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
    return (time.time() - (job.heartbeat_at or 0)) > STALE_AFTER
