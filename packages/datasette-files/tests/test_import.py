"""Importing CSV and TSV files as tables: types, progress, malformed input,
memory and restarts. Refusals and the file_actions hook: test_import_refusals.py.

A Datasette with a ``files`` source and a writable ``data`` database, where
alice may browse and upload files and create tables and insert rows. Files go
in through the upload API; imports run through the HTTP endpoints a browser
or script would use, and the result is read back from the ``data`` database.
"""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
import tracemalloc

import pytest
from datasette_files import filesystem
from datasette_files.imports import csvstream
from datasette_files.imports.csvstream import LineReader, read_records
from datasette_files.state import get_state
from import_helpers import (
    BOB,
    alice_can_import,
    import_file,
    start_import,
    table_exists,
    table_info,
    table_rows,
    wait_for_job,
)
from testkit import ALICE

TYPED_CSV = (
    b"id,price,name,zip,notes,empty\n"
    b"1,1.5,Alice,01234,plain,\n"
    b'2,,"Smith, Bob",99501,"two\nlines, and a ""quote""",\n'
    b"-3,2e3,,00000,,\n"
    b"40,-0.25,Zo\xc3\xab,12345,,\n"
)


# Types, delimiters, encodings


@pytest.mark.asyncio
async def test_types_detected_and_values_imported(import_ds, put):
    ds = await import_ds()
    file = await put(ds, "people.csv", TYPED_CSV)
    preview = await ds.client.get(f"/-/files/{file['id']}/-/import.json", actor=ALICE)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["delimiter"] == "comma"
    assert body["table"] == "people"
    assert body["databases"] == ["data", "other"]
    assert [(c["name"], c["type"]) for c in body["columns"]] == [
        ("id", "INTEGER"),
        ("price", "REAL"),
        ("name", "TEXT"),
        ("zip", "TEXT"),  # leading zeros must survive
        ("notes", "TEXT"),
        ("empty", "TEXT"),
    ]
    assert body["sample_rows"][1][4] == 'two\nlines, and a "quote"'

    job = await import_file(ds, file["id"], "people")
    assert job["status"] == "done", job
    assert job["rows_imported"] == 4
    assert job["table_url"] == "/data/people"
    assert table_info(ds, "people") == [
        ("id", "INTEGER"),
        ("price", "REAL"),
        ("name", "TEXT"),
        ("zip", "TEXT"),
        ("notes", "TEXT"),
        ("empty", "TEXT"),
    ]
    assert table_rows(ds, "people") == [
        (1, 1.5, "Alice", "01234", "plain", ""),
        (2, None, "Smith, Bob", "99501", 'two\nlines, and a "quote"', ""),
        (-3, 2000.0, "", "00000", "", ""),
        (40, -0.25, "Zoë", "12345", "", ""),
    ]
    # Datasette serves the new table.
    response = await ds.client.get("/data/people.json?_shape=array", actor=ALICE)
    assert response.status_code == 200
    assert response.json()[3]["name"] == "Zoë"


@pytest.mark.asyncio
async def test_tsv_with_bom_and_unicode(import_ds, put):
    ds = await import_ds()
    data = "\ufeffnom\tvilles 日本\tn\nÉlodie\tKyōto, Ōsaka\t7\nZürich\t\t\n".encode()
    file = await put(ds, "villes.tsv", data, content_type="text/tab-separated-values")
    job = await import_file(ds, file["id"], "villes")
    assert job["status"] == "done", job
    assert table_info(ds, "villes") == [
        ("nom", "TEXT"),
        ("villes 日本", "TEXT"),
        ("n", "INTEGER"),
    ]
    assert table_rows(ds, "villes") == [
        ("Élodie", "Kyōto, Ōsaka", 7),
        ("Zürich", "", None),
    ]


@pytest.mark.asyncio
async def test_semicolons_crlf_and_short_rows(import_ds, put):
    ds = await import_ds()
    data = b'\r\na;b;c\r\n1;"x\r\ny";3\r\n2;z\r\n\r\n4;w;6\r\n'
    file = await put(ds, "semi.csv", data)
    job = await import_file(ds, file["id"], "semi")
    assert job["status"] == "done", job
    # A short row gets NULLs; blank lines (even before the header) are
    # skipped; CRLF inside quotes is kept.
    assert table_rows(ds, "semi") == [(1, "x\r\ny", 3), (2, "z", None), (4, "w", 6)]


