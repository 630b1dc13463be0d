"""The register_thumbnail_generators hook, and ``run_limited`` as plugin
generators use it."""

from __future__ import annotations

import asyncio
import io
import sys

import pytest
from datasette import hookimpl
from datasette.plugins import pm
from datasette_files.state import get_state
from datasette_files.thumbnails import (
    Thumbnail,
    ThumbnailFailed,
    ThumbnailSkipped,
    run_limited,
)
from PIL import Image
from testkit import ALICE
from thumbnail_helpers import (
    WAIT,
    assert_icon,
    decoded,
    image_bytes,
    thumbnail_row,
    wait_for_row,
)

pytestmark = pytest.mark.asyncio


# The register_thumbnail_generators hook


class TextGenerator:
    """Draws a grey square for text files (a plugin's generator)."""

    name = "test-text"
    version = "1"

    def accepts(self, file):
        return file.content_type == "text/plain"

    async def generate(self, data, file, policy):
        if data.startswith(b"skip"):
            raise ThumbnailSkipped("asked to skip")
        output = io.BytesIO()
        Image.new("RGB", (policy.size, policy.size), "grey").save(output, "PNG")
        return Thumbnail(output.getvalue(), "image/png")


class HangingGenerator:
    name = "test-hang"
    version = "1"

    def accepts(self, file):
        return file.content_type == "application/pdf"

    async def generate(self, data, file, policy):
        await asyncio.sleep(3600)


class UnsafeGenerator:
    name = "test-unsafe"
    version = "1"

    def accepts(self, file):
        return file.content_type == "text/html"

    async def generate(self, data, file, policy):
        return Thumbnail(b"<svg onload='alert(1)'/>", "image/svg+xml")


class GeneratorsPlugin:
    @hookimpl
    def register_thumbnail_generators(self, datasette):
        return [TextGenerator(), HangingGenerator(), UnsafeGenerator()]


@pytest.fixture
def generators_plugin():
    pm.register(GeneratorsPlugin(), name="test-thumbnail-generators")
    yield
    pm.unregister(name="test-thumbnail-generators")


async def test_plugin_generator_through_the_hook(make_ds, upload, generators_plugin):
    ds = await make_ds(plugin=WAIT)
    file = await upload(ds, "files", "a.txt", b"hello", content_type="text/plain")
    response = await ds.client.get(file["thumbnail_url"], actor=ALICE)
    assert response.headers["content-type"] == "image/png"
    assert decoded(response).size == (256, 256)
    assert (await thumbnail_row(ds, file["id"]))["generator"] == "test-text"
    skipped = await upload(ds, "files", "b.txt", b"skip me", content_type="text/plain")
    assert_icon(await ds.client.get(skipped["thumbnail_url"], actor=ALICE))
    assert (await thumbnail_row(ds, skipped["id"]))["reason"] == "asked to skip"


async def test_plugin_generator_that_hangs_is_cancelled(
    make_ds, upload, generators_plugin
):
    ds = await make_ds(plugin={"thumbnail_timeout": 3, "thumbnail_wait": 0.1})
    file = await upload(
        ds, "files", "doc.pdf", b"%PDF-1.4", content_type="application/pdf"
    )
    assert_icon(await ds.client.get(file["thumbnail_url"], actor=ALICE))
    assert (await ds.client.get(file["url"] + ".json", actor=ALICE)).status_code == 200
    # Both answered while the generation was still hanging.
    assert file["id"] in get_state(ds).thumbnailer.tasks
    row = await wait_for_row(ds, file["id"])
    assert (row["outcome"], row["generator"]) == ("transient", "test-hang")
    assert "timed out" in row["reason"]


async def test_plugin_generator_may_not_return_scriptable_images(
    make_ds, upload, generators_plugin
):
    ds = await make_ds(plugin=WAIT)
    file = await upload(ds, "files", "p.html", b"<p>", content_type="text/html")
    assert_icon(await ds.client.get(file["thumbnail_url"], actor=ALICE))
    row = await thumbnail_row(ds, file["id"])
    assert row["outcome"] == "failed" and "unsafe" in row["reason"]


async def test_broken_generator_plugins_are_skipped_and_named(make_ds, upload, caplog):
    class Junk:
        @hookimpl
        def register_thumbnail_generators(self, datasette):
            return [object()]

    class Raises:
        @hookimpl
        def register_thumbnail_generators(self, datasette):
            raise RuntimeError("generator plugin exploded")

    pm.register(Junk(), name="test-junk-generator")
    pm.register(Raises(), name="test-raising-generator")
    try:
        ds = await make_ds(plugin=WAIT)
        file = await upload(
            ds, "files", "red.png", image_bytes("PNG"), content_type="image/png"
        )
        response = await ds.client.get(file["thumbnail_url"], actor=ALICE)
    finally:
        pm.unregister(name="test-junk-generator")
        pm.unregister(name="test-raising-generator")
    # The built-in generator still made the thumbnail.
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    logged = caplog.text
    assert (
        "'test-junk-generator' failed in hook register_thumbnail_generators" in logged
    )
    assert (
        "'test-raising-generator' failed in hook register_thumbnail_generators"
        in logged
    )


# run_limited, as plugin generators use it

FLOOD = "import sys; sys.stdout.buffer.write(b'x' * 10_000_000)"


async def test_run_limited_kills_a_child_that_writes_too_much():
    # Each run must end promptly: the output pipe is drained after the kill,
    # since asyncio's Process.wait() waits for every pipe to close.
    for _ in range(20):
        with pytest.raises(ThumbnailFailed, match="more than 1000 bytes") as error:
            await asyncio.wait_for(
                run_limited(
                    [sys.executable, "-c", FLOOD], b"", timeout=10, max_output=1000
                ),
                5,
            )
        assert not error.value.transient


ENDLESS = "import sys\nwhile True: sys.stdout.buffer.write(b'x' * 1_000_000)"


async def test_run_limited_kills_a_child_that_times_out_mid_output():
    for _ in range(5):
        with pytest.raises(ThumbnailFailed, match="timed out") as error:
            await asyncio.wait_for(
                run_limited(
                    [sys.executable, "-c", ENDLESS],
                    b"",
                    timeout=0.3,
                    max_output=10**12,
                ),
                5,
            )
        assert error.value.transient


ECHO = (
    "import sys; sys.stdout.write(sys.stdin.read()[::-1]); "
    "sys.stderr.write('reversed\\n'); sys.exit(3)"
)


async def test_run_limited_output_up_to_the_limit_is_kept():
    finished = await run_limited(
        [sys.executable, "-c", ECHO], b"abc", timeout=10, max_output=3
    )
    assert (finished.returncode, finished.stdout) == (3, b"cba")
    assert finished.message == "reversed"
