"""Hooks that other plugins implement to extend datasette-files."""

from pluggy import HookspecMarker

hookspec = HookspecMarker("datasette")


@hookspec
def register_files_storage_types(datasette):
    """Return a list of ``Storage`` subclasses (classes, not instances).

    The core instantiates one per configured source whose ``storage:`` matches
    the class's ``storage_type`` and awaits ``configure(config, get_secret)``.
    """


@hookspec
def file_actions(datasette, actor, file, preview_bytes):
    """Return a list of ``{"href": ..., "label": ...}`` links for the file page.

    ``preview_bytes`` holds the first 2 KiB of the file.
    """


@hookspec
def register_thumbnail_generators(datasette):
    """Return a list of thumbnail generator objects."""
