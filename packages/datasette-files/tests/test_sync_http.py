"""``POST /-/files/source/{slug}/-/sync`` runs a sync as a background job and
``GET`` (``.json``) follows it; here on a third-party storage that only
implements ``list_files(prefix, cursor, limit)`` and can hold its listing
mid-way, so a second request meets the running job."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
import pytest_asyncio
from datasette import hookimpl
from datasette.plugins import pm
from datasette_files.base import FileMetadata, Storage, StorageCapabilities
from testkit import ALICE

pytestmark = pytest.mark.asyncio


BOB = {"id": "bob"}
SYNC_URL = "/-/files/source/shelf/-/sync"


class ShelfStorage(Storage):
    """Objects in a dict, listed in path order, a page per call. While
    ``gate`` is clear, listing waits after the first page."""

    storage_type = "shelf"
    objects: dict[str, bytes] = {}
    gate = None
    pages = 0

    @property
    def capabilities(self):
        return StorageCapabilities(can_list=True)

    async def configure(self, config, get_secret):
        pass

    async def get_file_metadata(self, path):
        data = self.objects.get(path)
        return None if data is None else FileMetadata(path, path, size=len(data))

    async def read_file(self, path):
        return self.objects[path]

    async def list_files(self, prefix="", cursor=None, limit=100):
        if cursor is not None and self.gate is not None:
            await self.gate.wait()
        type(self).pages += 1
        # Like S3, at most 1,000 a page, whatever the sync asks for.
        limit = min(limit, 1000)
        paths = sorted(p for p in self.objects if p.startswith(prefix))
        if cursor is not None:
            paths = [p for p in paths if p > cursor]
        page = paths[:limit]
        files = [
            FileMetadata(
                path=p,
                filename=p.rsplit("/", 1)[-1],
                size=len(self.objects[p]),
                created_at="2024-05-01T10:00:00+00:00",
                metadata={"etag": str(hash(self.objects[p]))},
            )
            for p in page
        ]
        return files, (page[-1] if len(paths) > limit else None)


class ShelfPlugin:
    @hookimpl
    def register_files_storage_types(self, datasette):
        return [ShelfStorage]


@pytest.fixture
def shelf():
    ShelfStorage.objects = {
        f"box-{i % 4}/item-{i:04d}.txt": f"item {i}".encode() for i in range(2500)
    }
    ShelfStorage.gate = None
    ShelfStorage.pages = 0
    pm.register(ShelfPlugin(), name="test-shelf-storage")
    yield ShelfStorage
    pm.unregister(name="test-shelf-storage")


@pytest_asyncio.fixture
async def ds(make_ds, shelf):
    return await make_ds(
        sources={"shelf": {"storage": "shelf"}},
        permissions={
            "files-browse": {"id": ["alice", "bob"]},
            "files-sync": {"id": "alice"},
        },
    )


async def wait_until_finished(ds) -> dict:
    while True:
        job = (await ds.client.get(SYNC_URL + ".json", actor=ALICE)).json()["job"]
        if job["finished"]:
            return job
        await asyncio.sleep(0.02)


async def test_sync_job_runs_reports_and_refuses_a_second(ds, shelf):
    assert (await ds.client.get(SYNC_URL, actor=ALICE)).json() == {
        "ok": True,
        "job": None,
    }
    shelf.gate = asyncio.Event()
    started = await ds.client.post(SYNC_URL, json={}, actor=ALICE)
    assert started.status_code == 202, started.text
    assert started.json()["job"]["status"] == "running"

    again = await ds.client.post(SYNC_URL, json={"prune": True}, actor=ALICE)
    assert again.status_code == 409
    assert again.json()["ok"] is False
    assert again.json()["job_url"] == SYNC_URL

    shelf.gate.set()
    job = await wait_until_finished(ds)
    assert job["status"] == "finished"
    assert (job["seen"], job["registered"], job["missing"]) == (2500, 2500, 0)
    assert shelf.pages == 3  # 1,000 a page

    listing = await ds.client.get("/-/files/source/shelf.json?_size=5", actor=BOB)
    first = listing.json()["files"][0]
    assert first["created_at"] == "2024-05-01T10:00:00.000000Z"
    found = await ds.client.get("/-/files/search.json?q=item-0042", actor=BOB)
    assert [f["filename"] for f in found.json()["files"]] == ["item-0042.txt"]
    # Then hashed in the background, as direct uploads are.
    file_url = found.json()["files"][0]["url"] + ".json"
    expected = "sha256:" + hashlib.sha256(b"item 42").hexdigest()
    while True:
        file = (await ds.client.get(file_url, actor=BOB)).json()["file"]
        if file["content_hash"] == expected:
            break
        await asyncio.sleep(0.05)

    # Nothing new; then one removed, pruned from the page's checkbox.
    assert (await ds.client.post(SYNC_URL, actor=ALICE)).status_code == 202
    assert (await wait_until_finished(ds))["registered"] == 0
    del shelf.objects["box-1/item-0001.txt"]
    shelf.objects["box-1/item-0005.txt"] = b"changed, and longer"
    pruned = await ds.client.post(SYNC_URL, json={"prune": True}, actor=ALICE)
    assert pruned.status_code == 202
    job = await wait_until_finished(ds)
    assert (job["updated"], job["missing"], job["removed"]) == (1, 1, 1)
    count = await ds.client.get("/-/files/source/shelf.json?_size=1", actor=ALICE)
    assert count.status_code == 200


@pytest.mark.parametrize(
    "body,message",
    [
        ({"prune": "yes"}, "'prune' must be true or false"),
        ({"everything": True}, "Unknown key 'everything'"),
        ([1], "Body must be a JSON object"),
    ],
)
async def test_bad_options_are_400(ds, body, message):
    response = await ds.client.post(SYNC_URL, json=body, actor=ALICE)
    assert response.status_code == 400
    assert response.json()["errors"] == [message]


async def test_files_sync_is_needed(ds):
    for method in ("get", "post"):
        response = await getattr(ds.client, method)(SYNC_URL, actor=BOB)
        assert response.status_code == 403
        assert response.json()["ok"] is False
    assert (await ds.client.get("/-/files/source/nope/-/sync")).status_code == 403


class SyncEvents:
    def __init__(self):
        self.events = []
        self.sent = asyncio.Event()

    @hookimpl
    def track_event(self, datasette, event):
        if event.name == "files-sync":
            self.events.append(event)
            self.sent.set()


async def test_a_finished_sync_sends_files_sync_with_its_counts(ds, shelf):
    recorder = SyncEvents()
    pm.register(recorder, name="test-sync-events")
    try:
        shelf.gate = asyncio.Event()
        assert (await ds.client.post(SYNC_URL, actor=ALICE)).status_code == 202
        assert recorder.events == []  # not while it runs
        shelf.gate.set()
        await wait_until_finished(ds)
        # Sent by the job's task right after it records "finished".
        await asyncio.wait_for(recorder.sent.wait(), 30)
    finally:
        pm.unregister(name="test-sync-events")
    (event,) = recorder.events
    assert event.actor == ALICE
    assert event.properties() == {
        "source": "shelf",
        "registered": 2500,
        "updated": 0,
        "removed": 0,
        "skipped": 0,
        "seen": 2500,
    }


@pytest.mark.parametrize("prune", [True, False])
async def test_an_upload_completed_during_a_sync_is_not_gone(
    make_ds, api, upload, monkeypatch, prune
):
    # The upload was pending when the sync began (its path is left out of
    # the listing), and it completes while the listing runs: its row is
    # then in the registry but in no page, which is what a gone file looks
    # like. A prune deleted the new file's row.
    from datasette_files.filesystem import FilesystemStorage
    from datasette_files.state import get_state
    from datasette_files.sync.engine import SyncEngine, SyncOptions
    from datasette_files.sync.store import SyncStore

    ds = await make_ds()
    await upload(ds, "files", "earlier.txt", b"earlier")
    token = (await api.prepare(ds, "files", "late.txt", 4)).json()["upload_token"]
    assert (await api.send(ds, "files", token, b"late")).status_code == 200

    list_files = FilesystemStorage.list_files
    completed = []

    async def list_then_complete(self, prefix="", cursor=None, limit=100):
        page = await list_files(self, prefix, cursor, limit)
        if not completed:
            completed.append(await api.complete(ds, "files", token))
        return page

    monkeypatch.setattr(FilesystemStorage, "list_files", list_then_complete)
    state = get_state(ds)
    engine = SyncEngine(
        SyncStore(state.registry.db),
        "files",
        await state.storage_for("files"),
        SyncOptions(prune=prune),
        owner="test",
    )
    progress = await engine.run()

    assert completed[0].status_code == 201, completed[0].text
    late = completed[0].json()["file"]
    assert (progress.missing, progress.removed) == (0, 0)
    response = await ds.client.get(late["url"] + ".json", actor=ALICE)
    assert response.status_code == 200, response.text
