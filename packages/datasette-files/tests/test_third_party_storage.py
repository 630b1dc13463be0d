"""A storage plugin written against the 0.1a3 interface works unchanged.

``MemoryStorage`` implements only the abstract methods plus ``receive_upload``
and registers through ``register_files_storage_types``, as an installed
plugin would.
"""

from __future__ import annotations

import hashlib

import pytest
import pytest_asyncio
from datasette import hookimpl
from datasette.plugins import pm
from datasette_files import get_file
from datasette_files.base import (
    FileMetadata,
    FileTooLarge,
    Storage,
    StorageCapabilities,
)
from testkit import ALICE


class MemoryStorage(Storage):
    """Keeps every file in a dict. Fine for a test, nothing else."""

    @property
    def storage_type(self):
        return "memory"

    @property
    def capabilities(self):
        return StorageCapabilities(can_upload=True, max_file_size=10_000_000)

    async def configure(self, config, get_secret):
        self.label = config["label"]
        self.files = {}

    async def get_file_metadata(self, path):
        if path not in self.files:
            return None
        data = self.files[path]
        return FileMetadata(path=path, filename=path, size=len(data))

    async def read_file(self, path):
        return self.files[path]

    async def receive_upload(self, path, stream, content_type):
        chunks = [chunk async for chunk in stream]
        self.files[path] = b"".join(chunks)
        return FileMetadata(
            path=path,
            filename=path,
            content_type=content_type,
            size=len(self.files[path]),
        )


class MemoryStoragePlugin:
    @hookimpl
    def register_files_storage_types(self, datasette):
        return [MemoryStorage]


@pytest.fixture
def memory_plugin():
    pm.register(MemoryStoragePlugin(), name="test-memory-storage")
    yield
    pm.unregister(name="test-memory-storage")


@pytest_asyncio.fixture
async def memory_ds(make_ds, memory_plugin):
    """A Datasette with one source, ``mem``, in a MemoryStorage."""
    return await make_ds(
        sources={"mem": {"storage": "memory", "config": {"label": "RAM"}}}
    )


DATA = b"The quick brown fox jumps over the lazy dog" * 1000


@pytest.mark.asyncio
async def test_upload_download_and_listing(memory_ds, upload):
    ds = memory_ds
    file = await upload(ds, "mem", "fox.txt", DATA, content_type="text/plain")
    assert file["content_hash"] == "sha256:" + hashlib.sha256(DATA).hexdigest()
    assert file["size"] == len(DATA)

    download = await ds.client.get(file["download_url"], actor=ALICE)
    assert download.status_code == 200
    assert download.content == DATA

    # The storage has no Range support of its own: the core slices its stream.
    ranged = await ds.client.get(
        file["download_url"], headers={"range": "bytes=4-8"}, actor=ALICE
    )
    assert ranged.status_code == 206
    assert ranged.content == b"quick"
    assert ranged.headers["content-range"] == f"bytes 4-8/{len(DATA)}"
    tail = await ds.client.get(
        file["download_url"], headers={"range": "bytes=-4"}, actor=ALICE
    )
    assert tail.content == b" dog"

    listing = await ds.client.get("/-/files/source/mem.json", actor=ALICE)
    assert [f["id"] for f in listing.json()["files"]] == [file["id"]]
    sources = await ds.client.get("/-/files/sources.json", actor=ALICE)
    (mem,) = sources.json()["sources"]
    assert (mem["slug"], mem["storage"], mem["available"]) == ("mem", "memory", True)


@pytest.mark.asyncio
async def test_get_file_reads_through_the_storage(memory_ds, upload):
    ds = memory_ds
    uploaded = await upload(ds, "mem", "fox.txt", DATA)

    file = await get_file(ds, uploaded["id"])
    assert (file.id, file.filename, file.size) == (uploaded["id"], "fox.txt", len(DATA))
    assert await file.read() == DATA
    assert await file.read_bytes(3) == b"The"
    # read(max_bytes=) is all or nothing, as in 0.1a3.
    assert await file.read(max_bytes=len(DATA)) == DATA
    with pytest.raises(FileTooLarge):
        await file.read(max_bytes=3)
    async with file.open() as chunks:
        assert b"".join([chunk async for chunk in chunks]) == DATA
    assert await get_file(ds, "df-doesnotexist") is None


@pytest.mark.asyncio
async def test_config_errors_name_the_source(make_ds, memory_plugin):
    from datasette.utils import StartupError

    ds = await make_ds(
        sources={"mem": {"storage": "memory", "config": {}}}, start=False
    )
    with pytest.raises(StartupError) as error:
        await ds.invoke_startup()
    assert "'mem'" in str(error.value) and "'label'" in str(error.value)


@pytest.mark.asyncio
async def test_delete_is_refused_when_the_storage_cannot(memory_ds, upload, json_error):
    ds = memory_ds
    file = await upload(ds, "mem", "keep.txt", b"keep")
    json_error(await ds.client.post(file["url"] + "/-/delete", actor=ALICE), 400)
    assert (await ds.client.get(file["download_url"], actor=ALICE)).content == b"keep"
