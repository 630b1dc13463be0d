"""Bytes in, the same bytes out: uploads of every shape, downloads and Ranges."""

from __future__ import annotations

import hashlib
import os

import pytest
from testkit import ALICE

MiB = 1024 * 1024

SIZES = {
    "empty": 0,
    "1 byte": 1,
    "3 MiB + 17 bytes": 3 * MiB + 17,
}


async def pieces(data: bytes, size: int = 64 * 1024):
    """The body as a stream of small pieces, as a slow client sends it."""
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def send_raw(ds, api, token, data):
    return await api.send(ds, "files", token, data)


async def send_raw_in_pieces(ds, api, token, data):
    return await ds.client.post(
        "/-/files/upload/files/-/upload",
        content=pieces(data),
        headers={"content-type": "application/octet-stream", "x-upload-token": token},
        actor=ALICE,
    )


async def send_form(ds, api, token, data):
    return await api.send_form(ds, "files", token, data)


async def send_form_in_pieces(ds, api, token, data):
    body, content_type = api.form_body(
        [("upload_token", token), ("file", ("data.bin", data))]
    )
    return await ds.client.post(
        "/-/files/upload/files/-/upload",
        content=pieces(body, 1000),
        headers={"content-type": content_type},
        actor=ALICE,
    )


TRANSPORTS = {
    "raw body": send_raw,
    "raw body in 64 KiB pieces": send_raw_in_pieces,
    "multipart form": send_form,
    "multipart form in 1000-byte pieces": send_form_in_pieces,
}


@pytest.mark.asyncio
@pytest.mark.parametrize("size_name", SIZES)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_round_trip(make_ds, api, transport, size_name):
    ds = await make_ds()
    data = os.urandom(SIZES[size_name])
    sha256 = "sha256:" + hashlib.sha256(data).hexdigest()
    prepared = await api.prepare(ds, "files", "data.bin", len(data))
    token = prepared.json()["upload_token"]

    sent = await TRANSPORTS[transport](ds, api, token, data)
    assert sent.status_code == 200, sent.text
    assert sent.json()["content_hash"] == sha256
    completed = await api.complete(ds, "files", token)
    assert completed.status_code == 201, completed.text
    file = completed.json()["file"]

    assert (file["size"], file["content_hash"]) == (len(data), sha256)
    download = await ds.client.get(file["download_url"], actor=ALICE)
    assert download.status_code == 200
    assert download.headers["content-length"] == str(len(data))
    assert "sha256:" + hashlib.sha256(download.content).hexdigest() == sha256
    metadata = await ds.client.get(file["url"] + ".json", actor=ALICE)
    assert metadata.json()["file"]["content_hash"] == sha256


