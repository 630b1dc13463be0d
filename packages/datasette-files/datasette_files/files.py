"""``get_file()`` and ``File``: reading registered files from Python."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .registry import FileRow
from .sources import Source
from .state import get_state


class File:
    """A registered file. Attributes mirror the ``file`` JSON object."""

    def __init__(self, row: FileRow, source: Source):
        self._row = row
        self._source = source
        self.id = row.id
        self.filename = row.filename
        self.content_type = row.content_type
        self.content_hash = row.content_hash
        self.size = row.size
        self.width = row.width
        self.height = row.height
        self.source_slug = row.source_slug
        self.path = row.path
        self.uploaded_by = row.uploaded_by
        self.created_at = row.created_at
        self.search_text = row.search_text
        self.metadata = row.metadata

    def __repr__(self) -> str:
        return f"<File {self.id} {self.filename!r}>"

    async def read(self, max_bytes: int | None = None) -> bytes:
        """The file's bytes; at most ``max_bytes`` when given."""
        storage = await self._source.ensure_ready()
        if max_bytes is not None:
            return await storage.read_file_limited(self.path, max_bytes)
        return await storage.read_file(self.path)

    @asynccontextmanager
    async def open(self) -> AsyncIterator[AsyncIterator[bytes]]:
        """``async with file.open() as chunks: async for chunk in chunks: ...``"""
        storage = await self._source.ensure_ready()
        stream = storage.stream_file(self.path)
        try:
            yield stream
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()


async def get_file(datasette, file_id: str) -> File | None:
    """The registered file with this id, or None (also for removed sources)."""
    state = get_state(datasette)
    row = await state.registry.get_file(file_id)
    if row is None:
        return None
    source = state.source(row.source_slug)
    if source is None:
        return None
    return File(row, source)
