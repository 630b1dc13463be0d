"""Shared fixtures: a running Datasette with datasette-files, and the upload dance.

Tests talk to Datasette the way a user does, over HTTP (``ds.client``, which
signs an ``actor=`` into the ``ds_actor`` cookie). The fixtures here only save
the setup every test would otherwise repeat:

- ``make_ds(...)``: a started Datasette with filesystem sources under tmp_path;
- ``upload(ds, slug, filename, data)``: prepare, send the bytes, complete;
- ``api``: the individual upload steps, for tests that poke at one of them;
- ``snapshot(ds)``: everything an upload can leave behind (files on disk, file
  rows, pending rows), to prove that a rejected request wrote nothing;
- ``clock``: moves the upload protocol's clock forward instead of sleeping.
"""

from __future__ import annotations

import copy
import os
import secrets
import sqlite3
import time
from types import SimpleNamespace

import pytest
import pytest_asyncio
from datasette.app import Datasette
from datasette.database import Database
from datasette_files import uploads
from import_helpers import alice_can_import
from testkit import ALICE

FILE_ACTIONS = ("files-browse", "files-upload", "files-edit", "files-delete")

DEFAULT = object()


def filesystem_source(tmp_path, slug: str, entry: dict) -> dict:
    """``{"max_file_size": 10}`` → a filesystem source rooted at tmp_path/slug."""
    if "storage" in entry:
        return entry
    return {
        "storage": "filesystem",
        "config": {"root": str(tmp_path / slug), **entry},
    }


@pytest_asyncio.fixture
async def make_ds(tmp_path):
    """Build and start a Datasette; every one is shut down after the test.

    ``await make_ds()`` has one filesystem source, ``files`` (root
    ``tmp_path/"files"``), where alice may browse, upload, edit and delete, and
    a persistent internal database at ``tmp_path/"internal.db"``.

    - ``sources={"files": {}, "photos": {"max_file_size": 10}}``: filesystem
      sources by slug (extra keys go in ``config``); an entry with a
      ``storage`` key is used as written.
    - ``permissions={...}``: the root ``permissions:`` block (replaces alice's).
    - ``plugin={...}``: extra ``plugins: datasette-files:`` settings.
    - ``config={...}``: the whole Datasette config, used as given.
    - ``internal=False`` for a temporary internal database, or a path.
    - ``root=True`` is ``datasette --root``: the actor ``{"id": "root"}`` may do
      anything.
    - ``settings={"base_url": "/prefix/"}``: Datasette settings.
    - ``start=False`` returns the Datasette before ``invoke_startup()``.
    """
    started = []

    async def make(
        *,
        sources=DEFAULT,
        permissions=DEFAULT,
        plugin=None,
        config=None,
        internal=True,
        root=False,
        settings=None,
        start=True,
    ):
        if config is None:
            if sources is DEFAULT:
                sources = {"files": {}}
            if permissions is DEFAULT:
                permissions = {action: {"id": "alice"} for action in FILE_ACTIONS}
            config = {
                "permissions": permissions,
                "plugins": {
                    "datasette-files": {
                        "sources": {
                            slug: filesystem_source(tmp_path, slug, entry)
                            for slug, entry in sources.items()
                        },
                        **(plugin or {}),
                    }
                },
            }
        # Tests may change ds.config mid-test; never the caller's dicts.
        config = copy.deepcopy(config)
        if internal is True:
            internal = str(tmp_path / "internal.db")
        ds = Datasette(config=config, internal=internal or None, settings=settings)
        ds.root_enabled = root
        started.append(ds)
        if start:
            await ds.invoke_startup()
        return ds

    yield make
    for ds in started:
        await ds.invoke_shutdown()


