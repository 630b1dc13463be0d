"""Upgrading from datasette-files 0.1a3: its registry is adopted at startup.

Each test writes a 0.1a3 registry (its three tables) into the internal
database file, starts Datasette with ``internal=`` that file, and checks over
HTTP that the old files are there, under their old ids.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import time

import pytest
from datasette.database import Database
from testkit import ALICE, REGISTRY_0_1A3
from thumbnail_helpers import image_bytes

ACTIONS = ("files-browse", "files-upload", "files-edit", "files-delete")
OLD_TABLES = (
    "datasette_files_sources",
    "datasette_files",
    "datasette_files_thumbnails",
)
OLD_SCHEMA = (
    REGISTRY_0_1A3
    + """
INSERT INTO datasette_files_sources (id, slug, storage_type, config, created_at)
VALUES (1, 'files', 'filesystem', '{}', '2025-01-01 00:00:00'),
       (2, 'retired', 'filesystem', '{}', '2025-01-01 00:00:00');
"""
)


def old_id(n: int) -> str:
    return f"df-01jbq{n:021d}"


REPORT, PHOTO, RETIRED, BROCHURE = (old_id(n) for n in (1, 2, 3, 4))
REPORT_BYTES = b"quarterly numbers\n"
PHOTO_BYTES = image_bytes("PNG")
OLD_THUMBNAIL = image_bytes("PNG", size=(32, 16))


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class OldRegistry:
    """A 0.1a3 registry in ``tmp_path/internal.db``, files under ``files/``."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.path = tmp_path / "internal.db"

    def execute(self, sql: str, params=()) -> None:
        conn = sqlite3.connect(self.path)
        with conn:
            conn.execute(sql, params)
        conn.close()

    def create(self) -> None:
        conn = sqlite3.connect(self.path)
        conn.executescript(OLD_SCHEMA)
        conn.close()

    def add_file(self, file_id, path, data=b"", source_id=1, **columns) -> None:
        row = {
            "id": file_id,
            "source_id": source_id,
            "path": path,
            "filename": path.rsplit("/", 1)[-1],
            "content_type": "text/plain",
            "content_hash": sha256(data),
            "size": len(data),
            "uploaded_by": "alice",
            "created_at": "2025-03-01T10:00:00.000000Z",
            "metadata": "{}",
            **columns,
        }
        self.execute(
            f"INSERT INTO datasette_files ({', '.join(row)}) "
            f"VALUES ({', '.join('?' for _ in row)})",
            list(row.values()),
        )
        if source_id == 1:
            target = self.tmp_path / "files" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def add_thumbnail(self, file_id, data, content_type="image/png") -> None:
        self.execute(
            "INSERT INTO datasette_files_thumbnails (file_id, thumbnail, "
            "content_type, width, height, generator, created_at) "
            "VALUES (?, ?, ?, 32, 16, 'pillow', '2025-03-01 10:00:00')",
            [file_id, data, content_type],
        )

    def dump(self) -> dict:
        """Schema and every row of the old tables, blobs included."""
        conn = sqlite3.connect(self.path)
        try:
            return {
                table: (
                    conn.execute(
                        "SELECT sql FROM sqlite_master WHERE tbl_name = ?", [table]
                    ).fetchall(),
                    conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall(),
                )
                for table in OLD_TABLES
            }
        finally:
            conn.close()


@pytest.fixture
def old(tmp_path) -> OldRegistry:
    """The 0.1a3 registry every test starts from: three files, one thumbnail."""
    registry = OldRegistry(tmp_path)
    registry.create()
    registry.add_file(
        REPORT,
        "2025/report.txt",
        REPORT_BYTES,
        uploaded_by="bob",
        metadata='{"department": "finance"}',
        search_text="zebra budget",
    )
    registry.add_file(
        PHOTO,
        "photo.png",
        PHOTO_BYTES,
        content_type="image/png",
        width=600,
        height=300,
        created_at="2025-03-02T09:00:00.000000Z",
        search_text=None,
    )
    registry.add_thumbnail(PHOTO, OLD_THUMBNAIL)
    registry.add_file(RETIRED, "old.txt", b"retired", source_id=2)
    return registry


