"""A backend that is down does not stop Datasette: its source answers 503 and
recovers on its own once the backend is back."""

from __future__ import annotations

import pytest
import pytest_asyncio
from datasette import hookimpl
from datasette.plugins import pm
from datasette_files.base import (
    FileMetadata,
    Storage,
    StorageCapabilities,
    StorageUnavailable,
)
from testkit import ALICE


class Backend:
    """The remote service a FlakyStorage talks to; tests switch it off and on."""

    up = True
    objects: dict = {}

    @classmethod
    def check(cls):
        if not cls.up:
            raise StorageUnavailable("connection refused")


class FlakyStorage(Storage):
    storage_type = "flaky"

    @property
    def capabilities(self):
        return StorageCapabilities(can_upload=True, can_delete=True)

    async def configure(self, config, get_secret):
        Backend.check()

    async def get_file_metadata(self, path):
        Backend.check()
        data = Backend.objects.get(path)
        return None if data is None else FileMetadata(path, path, size=len(data))

    async def read_file(self, path):
        Backend.check()
        return Backend.objects[path]

    async def receive_upload(self, path, stream, content_type):
        Backend.check()
        data = b"".join([chunk async for chunk in stream])
        Backend.check()
        Backend.objects[path] = data
        return FileMetadata(path, path, size=len(data))

    async def delete_file(self, path):
        Backend.check()
        Backend.objects.pop(path, None)


class FlakyPlugin:
    @hookimpl
    def register_files_storage_types(self, datasette):
        return [FlakyStorage]


@pytest.fixture
def backend():
    """The backend, up and empty."""
    Backend.up = True
    Backend.objects = {}
    pm.register(FlakyPlugin(), name="test-flaky-storage")
    yield Backend
    pm.unregister(name="test-flaky-storage")


@pytest_asyncio.fixture
async def start(make_ds, backend):
    async def start_ds():
        # No waiting between reconnection attempts.
        return await make_ds(
            sources={"remote": {"storage": "flaky"}, "local": {}},
            plugin={"source_retry_interval": 0},
        )

    return start_ds


async def remote_available(ds) -> bool:
    response = await ds.client.get("/-/files/sources.json", actor=ALICE)
    return {s["slug"]: s["available"] for s in response.json()["sources"]}["remote"]


@pytest.mark.asyncio
async def test_down_at_startup_then_recovers(start, backend, api, json_error):
    backend.up = False
    ds = await start()
    assert await remote_available(ds) is False
    index = await ds.client.get("/-/files", actor=ALICE)
    assert index.status_code == 200
    assert "(unavailable)" in index.text
    body = json_error(await api.prepare(ds, "remote", "a.txt", 1), 503)
    assert "remote" in body["errors"][0]
    # Other sources are not affected.
    assert (await api.prepare(ds, "local", "a.txt", 1)).status_code == 200

    backend.up = True
    assert (await api.prepare(ds, "remote", "a.txt", 1)).status_code == 200
    assert await remote_available(ds) is True


@pytest.mark.asyncio
async def test_down_in_the_middle_of_things(start, backend, api, upload, json_error):
    ds = await start()
    file = await upload(ds, "remote", "a.txt", b"abc")
    token = (await api.prepare(ds, "remote", "b.txt", 3)).json()["upload_token"]
    sent = (await api.prepare(ds, "remote", "c.txt", 3)).json()["upload_token"]
    assert (await api.send(ds, "remote", sent, b"ccc")).status_code == 200

    backend.up = False
    json_error(await api.complete(ds, "remote", sent), 503)
    json_error(await ds.client.get(file["download_url"], actor=ALICE), 503)
    json_error(await api.send(ds, "remote", token, b"abc"), 503)
    ranged = await ds.client.get(
        file["download_url"], headers={"range": "bytes=1-"}, actor=ALICE
    )
    json_error(ranged, 503)
    # The file's metadata lives in Datasette, so it is still shown.
    page = await ds.client.get(file["url"], actor=ALICE)
    assert page.status_code == 200

    backend.up = True
    download = await ds.client.get(file["download_url"], actor=ALICE)
    assert download.content == b"abc"
    # The failed upload can be sent again with the same token.
    assert (await api.send(ds, "remote", token, b"abc")).status_code == 200
    assert (await api.complete(ds, "remote", token)).status_code == 201
    assert (await api.complete(ds, "remote", sent)).status_code == 201


class DeleteFailsStorage(FlakyStorage):
    storage_type = "flaky"

    async def delete_file(self, path):
        raise StorageUnavailable("connection reset while deleting")


@pytest.mark.asyncio
async def test_delete_succeeds_when_only_removing_bytes_fails(
    start, backend, upload, monkeypatch, caplog
):
    ds = await start()
    file = await upload(ds, "remote", "a.txt", b"abc")
    source = ds._datasette_files_state.sources["remote"]
    monkeypatch.setattr(source, "storage", DeleteFailsStorage())

    response = await ds.client.post(file["url"] + "/-/delete", actor=ALICE)
    assert response.status_code == 200
    assert response.json() == {"ok": True, "deleted": file["id"]}
    # Gone for users; the orphaned bytes are named in the log.
    assert (await ds.client.get(file["url"] + ".json", actor=ALICE)).status_code == 404
    assert any("could not remove" in r.getMessage() for r in caplog.records)
