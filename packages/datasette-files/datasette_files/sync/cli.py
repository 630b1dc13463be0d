"""``datasette files sync``: register the files sources already hold.

Runs beside a live server on the same internal database, or without one: it
configures only the sources it syncs and touches nothing else (no upload
sweep, no import recovery), and every batch is one short write transaction.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
import time
from pathlib import Path

import click

from ..events import sync_finished
from ..hookspecs import plugin_manager
from ..lifecycle import secret_getter
from ..registry import Registry
from ..settings import PLUGIN
from ..sources import discover_storage_types, parse_sources
from .engine import MAX_PAGE_SIZE, PAGE_SIZE, SyncEngine, SyncOptions, SyncProgress
from .owners import owner_id
from .store import FINISHED, SyncRunning, SyncStore

LOG_EVERY = 2.0  # seconds between plain progress lines


class SyncCommandError(click.ClickException):
    pass


@click.group(name="files")
def files_group():
    """datasette-files commands."""


@files_group.command(name="sync")
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="The Datasette config (datasette.yaml / .json) defining the sources",
)
@click.option(
    "--internal",
    type=click.Path(dir_okay=False),
    required=True,
    help="The internal database holding the file registry",
)
@click.option("--prefix", default="", help="Only sync paths starting with this")
@click.option("--prune", is_flag=True, help="Remove rows whose file is gone")
@click.option("--dry-run", is_flag=True, help="Report what would change only")
@click.option("as_json", "--json", is_flag=True, help="Print a JSON summary")
@click.option(
    "--batch-size",
    type=click.IntRange(1, MAX_PAGE_SIZE),
    default=PAGE_SIZE,
    show_default=True,
    help="Objects listed and written per batch (one checkpoint each)",
)
def sync_command(
    sources, config_path, internal, prefix, prune, dry_run, as_json, batch_size
):
    """Register the files already in SOURCE (a source slug), and update or
    report those that changed or are gone."""
    options = SyncOptions(
        prefix=prefix, prune=prune, dry_run=dry_run, page_size=batch_size
    )
    results = asyncio.run(
        sync_sources(list(sources), config_path, internal, options, as_json)
    )
    if as_json:
        click.echo(json.dumps({"ok": all_finished(results), "sources": results}))
    if not all_finished(results):
        stopped = all(r["status"] == "interrupted" and not r["error"] for r in results)
        sys.exit(130 if stopped else 1)


WAL_ATTEMPTS = 50
WAL_RETRY_SECONDS = 0.1


async def use_wal(db) -> None:
    """WAL lets a running server read while this writes; the mode sticks.

    Switching to it needs the database to itself, and SQLite does not wait
    for that: two syncs started at the same moment on a new internal DB
    found it locked by each other. So the switch is tried again, briefly.
    """
    for attempt in range(WAL_ATTEMPTS):
        try:
            await db.execute_write_fn(
                lambda conn: conn.execute("PRAGMA journal_mode=WAL").fetchall(),
                transaction=False,
            )
            return
        except sqlite3.OperationalError as ex:
            if "locked" not in str(ex) or attempt == WAL_ATTEMPTS - 1:
                raise
            await asyncio.sleep(WAL_RETRY_SECONDS)


def all_finished(results: list[dict]) -> bool:
    return all(result["status"] == FINISHED for result in results)


def load_config(path: str) -> dict:
    from datasette.utils import parse_metadata

    try:
        return parse_metadata(Path(path).read_text()) or {}
    except Exception as ex:  # noqa: BLE001 - any parse error is the user's
        raise SyncCommandError(f"Cannot read {path}: {ex}") from None


async def open_sources(config_path: str, internal: str, slugs: list[str]):
    """A Datasette for the config and internal DB, the registry migrated,
    and the requested sources configured (not started: no sweeps)."""
    from datasette.app import Datasette

    datasette = Datasette(config=load_config(config_path), internal=internal)
    plugin_manager()
    db = datasette.get_internal_database()
    await use_wal(db)
    await Registry(db).migrate()
    config = datasette.plugin_config(PLUGIN)
    plugin_config = config if isinstance(config, dict) else {}
    configured = {
        source.slug: source
        for source in parse_sources(plugin_config, discover_storage_types(datasette))
    }
    unknown = [slug for slug in slugs if slug not in configured]
    if unknown:
        known = ", ".join(sorted(configured)) or "none"
        raise SyncCommandError(
            f"Unknown source {unknown[0]!r} (sources in the config: {known})"
        )
    get_secret = secret_getter(datasette)
    for slug in slugs:
        source = configured[slug]
        source.get_secret = get_secret
        await source.connect()
        if not source.ready:
            raise SyncCommandError(f"Source '{slug}' is unavailable: {source.error}")
    return datasette, SyncStore(db), [configured[slug] for slug in slugs]


async def sync_sources(slugs, config_path, internal, options, as_json) -> list[dict]:
    datasette, store, sources = await open_sources(config_path, internal, slugs)
    results = []
    try:
        for source in sources:
            result = await sync_one(datasette, store, source, options, as_json)
            results.append(result)
            if result["status"] != FINISHED:
                break
    finally:
        for source in sources:
            await source.storage.close()
        datasette.get_internal_database().close()
    return results


async def sync_one(datasette, store, source, options, as_json) -> dict:
    display = make_display(source.slug, options, as_json)
    engine = SyncEngine(
        store,
        source.slug,
        source.storage,
        options,
        owner=owner_id("cli"),
        on_progress=display.update,
        # Plugins that track events (track_event) see command-line syncs
        # too, with no actor.
        on_finish=sync_finished(datasette, None),
    )
    try:
        await engine.claim()
    except SyncRunning as ex:
        raise SyncCommandError(
            f"A sync of source '{source.slug}' is already running "
            f"(job {ex.job.id}); try again when it has finished"
        ) from None
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def interrupt():
        # First Ctrl-C: finish the batch being written, then stop. Second:
        # stop now (the last checkpoint still holds).
        if engine.stopping.is_set():
            if main is not None:
                main.cancel()
        else:
            display.note("Stopping after this batch (Ctrl-C again to stop now)")
            engine.stop()

    loop.add_signal_handler(signal.SIGINT, interrupt)
    display.start(engine.progress)
    try:
        progress = await engine.run()
    except asyncio.CancelledError:
        progress = engine.progress
    except Exception:
        progress = engine.progress
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        display.stop(engine.progress)
    return progress.as_json()


def make_display(slug, options, as_json):
    if not as_json and sys.stderr.isatty():
        return RichDisplay(slug, options)
    return LogDisplay(slug, options, quiet=as_json)


def counters_text(progress: SyncProgress) -> str:
    missing = progress.missing if progress.ordered else "?"
    text = (
        f"seen {progress.seen:,} · registered {progress.registered:,} · "
        f"updated {progress.updated:,} · skipped {progress.skipped:,} · "
        f"missing {missing}"
    )
    if progress.removed:
        text += f" · removed {progress.removed:,}"
    return text


class LogDisplay:
    """Plain lines on stderr, for logs and pipes."""

    def __init__(self, slug, options, quiet=False):
        self.slug = slug
        self.label = "dry run: " if options.dry_run else ""
        self.quiet = quiet
        self.last = 0.0

    def start(self, progress: SyncProgress) -> None:
        if progress.resumed:
            self.note(f"resuming sync {progress.job_id} from its last checkpoint")

    def note(self, text: str) -> None:
        if not self.quiet:
            click.echo(f"{self.slug}: {text}", err=True)

    def update(self, progress: SyncProgress) -> None:
        now = time.monotonic()
        if now - self.last >= LOG_EVERY:
            self.last = now
            self.note(f"{self.label}{counters_text(progress)} ({progress.rate:,.0f}/s)")

    def stop(self, progress: SyncProgress) -> None:
        status = progress.status + (f" ({progress.error})" if progress.error else "")
        self.note(
            f"{self.label}{status}: {counters_text(progress)} "
            f"in {progress.elapsed:.1f}s ({progress.rate:,.0f}/s)"
        )
        for path in progress.missing_paths[:10]:
            self.note(f"missing: {path}")


class RichDisplay(LogDisplay):
    """A live progress bar on a terminal (rich)."""

    def __init__(self, slug, options):
        super().__init__(slug, options)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = Console(stderr=True)
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[counters]}"),
            TextColumn("[cyan]{task.fields[rate]}/s"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.task = None

    def start(self, progress: SyncProgress) -> None:
        self.bar.start()
        self.task = self.bar.add_task(
            f"{self.label}{self.slug}",
            # The count is open-ended until the listing has ended.
            total=None,
            counters=counters_text(progress),
            rate="0",
        )
        super().start(progress)

    def note(self, text: str) -> None:
        self.console.print(f"{self.slug}: {text}")

    def update(self, progress: SyncProgress) -> None:
        if self.task is None:
            return
        self.bar.update(
            self.task,
            completed=progress.seen,
            total=progress.seen if progress.listing_done else None,
            counters=counters_text(progress),
            rate=f"{progress.rate:,.0f}",
        )

    def stop(self, progress: SyncProgress) -> None:
        self.update(progress)
        self.bar.stop()
        super().stop(progress)
