"""SeaweedFS killed (SIGKILL) under a running Datasette, mid-upload and
mid-download: clear 503 JSON errors while it is down, no file row for an
upload that failed, and the source recovers on its own when SeaweedFS is
back. The module has its own SeaweedFS, so killing it harms no other test."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time

import httpx
import pytest

MB = 1024 * 1024
pytestmark = pytest.mark.asyncio


def kill(seaweedfs) -> None:
    """SIGKILL, as a crash would (``stop()`` is a polite SIGTERM)."""
    process, seaweedfs.process = seaweedfs.process, None
    process.kill()
    process.wait(timeout=10)
    seaweedfs._remove_sockets()


@pytest.mark.slow
async def test_seaweedfs_killed_mid_upload_and_mid_download(
    own_seaweedfs,
    start_datasette,
    make_s3_source,
    files_client,
    nothing_lost,
    json_error,
    slow,
    eventually,
    partial_data,
):
    server = start_datasette(
        sources={"files": make_s3_source(own_seaweedfs, multipart_part_size=5 * MB)},
        plugin={"upload_expires": 15, "sweep_interval": 1},
    )
    figures = {"requests_while_down": 0, "json_503": 0}
    async with files_client(server) as client:
        expected = {}
        big = os.urandom(40 * MB)
        big_file = await client.upload("files", "big.bin", big)
        expected[big_file["id"]] = hashlib.sha256(big).hexdigest()

        # Mid-download: S3 downloads redirect to a presigned URL, so the bytes
        # come from SeaweedFS; the client sees a failed transfer, not a short
        # file that looks complete.
        download = await client.http.get(big_file["download_url"])
        assert download.status_code == 302
        received = 0
        with pytest.raises(httpx.TransportError):
            async with client.http.stream("GET", download.headers["location"]) as body:
                async for chunk in body.aiter_bytes(MB):
                    received += len(chunk)
                    if received >= MB and own_seaweedfs.process is not None:
                        kill(own_seaweedfs)
        assert received < len(big)
        own_seaweedfs.start()

        # Mid-upload: a proxied multipart upload loses its backend.
        data = os.urandom(15 * MB)
        prepared = (await client.prepare("files", "cut.bin", len(data))).json()
        sent = [0]
        sending = asyncio.create_task(client.send(prepared, slow(data, MB, 0.1, sent)))
        await eventually(lambda: partial_data(server), 30, "a multipart upload")
        kill(own_seaweedfs)
        started_down = time.monotonic()
        response = await sending
        assert "unavailable" in json_error(response, 503)
        # No file row for the failed upload.
        assert {row["id"] for row in server.files()} == set(expected)
        [pending] = server.pending_uploads()
        assert pending["status"] == "prepared"  # the token can be retried

        # While it is down: every request that needs S3 is a clear 503.
        while_down = [
            response,
            await client.send(prepared, data),
            await client.prepare("files", "during.bin", 10),
            await client.http.get(big_file["download_url"]),
        ]
        for response in while_down:
            json_error(response, 503)
        figures["requests_while_down"] = len(while_down)
        figures["json_503"] = sum(r.status_code == 503 for r in while_down)
        # What lives in the registry still answers.
        assert (await client.file_json(big_file["id"])).status_code == 200

        own_seaweedfs.start()
        down_seconds = time.monotonic() - started_down

        # Recovery without a restart of Datasette: the same token now works.
        async def retried():
            response = await client.send(prepared, data)
            return response if response.status_code == 200 else None

        started = time.monotonic()
        await eventually(retried, 30, "the source to recover")
        figures["recovery_s"] = round(time.monotonic() - started, 1)
        completed = await client.complete(prepared)
        assert completed.status_code == 201, completed.text
        expected[prepared["file_id"]] = hashlib.sha256(data).hexdigest()
        after = os.urandom(1000)
        file = await client.upload("files", "after.bin", after)
        expected[file["id"]] = hashlib.sha256(after).hexdigest()

    # The killed upload's multipart upload could not be aborted while S3 was
    # down; the periodic sweep removes it once no live upload can own it.
    await eventually(lambda: partial_data(server) == [], 60, "the orphan sweep")
    await nothing_lost(server, expected)
    print(
        f"\nFIGURES seaweedfs killed: down_s={down_seconds:.1f}, lost=0, "
        + ", ".join(f"{k}={v}" for k, v in figures.items())
    )
