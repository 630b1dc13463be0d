"""What a source accepts: ``allowed_types`` and ``on_duplicate``.

Both live in a source's ``config:`` block, beside the storage's own keys; the
core takes them out (``AcceptRules.pop_from``) before the storage sees its
config, so they work the same for every storage.

An upload to a source with ``allowed_types`` is checked twice: its declared
type at prepare, and its first bytes (``SNIFF_BYTES``) once they arrive. The
bytes are judged by ``check_bytes``; docs/configuration.md states the rules
and what they can and cannot catch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import puremagic

from .base import StorageConfigError

# How much of an upload is sniffed: the first bytes only, whatever its size.
SNIFF_BYTES = 4096
ON_DUPLICATE = ("allow", "reuse", "reject")
# Keys of a source's config that belong to the core, not the storage.
CORE_CONFIG_KEYS = ("allowed_types", "on_duplicate")

_NAME = r"[a-z0-9][a-z0-9!#$&^_.+-]*"
ALLOWED_TYPE_RE = re.compile(rf"^(?:\*/\*|{_NAME}/(?:\*|{_NAME}))$")

# Names browsers and tools use for the same format → the one we compare.
ALIASES = {
    "application/excel": "application/vnd.ms-excel",
    "application/mspowerpoint": "application/vnd.ms-powerpoint",
    "application/x-gzip": "application/gzip",
    "application/x-pdf": "application/pdf",
    "application/x-zip-compressed": "application/zip",
    "audio/mp3": "audio/mpeg",
    "audio/wave": "audio/wav",
    "audio/x-wav": "audio/wav",
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-icon": "image/vnd.microsoft.icon",
    "image/x-ms-bmp": "image/bmp",
    "image/x-png": "image/png",
    "text/xml": "application/xml",
}
# A declared type that says nothing about the format.
GENERIC = "application/octet-stream"
# Top-level types whose subtypes are labels of one kind of thing: a sniffed
# image/jpeg is consistent with a declared image/png (the allowlist still has
# to accept image/jpeg).
SAME_KIND = ("image", "audio", "video", "font")
# Formats that always start with a signature puremagic knows: bytes without
# it are not that format.
SIGNED_TYPES = frozenset(
    {
        "application/gzip",
        "application/pdf",
        "application/zip",
        "image/bmp",
        "image/gif",
        "image/jpeg",
        "image/png",
        "image/tiff",
        "image/webp",
    }
)
# Image formats that are text (and have no signature to sniff).
TEXT_IMAGES = ("image/svg+xml", "image/x-xbitmap", "image/x-xpixmap")
CONTAINERS = {
    # Office documents, EPUB, JAR and friends are ZIP files inside; the
    # signature cannot tell them apart, so the declared type stands.
    "application/zip": (
        "+zip",
        "application/java-archive",
        "application/vnd.android.package-archive",
        "application/vnd.ms-",
        "application/vnd.oasis.opendocument.",
        "application/vnd.openxmlformats-officedocument.",
    ),
    "application/x-ole-storage": (
        "application/msword",
        "application/vnd.ms-",
        "application/vnd.visio",
    ),
}

# WHATWG MIME Sniffing's "binary data bytes": text never contains them.
BINARY_BYTE = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
WHITESPACE = b"\t\n\x0c\r "
# WHATWG MIME Sniffing's HTML patterns, and more elements that run script
# or load content, each followed by a tag-terminating byte.
HTML_START = re.compile(
    rb"<(?:!doctype\s+html|html|head|script|iframe|h1|div|font|table|a|style|"
    rb"title|b|body|br|p|!--|img|object|embed|meta|link|form|base|frameset|"
    rb"frame|math|template|svg)[\s>/]"
)


class NotAccepted(Exception):
    """The upload is not one this source accepts (HTTP 415)."""


def essence(content_type: str) -> str:
    """``Text/CSV; charset=utf-8`` → ``text/csv``, aliases resolved."""
    bare = content_type.split(";", 1)[0].strip().lower()
    return ALIASES.get(bare, bare)


@dataclass(frozen=True)
class AcceptRules:
    """A source's ``allowed_types`` (None: anything) and ``on_duplicate``."""

    allowed_types: tuple[str, ...] | None = None
    on_duplicate: str = "allow"

    @classmethod
    def pop_from(cls, config: dict) -> AcceptRules:
        """Take the core's keys out of a source's config and validate them;
        raises ``StorageConfigError`` naming the key."""
        allowed = config.pop("allowed_types", None)
        on_duplicate = config.pop("on_duplicate", None)
        if on_duplicate is None:
            on_duplicate = "allow"
        if on_duplicate not in ON_DUPLICATE:
            raise StorageConfigError(
                f"must be one of {', '.join(ON_DUPLICATE)}, not {on_duplicate!r}",
                key="on_duplicate",
            )
        return cls(parse_allowed_types(allowed), on_duplicate)

    def allows(self, content_type: str) -> bool:
        if self.allowed_types is None:
            return True
        # Both the type as sent and its canonical name: text/xml is matched
        # by text/* as well as by application/xml.
        bare = content_type.split(";", 1)[0].strip().lower()
        names = {bare, essence(bare)}
        tops = {name.split("/", 1)[0] + "/*" for name in names}
        return any(
            rule == "*/*" or rule in tops or essence(rule) in names
            for rule in self.allowed_types
        )

    def describe(self) -> str:
        return ", ".join(self.allowed_types or ("*/*",))

    def check_declared(self, content_type: str) -> None:
        if not self.allows(content_type):
            raise NotAccepted(
                f"This source does not accept {essence(content_type)}; "
                f"allowed types: {self.describe()}"
            )

    def check_bytes(self, content_type: str, head: bytes) -> None:
        """Whether ``head``, an upload's first bytes, fits its declared
        type and this allowlist; raises ``NotAccepted`` if not."""
        declared = essence(content_type)
        sniffed = sniff(head, declared)
        if not sniffed and declared in SIGNED_TYPES:
            what = "empty" if not head else "text" if is_text(head) else "other"
            self._refuse(f"the bytes ({what}) have no {declared} signature")
        if not sniffed:
            if is_text(head) and declared.startswith("image/"):
                if declared not in TEXT_IMAGES:
                    self._refuse(f"the bytes are text, not {declared}")
            # No signature: judged by the declared type, allowed at prepare.
            return
        for candidate in sniffed:
            standing = consistent(declared, candidate)
            if standing is not None and self.allows(standing):
                return
        self._refuse(f"the bytes look like {sniffed[0]}, not {declared}")

    def _refuse(self, reason: str) -> None:
        raise NotAccepted(f"Upload refused: {reason}; allowed types: {self.describe()}")


