"""Thumbnails of files in an ``s3`` source: made from a ranged, bounded read."""

import io

import httpx
import pytest
from datasette.app import Datasette
from datasette_files.state import get_state
from datasette_files_s3 import S3Storage
from PIL import Image

pytestmark = pytest.mark.asyncio

ACTIONS = ("files-browse", "files-upload")


async def start(source_config, tmp_path, **settings):
    config = {
        "permissions": {action: {"id": "root"} for action in ACTIONS},
        "plugins": {
            "datasette-files": {
                "sources": {"bucket": {"storage": "s3", "config": source_config()}},
                "thumbnail_wait": 30,
                **settings,
            }
        },
    }
    datasette = Datasette(config=config, internal=str(tmp_path / "internal.db"))
    await datasette.invoke_startup()
    # Direct uploads are hashed by reading the whole object in the background;
    # off here, so the only reads left are the thumbnail's.
    get_state(datasette).hasher = None
    return datasette


def as_root(ds):
    return {"ds_actor": ds.client.actor_cookie({"id": "root"})}


async def direct_upload(ds, filename: str, data: bytes, content_type: str) -> dict:
    prepared = await ds.client.post(
        "/-/files/upload/bucket/-/prepare",
        json={"filename": filename, "content_type": content_type, "size": len(data)},
        cookies=as_root(ds),
    )
    assert prepared.status_code == 200, prepared.text
    body = prepared.json()
    async with httpx.AsyncClient() as browser:
        posted = await browser.post(
            body["upload"]["url"],
            data=body["upload"]["fields"],
            files={"file": (filename, data, content_type)},
        )
    assert posted.status_code in (200, 201, 204), posted.text
    completed = await ds.client.post(
        "/-/files/upload/bucket/-/complete",
        json={"upload_token": body["upload_token"]},
        cookies=as_root(ds),
    )
    assert completed.status_code == 201, completed.text
    return completed.json()["file"]


@pytest.fixture
def reads(monkeypatch):
    """Every ``S3Storage.stream_file`` call as ``(start, end)``."""
    calls = []
    original = S3Storage.stream_file

    def spy(self, path, start=0, end=None):
        calls.append((start, end))
        return original(self, path, start, end)

    monkeypatch.setattr(S3Storage, "stream_file", spy)
    return calls


def photo(size=(800, 600)) -> bytes:
    # Noise so the JPEG is large enough for the byte-limit case.
    image = Image.effect_noise(size, 64).convert("RGB")
    output = io.BytesIO()
    image.save(output, "JPEG", quality=95)
    return output.getvalue()


async def test_thumbnail_from_s3_uses_a_bounded_ranged_read(
    seaweedfs, source_config, tmp_path, reads
):
    ds = await start(source_config, tmp_path)
    try:
        data = photo()
        file = await direct_upload(ds, "photo.jpg", data, "image/jpeg")
        response = await ds.client.get(file["thumbnail_url"], cookies=as_root(ds))
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/webp"
        assert Image.open(io.BytesIO(response.content)).size == (256, 192)
        # One ranged GET for exactly the recorded size, never an open-ended one.
        assert reads == [(0, len(data) - 1)]
    finally:
        await ds.invoke_shutdown()


async def test_file_over_the_byte_limit_is_skipped_without_reading_it(
    seaweedfs, source_config, tmp_path, reads
):
    ds = await start(source_config, tmp_path, thumbnail_max_bytes=50_000)
    try:
        data = photo()
        assert len(data) > 50_000
        file = await direct_upload(ds, "big.jpg", data, "image/jpeg")
        response = await ds.client.get(file["thumbnail_url"], cookies=as_root(ds))
        assert response.headers["content-type"] == "image/svg+xml"
        rows = await ds.get_internal_database().execute(
            "SELECT outcome, reason FROM files_thumbnails WHERE file_id = ?",
            [file["id"]],
        )
        assert tuple(rows.first()) == ("skipped", "larger than the byte limit")
        assert reads == []
    finally:
        await ds.invoke_shutdown()