@pytest.mark.asyncio
async def test_utf16_and_windows_1252(import_ds, put):
    ds = await import_ds()
    utf16 = "name\tcity\nJosé\tMálaga\n".encode("utf-16")
    file = await put(ds, "excel.txt", utf16, content_type="text/plain")
    assert (await import_file(ds, file["id"], "excel"))["status"] == "done"
    assert table_rows(ds, "excel") == [("José", "Málaga")]
    cp1252 = "item,price\nCafé crème,3\n€uro,4\n".encode("cp1252")
    file = await put(ds, "cafe.csv", cp1252)
    preview = await ds.client.get(f"/-/files/{file['id']}/-/import.json", actor=ALICE)
    assert preview.json()["encoding"] == "cp1252"
    assert (await import_file(ds, file["id"], "cafe"))["status"] == "done"
    assert table_rows(ds, "cafe") == [("Café crème", 3), ("€uro", 4)]


@pytest.mark.asyncio
async def test_delimiter_choice_overrides_detection(import_ds, put):
    ds = await import_ds()
    file = await put(ds, "pipes.csv", b"a|b,c\n1|2,3\n")
    url = f"/-/files/{file['id']}/-/import.json"
    detected = (await ds.client.get(url, actor=ALICE)).json()
    assert [c["name"] for c in detected["columns"]] == ["a|b", "c"]
    piped = (await ds.client.get(url + "?delimiter=pipe", actor=ALICE)).json()
    assert [c["name"] for c in piped["columns"]] == ["a", "b,c"]
    job = await import_file(ds, file["id"], "pipes", delimiter="pipe")
    assert job["status"] == "done"
    assert table_rows(ds, "pipes") == [(1, "2,3")]
    bad = await ds.client.get(url + "?delimiter=x", actor=ALICE)
    assert bad.status_code == 400


@pytest.mark.asyncio
async def test_header_names_cleaned(import_ds, put):
    ds = await import_ds()
    file = await put(ds, "h.csv", b'Name,,name,"a\nb"\n1,2,3,4\n')
    job = await import_file(ds, file["id"], "h")
    assert [c["name"] for c in job["columns"]] == ["Name", "column_2", "name_2", "a b"]
    assert table_rows(ds, "h") == [(1, 2, 3, 4)]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 64])
@pytest.mark.parametrize(
    "text",
    [
        'a,b\r\n1,"x\r\ny"\r\n2,z\r\n',
        'a,b\n1,"x\ny"\n2,z',
        "a,b\r1,x\r2,y\r",
        'a,b\n"1\r",2\n\u2028,\u00e9\n',
        'é,日本\n"ü","""q"""\n',
    ],
)
def test_streamed_records_match_csv_whatever_the_chunks(text, chunk_size):
    """Chunk boundaries (inside CRLF, multi-byte characters, quotes) change nothing."""
    data = text.encode()
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    streamed = [r for _, r in read_records(LineReader(chunks, "utf-8-sig"), ",")]
    expected = list(csv.reader(io.StringIO(text, newline="")))
    assert streamed == expected


# Progress and the job pages


@pytest.mark.asyncio
async def test_progress_json_and_page_until_done(import_ds, put):
    ds = await import_ds()
    lines = [b"n,square,label"] + [
        f"{i},{i * i},row {i:07d}".encode() for i in range(150_000)
    ]
    data = b"\n".join(lines) + b"\n"
    assert len(data) > 4 * 1024 * 1024  # several storage chunks
    file = await put(ds, "big.csv", data)
    response = await start_import(ds, file["id"], "big")
    assert response.status_code == 202
    assert response.headers["location"] == response.json()["job"]["url"]
    job = response.json()["job"]
    assert job["status"] in ("queued", "running")
    assert job["bytes_total"] == len(data)
    page = await ds.client.get(job["url"], actor=ALICE)
    assert page.status_code == 200
    assert "import-progress.js" in page.text
    seen = []
    while not job["finished"]:
        job = (await ds.client.get(job["json_url"], actor=ALICE)).json()["job"]
        seen.append((job["rows_imported"], job["bytes_read"]))
        await asyncio.sleep(0.01)
    assert job["status"] == "done", job
    assert job["rows_imported"] == 150_000
    assert job["bytes_read"] == len(data)
    assert job["progress"] == 1.0
    assert seen == sorted(seen)  # progress never goes backwards
    assert table_rows(ds, "big")[-1] == (149_999, 149_999**2, "row 0149999")
    page = await ds.client.get(job["url"], actor=ALICE)
    assert "Open the table" in page.text and 'href="/data/big"' in page.text
    assert "import-progress.js" not in page.text


