"""Datasette killed (SIGKILL) in the middle of proxied uploads, then started
again with the same ``--internal`` database: no half file under a registered
path, partial data (temp files, S3 multipart uploads) cleaned up at startup,
the interrupted uploads retryable with their tokens until they expire, and
then swept."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time

import httpx
import pytest

MB = 1024 * 1024
pytestmark = pytest.mark.asyncio


async def crash_and_restart(
    server, tools, uploads: int, size: int, kill_after: int, pause: float
) -> dict:
    """Kill ``server`` once each of ``uploads`` uploads of ``size`` bytes has
    sent ``kill_after`` bytes, restart it, retry one, let the rest expire;
    the figures."""
    files_client, nothing_lost, slow_body, eventually, partial_data = tools

    def partial():
        return partial_data(server)

    async with files_client(server) as client:
        finished = {}
        for i in range(3):
            data = os.urandom(100_000)
            file = await client.upload("files", f"before-{i}.bin", data)
            finished[file["id"]] = hashlib.sha256(data).hexdigest()

        bodies = [os.urandom(size) for _ in range(uploads)]
        prepared = []
        for i in range(uploads):
            response = await client.prepare("files", f"cut-{i}.bin", size)
            assert response.status_code == 200, response.text
            prepared.append(response.json())
        sent = [[0] for _ in range(uploads)]
        sends = [
            asyncio.create_task(client.send(p, slow_body(body, MB, pause, counter)))
            for p, body, counter in zip(prepared, bodies, sent, strict=True)
        ]
        # Kill once every upload is well under way and has left partial data.
        await eventually(
            lambda: min(c[0] for c in sent) >= kill_after and len(partial()) >= uploads,
            120,
            "partial data of every upload",
        )
        sent_at_kill = sum(c[0] for c in sent)
        left_behind = len(partial())
        server.kill()
        results = await asyncio.gather(*sends, return_exceptions=True)
        assert all(isinstance(r, httpx.TransportError) for r in results), results
        statuses = [row["status"] for row in server.pending_uploads()]
        assert statuses == ["uploading"] * uploads

        started = time.monotonic()
        server.start()
        restart_seconds = time.monotonic() - started
        # The startup sweep removed the partial data; the rows wait for retries.
        assert partial() == []
        statuses = [row["status"] for row in server.pending_uploads()]
        assert statuses == ["prepared"] * uploads

        # The first interrupted upload is retried with its token and lands.
        sent = await client.send(prepared[0], bodies[0])
        assert sent.status_code == 200, sent.text
        completed = await client.complete(prepared[0])
        assert completed.status_code == 201, completed.text
        finished[prepared[0]["file_id"]] = hashlib.sha256(bodies[0]).hexdigest()

    # The others are abandoned: the periodic sweep removes them on expiry.
    await eventually(lambda: server.pending_uploads() == [], 150, "the expiry sweep")
    await nothing_lost(server, finished)
    return {
        "uploads_killed": uploads,
        "MiB_sent_at_kill": sent_at_kill // MB,
        "partial_left_by_kill": left_behind,
        "retried_ok": 1,
        "swept": uploads - 1,
        "restart_s": round(restart_seconds, 1),
        "lost": 0,
    }


@pytest.fixture
def tools(files_client, nothing_lost, slow, eventually, partial_data):
    return files_client, nothing_lost, slow, eventually, partial_data


def files_source(kind: str, request, make_s3_source) -> dict:
    if kind == "filesystem":
        return {"files": {"max_file_size": 1024 * MB}}
    seaweedfs = request.getfixturevalue("seaweedfs")
    # 5 MiB parts: every upload below is a multipart upload after 5 MiB.
    return {"files": make_s3_source(seaweedfs, multipart_part_size=5 * MB)}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["filesystem", "s3"])
async def test_killed_mid_upload(kind, start_datasette, tools, request, make_s3_source):
    server = start_datasette(
        sources=files_source(kind, request, make_s3_source),
        plugin={"upload_expires": 10, "sweep_interval": 1},
    )
    figures = await crash_and_restart(
        server, tools, uploads=3, size=12 * MB, kill_after=6 * MB, pause=0.1
    )
    print(f"\nFIGURES crash quick {kind}: {figures}")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["filesystem", "s3"])
async def test_killed_mid_big_uploads(
    kind, start_datasette, tools, request, make_s3_source
):
    server = start_datasette(
        sources=files_source(kind, request, make_s3_source),
        plugin={"upload_expires": 90, "sweep_interval": 1},
    )
    figures = await crash_and_restart(
        server, tools, uploads=5, size=200 * MB, kill_after=80 * MB, pause=0.01
    )
    print(f"\nFIGURES crash full {kind}: {figures}")
