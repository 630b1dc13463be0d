"""The thumbnail policy: output size and format, and the limits on inputs.

Every ``thumbnail_*`` key in the plugin config is read here. Settings that
change what a generator produces (or whether it refuses) go into the policy's
hash, which is part of the cache key, so changing one regenerates every
thumbnail on its next request.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from datasette.utils import StartupError

FORMATS = ("webp", "png", "jpeg")
MIB = 1024 * 1024


def _number(plugin_config: dict, key: str, default, kind=int, minimum=None):
    value = plugin_config.get(key, default)
    if isinstance(value, str):
        try:
            value = kind(value)
        except ValueError:
            pass
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and kind is int:
        ok = isinstance(value, int)
    if not ok or (minimum is not None and value < minimum):
        expected = "an integer" if kind is int else "a number"
        bound = "" if minimum is None else f" of at least {minimum}"
        raise StartupError(f"datasette-files: '{key}' must be {expected}{bound}")
    return value


@dataclass(frozen=True)
class ThumbnailPolicy:
    """What thumbnails look like and what inputs are refused.

    ``size`` is the bounding box in pixels; ``format`` one of ``webp``,
    ``png`` (both keep transparency) or ``jpeg``. ``max_bytes``,
    ``max_pixels``, ``memory_limit`` (bytes of address space for the
    generator process) and ``timeout`` (seconds) bound the work per file.
    """

    size: int = 256
    format: str = "webp"
    quality: int = 80
    max_bytes: int = 32 * MIB
    max_pixels: int = 50_000_000
    memory_limit: int = 512 * MIB
    timeout: float = 10.0

    @property
    def content_type(self) -> str:
        return f"image/{self.format}"

    def digest(self) -> str:
        """A short hash of every field: part of the cache key."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ThumbnailSettings:
    """The policy plus how the core schedules and caches generation."""

    policy: ThumbnailPolicy
    # Seconds a request waits for a thumbnail that is not cached yet before
    # answering with the type icon (generation carries on in the background).
    wait: float = 3.0
    # Seconds before a transient failure (timeout, backend outage) is retried;
    # doubled on each further failure, up to a day.
    retry_after: float = 300.0

    @classmethod
    def from_config(cls, plugin_config: dict) -> ThumbnailSettings:
        fmt = plugin_config.get("thumbnail_format", "webp")
        if fmt not in FORMATS:
            raise StartupError(
                "datasette-files: 'thumbnail_format' must be one of "
                + ", ".join(FORMATS)
            )
        quality = _number(plugin_config, "thumbnail_quality", 80, minimum=1)
        if quality > 100:
            raise StartupError("datasette-files: 'thumbnail_quality' must be 1-100")
        size = _number(plugin_config, "thumbnail_size", 256, minimum=16)
        if size > 4096:
            raise StartupError("datasette-files: 'thumbnail_size' must be 16-4096")
        policy = ThumbnailPolicy(
            size=size,
            format=fmt,
            quality=quality,
            max_bytes=_number(
                plugin_config, "thumbnail_max_bytes", 32 * MIB, minimum=1
            ),
            max_pixels=_number(
                plugin_config, "thumbnail_max_pixels", 50_000_000, minimum=1
            ),
            memory_limit=_number(
                plugin_config, "thumbnail_memory_limit", 512 * MIB, minimum=64 * MIB
            ),
            timeout=_number(
                plugin_config, "thumbnail_timeout", 10.0, kind=float, minimum=0.1
            ),
        )
        return cls(
            policy=policy,
            wait=_number(plugin_config, "thumbnail_wait", 3.0, kind=float, minimum=0),
            retry_after=_number(
                plugin_config, "thumbnail_retry_after", 300.0, kind=float, minimum=0
            ),
        )
