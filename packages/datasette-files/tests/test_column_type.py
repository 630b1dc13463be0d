"""The ``file`` column type: table and row pages render ``<datasette-file>``."""

from __future__ import annotations

import re
import sqlite3

import pytest
from datasette.database import Database
from testkit import ALICE

CELL = re.compile(r"<datasette-file [^>]*>[^<]*</datasette-file>")


@pytest.fixture
def docs_db(tmp_path):
    path = tmp_path / "data.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT, attachment TEXT)"
    )
    conn.commit()
    conn.close()
    return path


async def docs_ds(make_ds, tmp_path, docs_db, column_types):
    config = {
        "permissions": {
            "files-browse": {"id": "alice"},
            "files-upload": {"id": "alice"},
        },
        "plugins": {
            "datasette-files": {
                "sources": {
                    "files": {
                        "storage": "filesystem",
                        "config": {"root": str(tmp_path / "files")},
                    }
                }
            }
        },
        "databases": {"data": {"tables": {"docs": {"column_types": column_types}}}},
    }
    ds = await make_ds(config=config, start=False)
    ds.add_database(Database(ds, path=str(docs_db)), name="data")
    await ds.invoke_startup()
    return ds


def insert(docs_db, *rows):
    conn = sqlite3.connect(docs_db)
    conn.executemany("INSERT INTO docs (title, attachment) VALUES (?, ?)", rows)
    conn.commit()
    conn.close()


@pytest.mark.asyncio
async def test_file_cells_render_on_table_and_row_pages(
    make_ds, upload, tmp_path, docs_db
):
    ds = await docs_ds(make_ds, tmp_path, docs_db, {"attachment": "file"})
    file = await upload(ds, "files", "secret plans.pdf", b"%PDF", actor=ALICE)
    insert(docs_db, ("with file", file["id"]), ("not an id", "hello"))

    table = await ds.client.get("/data/docs")
    assert table.status_code == 200
    cells = CELL.findall(table.text)
    assert cells == [
        f'<datasette-file file-id="{file["id"]}" batch-url="/-/files/batch.json">'
        f"{file['id']}</datasette-file>"
    ]
    assert "datasette-file.js" in table.text
    # The page never carries the filename: only batch.json reveals it, and
    # only to actors who may browse the source.
    assert "secret plans" not in table.text
    assert ">hello<" in table.text

    row = await ds.client.get("/data/docs/1")
    assert CELL.findall(row.text) == cells


@pytest.mark.asyncio
async def test_batch_json_reveals_only_browsable_files(
    make_ds, upload, tmp_path, docs_db
):
    ds = await docs_ds(make_ds, tmp_path, docs_db, {"attachment": "file"})
    file = await upload(ds, "files", "plans.pdf", b"%PDF", actor=ALICE)
    url = f"/-/files/batch.json?id={file['id']}"

    allowed = await ds.client.get(url, actor=ALICE)
    assert allowed.json()["files"][file["id"]]["filename"] == "plans.pdf"

    for actor in (None, {"id": "mallory"}):
        denied = await ds.client.get(url, actor=actor)
        assert denied.status_code == 200
        assert denied.json()["files"] == {}
        assert denied.json()["missing"] == [file["id"]]


@pytest.mark.asyncio
async def test_column_type_validates_written_values(make_ds, tmp_path, docs_db):
    ds = await docs_ds(make_ds, tmp_path, docs_db, {"attachment": "file"})
    column_type = await ds.get_column_type("data", "docs", "attachment")
    assert column_type.name == "file"
    assert await column_type.validate(None, ds) is None
    assert await column_type.validate("df-" + "0" * 26, ds) is None
    assert "df-" in await column_type.validate("../etc/passwd", ds)
    assert await column_type.validate(42, ds)
