"""Security: download headers, escaping, cross-site requests, token storage."""

from __future__ import annotations

import hashlib
from urllib.parse import unquote

import pytest
from testkit import ALICE


@pytest.mark.asyncio
async def test_download_headers_for_a_non_ascii_name(make_ds, upload):
    ds = await make_ds()
    name = "résumé 📄.pdf"
    file = await upload(ds, "files", name, b"%PDF-1.4", content_type="application/pdf")
    assert file["filename"] == name
    response = await ds.client.get(file["download_url"], actor=ALICE)

    disposition = response.headers["content-disposition"]
    disposition.encode("ascii")  # a header value must be plain ASCII
    assert disposition.startswith("attachment;")
    assert 'filename="' in disposition
    encoded = disposition.split("filename*=UTF-8''", 1)[1].split(";")[0]
    assert unquote(encoded) == name
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in response.headers["content-security-policy"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "name",
    ['quote".txt', "semi;colon.txt", "back`tick.txt", "space name.txt"],
)
async def test_header_breaking_names_stay_inside_the_header(make_ds, upload, name):
    ds = await make_ds()
    file = await upload(ds, "files", name, b"x")
    response = await ds.client.get(file["download_url"], actor=ALICE)
    disposition = response.headers["content-disposition"]
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback and '"' not in fallback and ";" not in fallback
    encoded = disposition.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == name


@pytest.mark.asyncio
async def test_html_is_downloaded_never_rendered(make_ds, upload):
    ds = await make_ds()
    page = b"<script>document.cookie</script>"
    file = await upload(ds, "files", "page.html", page, content_type="text/html")
    response = await ds.client.get(file["download_url"], actor=ALICE)
    assert response.content == page
    assert response.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.asyncio
async def test_thumbnail_is_a_locked_down_svg(make_ds, upload):
    ds = await make_ds()
    file = await upload(ds, "files", "a.txt", b"x", content_type="text/plain")
    response = await ds.client.get(file["thumbnail_url"], actor=ALICE)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.text.lstrip().startswith("<svg")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in response.headers["content-security-policy"]


HOSTILE_NAMES = ['<script>alert("x")<!--.txt', '"><img src=x onerror=alert(1)>.png']


@pytest.mark.asyncio
@pytest.mark.parametrize("name", HOSTILE_NAMES)
async def test_filenames_are_escaped_in_pages(make_ds, upload, name):
    ds = await make_ds()
    file = await upload(ds, "files", name, b"x", content_type="image/png")
    assert file["filename"] == name
    for path in ("/-/files/source/files", file["url"]):
        page = await ds.client.get(path, actor=ALICE)
        assert page.status_code == 200
        assert "<script>alert" not in page.text
        assert "<img src=x" not in page.text
        assert "&lt;" in page.text and "&gt;" in page.text, path


@pytest.mark.asyncio
async def test_search_text_is_escaped_on_the_file_page(make_ds, upload):
    ds = await make_ds()
    file = await upload(ds, "files", "a.txt", b"x")
    updated = await ds.client.post(
        file["url"] + "/-/update",
        json={"update": {"search_text": "<script>alert(1)</script>"}},
        actor=ALICE,
    )
    assert updated.status_code == 200
    page = await ds.client.get(file["url"], actor=ALICE)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert(1)" not in page.text


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "headers,status",
    [
        ({"sec-fetch-site": "cross-site"}, 403),
        ({"origin": "https://evil.example"}, 403),
        ({"sec-fetch-site": "same-origin"}, 200),
    ],
    ids=["Sec-Fetch-Site cross-site", "foreign Origin", "same-origin"],
)
async def test_cross_site_posts_are_refused(make_ds, snapshot, headers, status):
    ds = await make_ds()
    before = await snapshot(ds)
    response = await ds.client.post(
        "/-/files/upload/files/-/prepare",
        json={"filename": "csrf.txt", "size": 1},
        headers=headers,
        cookies={"ds_actor": ds.client.actor_cookie(ALICE)},
    )
    assert response.status_code == status
    if status == 403:
        assert await snapshot(ds) == before
    else:
        assert len((await snapshot(ds))["pending"]) == 1


@pytest.mark.asyncio
async def test_tokens_are_stored_hashed(make_ds, api, tmp_path, internal_dump):
    ds = await make_ds()
    tokens = []
    for name in ("a.txt", "b.txt"):
        prepared = await api.prepare(ds, "files", name, 1)
        tokens.append(prepared.json()["upload_token"])
    assert tokens[0] != tokens[1]
    assert all(len(token) >= 32 for token in tokens)
    await api.send(ds, "files", tokens[0], b"a")

    dump = internal_dump(str(tmp_path / "internal.db"))
    for token in tokens:
        assert token not in dump
        assert hashlib.sha256(token.encode()).hexdigest() in dump


@pytest.mark.asyncio
async def test_stored_path_never_comes_from_the_filename(make_ds, upload, tmp_path):
    ds = await make_ds()
    await upload(ds, "files", "..%2F..%2Fescape.txt", b"x")
    await upload(ds, "files", "—ünïcödé—.txt", b"y")
    stored = sorted(p.name for p in (tmp_path / "files").iterdir())
    assert len(stored) == 2
    for name in stored:
        assert name.isascii() and "/" not in name and not name.startswith(".")
    assert not (tmp_path / "escape.txt").exists()
