"""The thumbnail policy: output size and format, and the limits on inputs.

Every ``thumbnail_*`` key in the plugin config is read here. Settings that
change what a generator produces (or whether it refuses) go into the policy's
hash, which is part of the cache key, so changing one regenerates every
thumbnail on its next request.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace

from datasette.utils import StartupError

from ..settings import int_setting, plugin_settings, seconds_setting

FORMATS = ("webp", "png", "jpeg")
FITS = ("contain", "cover")
DEFAULT_SIZES = (64, 200, 400, 800)
MIN_SIZE, MAX_SIZE = 16, 4096
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
    # Set on a sized variant (``variant()``): the box is ``width`` x
    # ``height`` and ``fit`` is ``contain`` (fit within it, keeping the aspect
    # ratio) or ``cover`` (fill it exactly, cropping the overflow). ``size``
    # is then the larger side, for generators that know only ``size``.
    width: int | None = None
    height: int | None = None
    fit: str = "contain"

    @property
    def content_type(self) -> str:
        return f"image/{self.format}"

    @property
    def box(self) -> tuple[int, int]:
        """(width, height) of the box the thumbnail is made for."""
        return (self.width or self.size, self.height or self.size)

    def variant(self, variant: Variant) -> ThumbnailPolicy:
        """This policy with ``variant``'s box, fit and format."""
        return replace(
            self,
            size=max(variant.width, variant.height),
            format=variant.format,
            width=variant.width,
            height=variant.height,
            fit=variant.fit,
        )

    def digest(self) -> str:
        """A short hash of every field: part of the cache key."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Variant:
    """A sized variant asked for with ``?w=&h=&fit=&format=``."""

    width: int
    height: int
    fit: str
    format: str

    @property
    def key(self) -> str:
        """Its part of the cache key (and ETag), e.g. ``200x200-cover.webp``."""
        return f"{self.width}x{self.height}-{self.fit}.{self.format}"


class VariantError(ValueError):
    """A query asked for a variant the settings do not allow."""


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
    # The only widths and heights a ``?w=`` / ``?h=`` variant may have, so no
    # one can make the server render arbitrary sizes.
    sizes: tuple[int, ...] = DEFAULT_SIZES

    def parse_variant(self, query) -> Variant | None:
        """The variant ``query`` (``request.args``) asks for; None for the
        plain thumbnail.

        ``w`` and ``h`` each come from ``sizes``; with one of them the box is
        square, with neither it is the policy's size. ``fit`` defaults to
        ``contain``, ``format`` to the policy's. Raises ``VariantError``
        naming the allowed values.
        """
        policy = self.policy
        width = self._size(query, "w")
        height = self._size(query, "h")
        fit = query.get("fit") or "contain"
        if fit not in FITS:
            raise VariantError("fit must be one of " + ", ".join(FITS))
        fmt = query.get("format") or policy.format
        if fmt not in FORMATS:
            raise VariantError("format must be one of " + ", ".join(FORMATS))
        width = width or height or policy.size
        height = height or width
        variant = Variant(width, height, fit, fmt)
        if variant == Variant(policy.size, policy.size, "contain", policy.format):
            return None  # the same as the plain thumbnail: share its cache row
        return variant

    def _size(self, query, name: str) -> int | None:
        value = query.get(name)
        if value is None or value == "":
            return None
        allowed = ", ".join(str(size) for size in self.sizes)
        if not (value.isascii() and value.isdigit()) or int(value) not in self.sizes:
            raise VariantError(f"{name} must be one of {allowed}")
        return int(value)

    @classmethod
    @plugin_settings
    def from_config(cls, plugin_config: dict) -> ThumbnailSettings:
        plugin_config = resolve_aliases(plugin_config)
        fmt = plugin_config.get("thumbnail_format", "webp")
        if fmt not in FORMATS:
            raise StartupError(
                "datasette-files: 'thumbnail_format' must be one of "
                + ", ".join(FORMATS)
            )
        policy = ThumbnailPolicy(
            size=int_setting(plugin_config, "thumbnail_size", 256, 16, 4096),
            format=fmt,
            quality=int_setting(plugin_config, "thumbnail_quality", 80, 1, 100),
            max_bytes=int_setting(plugin_config, "thumbnail_max_bytes", 32 * MIB, 1),
            max_pixels=int_setting(
                plugin_config, "thumbnail_max_pixels", 50_000_000, 1
            ),
            memory_limit=int_setting(
                plugin_config, "thumbnail_memory_limit", 512 * MIB, 64 * MIB
            ),
            timeout=seconds_setting(plugin_config, "thumbnail_timeout", 10.0, 0.1),
        )
        return cls(
            policy=policy,
            wait=seconds_setting(plugin_config, "thumbnail_wait", 3.0),
            retry_after=seconds_setting(plugin_config, "thumbnail_retry_after", 300.0),
            eager=_flag(plugin_config, "thumbnail_eager", True),
            sizes=_sizes(plugin_config),
        )


def _sizes(plugin_config: dict) -> tuple[int, ...]:
    """``thumbnail_sizes``: a list of sizes (or a comma-separated string)."""
    value = plugin_config.get("thumbnail_sizes", list(DEFAULT_SIZES))
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    sizes = []
    for item in value if isinstance(value, (list, tuple)) else [None]:
        if isinstance(item, str) and item.isascii() and item.isdigit():
            item = int(item)
        if (
            not isinstance(item, int)
            or isinstance(item, bool)
            or not MIN_SIZE <= item <= MAX_SIZE
        ):
            sizes = []
            break
        sizes.append(item)
    if not sizes:
        raise StartupError(
            "datasette-files: 'thumbnail_sizes' must be a non-empty list of "
            f"sizes in pixels, each {MIN_SIZE}-{MAX_SIZE}"
        )
    return tuple(sorted(set(sizes)))
