"""Calling the hooks other plugins implement (file_actions)."""

from __future__ import annotations

import logging

from datasette.utils import await_me_maybe

from .files import File
from .hookspecs import plugin_manager

log = logging.getLogger("datasette_files")


async def file_action_links(datasette, actor, row, state, preview_bytes: int) -> list:
    source = state.source(row.source_slug)
    file = File(row, source)
    preview = b""
    if source is not None and source.ready:
        try:
            preview = await file.read_bytes(preview_bytes)
        except Exception as ex:  # noqa: BLE001 - a preview must not break the page
            log.warning("datasette-files: preview of %s failed: %s", row.id, ex)
    links = []
    for result in plugin_manager().hook.file_actions(
        datasette=datasette, actor=actor, file=file, preview_bytes=preview
    ):
        result = await await_me_maybe(result)
        for link in result or []:
            if isinstance(link, dict) and link.get("href") and link.get("label"):
                links.append(link)
    return links
