"""A storage written for datasette-files 0.1a3 works unchanged.

``OldStorage`` overrides every method whose signature has grown since 0.1a3
with its 0.1a3 signature (``download_url(path, expires_in=300)``,
``stream_file(path)``, ...) and no ``**kwargs``: a call in any other shape is
a TypeError, which would surface as a 500.
"""

from __future__ import annotations

import pytest
import pytest_asyncio
from datasette import hookimpl
from datasette.plugins import pm
from datasette_files import compat
from datasette_files.base import (
    FileMetadata,
    FileTooLarge,
    Storage,
    StorageCapabilities,
)
from datasette_files.state import get_state
from testkit import ALICE
from thumbnail_helpers import WAIT, decoded, image_bytes

pytestmark = pytest.mark.asyncio


PERMISSIONS = {
    action: {"id": "alice"}
    for action in (
        "files-browse",
        "files-upload",
        "files-edit",
        "files-delete",
        "debug-storages",
    )
}
DATA = b"The quick brown fox jumps over the lazy dog. " * 100
CDN = "https://cdn.example.com/"


class OldStorage(Storage):
    """In memory, with 0.1a3 signatures; ``calls`` records what the core did."""

    storage_type = "old"

    @property
    def capabilities(self):
        return StorageCapabilities(
            can_upload=True,
            can_delete=True,
            can_list=True,
            can_generate_signed_urls=self.signed,
            max_file_size=10_000_000,
        )

    async def configure(self, config, get_secret):
        self.signed = config.get("signed", False)
        self.files = {}
        self.calls = []

    async def get_file_metadata(self, path):
        if path not in self.files:
            return None
        return FileMetadata(path=path, filename=path, size=len(self.files[path]))

    async def read_file(self, path):
        self.calls.append("read_file")
        return self.files[path]

    async def read_file_limited(self, path, max_bytes):
        self.calls.append("read_file_limited")
        if len(self.files[path]) > max_bytes:
            raise FileTooLarge(f"{path} is larger than {max_bytes} bytes")
        return self.files[path]

    async def read_bytes(self, path, num_bytes=2048):
        self.calls.append("read_bytes")
        return self.files[path][:num_bytes]

    async def stream_file(self, path):
        self.calls.append("stream_file")
        data = self.files[path]
        # Small chunks, so a Range cut by the core crosses chunk boundaries.
        for offset in range(0, len(data), 7):
            yield data[offset : offset + 7]

    async def receive_upload(self, path, stream, content_type):
        self.calls.append("receive_upload")
        self.files[path] = b"".join([chunk async for chunk in stream])
        return FileMetadata(
            path=path,
            filename=path,
            content_type=content_type,
            size=len(self.files[path]),
        )

    async def delete_file(self, path):
        self.calls.append("delete_file")
        self.files.pop(path, None)

    async def list_files(self, prefix="", cursor=None, limit=100):
        self.calls.append("list_files")
        paths = sorted(p for p in self.files if p.startswith(prefix))
        if cursor is not None:
            paths = [p for p in paths if p > cursor]
        page = paths[:limit]
        files = [
            FileMetadata(path=p, filename=p, size=len(self.files[p])) for p in page
        ]
        return files, (page[-1] if len(paths) > limit else None)

    async def download_url(self, path, expires_in=300):
        self.calls.append("download_url")
        return f"{CDN}{path}?expires_in={expires_in}"


class OldStoragePlugin:
    storage_class = OldStorage

    @hookimpl
    def register_files_storage_types(self, datasette):
        return [self.storage_class]


@pytest.fixture
def old_plugin():
    plugin = OldStoragePlugin()
    pm.register(plugin, name="test-old-storage")
    yield plugin
    pm.unregister(name="test-old-storage")


@pytest_asyncio.fixture
async def old_ds(make_ds, old_plugin):
    """``await old_ds(signed=True)``: one source, ``old``, in an OldStorage."""

    async def make(signed=False, plugin=None):
        config = {"storage": "old", "config": {"signed": signed}}
        return await make_ds(
            sources={"old": config}, permissions=PERMISSIONS, plugin=plugin
        )

    return make


def storage_of(ds) -> OldStorage:
    return get_state(ds).sources["old"].storage


