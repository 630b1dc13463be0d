"""The storage contract: a storage's ``state`` is its own business.

``PartsStorage`` is a third-party storage with direct multipart uploads whose
handle lives in ``state`` under a key of its choosing (``session`` unless the
source config says otherwise), and whose part tag comes back in its own
response header. The core must route its uploads by the mode it recorded at
prepare, never by peeking into that state.
"""

from __future__ import annotations

import secrets

import pytest
import pytest_asyncio
from datasette import hookimpl
from datasette.plugins import pm
from datasette_files.base import (
    FileMetadata,
    MultipartUpload,
    Storage,
    StorageCapabilities,
    UploadInstructions,
    UploadVerificationError,
)
from testkit import ALICE

PART_SIZE = 4


class Backend:
    """The remote service behind ``PartsStorage``: what a client PUT there."""

    def __init__(self):
        self.objects: dict[str, bytes] = {}
        # session → {"path": ..., "parts": {number: (tag, bytes)}}
        self.sessions: dict[str, dict] = {}

    def put_part(self, url: str, data: bytes) -> str:
        """A client's PUT to a presigned part URL; returns the part tag."""
        session, number = url.rsplit("/", 2)[-2:]
        tag = "tag-" + secrets.token_hex(4)
        self.sessions[session]["parts"][int(number)] = (tag, data)
        return tag


BACKEND = Backend()


