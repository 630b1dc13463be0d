"""datasette-files: file management for Datasette.

Hook implementations only; the logic lives in the modules they call.
"""

from __future__ import annotations

from datasette import hookimpl

from .column_type import FileColumnType
from .events import EVENTS
from .files import File, get_file
from .filesystem import FilesystemStorage
from .imports.actions import import_actions
from .lifecycle import shutdown_files, start_files
from .permissions import (
    ACTIONS,
    FileResource,
    FileSourceResource,
    SourceResource,
    may_browse_any,
    permission_sql,
)
from .routes import ROUTES
from .sync.cli import files_group

__all__ = [
    "File",
    "FileColumnType",
    "FileResource",
    "FileSourceResource",
    "SourceResource",
    "get_file",
]


@hookimpl
def register_files_storage_types(datasette):
    return [FilesystemStorage]


@hookimpl
def register_column_types(datasette):
    return [FileColumnType]


@hookimpl
def extra_js_urls(template, database, table, columns, view_name, request, datasette):
    if view_name in ("table", "row"):
        return [
            {
                "url": datasette.urls.static_plugins("datasette-files", script),
                "module": True,
            }
            # file-picker.js: the field for `file` columns in the row dialogs
            for script in ("datasette-file.js", "file-picker.js")
        ]
    return []


@hookimpl
def extra_css_urls(template, database, table, columns, view_name, request, datasette):
    if view_name in ("table", "row"):
        return [datasette.urls.static_plugins("datasette-files", "files.css")]
    return []


@hookimpl
def file_actions(datasette, actor, file, preview_bytes):
    return import_actions(datasette, actor, file, preview_bytes)


@hookimpl
def register_actions(datasette):
    return ACTIONS


@hookimpl
def register_events(datasette):
    return EVENTS


@hookimpl
def permission_resources_sql(datasette, actor, action):
    return permission_sql(datasette, actor, action)


@hookimpl
def register_commands(cli):
    cli.add_command(files_group)


@hookimpl
def register_routes(datasette):
    return ROUTES


@hookimpl
def startup(datasette):
    async def inner():
        await start_files(datasette)

    return inner


@hookimpl
def shutdown(datasette):
    async def inner():
        await shutdown_files(datasette)

    return inner


async def _browse_link(datasette, actor):
    state = getattr(datasette, "_datasette_files_state", None)
    if state and await may_browse_any(datasette, actor, state.sources):
        return [{"href": datasette.urls.path("/-/files"), "label": "Files"}]
    return []


@hookimpl
def menu_links(datasette, actor, request):
    return _browse_link(datasette, actor)


@hookimpl
def homepage_actions(datasette, actor, request):
    return _browse_link(datasette, actor)
