"""``datasette files sync`` on an S3 source (the session's SeaweedFS): objects
written straight to the bucket by boto3 get registered; objects outside the
source prefix are ignored; changes and deletions are found; a broker whose
credentials expire mid-listing is refreshed and the listing carries on."""

import asyncio
import importlib.util
import json
import signal
import sqlite3
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from datasette.app import Datasette
from datasette_files.registry import Registry
from datasette_files.sync.engine import SyncEngine, SyncOptions
from datasette_files.sync.owners import owner_id
from datasette_files.sync.store import SyncStore
from datasette_files_s3 import S3Storage

pytestmark = pytest.mark.asyncio

BUCKET = "sync-tests"


def broker_e2e():
    """The broker of test_broker_e2e.py (this folder is not on sys.path)."""
    path = Path(__file__).with_name("test_broker_e2e.py")
    spec = importlib.util.spec_from_file_location("broker_e2e_for_sync", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SIZES = [200, pytest.param(2000, marks=pytest.mark.slow)]


def put_objects(client, keys, body=lambda key: key.encode()):
    # A fresh client each time: a pooled connection SeaweedFS has since
    # closed can stall a request until the read timeout.
    client = client()
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda key: client.put_object(Bucket=BUCKET, Key=key, Body=body(key)),
                keys,
            )
        )


@pytest.fixture
def world(seaweedfs, tmp_path):
    seaweedfs.make_bucket(BUCKET)
    prefix = f"sync-{uuid.uuid4().hex[:10]}/"
    config = tmp_path / "datasette.yaml"
    source = {
        "bucket": BUCKET,
        "prefix": prefix + "inside",
        "region": seaweedfs.region,
        "endpoint_url": seaweedfs.endpoint_url,
        "access_key_id": seaweedfs.access_key_id,
        "secret_access_key": seaweedfs.secret_access_key,
    }
    config.write_text(
        yaml.safe_dump(
            {
                "plugins": {
                    "datasette-files": {
                        "sources": {"bucket": {"storage": "s3", "config": source}}
                    }
                }
            }
        )
    )

    class World:
        pass

    world = World()
    world.client = seaweedfs.client
    world.prefix = prefix
    world.inside = prefix + "inside/"
    world.config = str(config)
    world.internal = str(tmp_path / "internal.db")
    return world


async def start_sync(world, *args):
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "datasette",
        "files",
        "sync",
        "bucket",
        "-c",
        world.config,
        "--internal",
        world.internal,
        "--json",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def sync(world, *args) -> dict:
    process = await start_sync(world, *args)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return json.loads(out)["sources"][0]


