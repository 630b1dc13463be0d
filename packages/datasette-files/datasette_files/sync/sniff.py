"""A content type from a file's first bytes, for names that do not tell."""

from __future__ import annotations

# (offset, magic bytes, content type), most specific first.
SIGNATURES = [
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"BM", "image/bmp"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"OggS", "audio/ogg"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"SQLite format 3\x00", "application/vnd.sqlite3"),
    (4, b"ftyp", "video/mp4"),
]


def sniff_content_type(head: bytes) -> str | None:
    """The type the bytes announce, ``text/plain`` for UTF-8 text, else None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    for offset, magic, content_type in SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return content_type
    stripped = head.lstrip()
    if stripped[:5].lower() in (b"<?xml", b"<svg ") and b"<svg" in head:
        return "image/svg+xml"
    if not head or b"\x00" in head:
        return None
    try:
        # The cut may fall inside a multi-byte character: ignore the tail.
        head.decode("utf-8")
    except UnicodeDecodeError as ex:
        if ex.start < len(head) - 3:
            return None
    return "text/plain"
