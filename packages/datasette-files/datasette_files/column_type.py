"""The ``file`` column type: cells holding a ``df-…`` id render as a file.

The server renders only the id (already in the cell, so nothing leaks); the
``<datasette-file>`` web component then fetches metadata for every file on
the page with one ``batch.json`` call, which only returns files the actor may
browse. Ids the actor may not see stay plain text.
"""

from __future__ import annotations

from datasette.column_types import ColumnType, SQLiteType
from markupsafe import Markup

from .registry import FILE_ID_RE


class FileColumnType(ColumnType):
    name = "file"
    description = "File (datasette-files)"
    sqlite_types = (SQLiteType.TEXT,)

    async def render_cell(self, value, column, table, database, datasette, request):
        if not isinstance(value, str) or not FILE_ID_RE.match(value.strip()):
            return None
        file_id = value.strip()
        return Markup(
            '<datasette-file file-id="{}" batch-url="{}">{}</datasette-file>'
        ).format(file_id, datasette.urls.path("/-/files/batch.json"), file_id)

    async def validate(self, value, datasette):
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not FILE_ID_RE.match(value.strip()):
            return "must be a datasette-files file id (df-…)"
        return None
