"""HTTP header values S3 is asked to send: safe by construction."""

from __future__ import annotations

import re
from datetime import datetime

from datasette_files.base import content_type_or_default

_CONTENT_TYPE_RE = re.compile(r"^[\w.+-]+/[\w.+-]+(?:\s*;[\x20-\x7e]*)?$")


def checked_content_type(content_type: str | None) -> str:
    """The content type to store (default ``application/octet-stream``);
    ``ValueError`` for anything that is not a plain ``type/subtype``."""
    content_type = content_type_or_default(content_type)
    if not _CONTENT_TYPE_RE.match(content_type):
        raise ValueError(f"invalid content type {content_type!r}")
    return content_type


def is_content_type(value: str | None) -> bool:
    """Whether ``value`` is safe to send back as a Content-Type."""
    return bool(value) and bool(_CONTENT_TYPE_RE.match(value))


def iso(value) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None
