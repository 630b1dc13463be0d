"""The HTTP API as datasette-files 0.1a3 clients use it: prepare's flat
``upload_*`` keys, a multipart form to ``upload_url``, ``sha256:`` hashes,
and the update endpoint's refusals."""

from __future__ import annotations

import hashlib
import os

import pytest
from testkit import ALICE

FLAT_KEYS = {
    "upload_url": "url",
    "upload_method": "method",
    "upload_headers": "headers",
    "upload_fields": "fields",
}


async def prepare(ds, filename: str, size: int, content_type: str = "text/plain"):
    response = await ds.client.post(
        "/-/files/upload/files/-/prepare",
        json={"filename": filename, "content_type": content_type, "size": size},
        actor=ALICE,
    )
    assert response.status_code == 200, response.text
    return response.json()


async def upload_like_0_1a3(ds, filename: str, data: bytes, send_headers: bool):
    """Only the flat keys: a form of ``upload_fields`` then ``file``, sent
    with ``upload_method`` to ``upload_url`` (with ``upload_headers`` too, if
    ``send_headers``); then complete. Returns the file JSON."""
    prepared = await prepare(ds, filename, len(data))
    sent = await ds.client.request(
        prepared["upload_method"],
        prepared["upload_url"],
        data=prepared["upload_fields"],
        files={"file": (filename, data, "text/plain")},
        headers=prepared["upload_headers"] if send_headers else None,
        actor=ALICE,
    )
    assert sent.status_code == 200, sent.text
    completed = await ds.client.post(
        "/-/files/upload/files/-/complete",
        json={"upload_token": prepared["upload_token"]},
        actor=ALICE,
    )
    assert completed.status_code == 201, completed.text
    return completed.json()["file"]


