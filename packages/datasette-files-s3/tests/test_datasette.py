"""The plugin inside a real Datasette: an ``s3`` source on SeaweedFS, a
browser-style direct upload through the core's HTTP API, and the download
redirect."""

import httpx
import pytest
import pytest_asyncio
from datasette.app import Datasette

pytestmark = pytest.mark.asyncio

ACTIONS = ("files-browse", "files-upload", "files-edit", "files-delete")


@pytest_asyncio.fixture
async def ds(seaweedfs, source_config, tmp_path):
    config = {
        "permissions": {action: {"id": "root"} for action in ACTIONS},
        "plugins": {
            "datasette-files": {
                "sources": {"bucket": {"storage": "s3", "config": source_config()}}
            }
        },
    }
    datasette = Datasette(config=config, internal=str(tmp_path / "internal.db"))
    await datasette.invoke_startup()
    yield datasette
    await datasette.invoke_shutdown()


def as_root(ds):
    return {"ds_actor": ds.client.actor_cookie({"id": "root"})}


async def test_s3_source_is_registered_and_available(ds):
    response = await ds.client.get("/-/files/sources.json", cookies=as_root(ds))
    assert response.status_code == 200
    [source] = response.json()["sources"]
    assert source["slug"] == "bucket"
    assert source["storage"] == "s3"
    assert source["available"] is True
    assert source["capabilities"]["can_direct_upload"] is True
    assert source["capabilities"]["can_multipart_upload"] is True


async def test_direct_upload_and_download_through_the_core(ds):
    data = b"a small file that never passes through Datasette"
    prepared = await ds.client.post(
        "/-/files/upload/bucket/-/prepare",
        json={"filename": "notes.txt", "content_type": "text/plain", "size": len(data)},
        cookies=as_root(ds),
    )
    assert prepared.status_code == 200, prepared.text
    body = prepared.json()
    upload = body["upload"]
    assert upload["mode"] == "direct"
    assert upload["method"] == "POST"
    assert upload["url"].startswith("http://127.0.0.1:")
    # 0.1a3 clients read the same instructions at the top level.
    assert body["upload_url"] == upload["url"]
    assert body["upload_method"] == upload["method"]
    assert body["upload_headers"] == upload["headers"]
    assert body["upload_fields"] == upload["fields"]
    assert "key" in body["upload_fields"] and "policy" in body["upload_fields"]

    async with httpx.AsyncClient() as browser:
        posted = await browser.post(
            upload["url"],
            data=upload["fields"],
            files={"file": ("notes.txt", data, "text/plain")},
        )
    assert posted.status_code in (200, 201, 204), posted.text

    completed = await ds.client.post(
        "/-/files/upload/bucket/-/complete",
        json={"upload_token": body["upload_token"]},
        cookies=as_root(ds),
    )
    assert completed.status_code == 201, completed.text
    file = completed.json()["file"]
    assert file["size"] == len(data)
    assert file["source_slug"] == "bucket"

    download = await ds.client.get(file["download_url"], cookies=as_root(ds))
    assert download.status_code == 302
    async with httpx.AsyncClient() as browser:
        fetched = await browser.get(download.headers["location"])
    assert fetched.content == data
    assert fetched.headers["content-disposition"].startswith("attachment;")
    assert 'filename="notes.txt"' in fetched.headers["content-disposition"]


async def test_direct_upload_gets_its_sha256_in_the_background(ds):
    import asyncio
    import hashlib

    data = b"hash me after complete " * 1000
    prepared = await ds.client.post(
        "/-/files/upload/bucket/-/prepare",
        json={"filename": "h.txt", "content_type": "text/plain", "size": len(data)},
        cookies=as_root(ds),
    )
    body = prepared.json()
    async with httpx.AsyncClient() as browser:
        posted = await browser.post(
            body["upload"]["url"],
            data=body["upload"]["fields"],
            files={"file": ("h.txt", data, "text/plain")},
        )
    assert posted.status_code in (200, 201, 204), posted.text
    completed = await ds.client.post(
        "/-/files/upload/bucket/-/complete",
        json={"upload_token": body["upload_token"]},
        cookies=as_root(ds),
    )
    assert completed.status_code == 201
    file_url = completed.json()["file"]["url"] + ".json"
    expected = "sha256:" + hashlib.sha256(data).hexdigest()
    for _ in range(100):
        file = (await ds.client.get(file_url, cookies=as_root(ds))).json()["file"]
        if file["content_hash"]:
            break
        await asyncio.sleep(0.05)
    assert file["content_hash"] == expected


async def test_a_large_direct_upload_is_multipart_with_etag_part_tags(ds):
    prepared = await ds.client.post(
        "/-/files/upload/bucket/-/prepare",
        json={
            "filename": "big.bin",
            "content_type": "application/octet-stream",
            "size": 200 * 1024 * 1024,
        },
        cookies=as_root(ds),
    )
    assert prepared.status_code == 200, prepared.text
    upload = prepared.json()["upload"]
    assert upload["mode"] == "multipart"
    assert upload["part_tag_header"] == "ETag"
    assert upload["parts_url"] == "/-/files/upload/bucket/-/parts"
    aborted = await ds.client.post(
        "/-/files/upload/bucket/-/abort",
        json={"upload_token": prepared.json()["upload_token"]},
        cookies=as_root(ds),
    )
    assert aborted.status_code == 200, aborted.text
