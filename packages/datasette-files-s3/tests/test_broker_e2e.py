"""A real credentials broker (a tiny HTTP server on 127.0.0.1) in front of the
real SeaweedFS: credentials expire every few seconds, the broker alternates
between two SeaweedFS identities, and uploads carry on across refreshes."""

import asyncio
import time
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import pytest_asyncio
from datasette.app import Datasette
from datasette_files import sources
from datasette_files.base import StorageUnavailable
from datasette_files_s3 import S3Storage
from testkit import LoopbackBroker

pytestmark = pytest.mark.asyncio

MiB = 1024 * 1024
BROKER_SECRET = "e2e-broker-secret"
BUCKET = "broker-e2e"
RETRY_INTERVAL = 30


def Broker(key_pairs, folder, lifetime=3.0):
    """The loopback broker: 503 while failing, every call held 50 ms open."""
    return LoopbackBroker(
        key_pairs,
        folder,
        lifetime,
        secret=BROKER_SECRET,
        error_status=503,
        delay=0.05,
    )


async def no_secrets(name):
    return None


@pytest_asyncio.fixture
async def brokered(seaweedfs):
    """(broker, storage, team prefix) for a fresh team folder."""
    seaweedfs.make_bucket(BUCKET)
    team = f"team-{uuid.uuid4().hex[:8]}"
    with Broker(seaweedfs.key_pairs, f"s3://{BUCKET}/{team}/") as broker:
        storage = S3Storage()
        try:
            await storage.configure(
                {
                    "credentials_url": broker.url,
                    "credentials_url_secret": BROKER_SECRET,
                    "endpoint_url": seaweedfs.endpoint_url,
                    "region": seaweedfs.region,
                    "multipart_part_size": 5 * MiB,
                },
                no_secrets,
            )
            yield broker, storage, team
        finally:
            await storage.close()


async def chunks(data):
    yield data


async def sleep_until(moment):
    await asyncio.sleep(max(0, (moment - datetime.now(timezone.utc)).total_seconds()))


