"""Importing CSV and TSV files as tables: what is refused (permissions,
targets, file types) and the ``file_actions`` hook that offers the import."""

from __future__ import annotations

import pytest
from datasette import hookimpl
from datasette.plugins import pm
from import_helpers import (
    BOB,
    alice_can_import,
    import_file,
    start_import,
    table_exists,
    table_rows,
)
from testkit import ALICE

# Refusals


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "missing", ["create-table", "insert-row"], ids=["no-create", "no-insert"]
)
async def test_actor_without_create_table_or_insert_row_refused(
    import_ds, put, json_error, missing
):
    permissions = alice_can_import(
        **{"files-browse": {"id": ["alice", "bob"]}},
    )
    permissions[missing] = {"id": "alice"}
    other = "insert-row" if missing == "create-table" else "create-table"
    permissions[other] = {"id": ["alice", "bob"]}
    ds = await import_ds(permissions=permissions)
    file = await put(ds, "x.csv", b"a\n1\n")
    body = json_error(
        await ds.client.get(f"/-/files/{file['id']}/-/import.json", actor=BOB), 403
    )
    assert "create-table and insert-row" in body["errors"][0]
    json_error(await start_import(ds, file["id"], "x", actor=BOB), 403)
    page = await ds.client.get(f"/-/files/{file['id']}/-/import", actor=BOB)
    assert page.status_code == 403 and "create-table" in page.text
    file_page = await ds.client.get(f"/-/files/{file['id']}", actor=BOB)
    assert file_page.status_code == 200 and "Import as table" not in file_page.text
    assert not table_exists(ds, "x")


@pytest.mark.asyncio
async def test_permission_is_per_database(import_ds, put, json_error):
    permissions = alice_can_import()
    del permissions["create-table"]
    ds = await import_ds(permissions=permissions)
    # create-table granted on 'data' only, through the database's config.
    ds.config.setdefault("databases", {})["data"] = {
        "permissions": {"create-table": {"id": "alice"}}
    }
    file = await put(ds, "x.csv", b"a\n1\n")
    preview = await ds.client.get(f"/-/files/{file['id']}/-/import.json", actor=ALICE)
    assert preview.json()["databases"] == ["data"]
    json_error(await start_import(ds, file["id"], "x", database="other"), 403)
    assert (await import_file(ds, file["id"], "x"))["status"] == "done"


@pytest.mark.asyncio
async def test_actor_who_cannot_view_the_file_gets_404(import_ds, put, json_error):
    permissions = alice_can_import(
        **{
            "create-table": {"id": ["alice", "bob"]},
            "insert-row": {"id": ["alice", "bob"]},
        }
    )
    ds = await import_ds(permissions=permissions)
    file = await put(ds, "x.csv", b"a\n1\n")
    json_error(
        await ds.client.get(f"/-/files/{file['id']}/-/import.json", actor=BOB), 404
    )
    json_error(await start_import(ds, file["id"], "x", actor=BOB), 404)
    page = await ds.client.get(f"/-/files/{file['id']}/-/import", actor=BOB)
    assert page.status_code == 404 and "<html" in page.text.lower()
    assert not table_exists(ds, "x")


@pytest.mark.asyncio
async def test_existing_table_refused_and_untouched(import_ds, put, json_error):
    ds = await import_ds()
    await ds.databases["data"].execute_write("CREATE TABLE Taken (a TEXT)")
    await ds.databases["data"].execute_write("INSERT INTO Taken VALUES ('keep')")
    file = await put(ds, "x.csv", b"a\nnew\n")
    for name in ("Taken", "taken"):  # SQLite names are case-insensitive
        body = json_error(await start_import(ds, file["id"], name), 409)
        assert "already exists" in body["errors"][0]
    page = await ds.client.post(
        f"/-/files/{file['id']}/-/import",
        data={"database": "data", "table": "Taken"},
        actor=ALICE,
    )
    assert page.status_code == 409
    assert "already exists" in page.text
    assert 'value="Taken"' in page.text  # the form keeps what was entered
    assert table_rows(ds, "Taken") == [("keep",)]
    # A second import into a table a first import just created is refused too.
    assert (await import_file(ds, file["id"], "fresh"))["status"] == "done"
    json_error(await start_import(ds, file["id"], "fresh"), 409)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "body,message",
    [
        ({"database": "data", "table": ""}, "Enter a table name"),
        ({"database": "data", "table": " x"}, "space"),
        ({"database": "data", "table": "sqlite_x"}, "reserved"),
        ({"database": "data", "table": "a\x00b"}, "control"),
        ({"database": "data", "table": "x" * 129}, "at most 128"),
        ({"database": "data", "table": 5}, "Enter a table name"),
        ({"database": "nope", "table": "x"}, "does not exist"),
        ({"database": "ro", "table": "x"}, "read-only"),
        ({"table": "x"}, "Choose a database"),
        ({"database": "data", "table": "x", "delimiter": "?"}, "delimiter"),
    ],
)
async def test_bad_targets_refused(import_ds, put, json_error, body, message):
    ds = await import_ds()
    file = await put(ds, "x.csv", b"a\n1\n")
    response = await ds.client.post(
        f"/-/files/{file['id']}/-/import.json", json=body, actor=ALICE
    )
    assert message in json_error(response, 400)["errors"][0]


