"""Screenshots of the UI for the README, taken the way a person would see it.

Every run takes them (so the pages they show keep working); they are written
to ``docs/images/`` only with ``UPDATE_SCREENSHOTS=1``:

    UPDATE_SCREENSHOTS=1 uv run pytest tests-integration/test_screenshots.py
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
from pathlib import Path

import pytest
from playwright.sync_api import expect

# Screenshots take long (three full pages of UI each); the pages they show
# are covered by the quick browser tests, so these run with the slow cases.
pytestmark = [pytest.mark.browser, pytest.mark.slow]

MB = 1024 * 1024
DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
WIDTH = 1000


@pytest.fixture
def out_dir(tmp_path) -> Path:
    if os.environ.get("UPDATE_SCREENSHOTS"):
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        return DOCS_IMAGES
    return tmp_path


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


def test_screenshots(
    start_datasette,
    open_page,
    uploads,
    make_file,
    make_png,
    throttle,
    out_dir,
    tmp_path,
):
    server = start_datasette(
        sources={"project-files": {"max_file_size": 100 * MB}, "archive": {}}
    )
    seeded = [
        ("site-survey-2026.pdf", b"%PDF" * 40_000, "application/pdf"),
        ("budget.xlsx", b"x" * 52_000, "application/vnd.ms-excel"),
        ("meeting-notes.md", b"# Notes\n" * 300, "text/markdown"),
        ("interview.mp3", b"m" * 3_400_000, "audio/mpeg"),
        ("results.csv", b"a,b\n" * 20_000, "text/csv"),
    ]
    for name, data, content_type in seeded:
        server.upload("project-files", name, data, content_type=content_type)
    aerial = server.upload(
        "project-files",
        "aerial-view.png",
        make_png("aerial-view.png", 640, 400).read_bytes(),
        content_type="image/png",
    )
    server.upload(
        "archive", "2025-report.pdf", b"%PDF" * 1000, content_type="application/pdf"
    )

    # 1. The upload page, mid-upload: done, in flight, too large, cancelled.
    page = open_page(server, "/-/files/upload/project-files", width=WIDTH, height=700)
    throttle(page, 3 * MB)
    upload = uploads(page)
    too_big = tmp_path / "drone-footage.mp4"
    with open(too_big, "wb") as fp:
        fp.truncate(340 * MB)  # sparse: never read, refused by size
    upload.pick(
        [
            make_file("floor-plan.pdf", 900_000),
            make_file("photos-day-1.zip", 14 * MB),
            too_big,
            make_file("photos-day-2.zip", 16 * MB),
            make_file("contract-draft.docx", 2 * MB),
        ]
    )
    expect(upload.item("floor-plan.pdf").locator(".dfu-status")).to_have_text(
        "Uploaded"
    )
    upload.item("contract-draft.docx").get_by_role("button").first.click()
    upload.wait_for_progress("photos-day-1.zip", above=25)
    page.mouse.move(0, 0)
    upload_png = out_dir / "upload-page.png"
    page.screenshot(path=upload_png, full_page=True)
    assert 0 < upload.percent("photos-day-2.zip") < 100

    # 2. The source page with its upload area and the files.
    page = open_page(server, "/-/files/source/project-files", width=WIDTH, height=700)
    expect(page.locator(".files-listing tbody tr")).to_have_count(7)
    source_png = out_dir / "source-page.png"
    page.screenshot(path=source_png, full_page=True)

    # 3. A file page: preview, metadata, edit and delete.
    with server.client() as client:
        client.post(
            aerial["url"] + "/-/update",
            json={"update": {"search_text": "site aerial photo, north elevation"}},
        )
    page = open_page(server, aerial["url"], width=WIDTH, height=700)
    expect(
        page.get_by_role("img", name="Preview of aerial-view.png")
    ).to_have_js_property("naturalWidth", 640)
    file_png = out_dir / "file-page.png"
    page.screenshot(path=file_png, full_page=True)

    # 4. The source page on a phone.
    page = open_page(server, "/-/files/source/project-files", width=375, height=800)
    phone_png = out_dir / "source-page-phone.png"
    page.screenshot(path=phone_png, full_page=True)

    for path, width in (
        (upload_png, WIDTH),
        (source_png, WIDTH),
        (file_png, WIDTH),
        (phone_png, 375),
    ):
        assert png_size(path)[0] == width, path
        assert path.stat().st_size > 10_000, path


def test_file_picker_screenshots(
    start_datasette, open_page, make_png, out_dir, tmp_path
):
    """The `file` column on a table page and its picker in the row dialogs."""
    db = tmp_path / "content.db"
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT, attachment TEXT)"
    )
    conn.commit()
    conn.close()
    alice = {"id": "alice"}
    server = start_datasette(
        sources={"project-files": {}},
        permissions={
            action: alice
            for action in (
                "files-browse",
                "files-upload",
                "insert-row",
                "update-row",
                "delete-row",
            )
        },
        databases={
            "content": {
                "path": db,
                "tables": {"articles": {"column_types": {"attachment": "file"}}},
            }
        },
    )
    seeded = {}
    for name, data, content_type in (
        ("site-survey-2026.pdf", b"%PDF" * 40_000, "application/pdf"),
        ("survey-photos.zip", b"z" * 2_400_000, "application/zip"),
        ("budget.xlsx", b"x" * 52_000, "application/vnd.ms-excel"),
        ("meeting-notes.md", b"# Notes\n" * 300, "text/markdown"),
    ):
        seeded[name] = server.upload(
            "project-files", name, data, content_type=content_type
        )
    seeded["aerial-view.png"] = server.upload(
        "project-files",
        "aerial-view.png",
        make_png("aerial-view.png", 640, 400).read_bytes(),
        content_type="image/png",
    )
    conn = sqlite3.connect(db)
    conn.executemany(
        "INSERT INTO articles (title, attachment) VALUES (?, ?)",
        [
            ("Site survey", seeded["site-survey-2026.pdf"]["id"]),
            ("Aerial photography", seeded["aerial-view.png"]["id"]),
            ("Budget review", seeded["budget.xlsx"]["id"]),
            ("Kick-off meeting", None),
        ],
    )
    conn.commit()
    conn.close()

    # 1. A table with a `file` column.
    page = open_page(server, "/content/articles", width=WIDTH, height=560)
    expect(page.locator("td.col-attachment datasette-file[data-loaded]")).to_have_count(
        3
    )
    column_png = out_dir / "file-column.png"
    page.screenshot(path=column_png, full_page=True)

    # 2. Choosing a file for a row: search results in the edit dialog.
    page.set_viewport_size({"width": WIDTH, "height": 660})
    page.get_by_role("button", name="Edit row 4").click()
    picker = page.get_by_role("dialog").locator("datasette-file-picker")
    picker.get_by_role("combobox").fill("surv")
    expect(picker.get_by_role("option")).to_have_count(2)
    picker.get_by_role("combobox").press("ArrowDown")
    picker_png = out_dir / "file-picker.png"
    page.screenshot(path=picker_png)

    # 3. On a phone, uploading a new file into the insert dialog.
    page = open_page(server, "/content/articles", width=375, height=800)
    page.get_by_role("button", name="Insert row").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("title").fill("Site visit")
    picker = dialog.locator("datasette-file-picker")
    picker.get_by_role("combobox").fill("aerial")
    picker.get_by_role("option").first.click()
    picker.get_by_role("button", name="Upload a new file").click()
    expect(picker.locator("datasette-file-uploader .dfu-zone")).to_be_visible()
    phone_png = out_dir / "file-picker-phone.png"
    page.screenshot(path=phone_png)

    for path, width in ((column_png, WIDTH), (picker_png, WIDTH), (phone_png, 375)):
        assert png_size(path)[0] == width, path
        assert path.stat().st_size > 10_000, path


def test_file_column_config_screenshots(
    start_datasette, open_page, make_png, out_dir, tmp_path
):
    """A `multiple` file column with an `accept` rule: its cells, and its
    picker offering only images from its source."""
    db = tmp_path / "surveys.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE sites (id INTEGER PRIMARY KEY, site TEXT, photos TEXT)")
    conn.commit()
    conn.close()
    alice = {"id": "alice"}
    photos_column = {
        "type": "file",
        "config": {
            "source": "site-photos",
            "accept": ["image/*"],
            "max_size": 20_000_000,
            "multiple": 4,
        },
    }
    server = start_datasette(
        sources={"site-photos": {}, "documents": {}},
        permissions={
            action: alice
            for action in ("files-browse", "files-upload", "insert-row", "update-row")
        },
        databases={
            "surveys": {
                "path": db,
                "tables": {"sites": {"column_types": {"photos": photos_column}}},
            }
        },
    )
    photos = {}
    for index, name in enumerate(
        (
            "north-gate.png",
            "north-wall.png",
            "river-bank.png",
            "river-bridge.png",
            "quarry-edge.png",
            "roof-detail.png",
        )
    ):
        photos[name] = server.upload(
            "site-photos",
            name,
            make_png(name, 200 + 40 * index, 140 + 20 * index).read_bytes(),
            content_type="image/png",
        )["id"]
    # Not images, or not in site-photos: the picker never offers these.
    server.upload(
        "site-photos", "river-notes.pdf", b"%PDF" * 9000, content_type="application/pdf"
    )
    server.upload(
        "documents",
        "river-survey.png",
        make_png("river-survey.png", 64, 64).read_bytes(),
        content_type="image/png",
    )
    conn = sqlite3.connect(db)
    conn.executemany(
        "INSERT INTO sites (site, photos) VALUES (?, ?)",
        [
            (
                "North gate",
                json.dumps([photos["north-gate.png"], photos["north-wall.png"]]),
            ),
            (
                "River crossing",
                json.dumps([photos["river-bridge.png"], photos["river-bank.png"]]),
            ),
            ("Quarry", json.dumps([photos["quarry-edge.png"]])),
            ("Workshop", None),
        ],
    )
    conn.commit()
    conn.close()

    # 1. Cells of a multi-file column: every file, one batch.json call.
    page = open_page(server, "/surveys/sites", width=WIDTH, height=520)
    expect(page.locator("td.col-photos datasette-file[data-loaded]")).to_have_count(5)
    multiple_png = out_dir / "file-column-multiple.png"
    page.screenshot(path=multiple_png, full_page=True)

    # 2. Its picker: chips for the chosen files, and a search for "river"
    # offering only images from site-photos (not river-notes.pdf, not
    # river-survey.png from documents).
    page.set_viewport_size({"width": WIDTH, "height": 760})
    page.get_by_role("button", name="Edit row 1").click()
    picker = page.get_by_role("dialog").locator("datasette-file-picker")
    expect(picker.locator(".dfp-chip datasette-file[data-loaded]")).to_have_count(2)
    picker.get_by_role("combobox").fill("river")
    expect(picker.get_by_role("option")).to_have_count(2)
    expect(picker.get_by_role("listbox")).not_to_contain_text("river-notes")
    expect(picker.get_by_role("listbox")).not_to_contain_text("river-survey")
    picker.get_by_role("combobox").press("ArrowDown")
    accept_png = out_dir / "file-picker-accept.png"
    page.screenshot(path=accept_png)

    for path in (multiple_png, accept_png):
        assert png_size(path)[0] == WIDTH, path
        assert path.stat().st_size > 10_000, path
