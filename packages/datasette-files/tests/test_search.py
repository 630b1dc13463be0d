"""Full-text search: /-/files/search and /-/files/search.json."""

from __future__ import annotations

import pytest
from testkit import ALICE


async def search(ds, query: str, actor=ALICE) -> list[str]:
    response = await ds.client.get(
        "/-/files/search.json", params={"q": query}, actor=actor
    )
    assert response.status_code == 200, response.text
    return [f["filename"] for f in response.json()["files"]]


@pytest.mark.asyncio
async def test_finds_files_by_name_and_search_text(make_ds, upload):
    ds = await make_ds()
    report = await upload(ds, "files", "quarterly-report.pdf", b"1")
    await upload(ds, "files", "holiday photo.jpg", b"2", content_type="image/jpeg")
    assert await search(ds, "quarterly") == ["quarterly-report.pdf"]
    assert await search(ds, "quart") == ["quarterly-report.pdf"]
    assert await search(ds, "photo") == ["holiday photo.jpg"]
    assert await search(ds, "budget") == []

    edited = await ds.client.post(
        report["url"] + "/-/update",
        json={"update": {"search_text": "budget forecast 2025"}},
        actor=ALICE,
    )
    assert edited.status_code == 200
    assert edited.json()["file"]["search_text"] == "budget forecast 2025"
    assert await search(ds, "budget") == ["quarterly-report.pdf"]
    assert await search(ds, report["id"]) == ["quarterly-report.pdf"]
    # Newest first when everything matches.
    assert await search(ds, "") == ["holiday photo.jpg", "quarterly-report.pdf"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "query", ['"', "AND", "OR NEAR(", "a*b", "-x", "col:umn", "^", '"unclosed', "((("]
)
async def test_search_syntax_is_never_an_error(make_ds, upload, query):
    ds = await make_ds()
    await upload(ds, "files", "a.txt", b"a")
    response = await ds.client.get(
        "/-/files/search.json", params={"q": query}, actor=ALICE
    )
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True
    page = await ds.client.get("/-/files/search", params={"q": query}, actor=ALICE)
    assert page.status_code == 200


@pytest.mark.asyncio
async def test_search_only_shows_sources_the_actor_may_browse(make_ds, upload):
    ds = await make_ds(
        sources={"public": {}, "private": {}},
        permissions={
            "files-browse": {
                "public": {"allow": True},
                "private": {"allow": {"id": "alice"}},
            },
            "files-upload": {"id": "alice"},
        },
    )
    await upload(ds, "public", "shared notes.txt", b"1")
    await upload(ds, "private", "secret notes.txt", b"2")
    assert await search(ds, "notes") == ["secret notes.txt", "shared notes.txt"]
    assert await search(ds, "notes", actor={"id": "bob"}) == ["shared notes.txt"]
    assert await search(ds, "notes", actor=None) == ["shared notes.txt"]
    narrowed = await ds.client.get(
        "/-/files/search.json", params={"q": "notes", "source": "public"}, actor=ALICE
    )
    assert [f["filename"] for f in narrowed.json()["files"]] == ["shared notes.txt"]


@pytest.mark.asyncio
async def test_deleted_and_removed_files_are_not_found(make_ds, upload):
    ds1 = await make_ds(sources={"files": {}, "old": {}})
    doomed = await upload(ds1, "files", "doomed.txt", b"1")
    await upload(ds1, "old", "archived.txt", b"2")
    deleted = await ds1.client.post(doomed["url"] + "/-/delete", actor=ALICE)
    assert deleted.status_code == 200
    assert await search(ds1, "doomed") == []
    assert await search(ds1, "archived") == ["archived.txt"]
    await ds1.invoke_shutdown()

    ds2 = await make_ds(sources={"files": {}})
    assert await search(ds2, "archived") == []


@pytest.mark.asyncio
async def test_search_pages_through_every_match_once(make_ds, upload):
    ds = await make_ds()
    names = [f"match-{i}.txt" for i in range(7)]
    for name in names:
        await upload(ds, "files", name, b"x")
    seen = []
    url = "/-/files/search.json?q=match&_size=3"
    while url:
        page = (await ds.client.get(url, actor=ALICE)).json()
        assert len(page["files"]) <= 3
        seen.extend(f["filename"] for f in page["files"])
        url = page["next_url"]
    assert seen == list(reversed(names))


@pytest.mark.asyncio
async def test_search_page_escapes_the_query(make_ds, upload):
    ds = await make_ds()
    page = await ds.client.get(
        "/-/files/search", params={"q": "<script>alert(1)</script>"}, actor=ALICE
    )
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;" in page.text
