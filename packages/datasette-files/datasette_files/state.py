"""The plugin's per-Datasette state: registry, sources and settings."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .registry import Registry
from .settings import int_setting, plugin_settings, seconds_setting
from .sources import CONNECT_TIMEOUT, RETRY_SECONDS, Source, SourceUnavailable

if TYPE_CHECKING:
    # These modules take a FilesState themselves: imported for types only.
    from .compat import StorageCalls
    from .hashing import Hasher
    from .imports.runner import ImportManager
    from .sync.jobs import SyncJobs
    from .thumbnails.service import Thumbnailer

log = logging.getLogger("datasette_files")

DEFAULT_UPLOAD_EXPIRES = 3600
DEFAULT_SWEEP_INTERVAL = 300
DEFAULT_INLINE_HASH_MAX_SIZE = 64 * 1024 * 1024
DEFAULT_THUMBNAIL_CONCURRENCY = 2
DEFAULT_UPLOAD_IDLE_TIMEOUT = 60.0


@dataclass
class Settings:
    """The plugin-wide settings (docs/configuration.md)."""

    # Seconds an upload token stays valid (prepare → complete).
    upload_expires: int = DEFAULT_UPLOAD_EXPIRES
    # Seconds between sweeps of expired pending uploads.
    sweep_interval: int = DEFAULT_SWEEP_INTERVAL
    # Bytes; larger proxied uploads are hashed after complete, in the background.
    inline_hash_max_size: int = DEFAULT_INLINE_HASH_MAX_SIZE
    thumbnail_concurrency: int = DEFAULT_THUMBNAIL_CONCURRENCY
    # Seconds a request body may go without a byte before a 408.
    upload_idle_timeout: float = DEFAULT_UPLOAD_IDLE_TIMEOUT
    # Seconds an unavailable source waits before trying its backend again.
    source_retry_interval: float = RETRY_SECONDS
    # Seconds one attempt to reach a source's backend may take.
    source_connect_timeout: float = CONNECT_TIMEOUT

    @classmethod
    @plugin_settings
    def from_config(cls, plugin_config: dict) -> Settings:
        return cls(
            upload_expires=int_setting(
                plugin_config, "upload_expires", DEFAULT_UPLOAD_EXPIRES, 1
            ),
            sweep_interval=int_setting(
                plugin_config, "sweep_interval", DEFAULT_SWEEP_INTERVAL, 1
            ),
            inline_hash_max_size=int_setting(
                plugin_config, "inline_hash_max_size", DEFAULT_INLINE_HASH_MAX_SIZE, 1
            ),
            thumbnail_concurrency=int_setting(
                plugin_config, "thumbnail_concurrency", DEFAULT_THUMBNAIL_CONCURRENCY, 1
            ),
            upload_idle_timeout=seconds_setting(
                plugin_config,
                "upload_idle_timeout",
                DEFAULT_UPLOAD_IDLE_TIMEOUT,
                above=True,
            ),
            source_retry_interval=seconds_setting(
                plugin_config, "source_retry_interval", RETRY_SECONDS
            ),
            source_connect_timeout=seconds_setting(
                plugin_config, "source_connect_timeout", CONNECT_TIMEOUT, above=True
            ),
        )


@dataclass
class FilesState:
    """Everything the views need, built once at startup."""

    registry: Registry
    settings: Settings
    sources: dict[str, Source] = field(default_factory=dict)
    internal_is_temporary: bool = False
    sweeper: asyncio.Task | None = None
    hasher: Hasher | None = None
    thumbnailer: Thumbnailer | None = None
    imports: ImportManager | None = None
    syncs: SyncJobs | None = None

    def source(self, slug: str) -> Source | None:
        return self.sources.get(slug)

    async def storage_for(self, slug: str) -> StorageCalls:
        source = self.sources.get(slug)
        if source is None:
            raise SourceUnavailable(f"Source '{slug}' is not configured")
        return await source.ensure_ready()


def internal_is_temporary(datasette) -> bool:
    db = datasette.get_internal_database()
    return bool(getattr(db, "is_temp_disk", False) or getattr(db, "is_memory", False))


def get_state(datasette) -> FilesState:
    state = getattr(datasette, "_datasette_files_state", None)
    if state is None:
        raise RuntimeError("datasette-files has not started yet")
    return state


def set_state(datasette, state: FilesState) -> None:
    datasette._datasette_files_state = state
