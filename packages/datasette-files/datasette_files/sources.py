"""Sources: the plugin config turned into configured Storage instances.

A source whose config is wrong stops startup with a message naming the source
and the key. A source whose backend cannot be reached is kept, marked
unavailable, and retried on later requests (with a short backoff) until its
backend answers.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field

from datasette.utils import StartupError

from .base import Storage, StorageConfigError, StorageUnavailable
from .compat import StorageCalls, call_shapes
from .hookspecs import plugin_manager

log = logging.getLogger("datasette_files")

SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
RETRY_SECONDS = 2.0


class SourceUnavailable(Exception):
    """The source's backend cannot be reached right now."""


@dataclass
class Source:
    """One configured source and whether its backend is usable."""

    slug: str
    storage_type: str
    config: dict
    storage: Storage
    get_secret: object = None
    ready: bool = False
    error: str | None = None
    last_attempt: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def capabilities(self):
        return self.storage.capabilities

    @property
    def max_file_size(self) -> int | None:
        return self.storage.capabilities.max_file_size

    async def connect(self) -> None:
        """Configure the storage; StorageUnavailable leaves it not ready."""
        async with self._lock:
            if self.ready:
                return
            self.last_attempt = time.monotonic()
            try:
                await self.storage.configure(dict(self.config), self.get_secret)
                await self.storage.check_available()
            except StorageUnavailable as ex:
                self.error = str(ex) or "backend unavailable"
                return
            except (StorageConfigError, KeyError, ValueError, TypeError) as ex:
                raise StartupError(config_error_message(self.slug, ex)) from ex
            self.ready = True
            self.error = None

    async def ensure_ready(self) -> StorageCalls:
        """The storage, reconnecting if the backend was down; else raise.

        Returned wrapped in ``StorageCalls``, which calls storages written for
        0.1a3 with their 0.1a3 signatures.
        """
        if not self.ready and time.monotonic() - self.last_attempt >= RETRY_SECONDS:
            try:
                await self.connect()
            except StartupError as ex:
                self.error = str(ex)
        if not self.ready:
            raise SourceUnavailable(
                f"Source '{self.slug}' is unavailable: {self.error}"
            )
        return StorageCalls(self.storage)

    def mark_unavailable(self, error: str) -> None:
        """A call failed with StorageUnavailable: re-check before the next use."""
        self.ready = False
        self.error = error
        self.last_attempt = time.monotonic() - RETRY_SECONDS


def config_error_message(slug: str, ex: Exception) -> str:
    if isinstance(ex, KeyError):
        key = ex.args[0] if ex.args else "?"
        return f"datasette-files source '{slug}': missing required config key '{key}'"
    key = getattr(ex, "key", None)
    detail = str(ex)
    if key and f"'{key}'" not in detail:
        detail = f"'{key}': {detail}"
    return f"datasette-files source '{slug}': {detail}"


def parse_sources(plugin_config: dict, storage_types: dict[str, type]) -> list[Source]:
    """Validate the ``sources:`` block and instantiate (not yet configure)."""
    sources_config = plugin_config.get("sources") or {}
    if not isinstance(sources_config, dict):
        raise StartupError("datasette-files: 'sources' must be a mapping of slugs")
    sources = []
    for slug, entry in sources_config.items():
        prefix = f"datasette-files source '{slug}'"
        if not isinstance(slug, str) or not SLUG_RE.match(slug):
            raise StartupError(
                f"{prefix}: slug must be 1-64 letters, digits, '-' or '_'"
            )
        if not isinstance(entry, dict):
            raise StartupError(f"{prefix}: must be a mapping with a 'storage' key")
        unknown = set(entry) - {"storage", "config"}
        if unknown:
            raise StartupError(f"{prefix}: unknown key '{sorted(unknown)[0]}'")
        storage_type = entry.get("storage")
        if not storage_type:
            raise StartupError(f"{prefix}: missing required key 'storage'")
        if storage_type not in storage_types:
            known = ", ".join(sorted(storage_types)) or "none"
            raise StartupError(
                f"{prefix}: unknown storage '{storage_type}' (known: {known})"
            )
        config = entry.get("config") or {}
        if not isinstance(config, dict):
            raise StartupError(f"{prefix}: 'config' must be a mapping")
        sources.append(
            Source(
                slug=slug,
                storage_type=storage_type,
                config=config,
                storage=storage_types[storage_type](),
            )
        )
    return sources


def discover_storage_types(datasette) -> dict[str, type]:
    """storage type name → Storage class, from every plugin's hook.

    Each class's method signatures are read here, once (see ``compat``).
    """
    types = {}
    hook = plugin_manager().hook
    for classes in hook.register_files_storage_types(datasette=datasette):
        for cls in classes or []:
            name = cls.storage_type
            if not isinstance(name, str):
                # storage_type declared as a property: read it off an instance.
                name = cls().storage_type
            call_shapes(cls)
            types[name] = cls
    return types