@pytest.mark.asyncio
async def test_browser_form_posts_and_redirects(import_ds, put):
    ds = await import_ds()
    file = await put(ds, "Sales 2024 (final).csv", b"a,b\n1,2\n")
    page = await ds.client.get(f"/-/files/{file['id']}/-/import", actor=ALICE)
    assert page.status_code == 200
    assert 'value="Sales_2024_final"' in page.text
    assert "<option selected>data</option>" in page.text
    assert ">ro<" not in page.text  # immutable databases are not offered
    response = await ds.client.post(
        f"/-/files/{file['id']}/-/import",
        data={"database": "other", "table": "sales", "delimiter": "comma"},
        actor=ALICE,
    )
    assert response.status_code == 302
    job_page = response.headers["location"]
    assert job_page.startswith("/-/files/imports/imp-")
    job = await wait_for_job(ds, {"json_url": job_page + ".json"})
    assert job["status"] == "done"
    assert table_rows(ds, "sales", database="other") == [(1, 2)]


@pytest.mark.asyncio
async def test_cross_site_form_post_refused(import_ds, put):
    ds = await import_ds()
    file = await put(ds, "x.csv", b"a\n1\n")
    response = await ds.client.post(
        f"/-/files/{file['id']}/-/import",
        data={"database": "data", "table": "x"},
        headers={"sec-fetch-site": "cross-site"},
        actor=ALICE,
    )
    assert response.status_code == 403
    assert not table_exists(ds, "x")


@pytest.mark.asyncio
async def test_only_the_starter_sees_a_job(import_ds, put, json_error):
    permissions = alice_can_import(
        **{
            "files-browse": {"id": ["alice", "bob"]},
            "create-table": {"id": ["alice", "bob"]},
            "insert-row": {"id": ["alice", "bob"]},
        }
    )
    ds = await import_ds(permissions=permissions)
    file = await put(ds, "x.csv", b"a\n1\n")
    job = await import_file(ds, file["id"], "x")
    json_error(await ds.client.get(job["json_url"], actor=BOB), 404)
    json_error(await ds.client.get(job["json_url"]), 404)
    assert (await ds.client.get(job["url"], actor=BOB)).status_code == 404
    json_error(await ds.client.get("/-/files/imports/imp-nope.json", actor=ALICE), 404)


# Malformed input


def padded(rows: int) -> bytes:
    """A valid start longer than the preview's sample, so errors after it
    are found by the import itself."""
    return b"a,b\n" + b"".join(b"%d,xxxxxxxxxxxxxxxx\n" % i for i in range(rows))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "tail,message",
    [
        (b"1,2,3\n", "Line {line}: found 3 fields, but the header has 2"),
        (b'1,"x"y\n', "Line {line}: ',' expected after '\"'"),
        (
            b'1,"never closed\n2,3\n',
            "Line {line}: a quoted field starting on line {line} is never closed",
        ),
        (b"1,caf\xe9\n", "Line {line}: the file is not valid UTF-8"),
    ],
    ids=["too-many-fields", "text-after-quote", "unclosed-quote", "bad-utf8"],
)
async def test_malformed_csv_fails_with_line_number(import_ds, put, tail, message):
    ds = await import_ds()
    rows = 60_000  # > 1 MiB, past the preview's sample
    data = padded(rows) + tail + b"9,after\n"
    file = await put(ds, "bad.csv", data)
    job = await import_file(ds, file["id"], "bad")
    line = rows + 2
    assert job["status"] == "failed"
    assert job["error"].startswith(message.format(line=line)), job["error"]
    assert job["error_line"] == line
    # Nothing half-imported remains.
    assert not table_exists(ds, "bad")
    page = await ds.client.get(job["url"], actor=ALICE)
    assert f"Line {line}:" in page.text
    assert "Open the table" not in page.text


@pytest.mark.asyncio
async def test_malformed_start_refused_at_preview(import_ds, put, json_error):
    ds = await import_ds()
    file = await put(ds, "bad.csv", b"a,b\n1,2\n3,4,5\n")
    body = json_error(
        await ds.client.get(f"/-/files/{file['id']}/-/import.json", actor=ALICE), 400
    )
    assert "Line 3: found 3 fields, but the header has 2" in body["errors"][0]
    json_error(await start_import(ds, file["id"], "bad"), 400)
    assert not table_exists(ds, "bad")
    page = await ds.client.get(f"/-/files/{file['id']}/-/import", actor=ALICE)
    assert page.status_code == 400 and "Line 3" in page.text


