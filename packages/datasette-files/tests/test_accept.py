"""What a source accepts (issue 14): ``allowed_types``, checked at prepare
and against the bytes, and ``on_duplicate``. Through HTTP, on filesystem
sources; the S3 package tests direct uploads."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os

import pytest
from datasette.utils import StartupError
from PIL import Image
from testkit import ALICE

pytestmark = pytest.mark.asyncio

BOB = {"id": "bob"}


def image_bytes(kind: str, size: int = 8) -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (size, size), "teal").save(output, kind)
    return output.getvalue()


PNG = image_bytes("PNG")
JPEG = image_bytes("JPEG")
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script>"
SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg">'
    b"<script>alert(1)</script></svg>"
)
CSV = b"id,name\n1,alice\n2,bob\n"
IMAGES_AND_PDF = ["image/*", "application/pdf"]


async def accepting(make_ds, allowed_types, **more):
    """Datasette with one source, ``files``, that takes only ``allowed_types``."""
    return await make_ds(sources={"files": {"allowed_types": allowed_types, **more}})


async def send_all(api, ds, filename, data, content_type, form=False):
    """prepare (must pass) then the bytes; returns (token, upload response)."""
    prepared = await api.prepare(ds, "files", filename, len(data), content_type)
    assert prepared.status_code == 200, prepared.text
    token = prepared.json()["upload_token"]
    send = api.send_form if form else api.send
    return token, await send(ds, "files", token, data)


def stored_files(ds) -> list[str]:
    root = ds.plugin_config("datasette-files")["sources"]["files"]["config"]["root"]
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


# allowed_types at prepare


async def test_prepare_refuses_a_type_not_allowed_naming_the_allowed_ones(
    make_ds, api, json_error, snapshot
):
    ds = await accepting(make_ds, IMAGES_AND_PDF)
    before = await snapshot(ds)
    response = await api.prepare(ds, "files", "page.html", 10, "text/html")
    body = json_error(response, 415)
    assert "text/html" in body["error"]
    assert "image/*, application/pdf" in body["error"]
    assert body["allowed_types"] == IMAGES_AND_PDF
    assert await snapshot(ds) == before


@pytest.mark.parametrize(
    "allowed,content_type,accepted",
    [
        (["image/*"], "image/png", True),
        (["image/*"], "image/jpeg", True),
        (["image/*"], "application/pdf", False),
        (["image/*"], "imagex/png", False),
        (["image/png"], "image/jpeg", False),
        (["image/jpeg"], "image/jpg", True),
        (["Application/PDF"], "application/pdf", True),
        (["*/*"], "application/x-anything", True),
        (["text/*"], "text/csv", True),
        (["text/*"], "text/xml", True),
    ],
)
async def test_wildcards_and_exact_types(make_ds, api, allowed, content_type, accepted):
    ds = await accepting(make_ds, allowed)
    response = await api.prepare(ds, "files", "f.bin", 10, content_type)
    assert response.status_code == (200 if accepted else 415), response.text


async def test_allowed_files_upload_and_download_intact(make_ds, upload):
    ds = await accepting(make_ds, IMAGES_AND_PDF)
    for filename, data, content_type in (
        ("a.png", PNG, "image/png"),
        ("b.jpg", JPEG, "image/jpeg"),
        ("c.pdf", PDF, "application/pdf"),
    ):
        file = await upload(ds, "files", filename, data, content_type=content_type)
        download = await ds.client.get(file["download_url"], actor=ALICE)
        assert download.content == data


async def test_a_source_without_allowed_types_takes_anything(make_ds, upload):
    ds = await make_ds()
    file = await upload(ds, "files", "fake.png", HTML, content_type="image/png")
    assert file["content_type"] == "image/png"


# allowed_types against the bytes, proxied uploads


@pytest.mark.parametrize("form", [False, True], ids=["raw", "form"])
async def test_png_that_is_html_is_refused_after_the_bytes(
    make_ds, api, json_error, form
):
    ds = await accepting(make_ds, IMAGES_AND_PDF)
    token, response = await send_all(api, ds, "cat.png", HTML, "image/png", form)
    body = json_error(response, 415)
    assert "text/html" in body["error"] and "image/png" in body["error"]
    assert body["allowed_types"] == IMAGES_AND_PDF
    # Nothing stored, nothing registered, and the upload is over.
    assert stored_files(ds) == []
    rows = await ds.get_internal_database().execute(
        "SELECT (SELECT count(*) FROM files_files), (SELECT count(*) FROM files_pending)"
    )
    assert tuple(rows.first()) == (0, 0)
    json_error(await api.complete(ds, "files", token), 400)


async def test_refusal_of_a_large_upload_stops_before_the_storage(
    make_ds, api, json_error
):
    # Many chunks, the HTML at the start: refused once the first 4 KiB are in.
    ds = await accepting(make_ds, ["image/*"])
    data = HTML + b" " * (3 * 1024 * 1024)
    _, response = await send_all(api, ds, "big.png", data, "image/png")
    json_error(response, 415)
    assert stored_files(ds) == []


async def test_large_allowed_upload_arrives_byte_for_byte(make_ds, upload):
    # The first 4 KiB are held back for the sniff and then passed on: split
    # across chunks, they must still arrive whole and in order.
    ds = await accepting(make_ds, ["image/png"])
    data = PNG + os.urandom(2 * 1024 * 1024 + 123)
    file = await upload(ds, "files", "big.png", data, content_type="image/png")
    download = await ds.client.get(file["download_url"], actor=ALICE)
    assert hashlib.sha256(download.content).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize(
    "allowed,filename,data,content_type,accepted",
    [
        # Plain text and CSV carry no signature: judged by the declared type.
        (["image/*", "text/csv"], "a.csv", CSV, "text/csv", True),
        (
            ["text/plain"],
            "a.txt",
            b"MZ and BM start sentences too\n",
            "text/plain",
            True,
        ),
        # ... but a signature contradicting the declared type is refused.
        (["image/*", "text/csv"], "a.csv", PNG, "text/csv", False),
        (["image/*", "text/csv"], "a.csv", HTML, "text/csv", False),
        # Image types: HTML, SVG or plain text behind an image name.
        (["image/*"], "a.png", SVG, "image/png", False),
        (["image/*"], "a.png", b"just some text", "image/png", False),
        (["image/*"], "a.gif", b"  \n<script>alert(1)</script>", "image/gif", False),
        (
            ["image/*"],
            "a.png",
            # Binary noise, the same in every run and pytest-xdist worker.
            (hashlib.sha256(b"noise").digest() * 2).replace(b"\x89", b"x"),
            "image/png",
            False,
        ),
        (["image/*"], "empty.png", b"", "image/png", False),
        # A JPEG named .png is still an image; is image/jpeg allowed?
        (["image/*"], "a.png", JPEG, "image/png", True),
        (["image/png"], "a.png", JPEG, "image/png", False),
        # SVG is accepted only as SVG.
        (["image/svg+xml"], "a.svg", SVG, "image/svg+xml", True),
        (["image/*"], "a.svg", HTML, "image/svg+xml", False),
        # A generic declared type counts as what its bytes are.
        (["application/octet-stream"], "a.bin", b"\x00\x01\x02" * 99, None, True),
        (["application/octet-stream"], "a.bin", PNG, None, False),
        (["application/octet-stream", "image/png"], "a.bin", PNG, None, True),
        (["application/octet-stream"], "a.bin", HTML, None, False),
        # HTML is fine where HTML is allowed.
        (["text/html"], "a.html", HTML, "text/html", True),
        (["application/pdf"], "a.pdf", b"not a pdf at all", "application/pdf", False),
    ],
)
async def test_bytes_against_declared_type_and_allowlist(
    make_ds, api, allowed, filename, data, content_type, accepted
):
    ds = await accepting(make_ds, allowed)
    content_type = content_type or "application/octet-stream"
    token, response = await send_all(api, ds, filename, data, content_type)
    if accepted:
        assert response.status_code == 200, response.text
        completed = await api.complete(ds, "files", token)
        assert completed.status_code == 201, completed.text
    else:
        assert response.status_code == 415, response.text
        assert stored_files(ds) == []


async def test_allowed_types_and_on_duplicate_are_not_passed_to_the_storage(
    make_ds,
):
    # The filesystem storage refuses unknown config keys; these are the core's.
    ds = await accepting(make_ds, ["image/*"], on_duplicate="reject")
    response = await ds.client.get("/-/files/sources.json", actor=ALICE)
    [source] = response.json()["sources"]
    assert source["available"] is True
    assert source["allowed_types"] == ["image/*"]
    assert source["on_duplicate"] == "reject"


# Startup errors


@pytest.mark.parametrize(
    "key,value,words",
    [
        ("allowed_types", [], "non-empty list"),
        ("allowed_types", "image", "not a MIME type"),
        ("allowed_types", ["image/png", "image/"], "'image/'"),
        ("allowed_types", ["image/png; q=1"], "not a MIME type"),
        ("allowed_types", [3], "not a MIME type"),
        ("allowed_types", {"image/png": True}, "non-empty list"),
        ("on_duplicate", "skip", "allow, reuse, reject"),
        ("on_duplicate", True, "allow, reuse, reject"),
    ],
)
async def test_bad_values_stop_startup_naming_source_and_key(
    make_ds, key, value, words
):
    ds = await make_ds(sources={"docs": {key: value}}, start=False)
    with pytest.raises(StartupError) as error:
        await ds.invoke_startup()
    message = str(error.value)
    assert message.startswith("datasette-files source 'docs'")
    assert f"'{key}'" in message
    assert words in message


# on_duplicate


async def duplicate_ds(make_ds, mode, **plugin):
    return await make_ds(
        sources={"files": {"on_duplicate": mode}, "other": {}}, plugin=plugin
    )


async def test_on_duplicate_allow_keeps_both(make_ds, upload):
    ds = await duplicate_ds(make_ds, "allow")
    first = await upload(ds, "files", "a.txt", b"same bytes")
    second = await upload(ds, "files", "b.txt", b"same bytes")
    assert first["id"] != second["id"]
    assert first["content_hash"] == second["content_hash"]
    assert len(stored_files(ds)) == 2


@pytest.mark.parametrize("form", [False, True], ids=["raw", "form"])
async def test_on_duplicate_reuse_returns_the_existing_file(make_ds, api, upload, form):
    ds = await duplicate_ds(make_ds, "reuse")
    first = await upload(ds, "files", "a.txt", b"same bytes")
    token, sent = await send_all(api, ds, "b.txt", b"same bytes", "text/plain", form)
    assert sent.status_code == 200
    completed = await api.complete(ds, "files", token)
    assert completed.status_code == 200, completed.text
    body = completed.json()
    assert body["ok"] is True
    assert body["duplicate_of"] == first["id"]
    assert body["file"]["id"] == first["id"]
    assert body["file"]["filename"] == "a.txt"
    # The new bytes are gone; one file, one row.
    assert len(stored_files(ds)) == 1
    listing = await ds.client.get("/-/files/source/files.json", actor=ALICE)
    assert [f["id"] for f in listing.json()["files"]] == [first["id"]]
    # Different bytes, or the same bytes in another source, are new files.
    assert (await upload(ds, "files", "c.txt", b"other bytes"))["id"] != first["id"]
    assert (await upload(ds, "other", "a.txt", b"same bytes"))["id"] != first["id"]


async def test_on_duplicate_reject_answers_409_with_the_existing_id(
    make_ds, api, upload, json_error, snapshot
):
    ds = await duplicate_ds(make_ds, "reject")
    first = await upload(ds, "files", "a.txt", b"same bytes")
    before = await snapshot(ds)
    token, sent = await send_all(api, ds, "b.txt", b"same bytes", "text/plain")
    assert sent.status_code == 200
    body = json_error(await api.complete(ds, "files", token), 409)
    assert body["duplicate_of"] == first["id"]
    assert first["id"] in body["error"]
    assert await snapshot(ds) == before


async def test_identical_uploads_completing_at_once_register_one_file(make_ds, api):
    ds = await duplicate_ds(make_ds, "reuse")
    tokens = []
    for name in ("a.txt", "b.txt", "c.txt"):
        token, sent = await send_all(api, ds, name, b"same bytes", "text/plain")
        assert sent.status_code == 200
        tokens.append(token)
    replies = await asyncio.gather(*(api.complete(ds, "files", t) for t in tokens))
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [200, 200, 201], [reply.text for reply in replies]
    [created] = [reply.json()["file"] for reply in replies if reply.status_code == 201]
    assert {reply.json()["file"]["id"] for reply in replies} == {created["id"]}
    assert len(stored_files(ds)) == 1


async def test_on_duplicate_hashes_large_proxied_uploads_before_deciding(
    make_ds, api, upload
):
    # Past inline_hash_max_size the hash is normally computed after complete.
    ds = await duplicate_ds(make_ds, "reuse", inline_hash_max_size=16)
    data = os.urandom(100_000)
    first = await upload(ds, "files", "a.bin", data)
    assert first["content_hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
    token, _ = await send_all(api, ds, "b.bin", data, "application/octet-stream")
    completed = await api.complete(ds, "files", token)
    assert completed.json()["duplicate_of"] == first["id"]
    assert len(stored_files(ds)) == 1


async def test_content_hash_index_exists(make_ds):
    ds = await make_ds()
    rows = await ds.get_internal_database().execute(
        "SELECT sql FROM sqlite_master WHERE name = 'files_files_content_hash'"
    )
    assert "(source_slug, content_hash)" in rows.first()[0]


# The file page


async def test_file_page_lists_files_with_the_same_hash_the_actor_may_browse(
    make_ds, upload
):
    both = {"id": ["alice", "bob"]}
    ds = await make_ds(
        sources={"files": {}, "other": {}},
        permissions={
            "files-browse": {
                "files": {"allow": both},
                "other": {"allow": {"id": "alice"}},
            },
            "files-upload": {"id": "alice"},
        },
    )
    first = await upload(ds, "files", "first.txt", b"shared content")
    second = await upload(ds, "files", "second.txt", b"shared content")
    hidden = await upload(ds, "other", "elsewhere.txt", b"shared content")
    unrelated = await upload(ds, "files", "unrelated.txt", b"something else")

    page = (await ds.client.get(first["url"], actor=ALICE)).text
    assert "Files with the same content" in page
    assert second["url"] in page and hidden["url"] in page
    assert unrelated["url"] not in page
    assert f'href="{first["url"]}"' not in page.split("files-same-hash")[1]

    page = (await ds.client.get(first["url"], actor=BOB)).text
    assert second["url"] in page
    assert hidden["url"] not in page and "elsewhere.txt" not in page

    page = (await ds.client.get(unrelated["url"], actor=ALICE)).text
    assert "Files with the same content" not in page


async def test_upload_pages_offer_only_the_allowed_types(make_ds):
    # The uploader refuses other files before sending a byte, and the file
    # chooser offers only these types.
    ds = await accepting(make_ds, IMAGES_AND_PDF)
    for path in ("/-/files/upload/files", "/-/files/source/files"):
        page = await ds.client.get(path, actor=ALICE)
        assert page.status_code == 200, page.text
        assert f'accept="{",".join(IMAGES_AND_PDF)}"' in page.text
    plain = await make_ds()
    page = await plain.client.get("/-/files/upload/files", actor=ALICE)
    assert (
        "accept=" not in page.text.split("<datasette-file-uploader", 1)[1].split(">")[0]
    )
