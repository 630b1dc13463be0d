"""Sized thumbnail variants: ``/thumbnail?w=&h=&fit=&format=`` over HTTP.

Sizes come from the ``thumbnail_sizes`` allowlist; each variant is made by
the same sandboxed generator as the plain thumbnail and cached beside it.
"""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from datasette import hookimpl
from datasette.plugins import pm
from datasette.utils import StartupError
from datasette_files.base import ThumbnailGenerator, ThumbnailResult
from datasette_files.thumbnails import Thumbnail
from PIL import Image
from testkit import ALICE
from thumbnail_helpers import WAIT, decoded, image_bytes, wait_for_row

pytestmark = pytest.mark.asyncio

SIZES = (64, 200, 400, 800)
ALLOWED = "64, 200, 400, 800"


async def wide_png(ds, upload, name="wide.png", size=(1600, 800)) -> dict:
    """A 2:1 PNG, red left half, blue right half."""
    data = image_bytes("PNG", size=size)
    return await upload(ds, "files", name, data, content_type="image/png")


async def thumbnail_rows(ds, file_id: str) -> list[str]:
    rows = await ds.get_internal_database().execute(
        "SELECT cache_key FROM files_thumbnails WHERE file_id = ? ORDER BY cache_key",
        [file_id],
    )
    return [row["cache_key"] for row in rows]