async def test_signed_urls_upload_download_list_and_delete(old_ds, upload):
    ds = await old_ds(signed=True)
    file = await upload(ds, "old", "fox.txt", DATA, content_type="text/plain")
    storage = storage_of(ds)
    assert storage.files[file_path(storage)] == DATA
    assert "receive_upload" in storage.calls

    download = await ds.client.get(file["download_url"], actor=ALICE)
    assert download.status_code == 302
    assert download.headers["location"] == (f"{CDN}{file_path(storage)}?expires_in=300")

    listing = await ds.client.get("/-/files/storages/list/old?limit=10", actor=ALICE)
    assert listing.status_code == 200, listing.text
    assert [f["path"] for f in listing.json()["files"]] == [file_path(storage)]
    assert listing.json()["next_cursor"] is None

    deleted = await ds.client.post(file["url"] + "/-/delete", actor=ALICE)
    assert deleted.status_code == 200, deleted.text
    assert storage.files == {}


def file_path(storage: OldStorage) -> str:
    (path,) = storage.files
    return path


async def test_debug_listing_pages_with_the_old_signature(old_ds, upload):
    ds = await old_ds()
    for name in ("a.txt", "b.txt", "c.txt"):
        await upload(ds, "old", name, name.encode())
    first = (
        await ds.client.get("/-/files/storages/list/old?limit=2", actor=ALICE)
    ).json()
    assert len(first["files"]) == 2 and first["next_cursor"]
    second = (
        await ds.client.get(
            f"/-/files/storages/list/old?limit=2&cursor={first['next_cursor']}",
            actor=ALICE,
        )
    ).json()
    assert [f["size"] for f in second["files"]] == [5]
    assert second["next_cursor"] is None


async def test_range_requests_on_a_proxied_old_storage(old_ds, upload):
    ds = await old_ds(signed=False)
    file = await upload(ds, "old", "fox.txt", DATA, content_type="text/plain")

    whole = await ds.client.get(file["download_url"], actor=ALICE)
    assert whole.status_code == 200
    assert whole.content == DATA

    # stream_file(path) has no range: the core cuts the bytes out of it.
    for header, start, end in (
        ("bytes=4-8", 4, 8),
        ("bytes=5-20", 5, 20),  # across several 7-byte chunks
        ("bytes=-4", len(DATA) - 4, len(DATA) - 1),
        (f"bytes={len(DATA) - 3}-", len(DATA) - 3, len(DATA) - 1),
    ):
        ranged = await ds.client.get(
            file["download_url"], headers={"range": header}, actor=ALICE
        )
        assert ranged.status_code == 206, (header, ranged.text)
        assert ranged.content == DATA[start : end + 1], header
        assert ranged.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
        assert ranged.headers["content-length"] == str(end - start + 1)


async def test_previews_and_thumbnails_read_through_the_old_signatures(old_ds, upload):
    ds = await old_ds(plugin=WAIT)
    text = await upload(ds, "old", "fox.txt", DATA, content_type="text/plain")
    page = await ds.client.get(text["url"], actor=ALICE)
    assert page.status_code == 200, page.text

    image = await upload(
        ds, "old", "pic.png", image_bytes("PNG"), content_type="image/png"
    )
    thumbnail = await ds.client.get(image["thumbnail_url"], actor=ALICE)
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "image/webp"
    assert decoded(thumbnail).size == (256, 128)
    # The preview and the thumbnail both read the first bytes, never more.
    assert storage_of(ds).calls.count("read_bytes") == 2
    assert "read_file" not in storage_of(ds).calls


async def test_signatures_are_read_once_at_discovery(
    make_ds, old_plugin, upload, monkeypatch
):
    # A class of its own, so no earlier test has read its signatures yet.
    class FreshStorage(OldStorage):
        pass

    old_plugin.storage_class = FreshStorage
    read = []

    def counting(storage_class):
        read.append(storage_class)
        return original(storage_class)

    original = compat.read_call_shapes
    monkeypatch.setattr(compat, "read_call_shapes", counting)

    ds = await make_ds(
        sources={"old": {"storage": "old", "config": {}}}, permissions=PERMISSIONS
    )
    assert read.count(FreshStorage) == 1
    file = await upload(ds, "old", "fox.txt", DATA)
    for _ in range(3):
        ranged = await ds.client.get(
            file["download_url"], headers={"range": "bytes=0-2"}, actor=ALICE
        )
        assert ranged.content == b"The"
    await ds.client.get("/-/files/storages", actor=ALICE)
    await ds.client.get("/-/files/storages/list/old", actor=ALICE)
    assert read.count(FreshStorage) == 1


class MinimalStorage(Storage):
    """Only the abstract methods: every other method is the base default."""

    storage_type = "minimal"
    capabilities = StorageCapabilities()

    def __init__(self, files):
        self.files = files
        self.reads = 0

    async def configure(self, config, get_secret):
        pass

    async def get_file_metadata(self, path):
        if path not in self.files:
            return None
        return FileMetadata(path=path, filename=path, size=len(self.files[path]))

    async def read_file(self, path):
        self.reads += 1
        return self.files[path]


