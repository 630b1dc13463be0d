"""The built-in ``file_actions`` hook implementation: "Import as table"."""

from __future__ import annotations

import csv

from ..views.common import files_path
from .csvstream import LineReader, detect_encoding, file_kind, looks_like_text
from .targets import import_databases


def looks_delimited(preview: bytes) -> bool:
    """Two or more lines split into the same number (>1) of fields."""
    try:
        lines = list(LineReader([preview], detect_encoding(preview), final=False))
    except Exception:  # noqa: BLE001 - undecodable means not CSV
        return False
    lines = [line for line in lines if line.strip()][:20]
    if len(lines) < 2:
        return False
    for delimiter in (",", "\t", ";", "|"):
        counts = {len(record) for record in csv.reader(lines, delimiter=delimiter)}
        if len(counts) == 1 and counts.pop() > 1:
            return True
    return False


def importable_file(filename: str, content_type: str | None, preview: bytes) -> bool:
    kind = file_kind(filename, content_type)
    if kind in ("csv", "tsv"):
        return looks_like_text(preview)
    if kind == "text":
        return looks_like_text(preview) and looks_delimited(preview)
    return False


def import_url(datasette, file_id: str) -> str:
    return files_path(datasette, file_id, "-", "import")


async def import_actions(datasette, actor, file, preview_bytes) -> list[dict]:
    state = getattr(datasette, "_datasette_files_state", None)
    if state is None or state.imports is None or not state.imports.settings.enabled:
        return []
    if not importable_file(file.filename, file.content_type, preview_bytes):
        return []
    if not await import_databases(datasette, actor):
        return []
    return [{"href": import_url(datasette, file.id), "label": "Import as table"}]
