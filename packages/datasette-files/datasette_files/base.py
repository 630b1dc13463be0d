"""The public storage interface: what a storage plugin implements.

This module is a stable API. Storage plugins written for datasette-files 0.1a3
(abstract methods plus ``receive_upload``) keep working; everything added since
has a default so old plugins need no change.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

# Public here so that storages that serve downloads themselves (a presigned
# URL's response headers) send the same header as the core.
from .filenames import content_disposition

__all__ = [
    "FileMetadata",
    "FileTooLarge",
    "MultipartUpload",
    "PathOutsideRoot",
    "Storage",
    "StorageCapabilities",
    "StorageConfigError",
    "StorageFull",
    "StorageUnavailable",
    "ThumbnailGenerationError",
    "ThumbnailGenerator",
    "ThumbnailResult",
    "UploadInstructions",
    "UploadVerificationError",
    "content_disposition",
]

DEFAULT_CHUNK_SIZE = 1024 * 1024

GetSecret = Callable[[str], Awaitable["str | None"]]


@dataclass
class FileMetadata:
    """What a storage knows about one stored object."""

    path: str
    filename: str
    content_type: str | None = None
    content_hash: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    created_at: str | None = None
    metadata: dict = field(default_factory=dict)


@dataclass
class StorageCapabilities:
    """What a storage can do; the core only offers what is declared here."""

    # Uploads are offered (prepare answers 403 without it).
    can_upload: bool = False
    can_delete: bool = False
    # list_files works: sync and the debug listing need it.
    can_list: bool = False
    # download_url returns a signed URL; downloads redirect to it.
    can_generate_signed_urls: bool = False
    # Downloads stream through Datasette (stream_file) even with signed URLs.
    requires_proxy_download: bool = False
    # Bytes; prepare refuses larger declared sizes with 413.
    max_file_size: int | None = None
    # Added after 0.1a3, all default to False.
    # prepare_upload may hand out a URL the client sends the bytes to.
    can_direct_upload: bool = False
    # ... or parts of a large file, each to its own URL.
    can_multipart_upload: bool = False
    # stream_file honours start/end, so a Range request reads only that.
    can_range_read: bool = False
    # receive_upload returns the sha256 in FileMetadata.content_hash, so the
    # core does not hash proxied uploads a second time.
    hashes_uploads: bool = False


@dataclass
class MultipartUpload:
    """How a client uploads a large file in parts straight to the backend."""

    part_size: int
    part_count: int
    # The storage's own handle, e.g. an S3 UploadId. Shown to nobody: keep
    # what ``complete_upload`` needs in ``UploadInstructions.state``.
    upload_id: str
    # The response header of each part PUT whose value identifies the part;
    # the client sends it back as the ``ETag`` of each entry in ``parts``.
    # Browsers can read it only if the backend's CORS rules expose it.
    part_tag_header: str = "ETag"


@dataclass
class UploadInstructions:
    """How a client should send the bytes of one upload.

    For a single request: send ``upload_method`` to ``upload_url`` with
    ``upload_headers``; for a POST with ``upload_fields``, send a
    multipart/form-data body of those fields followed by a ``file`` field.
    When ``multipart`` is set, ask the core for presigned part URLs instead.
    ``state`` is private to the storage: the core persists it with the pending
    upload and hands it back to ``presign_parts`` / ``complete_upload`` /
    ``abort_upload``, but never reads it. Which of the three modes an upload
    uses (proxy: None returned; direct; multipart) the core records itself.
    """

    upload_url: str
    upload_method: str = "POST"
    upload_headers: dict = field(default_factory=dict)
    upload_fields: dict = field(default_factory=dict)
    multipart: MultipartUpload | None = None
    state: dict = field(default_factory=dict)


class FileTooLarge(Exception):
    """The upload is larger than the source allows."""

    @classmethod
    def for_limit(cls, max_bytes):
        return cls(f"File exceeds the {max_bytes} byte limit")


class StorageConfigError(ValueError):
    """A source's config is invalid. Message should name the key."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class StorageUnavailable(Exception):
    """The backend cannot be reached right now; the request may be retried."""


