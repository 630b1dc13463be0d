"""Helpers for the CSV import tests (``tests/`` is on pytest's
``pythonpath``); their fixtures, ``import_ds`` and ``put``, are in conftest.py."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from testkit import ALICE

BOB = {"id": "bob"}
FILE_ACTIONS = ("files-browse", "files-upload", "files-edit", "files-delete")


def alice_can_import(**extra) -> dict:
    permissions = {action: {"id": "alice"} for action in FILE_ACTIONS}
    permissions["create-table"] = {"id": "alice"}
    permissions["insert-row"] = {"id": "alice"}
    permissions.update(extra)
    return permissions


async def start_import(ds, file_id, table, database="data", actor=ALICE, **extra):
    return await ds.client.post(
        f"/-/files/{file_id}/-/import.json",
        json={"database": database, "table": table, **extra},
        actor=actor,
    )


async def wait_for_job(ds, job: dict, actor=ALICE, timeout=60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = await ds.client.get(job["json_url"], actor=actor)
        assert response.status_code == 200, response.text
        job = response.json()["job"]
        if job["finished"]:
            return job
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.02)


async def import_file(ds, file_id, table, **kwargs) -> dict:
    response = await start_import(ds, file_id, table, **kwargs)
    assert response.status_code == 202, response.text
    return await wait_for_job(ds, response.json()["job"])


def table_info(ds, table, database="data") -> list[tuple[str, str]]:
    conn = sqlite3.connect(ds.databases[database].path)
    try:
        return [(r[1], r[2]) for r in conn.execute(f'PRAGMA table_info("{table}")')]
    finally:
        conn.close()


def table_rows(ds, table, database="data") -> list[tuple]:
    conn = sqlite3.connect(ds.databases[database].path)
    try:
        return conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
    finally:
        conn.close()


def table_exists(ds, table, database="data") -> bool:
    conn = sqlite3.connect(ds.databases[database].path)
    try:
        return bool(
            conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = ?", [table]
            ).fetchone()
        )
    finally:
        conn.close()
