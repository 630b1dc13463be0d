"""The files pages in a browser: index, source listing, file page, and what
each actor is shown (and refused)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from testkit import ALICE

pytestmark = pytest.mark.browser


VIEWER = {"id": "viewer"}
BOB = {"id": "bob"}

# alice may do everything; viewer may only browse; bob may do nothing.
ROLES = {
    "files-browse": {"id": ["alice", "viewer"]},
    "files-upload": {"id": "alice"},
    "files-edit": {"id": "alice"},
    "files-delete": {"id": "alice"},
}


def open_menu(page):
    page.locator("details.nav-menu > summary").click()
    return page.locator(".nav-menu-inner")


def test_index_lists_sources_with_counts_and_what_you_can_do(
    start_datasette, open_page
):
    server = start_datasette(
        sources={"files": {}, "archive": {}},
        permissions={
            "files-browse": {"id": ["alice", "viewer"]},
            "files-upload": {"files": {"allow": {"id": "alice"}}},
            "files-delete": {"id": "alice"},
        },
    )
    server.upload("files", "a.txt", b"a")
    server.upload("files", "b.txt", b"b")

    page = open_page(server, "/", actor=ALICE)
    page.locator(".page-action-menu summary").click()
    expect(page.get_by_role("menuitem", name="Files")).to_have_attribute(
        "href", "/-/files"
    )
    open_menu(page).get_by_role("link", name="Files").click()

    expect(page).to_have_title("Files")
    rows = page.locator("table.files-sources tbody tr")
    expect(rows).to_have_count(2)
    files = rows.filter(has=page.get_by_role("link", name="files", exact=True))
    expect(files.locator("td")).to_have_text(
        ["files", "filesystem", "2", "browse, delete · upload files"]
    )
    archive = rows.filter(has=page.get_by_role("link", name="archive", exact=True))
    expect(archive.locator("td")).to_have_text(
        ["archive", "filesystem", "0", "browse, delete"]
    )
    files.get_by_role("link", name="upload files").click()
    expect(page).to_have_url(server.url("/-/files/upload/files"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Upload to files")

    viewer = open_page(server, "/-/files", actor=VIEWER)
    expect(viewer.locator("table.files-sources tbody tr td:last-child")).to_have_text(
        ["browse", "browse"]
    )
    expect(viewer.get_by_role("link", name="upload files")).to_have_count(0)


def test_source_page_lists_files_with_keyset_pages(start_datasette, open_page):
    server = start_datasette()
    for n in range(5):
        server.upload(
            "files", f"file-{n}.csv", b"x" * (1000 * n), content_type="text/csv"
        )

    page = open_page(server, "/-/files/source/files?_size=2")

    rows = page.locator(".files-listing tbody tr")
    expect(rows).to_have_count(2)
    # Newest first: thumbnail, name, size, type, uploader, date.
    first = rows.first
    thumb = first.locator("img")
    expect(thumb).to_have_attribute("src", re.compile(r"/thumbnail$"))
    # Sized variants: a 32px cell loads the 64px one, not the plain thumbnail.
    expect(thumb).to_have_attribute(
        "srcset", re.compile(r"^\S+/thumbnail\?w=64 64w, .+/thumbnail\?w=800 800w$")
    )
    page.wait_for_function(
        "img => img.complete && img.currentSrc.endsWith('/thumbnail?w=64')",
        arg=thumb.element_handle(),
    )
    expect(first.locator("td")).to_have_text(
        [
            "",
            "file-4.csv",
            "3.9 KB",
            "text/csv",
            "alice",
            re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$"),
        ]
    )
    expect(rows.nth(1).locator("td.files-name")).to_have_text("file-3.csv")
    expect(page.get_by_role("link", name="First page")).to_have_count(0)

    page.get_by_role("link", name="Next page").click()
    expect(rows.locator("td.files-name")).to_have_text(["file-2.csv", "file-1.csv"])
    page.get_by_role("link", name="Next page").click()
    expect(rows.locator("td.files-name")).to_have_text(["file-0.csv"])
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    page.get_by_role("link", name="First page").click()
    expect(rows.locator("td.files-name")).to_have_text(
        [f"file-{n}.csv" for n in (4, 3, 2, 1, 0)]
    )


def test_file_page_shows_preview_metadata_and_downloads(
    start_datasette, open_page, make_png
):
    server = start_datasette()
    png = make_png("sunset.png", 320, 200)
    file = server.upload(
        "files", "sunset.png", png.read_bytes(), content_type="image/png"
    )

    page = open_page(server, "/-/files/source/files")
    page.get_by_role("link", name="sunset.png").click()

    expect(page).to_have_url(server.url(f"/-/files/{file['id']}"))
    expect(page.get_by_role("heading", level=1)).to_have_text("sunset.png")
    preview = page.get_by_role("img", name="Preview of sunset.png")
    expect(preview).to_have_js_property("naturalWidth", 320)
    details = page.locator(".files-metadata")
    expect(details).to_contain_text("image/png")
    expect(details).to_contain_text(f"{png.stat().st_size:,} bytes")
    expect(details).to_contain_text("alice")
    expect(details).to_contain_text(file["content_hash"])

    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == "sunset.png"
    assert open(download.value.path(), "rb").read() == png.read_bytes()


def test_edit_search_text_and_delete_after_confirming(start_datasette, open_page):
    server = start_datasette()
    file = server.upload("files", "q3.pdf", b"%PDF-1.4 board pack")
    page = open_page(server, file["url"])

    page.get_by_label("Edit search text").fill("quarterly board report")
    page.get_by_role("button", name="Save search text").click()
    expect(page.locator(".files-edit").get_by_role("status")).to_have_text("Saved.")
    expect(page.locator(".files-metadata")).to_contain_text("quarterly board report")
    page.goto(server.url("/-/files/search?q=quarterly"))
    expect(page.get_by_role("link", name="q3.pdf")).to_be_visible()
    page.get_by_role("link", name="q3.pdf").click()

    # Deleting asks first; keeping it changes nothing.
    page.get_by_role("button", name="Delete file").click()
    dialog = page.get_by_role("dialog", name="Delete this file?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("q3.pdf will be deleted from files")
    expect(dialog.get_by_role("button", name="Keep it")).to_be_focused()
    dialog.get_by_role("button", name="Keep it").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Delete file")).to_be_focused()
    assert len(server.files()) == 1

    page.get_by_role("button", name="Delete file").click()
    dialog.get_by_role("button", name="Delete", exact=True).click()

    expect(page).to_have_url(server.url("/-/files/source/files"))
    expect(page.get_by_text("No files yet.")).to_be_visible()
    assert server.files() == []
    assert not any(server.source_root("files").iterdir())


def test_browse_only_actor_sees_no_upload_edit_or_delete(start_datasette, open_page):
    server = start_datasette(permissions=ROLES)
    file = server.upload("files", "plan.txt", b"plan")

    page = open_page(server, "/-/files/source/files", actor=VIEWER)
    expect(page.get_by_role("link", name="plan.txt")).to_be_visible()
    expect(page.locator("datasette-file-uploader")).to_have_count(0)
    expect(page.get_by_role("button", name="Choose files…")).to_have_count(0)
    expect(page.get_by_role("link", name="Open the upload page")).to_have_count(0)

    page.get_by_role("link", name="plan.txt").click()
    expect(page.get_by_role("link", name="Download")).to_be_visible()
    expect(page.get_by_label("Edit search text")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete file")).to_have_count(0)

    response = page.goto(server.url("/-/files/upload/files"))
    assert response.status == 403
    expect(page.locator(".message-error")).to_have_text(
        "You may not upload to source 'files'"
    )
    with server.client(VIEWER) as client:
        prepare = client.post(
            "/-/files/upload/files/-/prepare",
            json={"filename": "x.txt", "content_type": "text/plain", "size": 1},
        )
        delete = client.post(file["url"] + "/-/delete")
    assert prepare.status_code == 403
    assert prepare.json()["errors"] == ["You may not upload to source 'files'"]
    assert delete.status_code == 403
    assert server.pending_uploads() == []
    assert len(server.files()) == 1


def test_actor_without_browse_sees_nothing(start_datasette, open_page):
    server = start_datasette(permissions=ROLES)
    file = server.upload("files", "secret.txt", b"secret")

    page = open_page(server, "/", actor=BOB)
    expect(open_menu(page).get_by_role("link", name="Files")).to_have_count(0)
    expect(page.locator('.page-action-menu a[href="/-/files"]')).to_have_count(0)

    page.goto(server.url("/-/files"))
    expect(
        page.get_by_text("There are no file sources you can browse.")
    ).to_be_visible()
    expect(page.locator("table")).to_have_count(0)
    for path in ("/-/files/source/files", file["url"]):
        response = page.goto(server.url(path))
        assert response.status == 404, path
        expect(page.locator("body")).not_to_contain_text("secret.txt")
    page.goto(server.url("/-/files/search?q=secret"))
    expect(page.get_by_text("No files match.")).to_be_visible()


def test_pages_and_uploads_under_base_url(
    start_datasette, open_page, uploads, make_file
):
    server = start_datasette(settings={"base_url": "/prefix/"})
    picked = make_file("100% done #1?.txt", 2000)

    page = open_page(server, "/-/files")
    page.locator("table.files-sources").get_by_role(
        "link", name="files", exact=True
    ).click()
    expect(page).to_have_url(server.origin + "/prefix/-/files/source/files")
    upload = uploads(page)
    upload.pick([picked])
    expect(upload.summary()).to_have_text("1 of 1 uploaded")
    page.reload()
    page.get_by_role("link", name=picked.name).click()
    expect(page).to_have_url(re.compile(r"/prefix/-/files/df-[0-9a-z]{26}$"))

    # Every link and script on these pages stays under the base_url.
    file_page = page.url
    for url in (
        server.url("/-/files"),
        server.url("/-/files/source/files"),
        server.url("/-/files/upload/files"),
        file_page,
    ):
        page.goto(url)
        urls = page.evaluate(
            """() => [...document.querySelectorAll('a[href], script[src], link[href], img[src]')]
                .map(e => e.getAttribute('href') || e.getAttribute('src'))
                .filter(u => u.startsWith('/'))"""
        )
        assert urls and all(u.startswith("/prefix/") for u in urls), (url, urls)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    # Chromium swaps "?", which file systems may not allow, for "_".
    assert download.value.suggested_filename == "100% done #1_.txt"
    assert open(download.value.path(), "rb").read() == picked.read_bytes()
