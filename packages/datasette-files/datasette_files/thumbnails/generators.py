"""The thumbnail generator protocol, and finding the registered generators.

A generator is any object with::

    name: str        # stable, e.g. "pdf-pdftoppm"
    version: str     # bump it when output changes: cached results are redone
    def accepts(self, file) -> bool: ...  # or async def
    async def generate(self, data: bytes, file, policy) -> Thumbnail: ...

``file`` is a ``datasette_files.File``; ``data`` holds the file's bytes, at
most ``policy.max_bytes`` (larger files are skipped before any generator
runs). ``generate`` returns a ``Thumbnail``, or raises ``ThumbnailSkipped``
(policy: the input is refused) or ``ThumbnailFailed`` (``transient=True`` to
be retried after a cooldown). It must not block the event loop: do heavy work
in a child process, e.g. with ``run_limited``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from datasette.utils import StartupError

from ..hookspecs import hook_results, plugin_failed


@dataclass
class Thumbnail:
    """A generated thumbnail: image bytes and their content type."""

    data: bytes
    content_type: str


class ThumbnailSkipped(Exception):
    """The policy refuses this input (too large, too many pixels, unsupported)."""


class ThumbnailFailed(Exception):
    """Generation failed; ``transient`` failures are retried after a cooldown."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


def check_generator(generator) -> None:
    for attribute in ("name", "version"):
        if not isinstance(getattr(generator, attribute, None), str):
            raise StartupError(
                f"datasette-files: thumbnail generator {generator!r} "
                f"needs a string '{attribute}'"
            )
    if not callable(getattr(generator, "accepts", None)):
        raise StartupError(
            f"datasette-files: thumbnail generator '{generator.name}' "
            "needs an accepts(file) method"
        )
    if not inspect.iscoroutinefunction(getattr(generator, "generate", None)):
        raise StartupError(
            f"datasette-files: thumbnail generator '{generator.name}' "
            "needs an async generate(data, file, policy) method"
        )


def discover_generators(datasette, builtin: list) -> list:
    """Plugin generators first (so they can override), the built-ins last.

    Generators of the 0.1a3 shape (``can_generate`` / ``generate(file_bytes,
    content_type, filename, ...)``) are wrapped to follow this protocol. Each
    plugin is called on its own: one whose hook raises, or that returns
    something that is not a generator, is logged with its name and skipped,
    and every other generator still loads.
    """
    # Imported here: legacy.py builds on the classes defined above.
    from .legacy import LegacyGenerator, is_legacy

    hook = "register_thumbnail_generators"
    generators = []
    for plugin_name, result in hook_results(hook, datasette=datasette):
        if result is None:
            continue
        for generator in result if isinstance(result, (list, tuple)) else [result]:
            try:
                if inspect.isclass(generator):  # like the storage hook returns
                    generator = instantiate(generator)
                if is_legacy(generator):
                    generator = LegacyGenerator(generator)
                check_generator(generator)
            except StartupError as ex:
                plugin_failed(plugin_name, hook, str(ex))
                continue
            generators.append(generator)
    for generator in builtin:
        check_generator(generator)
    return generators + builtin


def instantiate(cls):
    try:
        return cls()
    except Exception as ex:  # noqa: BLE001 - a plugin bug: say whose
        raise StartupError(
            f"datasette-files: thumbnail generator class {cls.__name__} "
            f"could not be created: {ex}"
        ) from ex
