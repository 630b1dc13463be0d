"""Numeric settings, read the same way everywhere: the core's plugin settings
and a storage's source config alike.

Public: storage plugins may use ``int_setting`` and ``seconds_setting`` for
their own config keys (datasette-files-s3 does). Values may come from YAML
(``10``) or from ``-s`` flags (``"10"``); both are accepted. A bad value
raises ``StorageConfigError`` naming the key: for a source's config the core
adds the source's name, and ``plugin_settings`` turns it into a
``StartupError`` for the plugin's own settings.
"""

from __future__ import annotations

import functools
import re

from datasette.utils import StartupError

from .base import StorageConfigError

__all__ = ["PLUGIN", "int_setting", "plugin_settings", "seconds_setting"]

# The key of the plugin's own block under ``plugins:``.
PLUGIN = "datasette-files"

_INTEGER = re.compile(r"[+-]?[0-9]+")


def int_setting(
    config: dict, key: str, default, lo: int | None = None, hi: int | None = None
):
    """``config[key]`` as an integer from ``lo`` to ``hi`` (either may be
    None), or ``default`` when the key is absent or null.

    Accepts an int, a whole float and a string of ASCII digits; refuses
    booleans.
    """
    value = config.get(key)
    if value is None:
        return default
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        value = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or (lo is not None and value < lo)
        or (hi is not None and value > hi)
    ):
        raise StorageConfigError(f"'{key}' must be {_integer_range(lo, hi)}", key=key)
    return value


def _integer_range(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"an integer between {lo} and {hi}"
    if lo == 1:
        return "a positive integer"
    if lo is not None:
        return f"an integer of at least {lo}"
    if hi is not None:
        return f"an integer of at most {hi}"
    return "an integer"


def seconds_setting(
    config: dict, key: str, default: float, lo: float = 0.0, *, above: bool = False
) -> float:
    """``config[key]`` as a number of seconds, at least ``lo`` (more than
    ``lo`` when ``above``), or ``default`` when the key is absent or null."""
    value = config.get(key)
    if value is None:
        return float(default)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or value != value
        or value < lo
        or (above and value == lo)
    ):
        bound = f"more than {lo:g}" if above else f"{lo:g} or more"
        raise StorageConfigError(
            f"'{key}' must be a number of seconds, {bound}", key=key
        )
    return float(value)


def plugin_settings(from_config):
    """Decorate a ``from_config`` of the plugin's own settings: a bad value
    stops startup with a message naming the plugin and the key."""

    @functools.wraps(from_config)
    def wrapper(*args, **kwargs):
        try:
            return from_config(*args, **kwargs)
        except StorageConfigError as ex:
            raise StartupError(f"{PLUGIN}: {ex}") from None

    return wrapper
