"""The source page's "Sync now" button in Chromium: files already in the
source's directory get registered, with live progress, and the prune
checkbox removes the rows of files that are gone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

ALICE = {"id": "alice"}
VIEWER = {"id": "viewer"}
ROLES = {
    "files-browse": {"id": ["alice", "viewer"]},
    "files-sync": {"id": "alice"},
}


def test_sync_now_registers_existing_files_and_prunes(
    start_datasette, open_page, tmp_path
):
    root = tmp_path / "files"
    for i in range(300):
        path = root / f"scans/{i % 5}/scan-{i:03d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"scan {i}")
    server = start_datasette(permissions=ROLES)

    page = open_page(server, "/-/files/source/files", actor=ALICE)
    expect(page.locator(".files-empty")).to_have_text("No files yet.")
    status = page.get_by_role("status")
    page.get_by_role("button", name="Sync now").click()
    expect(status).to_have_text(
        re.compile(r"^Sync finished: 300 seen, 300 registered, 0 updated"),
        timeout=30_000,
    )
    expect(page.get_by_role("button", name="Sync now")).to_be_enabled()

    page.reload()
    expect(page.locator(".files-listing tbody tr")).to_have_count(50)
    # The last sync is shown again on a reload.
    expect(status).to_have_text(re.compile(r"^Sync finished: 300 seen"))

    (root / "scans/0/scan-000.txt").unlink()
    page.get_by_label("Remove files that are gone").check()
    page.get_by_role("button", name="Sync now").click()
    expect(status).to_have_text(
        re.compile(r"^Sync finished: 299 seen, 0 registered.*1 missing, 1 removed"),
        timeout=30_000,
    )
    assert len(server.files("files")) == 299

    # Browsing is not syncing: no button for the viewer.
    viewer = open_page(server, "/-/files/source/files", actor=VIEWER)
    expect(viewer.locator(".files-listing tbody tr")).to_have_count(50)
    expect(viewer.get_by_role("button", name="Sync now")).to_have_count(0)
