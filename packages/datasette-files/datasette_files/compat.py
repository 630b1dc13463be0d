"""Calling a storage the way it was written.

Storages written for datasette-files 0.1a3 may override methods with their
0.1a3 signatures: ``download_url(path, expires_in=300)`` without the
``filename`` / ``content_type`` keywords, ``stream_file(path)`` without a byte
range. The core never calls a storage directly: ``Source.ensure_ready()``
returns a ``StorageCalls``, which calls each method in a shape the storage
accepts. The signatures are read once per storage class, when the storage
type is discovered (``call_shapes``), never per request.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from dataclasses import dataclass

from .base import FileMetadata, Storage

DEFAULT_EXPIRES_IN = 300


@dataclass(frozen=True)
class CallShapes:
    """Which post-0.1a3 arguments one storage class's overrides accept."""

    # download_url(path, expires_in, filename=..., content_type=...)
    download_url_names: bool
    # stream_file(path, start=..., end=...)
    stream_file_range: bool


_SHAPES: dict[type, CallShapes] = {}


def call_shapes(storage_class: type) -> CallShapes:
    """The class's call shapes, read from its signatures the first time only."""
    shapes = _SHAPES.get(storage_class)
    if shapes is None:
        shapes = _SHAPES[storage_class] = read_call_shapes(storage_class)
    return shapes


def read_call_shapes(storage_class: type) -> CallShapes:
    return CallShapes(
        download_url_names=accepts_keywords(
            storage_class.download_url, "filename", "content_type"
        ),
        stream_file_range=accepts_keywords(storage_class.stream_file, "start", "end"),
    )


def accepts_keywords(method, *names: str) -> bool:
    """Whether ``method`` can be called with every one of ``names`` as keywords."""
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False
    kinds = {name: parameter.kind for name, parameter in parameters.items()}
    if inspect.Parameter.VAR_KEYWORD in kinds.values():
        return True
    return all(
        kinds.get(name)
        in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        for name in names
    )


class StorageCalls:
    """A configured storage as the core calls it.

    The methods below are called the way the storage was written (0.1a3
    shapes included); every other attribute is the storage's own.
    """

    def __init__(self, storage: Storage):
        self.storage = storage
        self.shapes = call_shapes(type(storage))

    def __getattr__(self, name):
        return getattr(self.storage, name)

    def __repr__(self) -> str:
        return f"<StorageCalls {self.storage!r}>"

    async def download_url(
        self,
        path: str,
        expires_in: int = DEFAULT_EXPIRES_IN,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        if self.shapes.download_url_names:
            return await self.storage.download_url(
                path, expires_in, filename=filename, content_type=content_type
            )
        return await self.storage.download_url(path, expires_in)

    def stream_file(
        self, path: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Bytes ``start``..``end`` (inclusive) of ``path``.

        The storage gets the range only when it declares ``can_range_read``
        and its ``stream_file`` takes ``start`` and ``end``; otherwise it
        streams from byte 0 and the range is cut out here, so a Range request
        still gets exactly its bytes.
        """
        if start == 0 and end is None:
            return self.storage.stream_file(path)
        if self.shapes.stream_file_range and self.storage.capabilities.can_range_read:
            return self.storage.stream_file(path, start=start, end=end)
        return sliced(self.storage.stream_file(path), start, end)

    async def receive_upload(
        self, path: str, stream: AsyncIterator[bytes], content_type: str | None
    ) -> FileMetadata:
        return await self.storage.receive_upload(path, stream, content_type)

    async def read_bytes(self, path: str, num_bytes: int = 2048) -> bytes:
        return await self.storage.read_bytes(path, num_bytes)

    async def read_file_limited(self, path: str, max_bytes: int) -> bytes:
        return await self.storage.read_file_limited(path, max_bytes)

    async def list_files(
        self, prefix: str = "", cursor: str | None = None, limit: int = 100
    ) -> tuple[list[FileMetadata], str | None]:
        return await self.storage.list_files(prefix, cursor, limit)


async def sliced(
    chunks: AsyncIterator[bytes], start: int, end: int | None
) -> AsyncIterator[bytes]:
    """Cut ``start..end`` (inclusive; None: to the end) out of a stream from byte 0."""
    position = 0
    try:
        async for chunk in chunks:
            chunk_end = position + len(chunk)
            if chunk_end > start:
                stop = len(chunk) if end is None else end - position + 1
                yield chunk[max(start - position, 0) : stop]
            position = chunk_end
            if end is not None and position > end:
                break
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
