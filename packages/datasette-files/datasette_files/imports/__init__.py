"""Import CSV and TSV files as tables: the built-in ``file_actions`` action.

- ``csvstream``: encoding, delimiter, lines, records, column types (no I/O);
- ``targets``: which databases an actor may import into, table names, DDL;
- ``runner``: the background job, streaming the file through a worker thread;
- ``store``: job rows in the internal database;
- ``views``: the preview / start page and the job progress page and JSON.
"""

from __future__ import annotations

from ..settings import PLUGIN
from ..state import FilesState
from .runner import ImportManager
from .settings import ImportSettings
from .store import ImportStore


async def start_imports(datasette, state: FilesState) -> ImportManager:
    """Called once at startup, after the registry migrations."""
    settings = ImportSettings.from_config(datasette.plugin_config(PLUGIN) or {})
    manager = ImportManager(datasette, ImportStore(state.registry.db), settings)
    await manager.recover()
    return manager
