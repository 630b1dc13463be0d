"""The plugin's per-Datasette state: registry, sources and settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from datasette.utils import StartupError

from .registry import Registry
from .sources import CONNECT_TIMEOUT, RETRY_SECONDS, Source, SourceUnavailable

log = logging.getLogger("datasette_files")

PLUGIN = "datasette-files"
DEFAULT_UPLOAD_EXPIRES = 3600
DEFAULT_SWEEP_INTERVAL = 300
DEFAULT_INLINE_HASH_MAX_SIZE = 64 * 1024 * 1024
DEFAULT_THUMBNAIL_CONCURRENCY = 2
DEFAULT_UPLOAD_IDLE_TIMEOUT = 60.0


def positive_int_setting(plugin_config: dict, key: str, default: int) -> int:
    value = plugin_config.get(key, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise StartupError(f"datasette-files: '{key}' must be a positive integer")
    return value


def seconds_setting(
    plugin_config: dict, key: str, default: float, allow_zero: bool = False
) -> float:
    """A number of seconds: an int, a float or a numeric string."""
    value = plugin_config.get(key, default)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    valid = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not valid or value != value or value < 0 or (value == 0 and not allow_zero):
        kind = "a number of seconds, 0 or more" if allow_zero else "a positive number"
        raise StartupError(f"datasette-files: '{key}' must be {kind}")
    return float(value)


@dataclass
class Settings:
    upload_expires: int = DEFAULT_UPLOAD_EXPIRES
    sweep_interval: int = DEFAULT_SWEEP_INTERVAL
    inline_hash_max_size: int = DEFAULT_INLINE_HASH_MAX_SIZE
    thumbnail_concurrency: int = DEFAULT_THUMBNAIL_CONCURRENCY
    upload_idle_timeout: float = DEFAULT_UPLOAD_IDLE_TIMEOUT
    source_retry_interval: float = RETRY_SECONDS
    source_connect_timeout: float = CONNECT_TIMEOUT

    @classmethod
    def from_config(cls, plugin_config: dict) -> Settings:
        return cls(
            upload_expires=positive_int_setting(
                plugin_config, "upload_expires", DEFAULT_UPLOAD_EXPIRES
            ),
            sweep_interval=positive_int_setting(
                plugin_config, "sweep_interval", DEFAULT_SWEEP_INTERVAL
            ),
            inline_hash_max_size=positive_int_setting(
                plugin_config, "inline_hash_max_size", DEFAULT_INLINE_HASH_MAX_SIZE
            ),
            thumbnail_concurrency=positive_int_setting(
                plugin_config, "thumbnail_concurrency", DEFAULT_THUMBNAIL_CONCURRENCY
            ),
            upload_idle_timeout=seconds_setting(
                plugin_config, "upload_idle_timeout", DEFAULT_UPLOAD_IDLE_TIMEOUT
            ),
            source_retry_interval=seconds_setting(
                plugin_config, "source_retry_interval", RETRY_SECONDS, allow_zero=True
            ),
            source_connect_timeout=seconds_setting(
                plugin_config, "source_connect_timeout", CONNECT_TIMEOUT
            ),
        )


@dataclass
class FilesState:
    """Everything the views need, built once at startup."""

    registry: Registry
    settings: Settings
    sources: dict[str, Source] = field(default_factory=dict)
    internal_is_temporary: bool = False
    sweeper: object = None
    hasher: object = None
    thumbnailer: object = None
    imports: object = None
    syncs: object = None

    def source(self, slug: str) -> Source | None:
        return self.sources.get(slug)

    async def storage_for(self, slug: str):
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
