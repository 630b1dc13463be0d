"""Importing a CSV as a table in a real browser: file page → preview → progress."""

from __future__ import annotations

import re
import sqlite3

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

GRANTS = ("files-browse", "files-upload", "create-table", "insert-row")


def test_import_csv_from_the_file_page(start_datasette, open_page, tmp_path):
    data_db = tmp_path / "data.db"
    sqlite3.connect(data_db).close()
    server = start_datasette(
        permissions={a: {"id": "alice"} for a in GRANTS},
        databases={"data": {"path": data_db}},
    )
    # Enough rows for several progress updates on the way.
    rows = "".join(f"{i},{i / 2},name {i}\n" for i in range(20_000))
    file = server.upload(
        "files",
        "Town Data.csv",
        ("id,half,name\n" + rows).encode(),
        content_type="text/csv",
    )

    page = open_page(server, f"/-/files/{file['id']}")
    page.get_by_role("link", name="Import as table").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Import Town Data.csv as a table"
    )
    expect(page.locator(".files-import-preview th")).to_have_count(3)
    expect(page.locator(".files-import-preview thead")).to_contain_text("INTEGER")
    expect(page.locator(".files-import-preview tbody tr")).to_have_count(10)
    expect(page.get_by_label("Table name")).to_have_value("Town_Data")
    page.get_by_label("Table name").fill("towns")
    page.get_by_role("button", name="Import").click()

    expect(page).to_have_url(re.compile(r"/-/files/imports/imp-[0-9a-z]+$"))
    # The page polls the JSON and shows the link once the import is done.
    link = page.get_by_role("link", name="Open the table")
    expect(link).to_be_visible(timeout=60_000)
    expect(page.locator(".files-import-rows")).to_have_text("20,000")
    link.click()
    expect(page).to_have_url(server.url("/data/towns"))

    # Importing again into the same table is refused on the form.
    page.goto(server.url(f"/-/files/{file['id']}/-/import"))
    page.get_by_label("Table name").fill("towns")
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("alert")).to_contain_text("already exists")
