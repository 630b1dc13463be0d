"""Credentials broker faults over time, against a real Datasette whose S3
source takes short-lived credentials from a loopback broker: the broker
flaps (up, HTTP 500, hanging past the client's timeout, up) while uploads
run, and credentials expire in the middle of multipart uploads. Each upload
either finishes or fails with a clean 503 JSON error, and a retry with the
same token succeeds once the broker answers again.

SeaweedFS cannot revoke keys, so "expired" is the client's promise kept: it
refreshes before Expiration and, when it cannot, fails instead of going on
with credentials it knows are stale."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time

import pytest

MB = 1024 * 1024
pytestmark = pytest.mark.asyncio


class Uploader:
    """Uploads through ``client``; a step that fails is remembered, with
    its token, for a retry."""

    def __init__(self, client, json_error):
        self.client = client
        self.json_error = json_error
        self.expected = {}
        self.failed = []  # (step, prepared or None, name, data)
        self.requests = 0
        self.errors = 0

    async def upload(self, name: str, data: bytes, prepared=None) -> bool:
        client = self.client
        if prepared is None:
            response = await client.prepare("files", name, len(data))
            if not self.ok(response, 200, "prepare", None, name, data):
                return False
            prepared = response.json()
        response = await client.send(prepared, data)
        if not self.ok(response, 200, "send", prepared, name, data):
            return False
        response = await client.complete(prepared)
        if not self.ok(response, 201, "complete", prepared, name, data):
            return False
        self.expected[prepared["file_id"]] = hashlib.sha256(data).hexdigest()
        return True

    def ok(self, response, status, step, prepared, name, data) -> bool:
        self.requests += 1
        if response.status_code == status:
            return True
        # The only acceptable failure: the backend is unavailable, said in JSON.
        self.json_error(response, 503)
        self.errors += 1
        self.failed.append((step, prepared, name, data))
        return False

    async def retry_failed(self) -> int:
        failed, self.failed = self.failed, []
        for step, prepared, name, data in failed:
            if step == "complete":
                response = await self.client.complete(prepared)
                assert response.status_code == 201, response.text
                self.expected[prepared["file_id"]] = hashlib.sha256(data).hexdigest()
            else:
                assert await self.upload(name, data, prepared), self.failed
        return len(failed)


@pytest.mark.parametrize(
    "workers, cycles",
    [
        pytest.param(2, 1, marks=pytest.mark.slow, id="2-1"),
        pytest.param(8, 3, marks=pytest.mark.slow, id="8-3-slow"),
    ],
)
async def test_broker_flaps_while_uploads_run(
    workers,
    cycles,
    broker,
    start_datasette,
    files_client,
    json_error,
    nothing_lost,
    partial_data,
):
    broker.lifetime = 2.0
    server = start_datasette(
        sources={"files": broker.source(multipart_part_size=5 * MB)},
        plugin={"upload_expires": 60, "sweep_interval": 1},
    )
    phases = [("up", 2.0), ("error", 3.0), ("hang", 3.0)] * cycles + [("up", 0.0)]
    async with files_client(server) as client:
        uploader = Uploader(client, json_error)
        done = asyncio.Event()

        async def flap():
            for mode, seconds in phases:
                broker.mode = mode
                await asyncio.sleep(seconds)
            done.set()

        async def worker(number: int):
            round = 0
            while not done.is_set():
                # Every fourth upload is a (two-part) multipart upload.
                size = 6 * MB if round % 4 == 3 else 50_000
                await uploader.upload(f"w{number}-{round}.bin", os.urandom(size))
                round += 1
                await asyncio.sleep(0.05)

        started = time.monotonic()
        await asyncio.gather(flap(), *(worker(n) for n in range(workers)))
        seconds = time.monotonic() - started
        failed = len(uploader.failed)
        # Every failure was a clean 503: retried now that the broker is up.
        retried = await uploader.retry_failed()
        assert retried == failed

    where = broker.where
    assert broker.most_active == 1  # never two refreshes at once
    assert {mode for _, mode in broker.calls} >= {"up", "error"}
    # A multipart upload that failed for want of credentials could not be
    # aborted then either. The periodic sweep gets to such orphans once they
    # are older than upload_expires (see the next test); a restart's startup
    # sweep gets to them at once.
    orphans = len(partial_data(server, s3=where))
    server.stop()
    server.start()
    assert partial_data(server, s3=where) == []
    await nothing_lost(server, uploader.expected, s3_prefixes={"files": where})
    print(
        f"\nFIGURES broker flapping ({workers} workers, {cycles} cycles): "
        f"seconds={seconds:.1f}, "
        f"uploads={len(uploader.expected)}, requests={uploader.requests}, "
        f"clean_503={uploader.errors}, retried_ok={retried}, "
        f"broker_calls={len(broker.calls)}, orphans_swept={orphans}, lost=0"
    )


@pytest.mark.slow
async def test_credentials_expire_during_multipart_uploads(
    broker,
    start_datasette,
    files_client,
    json_error,
    nothing_lost,
    partial_data,
    slow,
    eventually,
):
    broker.lifetime = 2.0
    server = start_datasette(
        sources={"files": broker.source(multipart_part_size=5 * MB)},
        plugin={"upload_expires": 12, "sweep_interval": 1},
    )
    where = broker.where
    expected = {}
    async with files_client(server) as client:
        # Refreshed mid-upload (it takes ~2.5 credential lifetimes): it lands.
        data = os.urandom(15 * MB)
        prepared = (await client.prepare("files", "spans.bin", len(data))).json()
        calls = len(broker.calls)
        sent = await client.send(prepared, slow(data, MB, 0.3))
        assert sent.status_code == 200, sent.text
        assert len(broker.calls) >= calls + 2
        completed = await client.complete(prepared)
        assert completed.status_code == 201
        spans = completed.json()["file"]
        expected[prepared["file_id"]] = hashlib.sha256(data).hexdigest()

        # Expired with the broker down: a clean 503, then a retry lands.
        data = os.urandom(15 * MB)
        prepared = (await client.prepare("files", "stranded.bin", len(data))).json()
        sending = asyncio.create_task(client.send(prepared, slow(data, MB, 0.3)))
        await eventually(
            lambda: partial_data(server, s3=where), 30, "a multipart upload"
        )
        broker.mode = "error"
        response = await sending
        assert "unavailable" in json_error(response, 503)
        assert prepared["file_id"] not in {row["id"] for row in server.files()}
        broker.mode = "up"

        async def source_answers() -> bool:
            # Signing a download needs credentials: refused (503) until the
            # client's back-off after the failure has passed.
            async with client.http.stream("GET", spans["download_url"]) as response:
                return response.status_code < 400

        await eventually(source_answers, 30, "the source to answer again")
        retry = await client.send(prepared, data)
        assert retry.status_code == 200, retry.text
        assert (await client.complete(prepared)).status_code == 201
        expected[prepared["file_id"]] = hashlib.sha256(data).hexdigest()

    # The stranded multipart upload could not be aborted without
    # credentials; the periodic sweep removes it once it is past any token.
    await eventually(lambda: partial_data(server, s3=where) == [], 60, "the sweep")
    await nothing_lost(server, expected, s3_prefixes={"files": where})
    print(
        f"\nFIGURES credentials expiry: multipart_uploads=2, clean_503=1, "
        f"retried_ok=1, broker_calls={len(broker.calls)}, lost=0"
    )