@pytest.mark.asyncio
async def test_bad_requests_refused(import_ds, put, json_error):
    ds = await import_ds()
    png = await put(ds, "x.png", b"\x89PNG\r\n\x1a\n" + bytes(100), "image/png")
    body = json_error(
        await ds.client.get(f"/-/files/{png['id']}/-/import.json", actor=ALICE), 400
    )
    assert "CSV" in body["errors"][0]
    json_error(await start_import(ds, png["id"], "x"), 400)
    file = await put(ds, "x.csv", b"a\n1\n")
    url = f"/-/files/{file['id']}/-/import.json"
    json_error(await ds.client.post(url, content=b"{", actor=ALICE), 400)
    json_error(await ds.client.post(url, json=[1], actor=ALICE), 400)
    json_error(await ds.client.put(url, json={}, actor=ALICE), 405)
    json_error(await ds.client.get("/-/files/df-nope/-/import.json", actor=ALICE), 404)
    empty = await put(ds, "empty.csv", b"")
    json_error(
        await ds.client.get(f"/-/files/{empty['id']}/-/import.json", actor=ALICE), 400
    )


@pytest.mark.asyncio
async def test_turned_off(import_ds, put, json_error):
    ds = await import_ds(plugin={"csv_import": False})
    file = await put(ds, "x.csv", b"a\n1\n")
    page = await ds.client.get(f"/-/files/{file['id']}", actor=ALICE)
    assert "Import as table" not in page.text
    json_error(await start_import(ds, file["id"], "x"), 404)


# The file_actions hook


@pytest.mark.asyncio
async def test_import_link_only_for_importable_files_and_actors(import_ds, put):
    permissions = alice_can_import(**{"files-browse": {"id": ["alice", "bob"]}})
    ds = await import_ds(permissions=permissions)
    cases = {
        "data.csv": (b"a,b\n1,2\n", "text/csv", True),
        "data.tsv": (b"a\tb\n1\t2\n", "text/tab-separated-values", True),
        "table.txt": (b"a;b;c\n1;2;3\n4;5;6\n", "text/plain", True),
        "prose.txt": (b"Just some words.\nAnd more.\n", "text/plain", False),
        "photo.png": (b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png", False),
        "binary.csv": (b"\x00\x01\x02" * 50, "text/csv", False),
    }
    for filename, (data, content_type, expected) in cases.items():
        file = await put(ds, filename, data, content_type=content_type)
        page = await ds.client.get(f"/-/files/{file['id']}", actor=ALICE)
        link = f'href="/-/files/{file["id"]}/-/import"'
        assert (link in page.text) is expected, filename
        bob_page = await ds.client.get(f"/-/files/{file['id']}", actor=BOB)
        assert "Import as table" not in bob_page.text


class ExtraActionPlugin:
    @hookimpl
    def file_actions(self, datasette, actor, file, preview_bytes):
        async def inner():
            if preview_bytes.startswith(b"a,b"):
                return [
                    {
                        "href": f"/-/demo/{file.id}",
                        "label": f"Demo for {file.filename}",
                    },
                    {"label": "no href, dropped"},
                    "not a dict, dropped",
                ]
            return []

        return inner()


@pytest.mark.asyncio
async def test_third_party_file_actions(import_ds, put):
    pm.register(ExtraActionPlugin(), name="test-extra-file-action")
    try:
        ds = await import_ds()
        file = await put(ds, "data.csv", b"a,b\n1,2\n")
        page = await ds.client.get(f"/-/files/{file['id']}", actor=ALICE)
        assert f'href="/-/demo/{file["id"]}">Demo for data.csv</a>' in page.text
        assert "Import as table" in page.text
        assert "dropped" not in page.text
        other = await put(ds, "other.csv", b"x,y\n1,2\n")
        page = await ds.client.get(f"/-/files/{other['id']}", actor=ALICE)
        assert "/-/demo/" not in page.text
    finally:
        pm.unregister(name="test-extra-file-action")
