"""The file picker: a `file` column's field in Datasette's row dialogs.

A real Datasette serves a mutable database whose ``articles.attachment``
column has the ``file`` type; alice edits and inserts rows through the table
page's dialogs, choosing files with ``<datasette-file-picker>``.
"""

from __future__ import annotations

import re
import sqlite3

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

ROW_ACTIONS = ("insert-row", "update-row")
FILE_ACTIONS = ("files-browse", "files-upload", "files-edit", "files-delete")


@pytest.fixture
def content_db(tmp_path):
    path = tmp_path / "content.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT, attachment TEXT)"
    )
    conn.execute("INSERT INTO articles (title) VALUES ('Launch plan')")
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def start_articles(start_datasette, content_db):
    """A Datasette where ``permissions`` (action → allow block) apply."""

    def start(permissions=None, **kwargs):
        if permissions is None:
            permissions = {
                action: {"id": "alice"} for action in FILE_ACTIONS + ROW_ACTIONS
            }
        return start_datasette(
            permissions=permissions,
            databases={
                "content": {
                    "path": content_db,
                    "tables": {"articles": {"column_types": {"attachment": "file"}}},
                }
            },
            **kwargs,
        )

    return start


def attachments(content_db) -> dict[str, str | None]:
    conn = sqlite3.connect(content_db)
    try:
        return dict(conn.execute("SELECT title, attachment FROM articles"))
    finally:
        conn.close()


def dialog_picker(page):
    dialog = page.get_by_role("dialog")
    return dialog, dialog.locator("datasette-file-picker")


def test_search_and_choose_a_file_for_a_row(start_articles, open_page, content_db):
    server = start_articles(settings={"base_url": "/prefix/"})
    report = server.upload("files", "quarterly-report.pdf", b"%PDF" * 500)
    server.upload("files", "team-photo.jpg", b"\xff\xd8" * 500)

    page = open_page(server, "/content/articles")
    page.get_by_role("button", name="Edit row 1").click()
    dialog, picker = dialog_picker(page)
    expect(picker.get_by_text("No file chosen")).to_be_visible()

    search = picker.get_by_role("combobox", name="attachment Find a file")
    search.fill("quarter")
    results = picker.get_by_role("listbox")
    expect(results.get_by_role("option")).to_have_count(1)
    expect(results.get_by_role("option")).to_contain_text("quarterly-report.pdf")
    expect(picker.get_by_role("status")).to_have_text("1 file found")

    # Keyboard only: down to the result, Enter chooses it (not submit).
    search.press("ArrowDown")
    expect(search).to_have_attribute(
        "aria-activedescendant", re.compile(r"-results-0$")
    )
    expect(results.get_by_role("option", selected=True)).to_have_count(1)
    search.press("Enter")
    expect(results).to_be_hidden()
    expect(dialog).to_be_visible()
    expect(picker.locator("datasette-file")).to_contain_text("quarterly-report.pdf")
    assert attachments(content_db) == {"Launch plan": None}

    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    cell = page.locator("td.col-attachment datasette-file")
    expect(cell).to_contain_text("quarterly-report.pdf")
    expect(cell.get_by_role("link")).to_have_attribute(
        "href", f"/prefix/-/files/{report['id']}"
    )
    assert attachments(content_db) == {"Launch plan": report["id"]}

    # After a reload too, and the edit dialog starts from the stored file.
    page.reload()
    expect(page.locator("td.col-attachment datasette-file")).to_contain_text(
        "quarterly-report.pdf"
    )
    page.get_by_role("button", name="Edit row 1").click()
    dialog, picker = dialog_picker(page)
    expect(picker.locator("datasette-file")).to_contain_text("quarterly-report.pdf")


def test_upload_a_new_file_while_inserting_a_row(
    start_articles, open_page, make_file, content_db
):
    server = start_articles()
    server.upload("files", "old.txt", b"old")
    page = open_page(server, "/content/articles")
    page.get_by_role("button", name="Insert row").click()
    dialog, picker = dialog_picker(page)
    dialog.get_by_label("title").fill("Site visit")

    picker.get_by_role("button", name="Upload a new file").click()
    expect(picker.get_by_role("button", name="Upload a new file")).to_have_attribute(
        "aria-expanded", "true"
    )
    uploader = picker.locator("datasette-file-uploader")
    with page.expect_file_chooser() as chooser:
        uploader.get_by_role("button", name="Choose a file").click()
    assert not chooser.value.is_multiple()
    chooser.value.set_files(str(make_file("site-visit.pdf", 300_000)))
    expect(picker.locator(".dfp-current datasette-file")).to_contain_text(
        "site-visit.pdf"
    )
    expect(picker.get_by_role("status").first).to_have_text("Chose site-visit.pdf")

    dialog.get_by_role("button", name="Insert row").click()
    expect(dialog).to_be_hidden()
    row = page.locator("tr", has_text="Site visit")
    expect(row.locator("td.col-attachment datasette-file")).to_contain_text(
        "site-visit.pdf"
    )
    (uploaded,) = [f for f in server.files("files") if f["filename"] != "old.txt"]
    assert uploaded["filename"] == "site-visit.pdf"
    assert attachments(content_db)["Site visit"] == uploaded["id"]


def test_remove_a_file_and_no_upload_without_permission(
    start_articles, open_page, content_db
):
    # bob may edit rows and browse files, but not upload.
    server = start_articles(
        permissions={
            "files-browse": {"id": ["alice", "bob"]},
            "files-upload": {"id": "alice"},
            "update-row": {"id": "bob"},
        }
    )
    report = server.upload("files", "report.pdf", b"%PDF" * 10)
    conn = sqlite3.connect(content_db)
    conn.execute("UPDATE articles SET attachment = ?", [report["id"]])
    conn.commit()
    conn.close()

    page = open_page(server, "/content/articles", actor={"id": "bob"})
    page.get_by_role("button", name="Edit row 1").click()
    dialog, picker = dialog_picker(page)
    expect(picker.locator("datasette-file")).to_contain_text("report.pdf")
    # sources.json has answered once the search box's label is complete;
    # give the upload button its chance to (wrongly) appear.
    expect(picker.get_by_role("combobox")).to_be_visible()
    page.wait_for_load_state("networkidle")
    expect(picker.get_by_role("button", name="Upload a new file")).to_be_hidden()

    # Escape closes the results, not the dialog.
    search = picker.get_by_role("combobox")
    search.fill("rep")
    expect(picker.get_by_role("option")).to_have_count(1)
    search.press("Escape")
    expect(picker.get_by_role("listbox")).to_be_hidden()
    expect(dialog).to_be_visible()

    picker.get_by_role("button", name="Remove report.pdf").click()
    expect(picker.get_by_text("No file chosen")).to_be_visible()
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("td.col-attachment datasette-file")).to_have_count(0)
    assert attachments(content_db) == {"Launch plan": None}
