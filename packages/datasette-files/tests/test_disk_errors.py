"""The filesystem source when the disk says no: full, or the root gone."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import threading

import pytest
from datasette_files import filesystem
from datasette_files.base import FileTooLarge


@pytest.mark.asyncio
async def test_full_disk_is_a_507_and_leaves_nothing(
    make_ds, api, upload, snapshot, json_error, monkeypatch, tmp_path
):
    ds = await make_ds()
    real_pwrite, real_pwritev = os.pwrite, os.pwritev
    limit = {"bytes": 1024 * 1024}

    def take(size):
        # A disk with 1 MiB free: later writes fail as a full disk would.
        if size > limit["bytes"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        limit["bytes"] -= size

    def pwrite(fd, data, offset):
        take(len(data))
        return real_pwrite(fd, data, offset)

    def pwritev(fd, buffers, offset):
        take(sum(len(buffer) for buffer in buffers))
        return real_pwritev(fd, buffers, offset)

    monkeypatch.setattr(filesystem.os, "pwrite", pwrite)
    monkeypatch.setattr(filesystem.os, "pwritev", pwritev)
    before = await snapshot(ds)
    token = (await api.prepare(ds, "files", "big.bin", 3 * 1024 * 1024)).json()[
        "upload_token"
    ]
    body = json_error(await api.send(ds, "files", token, b"x" * 3 * 1024 * 1024), 507)
    assert "full" in body["errors"][0]
    # No temp file, no file row; only the still-usable pending upload remains.
    after = await snapshot(ds)
    assert after["disk"] == before["disk"]
    assert after["files"] == before["files"]

    # The source keeps working for files that fit.
    limit["bytes"] = 1024 * 1024
    file = await upload(ds, "files", "small.txt", b"fits")
    download = await ds.client.get(file["download_url"], actor={"id": "alice"})
    assert download.content == b"fits"


@pytest.mark.asyncio
async def test_vanished_root_is_a_503_not_a_500(make_ds, api, json_error, tmp_path):
    ds = await make_ds()
    token = (await api.prepare(ds, "files", "a.txt", 3)).json()["upload_token"]
    shutil.rmtree(tmp_path / "files")
    body = json_error(await api.send(ds, "files", token, b"abc"), 503)
    assert "files" in body["errors"][0]


@pytest.mark.asyncio
async def test_a_storage_refusing_the_size_mid_stream_is_a_413(
    make_ds, api, json_error, monkeypatch
):
    # Like S3 past its 5 GiB limit for one streamed upload, which the core
    # does not know when it prepares the upload.
    async def refuse(self, path, stream, content_type):
        async for _ in stream:
            raise FileTooLarge("upload is larger than 4 bytes")

    monkeypatch.setattr(filesystem.FilesystemStorage, "receive_upload", refuse)
    ds = await make_ds()
    token = (await api.prepare(ds, "files", "a.txt", 10)).json()["upload_token"]
    body = json_error(await api.send(ds, "files", token, b"0123456789"), 413)
    assert "larger than 4 bytes" in body["errors"][0]
    # The token is usable again, as after any failed send.
    monkeypatch.undo()
    assert (await api.send(ds, "files", token, b"0123456789")).status_code == 200


@pytest.mark.asyncio
async def test_an_upload_cancelled_twice_still_closes_and_removes_its_temp_file(
    tmp_path, monkeypatch
):
    # Cancelled while a worker thread writes, the upload waits for that
    # write before closing the file; cancelled again during that wait (a
    # server shutting down), it used to give up: the file descriptor stayed
    # open for good and the temp file stayed on disk.
    storage = filesystem.FilesystemStorage()
    await storage.configure({"root": str(tmp_path / "files")}, None)
    real_pwritev = os.pwritev
    writing, release = threading.Event(), threading.Event()
    seen = {}

    def pwritev(fd, buffers, offset):
        seen.setdefault("file", (fd, os.fstat(fd).st_ino))
        writing.set()
        release.wait()
        return real_pwritev(fd, buffers, offset)

    monkeypatch.setattr(filesystem.os, "pwritev", pwritev)

    async def chunks():
        while True:
            yield b"x" * 1024 * 1024

    loop = asyncio.get_running_loop()
    upload = asyncio.ensure_future(storage.receive_upload("a/b.bin", chunks(), None))
    await loop.run_in_executor(None, writing.wait)
    upload.cancel()
    # One turn of the loop: the first cancellation reaches the cleanup, which
    # waits for the write.
    await asyncio.sleep(0)
    upload.cancel()
    await asyncio.sleep(0)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await upload

    assert os.listdir(tmp_path / "files") == []
    fd, inode = seen["file"]
    try:
        still_open = os.fstat(fd).st_ino == inode
    except OSError:
        still_open = False
    assert not still_open