async def slow_stream(total, pause):
    """``total`` bytes in 1 MiB chunks, pausing between chunks."""
    sent = 0
    while sent < total:
        size = min(MiB, total - sent)
        yield bytes([sent // MiB % 256]) * size
        sent += size
        await asyncio.sleep(pause)


async def test_uploads_continue_across_refreshes(brokered, seaweedfs):
    broker, storage, team = brokered
    deadline = time.monotonic() + 7
    written = []
    round_number = 0
    # Until the credentials have been refreshed twice under running uploads.
    while len(broker.calls) < 3 and time.monotonic() < deadline:
        names = [f"round-{round_number}/file-{i}.txt" for i in range(8)]
        # Many concurrent operations, often right at a refresh.
        await asyncio.gather(
            *(
                storage.receive_upload(name, chunks(name.encode()), "text/plain")
                for name in names
            )
        )
        contents = await asyncio.gather(*(storage.read_file(n) for n in names))
        assert contents == [name.encode() for name in names]
        written.extend(names)
        round_number += 1
        await asyncio.sleep(0.2)

    # A multipart upload slow enough to span at least one refresh.
    calls_before = len(broker.calls)
    total = 3 * 5 * MiB + 3
    stored = await storage.receive_upload(
        "slow/multipart.bin", slow_stream(total, pause=0.15), "application/x-test"
    )
    assert stored.size == total
    assert len(broker.calls) > calls_before
    metadata = await storage.get_file_metadata("slow/multipart.bin")
    assert metadata.size == total
    assert metadata.metadata["etag"].endswith("-4")

    assert len(broker.calls) >= 4, len(broker.calls)
    assert broker.most_active == 1
    assert set(broker.issued) == {pair[0] for pair in seaweedfs.key_pairs}
    # A fresh client per credential set, the old ones closed.
    assert storage._connection.clients_opened >= 4
    assert not storage._connection._retired

    # Everything landed under the broker's S3Folder.
    admin = seaweedfs.client()
    keys = set()
    for page in admin.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=f"{team}/"
    ):
        keys.update(item["Key"] for item in page.get("Contents", []))
    assert keys == {f"{team}/{name}" for name in written + ["slow/multipart.bin"]}
    files, _ = await storage.list_files("round-0/")
    assert [f.path for f in files] == [f"round-0/file-{i}.txt" for i in range(8)]


async def test_broker_outage_keeps_valid_credentials_then_fails_then_recovers(
    brokered,
):
    broker, storage, team = brokered
    await storage.receive_upload("a.txt", chunks(b"a"), "text/plain")
    # No pause between attempts after a failure (the back-off itself is
    # tested with a fake clock in test_credentials.py).
    storage._connection.broker.retry_after = timedelta(0)
    broker.failing = True
    # Within the credentials' lifetime the source keeps working.
    credentials = storage._connection.broker.current
    await sleep_until(credentials.refresh_at)
    assert await storage.read_file("a.txt") == b"a"
    # Once they expire it is unavailable, with a clear message.
    await sleep_until(credentials.expiration)
    with pytest.raises(StorageUnavailable) as info:
        await storage.read_file("a.txt")
    assert "HTTP 503" in str(info.value)
    assert BROKER_SECRET not in str(info.value)
    # And it recovers by itself when the broker does.
    broker.failing = False
    await storage.check_available()
    assert await storage.read_file("a.txt") == b"a"


async def test_wrong_broker_secret_is_unavailable_not_leaked(seaweedfs):
    seaweedfs.make_bucket(BUCKET)
    with Broker(seaweedfs.key_pairs, f"s3://{BUCKET}/x/") as broker:
        storage = S3Storage()
        with pytest.raises(StorageUnavailable) as info:
            await storage.configure(
                {
                    "credentials_url": broker.url,
                    "credentials_url_secret": "not-the-secret",
                    "endpoint_url": seaweedfs.endpoint_url,
                },
                no_secrets,
            )
        await storage.close()
    assert "HTTP 403" in str(info.value)
    assert "not-the-secret" not in str(info.value)


@pytest_asyncio.fixture
async def brokered_ds(seaweedfs, tmp_path, monkeypatch):
    """(broker, ds, clock): a Datasette whose ``s3`` source gets credentials
    from a broker that is down at startup. ``clock.advance(seconds)`` moves
    the sources' clock (retry interval) without waiting."""
    seaweedfs.make_bucket(BUCKET)
    # A whole number: (t + 30) - t is exactly 30 only where t's float has
    # room for it; at a real monotonic reading like 4046.504325538 it can
    # come out as 29.999999999999545, and the retry interval "is not up".
    now = [1000.0]
    monkeypatch.setattr(sources, "time", SimpleNamespace(monotonic=lambda: now[0]))
    clock = SimpleNamespace(
        advance=lambda seconds: now.__setitem__(0, now[0] + seconds)
    )
    folder = f"s3://{BUCKET}/team-{uuid.uuid4().hex[:8]}/"
    # Credentials that outlive the test: no refresh calls in the counts.
    with Broker(seaweedfs.key_pairs, folder, lifetime=600) as broker:
        broker.failing = True
        config = {
            "permissions": {
                "files-browse": {"id": "alice"},
                "files-upload": {"id": "alice"},
            },
            "plugins": {
                "datasette-files": {
                    "source_retry_interval": RETRY_INTERVAL,
                    "sources": {
                        "team": {
                            "storage": "s3",
                            "config": {
                                "credentials_url": broker.url,
                                "credentials_url_secret": BROKER_SECRET,
                                "endpoint_url": seaweedfs.endpoint_url,
                                "region": seaweedfs.region,
                            },
                        }
                    },
                }
            },
        }
        ds = Datasette(config=config, internal=str(tmp_path / "internal.db"))
        await ds.invoke_startup()
        try:
            yield broker, ds, clock
        finally:
            await ds.invoke_shutdown()


async def burst_of_prepares(ds, count: int) -> list:
    return await asyncio.gather(
        *(
            ds.client.post(
                "/-/files/upload/team/-/prepare",
                json={"filename": f"f{i}.txt", "content_type": "text/plain", "size": 1},
                actor={"id": "alice"},
            )
            for i in range(count)
        )
    )


async def test_a_burst_during_reconnection_shares_one_broker_call(brokered_ds):
    broker, ds, clock = brokered_ds
    assert len(broker.calls) == 1  # startup's attempt, refused
    # Within the retry interval: a 503 straight away, the broker left alone.
    [early] = await burst_of_prepares(ds, 1)
    assert early.status_code == 503, early.text
    assert len(broker.calls) == 1

    # Still down when the interval is up: the burst makes one attempt and
    # every request gets the same clean 503.
    clock.advance(RETRY_INTERVAL)
    failed = await burst_of_prepares(ds, 20)
    assert {response.status_code for response in failed} == {503}
    [errors] = {tuple(response.json()["errors"]) for response in failed}
    assert errors[0].startswith("Source 'team' is unavailable: ")
    assert "HTTP 503" in errors[0]
    assert len(broker.calls) == 2

    # Back: the next burst after the interval reconnects once, and every
    # request in it waits for that and succeeds.
    broker.failing = False
    clock.advance(RETRY_INTERVAL)
    recovered = await burst_of_prepares(ds, 20)
    assert [response.status_code for response in recovered] == [200] * 20, [
        response.text for response in recovered if response.status_code != 200
    ]
    assert len(broker.calls) == 3
    assert broker.most_active == 1
