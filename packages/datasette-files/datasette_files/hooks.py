"""Calling the hooks other plugins implement (file_actions)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .files import File
from .hookspecs import awaited_hook_results, plugin_failed

if TYPE_CHECKING:
    from .state import FilesState

log = logging.getLogger("datasette_files")


async def file_action_links(
    datasette, actor, row, state: FilesState, preview_bytes: int
) -> list:
    source = state.source(row.source_slug)
    file = File(row, source)
    preview = b""
    if source is not None and source.ready:
        try:
            preview = await file.read_bytes(preview_bytes)
        except Exception as ex:  # noqa: BLE001 - a preview must not break the page
            log.warning("datasette-files: preview of %s failed: %s", row.id, ex)
    links = []
    # One plugin at a time: one that raises loses its links, not the page.
    for plugin_name, result in await awaited_hook_results(
        "file_actions",
        datasette=datasette,
        actor=actor,
        file=file,
        preview_bytes=preview,
    ):
        if result is None:
            continue
        if not isinstance(result, (list, tuple)):
            plugin_failed(plugin_name, "file_actions", "did not return a list")
            continue
        for link in result:
            if isinstance(link, dict) and link.get("href") and link.get("label"):
                links.append(link)
    return links
