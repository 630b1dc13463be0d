"""Where a file's sha256 comes from: hashed while streaming, by the storage,
or afterwards by the background Hasher; and how the bytes reach the disk."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading

import pytest
from datasette import hookimpl
from datasette.plugins import pm
from datasette.utils import StartupError
from datasette_files import filesystem, hashing
from datasette_files.base import FileMetadata, StorageCapabilities
from datasette_files.batched_writes import WRITE_BATCH
from datasette_files.state import get_state
from testkit import ALICE

DATA = os.urandom(300_000)
SHA = "sha256:" + hashlib.sha256(DATA).hexdigest()


async def hashes_settle(ds) -> None:
    hasher = get_state(ds).hasher
    while hasher.tasks:
        await asyncio.gather(*hasher.tasks)


async def file_json(ds, file_id) -> dict:
    response = await ds.client.get(f"/-/files/{file_id}.json", actor=ALICE)
    return response.json()["file"]


@pytest.mark.asyncio
async def test_uploads_up_to_the_limit_are_hashed_while_streaming(make_ds, api):
    ds = await make_ds(plugin={"inline_hash_max_size": len(DATA)})
    token = (await api.prepare(ds, "files", "a.bin", len(DATA))).json()["upload_token"]
    sent = await api.send(ds, "files", token, DATA)
    assert sent.json()["content_hash"] == SHA
    completed = await api.complete(ds, "files", token)
    assert completed.json()["file"]["content_hash"] == SHA


@pytest.mark.asyncio
async def test_larger_uploads_are_hashed_in_the_background(make_ds, api):
    ds = await make_ds(plugin={"inline_hash_max_size": len(DATA) - 1})
    token = (await api.prepare(ds, "files", "a.bin", len(DATA))).json()["upload_token"]
    sent = await api.send(ds, "files", token, DATA)
    assert sent.status_code == 200, sent.text
    assert sent.json()["content_hash"] is None
    completed = await api.complete(ds, "files", token)
    assert completed.status_code == 201, completed.text
    file_id = completed.json()["file"]["id"]
    await hashes_settle(ds)
    assert (await file_json(ds, file_id))["content_hash"] == SHA


@pytest.mark.asyncio
async def test_a_restart_before_the_background_hash_is_caught_up(make_ds, api):
    ds1 = await make_ds(plugin={"inline_hash_max_size": 10})
    token = (await api.prepare(ds1, "files", "a.bin", len(DATA))).json()["upload_token"]
    await api.send(ds1, "files", token, DATA)
    # A crash during complete: the row says completing, and no hash yet.
    await ds1.get_internal_database().execute_write(
        "UPDATE files_pending SET status = 'completing'"
    )
    await ds1.invoke_shutdown()

    ds2 = await make_ds(plugin={"inline_hash_max_size": 10})
    # The bytes were all received, so complete works without sending again.
    completed = await api.complete(ds2, "files", token)
    assert completed.status_code == 201, completed.text
    await hashes_settle(ds2)
    assert (await file_json(ds2, completed.json()["file"]["id"]))["content_hash"] == SHA


@pytest.mark.asyncio
@pytest.mark.parametrize("value", [0, -1, "lots", True])
async def test_inline_hash_max_size_must_be_a_positive_integer(make_ds, value):
    with pytest.raises(StartupError, match="inline_hash_max_size"):
        await make_ds(plugin={"inline_hash_max_size": value})


class SelfHashingStorage(filesystem.FilesystemStorage):
    """A filesystem storage that says it hashes uploads itself (like S3)."""

    storage_type = "self-hashing"

    @property
    def capabilities(self):
        capabilities = super().capabilities
        return StorageCapabilities(**{**capabilities.__dict__, "hashes_uploads": True})

    async def receive_upload(self, path, stream, content_type) -> FileMetadata:
        hasher = hashlib.blake2b(digest_size=32)

        async def tee():
            async for chunk in stream:
                hasher.update(chunk)
                yield chunk

        metadata = await super().receive_upload(path, tee(), content_type)
        # A different algorithm on purpose: proves whose hash was recorded.
        # Bare hex, as storages written before the "sha256:" prefix report it.
        metadata.content_hash = hasher.hexdigest()
        return metadata


class SelfHashingPlugin:
    @hookimpl
    def register_files_storage_types(self, datasette):
        return [SelfHashingStorage]


@pytest.mark.asyncio
async def test_a_storage_that_hashes_uploads_is_not_hashed_twice(
    make_ds, upload, tmp_path
):
    pm.register(SelfHashingPlugin(), name="test-self-hashing")
    try:
        root = tmp_path / "own"
        root.mkdir()
        ds = await make_ds(
            sources={"own": {"storage": "self-hashing", "config": {"root": str(root)}}}
        )
        file = await upload(ds, "own", "a.bin", DATA)
    finally:
        pm.unregister(name="test-self-hashing")
    blake2b = hashlib.blake2b(DATA, digest_size=32).hexdigest()
    assert file["content_hash"] == f"sha256:{blake2b}"


async def chunks_of(data: bytes, size: int):
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def stored_bytes(tmp_path, stream) -> bytes:
    storage = filesystem.FilesystemStorage()
    await storage.configure({"root": str(tmp_path)}, None)
    metadata = await storage.receive_upload("f.bin", stream, "x/y")
    assert metadata.size == (tmp_path / "f.bin").stat().st_size
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".datasette")]
    return (tmp_path / "f.bin").read_bytes()


@pytest.mark.asyncio
async def test_many_tiny_chunks_are_written_in_order(tmp_path):
    data = os.urandom(5000)
    # 5,000 one-byte chunks: more than one writev() batch of iovecs.
    assert await stored_bytes(tmp_path, chunks_of(data, 1)) == data


@pytest.mark.asyncio
async def test_big_chunks_span_several_batches(tmp_path):
    data = os.urandom(3 * WRITE_BATCH + 12345)
    assert await stored_bytes(tmp_path, chunks_of(data, 1024 * 1024)) == data


@pytest.mark.asyncio
async def test_chunks_larger_than_a_batch_fill_the_buffers_in_turn(tmp_path):
    # After the first batch, chunks are copied into two buffers used in
    # turn; a chunk of 2.5 batches fills one, the other, then the first.
    sizes = [1000, WRITE_BATCH, 5 * WRITE_BATCH // 2, 7, 3]
    data = os.urandom(sum(sizes) + WRITE_BATCH - 1)
    sizes.append(len(data) - sum(sizes))

    async def uneven():
        offset = 0
        for size in sizes:
            yield data[offset : offset + size]
            offset += size

    assert await stored_bytes(tmp_path, uneven()) == data


@pytest.mark.asyncio
async def test_a_short_writev_is_finished(tmp_path, monkeypatch):
    real_pwritev = os.pwritev

    def half_pwritev(fd, buffers, offset):
        # Like a signal interrupting a large write: only part of it lands.
        data = b"".join(buffers)
        return real_pwritev(fd, [data[: max(1, len(data) // 2)]], offset)

    monkeypatch.setattr(filesystem.os, "pwritev", half_pwritev)
    data = os.urandom(2 * WRITE_BATCH + 99)
    assert await stored_bytes(tmp_path, chunks_of(data, 65536)) == data


@pytest.mark.asyncio
async def test_a_cancelled_upload_waits_for_the_write_in_flight(tmp_path, monkeypatch):
    # Cancelled (e.g. at shutdown) while a worker thread writes a batch: the
    # file descriptor must stay open until that thread is done with it.
    started, release = threading.Event(), threading.Event()
    fd_open_after_write = []
    real_write_all = filesystem.write_all

    def blocking_write_all(fd, chunks, offset):
        started.set()
        release.wait(10)
        try:
            os.fstat(fd)
        except OSError:
            fd_open_after_write.append(False)
            return
        fd_open_after_write.append(True)
        real_write_all(fd, chunks, offset)

    monkeypatch.setattr(filesystem, "write_all", blocking_write_all)
    storage = filesystem.FilesystemStorage()
    await storage.configure({"root": str(tmp_path)}, None)
    data = os.urandom(2 * WRITE_BATCH)
    task = asyncio.ensure_future(
        storage.receive_upload("f.bin", chunks_of(data, WRITE_BATCH), "x/y")
    )
    try:
        assert await asyncio.to_thread(started.wait, 10)
        await asyncio.sleep(0.05)  # now awaiting the first batch's write
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=0.5)
        assert not done, "the upload finished while its write was in flight"
    finally:
        release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Every batch in flight (the first, then the second) had fd open.
    assert fd_open_after_write == [True, True]
    assert os.listdir(tmp_path) == []


@pytest.mark.asyncio
async def test_stream_hasher_hashes_every_batch_off_the_event_loop(monkeypatch):
    threads = []
    real_update_all = hashing._update_all

    def update_all(hash_object, chunks):
        threads.append(threading.current_thread())
        real_update_all(hash_object, chunks)

    monkeypatch.setattr(hashing, "_update_all", update_all)
    hasher = hashing.StreamHasher(batch_bytes=1000)
    async for chunk in chunks_of(DATA[:4500], 700):
        await hasher.add(chunk)
    assert (await hasher.digest()).hex() == hashlib.sha256(DATA[:4500]).hexdigest()
    # Three batches of two 700-byte chunks, then the last 300 bytes.
    assert len(threads) == 4
    assert threading.main_thread() not in threads


@pytest.mark.asyncio
async def test_large_uploads_are_flushed_to_disk_as_they_arrive(tmp_path, monkeypatch):
    real_fdatasync = os.fdatasync
    flushed = []

    def fdatasync(fd):
        flushed.append(os.fstat(fd).st_size)
        real_fdatasync(fd)

    monkeypatch.setattr(filesystem, "FLUSH_EVERY", WRITE_BATCH)
    monkeypatch.setattr(filesystem.os, "fdatasync", fdatasync)
    data = os.urandom(6 * WRITE_BATCH + 7)
    assert await stored_bytes(tmp_path, chunks_of(data, 1024 * 1024)) == data
    # Flushes happened during the upload, not only at the end.
    assert flushed and min(flushed) < len(data)