@pytest.mark.asyncio
@pytest.mark.parametrize("send_headers", [False, True], ids=["fields", "and headers"])
async def test_a_0_1a3_client_uploads_with_the_flat_keys(make_ds, send_headers):
    ds = await make_ds()
    data = os.urandom(200_000)
    file = await upload_like_0_1a3(ds, "old-client.txt", data, send_headers)
    assert file["size"] == len(data)
    assert file["content_hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
    download = await ds.client.get(file["download_url"], actor=ALICE)
    assert download.status_code == 200
    assert download.content == data


@pytest.mark.asyncio
async def test_flat_keys_mirror_the_nested_instructions(make_ds):
    ds = await make_ds()
    prepared = await prepare(ds, "a.txt", 3)
    upload = prepared["upload"]
    assert upload["mode"] == "proxy"
    for flat, nested in FLAT_KEYS.items():
        assert prepared[flat] == upload[nested], flat
    token = prepared["upload_token"]
    assert upload["fields"] == {"upload_token": token}
    assert upload["headers"] == {"X-Upload-Token": token}


@pytest.mark.asyncio
async def test_the_raw_body_still_works_with_the_nested_instructions(make_ds, api):
    ds = await make_ds()
    prepared = await prepare(ds, "raw.bin", 5)
    upload = prepared["upload"]
    sent = await ds.client.request(
        upload["method"],
        upload["url"],
        content=b"12345",
        headers=upload["headers"],
        actor=ALICE,
    )
    assert sent.status_code == 200, sent.text
    assert (
        sent.json()["content_hash"] == "sha256:" + hashlib.sha256(b"12345").hexdigest()
    )
    completed = await api.complete(ds, "files", prepared["upload_token"])
    assert completed.status_code == 201, completed.text


async def unprefix(db) -> None:
    """Make the database look as it did before migration 006: bare hex
    hashes, and the migration not yet applied."""
    for table in ("files_files", "files_pending"):
        await db.execute_write(
            f"UPDATE {table} SET content_hash = substr(content_hash, 8) "  # noqa: S608
            "WHERE content_hash LIKE 'sha256:%'"
        )
    await db.execute_write(
        "DELETE FROM files_migrations WHERE name = '006_content_hash_prefix'"
    )


async def hashes(db, table: str) -> dict[str, str | None]:
    rows = await db.execute(f"SELECT id, content_hash FROM {table}")  # noqa: S608
    return {row["id"]: row["content_hash"] for row in rows}


@pytest.mark.asyncio
async def test_bare_hex_hashes_from_before_get_the_prefix(make_ds, api, upload):
    ds1 = await make_ds()
    done = await upload(ds1, "files", "done.txt", b"done")
    token = (await api.prepare(ds1, "files", "sent.txt", 4)).json()["upload_token"]
    assert (await api.send(ds1, "files", token, b"sent")).status_code == 200
    db1 = ds1.get_internal_database()
    # A hash that is not a bare sha256 is left alone.
    other = await upload(ds1, "files", "other.txt", b"other")
    await unprefix(db1)
    await db1.execute_write(
        "UPDATE files_files SET content_hash = 'md5:abc' WHERE id = ?", [other["id"]]
    )
    assert (await hashes(db1, "files_files"))[done["id"]] == (
        hashlib.sha256(b"done").hexdigest()
    )
    await ds1.invoke_shutdown()

    ds2 = await make_ds()
    db2 = ds2.get_internal_database()
    expected = {
        done["id"]: "sha256:" + hashlib.sha256(b"done").hexdigest(),
        other["id"]: "md5:abc",
    }
    assert await hashes(db2, "files_files") == expected
    assert list((await hashes(db2, "files_pending")).values()) == [
        "sha256:" + hashlib.sha256(b"sent").hexdigest()
    ]
    completed = await api.complete(ds2, "files", token)
    assert completed.json()["file"]["content_hash"] == (
        "sha256:" + hashlib.sha256(b"sent").hexdigest()
    )
    # Search still follows renames after the migration replaced its trigger.
    renamed = await ds2.client.post(
        done["url"] + "/-/update",
        json={"update": {"filename": "zebra.txt"}},
        actor=ALICE,
    )
    assert renamed.status_code == 200, renamed.text
    found = await ds2.client.get("/-/files/search.json?q=zebra", actor=ALICE)
    assert [f["id"] for f in found.json()["files"]] == [done["id"]]
    await ds2.invoke_shutdown()

    # Idempotent: another start changes nothing.
    ds3 = await make_ds()
    files = await hashes(ds3.get_internal_database(), "files_files")
    assert files[done["id"]] == expected[done["id"]]
    assert files[other["id"]] == "md5:abc"


async def file_json(ds, file_id: str) -> dict:
    response = await ds.client.get(f"/-/files/{file_id}.json", actor=ALICE)
    return response.json()["file"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "update,named",
    [
        ({"colour": "red"}, ["'colour'"]),
        ({"search_text": "new", "colour": "red"}, ["'colour'"]),
        ({"size": 1, "content_hash": "x"}, ["'content_hash'", "'size'"]),
    ],
)
async def test_unknown_update_fields_are_refused_by_name(
    make_ds, upload, update, named
):
    ds = await make_ds()
    file = await upload(ds, "files", "a.txt", b"abc")
    response = await ds.client.post(
        file["url"] + "/-/update", json={"update": update}, actor=ALICE
    )
    assert response.status_code == 400
    body = response.json()
    assert body["ok"] is False
    for name in named:
        assert name in body["errors"][0]
    assert await file_json(ds, file["id"]) == file


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "body",
    [
        {"update": "search_text"},
        {"update": ["search_text"]},
        {"update": None},
        {"search_text": "no update key"},
        # One bad value: the good one is not written either.
        {"update": {"search_text": "new", "filename": "../escape"}},
    ],
)
async def test_a_bad_update_changes_nothing(make_ds, upload, body):
    ds = await make_ds()
    file = await upload(ds, "files", "a.txt", b"abc")
    response = await ds.client.post(file["url"] + "/-/update", json=body, actor=ALICE)
    assert response.status_code == 400, response.text
    assert response.json()["ok"] is False
    assert await file_json(ds, file["id"]) == file
