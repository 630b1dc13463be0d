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
# Key names used by later upstream datasette-files releases, and ours they
# mean. (Upstream's thumbnail_max_pixels, thumbnail_concurrency and
# thumbnail_eager are spelled as ours already.)
ALIASES = {
    "thumbnail_max_source_bytes": "thumbnail_max_bytes",
    "thumbnail_timeout_seconds": "thumbnail_timeout",
    "thumbnail_process_memory_limit_bytes": "thumbnail_memory_limit",
}


def same_value(a, b) -> bool:
    # -s plugins.datasette-files.KEY VALUE may give "10" where YAML gives 10.
    return a == b or str(a).strip().lower() == str(b).strip().lower()


def resolve_aliases(plugin_config: dict) -> dict:
    """The config with each alias renamed to our key.

    Giving an alias and our key with different values stops startup.
    """
    resolved = dict(plugin_config)
    for alias, key in ALIASES.items():
        if alias not in resolved:
            continue
        value = resolved.pop(alias)
        if key in resolved and not same_value(resolved[key], value):
            raise StartupError(
                f"datasette-files: '{alias}' and '{key}' are the same setting "
                f"with different values ({value!r} and {resolved[key]!r}); "
                "keep one"
            )
        resolved.setdefault(key, value)
    return resolved


def _flag(plugin_config: dict, key: str, default: bool) -> bool:
    value = plugin_config.get(key, default)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"):
        value = True
    elif isinstance(value, str) and value.strip().lower() in ("false", "0", "no"):
        value = False
    if not isinstance(value, bool):
        raise StartupError(f"datasette-files: '{key}' must be true or false")
    return value


def _number(
    plugin_config: dict, key: str, default, kind: type = int, minimum=None
) -> int | float:
    value = plugin_config.get(key, default)
    if isinstance(value, str):
        try:
            value = kind(value)
        except ValueError:
            pass
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or (kind is int and not isinstance(value, int))
        or (minimum is not None and value < minimum)
    ):
        expected = "an integer" if kind is int else "a number"
        bound = "" if minimum is None else f" of at least {minimum}"
        raise StartupError(f"datasette-files: '{key}' must be {expected}{bound}")
    return value


def _integer(plugin_config: dict, key: str, default: int, minimum: int) -> int:
    value = _number(plugin_config, key, default, kind=int, minimum=minimum)
    assert isinstance(value, int)  # _number refused anything else
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
    # Make a thumbnail in the background as soon as an upload completes;
    # when False, on its first request.
    eager: bool = True

    @classmethod
    def from_config(cls, plugin_config: dict) -> ThumbnailSettings:
        plugin_config = resolve_aliases(plugin_config)
        fmt = plugin_config.get("thumbnail_format", "webp")
        if fmt not in FORMATS:
            raise StartupError(
                "datasette-files: 'thumbnail_format' must be one of "
                + ", ".join(FORMATS)
            )
        quality = _integer(plugin_config, "thumbnail_quality", 80, minimum=1)
        if quality > 100:
            raise StartupError("datasette-files: 'thumbnail_quality' must be 1-100")
        size = _integer(plugin_config, "thumbnail_size", 256, minimum=16)
        if size > 4096:
            raise StartupError("datasette-files: 'thumbnail_size' must be 16-4096")
        policy = ThumbnailPolicy(
            size=size,
            format=fmt,
            quality=quality,
            max_bytes=_integer(
                plugin_config, "thumbnail_max_bytes", 32 * MIB, minimum=1
            ),
            max_pixels=_integer(
                plugin_config, "thumbnail_max_pixels", 50_000_000, minimum=1
            ),
            memory_limit=_integer(
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
            eager=_flag(plugin_config, "thumbnail_eager", True),
        )
