"""Fixtures for the reliability suite: load and faults against real processes.

Every test here runs a real ``datasette serve`` (``start_datasette`` from the
parent conftest) and talks to it over loopback HTTP with httpx, the way a
client program would. What they share:

- ``files_client(server)``: an async client for the upload protocol
  (prepare, send, complete, abort) and for downloads.
- ``nothing_lost(server, expected)``: the promise every case ends on. Each
  completed upload downloads with the right sha256; every registered file
  is stored whole; nothing else is: no pending row, no temp file, no
  unfinished S3 multipart upload, no object or file that no row owns.
- ``faults``: ``datasette serve`` arguments that load ``plugins/faults.py``
  (a controllable clock, a simulated full disk).
- ``own_seaweedfs``: a SeaweedFS for this module alone, so tests may kill it.
- ``broker``: a credentials broker on loopback that can be made to fail.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.config import Config
from servers import MB, client_limits
from testkit import ALICE, LoopbackBroker

TEMP_PREFIX = ".datasette-files-tmp-"
PLUGINS_DIR = Path(__file__).parent / "plugins"
BUCKET = "reliability"


# The upload protocol over HTTP


class FilesClient:
    """One logged-in HTTP client; every method returns the httpx response."""

    def __init__(self, server, actor=ALICE, timeout: float = 120, connections=300):
        self.server = server
        self.http = httpx.AsyncClient(
            base_url=server.origin,
            cookies={"ds_actor": server.cookie(actor)},
            timeout=timeout,
            limits=client_limits(connections),
        )

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.http.aclose()

    async def prepare(self, slug: str, filename: str, size: int, direct=False):
        return await self.http.post(
            self.server.url(f"/-/files/upload/{slug}/-/prepare"),
            json={
                "filename": filename,
                "content_type": "application/octet-stream",
                "size": size,
                "direct": direct,
            },
        )

    async def send(self, prepared: dict, body):
        """The bytes (``bytes`` or an async iterator of them), raw body."""
        upload = prepared["upload"]
        return await self.http.post(
            upload["url"], content=body, headers=upload["headers"]
        )

    async def complete(self, prepared: dict):
        return await self.http.post(
            prepared["complete_url"], json={"upload_token": prepared["upload_token"]}
        )

    async def abort(self, prepared: dict):
        return await self.http.post(
            prepared["abort_url"], json={"upload_token": prepared["upload_token"]}
        )

    async def upload(self, slug: str, filename: str, data: bytes) -> dict:
        """prepare → send → complete; the file object (asserts each step,
        and a transport error names the step it happened in)."""
        step = "prepare"
        try:
            prepared = await self.prepare(slug, filename, len(data))
            assert prepared.status_code == 200, prepared.text
            prepared = prepared.json()
            step = "send"
            sent = await self.send(prepared, data)
            assert sent.status_code == 200, sent.text
            step = "complete"
            completed = await self.complete(prepared)
            assert completed.status_code == 201, completed.text
        except httpx.TransportError as error:
            raise AssertionError(f"{step} {filename}: {error!r}") from error
        return completed.json()["file"]

    async def download_sha256(self, file: dict) -> str:
        """Stream the download (following S3's redirect); its sha256."""
        digest = hashlib.sha256()
        async with self.http.stream(
            "GET", file["download_url"], follow_redirects=True
        ) as response:
            assert response.status_code == 200, await response.aread()
            async for chunk in response.aiter_bytes():
                digest.update(chunk)
        return digest.hexdigest()

    async def file_json(self, file_id: str):
        return await self.http.get(self.server.url(f"/-/files/{file_id}.json"))


@pytest.fixture
def files_client():
    """``async with files_client(server) as client: ...``"""
    return FilesClient


def assert_json_error(response, *statuses: int) -> str:
    """The one error shape, with one of ``statuses``; the message."""
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["ok"] is False and body["errors"], body
    return body["errors"][0]


@pytest.fixture
def json_error():
    return assert_json_error


async def slow_body(data: bytes, chunk: int = MB, pause: float = 0.05, sent=None):
    """``data`` in ``chunk``-sized pieces with a pause after each; ``sent``
    (a one-item list) counts the bytes handed over so far."""
    for start in range(0, len(data), chunk):
        yield data[start : start + chunk]
        if sent is not None:
            sent[0] += len(data[start : start + chunk])
        await asyncio.sleep(pause)


async def wait_for(check, timeout: float = 30, message: str = "condition"):
    """Poll ``check()`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        await asyncio.sleep(0.1)


@pytest.fixture
def eventually():
    """``await eventually(check, timeout=30, message=...)``."""
    return wait_for


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# Nothing lost


def s3_client_for(config: dict):
    return boto3.client(
        "s3",
        endpoint_url=config["endpoint_url"],
        aws_access_key_id=config["access_key_id"],
        aws_secret_access_key=config["secret_access_key"],
        region_name=config.get("region", "us-east-1"),
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def s3_state(bucket: str, prefix: str, config: dict) -> tuple[dict, list]:
    """(key → size of every object, unfinished multipart uploads) under prefix."""
    client = s3_client_for(config)
    objects = {}
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix
    ):
        objects.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return objects, uploads.get("Uploads", [])


def stored_files(root: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in root.iterdir() if p.is_file()}


async def assert_nothing_lost(server, expected: dict[str, str], s3_prefixes=None):
    """``expected``: file id → sha256 of every upload the client saw complete.

    ``s3_prefixes``: slug → (bucket, prefix, admin config) for S3 sources
    whose prefix the broker decides; other S3 sources are read from the
    server's config.
    """
    rows = server.files()
    by_id = {row["id"]: row for row in rows}
    assert len(by_id) == len(rows)
    missing = set(expected) - set(by_id)
    assert not missing, f"registered files missing: {sorted(missing)}"
    assert server.pending_uploads() == [], "pending uploads left after the sweep"

    for slug, entry in server.sources().items():
        registered = {
            row["path"]: row["size"] for row in rows if row["source_slug"] == slug
        }
        config = entry["config"]
        if entry["storage"] == "filesystem":
            root = Path(config["root"])
            stored = stored_files(root)
            temps = [name for name in stored if name.startswith(TEMP_PREFIX)]
            assert temps == [], f"temp files left in {root}: {temps}"
            # Every registered file whole, nothing unregistered beside them.
            assert stored == registered, f"{slug}: disk and registry disagree"
        else:
            if s3_prefixes and slug in s3_prefixes:
                bucket, prefix, admin = s3_prefixes[slug]
            else:
                bucket, prefix, admin = config["bucket"], config["prefix"] + "/", config
            objects, unfinished = await asyncio.to_thread(
                s3_state, bucket, prefix, admin
            )
            assert unfinished == [], f"{slug}: unfinished multipart uploads left"
            assert objects == {prefix + path: size for path, size in registered.items()}

    async with FilesClient(server) as client:
        limit = asyncio.Semaphore(16)

        async def check(file_id: str, sha: str):
            async with limit:
                file = (await client.file_json(file_id)).json()["file"]
                assert file["content_hash"] in (f"sha256:{sha}", None)
                assert await client.download_sha256(file) == sha, file_id

        await asyncio.gather(*(check(i, sha) for i, sha in expected.items()))


@pytest.fixture
def nothing_lost():
    """``await nothing_lost(server, {file_id: sha256})``."""
    return assert_nothing_lost


# Processes and faults


@pytest.fixture
def faults(tmp_path):
    """``faults.args`` / ``faults.env(...)`` for ``start_datasette``, and
    ``faults.freeze(t)`` / ``faults.thaw()`` for the server's upload clock."""

    class Faults:
        args = ["--plugins-dir", str(PLUGINS_DIR)]
        clock_file = tmp_path / "clock"

        def env(self, disk_quota: int | None = None) -> dict:
            env = {"DATASETTE_FILES_TEST_CLOCK": str(self.clock_file)}
            if disk_quota is not None:
                env["DATASETTE_FILES_TEST_DISK_QUOTA"] = str(disk_quota)
            return env

        def freeze(self, moment: float) -> None:
            self.clock_file.write_text(repr(moment))

        def thaw(self) -> None:
            self.clock_file.write_text("")

        def frozen_reads(self) -> int:
            """How often the server has read the frozen clock so far."""
            try:
                return int(self.clock_file.with_name("clock.reads").read_text())
            except (FileNotFoundError, ValueError):
                return 0

    return Faults()


@pytest.fixture(scope="module")
def own_seaweedfs(request, tmp_path_factory):
    """A SeaweedFS only this module uses: its tests may kill it."""
    # The root conftest's class (conftests are not importable by name here).
    seaweedfs_class = next(
        plugin.SeaweedFS
        for plugin in request.config.pluginmanager.get_plugins()
        if hasattr(plugin, "SeaweedFS")
    )
    server = seaweedfs_class(tmp_path_factory.mktemp("own-seaweedfs"))
    server.start()
    server.make_bucket(BUCKET)
    try:
        yield server
    finally:
        server.stop()


def s3_source(seaweedfs, **config) -> dict:
    """An ``s3`` source entry under a fresh prefix of the reliability bucket."""
    seaweedfs.make_bucket(BUCKET)
    return {
        "storage": "s3",
        "config": {
            "bucket": BUCKET,
            "region": seaweedfs.region,
            "prefix": "r-" + secrets.token_hex(6),
            "endpoint_url": seaweedfs.endpoint_url,
            "access_key_id": seaweedfs.access_key_id,
            "secret_access_key": seaweedfs.secret_access_key,
            **config,
        },
    }


@pytest.fixture
def make_s3_source():
    """``make_s3_source(seaweedfs, multipart_part_size=...)``."""
    return s3_source


class Broker(LoopbackBroker):
    """The loopback broker (``testkit``) with this suite's secret."""

    def __init__(self, key_pairs, folder: str, lifetime: float = 3.0):
        super().__init__(
            key_pairs, folder, lifetime, secret="reliability-broker-secret"
        )


@pytest.fixture
def broker(seaweedfs):
    """A ``Broker`` handing out a fresh folder of the reliability bucket;
    ``broker.source(**config)`` is an ``s3`` source entry that uses it."""
    seaweedfs.make_bucket(BUCKET)
    folder = f"broker-{secrets.token_hex(6)}"
    server = Broker(seaweedfs.key_pairs, f"s3://{BUCKET}/{folder}/")
    server.prefix = folder + "/"

    def source(**config) -> dict:
        return {
            "storage": "s3",
            "config": {
                "credentials_url": server.url,
                "credentials_url_secret": server.secret,
                "endpoint_url": seaweedfs.endpoint_url,
                "region": seaweedfs.region,
                **config,
            },
        }

    server.source = source
    # (bucket, prefix, admin config): where to look for its objects.
    server.where = (
        BUCKET,
        server.prefix,
        {
            "endpoint_url": seaweedfs.endpoint_url,
            "access_key_id": seaweedfs.access_key_id,
            "secret_access_key": seaweedfs.secret_access_key,
        },
    )
    yield server
    server.close()


@pytest.fixture
def random_bytes():
    """``random_bytes(n)``: n random bytes (distinct per call)."""
    return os.urandom


def partial_data_of(server, slug: str = "files", s3=None) -> list[str]:
    """What an unfinished upload leaves in a source: temp files in a
    filesystem root, unfinished multipart uploads under an S3 prefix
    (``s3=(bucket, prefix, admin config)`` when a broker decides them)."""
    entry = server.sources()[slug]
    config = entry["config"]
    if entry["storage"] == "filesystem":
        root = Path(config["root"])
        return [p.name for p in root.iterdir() if p.name.startswith(TEMP_PREFIX)]
    bucket, prefix, admin = s3 or (config["bucket"], config["prefix"] + "/", config)
    _, unfinished = s3_state(bucket, prefix, admin)
    return [upload["Key"] for upload in unfinished]


@pytest.fixture
def partial_data():
    """``partial_data(server, slug="files", s3=None)``: temp files /
    multipart uploads."""
    return partial_data_of


@pytest.fixture
def slow():
    """``slow(data, chunk=MB, pause=0.05, sent=None)``: a paced request body."""
    return slow_body
