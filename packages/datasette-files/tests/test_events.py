"""The events datasette-files sends through Datasette's ``track_event``.

A plugin in the test records every ``track_event`` call, as an analytics or
audit-log plugin would; the tests upload, edit, delete and import over HTTP
and read what it recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from datasette import hookimpl
from datasette.plugins import pm
from datasette_files.events import FilesSyncEvent
from datasette_files.state import get_state
from import_helpers import ALICE, import_file

pytestmark = pytest.mark.asyncio

OURS = ("file-upload", "file-update", "file-delete", "file-import", "files-sync")


class Recorder:
    """A ``track_event`` plugin: keeps every event it is sent."""

    def __init__(self):
        self.events = []

    @hookimpl
    def track_event(self, datasette, event):
        self.events.append(event)

    def named(self, name: str) -> list:
        return [event for event in self.events if event.name == name]

    def ours(self) -> list:
        return [event for event in self.events if event.name in OURS]

    async def wait_for(self, name: str, timeout: float = 30) -> list:
        """The ``name`` events, once there is at least one (they may be sent
        by a background task, after the request that started it)."""
        deadline = time.monotonic() + timeout
        while not self.named(name):
            assert time.monotonic() < deadline, f"no {name} event: {self.events}"
            await asyncio.sleep(0.02)
        return self.named(name)


class RaisingTracker:
    @hookimpl
    def track_event(self, datasette, event):
        raise RuntimeError("tracker exploded")


@pytest.fixture
def recorder():
    plugin = Recorder()
    pm.register(plugin, name="test-event-recorder")
    yield plugin
    pm.unregister(name="test-event-recorder")


def fields(event) -> dict:
    return {"name": event.name, "actor": event.actor, **event.properties()}


async def test_events_are_registered(make_ds):
    ds = await make_ds()
    registered = {cls.name: cls for cls in ds.event_classes}
    assert set(OURS) <= set(registered)
    assert registered["files-sync"] is FilesSyncEvent


async def test_upload_sends_one_file_upload_event(make_ds, upload, recorder):
    ds = await make_ds()
    file = await upload(ds, "files", "notes.txt", b"hello", content_type="text/plain")
    assert [fields(event) for event in recorder.ours()] == [
        {
            "name": "file-upload",
            "actor": ALICE,
            "file_id": file["id"],
            "source": "files",
            "filename": "notes.txt",
            "content_type": "text/plain",
            "size": 5,
        }
    ]


async def test_multipart_form_upload_sends_the_event_too(make_ds, upload, recorder):
    ds = await make_ds()
    file = await upload(ds, "files", "a.bin", b"12345678", form=True)
    [event] = recorder.ours()
    assert (event.name, event.file_id, event.size) == ("file-upload", file["id"], 8)


async def test_failed_upload_sends_no_event(make_ds, api, recorder):
    ds = await make_ds()
    prepared = await api.prepare(ds, "files", "short.txt", size=10)
    token = prepared.json()["upload_token"]
    sent = await api.send(ds, "files", token, b"only5")
    assert sent.status_code == 400, sent.text
    completed = await api.complete(ds, "files", token)
    assert completed.status_code == 409, completed.text
    aborted = await api.abort(ds, "files", token)
    assert aborted.status_code == 200, aborted.text
    assert recorder.ours() == []


async def test_update_sends_file_update_with_the_changed_fields(
    make_ds, upload, recorder
):
    ds = await make_ds()
    file = await upload(ds, "files", "old.txt", b"x")
    response = await ds.client.post(
        f"/-/files/{file['id']}/-/update",
        json={"update": {"filename": "new.txt", "search_text": ""}},
        actor=ALICE,
    )
    assert response.status_code == 200, response.text
    assert [fields(event) for event in recorder.named("file-update")] == [
        {
            "name": "file-update",
            "actor": ALICE,
            "file_id": file["id"],
            "source": "files",
            "filename": "new.txt",
            # search_text was already "": only the filename changed.
            "changed": ["filename"],
        }
    ]
    # The same values again change nothing, so no event.
    again = await ds.client.post(
        f"/-/files/{file['id']}/-/update",
        json={"update": {"filename": "new.txt"}},
        actor=ALICE,
    )
    assert again.status_code == 200, again.text
    assert len(recorder.named("file-update")) == 1


async def test_refused_update_sends_no_event(make_ds, upload, recorder):
    ds = await make_ds()
    file = await upload(ds, "files", "a.txt", b"x")
    response = await ds.client.post(
        f"/-/files/{file['id']}/-/update",
        json={"update": {"filename": "../etc/passwd", "search_text": "new"}},
        actor=ALICE,
    )
    assert response.status_code == 400, response.text
    assert recorder.named("file-update") == []


async def test_delete_sends_file_delete(make_ds, upload, recorder):
    ds = await make_ds()
    file = await upload(ds, "files", "gone.txt", b"x")
    response = await ds.client.post(f"/-/files/{file['id']}/-/delete", actor=ALICE)
    assert response.status_code == 200, response.text
    assert [fields(event) for event in recorder.named("file-delete")] == [
        {
            "name": "file-delete",
            "actor": ALICE,
            "file_id": file["id"],
            "source": "files",
            "filename": "gone.txt",
        }
    ]
    # Refused: bob may not delete (and the file is gone anyway).
    refused = await ds.client.post(
        f"/-/files/{file['id']}/-/delete", actor={"id": "bob"}
    )
    assert refused.status_code == 404
    assert len(recorder.named("file-delete")) == 1


async def test_finished_import_sends_file_import(import_ds, put, recorder):
    ds = await import_ds()
    file = await put(ds, "people.csv", b"id,name\n1,Ann\n2,Bob\n3,Cy\n")
    job = await import_file(ds, file["id"], "people")
    assert job["status"] == "done", job
    [event] = await recorder.wait_for("file-import")
    assert fields(event) == {
        "name": "file-import",
        "actor": ALICE,
        "file_id": file["id"],
        "source": "files",
        "filename": "people.csv",
        "database": "data",
        "table": "people",
        "rows": 3,
    }


async def test_failed_import_sends_no_file_import(import_ds, put, recorder):
    ds = await import_ds()
    # Valid for longer than the preview reads, then a broken line.
    rows = b"".join(b"%d,xxxxxxxxxxxxxxxx\n" % i for i in range(60_000))
    file = await put(ds, "bad.csv", b"a,b\n" + rows + b"1,2,3\n")
    job = await import_file(ds, file["id"], "bad")
    assert job["status"] == "failed", job
    # Sent (if it were) before the job's task ends: wait for that task.
    await asyncio.gather(*get_state(ds).imports.tasks)
    assert recorder.named("file-import") == []


async def test_raising_tracker_does_not_break_anything(
    make_ds, upload, caplog, recorder
):
    # Registered after the recorder, so pluggy calls it first: the recorder
    # must still see every event.
    pm.register(RaisingTracker(), name="test-raising-tracker")
    try:
        ds = await make_ds()
        with caplog.at_level(logging.ERROR, logger="datasette_files"):
            # upload() asserts the 201 of complete.
            file = await upload(ds, "files", "a.txt", b"x")
            updated = await ds.client.post(
                f"/-/files/{file['id']}/-/update",
                json={"update": {"search_text": "hello"}},
                actor=ALICE,
            )
            assert updated.status_code == 200, updated.text
            deleted = await ds.client.post(
                f"/-/files/{file['id']}/-/delete", actor=ALICE
            )
            assert deleted.status_code == 200, deleted.text
        failures = [r for r in caplog.records if "track_event" in r.getMessage()]
        assert len(failures) == 3
        assert all("'test-raising-tracker'" in r.getMessage() for r in failures)
        assert "tracker exploded" in failures[0].exc_text
        assert [event.name for event in recorder.ours()] == [
            "file-upload",
            "file-update",
            "file-delete",
        ]
    finally:
        pm.unregister(name="test-raising-tracker")
