"""Thumbnails: every supported format, hostile inputs, caching, limits.

The generator hook and ``run_limited`` are in test_thumbnail_generators.py.

Generation runs in a child process; these tests start real ones. Settings
that keep them fast: a generous ``thumbnail_wait`` so a request waits for
its thumbnail, and short timeouts where a hang is the point.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import time
from types import SimpleNamespace

import pytest
from datasette.utils import StartupError
from datasette_files.state import get_state
from datasette_files.thumbnails import (
    pillow,
    run_limited,
    service,
)
from PIL import Image
from testkit import ALICE
from thumbnail_helpers import (
    WAIT,
    assert_icon,
    decoded,
    image_bytes,
    png_claiming,
    thumbnail_row,
    wait_for_row,
    wait_until,
)

pytestmark = pytest.mark.asyncio


FORMATS = [
    ("photo.jpg", "image/jpeg", "JPEG", {}),
    ("pic.png", "image/png", "PNG", {}),
    ("anim.gif", "image/gif", "GIF", {}),
    ("pic.webp", "image/webp", "WEBP", {}),
    ("pic.bmp", "image/bmp", "BMP", {}),
    ("scan.tiff", "image/tiff", "TIFF", {"compression": "tiff_lzw"}),
]


@pytest.mark.parametrize("filename,content_type,fmt,save", FORMATS)
async def test_each_supported_format(
    make_ds, upload, filename, content_type, fmt, save
):
    ds = await make_ds(plugin=WAIT)
    data = image_bytes(fmt, **save)
    file = await upload(ds, "files", filename, data, content_type=content_type)
    response = await ds.client.get(file["thumbnail_url"], actor=ALICE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/webp"
    assert response.headers["x-content-type-options"] == "nosniff"
    image = decoded(response)
    assert image.format == "WEBP"
    assert image.size == (256, 128)
    rgb = image.convert("RGB")
    assert rgb.getpixel((10, 64))[0] > 200  # red on the left
    assert rgb.getpixel((245, 64))[2] > 200  # blue on the right
    row = await thumbnail_row(ds, file["id"])
    assert row["outcome"] == "ok" and row["generator"] == "pillow"


async def test_type_is_guessed_from_the_extension_for_octet_streams(make_ds, upload):
    ds = await make_ds(plugin=WAIT)
    file = await upload(ds, "files", "holiday.JPG", image_bytes("JPEG"))
    response = await ds.client.get(file["thumbnail_url"], actor=ALICE)
    assert response.headers["content-type"] == "image/webp"


@pytest.mark.parametrize("fmt", ["webp", "png"])
async def test_transparency_is_kept(make_ds, upload, fmt):
    ds = await make_ds(plugin={**WAIT, "thumbnail_format": fmt})
    image = Image.new("RGBA", (300, 300), (255, 0, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, 150, 300))  # left half fully transparent
    output = io.BytesIO()
    image.save(output, "PNG")
    file = await upload(
        ds, "files", "alpha.png", output.getvalue(), content_type="image/png"
    )
    response = await ds.client.get(file["thumbnail_url"], actor=ALICE)
    assert response.headers["content-type"] == f"image/{fmt}"
    thumb = decoded(response)
    assert thumb.mode == "RGBA"
    assert thumb.getpixel((10, 128))[3] == 0
    red, green, blue, alpha = thumb.getpixel((245, 128))
    assert alpha == 255 and red > 240 and green < 16 and blue < 16


async def test_jpeg_output_flattens_transparency_onto_white(make_ds, upload):
    ds = await make_ds(plugin={**WAIT, "thumbnail_format": "jpeg"})
    image = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    output = io.BytesIO()
    image.save(output, "PNG")
    file = await upload(
        ds, "files", "clear.png", output.getvalue(), content_type="image/png"
    )
    response = await ds.client.get(file["thumbnail_url"], actor=ALICE)
    assert response.headers["content-type"] == "image/jpeg"
    thumb = decoded(response)
    assert thumb.mode == "RGB"
    assert min(thumb.getpixel((128, 128))) > 240


async def test_exif_orientation_is_applied(make_ds, upload):
    ds = await make_ds(plugin=WAIT)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    data = image_bytes("JPEG", exif=exif.tobytes())
    file = await upload(ds, "files", "phone.jpg", data, content_type="image/jpeg")
    response = await ds.client.get(file["thumbnail_url"], actor=ALICE)
    thumb = decoded(response).convert("RGB")
    assert thumb.size == (128, 256)
    # The stored left half (red) is at the top once upright.
    assert thumb.getpixel((64, 10))[0] > 200
    assert thumb.getpixel((64, 245))[2] > 200


async def test_etag_and_304(make_ds, upload):
    ds = await make_ds(plugin=WAIT)
    file = await upload(
        ds, "files", "a.png", image_bytes("PNG"), content_type="image/png"
    )
    first = await ds.client.get(file["thumbnail_url"], actor=ALICE)
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = await ds.client.get(
        file["thumbnail_url"], actor=ALICE, headers={"if-none-match": etag}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = await ds.client.get(
        file["thumbnail_url"], actor=ALICE, headers={"if-none-match": '"nope"'}
    )
    assert other.status_code == 200 and other.content == first.content


async def test_icon_for_other_types_has_an_etag_too(make_ds, upload):
    ds = await make_ds()
    file = await upload(ds, "files", "notes.txt", b"hello", content_type="text/plain")
    response = await ds.client.get(file["thumbnail_url"], actor=ALICE)
    assert_icon(response)
    assert "TXT" in response.text
    cached = await ds.client.get(
        file["thumbnail_url"],
        actor=ALICE,
        headers={"if-none-match": response.headers["etag"]},
    )
    assert cached.status_code == 304
    # No generator takes text files: nothing was attempted, nothing stored.
    assert await thumbnail_row(ds, file["id"]) is None


async def test_cache_headers_for_anonymous_readers(make_ds, upload, tmp_path):
    # Datasette marks every response to a signed-in actor "private, no-store",
    # so the plugin's own Cache-Control shows for anonymous readers only.
    ds = await make_ds(
        permissions={"files-browse": True, "files-upload": {"id": "alice"}},
        plugin={"thumbnail_wait": 30},
    )
    image = await upload(
        ds, "files", "a.png", image_bytes("PNG"), content_type="image/png"
    )
    text = await upload(ds, "files", "a.txt", b"x", content_type="text/plain")
    thumb = await ds.client.get(image["thumbnail_url"])
    assert thumb.headers["content-type"] == "image/webp"
    assert thumb.headers["cache-control"] == "private, max-age=3600"
    icon = await ds.client.get(text["thumbnail_url"])
    assert icon.headers["cache-control"] == "private, max-age=3600"


async def test_thumbnail_is_hidden_from_those_who_may_not_browse(
    make_ds, upload, json_error
):
    ds = await make_ds(plugin=WAIT)
    file = await upload(
        ds, "files", "a.png", image_bytes("PNG"), content_type="image/png"
    )
    json_error(await ds.client.get(file["thumbnail_url"]), 404)
    json_error(await ds.client.get(file["thumbnail_url"], actor={"id": "bob"}), 404)


HOSTILE = {
    "bomb": (
        png_claiming(100_000, 100_000),
        {},
        "skipped",
        "too many pixels",
    ),
    # Over the pixel limit but under twice it: Pillow only warns, and the
    # warning is an error in the worker.
    "bomb below twice the limit": (
        image_bytes("PNG", size=(120, 100)),
        {"thumbnail_max_pixels": 10_000},
        "skipped",
        "too many pixels",
    ),
    "truncated": (image_bytes("PNG")[:400], {}, "failed", "cannot decode"),
    "not an image": (b"just some text " * 100, {}, "skipped", "not a supported"),
    "corrupt jpeg": (
        image_bytes("JPEG")[:200] + b"\x00" * 3000,
        {},
        "failed",
        "cannot decode",
    ),
    "oversize": (
        image_bytes("BMP"),
        {"thumbnail_max_bytes": 10_000},
        "skipped",
        "byte limit",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
async def test_hostile_inputs_end_in_the_cached_icon(make_ds, upload, case):
    data, settings, outcome, reason = HOSTILE[case]
    ds = await make_ds(plugin={**WAIT, **settings})
    file = await upload(ds, "files", "evil.png", data, content_type="image/png")
    response = await ds.client.get(file["thumbnail_url"], actor=ALICE)
    assert_icon(response)
    row = await thumbnail_row(ds, file["id"])
    assert row["outcome"] == outcome
    assert reason in row["reason"]
    # Cached: the next request starts no generator.
    started = []
    original = pillow.PillowGenerator.generate

    async def spy(self, *args):
        started.append(1)
        return await original(self, *args)

    pillow.PillowGenerator.generate = spy
    try:
        assert_icon(await ds.client.get(file["thumbnail_url"], actor=ALICE))
    finally:
        pillow.PillowGenerator.generate = original
    assert started == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS")
async def test_memory_limit_ends_in_the_icon(make_ds, upload):
    ds = await make_ds(plugin={**WAIT, "thumbnail_memory_limit": 64 * 1024 * 1024})
    # 6000 x 6000 is under the pixel limit but needs ~140 MB decoded.
    data = image_bytes("PNG", size=(6000, 6000))
    file = await upload(ds, "files", "big.png", data, content_type="image/png")
    assert_icon(await ds.client.get(file["thumbnail_url"], actor=ALICE))
    row = await thumbnail_row(ds, file["id"])
    assert row["outcome"] == "skipped"
    assert "memory limit" in row["reason"]


HANG = "import os, sys, time; open({!r}, 'w').write(str(os.getpid())); time.sleep(60)"


def later(monkeypatch, seconds: float) -> None:
    """The thumbnail scheduler sees a clock ``seconds`` ahead."""
    monkeypatch.setattr(
        service, "time", SimpleNamespace(time=lambda: time.time() + seconds)
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_hung_generator_is_killed_and_datasette_stays_responsive(
    make_ds, upload, tmp_path, monkeypatch
):
    pid_file = tmp_path / "child.pid"
    monkeypatch.setattr(
        pillow.PillowGenerator,
        "command",
        [sys.executable, "-c", HANG.format(str(pid_file))],
    )
    ds = await make_ds(
        plugin={
            "thumbnail_timeout": 2.5,
            "thumbnail_wait": 0.2,
            "thumbnail_retry_after": 60,
        }
    )
    file = await upload(
        ds, "files", "a.png", image_bytes("PNG"), content_type="image/png"
    )
    # complete did not wait for the (hanging) generation it scheduled.
    assert file["id"] in get_state(ds).thumbnailer.tasks
    response = await ds.client.get(file["thumbnail_url"], actor=ALICE)
    assert_icon(response)
    await wait_until(pid_file.exists)
    pid = int(pid_file.read_text())
    assert pid_alive(pid)
    # While the child hangs, other requests answer: it is still hanging
    # after each one.
    for _ in range(5):
        page = await ds.client.get(file["url"] + ".json", actor=ALICE)
        assert page.status_code == 200
        assert pid_alive(pid)
    row = await wait_for_row(ds, file["id"])
    assert row["outcome"] == "transient"
    assert "timed out" in row["reason"]
    assert row["retry_at"] > time.time() + 50
    assert not pid_alive(pid)
    # In its cooldown: the icon, and no new child.
    pid_file.unlink()
    assert_icon(await ds.client.get(file["thumbnail_url"], actor=ALICE))
    # Nothing was started: no generation task (one that had already run
    # would have left a new pid file).
    assert get_state(ds).thumbnailer.tasks == {}
    assert not pid_file.exists()

    # After the cooldown, with a working generator, the retry succeeds.
    monkeypatch.undo()
    later(monkeypatch, 3600)
    await ds.client.get(file["thumbnail_url"], actor=ALICE)
    deadline = time.monotonic() + 30
    while (await thumbnail_row(ds, file["id"]))["outcome"] != "ok":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    response = await ds.client.get(file["thumbnail_url"], actor=ALICE)
    assert response.headers["content-type"] == "image/webp"


async def test_transient_failures_back_off(make_ds, upload, tmp_path, monkeypatch):
    monkeypatch.setattr(
        pillow.PillowGenerator, "command", [sys.executable, "-c", "raise SystemExit(9)"]
    )
    ds = await make_ds(plugin={**WAIT, "thumbnail_retry_after": 100})
    file = await upload(
        ds, "files", "a.png", image_bytes("PNG"), content_type="image/png"
    )
    await ds.client.get(file["thumbnail_url"], actor=ALICE)
    first = await thumbnail_row(ds, file["id"])
    assert (first["outcome"], first["attempts"]) == ("transient", 1)
    assert "status 9" in first["reason"]
    later(monkeypatch, 101)
    await ds.client.get(file["thumbnail_url"], actor=ALICE)
    second = await thumbnail_row(ds, file["id"])
    assert second["attempts"] == 2
    assert second["retry_at"] == pytest.approx(time.time() + 101 + 200, abs=5)


async def test_concurrency_is_bounded(make_ds, upload, tmp_path, monkeypatch):
    running, peak = [0], [0]

    async def counting_run(*args, **kwargs):
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        try:
            await asyncio.sleep(0.2)
            return await run_limited(*args, **kwargs)
        finally:
            running[0] -= 1

    monkeypatch.setattr(pillow, "run_limited", counting_run)
    ds = await make_ds(plugin={**WAIT, "thumbnail_concurrency": 2})
    files = [
        await upload(
            ds, "files", f"{i}.png", image_bytes("PNG"), content_type="image/png"
        )
        for i in range(5)
    ]
    responses = await asyncio.gather(
        *(ds.client.get(f["thumbnail_url"], actor=ALICE) for f in files)
    )
    assert all(r.headers["content-type"] == "image/webp" for r in responses)
    assert peak[0] == 2


async def test_policy_change_regenerates(make_ds, upload, tmp_path):
    ds = await make_ds(plugin={**WAIT, "thumbnail_size": 64})
    file = await upload(
        ds, "files", "a.png", image_bytes("PNG"), content_type="image/png"
    )
    first = await ds.client.get(file["thumbnail_url"], actor=ALICE)
    assert decoded(first).size == (64, 32)
    old_key = (await thumbnail_row(ds, file["id"]))["cache_key"]
    await ds.invoke_shutdown()
    # The same internal database, a new policy.
    ds2 = await make_ds(plugin={**WAIT, "thumbnail_size": 32})
    second = await ds2.client.get(file["thumbnail_url"], actor=ALICE)
    assert decoded(second).size == (32, 16)
    assert second.headers["etag"] != first.headers["etag"]
    row = await thumbnail_row(ds2, file["id"])
    assert row["cache_key"] != old_key  # and the old row is gone


async def test_deleting_a_file_drops_its_thumbnail(make_ds, upload):
    ds = await make_ds(plugin=WAIT)
    file = await upload(
        ds, "files", "a.png", image_bytes("PNG"), content_type="image/png"
    )
    await ds.client.get(file["thumbnail_url"], actor=ALICE)
    assert await thumbnail_row(ds, file["id"]) is not None
    deleted = await ds.client.post(f"{file['url']}/-/delete", actor=ALICE)
    assert deleted.status_code == 200
    assert await thumbnail_row(ds, file["id"]) is None


@pytest.mark.parametrize(
    "settings",
    [
        {"thumbnail_format": "gif"},
        {"thumbnail_size": 0},
        {"thumbnail_timeout": "soon"},
        {"thumbnail_concurrency": 0},
        {"thumbnail_memory_limit": 1000},
    ],
)
async def test_bad_thumbnail_settings_stop_startup(make_ds, settings):
    ds = await make_ds(plugin=settings, start=False)
    with pytest.raises(StartupError) as error:
        await ds.invoke_startup()
    assert f"'{next(iter(settings))}'" in str(error.value)
