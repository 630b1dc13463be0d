"""Per-column settings of ``file`` columns: writes through /-/insert and
/-/update are checked against ``source``, ``accept``, ``max_size`` and
``multiple``; multi-file cells render one ``<datasette-file>`` per id."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
import pytest_asyncio
from datasette.database import Database
from testkit import ALICE

PHOTOS = {
    "type": "file",
    "config": {
        "source": "photos",
        "accept": ["image/*"],
        "max_size": 100,
        "multiple": 3,
    },
}
COVER = {"type": "file", "config": {"source": "photos", "accept": [".png"]}}
ANY = {"type": "file", "config": {"max_size": 1000}}


@pytest_asyncio.fixture
async def album(make_ds, tmp_path, upload):
    """A Datasette with an ``albums`` table (photos: up to 3 images of at most
    100 bytes from the ``photos`` source; cover: one .png from ``photos``;
    attachment: any id, unchecked; any_file: any registered file), and some files to point at."""
    path = tmp_path / "data.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE albums (id INTEGER PRIMARY KEY, title TEXT, "
        "photos TEXT, cover TEXT, attachment TEXT, any_file TEXT)"
    )
    conn.execute("INSERT INTO albums (id, title) VALUES (1, 'first')")
    conn.commit()
    conn.close()
    actions = ("files-browse", "files-upload", "insert-row", "update-row")
    config = {
        "permissions": {action: {"id": "alice"} for action in actions},
        "plugins": {
            "datasette-files": {
                "sources": {
                    slug: {
                        "storage": "filesystem",
                        "config": {"root": str(tmp_path / slug)},
                    }
                    for slug in ("photos", "files")
                }
            }
        },
        "databases": {
            "data": {
                "tables": {
                    "albums": {
                        "column_types": {
                            "photos": PHOTOS,
                            "cover": COVER,
                            "attachment": "file",
                            "any_file": ANY,
                        }
                    }
                }
            }
        },
    }
    ds = await make_ds(config=config, start=False)
    ds.add_database(Database(ds, path=str(path)), name="data")
    await ds.invoke_startup()

    async def put(slug, filename, data, content_type):
        file = await upload(ds, slug, filename, data, content_type=content_type)
        return file["id"]

    files = {
        "cat": await put("photos", "cat.png", b"\x89PNG cat", "image/png"),
        "dog": await put("photos", "dog.jpg", b"\xff\xd8 dog", "image/jpeg"),
        "owl": await put("photos", "owl.png", b"\x89PNG owl", "image/png"),
        "emu": await put("photos", "emu.png", b"\x89PNG emu", "image/png"),
        "big": await put("photos", "big.png", b"x" * 101, "image/png"),
        "notes": await put("photos", "notes.txt", b"notes", "text/plain"),
        "elsewhere": await put("files", "far.png", b"\x89PNG far", "image/png"),
    }
    return ds, files


async def insert(ds, row, actor=ALICE):
    return await ds.client.post("/data/albums/-/insert", json={"row": row}, actor=actor)


async def update(ds, values, actor=ALICE):
    return await ds.client.post(
        "/data/albums/1/-/update", json={"update": values}, actor=actor
    )


async def stored(ds, column, row_id=1):
    result = await ds.get_database("data").execute(
        f"SELECT {column} FROM albums WHERE id = ?", [row_id]
    )
    return result.first()[0]


@pytest.mark.asyncio
async def test_valid_values_are_written(album):
    ds, f = album
    response = await insert(
        ds,
        {
            "photos": [f["cat"], f["dog"], f["owl"]],
            "cover": f["cat"],
            "attachment": f["notes"],
            "any_file": f["elsewhere"],
        },
    )
    assert response.status_code == 201, response.text
    row_id = response.json()["rows"][0]["id"]
    assert json.loads(await stored(ds, "photos", row_id)) == [
        f["cat"],
        f["dog"],
        f["owl"],
    ]
    # The row dialog sends a multi-file value as a JSON string; so may anyone.
    response = await update(ds, {"photos": json.dumps([f["owl"], f["cat"]])})
    assert response.status_code == 200, response.text
    assert json.loads(await stored(ds, "photos")) == [f["owl"], f["cat"]]
    # Empty values clear the column.
    for empty in (None, "", "[]"):
        response = await update(ds, {"photos": empty, "cover": None})
        assert response.status_code == 200, response.text


# (column, value builder, the rule the message names)
BAD_VALUES = [
    (
        "photos",
        lambda f: [f["cat"], f["dog"], f["owl"], f["emu"]],
        "multiple: at most 3",
    ),
    (
        "photos",
        lambda f: [f["cat"], f["cat"]],
        "multiple: the same file is listed twice",
    ),
    ("photos", lambda f: f["cat"], "multiple: must be a JSON array"),
    ("photos", lambda f: ["nope"], "multiple: every item must be"),
    ("photos", lambda f: [f["cat"], f["notes"]], "accept: "),
    ("photos", lambda f: [f["big"]], "max_size: "),
    ("photos", lambda f: [f["elsewhere"]], "source: "),
    ("photos", lambda f: ["df-" + "0" * 26], "source: "),
    ("cover", lambda f: f["dog"], "accept: "),
    ("any_file", lambda f: "df-" + "0" * 26, "is not a registered file"),
    ("cover", lambda f: [f["cat"]], "holds one file, not a list"),
    ("cover", lambda f: json.dumps([f["cat"]]), "holds one file, not a list"),
    ("photos", lambda f: [f["cat"], "df-" + "0" * 26], "source: "),
    ("attachment", lambda f: "../etc/passwd", "must be a datasette-files file id"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("column,value,rule", BAD_VALUES)
async def test_bad_values_are_a_400_naming_column_and_rule(album, column, value, rule):
    ds, f = album
    bad = value(f)
    for response in (
        await insert(ds, {"title": "bad", column: bad}),
        await update(ds, {column: bad}),
    ):
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["ok"] is False
        assert len(body["errors"]) == 1
        assert body["errors"][0].startswith(f"{column}: ")
        assert rule in body["errors"][0]
    assert await stored(ds, column) is None
    count = await ds.get_database("data").execute("SELECT count(*) FROM albums")
    assert count.first()[0] == 1


@pytest.mark.asyncio
async def test_messages_do_not_describe_the_file(album):
    # Datasette's validate() gets no actor, so messages only name the rule:
    # never a file's name, type or size, and "missing" equals "elsewhere".
    ds, f = album
    texts = []
    for value in ([f["notes"]], [f["big"]], [f["elsewhere"]], ["df-" + "0" * 26]):
        response = await update(ds, {"photos": value})
        texts.append(response.json()["errors"][0])
    joined = " ".join(texts)
    for secret in ("notes.txt", "text/plain", "101", "far.png", "files'"):
        assert secret not in joined
    assert texts[2].replace(f["elsewhere"], "ID") == texts[3].replace(
        "df-" + "0" * 26, "ID"
    )


@pytest.mark.asyncio
async def test_invalid_config_rejects_writes_without_a_500(make_ds, tmp_path):
    path = tmp_path / "data.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, f TEXT)")
    conn.commit()
    conn.close()
    config = {
        "permissions": {"insert-row": {"id": "alice"}},
        "databases": {
            "data": {
                "tables": {
                    "t": {
                        "column_types": {
                            "f": {"type": "file", "config": {"max_size": "big"}}
                        }
                    }
                }
            }
        },
    }
    ds = await make_ds(config=config, start=False)
    ds.add_database(Database(ds, path=str(path)), name="data")
    await ds.invoke_startup()
    response = await ds.client.post(
        "/data/t/-/insert", json={"row": {"f": "df-" + "0" * 26}}, actor=ALICE
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        "f: the column's file config is invalid: "
        "config max_size must be a positive integer"
    ]


CELL = re.compile(r'<datasette-file file-id="(df-[0-9a-z]{26})" batch-url="[^"]+">')


@pytest.mark.asyncio
async def test_multi_file_cells_render_every_file(album):
    ds, f = album
    photos = [f["owl"], f["cat"], f["dog"]]
    response = await update(ds, {"photos": photos, "cover": f["cat"]})
    assert response.status_code == 200, response.text
    for page in ("/data/albums", "/data/albums/1"):
        html = (await ds.client.get(page, actor=ALICE)).text
        # In order: the photos, then the cover.
        assert CELL.findall(html) == photos + [f["cat"]]
        assert '<span class="datasette-files">' in html
        assert "cat.png" not in html


@pytest.mark.asyncio
async def test_columns_without_config_behave_as_before(album):
    # Any well-formed id, registered or not; nothing else.
    ds, f = album
    unknown = "df-" + "0" * 26
    assert (await update(ds, {"attachment": unknown})).status_code == 200
    assert await stored(ds, "attachment") == unknown
    response = await update(ds, {"attachment": [f["cat"]]})
    assert response.status_code == 400
    html = (await ds.client.get("/data/albums/1", actor=ALICE)).text
    assert CELL.findall(html) == [unknown]


@pytest.mark.asyncio
async def test_a_lone_id_in_a_multiple_column_still_renders(album, tmp_path):
    # E.g. written before the column got `multiple`: shown, though a write
    # of it now would be refused.
    ds, f = album
    conn = sqlite3.connect(tmp_path / "data.db")
    conn.execute("UPDATE albums SET photos = ?", [f["cat"]])
    conn.commit()
    conn.close()
    html = (await ds.client.get("/data/albums/1", actor=ALICE)).text
    assert CELL.findall(html) == [f["cat"]]
    assert (await update(ds, {"photos": f["cat"]})).status_code == 400


@pytest.mark.asyncio
async def test_upsert_is_checked_too(album):
    ds, f = album
    response = await ds.client.post(
        "/data/albums/-/upsert",
        json={"rows": [{"id": 1, "photos": [f["cat"], f["notes"]]}]},
        actor=ALICE,
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        f"photos: accept: {f['notes']} is not one of image/*"
    ]
    response = await ds.client.post(
        "/data/albums/-/upsert",
        json={"rows": [{"id": 1, "photos": [f["cat"]]}]},
        actor=ALICE,
    )
    assert response.status_code == 200, response.text
    assert json.loads(await stored(ds, "photos")) == [f["cat"]]
