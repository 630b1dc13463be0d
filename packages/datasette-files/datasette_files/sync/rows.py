"""What a listed object becomes in the registry: its id, its time, the stamp
that tells a changed object from an unchanged one."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

from ..base import FileMetadata
from ..registry import utcnow_iso
from .store import ExistingFile

CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_file_ids(count: int) -> list[str]:
    """``count`` file ids as ``uploads.new_file_id`` makes them (``df-`` and
    a lowercase ULID), made in one go: one id at a time was a sync's main
    cost when registering many files."""
    stamp = (int(time.time() * 1000) & ((1 << 48) - 1)) << 80
    randomness = os.urandom(10 * max(count, 0))
    ids = []
    for i in range(max(count, 0)):
        value = stamp | int.from_bytes(randomness[10 * i : 10 * i + 10], "big")
        chars = []
        for _ in range(26):
            chars.append(CROCKFORD[value & 31])
            value >>= 5
        ids.append("df-" + "".join(reversed(chars)))
    return ids


def registry_time(value: str | None) -> str:
    """An object's time in the registry's format (UTC, ``...Z``)."""
    if value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            moment = moment.astimezone(timezone.utc)
            return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utcnow_iso()


def object_stamp(listed: FileMetadata) -> dict:
    """What tells a changed object from an unchanged one of the same size."""
    stamp = {"modified": listed.created_at}
    etag = (listed.metadata or {}).get("etag")
    if etag:
        stamp["etag"] = etag
    return stamp


def has_changed(existing: ExistingFile, listed: FileMetadata) -> bool | None:
    """True if changed, False if not, None if nothing was recorded to tell."""
    if (
        listed.size is not None
        and existing.size is not None
        and listed.size != existing.size
    ):
        return True
    recorded = existing.metadata.get("object")
    if not isinstance(recorded, dict):
        return None
    current = object_stamp(listed)
    if recorded.get("etag") and current.get("etag"):
        return recorded["etag"] != current["etag"]
    if recorded.get("modified") and current.get("modified"):
        return recorded["modified"] != current["modified"]
    return False