class PartsStorage(Storage):
    @property
    def storage_type(self):
        return "parts"

    @property
    def capabilities(self):
        return StorageCapabilities(
            can_upload=True,
            can_delete=True,
            can_direct_upload=True,
            can_multipart_upload=True,
        )

    async def configure(self, config, get_secret):
        self.handle_key = config.get("handle_key", "session")

    async def get_file_metadata(self, path):
        if path not in BACKEND.objects:
            return None
        return FileMetadata(path=path, filename=path, size=len(BACKEND.objects[path]))

    async def read_file(self, path):
        return BACKEND.objects[path]

    async def delete_file(self, path):
        BACKEND.objects.pop(path, None)

    async def prepare_upload(self, path, content_type, size, expires_in=3600):
        session = secrets.token_hex(8)
        BACKEND.sessions[session] = {"path": path, "parts": {}}
        count = max(1, -(-size // PART_SIZE))
        return UploadInstructions(
            upload_url="",
            upload_method="PUT",
            multipart=MultipartUpload(
                PART_SIZE, count, session, part_tag_header="X-Part-Tag"
            ),
            state={self.handle_key: session},
        )

    async def presign_parts(self, path, state, part_numbers, expires_in=3600):
        session = state[self.handle_key]
        return {n: f"https://parts.example/{session}/{n}" for n in part_numbers}

    async def complete_upload(self, path, state, parts=None):
        stored = BACKEND.sessions.pop(state[self.handle_key])
        sent = {part["PartNumber"]: part["ETag"] for part in parts}
        if sent != {n: tag for n, (tag, _) in stored["parts"].items()}:
            raise UploadVerificationError("the part tags do not match")
        BACKEND.objects[path] = b"".join(
            data for _, (_, data) in sorted(stored["parts"].items())
        )

    async def abort_upload(self, path, state):
        BACKEND.sessions.pop(state.get(self.handle_key), None)

    async def list_unfinished_uploads(self):
        return [
            {"path": session["path"], "state": {self.handle_key: key}}
            for key, session in BACKEND.sessions.items()
        ]


class PartsStoragePlugin:
    @hookimpl
    def register_files_storage_types(self, datasette):
        return [PartsStorage]


@pytest.fixture
def parts_plugin():
    pm.register(PartsStoragePlugin(), name="test-parts-storage")
    yield
    pm.unregister(name="test-parts-storage")


@pytest_asyncio.fixture
async def parts_ds(make_ds, parts_plugin):
    async def make(**config):
        return await make_ds(sources={"big": {"storage": "parts", "config": config}})

    return make


async def post(ds, step: str, body: dict):
    return await ds.client.post(f"/-/files/upload/big/-/{step}", json=body, actor=ALICE)


async def send_parts(ds, prepared: dict, data: bytes) -> list[dict]:
    """What the browser does: ask for part URLs, PUT each part, keep the
    header prepare named."""
    upload = prepared["upload"]
    numbers = list(range(1, upload["part_count"] + 1))
    signed = await post(
        ds,
        "parts",
        {"upload_token": prepared["upload_token"], "part_numbers": numbers},
    )
    assert signed.status_code == 200, signed.text
    parts = []
    for number in numbers:
        start = (number - 1) * upload["part_size"]
        chunk = data[start : start + upload["part_size"]]
        tag = BACKEND.put_part(signed.json()["urls"][str(number)], chunk)
        parts.append({"PartNumber": number, "ETag": tag})
    return parts


@pytest.mark.asyncio
async def test_multipart_upload_with_a_handle_not_named_upload_id(parts_ds):
    ds = await parts_ds()
    data = b"ten bytes!"
    prepared = await post(
        ds, "prepare", {"filename": "a.bin", "content_type": "x/y", "size": 10}
    )
    assert prepared.status_code == 200, prepared.text
    upload = prepared.json()["upload"]
    assert upload["mode"] == "multipart"
    assert upload["part_tag_header"] == "X-Part-Tag"
    assert upload["part_count"] == 3
    parts = await send_parts(ds, prepared.json(), data)
    completed = await post(
        ds,
        "complete",
        {"upload_token": prepared.json()["upload_token"], "parts": parts},
    )
    assert completed.status_code == 201, completed.text
    file = completed.json()["file"]
    download = await ds.client.get(file["download_url"], actor=ALICE)
    assert download.content == data


@pytest.mark.asyncio
async def test_multipart_complete_needs_the_part_list(parts_ds, json_error):
    ds = await parts_ds()
    token = (
        await post(
            ds, "prepare", {"filename": "a.bin", "content_type": "x/y", "size": 3}
        )
    ).json()["upload_token"]
    body = json_error(await post(ds, "complete", {"upload_token": token}), 400)
    assert "parts must be a list" in body["errors"][0]


@pytest.mark.asyncio
async def test_abort_hands_the_storage_its_own_state(parts_ds):
    ds = await parts_ds()
    prepared = await post(
        ds, "prepare", {"filename": "a.bin", "content_type": "x/y", "size": 5}
    )
    token = prepared.json()["upload_token"]
    assert len(BACKEND.sessions) >= 1
    session = next(
        key
        for key, value in BACKEND.sessions.items()
        if value["path"].endswith("a.bin")
    )
    aborted = await post(ds, "abort", {"upload_token": token})
    assert aborted.status_code == 200, aborted.text
    assert session not in BACKEND.sessions


@pytest.mark.asyncio
async def test_a_restart_keeps_the_multipart_upload_it_owns(parts_ds):
    ds1 = await parts_ds()
    prepared = await post(
        ds1, "prepare", {"filename": "kept.bin", "content_type": "x/y", "size": 6}
    )
    await ds1.invoke_shutdown()
    # The startup sweep aborts the partial uploads no pending upload owns.
    ds2 = await parts_ds()
    parts = await send_parts(ds2, prepared.json(), b"sixsix")
    completed = await post(
        ds2,
        "complete",
        {"upload_token": prepared.json()["upload_token"], "parts": parts},
    )
    assert completed.status_code == 201, completed.text


@pytest.mark.asyncio
async def test_pending_multipart_rows_from_before_the_mode_survive_the_upgrade(
    parts_ds,
):
    """An older release recorded a multipart upload as ``direct`` with an
    ``upload_id`` in its state (as S3's was); migration 008 names it."""
    ds1 = await parts_ds(handle_key="upload_id")
    prepared = (
        await post(
            ds1, "prepare", {"filename": "old.bin", "content_type": "x/y", "size": 5}
        )
    ).json()
    internal = ds1.get_internal_database()
    await internal.execute_write("UPDATE files_pending SET mode = 'direct'")
    await internal.execute_write(
        "DELETE FROM files_migrations WHERE name = '008_pending_upload_mode'"
    )
    await ds1.invoke_shutdown()

    ds2 = await parts_ds(handle_key="upload_id")
    rows = await ds2.get_internal_database().execute("SELECT mode FROM files_pending")
    assert [row["mode"] for row in rows] == ["multipart"]
    parts = await send_parts(ds2, prepared, b"hello")
    completed = await post(
        ds2, "complete", {"upload_token": prepared["upload_token"], "parts": parts}
    )
    assert completed.status_code == 201, completed.text


@pytest.mark.asyncio
async def test_a_direct_upload_is_not_offered_part_urls(make_ds, api, json_error):
    ds = await make_ds()
    token = (await api.prepare(ds, "files", "small.txt", 2)).json()["upload_token"]
    response = await ds.client.post(
        "/-/files/upload/files/-/parts",
        json={"upload_token": token, "part_numbers": [1]},
        actor=ALICE,
    )
    assert "not a multipart upload" in json_error(response, 409)["errors"][0]
