"""Hooks that other plugins implement to extend datasette-files, and how the
core calls them: one implementation at a time, so one broken plugin cannot
take the page, the upload or the other plugins down with it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

from datasette.utils import await_me_maybe
from pluggy import HookspecMarker

hookspec = HookspecMarker("datasette")
log = logging.getLogger("datasette_files")


def plugin_manager():
    """Datasette's plugin manager, with these hookspecs added (once).

    Imported lazily on purpose: importing ``datasette.plugins`` loads every
    installed plugin, so doing it while ``datasette_files`` itself is still
    being imported would register a half-initialised module.
    """
    from datasette.plugins import pm

    caller = getattr(pm.hook, "register_files_storage_types", None)
    if caller is None or caller.spec is None:
        pm.add_hookspecs(sys.modules[__name__])
    return pm


def plugin_failed(plugin_name: str, hook: str, problem: str = "") -> None:
    """Log a plugin's failure in ``hook`` (with the traceback when called
    from an ``except`` block), naming the plugin so its owner can be found."""
    log.error(
        "datasette-files: plugin %r failed in hook %s%s; skipping its result",
        plugin_name,
        hook,
        f": {problem}" if problem else "",
        exc_info=not problem,
    )


def hook_results(hook: str, **kwargs) -> Iterator[tuple[str, object]]:
    """``(plugin name, result)`` for each implementation of ``hook``, called
    one at a time in pluggy's order; one that raises is logged and skipped.

    Unlike ``pm.hook.X(...)``, where the first exception aborts the whole
    call, the other plugins' results still arrive. Results are not checked:
    a plugin may return anything, so callers validate each one and report
    junk with ``plugin_failed``.
    """
    caller = getattr(plugin_manager().hook, hook)
    # pluggy calls the most recently registered implementation first.
    for impl in reversed(caller.get_hookimpls()):
        if impl.hookwrapper or impl.wrapper:
            continue
        try:
            result = impl.function(*(kwargs[name] for name in impl.argnames))
        except Exception:  # noqa: BLE001 - a plugin's bug stays its own
            plugin_failed(impl.plugin_name, hook)
            continue
        yield impl.plugin_name, result


async def awaited_hook_results(hook: str, **kwargs) -> list[tuple[str, object]]:
    """``hook_results`` for hooks whose implementations may return an
    awaitable (Datasette's convention): each is awaited, failures isolated."""
    results = []
    for plugin_name, result in hook_results(hook, **kwargs):
        try:
            result = await await_me_maybe(result)
        except Exception:  # noqa: BLE001 - a plugin's bug stays its own
            plugin_failed(plugin_name, hook)
            continue
        results.append((plugin_name, result))
    return results


@hookspec
def register_files_storage_types(datasette):
    """Return a list of ``Storage`` subclasses (classes, not instances).

    The core instantiates one per configured source whose ``storage:`` matches
    the class's ``storage_type`` and awaits ``configure(config, get_secret)``.
    """


@hookspec
def file_actions(datasette, actor, file, preview_bytes):
    """Return a list of ``{"href": ..., "label": ...}`` links for the file page.

    ``file`` is a ``datasette_files.File``; it is also a read-only mapping
    (``file["id"]``, ``file.get("size")``), like the 0.1a3 dict.
    ``preview_bytes`` holds the first 2 KiB of the file.
    """


@hookspec
def register_thumbnail_generators(datasette):
    """Return a list of thumbnail generator objects.

    Each has ``name``, ``version``, ``accepts(file)`` and an async
    ``generate(data, file, policy)`` returning a ``Thumbnail``; see
    ``datasette_files.thumbnails.generators`` and docs/thumbnails.md.
    Generators of the 0.1a3 shape (``datasette_files.base.ThumbnailGenerator``)
    are accepted too.
    """
