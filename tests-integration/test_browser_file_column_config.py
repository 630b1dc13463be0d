"""Per-column settings of `file` columns in the browser: the picker offers and
uploads only what the column takes, a `multiple` column is a list of chips
that can be reordered and removed by keyboard, and its cells show every file
with one batch.json call per page.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

ACTIONS = ("files-browse", "files-upload", "files-delete", "insert-row", "update-row")
PHOTOS = {
    "type": "file",
    "config": {
        "source": "photos",
        "accept": ["image/*"],
        "max_size": 20_000,
        "multiple": 3,
    },
}


@pytest.fixture
def albums_db(tmp_path):
    path = tmp_path / "albums.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE albums (id INTEGER PRIMARY KEY, title TEXT, photos TEXT)"
    )
    conn.execute("INSERT INTO albums (title) VALUES ('Holiday')")
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def albums(start_datasette, albums_db, make_png):
    """A Datasette whose albums.photos column takes up to 3 images of at most
    20,000 bytes from the photos source, and files that do and do not fit."""
    server = start_datasette(
        sources={"photos": {}, "files": {}},
        permissions={action: {"id": "alice"} for action in ACTIONS},
        databases={
            "albums": {
                "path": albums_db,
                "tables": {"albums": {"column_types": {"photos": PHOTOS}}},
            }
        },
    )
    png = make_png("seed.png", 16, 16).read_bytes()
    files = {
        name: server.upload(slug, name, data, content_type=content_type)["id"]
        for slug, name, data, content_type in [
            ("photos", "beach.png", png, "image/png"),
            ("photos", "harbour.png", png, "image/png"),
            ("photos", "sunset.png", png, "image/png"),
            ("photos", "menu.txt", b"soup", "text/plain"),
            ("photos", "panorama.png", png + b"\0" * 30_000, "image/png"),
            ("files", "elsewhere.png", png, "image/png"),
        ]
    }
    return server, files


def stored_photos(albums_db, title="Holiday"):
    conn = sqlite3.connect(albums_db)
    try:
        (value,) = conn.execute(
            "SELECT photos FROM albums WHERE title = ?", [title]
        ).fetchone()
    finally:
        conn.close()
    return json.loads(value) if value else value


def test_pick_reorder_and_remove_files_by_keyboard(albums, open_page, albums_db):
    server, files = albums
    page = open_page(server, "/albums/albums")
    page.get_by_role("button", name="Edit row 1").click()
    dialog = page.get_by_role("dialog")
    picker = dialog.locator("datasette-file-picker")
    expect(picker.get_by_text("No files chosen")).to_be_visible()
    expect(picker.get_by_text("0 of 3 files")).to_be_visible()
    expect(picker.locator(".dfp-rules")).to_have_text(
        "image/* only · up to 19.5 KB each · from photos"
    )

    # Only images from `photos` within max_size are offered.
    search = picker.get_by_role("combobox", name="photos Find a file")
    search.focus()
    search.press("ArrowDown")
    options = picker.get_by_role("option")
    expect(options).to_have_count(3)
    offered = sorted(name.split("\n")[0] for name in options.all_inner_texts())
    assert offered == ["beach.png", "harbour.png", "sunset.png"]

    # Choose all three with the keyboard; a chosen file is not offered again.
    for name in ("beach.png", "harbour.png", "sunset.png"):
        search.fill(name.split(".")[0])
        expect(options).to_have_count(1)
        search.press("ArrowDown")
        search.press("Enter")
        expect(picker.get_by_role("list", name="Chosen files")).to_contain_text(name)
    chips = picker.get_by_role("list", name="Chosen files").get_by_role("listitem")
    expect(chips).to_have_count(3)
    expect(picker.get_by_text("3 of 3 files")).to_be_visible()
    # Full: no more searching or uploading; focus went to the chips.
    expect(search).to_be_disabled()
    expect(picker.get_by_role("button", name="Upload a new file")).to_be_hidden()
    expect(picker.get_by_role("button", name="Remove sunset.png")).to_be_focused()

    # Move sunset to the front: focus stays on the moved file's button.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    move = picker.get_by_role("button", name="Move sunset.png earlier")
    expect(move).to_be_focused()
    assert move.evaluate(
        "el => el.matches(':focus-visible') && getComputedStyle(el).outlineWidth === '2px'"
    )
    page.keyboard.press("Enter")
    expect(picker.get_by_role("button", name="Move sunset.png earlier")).to_be_focused()
    page.keyboard.press("Space")
    expect(chips.first).to_contain_text("sunset.png")
    # At the top, focus moves to the button that can still move it.
    expect(picker.get_by_role("button", name="Move sunset.png later")).to_be_focused()
    expect(picker.get_by_role("status")).to_have_text(
        "Moved sunset.png to position 1 of 3"
    )

    picker.get_by_role("button", name="Remove harbour.png").focus()
    page.keyboard.press("Enter")
    expect(chips).to_have_count(2)
    expect(search).to_be_enabled()
    assert stored_photos(albums_db) is None

    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    assert stored_photos(albums_db) == [files["sunset.png"], files["beach.png"]]
    cell = page.locator("td.col-photos datasette-file")
    expect(cell).to_have_count(2)
    expect(cell.first).to_contain_text("sunset.png")
    expect(cell.last).to_contain_text("beach.png")


def test_cells_show_every_file_with_one_batch_call(albums, open_page, albums_db):
    server, files = albums
    conn = sqlite3.connect(albums_db)
    for n in range(5):
        ids = [files["beach.png"], files["harbour.png"], files["sunset.png"]][n % 3 :]
        conn.execute(
            "INSERT INTO albums (title, photos) VALUES (?, ?)",
            [f"Album {n}", json.dumps(ids)],
        )
    conn.commit()
    conn.close()

    page = open_page(server, "/-/files")
    batch_calls = []
    page.on(
        "request",
        lambda request: "/batch.json" in request.url and batch_calls.append(request),
    )
    page.goto(server.url("/albums/albums"))
    cells = page.locator("td.col-photos datasette-file")
    expect(cells).to_have_count(3 + 2 + 1 + 3 + 2)
    expect(cells.locator("a")).to_have_count(11)
    expect(
        page.locator("tr", has_text="Album 1").locator("td.col-photos")
    ).to_contain_text("harbour.png")
    page.wait_for_load_state("networkidle")
    assert len(batch_calls) == 1


def test_uploads_are_refused_before_any_byte_is_sent(
    albums, open_page, make_file, make_png, albums_db
):
    server, files = albums
    page = open_page(server, "/albums/albums")
    prepared = []
    page.on(
        "request",
        lambda request: "/-/prepare" in request.url and prepared.append(request.url),
    )
    page.get_by_role("button", name="Insert row").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("title").fill("Trip")
    picker = dialog.locator("datasette-file-picker")
    picker.get_by_role("button", name="Upload a new file").click()
    uploader = picker.locator("datasette-file-uploader")
    expect(uploader.locator("input[type=file]")).to_have_attribute("accept", "image/*")
    expect(uploader).to_contain_text("Up to 19.5 KB per file")

    with page.expect_file_chooser() as chooser:
        uploader.get_by_role("button", name="Choose files").click()
    assert chooser.value.is_multiple()
    chooser.value.set_files(
        [
            str(make_file("notes.txt", 100)),
            str(make_file("huge.png", 30_000)),
            str(make_png("one.png", 8, 8)),
            str(make_png("two.png", 8, 8)),
            str(make_png("three.png", 8, 8)),
            str(make_png("four.png", 8, 8)),
        ]
    )
    expect(uploader).to_contain_text("Not accepted: notes.txt is not one of image/*")
    expect(uploader).to_contain_text("this column accepts files up to 19.5 KB")
    expect(uploader).to_contain_text("Too many files: four.png was not sent")
    chips = picker.get_by_role("list", name="Chosen files").get_by_role("listitem")
    expect(chips).to_have_count(3)
    # Only the three that fit ever reached the server, into `photos`.
    assert sorted(url.rsplit("/", 3)[-3] for url in prepared) == ["photos"] * 3
    uploaded = {f["filename"]: f["id"] for f in server.files("photos")}
    assert {"one.png", "two.png", "three.png"} <= set(uploaded)
    assert not {"notes.txt", "huge.png", "four.png"} & set(uploaded)
    expect(picker.get_by_role("button", name="Upload a new file")).to_be_hidden()

    dialog.get_by_role("button", name="Insert row").click()
    expect(dialog).to_be_hidden()
    assert sorted(stored_photos(albums_db, "Trip")) == sorted(
        uploaded[name] for name in ("one.png", "two.png", "three.png")
    )


def test_row_form_shows_the_servers_validation_error(albums, open_page, albums_db):
    # The dialog saves through /-/update, so the column's rules apply to it:
    # a file deleted after it was chosen is refused with a message.
    server, files = albums
    page = open_page(server, "/albums/albums")
    page.get_by_role("button", name="Edit row 1").click()
    dialog = page.get_by_role("dialog")
    picker = dialog.locator("datasette-file-picker")
    search = picker.get_by_role("combobox")
    search.fill("beach")
    expect(picker.get_by_role("option")).to_have_count(1)
    search.press("ArrowDown")
    search.press("Enter")
    expect(picker.get_by_role("list", name="Chosen files")).to_contain_text("beach.png")

    with server.client() as client:
        deleted = client.post(f"/-/files/{files['beach.png']}/-/delete", json={})
    assert deleted.status_code == 200, deleted.text

    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_contain_text(
        f"photos: source: {files['beach.png']} is not a file in source 'photos'"
    )
    expect(dialog).to_be_visible()
    assert stored_photos(albums_db) is None
