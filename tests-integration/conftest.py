"""Fixtures for the browser tests: real Datasette servers and headless Chromium.

- ``start_datasette(...)``: runs ``datasette serve`` in a subprocess on a free
  127.0.0.1 port, with a persistent ``--internal`` database, a ``--secret`` and
  a ``datasette.yaml`` written here. Stopped (by its own PID) after the test.
- ``open_page(server, path, actor=...)``: a new Chromium context logged in as
  ``actor`` (a signed ``ds_actor`` cookie, exactly what Datasette's login
  sets), on ``path``.
- ``make_file(name, size)``: a file of random bytes in tmp_path.
- ``uploads``: drives the upload component the way a person does.

The browser is shared by the tests of one module: the sync Playwright API
marks its event loop as running between calls, so it must not outlive the
module into asyncio-based tests.
"""

from __future__ import annotations

import os
import re
import secrets
import struct
import time
import zlib
from pathlib import Path

import pytest
from servers import MB, DatasetteServer, sha256_file
from testkit import ALICE, CountingRelay

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

FILE_ACTIONS = ("files-browse", "files-upload", "files-edit", "files-delete")


@pytest.fixture
def start_datasette(tmp_path):
    """Start a Datasette; every one started is stopped after the test.

    ``start_datasette()`` has one filesystem source, ``files`` (root
    ``tmp_path/"files"``), where alice may browse, upload, edit and delete.

    - ``sources={"files": {}, "small": {"max_file_size": 1000}}``: filesystem
      sources by slug (extra keys go in ``config``); an entry with a
      ``storage`` key is used as written.
    - ``permissions={...}``: the root ``permissions:`` block (replaces alice's).
    - ``plugin={...}``: extra ``plugins: datasette-files:`` settings.
    - ``settings={"base_url": "/prefix/"}``: Datasette settings.
    - ``databases={"content": {"path": db, "tables": {...}}}``: SQLite files
      served mutable (named by file stem), with their ``databases:`` config.
    - ``env={...}`` / ``args=[...]``: extra environment / ``datasette serve``
      arguments (e.g. ``["--plugins-dir", ...]``).
    """
    servers = []

    def start(
        *,
        sources=None,
        permissions=None,
        plugin=None,
        settings=None,
        databases=None,
        env=None,
        args=(),
    ):
        sources = {"files": {}} if sources is None else sources
        if permissions is None:
            permissions = {action: {"id": "alice"} for action in FILE_ACTIONS}
        directory = tmp_path / f"datasette-{len(servers)}"
        directory.mkdir()
        config = {
            "permissions": permissions,
            "plugins": {
                "datasette-files": {
                    "sources": {
                        slug: entry
                        if "storage" in entry
                        else {
                            "storage": "filesystem",
                            "config": {"root": str(tmp_path / slug), **entry},
                        }
                        for slug, entry in sources.items()
                    },
                    **(plugin or {}),
                }
            },
        }
        databases = databases or {}
        for name, entry in databases.items():
            assert Path(entry["path"]).stem == name, "Datasette names it by stem"
        if databases:
            config["databases"] = {
                name: {k: v for k, v in entry.items() if k != "path"}
                for name, entry in databases.items()
            }
        server = DatasetteServer(
            directory,
            config,
            settings or {},
            [entry["path"] for entry in databases.values()],
        )
        server.env.update(env or {})
        server.extra_args += list(args)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def counting_relay():
    """``counting_relay(server)``: browse ``server`` through a ``CountingRelay``."""
    relays = []

    def make(server: DatasetteServer) -> CountingRelay:
        relays.append(CountingRelay(server.port, server))
        return relays[-1]

    yield make
    for relay in relays:
        relay.close()


class S3Bucket:
    """The SeaweedFS bucket S3 sources write to, seen from the outside."""

    name = "browser-tests"

    def __init__(self, seaweedfs):
        self.seaweedfs = seaweedfs
        seaweedfs.make_bucket(self.name)
        self.client = seaweedfs.client()

    def source(self, **config) -> dict:
        """An ``s3`` source entry under a fresh prefix of the bucket."""
        return {
            "storage": "s3",
            "config": {
                "bucket": self.name,
                "region": self.seaweedfs.region,
                "prefix": "t-" + secrets.token_hex(6),
                "endpoint_url": self.seaweedfs.endpoint_url,
                "access_key_id": self.seaweedfs.access_key_id,
                "secret_access_key": self.seaweedfs.secret_access_key,
                **config,
            },
        }

    def objects(self, source: dict) -> dict[str, int]:
        """key → size for every object under the source's prefix."""
        prefix = source["config"]["prefix"] + "/"
        listing = self.client.list_objects_v2(Bucket=self.name, Prefix=prefix)
        return {item["Key"]: item["Size"] for item in listing.get("Contents", [])}

    def multipart_uploads(self, source: dict) -> list[dict]:
        """Multipart uploads started under the source's prefix, not finished."""
        prefix = source["config"]["prefix"] + "/"
        listing = self.client.list_multipart_uploads(Bucket=self.name, Prefix=prefix)
        return listing.get("Uploads", [])


