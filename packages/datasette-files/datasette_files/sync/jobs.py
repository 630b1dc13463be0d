"""Syncs started over HTTP: one background job per source, in this process."""

from __future__ import annotations

import asyncio
import logging

from ..events import sync_finished
from ..permissions import actor_id
from .engine import SyncEngine, SyncOptions
from .owners import owner_id
from .store import SyncJob, SyncStore

log = logging.getLogger("datasette_files")


class SyncJobs:
    """Starts syncs as background tasks and knows which ones run here."""

    def __init__(self, datasette, state):
        self.datasette = datasette
        self.state = state
        self.store = SyncStore(state.registry.db)
        self.engines: dict[str, SyncEngine] = {}
        self.tasks: set[asyncio.Task] = set()

    def runs_here(self, owner: str) -> bool:
        return any(engine.owner == owner for engine in self.engines.values())

    def progress(self, slug: str):
        engine = self.engines.get(slug)
        return engine.progress if engine is not None else None

    async def start(
        self, source, storage, options: SyncOptions, actor: dict | None
    ) -> SyncJob:
        """Claim the source's sync (``SyncRunning`` if one runs) and run it
        in the background."""
        engine = SyncEngine(
            self.store,
            source.slug,
            storage,
            options,
            owner=owner_id("http"),
            actor_id=actor_id(actor),
            after_batch=self._hash_new_files,
            alive_here=self.runs_here,
            on_finish=sync_finished(self.datasette, actor),
        )
        job = await engine.claim()
        if job is None:  # only a dry run has no job row
            raise RuntimeError("datasette-files: an HTTP sync is never a dry run")
        self.engines[source.slug] = engine

        async def run(datasette=None):
            try:
                await engine.run()
            except asyncio.CancelledError:
                raise
            except Exception as ex:  # noqa: BLE001 - recorded on the job row
                log.warning("datasette-files: sync of %s failed: %s", source.slug, ex)
            finally:
                if self.engines.get(source.slug) is engine:
                    del self.engines[source.slug]
            self._hash_new_files()

        add = getattr(self.datasette, "add_background_task", None)
        if add is not None:
            add(run, name=f"datasette-files sync {source.slug}")
        else:
            task = asyncio.get_running_loop().create_task(run())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return job

    def _hash_new_files(self) -> None:
        if self.state.hasher is not None:
            self.state.hasher.kick()

    async def close(self) -> None:
        """At shutdown: stop after the batch in flight (resumable)."""
        for engine in list(self.engines.values()):
            engine.stop()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks))