@pytest.fixture
def start(make_ds, tmp_path):
    """``await start()``: Datasette with source ``files`` only (not
    ``retired``); ``sources=`` adds more, ``databases=`` adds databases."""

    async def start_ds(sources=(), databases=None, tables=None):
        config = {
            # Anyone may browse, so thumbnails show the plugin's own
            # Cache-Control (Datasette marks signed-in responses no-store).
            "permissions": {
                **{action: {"id": "alice"} for action in ACTIONS},
                "files-browse": True,
            },
            "plugins": {
                "datasette-files": {
                    "sources": {
                        slug: {
                            "storage": "filesystem",
                            "config": {"root": str(tmp_path / slug)},
                        }
                        for slug in ("files", *sources)
                    }
                }
            },
        }
        if tables:
            config["databases"] = tables
        ds = await make_ds(config=config, start=False)
        for name, path in (databases or {}).items():
            ds.add_database(Database(ds, path=str(path)), name=name)
        await ds.invoke_startup()
        return ds

    return start_ds


async def file_json(ds, file_id: str):
    return await ds.client.get(f"/-/files/{file_id}.json", actor=ALICE)


async def rows(ds, sql: str, params=()) -> list[tuple]:
    result = await ds.get_internal_database().execute(sql, params)
    return [tuple(row) for row in result]


def adoption_log(caplog) -> str:
    messages = [
        r.getMessage() for r in caplog.records if "0.1a3 registry" in r.getMessage()
    ]
    assert len(messages) == 1, messages
    caplog.clear()
    return messages[0]


@pytest.mark.asyncio
async def test_adopted_files_keep_their_ids_and_metadata(old, start, caplog):
    with caplog.at_level(logging.INFO, logger="datasette_files"):
        ds = await start()
    log = adoption_log(caplog)
    assert "3 files adopted (1 of them in unconfigured sources)" in log
    assert "0 already present, 0 skipped" in log
    assert "1 thumbnails adopted (0 skipped)" in log
    assert "retired (1)" in log

    response = await file_json(ds, REPORT)
    assert response.status_code == 200, response.text
    file = response.json()["file"]
    assert {key: file[key] for key in ("id", "filename", "source_slug")} == {
        "id": REPORT,
        "filename": "report.txt",
        "source_slug": "files",
    }
    assert file["size"] == len(REPORT_BYTES)
    assert file["content_hash"] == sha256(REPORT_BYTES)
    assert file["content_type"] == "text/plain"
    assert file["uploaded_by"] == "bob"
    assert file["created_at"] == "2025-03-01T10:00:00.000000Z"
    assert file["search_text"] == "zebra budget"

    photo = (await file_json(ds, PHOTO)).json()["file"]
    assert (photo["width"], photo["height"], photo["search_text"]) == (600, 300, "")
    (metadata,) = await rows(
        ds, "SELECT metadata FROM files_files WHERE id = ?", [REPORT]
    )
    assert metadata == ('{"department": "finance"}',)

    download = await ds.client.get(file["download_url"], actor=ALICE)
    assert download.status_code == 200
    assert download.content == REPORT_BYTES

    found = await ds.client.get(
        "/-/files/search.json", params={"q": "zebra"}, actor=ALICE
    )
    assert [f["id"] for f in found.json()["files"]] == [REPORT]
    listing = await ds.client.get("/-/files/source/files.json", actor=ALICE)
    assert [f["id"] for f in listing.json()["files"]] == [PHOTO, REPORT]


@pytest.mark.asyncio
async def test_files_of_unconfigured_sources_are_kept_hidden(
    old, start, json_error, caplog
):
    # A source id with no source row: kept too, under a slug no one uses.
    old.add_file(old_id(9), "lost.txt", b"lost", source_id=7)
    with caplog.at_level(logging.INFO, logger="datasette_files"):
        ds = await start()
    assert "hidden until configured: 0.1a3-source-7 (1), retired (1)" in (
        adoption_log(caplog)
    )
    json_error(await file_json(ds, RETIRED), 404)
    json_error(await file_json(ds, old_id(9)), 404)
    found = await ds.client.get(
        "/-/files/search.json", params={"q": "old"}, actor=ALICE
    )
    assert found.json()["files"] == []
    assert await rows(
        ds, "SELECT source_slug, path FROM files_files WHERE id = ?", [RETIRED]
    ) == [("retired", "old.txt")]
    await ds.invoke_shutdown()

    # Configuring the source again shows them.
    ds = await start(sources=("retired",))
    response = await file_json(ds, RETIRED)
    assert response.status_code == 200, response.text
    assert response.json()["file"]["source_slug"] == "retired"