@pytest.fixture
def s3_bucket(seaweedfs):
    """``s3_bucket.source(multipart_threshold=...)`` for ``start_datasette``,
    and ``objects(source)`` / ``multipart_uploads(source)`` to check it."""
    return S3Bucket(seaweedfs)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    # Room for a busy two-core machine; a passing check never waits this long.
    expect.set_options(timeout=15_000)
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def open_page(browser):
    """``open_page(server, "/-/files", actor={"id": "bob"}, width=375)``.

    Each call is a fresh browser context (its own cookies), logged in as
    ``actor`` (``None``: anonymous). JavaScript errors on the page fail the
    test when it ends.
    """
    contexts = []
    errors = []

    def open_(server, path="/-/files", actor=ALICE, width=1100, height=800):
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        if actor is not None:
            server.log_in(context, actor)
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        # Playwright turns file chooser interception on, asynchronously, when
        # the first listener is added: one now means a key press that opens
        # a chooser never races it (expect_file_chooser adds its own later).
        page.on("filechooser", lambda chooser: None)
        page.goto(server.url(path))
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def sha256():
    """``sha256(path)``: the hex digest of a file's bytes."""
    return sha256_file


@pytest.fixture
def make_file(tmp_path):
    """``make_file("report.pdf", 2 * MB)``: random bytes in a new file."""
    directory = tmp_path / "picked"
    directory.mkdir(exist_ok=True)

    def make(name: str, size: int) -> Path:
        path = directory / name
        with open(path, "wb") as fp:
            remaining = size
            while remaining:
                block = min(remaining, 8 * MB)
                fp.write(os.urandom(block))
                remaining -= block
        return path

    return make


def png_bytes(width: int, height: int) -> bytes:
    """A real PNG: a diagonal colour gradient, so previews show something."""
    rows = b"".join(
        b"\x00"
        + bytes(
            channel
            for x in range(width)
            for channel in (
                40 + 180 * x // width,
                90 + 120 * y // height,
                200 - 120 * (x + y) // (width + height),
            )
        )
        for y in range(height)
    )

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def make_png(tmp_path):
    """``make_png("chart.png", 320, 200)``: a real PNG image file."""
    directory = tmp_path / "picked"
    directory.mkdir(exist_ok=True)

    def make(name: str, width: int = 320, height: int = 200) -> Path:
        path = directory / name
        path.write_bytes(png_bytes(width, height))
        return path

    return make


class Uploads:
    """The upload component, seen and used the way a person does."""

    def __init__(self, page):
        self.page = page
        self.component = page.locator("datasette-file-uploader")

    def pick(self, paths) -> None:
        """Choose files with the component's file picker."""
        with self.page.expect_file_chooser() as chooser:
            self.component.get_by_role("button", name="Choose files").click()
        chooser.value.set_files([str(p) for p in paths])

    def item(self, name: str):
        return self.component.locator("li.dfu-item").filter(
            has=self.page.locator(
                ".dfu-name", has_text=re.compile(f"^{re.escape(name)}$")
            )
        )

    def status(self, name: str) -> str:
        return self.item(name).locator(".dfu-status").inner_text()

    def percent(self, name: str) -> float:
        return self.item(name).get_by_role("progressbar").evaluate("bar => bar.value")

    def summary(self):
        return self.component.get_by_role("status")

    def wait_for_progress(self, name: str, above: float, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.percent(name) <= above:
            assert time.monotonic() < deadline, (
                f"{name} stuck at {self.percent(name)}%: {self.status(name)}"
            )
            self.page.wait_for_timeout(50)


def throttle_uploads(page, bytes_per_second: int) -> None:
    """Slow the page's uploads down (Chromium's network emulation), so a test
    can watch and act on an upload in flight."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": bytes_per_second,
        },
    )


@pytest.fixture
def throttle():
    """``throttle(page, 2 * MB)``: uploads from ``page`` at 2 MB/s."""
    return throttle_uploads


@pytest.fixture
def uploads():
    """``uploads(page)``: an ``Uploads`` helper for the page's uploader."""
    return Uploads


def wait_until(check, timeout: float = 10, message: str = "condition"):
    """Poll ``check()`` until truthy; for state the page does not show."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.1)


@pytest.fixture
def eventually():
    return wait_until