def parse_allowed_types(value) -> tuple[str, ...] | None:
    if value is None:
        return None
    key = "allowed_types"
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise StorageConfigError(
            "must be a non-empty list of MIME types such as image/* or application/pdf",
            key=key,
        )
    parsed = []
    for item in value:
        text = item.strip().lower() if isinstance(item, str) else None
        if not text or not ALLOWED_TYPE_RE.match(text):
            raise StorageConfigError(
                f"{item!r} is not a MIME type like image/png, image/* or */*",
                key=key,
            )
        parsed.append(text)
    return tuple(dict.fromkeys(parsed))


def consistent(declared: str, sniffed: str) -> str | None:
    """The type an upload counts as when its bytes sniff as ``sniffed``, or
    None if that contradicts ``declared``."""
    if sniffed == declared:
        return declared
    if declared == GENERIC:
        return sniffed
    if (
        sniffed == "application/xml"
        and (declared == "application/xml" or declared.endswith("+xml"))
        and declared != "image/svg+xml"
    ):
        return declared
    if sniffed == "text/html" and declared == "application/xhtml+xml":
        return declared
    members = CONTAINERS.get(sniffed, ())
    if members and (declared.startswith(members) or declared.endswith(members)):
        return declared
    top = sniffed.split("/", 1)[0]
    if (
        top in SAME_KIND
        and declared.split("/", 1)[0] == top
        and "image/svg+xml" not in (sniffed, declared)
    ):
        return sniffed
    return None


def sniff(head: bytes, declared: str) -> list[str]:
    """The types ``head`` looks like, most telling first; [] if it carries
    no signature we know.

    Markup (HTML, SVG, XML) is recognised by its opening, as browsers do.
    In bytes that are text, a signature only ever confirms the declared
    type (``%PDF-`` for application/pdf): short ones such as ``MZ`` or
    ``BM`` also begin ordinary sentences, so they never contradict it.
    """
    markup = markup_type(head)
    if markup is not None:
        return [markup]
    found = signatures(head)
    if is_text(head):
        return [declared] if declared in found else []
    return found


def signatures(head: bytes) -> list[str]:
    """Every type puremagic finds a signature of, canonical names, in order."""
    if not head:
        return []
    try:
        matches = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        return []
    found = [essence(match.mime_type) for match in matches if match.mime_type]
    return list(dict.fromkeys(found))


def is_text(head: bytes) -> bool:
    return BINARY_BYTE.search(head) is None


def markup_type(head: bytes) -> str | None:
    """text/html, image/svg+xml or application/xml if ``head`` opens like
    one (after a byte order mark and whitespace), else None."""
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip(WHITESPACE)[:512].lower()
    if not start.startswith(b"<"):
        return None
    lowered = head.lower()
    if start.startswith((b"<?xml", b"<!doctype", b"<!--", b"<svg")):
        if b"<svg" in lowered:
            return "image/svg+xml"
        if b"<html" in lowered or b"http://www.w3.org/1999/xhtml" in lowered:
            return "text/html"
        if start.startswith(b"<?xml"):
            return "application/xml"
    if HTML_START.match(start):
        return "text/html"
    return None
