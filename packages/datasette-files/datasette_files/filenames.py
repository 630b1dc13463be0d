"""Client-supplied filenames: validation, storage keys and download headers.

A filename from a client is display text only. Storage paths are built from
the file's ULID plus a sanitized, length-bounded version of the name.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from functools import lru_cache
from urllib.parse import quote

MAX_FILENAME_LENGTH = 255
MAX_PATH_NAME_BYTES = 100
CONTENT_TYPE_RE = re.compile(
    r"^[a-zA-Z0-9][a-zA-Z0-9!#$&^_.+-]{0,126}/[a-zA-Z0-9][a-zA-Z0-9!#$&^_.+-]{0,126}$"
)
UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class InvalidFilename(ValueError):
    pass


def validate_filename(filename: object) -> str:
    """Return the display filename, or raise InvalidFilename saying why."""
    if not isinstance(filename, str):
        raise InvalidFilename("filename must be a string")
    name = unicodedata.normalize("NFC", filename).strip()
    if not name:
        raise InvalidFilename("filename must not be empty")
    if len(name) > MAX_FILENAME_LENGTH:
        raise InvalidFilename(
            f"filename is longer than {MAX_FILENAME_LENGTH} characters"
        )
    if name in (".", ".."):
        raise InvalidFilename("filename must not be '.' or '..'")
    if "/" in name or "\\" in name:
        raise InvalidFilename("filename must not contain path separators")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") for ch in name):
        raise InvalidFilename("filename must not contain control characters")
    return name


def validate_content_type(content_type: object) -> str:
    if content_type is None or content_type == "":
        return "application/octet-stream"
    if not isinstance(content_type, str) or not CONTENT_TYPE_RE.match(content_type):
        raise InvalidFilename("content_type must look like type/subtype")
    return content_type.lower()


def storage_name(filename: str) -> str:
    """An ASCII, filesystem- and URL-safe version of ``filename``."""
    ascii_name = (
        unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    )
    safe = UNSAFE_PATH_CHARS.sub("-", ascii_name).strip(".-") or "file"
    if len(safe) > MAX_PATH_NAME_BYTES:
        stem, dot, ext = safe.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            safe = stem[: MAX_PATH_NAME_BYTES - len(ext) - 1] + "." + ext
        else:
            safe = safe[:MAX_PATH_NAME_BYTES]
    return safe


def storage_path(ulid_text: str, filename: str) -> str:
    return f"{ulid_text}-{storage_name(filename)}"


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """A Content-Disposition header value, RFC 6266/5987 safe for any name."""
    fallback = storage_name(filename).replace('"', "")
    value = f'{disposition}; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def guess_content_type(path: str) -> str | None:
    """``mimetypes.guess_type(path)[0]``, cached by what it looks at: the
    name's last two extensions (``.tar.gz``). Listings guess for every file,
    and the guess costs more than the rest of a listed file's handling."""
    if ":" in path:
        return mimetypes.guess_type(path)[0]  # a URL-like name
    stem, *extensions = path.rpartition("/")[2].rsplit(".", 2)
    if not extensions:
        return None
    if not stem.strip("."):
        # Leading dots (``.bashrc``) do not start an extension.
        return mimetypes.guess_type(path)[0]
    return _guess_by_extensions("x." + ".".join(extensions))


@lru_cache(maxsize=1024)
def _guess_by_extensions(name: str) -> str | None:
    return mimetypes.guess_type(name)[0]
