"""No 5xx from what a client or another plugin can do (issue 12).

- A multipart body that breaks the multipart grammar is a 400 JSON error;
  the pending upload is left as it was, so the client may send it again.
- Requests that arrive while an unavailable source reconnects wait for that
  one attempt (at most ``source_connect_timeout``) and share its outcome
  (the S3 version, with a real broker: test_broker_e2e.py).
- A plugin whose ``file_actions`` or ``register_files_storage_types`` hook
  raises or returns junk is logged by name and skipped; the file page, the
  JSON and uploads work without its contribution.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from datasette import hookimpl
from datasette.plugins import pm
from datasette.utils import StartupError
from datasette_files.base import (
    FileMetadata,
    Storage,
    StorageCapabilities,
    StorageUnavailable,
)
from testkit import ALICE

FORM = {"content-type": "multipart/form-data; boundary=x"}

pytestmark = pytest.mark.asyncio


# Malformed multipart bodies


def form_start(token: str) -> bytes:
    """The token field and the start of the file part, boundary ``x``."""
    return (
        b'--x\r\nContent-Disposition: form-data; name="upload_token"\r\n\r\n'
        + token.encode()
        + b'\r\n--x\r\nContent-Disposition: form-data; name="file"; '
        b'filename="a.txt"\r\n\r\n'
    )


async def chunks(*parts: bytes):
    for part in parts:
        yield part


async def test_malformed_multipart_is_a_400_and_the_token_stays_usable(
    make_ds, api, snapshot, json_error
):
    ds = await make_ds()
    token = (await api.prepare(ds, "files", "a.txt", 3)).json()["upload_token"]
    before = await snapshot(ds)

    response = await ds.client.post(
        "/-/files/upload/files/-/upload",
        content=b"--x\r\nbroken multipart",
        headers=FORM,
        actor=ALICE,
    )

    body = json_error(response, 400)
    assert "multipart" in body["errors"][0]
    assert await snapshot(ds) == before
    # The honest retry goes through with the same token.
    assert (await api.send_form(ds, "files", token, b"abc")).status_code == 200
    assert (await api.complete(ds, "files", token)).status_code == 201


async def test_malformed_multipart_mid_file_removes_the_partial_bytes(
    make_ds, api, snapshot, json_error
):
    ds = await make_ds()
    token = (await api.prepare(ds, "files", "a.txt", 3)).json()["upload_token"]
    before = await snapshot(ds)

    # The file's bytes start streaming to the storage; then the next part's
    # headers break the grammar.
    response = await ds.client.post(
        "/-/files/upload/files/-/upload",
        content=chunks(form_start(token) + b"abc", b"\r\n--x\r\nbroken multipart"),
        headers=FORM,
        actor=ALICE,
    )

    json_error(response, 400)
    assert await snapshot(ds) == before
    assert (await api.send(ds, "files", token, b"abc")).status_code == 200
    assert (await api.complete(ds, "files", token)).status_code == 201


# Plugins whose hooks fail


def failures_of(caplog, plugin_name: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "datasette_files" and repr(plugin_name) in record.getMessage()
    ]


class RaisingActions:
    @hookimpl
    def file_actions(self, datasette, actor, file, preview_bytes):
        raise RuntimeError("file_actions bug")


class RaisingLaterActions:
    @hookimpl
    def file_actions(self, datasette, actor, file, preview_bytes):
        async def inner():
            raise RuntimeError("async file_actions bug")

        return inner()


class JunkActions:
    @hookimpl
    def file_actions(self, datasette, actor, file, preview_bytes):
        return 42


class GoodActions:
    @hookimpl
    def file_actions(self, datasette, actor, file, preview_bytes):
        return [{"href": f"/-/good/{file.id}", "label": "Good action"}]


@pytest.fixture
def registered():
    """``registered(plugin, name)``: a plugin in Datasette's plugin manager
    for this test only."""
    names = []

    def register(plugin, name):
        pm.register(plugin, name=name)
        names.append(name)

    yield register
    for name in names:
        pm.unregister(name=name)


async def test_a_raising_file_actions_hook_does_not_break_the_file_page(
    make_ds, upload, registered, caplog
):
    registered(GoodActions(), "test-good-actions")
    registered(RaisingActions(), "test-raising-actions")
    registered(RaisingLaterActions(), "test-raising-later-actions")
    registered(JunkActions(), "test-junk-actions")
    caplog.set_level(logging.WARNING, logger="datasette_files")
    ds = await make_ds()
    file = await upload(ds, "files", "data.csv", b"a,b\n1,2\n", content_type="text/csv")

    page = await ds.client.get(file["url"], actor=ALICE)

    assert page.status_code == 200, page.text
    assert f'href="/-/good/{file["id"]}"' in page.text
    for name in (
        "test-raising-actions",
        "test-raising-later-actions",
        "test-junk-actions",
    ):
        assert failures_of(caplog, name), name
    assert not failures_of(caplog, "test-good-actions")
    assert (await ds.client.get(file["url"] + ".json", actor=ALICE)).status_code == 200


class NoTypeStorage(Storage):
    """A Storage subclass that forgot its storage_type."""

    capabilities = StorageCapabilities()

    async def configure(self, config, get_secret):
        pass

    async def get_file_metadata(self, path):
        return None

    async def read_file(self, path):
        return b""


class MemoryStorage(NoTypeStorage):
    storage_type = "memory"
    capabilities = StorageCapabilities(can_upload=True)

    async def configure(self, config, get_secret):
        self.files = {}

    async def get_file_metadata(self, path):
        data = self.files.get(path)
        return None if data is None else FileMetadata(path, path, size=len(data))

    async def read_file(self, path):
        return self.files[path]

    async def receive_upload(self, path, stream, content_type):
        self.files[path] = b"".join([chunk async for chunk in stream])
        return FileMetadata(path, path, size=len(self.files[path]))


class RaisingStorages:
    @hookimpl
    def register_files_storage_types(self, datasette):
        raise ImportError("an optional dependency is missing")


class JunkStorages:
    @hookimpl
    def register_files_storage_types(self, datasette):
        return [object(), "s3", NoTypeStorage, FileMetadata]


class NotAListStorages:
    @hookimpl
    def register_files_storage_types(self, datasette):
        return 42


class MemoryStorages:
    @hookimpl
    def register_files_storage_types(self, datasette):
        return [MemoryStorage]


async def test_broken_storage_plugins_do_not_stop_the_other_storages(
    make_ds, upload, registered, caplog
):
    registered(RaisingStorages(), "test-raising-storages")
    registered(MemoryStorages(), "test-memory-storages")
    registered(JunkStorages(), "test-junk-storages")
    registered(NotAListStorages(), "test-not-a-list-storages")
    caplog.set_level(logging.WARNING, logger="datasette_files")

    ds = await make_ds(
        sources={"files": {}, "memory": {"storage": "memory"}},
        permissions={
            "files-browse": {"id": "alice"},
            "files-upload": {"id": "alice"},
            "debug-storages": {"id": "alice"},
        },
    )

    for slug in ("files", "memory"):
        file = await upload(ds, slug, "a.txt", b"abc")
        download = await ds.client.get(file["download_url"], actor=ALICE)
        assert download.content == b"abc"
    storages = await ds.client.get("/-/files/storages", actor=ALICE)
    assert storages.status_code == 200
    assert {"filesystem", "memory"} <= set(storages.json()["storage_types"])
    for name in (
        "test-raising-storages",
        "test-junk-storages",
        "test-not-a-list-storages",
    ):
        assert failures_of(caplog, name), name
    # Each junk class is reported, the plugin named each time.
    assert len(failures_of(caplog, "test-junk-storages")) >= 4
    assert not failures_of(caplog, "test-memory-storages")


# Reconnection bursts


class Gate:
    """The backend of a GatedStorage: ``mode`` is "down", "hang" or "up"."""

    mode = "down"
    configured = 0


class GatedStorage(NoTypeStorage):
    storage_type = "gated"
    capabilities = StorageCapabilities(can_upload=True)

    async def configure(self, config, get_secret):
        Gate.configured += 1
        if Gate.mode == "hang":
            await asyncio.Event().wait()
        if Gate.mode == "down":
            raise StorageUnavailable("connection refused")


class GatedStorages:
    @hookimpl
    def register_files_storage_types(self, datasette):
        return [GatedStorage]


async def test_a_reconnection_that_hangs_is_bounded_and_shared(
    make_ds, api, registered, json_error
):
    registered(GatedStorages(), "test-gated-storages")
    Gate.mode, Gate.configured = "hang", 0
    # Startup is bounded too: the source starts unavailable.
    ds = await make_ds(
        sources={"gated": {"storage": "gated"}},
        plugin={"source_retry_interval": 0, "source_connect_timeout": 0.2},
    )
    assert Gate.configured == 1

    hung = await asyncio.gather(*(api.prepare(ds, "gated") for _ in range(10)))
    assert Gate.configured == 2
    for response in hung:
        body = json_error(response, 503)
        assert body["errors"] == [
            "Source 'gated' is unavailable: no answer from the backend within 0.2s"
        ]

    Gate.mode = "up"
    recovered = await asyncio.gather(*(api.prepare(ds, "gated") for _ in range(10)))
    assert [response.status_code for response in recovered] == [200] * 10
    assert Gate.configured == 3


# Stalled uploads


async def test_a_stalled_upload_times_out_and_the_token_stays_usable(
    make_ds, api, snapshot, json_error
):
    ds = await make_ds(plugin={"upload_idle_timeout": 0.2})
    token = (await api.prepare(ds, "files", "a.txt", 10)).json()["upload_token"]
    before = await snapshot(ds)
    released = asyncio.Event()

    async def five_bytes_then_silence():
        yield b"01234"
        await released.wait()

    try:
        response = await ds.client.post(
            "/-/files/upload/files/-/upload",
            content=five_bytes_then_silence(),
            headers={
                "content-type": "application/octet-stream",
                "x-upload-token": token,
            },
            actor=ALICE,
        )
    finally:
        released.set()

    body = json_error(response, 408)
    assert "0.2 seconds" in body["errors"][0]
    # The partial temp file is gone and the pending upload is back to
    # "prepared": the same token can send the file again.
    assert await snapshot(ds) == before
    assert (await api.send(ds, "files", token, b"0123456789")).status_code == 200
    assert (await api.complete(ds, "files", token)).status_code == 201


@pytest.mark.parametrize(
    "setting",
    [
        {"upload_idle_timeout": 0},
        {"upload_idle_timeout": "soon"},
        {"upload_idle_timeout": True},
        {"source_connect_timeout": -1},
        {"source_retry_interval": -1},
    ],
)
async def test_timeout_settings_are_validated(make_ds, setting):
    with pytest.raises(StartupError) as error:
        await make_ds(plugin=setting)
    assert next(iter(setting)) in str(error.value)