class StorageFull(Exception):
    """The backend has no room for this upload (a full disk, a quota)."""


class UploadVerificationError(Exception):
    """A direct upload is missing from the backend or has the wrong size."""


class PathOutsideRoot(ValueError):
    """A storage path that would resolve outside the storage root."""


class Storage(ABC):
    """Base class for storage backends.

    The core creates one instance per configured source and awaits
    ``configure(config, get_secret)`` before use. Paths are relative keys
    chosen by the core (never raw client input); a storage maps them to its
    own namespace (a directory, a bucket prefix).
    """

    @property
    @abstractmethod
    def storage_type(self) -> str:
        """Short name used in ``storage:`` config, e.g. ``filesystem``."""

    @property
    @abstractmethod
    def capabilities(self) -> StorageCapabilities:
        """What this storage supports."""

    @abstractmethod
    async def configure(self, config: dict, get_secret: GetSecret) -> None:
        """Validate and apply the source config.

        Raise ``StorageConfigError`` (or ``KeyError``/``ValueError``) for bad
        config: startup stops. Raise ``StorageUnavailable`` if the backend
        cannot be reached: the source is marked unavailable and retried.
        """

    @abstractmethod
    async def get_file_metadata(self, path: str) -> FileMetadata | None:
        """Metadata for ``path``, or None if it does not exist."""

    @abstractmethod
    async def read_file(self, path: str) -> bytes:
        """The whole file. Prefer ``stream_file`` for anything large."""

    async def read_file_limited(self, path: str, max_bytes: int) -> bytes:
        """The whole file, or ``FileTooLarge`` if it is larger than ``max_bytes``.

        The recorded size is checked first, so an oversize file is refused
        without being read; the length read is checked again after.
        """
        metadata = await self.get_file_metadata(path)
        if metadata is not None and (metadata.size or 0) > max_bytes:
            raise FileTooLarge.for_limit(max_bytes)
        data = await self.read_file(path)
        if len(data) > max_bytes:
            raise FileTooLarge.for_limit(max_bytes)
        return data

    async def read_bytes(self, path: str, num_bytes: int = 2048) -> bytes:
        """The first ``num_bytes`` of the file (for previews and sniffing)."""
        return await first_bytes(self.stream_file(path), num_bytes)

    async def stream_file(
        self, path: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Yield the bytes of ``path`` from ``start`` to ``end`` inclusive.

        The default reads the whole file once; storages should override it.
        """
        data = await self.read_file(path)
        stop = len(data) if end is None else end + 1
        for offset in range(start, stop, DEFAULT_CHUNK_SIZE):
            yield data[offset : min(offset + DEFAULT_CHUNK_SIZE, stop)]

    async def receive_upload(
        self, path: str, stream: AsyncIterator[bytes], content_type: str | None
    ) -> FileMetadata:
        """Store the bytes from ``stream`` at ``path``.

        Must not leave a partial object at ``path`` if ``stream`` raises.
        """
        raise NotImplementedError(f"{self.storage_type} does not accept uploads")

    async def delete_file(self, path: str) -> None:
        """Delete ``path``; deleting a missing file is not an error."""
        raise NotImplementedError(f"{self.storage_type} cannot delete files")

    async def list_files(
        self, prefix: str = "", cursor: str | None = None, limit: int = 100
    ) -> tuple[list[FileMetadata], str | None]:
        """One page of stored objects and the cursor for the next page."""
        raise NotImplementedError(f"{self.storage_type} cannot list files")

    async def download_url(
        self,
        path: str,
        expires_in: int = 300,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        """A short-lived URL the client can fetch directly, or None to proxy."""
        return None

    async def prepare_upload(
        self,
        path: str,
        content_type: str | None,
        size: int,
        expires_in: int = 3600,
    ) -> UploadInstructions | None:
        """Instructions for a direct client-to-backend upload.

        Return None (the default) to have the bytes sent through Datasette.
        """
        return None

    async def presign_parts(
        self, path: str, state: dict, part_numbers: list[int], expires_in: int = 3600
    ) -> dict[int, str]:
        """Presigned URLs for the given parts of a multipart direct upload."""
        raise NotImplementedError(f"{self.storage_type} has no multipart uploads")

    async def complete_upload(
        self, path: str, state: dict, parts: list[dict] | None = None
    ) -> None:
        """Finish a direct upload (e.g. complete an S3 multipart upload)."""

    async def abort_upload(self, path: str, state: dict) -> None:
        """Remove any partial data left by an unfinished upload."""
        try:
            await self.delete_file(path)
        except NotImplementedError:
            pass

    async def list_unfinished_uploads(self) -> list[dict]:
        """Partial uploads the backend holds (temp files, multipart uploads).

        Each dict has at least ``path`` and ``state`` suitable for
        ``abort_upload``, and ideally ``initiated`` (ISO 8601: when the upload
        started or last wrote). The startup sweep removes those no pending
        upload owns; the periodic sweep only those older than
        ``upload_expires``, so it needs ``initiated``.
        """
        return []

    async def check_available(self) -> None:
        """Raise ``StorageUnavailable`` if the backend cannot be reached."""

    async def close(self) -> None:
        """Release clients and connections at shutdown."""


async def first_bytes(chunks: AsyncIterator[bytes], num_bytes: int) -> bytes:
    """Up to ``num_bytes`` from the start of ``chunks``, then close it."""
    parts = []
    remaining = num_bytes
    try:
        while remaining > 0:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            parts.append(chunk[:remaining])
            remaining -= len(parts[-1])
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    return b"".join(parts)


def content_type_or_default(content_type: str | None) -> str:
    return content_type or "application/octet-stream"


def safe_join(root: str, path: str) -> str:
    """Join ``path`` under ``root``; raise ``PathOutsideRoot`` if it escapes.

    Both sides are resolved first (``..``, symlinks), so nothing reaches
    outside ``root``.
    """
    root_real = os.path.realpath(root)
    full = os.path.realpath(os.path.join(root_real, path))
    if full != root_real and not full.startswith(root_real + os.sep):
        raise PathOutsideRoot(f"path {path!r} is outside the storage root")
    return full


# Thumbnail generators in the shape datasette-files 0.1a3 documented. The core
# wraps them (thumbnails/legacy.py) so they run under the same limits and
# cache as generators of the current protocol (datasette_files.thumbnails).


@dataclass
class ThumbnailResult:
    """What a 0.1a3-style ``ThumbnailGenerator.generate`` returns."""

    thumb_bytes: bytes
    content_type: str
    width: int
    height: int


class ThumbnailGenerationError(Exception):
    """Raised by a 0.1a3-style generator: no thumbnail for this file.

    ``skipped=True`` means the file is refused (cached as ``skipped``);
    otherwise it is broken (cached as ``failed``). Neither is retried.
    """

    def __init__(self, reason: str, *, skipped: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.skipped = skipped


class ThumbnailGenerator:
    """Base class for 0.1a3-style thumbnail generators.

    Return instances from the ``register_thumbnail_generators`` hook. New
    generators may prefer the protocol in ``datasette_files.thumbnails``,
    which also sees the whole file record and the thumbnail policy.
    """

    name: str = ""
    # Part of the cache key: change it when the output changes.
    version: str = "1"

    async def can_generate(self, content_type: str | None, filename: str) -> bool:
        """Whether this generator handles the file. Must be quick."""
        return False

    async def generate(
        self,
        file_bytes: bytes,
        content_type: str | None,
        filename: str,
        max_width: int = 200,
        max_height: int = 200,
    ) -> ThumbnailResult | None:
        """The thumbnail, fitting ``max_width`` x ``max_height``; None to skip."""
        raise NotImplementedError