async def test_each_allowed_size_for_contain_and_cover(make_ds, upload):
    ds = await make_ds(plugin=WAIT)
    file = await wide_png(ds, upload)
    url = file["thumbnail_url"]
    for size in SIZES:
        contain = await ds.client.get(f"{url}?w={size}", actor=ALICE)
        assert contain.status_code == 200, contain.text
        assert contain.headers["content-type"] == "image/webp"
        assert decoded(contain).size == (size, size // 2)
        cover = await ds.client.get(f"{url}?w={size}&h={size}&fit=cover", actor=ALICE)
        image = decoded(cover).convert("RGB")
        assert image.size == (size, size)
        # The centre square of a red|blue image: still red left, blue right.
        assert image.getpixel((2, size // 2))[0] > 200
        assert image.getpixel((size - 3, size // 2))[2] > 200


async def test_width_and_height_apart(make_ds, upload):
    ds = await make_ds(plugin=WAIT)
    file = await wide_png(ds, upload)
    url = file["thumbnail_url"]
    cover = await ds.client.get(f"{url}?w=400&h=64&fit=cover", actor=ALICE)
    assert decoded(cover).size == (400, 64)
    contain = await ds.client.get(f"{url}?w=200&h=400", actor=ALICE)
    assert decoded(contain).size == (200, 100)
    only_height = await ds.client.get(f"{url}?h=64", actor=ALICE)
    assert decoded(only_height).size == (64, 32)  # a 64 x 64 box
    # fit alone: the policy's size (256) for both sides.
    square = await ds.client.get(f"{url}?fit=cover", actor=ALICE)
    assert decoded(square).size == (256, 256)


async def test_a_small_image_is_not_enlarged_by_contain(make_ds, upload):
    ds = await make_ds(plugin=WAIT)
    file = await wide_png(ds, upload, size=(100, 50))
    response = await ds.client.get(f"{file['thumbnail_url']}?w=800", actor=ALICE)
    assert decoded(response).size == (100, 50)


async def test_rotated_photo_fills_a_non_square_box(make_ds, upload):
    ds = await make_ds(plugin=WAIT)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown rotated 90 degrees clockwise
    data = image_bytes("JPEG", size=(1600, 800), exif=exif.tobytes())
    file = await upload(ds, "files", "phone.jpg", data, content_type="image/jpeg")
    url = file["thumbnail_url"]
    contain = await ds.client.get(f"{url}?w=200&h=400", actor=ALICE)
    assert decoded(contain).size == (200, 400)  # upright: 800 x 1600
    cover = await ds.client.get(f"{url}?w=400&h=200&fit=cover", actor=ALICE)
    image = decoded(cover).convert("RGB")
    assert image.size == (400, 200)
    # The centre band of the upright image: red above, blue below.
    assert image.getpixel((200, 5))[0] > 200
    assert image.getpixel((200, 194))[2] > 200


@pytest.mark.parametrize("fmt", ["webp", "png", "jpeg"])
async def test_formats(make_ds, upload, fmt):
    ds = await make_ds(plugin=WAIT)
    file = await wide_png(ds, upload)
    response = await ds.client.get(
        f"{file['thumbnail_url']}?w=200&format={fmt}", actor=ALICE
    )
    assert response.headers["content-type"] == f"image/{fmt}"
    image = decoded(response)
    assert image.format == fmt.upper()
    assert image.size == (200, 100)


@pytest.mark.parametrize(
    "query,message",
    [
        ("w=300", f"w must be one of {ALLOWED}"),
        ("h=256", f"h must be one of {ALLOWED}"),
        ("w=64&h=0", f"h must be one of {ALLOWED}"),
        ("w=-64", f"w must be one of {ALLOWED}"),
        ("w=abc", f"w must be one of {ALLOWED}"),
        ("w=%C2%B2", f"w must be one of {ALLOWED}"),  # a superscript two
        ("w=64&fit=stretch", "fit must be one of contain, cover"),
        ("format=gif", "format must be one of webp, png, jpeg"),
        ("w=64&format=svg", "format must be one of webp, png, jpeg"),
    ],
)
async def test_refused_variants(make_ds, upload, json_error, query, message):
    ds = await make_ds(plugin=WAIT)
    file = await wide_png(ds, upload)
    response = await ds.client.get(f"{file['thumbnail_url']}?{query}", actor=ALICE)
    body = json_error(response, 400)
    assert body["errors"] == [message]
    # Nothing was made for a refused request.
    assert await thumbnail_rows(ds, file["id"]) == []


async def test_refused_only_for_those_who_may_see_the_file(make_ds, upload):
    ds = await make_ds(plugin=WAIT)
    file = await wide_png(ds, upload)
    response = await ds.client.get(f"{file['thumbnail_url']}?w=300")
    assert response.status_code in (403, 404)


async def test_each_variant_has_its_own_etag_and_304(make_ds, upload):
    ds = await make_ds(plugin=WAIT)
    # 100 x 50: every contain variant comes out byte-identical (never
    # enlarged), yet each keeps its own ETag.
    file = await wide_png(ds, upload, size=(100, 50))
    url = file["thumbnail_url"]
    plain = await ds.client.get(url, actor=ALICE)
    small = await ds.client.get(f"{url}?w=200", actor=ALICE)
    large = await ds.client.get(f"{url}?w=400", actor=ALICE)
    assert small.content == large.content
    etags = {r.headers["etag"] for r in (plain, small, large)}
    assert len(etags) == 3
    again = await ds.client.get(
        f"{url}?w=200", actor=ALICE, headers={"if-none-match": small.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == small.headers["etag"]
    other = await ds.client.get(
        f"{url}?w=400", actor=ALICE, headers={"if-none-match": small.headers["etag"]}
    )
    assert other.status_code == 200
    # The plain thumbnail and both variants are cached side by side.
    assert len(await thumbnail_rows(ds, file["id"])) == 3
    assert (await ds.client.get(url, actor=ALICE)).headers["etag"] == (
        plain.headers["etag"]
    )


async def test_plain_thumbnail_stands_in_while_a_variant_is_made(make_ds, upload):
    ds = await make_ds(plugin={"thumbnail_wait": 0})  # never wait
    file = await wide_png(ds, upload)
    await wait_for_row(ds, file["id"])  # the plain one, made on upload
    url = file["thumbnail_url"]
    plain = await ds.client.get(url, actor=ALICE)
    assert decoded(plain).size == (256, 128)
    stand_in = await ds.client.get(f"{url}?w=64", actor=ALICE)
    assert stand_in.content == plain.content
    assert stand_in.headers["etag"] == plain.headers["etag"]
    deadline = time.monotonic() + 30
    while len(await thumbnail_rows(ds, file["id"])) < 2:  # the variant's row
        assert time.monotonic() < deadline, "the variant was never made"
        await asyncio.sleep(0.05)
    variant = await ds.client.get(f"{url}?w=64", actor=ALICE)
    assert decoded(variant).size == (64, 32)
    assert variant.headers["etag"] != plain.headers["etag"]


async def test_same_as_plain_thumbnail_shares_its_cache_row(make_ds, upload):
    ds = await make_ds(plugin={**WAIT, "thumbnail_size": 200})
    file = await wide_png(ds, upload)
    url = file["thumbnail_url"]
    plain = await ds.client.get(url, actor=ALICE)
    same = await ds.client.get(f"{url}?w=200&fit=contain&format=webp", actor=ALICE)
    assert same.headers["etag"] == plain.headers["etag"]
    assert len(await thumbnail_rows(ds, file["id"])) == 1


async def test_a_changed_file_gets_new_variants(make_ds, upload, tmp_path):
    ds = await make_ds(plugin=WAIT)
    file = await wide_png(ds, upload)
    url = f"{file['thumbnail_url']}?w=64"
    await ds.client.get(file["thumbnail_url"], actor=ALICE)  # the plain one
    first = await ds.client.get(url, actor=ALICE)
    assert decoded(first).convert("RGB").getpixel((5, 16))[0] > 200  # red
    old_keys = await thumbnail_rows(ds, file["id"])
    assert len(old_keys) == 2
    # The bytes change in storage and the file row says so (what a sync
    # does): a green image of another size.
    db = ds.get_internal_database()
    path = await db.execute("SELECT path FROM files_files WHERE id = ?", [file["id"]])
    output = io.BytesIO()
    Image.new("RGB", (640, 320), "green").save(output, "PNG")
    data = output.getvalue()
    (tmp_path / "files" / path.first()["path"]).write_bytes(data)
    await db.execute_write(
        "UPDATE files_files SET size = ?, content_hash = ? WHERE id = ?",
        [len(data), "sha256:" + "0" * 64, file["id"]],
    )
    second = await ds.client.get(url, actor=ALICE)
    assert second.headers["etag"] != first.headers["etag"]
    pixel = decoded(second).convert("RGB").getpixel((5, 16))
    assert pixel[1] > 100 and pixel[0] < 50  # green
    # The old file's thumbnails were dropped when the new variant was stored.
    new_keys = await thumbnail_rows(ds, file["id"])
    assert len(new_keys) == 1 and new_keys[0] not in old_keys


async def test_configured_sizes(make_ds, upload, json_error):
    ds = await make_ds(plugin={**WAIT, "thumbnail_sizes": "100, 50"})
    file = await wide_png(ds, upload)
    url = file["thumbnail_url"]
    response = await ds.client.get(f"{url}?w=50", actor=ALICE)
    assert decoded(response).size == (50, 25)
    refused = await ds.client.get(f"{url}?w=64", actor=ALICE)
    assert json_error(refused, 400)["errors"] == ["w must be one of 50, 100"]
    assert file["thumbnail_srcset"] == f"{url}?w=50 50w, {url}?w=100 100w"


@pytest.mark.parametrize(
    "sizes", [[], [8], [5000], ["big"], "abc", [64, True], {"w": 64}, 64]
)
async def test_bad_sizes_stop_startup(make_ds, sizes):
    ds = await make_ds(plugin={"thumbnail_sizes": sizes}, start=False)
    with pytest.raises(StartupError) as error:
        await ds.invoke_startup()
    assert "'thumbnail_sizes'" in str(error.value)


async def test_srcset_in_file_json_and_pages(make_ds, upload):
    ds = await make_ds(plugin=WAIT)
    file = await wide_png(ds, upload)
    thumb = file["thumbnail_url"]
    srcset = ", ".join(f"{thumb}?w={size} {size}w" for size in SIZES)
    assert file["thumbnail_srcset"] == srcset
    source = await ds.client.get("/-/files/source/files", actor=ALICE)
    assert f'srcset="{srcset}" sizes="32px"' in source.text
    page = await ds.client.get(file["url"], actor=ALICE)
    # The image preview: its size is not recorded, so no srcset (a variant's
    # real width is unknown) and the browser loads the original.
    assert f'<img src="{file["download_url"]}" alt=' in page.text
    # With its size known: the variants narrower than the image, each at the
    # width it really has (a 300 x 600 image in a 200 x 200 box is 100 wide),
    # then the original at its own width.
    await ds.get_internal_database().execute_write(
        "UPDATE files_files SET width = 300, height = 600 WHERE id = ?", [file["id"]]
    )
    page = await ds.client.get(file["url"], actor=ALICE)
    narrower = f"{thumb}?w=64 32w, {thumb}?w=200 100w, {thumb}?w=400 200w"
    preview = f'srcset="{narrower}, {file["download_url"]} 300w"'
    assert f'{preview} sizes="(max-width: 30rem) 100vw, 28rem"' in page.text


async def test_no_preview_srcset_past_the_thumbnail_limits(make_ds, upload):
    ds = await make_ds(plugin={**WAIT, "thumbnail_max_bytes": 1000})
    file = await wide_png(ds, upload)
    assert file["size"] > 1000
    await ds.get_internal_database().execute_write(
        "UPDATE files_files SET width = 1600, height = 800 WHERE id = ?", [file["id"]]
    )
    page = await ds.client.get(file["url"], actor=ALICE)
    assert f'<img src="{file["download_url"]}" alt=' in page.text


def png(size) -> bytes:
    output = io.BytesIO()
    Image.new("RGB", size, "green").save(output, "PNG")
    return output.getvalue()


class BoxRecorder:
    """A current-protocol generator for .box files: an image of its box."""

    name, version = "box-recorder", "1"

    def __init__(self):
        self.policies = []

    def accepts(self, file):
        return file.filename.endswith(".box")

    async def generate(self, data, file, policy):
        self.policies.append(policy)
        return Thumbnail(png(policy.box), "image/png")


class LegacyRecorder(ThumbnailGenerator):
    """A 0.1a3-style generator for .old files: an image of its max size."""

    name = "legacy-recorder"

    def __init__(self):
        self.calls = []

    async def can_generate(self, content_type, filename):
        return filename.endswith(".old")

    async def generate(
        self, file_bytes, content_type, filename, max_width=200, max_height=200
    ):
        self.calls.append((max_width, max_height))
        size = (max_width, max_height)
        return ThumbnailResult(png(size), "image/png", *size)


class RecorderPlugin:
    def __init__(self):
        self.current = BoxRecorder()
        self.legacy = LegacyRecorder()

    @hookimpl
    def register_thumbnail_generators(self, datasette):
        return [self.current, self.legacy]


@pytest.fixture
def recorders():
    plugin = RecorderPlugin()
    pm.register(plugin, name="test-variant-recorders")
    yield plugin
    pm.unregister(name="test-variant-recorders")


async def test_plugin_generators_get_the_variant(make_ds, upload, recorders):
    ds = await make_ds(plugin={**WAIT, "thumbnail_eager": False})
    box = await upload(ds, "files", "a.box", b"x", content_type="text/plain")
    response = await ds.client.get(
        f"{box['thumbnail_url']}?w=400&h=64&fit=cover&format=png", actor=ALICE
    )
    assert decoded(response).size == (400, 64)
    (policy,) = recorders.current.policies
    assert (policy.width, policy.height, policy.fit, policy.format) == (
        400,
        64,
        "cover",
        "png",
    )
    assert policy.size == 400 and policy.box == (400, 64)
    old = await upload(ds, "files", "a.old", b"x", content_type="text/plain")
    response = await ds.client.get(f"{old['thumbnail_url']}?w=200&h=64", actor=ALICE)
    assert decoded(response).size == (200, 64)
    assert recorders.legacy.calls == [(200, 64)]
    # The plain thumbnail: the policy's square box, as before variants.
    await ds.client.get(old["thumbnail_url"], actor=ALICE)
    assert recorders.legacy.calls[-1] == (256, 256)
