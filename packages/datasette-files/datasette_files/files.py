"""``get_file()`` and ``File``: reading registered files from Python."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import fields
from typing import Any

from .compat import StorageCalls
from .registry import FileRow
from .sources import Source, SourceUnavailable
from .state import get_state

# What ``file["..."]`` and ``file.<name>`` read: every field of the row, as
# the dict datasette-files 0.1a3 passed to plugins had them.
FILE_KEYS = tuple(field.name for field in fields(FileRow))


class File(Mapping):
    """A registered file. Attributes mirror the ``file`` JSON object.

    It is also a read-only mapping of the same fields (``file["id"]``,
    ``file.get("size")``, ``"id" in file``), as the ``file`` dict that
    datasette-files 0.1a3 handed to ``file_actions`` plugins was.
    """

    def __init__(self, row: FileRow, source: Source | None):
        self._row = row
        self._source = source

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found the usual way: the row's fields.
        if name in FILE_KEYS:
            return getattr(self._row, name)
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"<File {self.id} {self.filename!r}>"

    def __getitem__(self, key: str):
        if key not in FILE_KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(FILE_KEYS)

    def __len__(self) -> int:
        return len(FILE_KEYS)

    # Mapping compares by value; files with equal fields hash alike.
    def __hash__(self) -> int:
        return hash(self.id)

    async def _storage(self) -> StorageCalls:
        if self._source is None:
            raise SourceUnavailable(f"Source '{self.source_slug}' is not configured")
        return await self._source.ensure_ready()

    async def read(self, max_bytes: int | None = None) -> bytes:
        """The whole file.

        With ``max_bytes``, a file larger than that raises
        ``datasette_files.base.FileTooLarge`` instead (the storage's
        ``read_file_limited``). For the first bytes only, use ``read_bytes``.
        """
        storage = await self._storage()
        if max_bytes is not None:
            return await storage.read_file_limited(self.path, max_bytes)
        return await storage.read_file(self.path)

    async def read_bytes(self, num_bytes: int = 2048) -> bytes:
        """The first ``num_bytes`` of the file (fewer if it is shorter)."""
        storage = await self._storage()
        return await storage.read_bytes(self.path, num_bytes)

    @asynccontextmanager
    async def open(self) -> AsyncIterator[AsyncIterator[bytes]]:
        """``async with file.open() as chunks: async for chunk in chunks: ...``"""
        storage = await self._storage()
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