def form_body(parts: list[tuple[str, object]], boundary: str | None = None):
    """A multipart/form-data body with its parts in exactly the given order.

    A part is ``(name, "text value")`` or ``(name, (filename, bytes))``.
    Returns ``(body, content_type)``.
    """
    boundary = boundary or "----datasette-files-" + secrets.token_hex(8)
    body = bytearray()
    for name, value in parts:
        body += f"--{boundary}\r\n".encode()
        if isinstance(value, tuple):
            filename, data = value
            body += (
                f'Content-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            body += data
        else:
            body += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            body += value.encode()
        body += b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f"multipart/form-data; boundary={boundary}"


class UploadSteps:
    """The upload protocol one HTTP call at a time; each returns the response."""

    form_body = staticmethod(form_body)

    async def prepare(
        self,
        ds,
        slug,
        filename="hello.txt",
        size=0,
        content_type="text/plain",
        actor=ALICE,
    ):
        return await ds.client.post(
            f"/-/files/upload/{slug}/-/prepare",
            json={"filename": filename, "content_type": content_type, "size": size},
            actor=actor,
        )

    async def send(self, ds, slug, token, data: bytes, actor=ALICE):
        """The raw-body upload: the bytes, with the token in a header."""
        return await ds.client.post(
            f"/-/files/upload/{slug}/-/upload",
            content=data,
            headers={
                "content-type": "application/octet-stream",
                "x-upload-token": token,
            },
            actor=actor,
        )

    async def send_form(self, ds, slug, token, data: bytes, actor=ALICE):
        """The multipart-form upload: ``upload_token`` first, then ``file``."""
        body, content_type = form_body(
            [("upload_token", token), ("file", ("upload.bin", data))]
        )
        return await ds.client.post(
            f"/-/files/upload/{slug}/-/upload",
            content=body,
            headers={"content-type": content_type},
            actor=actor,
        )

    async def complete(self, ds, slug, token, actor=ALICE):
        return await ds.client.post(
            f"/-/files/upload/{slug}/-/complete",
            json={"upload_token": token},
            actor=actor,
        )

    async def abort(self, ds, slug, token, actor=ALICE):
        return await ds.client.post(
            f"/-/files/upload/{slug}/-/abort",
            json={"upload_token": token},
            actor=actor,
        )

    async def upload(
        self,
        ds,
        slug,
        filename,
        data: bytes,
        actor=ALICE,
        content_type="application/octet-stream",
        form=False,
    ) -> dict:
        """prepare → upload → complete; returns the new file's JSON."""
        prepared = await self.prepare(
            ds, slug, filename, len(data), content_type, actor=actor
        )
        assert prepared.status_code == 200, prepared.text
        token = prepared.json()["upload_token"]
        send = self.send_form if form else self.send
        sent = await send(ds, slug, token, data, actor=actor)
        assert sent.status_code == 200, sent.text
        completed = await self.complete(ds, slug, token, actor=actor)
        assert completed.status_code == 201, completed.text
        return completed.json()["file"]


@pytest.fixture
def api():
    return UploadSteps()


@pytest.fixture
def upload(api):
    """``await upload(ds, slug, filename, data, actor=...)`` → the file JSON."""
    return api.upload


def source_roots(ds) -> dict[str, str]:
    sources = ds.plugin_config("datasette-files").get("sources") or {}
    return {
        slug: entry["config"]["root"]
        for slug, entry in sources.items()
        if entry.get("storage") == "filesystem"
    }


def list_source_roots(ds) -> dict[str, list[str]]:
    """Every entry in every filesystem source's root, temp files included."""
    return {
        slug: sorted(os.listdir(root)) if os.path.isdir(root) else []
        for slug, root in source_roots(ds).items()
    }


async def take_snapshot(ds) -> dict:
    db = ds.get_internal_database()
    disk = list_source_roots(ds)
    files = await db.execute("SELECT * FROM files_files ORDER BY id")
    pending = await db.execute(
        "SELECT id, source_slug, status, content_hash FROM files_pending ORDER BY id"
    )
    return {
        "disk": disk,
        "files": [dict(row) for row in files],
        "pending": [dict(row) for row in pending],
    }


@pytest.fixture
def snapshot():
    """``await snapshot(ds)``: source directories, file rows and pending rows."""
    return take_snapshot


@pytest.fixture
def clock(monkeypatch):
    """``clock.advance(seconds)``: the upload protocol sees a later time."""
    offset = [0.0]
    monkeypatch.setattr(
        uploads, "time", SimpleNamespace(time=lambda: time.time() + offset[0])
    )

    def advance(seconds: float) -> None:
        offset[0] += seconds

    return SimpleNamespace(advance=advance)


def assert_json_error(response, status: int) -> dict:
    """The one error shape: ``{"ok": false, "error", "errors": [...], "status"}``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["ok"] is False
    assert body["errors"] and all(isinstance(e, str) and e for e in body["errors"])
    assert body["error"] == "; ".join(body["errors"])
    assert body["status"] == status
    return body


@pytest.fixture
def json_error():
    """``json_error(response, 400)`` asserts the JSON error shape and status."""
    return assert_json_error


def read_internal_dump(path: str) -> str:
    conn = sqlite3.connect(path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture
def internal_dump():
    """``internal_dump(path)``: the whole internal database as SQL text."""
    return read_internal_dump


# CSV import tests (test_import*.py)


@pytest_asyncio.fixture
async def import_ds(make_ds, tmp_path):
    """``await import_ds(permissions=...)``: Datasette with databases

    ``data`` and ``other`` (writable) and ``ro`` (immutable).
    """

    async def make(permissions=None, **kwargs):
        ds = await make_ds(
            permissions=permissions or alice_can_import(), start=False, **kwargs
        )
        for name, mutable in (("data", True), ("other", True), ("ro", False)):
            path = tmp_path / f"{name}.db"
            sqlite3.connect(path).close()
            ds.add_database(Database(ds, path=str(path), is_mutable=mutable), name)
        await ds.invoke_startup()
        return ds

    return make


@pytest.fixture
def put(upload):
    """``await put(ds, "x.csv", b"...")``: upload a file, return its JSON."""

    async def put_file(ds, filename, data, content_type="text/csv", actor=ALICE):
        return await upload(ds, "files", filename, data, content_type=content_type)

    return put_file
