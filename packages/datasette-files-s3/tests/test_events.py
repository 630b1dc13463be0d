"""A direct upload to S3 (the bytes never pass through Datasette) still sends
the core's ``file-upload`` event when it is completed."""

import httpx
import pytest
import pytest_asyncio
from datasette import hookimpl
from datasette.app import Datasette
from datasette.plugins import pm

pytestmark = pytest.mark.asyncio

ROOT = {"id": "root"}


class Recorder:
    def __init__(self):
        self.events = []

    @hookimpl
    def track_event(self, datasette, event):
        self.events.append(event)


@pytest_asyncio.fixture
async def ds(seaweedfs, source_config, tmp_path):
    config = {
        "permissions": {"files-browse": ROOT, "files-upload": ROOT},
        "plugins": {
            "datasette-files": {
                "sources": {"bucket": {"storage": "s3", "config": source_config()}}
            }
        },
    }
    datasette = Datasette(config=config, internal=str(tmp_path / "internal.db"))
    await datasette.invoke_startup()
    yield datasette
    await datasette.invoke_shutdown()


@pytest.fixture
def recorder():
    plugin = Recorder()
    pm.register(plugin, name="test-s3-event-recorder")
    yield plugin
    pm.unregister(name="test-s3-event-recorder")


async def test_direct_upload_complete_sends_file_upload(ds, recorder):
    data = b"straight to the bucket"
    prepared = await ds.client.post(
        "/-/files/upload/bucket/-/prepare",
        json={"filename": "d.txt", "content_type": "text/plain", "size": len(data)},
        actor=ROOT,
    )
    assert prepared.status_code == 200, prepared.text
    body = prepared.json()
    assert body["upload"]["mode"] == "direct"
    async with httpx.AsyncClient() as browser:
        posted = await browser.post(
            body["upload"]["url"],
            data=body["upload"]["fields"],
            files={"file": ("d.txt", data, "text/plain")},
        )
    assert posted.status_code in (200, 201, 204), posted.text
    # Sent to the bucket, not yet completed: nothing to report.
    assert [e for e in recorder.events if e.name == "file-upload"] == []
    completed = await ds.client.post(
        "/-/files/upload/bucket/-/complete",
        json={"upload_token": body["upload_token"]},
        actor=ROOT,
    )
    assert completed.status_code == 201, completed.text
    [event] = [e for e in recorder.events if e.name == "file-upload"]
    assert event.actor == ROOT
    assert event.properties() == {
        "file_id": completed.json()["file"]["id"],
        "source": "bucket",
        "filename": "d.txt",
        "content_type": "text/plain",
        "size": len(data),
    }