async def wait_for_our_thumbnail(ds, file_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while await rows(
        ds,
        "SELECT 1 FROM files_thumbnails WHERE file_id = ? AND cache_key = 'adopted:0.1a3'",
        [file_id],
    ):
        assert time.monotonic() < deadline, "our thumbnail was never made"
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_an_adopted_thumbnail_is_shown_until_ours_is_made(old, start):
    ds = await start()
    url = f"/-/files/{PHOTO}/thumbnail"
    first = await ds.client.get(url)
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/png"
    assert first.content == OLD_THUMBNAIL
    # Revalidated on every use: ours replaces it.
    assert first.headers["cache-control"] == "private, no-cache"

    await wait_for_our_thumbnail(ds, PHOTO)
    second = await ds.client.get(url)
    assert second.headers["content-type"] == "image/webp"
    assert second.headers["cache-control"] == "private, max-age=3600"
    assert second.headers["etag"] != first.headers["etag"]


@pytest.mark.asyncio
async def test_an_adopted_thumbnail_no_generator_could_make_stays(old, start):
    old.add_file(BROCHURE, "brochure.pdf", b"%PDF-1.4", content_type="application/pdf")
    old.add_thumbnail(BROCHURE, OLD_THUMBNAIL)
    old.add_file(old_id(5), "vector.svg", b"<svg/>", content_type="image/svg+xml")
    old.add_thumbnail(old_id(5), b"<svg onload='alert(1)'/>", "image/svg+xml")
    ds = await start()
    response = await ds.client.get(f"/-/files/{BROCHURE}/thumbnail")
    assert response.content == OLD_THUMBNAIL
    assert response.headers["cache-control"] == "private, max-age=3600"
    # A scriptable type is never adopted: the SVG gets its type icon.
    icon = await ds.client.get(f"/-/files/{old_id(5)}/thumbnail", actor=ALICE)
    assert icon.headers["content-type"] == "image/svg+xml"
    assert b"alert" not in icon.content


@pytest.mark.asyncio
async def test_adoption_happens_once_and_picks_up_new_rows(old, start, caplog):
    with caplog.at_level(logging.INFO, logger="datasette_files"):
        ds = await start()
        adoption_log(caplog)
        before = await rows(ds, "SELECT * FROM files_files ORDER BY id")
        await ds.invoke_shutdown()

        ds = await start()
        log = adoption_log(caplog)
        assert "0 files adopted" in log
        assert "0 thumbnails adopted (0 skipped), 3 adopted earlier" in log
        assert await rows(ds, "SELECT * FROM files_files ORDER BY id") == before
        await ds.invoke_shutdown()

        # 0.1a3 ran again in between and added a file.
        old.add_file(BROCHURE, "brochure.txt", b"new", search_text="later")
        ds = await start()
        log = adoption_log(caplog)
    assert "1 files adopted (0 of them in unconfigured sources)" in log
    assert "3 adopted earlier" in log
    assert len(await rows(ds, "SELECT id FROM files_files")) == 4
    assert (await file_json(ds, BROCHURE)).json()["file"]["search_text"] == "later"
    assert len(await rows(ds, "SELECT * FROM files_thumbnails")) == 1


@pytest.mark.asyncio
async def test_a_file_deleted_after_adoption_is_not_adopted_again(
    old, start, json_error
):
    ds = await start()
    deleted = await ds.client.post(f"/-/files/{REPORT}/-/delete", actor=ALICE)
    assert deleted.status_code == 200, deleted.text
    await ds.invoke_shutdown()

    ds = await start()
    json_error(await file_json(ds, REPORT), 404)
    assert (await file_json(ds, PHOTO)).status_code == 200


@pytest.mark.asyncio
async def test_ids_and_paths_we_already_have_are_left_alone(
    tmp_path, start, upload, caplog, json_error
):
    ds = await start()
    ours = await upload(ds, "files", "mine.txt", b"ours")
    ((our_path,),) = await rows(
        ds, "SELECT path FROM files_files WHERE id = ?", [ours["id"]]
    )
    await ds.invoke_shutdown()

    old = OldRegistry(tmp_path)
    old.create()
    # Same id as ours, other content: ours is not overwritten.
    old.add_file(ours["id"], "elsewhere.txt", b"theirs")
    # Another id at our path: skipped, reported, startup carries on. (Its
    # bytes would overwrite ours, so write the row only.)
    old.execute(
        "INSERT INTO datasette_files (id, source_id, path, filename, created_at) "
        "VALUES (?, 1, ?, 'clash.txt', '2025-01-01T00:00:00Z')",
        [REPORT, our_path],
    )
    with caplog.at_level(logging.INFO, logger="datasette_files"):
        ds = await start()
    log = adoption_log(caplog)
    assert "0 files adopted" in log
    assert "1 already present, 1 skipped" in log
    assert f"skipped ids: {REPORT}" in log
    file = (await file_json(ds, ours["id"])).json()["file"]
    assert (file["filename"], file["size"]) == ("mine.txt", 4)
    json_error(await file_json(ds, REPORT), 404)
    download = await ds.client.get(file["download_url"], actor=ALICE)
    assert download.content == b"ours"


@pytest.mark.asyncio
async def test_the_old_tables_are_left_untouched(old, start):
    before = old.dump()
    ds = await start()
    await ds.client.post(f"/-/files/{REPORT}/-/delete", actor=ALICE)
    await ds.client.get(f"/-/files/{PHOTO}/thumbnail", actor=ALICE)
    await wait_for_our_thumbnail(ds, PHOTO)
    await ds.invoke_shutdown()
    await start()
    assert old.dump() == before
    assert before["datasette_files"][1]  # the comparison saw the rows


@pytest.mark.asyncio
async def test_file_columns_holding_adopted_ids_render(old, start, tmp_path):
    data = tmp_path / "data.db"
    conn = sqlite3.connect(data)
    with conn:
        conn.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, attachment TEXT)")
        conn.execute("INSERT INTO docs (attachment) VALUES (?)", [REPORT])
    conn.close()
    ds = await start(
        databases={"data": data},
        tables={"data": {"tables": {"docs": {"column_types": {"attachment": "file"}}}}},
    )
    table = await ds.client.get("/data/docs", actor=ALICE)
    assert f'<datasette-file file-id="{REPORT}"' in table.text
    batch = await ds.client.get(
        "/-/files/batch.json", params={"id": [REPORT, RETIRED]}, actor=ALICE
    )
    body = batch.json()
    assert body["files"][REPORT]["filename"] == "report.txt"
    assert body["missing"] == [RETIRED]


