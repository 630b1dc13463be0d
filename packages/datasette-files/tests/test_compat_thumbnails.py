"""Thumbnail generators written for datasette-files 0.1a3, and the thumbnail
setting names of later upstream releases."""

from __future__ import annotations

import asyncio
import io

import pytest
from datasette import hookimpl
from datasette.plugins import pm
from datasette.utils import StartupError
from datasette_files.base import (
    FileTooLarge,
    ThumbnailGenerationError,
    ThumbnailGenerator,
    ThumbnailResult,
)
from datasette_files.state import get_state
from PIL import Image
from testkit import ALICE
from thumbnail_helpers import (
    WAIT,
    assert_icon,
    decoded,
    png_claiming,
    thumbnail_row,
)

pytestmark = pytest.mark.asyncio

MIB = 1024 * 1024


def png(width: int, height: int) -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (width, height), "green").save(output, "PNG")
    return output.getvalue()


# 0.1a3-style generators, each taking one file extension.


class LegacyPng(ThumbnailGenerator):
    """Text files as a green PNG of half the height it may have."""

    name = "legacy-png"

    def __init__(self):
        self.calls = []

    async def can_generate(self, content_type, filename):
        return content_type == "text/plain" and filename.endswith(".txt")

    async def generate(
        self, file_bytes, content_type, filename, max_width=200, max_height=200
    ):
        self.calls.append((file_bytes, content_type, filename, max_width, max_height))
        return ThumbnailResult(
            png(max_width, max_height // 2), "image/png", max_width, max_height // 2
        )


class LegacyNone(ThumbnailGenerator):
    """Returns None (no thumbnail); ``can_generate`` is not even async."""

    name = "legacy-none"

    def can_generate(self, content_type, filename):
        return filename.endswith(".none")

    async def generate(
        self, file_bytes, content_type, filename, max_width=200, max_height=200
    ):
        return None


class LegacyRefuses:
    """Not a subclass: the 0.1a3 shape is recognised by its methods."""

    name = "legacy-refuses"
    version = "2"

    async def can_generate(self, content_type, filename):
        return filename.endswith((".skip", ".broken"))

    async def generate(
        self, file_bytes, content_type, filename, max_width=200, max_height=200
    ):
        if filename.endswith(".skip"):
            raise ThumbnailGenerationError("not for me", skipped=True)
        raise ThumbnailGenerationError("cannot read it")


class LegacyCrashes(ThumbnailGenerator):
    name = "legacy-crashes"

    async def can_generate(self, content_type, filename):
        if filename.endswith(".oops"):
            raise RuntimeError("can_generate bug")
        return filename.endswith(".crash")

    async def generate(
        self, file_bytes, content_type, filename, max_width=200, max_height=200
    ):
        raise RuntimeError("generate bug")


class LegacyHangs(ThumbnailGenerator):
    name = "legacy-hangs"

    def __init__(self):
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def can_generate(self, content_type, filename):
        return filename.endswith(".hang")

    async def generate(
        self, file_bytes, content_type, filename, max_width=200, max_height=200
    ):
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


class LegacyPixels(ThumbnailGenerator):
    """``.huge``: a 200 x 200 output; ``.pic``: an image input, counted."""

    name = "legacy-pixels"

    def __init__(self):
        self.calls = 0

    async def can_generate(self, content_type, filename):
        return filename.endswith((".huge", ".pic"))

    async def generate(
        self, file_bytes, content_type, filename, max_width=200, max_height=200
    ):
        self.calls += 1
        return ThumbnailResult(png(200, 200), "image/png", 200, 200)


class CurrentCrashes:
    """A generator of the current protocol with a bug, for comparison."""

    name = "current-crashes"
    version = "1"

    def accepts(self, file):
        return file.filename.endswith(".ours")

    async def generate(self, data, file, policy):
        raise RuntimeError("our bug")


class LegacyPlugin:
    def __init__(self):
        self.png = LegacyPng()
        self.hangs = LegacyHangs()
        self.pixels = LegacyPixels()

    @hookimpl
    def register_thumbnail_generators(self, datasette):
        return [
            self.png,
            LegacyNone,  # a class, as some 0.1a3 plugins returned
            LegacyRefuses(),
            LegacyCrashes(),
            self.hangs,
            self.pixels,
            CurrentCrashes(),
        ]


@pytest.fixture
def legacy():
    plugin = LegacyPlugin()
    pm.register(plugin, name="test-legacy-thumbnails")
    yield plugin
    pm.unregister(name="test-legacy-thumbnails")


async def thumbnail_for(ds, upload, filename, data=b"hello", content_type=None):
    file = await upload(
        ds, "files", filename, data, content_type=content_type or "text/plain"
    )
    response = await ds.client.get(file["thumbnail_url"], actor=ALICE)
    return file, response


async def test_legacy_generator_makes_a_cached_thumbnail(make_ds, upload, legacy):
    ds = await make_ds(plugin=WAIT)
    file, response = await thumbnail_for(ds, upload, "a.txt")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert decoded(response).size == (256, 128)
    # The bytes and the policy's box, as the 0.1a3 signature names them.
    assert legacy.png.calls == [(b"hello", "text/plain", "a.txt", 256, 256)]
    row = await thumbnail_row(ds, file["id"])
    assert row["outcome"] == "ok"
    assert row["cache_key"].startswith("legacy-png:1:")
    again = await ds.client.get(file["thumbnail_url"], actor=ALICE)
    assert again.content == response.content
    assert len(legacy.png.calls) == 1


@pytest.mark.parametrize(
    ("filename", "outcome", "generator", "reason"),
    [
        ("a.none", "skipped", "legacy-none", "no thumbnail"),
        ("a.skip", "skipped", "legacy-refuses", "not for me"),
        ("a.broken", "failed", "legacy-refuses", "cannot read it"),
    ],
)
async def test_legacy_generator_declines(
    make_ds, upload, legacy, filename, outcome, generator, reason
):
    ds = await make_ds(plugin=WAIT)
    file, response = await thumbnail_for(ds, upload, filename)
    assert_icon(response)
    row = await thumbnail_row(ds, file["id"])
    assert (row["outcome"], row["generator"]) == (outcome, generator)
    assert reason in row["reason"]


@pytest.mark.parametrize(
    ("filename", "generator", "reason"),
    [
        ("a.crash", "legacy-crashes", "generate bug"),
        ("a.ours", "current-crashes", "our bug"),
    ],
)
async def test_generator_exceptions_give_the_icon_not_a_500(
    make_ds, upload, legacy, filename, generator, reason, caplog
):
    ds = await make_ds(plugin=WAIT)
    file, response = await thumbnail_for(ds, upload, filename)
    assert_icon(response)
    row = await thumbnail_row(ds, file["id"])
    assert (row["outcome"], row["generator"]) == ("transient", generator)
    assert reason in row["reason"]
    assert f"thumbnail generator {generator} failed" in caplog.text


async def test_can_generate_that_raises_falls_through_to_the_icon(
    make_ds, upload, legacy, caplog
):
    ds = await make_ds(plugin=WAIT)
    file, response = await thumbnail_for(ds, upload, "a.oops")
    assert_icon(response)
    assert await thumbnail_row(ds, file["id"]) is None
    assert "legacy-crashes.accepts failed: can_generate bug" in caplog.text


async def test_legacy_generator_that_hangs_is_bounded_by_the_timeout(
    make_ds, upload, legacy
):
    ds = await make_ds(plugin={**WAIT, "thumbnail_timeout": 0.5})
    file, response = await thumbnail_for(ds, upload, "a.hang")
    assert_icon(response)
    assert legacy.hangs.started.is_set() and legacy.hangs.cancelled.is_set()
    row = await thumbnail_row(ds, file["id"])
    assert (row["outcome"], row["generator"]) == ("transient", "legacy-hangs")
    assert row["reason"] == "timed out after 0.5s"


async def test_legacy_generator_pixel_limits(make_ds, upload, legacy):
    ds = await make_ds(plugin={**WAIT, "thumbnail_max_pixels": 10_000})
    # Its output is 40,000 pixels: refused.
    file, response = await thumbnail_for(ds, upload, "a.huge")
    assert_icon(response)
    row = await thumbnail_row(ds, file["id"])
    assert (row["outcome"], row["generator"]) == ("failed", "legacy-pixels")
    assert "40000 pixels" in row["reason"]
    assert legacy.pixels.calls == 1
    # An image input over the limit is refused from its header, before the
    # generator sees it.
    file, response = await thumbnail_for(
        ds, upload, "b.pic", png_claiming(1000, 1000), "image/png"
    )
    assert_icon(response)
    row = await thumbnail_row(ds, file["id"])
    assert (row["outcome"], row["reason"]) == ("skipped", "too many pixels")
    assert legacy.pixels.calls == 1


async def test_legacy_generator_never_gets_more_than_max_bytes(make_ds, upload, legacy):
    ds = await make_ds(plugin={**WAIT, "thumbnail_max_bytes": 4})
    file, response = await thumbnail_for(ds, upload, "a.txt", b"hello")
    assert_icon(response)
    row = await thumbnail_row(ds, file["id"])
    assert (row["outcome"], row["generator"]) == ("skipped", "legacy-png")
    assert legacy.png.calls == []


async def test_0_1a3_names_in_base():
    assert str(FileTooLarge.for_limit(10)) == "File exceeds the 10 byte limit"
    error = ThumbnailGenerationError("why", skipped=True)
    assert (error.reason, error.skipped) == ("why", True)
    assert ThumbnailGenerationError("why").skipped is False
    result = ThumbnailResult(b"x", "image/png", 1, 2)
    assert (result.thumb_bytes, result.width, result.height) == (b"x", 1, 2)
    assert ThumbnailGenerator.version == "1"
    assert await ThumbnailGenerator().can_generate("image/png", "a.png") is False


# Upstream setting names


async def test_alias_settings_take_effect(make_ds, upload, legacy):
    ds = await make_ds(
        plugin={
            **WAIT,
            "thumbnail_max_source_bytes": 4,
            "thumbnail_timeout_seconds": "7",
            "thumbnail_process_memory_limit_bytes": 128 * MIB,
        }
    )
    policy = get_state(ds).thumbnailer.policy
    assert (policy.max_bytes, policy.timeout, policy.memory_limit) == (
        4,
        7.0,
        128 * MIB,
    )
    file, response = await thumbnail_for(ds, upload, "a.txt", b"hello")
    assert_icon(response)
    row = await thumbnail_row(ds, file["id"])
    assert (row["outcome"], row["reason"]) == ("skipped", "larger than the byte limit")


async def test_alias_and_key_with_the_same_value_are_fine(make_ds):
    ds = await make_ds(
        plugin={"thumbnail_timeout": "5", "thumbnail_timeout_seconds": 5}
    )
    assert get_state(ds).thumbnailer.policy.timeout == 5.0


@pytest.mark.parametrize(
    ("alias", "key"),
    [
        ("thumbnail_max_source_bytes", "thumbnail_max_bytes"),
        ("thumbnail_timeout_seconds", "thumbnail_timeout"),
        ("thumbnail_process_memory_limit_bytes", "thumbnail_memory_limit"),
    ],
)
async def test_alias_and_key_that_disagree_stop_startup(make_ds, alias, key):
    ds = await make_ds(plugin={alias: 100 * MIB, key: 200 * MIB}, start=False)
    with pytest.raises(StartupError) as error:
        await ds.invoke_startup()
    assert f"'{alias}'" in str(error.value) and f"'{key}'" in str(error.value)


async def test_thumbnail_eager_false_waits_for_the_first_request(
    make_ds, upload, legacy
):
    ds = await make_ds(plugin={**WAIT, "thumbnail_eager": False})
    file = await upload(ds, "files", "a.txt", b"hello", content_type="text/plain")
    # With the default, complete has started the generation by now.
    assert file["id"] not in get_state(ds).thumbnailer.tasks
    assert await thumbnail_row(ds, file["id"]) is None
    assert legacy.png.calls == []
    response = await ds.client.get(file["thumbnail_url"], actor=ALICE)
    assert response.headers["content-type"] == "image/png"


async def test_thumbnail_eager_true_starts_on_complete(make_ds, upload, legacy):
    ds = await make_ds(plugin={"thumbnail_eager": "true"})
    file = await upload(ds, "files", "a.txt", b"hello", content_type="text/plain")
    assert file["id"] in get_state(ds).thumbnailer.tasks


async def test_thumbnail_eager_must_be_a_boolean(make_ds):
    ds = await make_ds(plugin={"thumbnail_eager": "sometimes"}, start=False)
    with pytest.raises(StartupError, match="'thumbnail_eager' must be true or false"):
        await ds.invoke_startup()