# Memory, restarts, shutdown


@pytest.mark.asyncio
async def test_memory_stays_bounded(import_ds, put, monkeypatch):
    """Peak Python allocations during an 11 MB import stay a small fraction of it.

    The filesystem storage reads 256 KiB chunks here (2 MiB normally, with one
    read ahead), so what is left is the import's own memory: a chunk, a line
    and two batches. bench/csv_import.py measures a 100 MB file's RSS.
    """
    monkeypatch.setattr(filesystem, "CHUNK_SIZE", 256 * 1024)
    ds = await import_ds()
    row = b"%d,%d.5,some text that makes the row longer,%d\n"
    data = b"a,b,c,d\n" + b"".join(row % (i, i, i) for i in range(200_000))
    size = len(data)
    assert size > 10 * 1024 * 1024
    file = await put(ds, "mem.csv", data)
    del data
    tracemalloc.start()
    try:
        job = await import_file(ds, file["id"], "mem")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert job["status"] == "done" and job["rows_imported"] == 200_000
    assert peak < 5 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB for {size} bytes"


@pytest.mark.asyncio
async def test_interrupted_job_marked_failed_at_startup(import_ds, make_ds, put):
    ds = await import_ds()
    file = await put(ds, "x.csv", b"a\n1\n")
    job = await import_file(ds, file["id"], "done_one")
    # What a crash mid-import leaves: a running job and its half table.
    internal = ds.get_internal_database()
    await internal.execute_write(
        "UPDATE files_imports SET status = 'running', finished_at = NULL"
    )
    await ds.invoke_shutdown()
    ds2 = await import_ds()
    response = await ds2.client.get(job["json_url"], actor=ALICE)
    restarted = response.json()["job"]
    assert restarted["status"] == "failed"
    assert "restarted" in restarted["error"]
    assert not table_exists(ds2, "done_one")


@pytest.mark.asyncio
async def test_shutdown_mid_import_leaves_nothing_half_done(import_ds, put):
    ds = await import_ds()
    data = b"a,b\n" + b"".join(b"%d,x\n" % i for i in range(100_000))
    file = await put(ds, "long.csv", data)
    # The storage hands out its first chunk, then holds the rest back: the
    # shutdown lands while the import is certainly under way.
    storage = get_state(ds).sources["files"].storage
    stream_file = storage.stream_file
    mid_file, never = asyncio.Event(), asyncio.Event()

    def held_stream_file(path, *args, **kwargs):
        async def chunks():
            async for chunk in stream_file(path, *args, **kwargs):
                yield chunk
                mid_file.set()
                await never.wait()

        return chunks()

    storage.stream_file = held_stream_file
    job = (await start_import(ds, file["id"], "long")).json()["job"]
    await asyncio.wait_for(mid_file.wait(), 30)
    await ds.invoke_shutdown()
    row = (
        sqlite3.connect(ds.get_internal_database().path)
        .execute("SELECT status, error FROM files_imports WHERE id = ?", [job["id"]])
        .fetchone()
    )
    assert row[0] == "failed"
    assert "shut down" in row[1]
    assert not table_exists(ds, "long")


@pytest.mark.asyncio
async def test_shutdown_after_an_import_keeps_it(import_ds, put):
    ds = await import_ds()
    data = b"a,b\n" + b"".join(b"%d,x\n" % i for i in range(100_000))
    file = await put(ds, "long.csv", data)
    job = (await start_import(ds, file["id"], "long")).json()["job"]
    assert (await wait_for_job(ds, job))["status"] == "done"
    await ds.invoke_shutdown()
    row = (
        sqlite3.connect(ds.get_internal_database().path)
        .execute("SELECT status, error FROM files_imports WHERE id = ?", [job["id"]])
        .fetchone()
    )
    assert row == ("done", None)
    assert len(table_rows(ds, "long")) == 100_000


def test_detect_types_unit():
    rows = [["1", "1.0", "x", "", "9223372036854775808", " 7 ", "1e5"]]
    assert csvstream.detect_types(rows, 7) == [
        "INTEGER",
        "REAL",
        "TEXT",
        "TEXT",
        "REAL",  # too big for SQLite's INTEGER
        "INTEGER",
        "REAL",
    ]
    assert csvstream.detect_types([["nan"], ["inf"]], 1) == ["TEXT"]
