"""Hooks that other plugins implement to extend datasette-files."""

import sys

from pluggy import HookspecMarker

hookspec = HookspecMarker("datasette")


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