async def test_default_read_file_limited_is_all_or_nothing():
    storage = MinimalStorage({"a.txt": b"hello world"})
    assert await storage.read_file_limited("a.txt", 11) == b"hello world"
    assert storage.reads == 1
    with pytest.raises(FileTooLarge) as error:
        await storage.read_file_limited("a.txt", 10)
    assert "10 byte limit" in str(error.value)
    # The recorded size refused it: the file was not read.
    assert storage.reads == 1
    assert await storage.read_bytes("a.txt", 5) == b"hello"
    assert await storage.read_bytes("a.txt") == b"hello world"


async def test_default_read_file_limited_checks_what_it_read():
    class WrongSize(MinimalStorage):
        async def get_file_metadata(self, path):
            return FileMetadata(path=path, filename=path, size=None)

    with pytest.raises(FileTooLarge):
        await WrongSize({"a.txt": b"hello world"}).read_file_limited("a.txt", 3)


async def test_calls_adapt_to_each_signature():
    shapes = compat.read_call_shapes(OldStorage)
    assert shapes == compat.CallShapes(
        download_url_names=False, stream_file_range=False
    )
    assert compat.read_call_shapes(MinimalStorage) == compat.CallShapes(
        download_url_names=True, stream_file_range=True
    )

    class KeywordsStorage(OldStorage):
        async def download_url(self, path, expires_in=300, **kwargs):
            return f"{path}:{expires_in}:{kwargs['filename']}"

    calls = compat.StorageCalls(KeywordsStorage())
    assert calls.shapes.download_url_names
    url = await calls.download_url("p", 60, filename="f.txt", content_type=None)
    assert url == "p:60:f.txt"


class SDKError(Exception):
    """What a 0.1a3-era storage raises: its SDK's own error, not ours."""


class FailingOldStorage(OldStorage):
    """An OldStorage whose backend fails with an SDK error, as botocore's
    ClientError does for a wrong secret key."""

    storage_type = "old-failing"

    async def configure(self, config, get_secret):
        await super().configure(config, get_secret)
        if config.get("fail_configure"):
            raise SDKError("cannot connect with secret=hunter2")

    async def receive_upload(self, path, stream, content_type):
        async for _ in stream:
            pass
        raise SDKError("SignatureDoesNotMatch for secret=hunter2")

    async def list_files(self, prefix="", cursor=None, limit=100):
        raise SDKError("SignatureDoesNotMatch for secret=hunter2")


@pytest.fixture
def failing_plugin():
    plugin = OldStoragePlugin()
    plugin.storage_class = FailingOldStorage
    pm.register(plugin, name="test-failing-old-storage")
    yield plugin
    pm.unregister(name="test-failing-old-storage")


async def test_sdk_errors_from_an_old_storage_are_a_503_without_secrets(
    make_ds, failing_plugin
):
    ds = await make_ds(
        sources={"old": {"storage": "old-failing", "config": {}}},
        permissions=PERMISSIONS,
    )
    prepared = await ds.client.post(
        "/-/files/upload/old/-/prepare",
        json={"filename": "a.txt", "content_type": "text/plain", "size": 3},
        actor=ALICE,
    )
    assert prepared.status_code == 200, prepared.text
    token = prepared.json()["upload_token"]
    sent = await ds.client.post(
        "/-/files/upload/old/-/upload",
        content=b"abc",
        headers={"x-upload-token": token, "content-type": "application/octet-stream"},
        actor=ALICE,
    )
    listing = await ds.client.get("/-/files/storages/list/old", actor=ALICE)
    for response in (sent, listing):
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["ok"] is False
        assert "storage raised SDKError" in body["errors"][0]
        assert "hunter2" not in response.text
    # The token is still usable once the backend is fixed.
    pending = await get_state(ds).registry.stale_pending(("prepared",))
    assert [p.filename for p in pending] == ["a.txt"]


async def test_an_old_storage_that_cannot_connect_does_not_stop_startup(
    make_ds, failing_plugin
):
    ds = await make_ds(
        sources={"old": {"storage": "old-failing", "config": {"fail_configure": True}}},
        permissions=PERMISSIONS,
    )
    response = await ds.client.post(
        "/-/files/upload/old/-/prepare",
        json={"filename": "a.txt", "content_type": "text/plain", "size": 3},
        actor=ALICE,
    )
    assert response.status_code == 503, response.text
    assert "storage raised SDKError" in response.json()["errors"][0]
    assert "hunter2" not in response.text
