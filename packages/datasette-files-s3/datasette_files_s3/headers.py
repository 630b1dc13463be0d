"""HTTP header values S3 is asked to send: safe by construction."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import quote

from datasette_files.base import content_type_or_default

_CONTENT_TYPE_RE = re.compile(r"^[\w.+-]+/[\w.+-]+(?:\s*;[\x20-\x7e]*)?$")


def attachment_header(filename: str) -> str:
    """``Content-Disposition: attachment`` with a safe filename, plus an
    RFC 5987 ``filename*`` when the name is not plain ASCII."""
    name = (
        "".join(
            "_" if ord(ch) < 32 or ord(ch) == 127 or ch in '"\\/' else ch
            for ch in filename
        ).strip()[:255]
        or "download"
    )
    fallback = "".join(ch if ord(ch) < 128 else "_" for ch in name)
    if fallback == name:
        return f'attachment; filename="{name}"'
    return (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
    )


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
