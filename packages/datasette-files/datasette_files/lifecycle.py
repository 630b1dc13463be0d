"""Startup and shutdown: registry, sources, the expiry sweep."""

from __future__ import annotations

import asyncio
import logging
import os

from . import uploads
from .adopt import adopt_0_1a3
from .hashing import Hasher
from .hookspecs import plugin_manager
from .imports import start_imports
from .registry import Registry
from .settings import PLUGIN
from .sources import discover_storage_types, parse_sources
from .state import FilesState, Settings, internal_is_temporary, set_state
from .sync.jobs import SyncJobs
from .thumbnails.service import start_thumbnailer

log = logging.getLogger("datasette_files")

TEMPORARY_WARNING = (
    "datasette-files: Datasette is running without --internal, so the file "
    "registry is temporary and file records will be lost on restart. "
    "Start Datasette with --internal internal.db to keep them."
)


def secret_getter(datasette):
    """``get_secret(name)`` for storages: datasette-secrets, else environment."""

    async def get_secret(name: str) -> str | None:
        try:
            from datasette_secrets import (  # pyright: ignore[reportMissingImports]
                get_secret as secrets_get_secret,
            )
        except ImportError:
            return os.environ.get(f"DATASETTE_SECRETS_{name}")
        return await secrets_get_secret(datasette, name)

    return get_secret


async def start_files(datasette) -> None:
    plugin_manager()
    plugin_config = datasette.plugin_config(PLUGIN) or {}
    registry = Registry(datasette.get_internal_database())
    await registry.migrate()
    state = FilesState(
        registry=registry,
        settings=Settings.from_config(plugin_config),
        internal_is_temporary=internal_is_temporary(datasette),
    )
    sources = parse_sources(plugin_config, discover_storage_types(datasette))
    get_secret = secret_getter(datasette)
    for source in sources:
        source.get_secret = get_secret
        source.retry_interval = state.settings.source_retry_interval
        source.connect_timeout = state.settings.source_connect_timeout
        await source.connect()
        if not source.ready:
            log.warning(
                "datasette-files: source '%s' is unavailable: %s",
                source.slug,
                source.error,
            )
    state.sources = {source.slug: source for source in sources}
    state.hasher = Hasher(state)
    state.thumbnailer = start_thumbnailer(datasette, state, plugin_config)
    await registry.sync_sources({s.slug: s.storage_type for s in sources})
    # After sync_sources, so files of unconfigured sources are reported.
    await adopt_0_1a3(registry.db)
    set_state(datasette, state)
    if state.internal_is_temporary and sources:
        log.warning(TEMPORARY_WARNING)
    await uploads.sweep(state, startup=True)
    state.imports = await start_imports(datasette, state)
    state.syncs = SyncJobs(datasette, state)
    state.sweeper = asyncio.get_running_loop().create_task(sweep_forever(state))


async def sweep_forever(state: FilesState) -> None:
    while True:
        await asyncio.sleep(state.settings.sweep_interval)
        try:
            await uploads.sweep(state)
        except Exception as ex:  # noqa: BLE001 - the sweeper must keep running
            log.warning("datasette-files: sweep failed: %s", ex)


async def shutdown_files(datasette) -> None:
    state = getattr(datasette, "_datasette_files_state", None)
    if state is None:
        return
    if state.sweeper is not None:
        state.sweeper.cancel()
    if state.hasher is not None:
        await state.hasher.close()
    if state.thumbnailer is not None:
        await state.thumbnailer.close()
    if state.imports is not None:
        await state.imports.close()
    if state.syncs is not None:
        await state.syncs.close()
    for source in state.sources.values():
        try:
            await source.storage.close()
        except Exception as ex:  # noqa: BLE001 - keep closing the others
            log.warning("datasette-files: closing %s failed: %s", source.slug, ex)
