"""allowed_types and on_duplicate on an ``s3`` source (issue 14): the core
checks direct uploads at complete, with a ranged read of the first bytes,
and removes refused or duplicate objects from the bucket."""

import io

import httpx
import pytest
import pytest_asyncio
from datasette.app import Datasette
from PIL import Image

pytestmark = pytest.mark.asyncio

ACTIONS = ("files-browse", "files-upload", "files-edit", "files-delete")
# The bucket the source_config fixture (conftest.py) points at.
BUCKET = "storage-tests"
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script>"


def png_bytes() -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(output, "PNG")
    return output.getvalue()


@pytest_asyncio.fixture
async def make_ds(seaweedfs, source_config, tmp_path):
    """``await make_ds(allowed_types=..., on_duplicate=...)``: Datasette with
    one s3 source, ``bucket``, under a fresh prefix; returns (ds, prefix)."""
    started = []

    async def make(**rules):
        config = source_config(**rules)
        ds = Datasette(
            config={
                "permissions": {action: {"id": "root"} for action in ACTIONS},
                "plugins": {
                    "datasette-files": {
                        "sources": {"bucket": {"storage": "s3", "config": config}}
                    }
                },
            },
            internal=str(tmp_path / f"internal-{len(started)}.db"),
        )
        started.append(ds)
        await ds.invoke_startup()
        return ds, config["prefix"]

    yield make
    for ds in started:
        await ds.invoke_shutdown()


def as_root(ds):
    return {"ds_actor": ds.client.actor_cookie({"id": "root"})}


def objects_under(seaweedfs, prefix: str) -> list[str]:
    listing = seaweedfs.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/")
    return [item["Key"] for item in listing.get("Contents", [])]


async def prepare(ds, filename, data, content_type, direct=True):
    return await ds.client.post(
        "/-/files/upload/bucket/-/prepare",
        json={
            "filename": filename,
            "content_type": content_type,
            "size": len(data),
            "direct": direct,
        },
        cookies=as_root(ds),
    )


async def direct_upload(ds, filename, data, content_type):
    """Prepare, POST the bytes straight to S3 as a browser does, complete."""
    prepared = await prepare(ds, filename, data, content_type)
    assert prepared.status_code == 200, prepared.text
    upload = prepared.json()["upload"]
    assert upload["mode"] == "direct"
    async with httpx.AsyncClient() as browser:
        posted = await browser.post(
            upload["url"],
            data=upload["fields"],
            files={"file": (filename, data, content_type)},
        )
    assert posted.status_code in (200, 201, 204), posted.text
    return await ds.client.post(
        "/-/files/upload/bucket/-/complete",
        json={"upload_token": prepared.json()["upload_token"]},
        cookies=as_root(ds),
    )


async def registered(ds) -> list[str]:
    listing = await ds.client.get("/-/files/source/bucket.json", cookies=as_root(ds))
    return [file["id"] for file in listing.json()["files"]]


async def test_direct_upload_of_html_named_png_is_refused_and_removed(
    make_ds, seaweedfs
):
    ds, prefix = await make_ds(allowed_types=["image/*"])
    completed = await direct_upload(ds, "cat.png", HTML, "image/png")
    assert completed.status_code == 415, completed.text
    body = completed.json()
    assert body["ok"] is False
    assert "text/html" in body["error"] and "image/*" in body["error"]
    assert objects_under(seaweedfs, prefix) == []
    assert await registered(ds) == []


async def test_direct_upload_of_a_real_png_is_accepted(make_ds, seaweedfs):
    ds, prefix = await make_ds(allowed_types=["image/png"])
    completed = await direct_upload(ds, "cat.png", png_bytes(), "image/png")
    assert completed.status_code == 201, completed.text
    assert len(objects_under(seaweedfs, prefix)) == 1


async def test_prepare_refuses_a_type_not_allowed(make_ds):
    ds, _ = await make_ds(allowed_types=["image/*", "application/pdf"])
    response = await prepare(ds, "x.html", HTML, "text/html")
    assert response.status_code == 415
    assert "image/*, application/pdf" in response.json()["error"]


async def test_proxied_upload_to_s3_is_refused_while_streaming(make_ds, seaweedfs):
    ds, prefix = await make_ds(allowed_types=["image/*"])
    prepared = await prepare(ds, "cat.png", HTML, "image/png", direct=False)
    assert prepared.json()["upload"]["mode"] == "proxy"
    sent = await ds.client.post(
        "/-/files/upload/bucket/-/upload",
        content=HTML,
        headers={"x-upload-token": prepared.json()["upload_token"]},
        cookies=as_root(ds),
    )
    assert sent.status_code == 415, sent.text
    assert objects_under(seaweedfs, prefix) == []


@pytest.mark.parametrize("mode", ["reuse", "reject"])
async def test_direct_duplicates_are_found_at_complete(make_ds, seaweedfs, mode):
    ds, prefix = await make_ds(on_duplicate=mode)
    data = b"the same bytes, twice" * 100
    first = await direct_upload(ds, "a.txt", data, "text/plain")
    assert first.status_code == 201, first.text
    first_id = first.json()["file"]["id"]
    # Hashed at complete, not later in the background.
    assert first.json()["file"]["content_hash"].startswith("sha256:")
    second = await direct_upload(ds, "b.txt", data, "text/plain")
    if mode == "reuse":
        assert second.status_code == 200, second.text
        assert second.json()["duplicate_of"] == first_id
        assert second.json()["file"]["id"] == first_id
    else:
        assert second.status_code == 409, second.text
        assert second.json()["duplicate_of"] == first_id
    assert len(objects_under(seaweedfs, prefix)) == 1
    assert await registered(ds) == [first_id]


async def test_direct_duplicates_are_kept_with_allow(make_ds, seaweedfs):
    ds, prefix = await make_ds(on_duplicate="allow")
    data = b"the same bytes, twice"
    for name in ("a.txt", "b.txt"):
        assert (await direct_upload(ds, name, data, "text/plain")).status_code == 201
    assert len(objects_under(seaweedfs, prefix)) == 2


async def test_direct_multipart_upload_of_html_named_png_is_refused(make_ds, seaweedfs):
    # A threshold of 1 byte: even a small file goes up in (one) part.
    ds, prefix = await make_ds(allowed_types=["image/*"], multipart_threshold=1)
    prepared = await prepare(ds, "cat.png", HTML, "image/png")
    assert prepared.status_code == 200, prepared.text
    body = prepared.json()
    assert body["upload"]["mode"] == "multipart"
    token = body["upload_token"]
    urls = await ds.client.post(
        body["upload"]["parts_url"],
        json={"upload_token": token, "part_numbers": [1]},
        cookies=as_root(ds),
    )
    async with httpx.AsyncClient() as browser:
        put = await browser.put(urls.json()["urls"]["1"], content=HTML)
    assert put.status_code == 200, put.text
    completed = await ds.client.post(
        "/-/files/upload/bucket/-/complete",
        json={
            "upload_token": token,
            "parts": [{"PartNumber": 1, "ETag": put.headers["etag"]}],
        },
        cookies=as_root(ds),
    )
    assert completed.status_code == 415, completed.text
    assert objects_under(seaweedfs, prefix) == []
    assert await registered(ds) == []
