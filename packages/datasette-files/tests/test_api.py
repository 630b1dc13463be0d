"""The HTTP API and pages doing their everyday jobs, as the README shows them."""

from __future__ import annotations

import re

import pytest
from testkit import ALICE

FILE_ID = re.compile(r"^df-[0-9a-z]{26}$")
FILE_KEYS = {
    "id",
    "filename",
    "content_type",
    "content_hash",
    "size",
    "width",
    "height",
    "source_slug",
    "uploaded_by",
    "created_at",
    "url",
    "download_url",
    "thumbnail_url",
}


@pytest.mark.asyncio
async def test_prepare_says_how_to_send_the_bytes(make_ds, api):
    ds = await make_ds()
    response = await api.prepare(ds, "files", "notes.txt", 5, "text/plain")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert FILE_ID.match(body["file_id"])
    assert (body["filename"], body["content_type"], body["size"]) == (
        "notes.txt",
        "text/plain",
        5,
    )
    assert body["expires_in"] == 3600
    upload = body["upload"]
    assert upload["mode"] == "proxy"
    assert upload["url"] == "/-/files/upload/files/-/upload"
    assert upload["headers"]["X-Upload-Token"] == body["upload_token"]
    assert body["complete_url"] == "/-/files/upload/files/-/complete"
    assert body["abort_url"] == "/-/files/upload/files/-/abort"


@pytest.mark.asyncio
async def test_the_file_object(make_ds, upload):
    ds = await make_ds()
    file = await upload(ds, "files", "notes.txt", b"hello", content_type="text/plain")
    assert FILE_KEYS <= set(file)
    assert FILE_ID.match(file["id"])
    assert file["filename"] == "notes.txt"
    assert file["content_type"] == "text/plain"
    assert file["size"] == 5
    assert file["source_slug"] == "files"
    assert file["uploaded_by"] == "alice"
    assert file["url"] == f"/-/files/{file['id']}"
    assert file["download_url"] == f"/-/files/{file['id']}/download"
    assert file["thumbnail_url"] == f"/-/files/{file['id']}/thumbnail"
    fetched = await ds.client.get(file["url"] + ".json", actor=ALICE)
    assert fetched.json() == {"ok": True, "file": file}


@pytest.mark.asyncio
async def test_every_url_respects_base_url(make_ds, api):
    ds = await make_ds(settings={"base_url": "/prefix/"})

    async def post(url, **kwargs):
        # URLs from the API already carry the prefix: send them as they are.
        return await ds.client.request(
            "POST", url, avoid_path_rewrites=True, actor=ALICE, **kwargs
        )

    prepared = (await api.prepare(ds, "files", "a.txt", 3)).json()
    for url in (prepared["upload"]["url"], prepared["complete_url"]):
        assert url.startswith("/prefix/-/files/upload/files/-/")
    sent = await post(
        prepared["upload"]["url"],
        content=b"abc",
        headers=prepared["upload"]["headers"],
    )
    assert sent.status_code == 200, sent.text
    completed = await post(
        prepared["complete_url"], json={"upload_token": prepared["upload_token"]}
    )
    file = completed.json()["file"]
    for key in ("url", "download_url", "thumbnail_url"):
        assert file[key].startswith("/prefix/-/files/df-")
    download = await ds.client.request(
        "GET", file["download_url"], avoid_path_rewrites=True, actor=ALICE
    )
    assert download.content == b"abc"
    index = await ds.client.get("/-/files", actor=ALICE)
    assert 'href="/prefix/-/files/source/files"' in index.text


@pytest.mark.asyncio
async def test_source_listing_pages_newest_first(make_ds, upload):
    ds = await make_ds()
    names = [f"file-{i}.txt" for i in range(5)]
    for name in names:
        await upload(ds, "files", name, b"x")
    seen = []
    url = "/-/files/source/files.json?_size=2"
    while url:
        page = (await ds.client.get(url, actor=ALICE)).json()
        assert page["source"]["slug"] == "files"
        assert len(page["files"]) <= 2
        seen.extend(f["filename"] for f in page["files"])
        url = page["next_url"]
    assert seen == list(reversed(names))

    html = await ds.client.get("/-/files/source/files?_size=2", actor=ALICE)
    assert html.text.count("file-") >= 2
    next_link = re.search(r'href="([^"]+)" rel="next"', html.text).group(1)
    second = await ds.client.get(next_link.replace("&amp;", "&"), actor=ALICE)
    assert "file-2.txt" in second.text and "file-4.txt" not in second.text


