"""The ``file`` column type: cells holding ``df-…`` ids render as files.

The server renders only the ids (already in the cell, so nothing leaks); the
``<datasette-file>`` web component then fetches metadata for every file on
the page with one ``batch.json`` call, which only returns files the actor may
browse. Ids the actor may not see stay plain text.

Per-column settings come from Datasette's column type config::

    column_types:
      photos:
        type: file
        config: {source: photos, accept: ["image/*"], max_size: 20000000, multiple: 5}

Writes through Datasette's insert/update APIs (and so its row dialogs) are
checked against them (a column without config only checks the id format) in :meth:`FileColumnType.validate`. Datasette prefixes
each message with the column name (``photos: …``), so the messages here name
the rule.

Datasette does not pass the actor to ``validate``, so ids are looked up in the
registry whoever writes. To reveal nothing about files the writer may not
browse, a message never quotes a file's name, type or size, and "no such
file" and "file in another source" read the same. Ids are ULIDs (80 random
bits), so only someone who already holds an id can ask about it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from datasette.column_types import ColumnType, SQLiteType
from markupsafe import Markup

from .registry import FILE_ID_RE
from .state import get_state


class ColumnConfigError(ValueError):
    """The column's ``config`` block is not valid."""


@dataclass(frozen=True)
class FileColumnConfig:
    """The settings of one ``file`` column; every one is optional."""

    source: str | None = None
    accept: tuple[str, ...] = ()
    max_size: int | None = None
    multiple: int | None = None  # None: one id; N: a JSON array of up to N ids

    @classmethod
    def parse(cls, config) -> FileColumnConfig:
        if config is None:
            return cls()
        if not isinstance(config, dict):
            raise ColumnConfigError("config must be an object")
        unknown = sorted(set(config) - {"source", "accept", "max_size", "multiple"})
        if unknown:
            raise ColumnConfigError(f"unknown config key(s): {', '.join(unknown)}")
        source = config.get("source")
        if source is not None and (not isinstance(source, str) or not source):
            raise ColumnConfigError("config source must be a source slug")
        accept = config.get("accept") or ()
        if isinstance(accept, str):
            accept = [part.strip() for part in accept.split(",")]
        if not isinstance(accept, (list, tuple)) or not all(
            isinstance(rule, str) and rule.strip() for rule in accept
        ):
            raise ColumnConfigError("config accept must be a list of types")
        return cls(
            source=source,
            accept=tuple(rule.strip().lower() for rule in accept),
            max_size=_positive_int(config, "max_size"),
            multiple=_positive_int(config, "multiple"),
        )

    def accepts(self, content_type: str | None, filename: str) -> bool:
        """Like an ``<input accept>``: ``image/*``, ``image/png`` or ``.pdf``."""
        if not self.accept:
            return True
        content_type = (content_type or "").split(";")[0].strip().lower()
        filename = filename.lower()
        for rule in self.accept:
            if rule.startswith("."):
                if filename.endswith(rule):
                    return True
            elif rule.endswith("/*"):
                if content_type.startswith(rule[:-1]):
                    return True
            elif content_type == rule:
                return True
        return False

    def as_json(self) -> dict:
        """The settings the browser enforces before sending a byte."""
        return {
            "source": self.source,
            "accept": list(self.accept),
            "max_size": self.max_size,
            "multiple": self.multiple,
        }


def _positive_int(config: dict, key: str) -> int | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ColumnConfigError(f"config {key} must be a positive integer")
    return value


def cell_ids(value, multiple: bool) -> list[str] | None:
    """The ids in a stored cell, or None when it is not a list of ids."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if FILE_ID_RE.match(text):
        # One id shows as a file even where a list is expected (e.g. a value
        # written before the column got `multiple`).
        return [text]
    if not multiple:
        return None
    try:
        ids = json.loads(text)
    except ValueError:
        return None
    if not isinstance(ids, list) or not all(
        isinstance(i, str) and FILE_ID_RE.match(i) for i in ids
    ):
        return None
    return ids


class FileColumnType(ColumnType):
    name = "file"
    description = "File (datasette-files)"
    sqlite_types = (SQLiteType.TEXT,)

    def column_config(self) -> FileColumnConfig | None:
        """The parsed config, or None if it is invalid."""
        try:
            return FileColumnConfig.parse(self.config)
        except ColumnConfigError:
            return None

    async def render_cell(self, value, column, table, database, datasette, request):
        config = self.column_config() or FileColumnConfig()
        ids = cell_ids(value, multiple=config.multiple is not None)
        if not ids:
            return None
        batch_url = datasette.urls.path("/-/files/batch.json")
        element = Markup(
            '<datasette-file file-id="{}" batch-url="{}">{}</datasette-file>'
        )
        cells = [element.format(file_id, batch_url, file_id) for file_id in ids]
        if config.multiple is None:
            return cells[0]
        return Markup('<span class="datasette-files">{}</span>').format(
            Markup(" ").join(cells)
        )

    async def validate(self, value, datasette):
        try:
            config = FileColumnConfig.parse(self.config)
        except ColumnConfigError as ex:
            return f"the column's file config is invalid: {ex}"
        if value is None or value == "":
            return None
        ids = _written_ids(value, config)
        if isinstance(ids, str):
            return ids
        if not self.config:
            # Columns without config behave as they always have: any id.
            return None
        registry = get_state(datasette).registry
        for file_id in ids:
            problem = await _file_problem(registry, config, file_id)
            if problem:
                return problem
        return None


def _written_ids(value, config: FileColumnConfig) -> list[str] | str:
    """The ids a written value holds, or the rule it breaks (a message)."""
    if config.multiple is None:
        if isinstance(value, list) or (
            isinstance(value, str) and value.lstrip().startswith("[")
        ):
            return "holds one file, not a list (set multiple to allow several)"
        if not isinstance(value, str) or not FILE_ID_RE.match(value.strip()):
            return "must be a datasette-files file id (df-…)"
        return [value.strip()]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, list):
        return "multiple: must be a JSON array of file ids (df-…)"
    if not all(isinstance(i, str) and FILE_ID_RE.match(i) for i in value):
        return "multiple: every item must be a datasette-files file id (df-…)"
    if len(value) > config.multiple:
        return f"multiple: at most {config.multiple} files, got {len(value)}"
    if len(set(value)) != len(value):
        return "multiple: the same file is listed twice"
    return value


async def _file_problem(registry, config: FileColumnConfig, file_id: str):
    row = await registry.get_file(file_id)
    if row is None or (config.source and row.source_slug != config.source):
        if config.source:
            return f"source: {file_id} is not a file in source '{config.source}'"
        return f"{file_id} is not a registered file"
    if not config.accepts(row.content_type, row.filename):
        return f"accept: {file_id} is not one of {', '.join(config.accept)}"
    if config.max_size is not None and (row.size or 0) > config.max_size:
        return f"max_size: {file_id} is over {config.max_size} bytes"
    return None