@pytest.mark.asyncio
async def test_an_older_schema_with_fewer_columns_is_adopted(tmp_path, start):
    conn = sqlite3.connect(tmp_path / "internal.db")
    conn.executescript(
        """
        CREATE TABLE datasette_files_sources (id INTEGER PRIMARY KEY, slug TEXT);
        CREATE TABLE datasette_files (id TEXT PRIMARY KEY, source_id INTEGER,
            path TEXT, filename TEXT, size INTEGER, created_at TEXT);
        INSERT INTO datasette_files_sources VALUES (1, 'files');
        INSERT INTO datasette_files VALUES
            ('df-01jbq000000000000000000001', 1, 'a.txt', 'a.txt', 3,
             '2024-12-01 10:00:00');
        """
    )
    conn.close()
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.txt").write_bytes(b"abc")
    ds = await start()
    file = (await file_json(ds, REPORT)).json()["file"]
    assert (file["filename"], file["size"], file["search_text"]) == ("a.txt", 3, "")
    assert file["created_at"] == "2024-12-01 10:00:00"
    download = await ds.client.get(file["download_url"], actor=ALICE)
    assert download.content == b"abc"


@pytest.mark.asyncio
async def test_an_unrecognisable_old_table_does_not_stop_startup(
    tmp_path, start, caplog
):
    conn = sqlite3.connect(tmp_path / "internal.db")
    conn.executescript(
        """
        CREATE TABLE datasette_files_sources (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE datasette_files (id TEXT PRIMARY KEY, source_id INTEGER);
        """
    )
    conn.close()
    with caplog.at_level(logging.INFO, logger="datasette_files"):
        ds = await start()
    assert "not adopting the 0.1a3 registry" in caplog.text
    assert (
        await ds.client.get("/-/files/sources.json", actor=ALICE)
    ).status_code == 200


@pytest.mark.asyncio
async def test_a_failed_adoption_is_rolled_back_and_logged(tmp_path, start, caplog):
    conn = sqlite3.connect(tmp_path / "internal.db")
    conn.executescript(
        """
        CREATE TABLE datasette_files_sources (id INTEGER PRIMARY KEY, slug TEXT);
        INSERT INTO datasette_files_sources VALUES (1, 'files');
        CREATE TABLE datasette_files (id TEXT PRIMARY KEY, source_id INTEGER,
            broken TEXT);
        INSERT INTO datasette_files (id, source_id, broken) VALUES
            ('df-01jbq000000000000000000001', 1, '"fine.txt"'),
            ('df-01jbq000000000000000000002', 1, 'not json');
        -- Reading the second row's path is an SQL error.
        ALTER TABLE datasette_files ADD COLUMN
            path TEXT GENERATED ALWAYS AS (json_extract(broken, '$')) VIRTUAL;
        """
    )
    conn.close()
    with caplog.at_level(logging.INFO, logger="datasette_files"):
        ds = await start()
    assert "adopting the 0.1a3 registry failed: malformed JSON" in caplog.text
    assert await rows(ds, "SELECT * FROM files_files") == []
    assert await rows(ds, "SELECT * FROM files_adopted") == []
    assert (
        await ds.client.get("/-/files/sources.json", actor=ALICE)
    ).status_code == 200