@pytest.mark.asyncio
@pytest.mark.parametrize("piece", [1, 7, 13])
async def test_a_form_cut_inside_its_part_headers(make_ds, api, piece):
    # A network may cut the body anywhere, header names included: a cut
    # inside "Content-Disposition" lost the name's first half, and the
    # file part was then not found (a 400).
    ds = await make_ds()
    data = b"hello, world"
    token = (await api.prepare(ds, "files", "data.bin", len(data))).json()[
        "upload_token"
    ]
    body, content_type = api.form_body(
        [("upload_token", token), ("file", ("data.bin", data))]
    )
    sent = await ds.client.post(
        "/-/files/upload/files/-/upload",
        content=pieces(body, piece),
        headers={"content-type": content_type},
        actor=ALICE,
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["content_hash"] == "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.asyncio
async def test_stored_on_disk_under_the_source_root(make_ds, upload, tmp_path):
    ds = await make_ds()
    file = await upload(ds, "files", "notes.txt", b"hello")
    (stored,) = os.listdir(tmp_path / "files")
    assert stored.endswith("-notes.txt")
    assert file["id"] == "df-" + stored.split("-")[0]
    assert (tmp_path / "files" / stored).read_bytes() == b"hello"


@pytest.mark.asyncio
async def test_a_file_gone_from_disk_is_a_404(make_ds, upload, tmp_path, json_error):
    ds = await make_ds()
    file = await upload(ds, "files", "notes.txt", b"hello")
    (stored,) = os.listdir(tmp_path / "files")
    os.remove(tmp_path / "files" / stored)
    response = await ds.client.get(file["download_url"], actor={"id": "alice"})
    body = json_error(response, 404)
    assert body["errors"] == ["File is missing from its storage"]
    # The storage's own message (an absolute path) is not shown.
    assert str(tmp_path) not in response.text


SIZE = 3 * MiB + 17
# (Range header, first byte, last byte) on a file of SIZE bytes.
RANGES = [
    ("bytes=0-0", 0, 0),
    ("bytes=5-", 5, SIZE - 1),
    ("bytes=-10", SIZE - 10, SIZE - 1),
    ("bytes=10-19", 10, 19),
    (f"bytes={MiB - 5}-{MiB + 5}", MiB - 5, MiB + 5),
    (f"bytes={2 * MiB - 1}-{2 * MiB}", 2 * MiB - 1, 2 * MiB),
    (f"bytes={MiB}-{3 * MiB}", MiB, 3 * MiB),
    (f"bytes={SIZE - 3}-{SIZE + 1000}", SIZE - 3, SIZE - 1),
    (f"bytes=-{SIZE + 1}", 0, SIZE - 1),
    (f"bytes={SIZE - 1}-", SIZE - 1, SIZE - 1),
]


@pytest.fixture(scope="module")
def big_data():
    return os.urandom(SIZE)


@pytest.mark.asyncio
@pytest.mark.parametrize("header,first,last", RANGES, ids=[r[0] for r in RANGES])
async def test_range(make_ds, upload, big_data, header, first, last):
    ds = await make_ds()
    file = await upload(ds, "files", "big.bin", big_data)
    response = await ds.client.get(
        file["download_url"], headers={"range": header}, actor=ALICE
    )
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.content == big_data[first : last + 1]


UNSATISFIABLE = [
    f"bytes={SIZE}-",
    f"bytes={SIZE + 5}-{SIZE + 10}",
    "bytes=-0",
]


@pytest.mark.asyncio
@pytest.mark.parametrize("header", UNSATISFIABLE)
async def test_unsatisfiable_range(make_ds, upload, header):
    ds = await make_ds()
    file = await upload(ds, "files", "big.bin", b"x" * SIZE)
    response = await ds.client.get(
        file["download_url"], headers={"range": header}, actor=ALICE
    )
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    assert response.json()["ok"] is False


# Anything that is not one well-formed byte range is ignored: the whole file.
# (RFC 9110: a range whose last byte is before its first is invalid, not
# unsatisfiable, so "bytes=5-2" is ignored too.)
IGNORED = [
    "bytes=5-2",
    "bytes=abc",
    "items=0-5",
    "bytes=0-1,5-6",
    "bytes=-",
    "bytes= 1-2",
    "🙂",
]


@pytest.mark.asyncio
@pytest.mark.parametrize("header", IGNORED)
async def test_garbage_range_gets_the_whole_file(make_ds, upload, header):
    ds = await make_ds()
    file = await upload(ds, "files", "small.bin", b"0123456789")
    response = await ds.client.get(
        file["download_url"], headers={"range": header.encode()}, actor=ALICE
    )
    assert response.status_code == 200
    assert "content-range" not in response.headers
    assert response.content == b"0123456789"


@pytest.mark.asyncio
async def test_download_advertises_ranges_and_etag(make_ds, upload):
    ds = await make_ds()
    file = await upload(ds, "files", "a.txt", b"abc", content_type="text/plain")
    response = await ds.client.get(file["download_url"], actor=ALICE)
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"] == f'"{file["content_hash"]}"'
    assert response.headers["content-type"].startswith("text/plain")
