"""The events datasette-files sends through Datasette's ``track_event``.

Each is a Datasette ``Event`` dataclass: ``name`` says what happened,
``actor`` who did it, the other fields (``event.properties()``) the details.
A plugin implementing ``track_event`` receives them alongside Datasette's own
(``login``, ``create-table``...). Names, fields and when each fires:
docs/events.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from datasette.events import Event

from .hookspecs import awaited_hook_results

log = logging.getLogger("datasette_files")


@dataclass
class FileUploadEvent(Event):
    """Event name: ``file-upload``

    A file was uploaded and registered (after a successful complete, proxied
    or direct): one per file.
    """

    name = "file-upload"  # pyright: ignore[reportAssignmentType] - as datasette.events does
    file_id: str
    source: str
    filename: str
    content_type: str | None
    size: int | None


@dataclass
class FileUpdateEvent(Event):
    """Event name: ``file-update``

    A file's metadata was updated. ``changed`` lists the fields the request
    set (e.g. ``["filename", "search_text"]``); ``filename`` is the new one.
    """

    name = "file-update"  # pyright: ignore[reportAssignmentType] - as datasette.events does
    file_id: str
    source: str
    filename: str
    changed: list


@dataclass
class FileDeleteEvent(Event):
    """Event name: ``file-delete``

    A file was deleted (its registry row is gone).
    """

    name = "file-delete"  # pyright: ignore[reportAssignmentType] - as datasette.events does
    file_id: str
    source: str
    filename: str


@dataclass
class FileImportEvent(Event):
    """Event name: ``file-import``

    A CSV or TSV import finished successfully: ``rows`` rows went into the
    new ``table`` of ``database``.
    """

    name = "file-import"  # pyright: ignore[reportAssignmentType] - as datasette.events does
    file_id: str
    source: str
    filename: str
    database: str
    table: str
    rows: int


@dataclass
class FilesSyncEvent(Event):
    """Event name: ``files-sync``

    A sync of a source with its backend finished: files ``seen`` in the
    backend; of those, ``registered`` (new to the registry), ``updated``
    (changed in the backend) and ``skipped`` (already registered,
    unchanged); ``removed``: registered files gone from the backend, pruned.
    ``actor`` is None when the sync ran from the command line.
    """

    name = "files-sync"  # pyright: ignore[reportAssignmentType] - as datasette.events does
    source: str
    registered: int
    updated: int
    removed: int
    skipped: int
    seen: int


EVENTS = [
    FileUploadEvent,
    FileUpdateEvent,
    FileDeleteEvent,
    FileImportEvent,
    FilesSyncEvent,
]


async def send_event(datasette, event: Event) -> None:
    """What ``datasette.track_event(event)`` does, one tracking plugin at a
    time: one that raises is logged with its name and the others still see
    the event. Never the failure of the upload, edit or import it reports
    on: by the time an event is sent, the thing it describes has happened."""
    await awaited_hook_results("track_event", datasette=datasette, event=event)


async def send_file_event(datasette, event_class, actor, file, **details) -> None:
    """Send one of the file events about ``file`` (a FileRow or File), with
    the fields every file event has, plus ``details``."""
    await send_event(
        datasette,
        event_class(
            actor=actor,
            file_id=file.id,
            source=file.source_slug,
            filename=file.filename,
            **details,
        ),
    )


SYNC_COUNTS = ("registered", "updated", "removed", "skipped", "seen")


def sync_finished(datasette, actor: dict | None):
    """An ``on_finish`` for a sync engine: sends ``files-sync``."""

    async def send(progress) -> None:
        counts = {name: getattr(progress, name) for name in SYNC_COUNTS}
        event = FilesSyncEvent(actor=actor, source=progress.source_slug, **counts)
        await send_event(datasette, event)

    return send