@pytest.mark.asyncio
async def test_update_and_delete(make_ds, upload, snapshot, tmp_path):
    ds = await make_ds()
    empty = await snapshot(ds)
    file = await upload(ds, "files", "draft.txt", b"draft")
    updated = await ds.client.post(
        file["url"] + "/-/update",
        json={"update": {"search_text": "x" * 100_000, "filename": "final.txt"}},
        actor=ALICE,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["file"]["filename"] == "final.txt"
    assert len(updated.json()["file"]["search_text"]) == 100_000

    deleted = await ds.client.post(file["url"] + "/-/delete", actor=ALICE)
    assert deleted.json() == {"ok": True, "deleted": file["id"]}
    assert (await ds.client.get(file["url"] + ".json", actor=ALICE)).status_code == 404
    assert await snapshot(ds) == empty


@pytest.mark.asyncio
async def test_batch_returns_the_files_it_may_show(make_ds, upload):
    ds = await make_ds()
    a = await upload(ds, "files", "a.txt", b"a")
    b = await upload(ds, "files", "b.txt", b"b")
    response = await ds.client.get(
        f"/-/files/batch.json?id={a['id']}&id={b['id']}&id=df-nope", actor=ALICE
    )
    body = response.json()
    assert set(body["files"]) == {a["id"], b["id"]}
    assert body["files"][a["id"]]["filename"] == "a.txt"
    assert body["missing"] == ["df-nope"]


@pytest.mark.asyncio
async def test_pages_offer_only_what_the_actor_may_do(make_ds, upload):
    ds = await make_ds(
        permissions={
            "files-browse": {"id": ["alice", "viewer"]},
            "files-upload": {"id": "alice"},
            "files-edit": {"id": "alice"},
            "files-delete": {"id": "alice"},
        }
    )
    file = await upload(ds, "files", "a.txt", b"a")
    pages = {}
    for name in ("alice", "viewer"):
        actor = {"id": name}
        pages[name] = {
            "source": (await ds.client.get("/-/files/source/files", actor=actor)).text,
            "file": (await ds.client.get(file["url"], actor=actor)).text,
        }
    assert 'class="files-upload-link"' in pages["alice"]["source"]
    assert 'class="files-upload-link"' not in pages["viewer"]["source"]
    for form in ('class="files-edit"', 'class="files-delete"'):
        assert form in pages["alice"]["file"]
        assert form not in pages["viewer"]["file"]
    for name in ("alice", "viewer"):
        assert f'href="{file["download_url"]}"' in pages[name]["file"]

    upload_page = await ds.client.get("/-/files/upload/files", actor=ALICE)
    assert "<datasette-file-uploader" in upload_page.text
    assert 'prepare-url="/-/files/upload/files/-/prepare"' in upload_page.text
    assert "source-url" not in upload_page.text
    # New rows on the source page are cloned from this, as its rows are drawn.
    assert '<template id="files-row-template"><tr>' in pages["alice"]["source"]
    assert "files-row-template" not in pages["viewer"]["source"]


@pytest.mark.asyncio
async def test_files_link_in_datasette_menu(make_ds):
    ds = await make_ds()
    alice = await ds.client.get("/", actor=ALICE)
    bob = await ds.client.get("/", actor={"id": "bob"})
    assert 'href="/-/files"' in alice.text
    assert 'href="/-/files"' not in bob.text


@pytest.mark.asyncio
async def test_storage_debug_listing(make_ds, upload, tmp_path):
    ds = await make_ds(
        permissions={"debug-storages": {"id": "alice"}, "files-upload": True}
    )
    for name in ("a.txt", "b.txt", "c.txt"):
        await upload(ds, "files", name, b"x")
    (tmp_path / "files" / ".datasette-files-tmp-inflight").write_bytes(b"x")
    seen = []
    url = "/-/files/storages/list/files?limit=2"
    while True:
        page = (await ds.client.get(url, actor=ALICE)).json()
        seen.extend(f["path"] for f in page["files"])
        if not page["next_cursor"]:
            break
        url = f"/-/files/storages/list/files?limit=2&cursor={page['next_cursor']}"
    assert sorted(p.rsplit("-", 1)[1] for p in seen) == ["a.txt", "b.txt", "c.txt"]