def registry(world) -> dict:
    with sqlite3.connect(world.internal) as conn:
        rows = conn.execute(
            "SELECT path, size, content_type, content_hash FROM files_files "
            "WHERE source_slug = 'bucket'"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def counts(result):
    keys = ("seen", "registered", "updated", "skipped", "missing", "removed")
    return tuple(result[key] for key in keys)


@pytest.mark.parametrize("count", SIZES)
async def test_sync_a_bucket_written_by_boto3(world, count):
    keys = [f"{world.inside}scans/{i % 10}/scan-{i:05d}.txt" for i in range(count)]
    put_objects(world.client, keys)
    # Beside the source's prefix: never part of it.
    put_objects(
        world.client,
        [
            f"{world.prefix}outside/a.txt",
            f"{world.prefix}inside-not/b.txt",
            f"{world.prefix}top.txt",
        ],
    )
    # A folder marker some tools create.
    world.client().put_object(Bucket=BUCKET, Key=f"{world.inside}empty/", Body=b"")

    first = await sync(world)
    assert first["status"] == "finished"
    assert (first["registered"], first["updated"], first["missing"]) == (count, 0, 0)
    rows = registry(world)
    assert sorted(rows) == sorted(key[len(world.inside) :] for key in keys)
    assert rows["scans/0/scan-00000.txt"][:2] == (len(keys[0]), "text/plain")

    again = await sync(world)
    assert counts(again) == (count, 0, 0, count, 0, 0)

    changed, removed = keys[1], keys[2]
    put_objects(world.client, [f"{world.inside}new/report.pdf"], lambda k: b"%PDF-1")
    put_objects(world.client, [changed], lambda k: b"a different body entirely")
    world.client().delete_object(Bucket=BUCKET, Key=removed)
    report = await sync(world)
    assert counts(report) == (count, 1, 1, count - 2, 1, 0)
    assert report["missing_paths"] == [removed[len(world.inside) :]]
    rows = registry(world)
    assert rows["new/report.pdf"][:2] == (6, "application/pdf")
    assert rows[changed[len(world.inside) :]][0] == len(b"a different body entirely")
    assert removed[len(world.inside) :] in rows

    pruned = await sync(world, "--prune")
    assert counts(pruned) == (count, 0, 0, count, 1, 1)
    assert removed[len(world.inside) :] not in registry(world)
    assert len(registry(world)) == count


async def test_sync_survives_broker_expiry_mid_listing(seaweedfs, tmp_path):
    seaweedfs.make_bucket(BUCKET)
    team = f"team-{uuid.uuid4().hex[:8]}"
    keys = [f"{team}/file-{i:03d}.txt" for i in range(60)]
    put_objects(seaweedfs.client, keys)
    datasette = Datasette(internal=str(tmp_path / "internal.db"))
    db = datasette.get_internal_database()
    await Registry(db).migrate()
    e2e = broker_e2e()
    folder = f"s3://{BUCKET}/{team}/"
    with e2e.Broker(seaweedfs.key_pairs, folder, lifetime=1.0) as broker:
        storage = S3Storage()
        await storage.configure(
            {
                "credentials_url": broker.url,
                "credentials_url_secret": e2e.BROKER_SECRET,
                "endpoint_url": seaweedfs.endpoint_url,
                "region": seaweedfs.region,
            },
            e2e.no_secrets,
        )
        waited = []

        async def outlive_the_credentials():
            # After the first batch, let the credentials in use expire.
            if not waited:
                waited.append(len(broker.calls))
                expiry = storage._connection.broker.current.expiration
                left = expiry - datetime.now(timezone.utc)
                await asyncio.sleep(max(left.total_seconds(), 0) + 0.05)

        try:
            engine = SyncEngine(
                SyncStore(db),
                "bucket",
                storage,
                SyncOptions(page_size=10),
                owner=owner_id("test"),
                after_batch=outlive_the_credentials,
            )
            progress = await engine.run()
        finally:
            await storage.close()
    assert progress.status == "finished"
    assert progress.registered == len(keys)
    assert len(broker.calls) > waited[0]  # refreshed mid-listing
    rows = await db.execute("SELECT count(*), count(DISTINCT path) FROM files_files")
    assert tuple(rows.first()) == (len(keys), len(keys))


async def test_killed_sync_resumes_with_the_continuation_token(world):
    count = 300
    keys = [f"{world.inside}k/{i:04d}.txt" for i in range(count)]
    put_objects(world.client, keys)
    process = await start_sync(world, "--batch-size", "2")
    seen = 0
    while seen < 20:
        assert process.returncode is None, "the sync finished before the kill"
        try:
            with sqlite3.connect(world.internal, timeout=5) as conn:
                row = conn.execute("SELECT seen FROM files_sync_jobs").fetchone()
            seen = row[0] if row else 0
        except sqlite3.OperationalError:
            pass  # tables not created yet
        await asyncio.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    await process.wait()
    with sqlite3.connect(world.internal) as conn:
        seen_at_kill, cursor = conn.execute(
            "SELECT seen, cursor FROM files_sync_jobs"
        ).fetchone()
    assert cursor and 0 < seen_at_kill < count
    assert len(registry(world)) == seen_at_kill

    resumed = await sync(world)
    assert resumed["resumed"] is True
    assert (resumed["seen"], resumed["registered"]) == (count, count)
    assert sorted(registry(world)) == sorted(k[len(world.inside) :] for k in keys)


async def test_two_syncs_of_a_bucket_at_once_never_duplicate(world):
    count = 300
    put_objects(world.client, [f"{world.inside}c/{i:04d}.txt" for i in range(count)])
    processes = await asyncio.gather(
        start_sync(world, "--batch-size", "20"), start_sync(world, "--batch-size", "20")
    )
    outcomes = await asyncio.gather(*(p.communicate() for p in processes))
    registered = 0
    for process, (out, err) in zip(processes, outcomes, strict=True):
        if process.returncode == 0:
            registered += json.loads(out)["sources"][0]["registered"]
        else:
            assert b"already running" in err, err
    assert registered == count
    with sqlite3.connect(world.internal) as conn:
        rows = conn.execute("SELECT count(*), count(DISTINCT path) FROM files_files")
        assert rows.fetchone() == (count, count)
