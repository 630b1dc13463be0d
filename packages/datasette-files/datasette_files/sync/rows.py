"""What a listed object becomes in the registry: its id, its time, the stamp
that tells a changed object from an unchanged one.

These run once per listed object, so they avoid per-object parsing and
loops where a cheaper equivalent exists (a sync's Python work is shared
with the listing on one interpreter lock).
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime, timezone

from ..base import FileMetadata
from ..registry import utcnow_iso
from .pages import ExistingFile

CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
# A random byte to one random base32 digit: 256 is a multiple of 32, so the
# digits come out uniform.
_RANDOM_DIGIT = bytes(ord(CROCKFORD[byte % 32]) for byte in range(256))
TIME_SHIFTS = range(45, -1, -5)  # 48 bits of milliseconds, 10 digits
# A UTC time as ``datetime.isoformat()`` writes it (what the built-in
# storages give): already in the registry's format but for the suffix.
_UTC_ISO = re.compile(
    r"\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-6]\d(\.\d{6})?(\+00:00|Z)"
)


def new_file_ids(count: int) -> list[str]:
    """``count`` file ids as ``uploads.new_file_id`` makes them (``df-`` and
    a lowercase ULID: 10 base32 digits of milliseconds, 16 random digits),
    made in one go: one id at a time was a sync's main cost when registering
    many files. The random digits come from one ``os.urandom`` call."""
    if count <= 0:
        return []
    stamp = int(time.time() * 1000) & ((1 << 48) - 1)
    head = "df-" + "".join(CROCKFORD[(stamp >> shift) & 31] for shift in TIME_SHIFTS)
    digits = os.urandom(16 * count).translate(_RANDOM_DIGIT).decode("ascii")
    return [head + digits[start : start + 16] for start in range(0, 16 * count, 16)]


def registry_time(value: str | None) -> str:
    """An object's time in the registry's format (UTC, ``...Z``)."""
    if value:
        if _UTC_ISO.fullmatch(value):
            # The common case, without parsing: only the suffix differs.
            fraction = value[19:26] if value[19:20] == "." else ".000000"
            return value[:19] + fraction + "Z"
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
    if not existing.stamped:
        return None
    etag = listed.metadata.get("etag") if listed.metadata else None
    if existing.etag and etag:
        return existing.etag != etag
    if existing.modified and listed.created_at:
        return existing.modified != listed.created_at
    return False
