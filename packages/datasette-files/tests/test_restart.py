"""Restarts and crashes: pending uploads live in the internal database.

Each test starts Datasette, does part of an upload, then starts a second
Datasette with the same config and the same ``internal=`` file, as a restart
(or a crash and a restart) would.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from datasette_files.state import get_state
from testkit import ALICE


async def set_status(ds, status: str) -> None:
    """What a crash in the middle of a transfer leaves in the database."""
    await ds.get_internal_database().execute_write(
        "UPDATE files_pending SET status = ?", [status]
    )


async def pending_rows(ds) -> list[dict]:
    rows = await ds.get_internal_database().execute(
        "SELECT id, status FROM files_pending"
    )
    return [dict(row) for row in rows]


@pytest.mark.asyncio
async def test_complete_after_a_restart(make_ds, api):
    ds1 = await make_ds()
    token = (await api.prepare(ds1, "files", "survivor.txt", 5)).json()["upload_token"]
    assert (await api.send(ds1, "files", token, b"alive")).status_code == 200
    await ds1.invoke_shutdown()

    ds2 = await make_ds()
    completed = await api.complete(ds2, "files", token)
    assert completed.status_code == 201, completed.text
    file = completed.json()["file"]
    assert file["filename"] == "survivor.txt"
    download = await ds2.client.get(file["download_url"], actor=ALICE)
    assert download.content == b"alive"


@pytest.mark.asyncio
async def test_prepare_then_restart_then_upload(make_ds, api, upload):
    ds1 = await make_ds()
    token = (await api.prepare(ds1, "files", "later.txt", 5)).json()["upload_token"]
    await ds1.invoke_shutdown()

    ds2 = await make_ds()
    assert (await api.send(ds2, "files", token, b"later")).status_code == 200
    assert (await api.complete(ds2, "files", token)).status_code == 201


@pytest.mark.asyncio
async def test_an_upload_interrupted_by_a_crash_can_be_retried(make_ds, api, tmp_path):
    ds1 = await make_ds()
    token = (await api.prepare(ds1, "files", "retry.txt", 5)).json()["upload_token"]
    # The process died while the bytes were arriving: the row says
    # "uploading" and a temp file is left in the source root.
    await set_status(ds1, "uploading")
    (tmp_path / "files" / ".datasette-files-tmp-deadbeef").write_bytes(b"par")
    await ds1.invoke_shutdown()

    ds2 = await make_ds()
    assert [row["status"] for row in await pending_rows(ds2)] == ["prepared"]
    assert list((tmp_path / "files").iterdir()) == []
    assert (await api.send(ds2, "files", token, b"again")).status_code == 200
    completed = await api.complete(ds2, "files", token)
    assert completed.status_code == 201, completed.text


@pytest.mark.asyncio
async def test_a_crash_during_complete_can_be_completed_again(make_ds, api):
    ds1 = await make_ds()
    token = (await api.prepare(ds1, "files", "twice.txt", 3)).json()["upload_token"]
    assert (await api.send(ds1, "files", token, b"abc")).status_code == 200
    await set_status(ds1, "completing")
    await ds1.invoke_shutdown()

    ds2 = await make_ds()
    assert [row["status"] for row in await pending_rows(ds2)] == ["uploaded"]
    completed = await api.complete(ds2, "files", token)
    assert completed.status_code == 201, completed.text
    assert completed.json()["file"]["content_hash"] is not None


@pytest.mark.asyncio
async def test_an_abort_interrupted_by_a_crash_is_finished_at_startup(
    make_ds, api, tmp_path
):
    ds1 = await make_ds()
    token = (await api.prepare(ds1, "files", "gone.txt", 4)).json()["upload_token"]
    assert (await api.send(ds1, "files", token, b"gone")).status_code == 200
    # The process died after claiming the abort, before removing anything:
    # the row (removed last) still owns the bytes.
    await set_status(ds1, "aborting")
    await ds1.invoke_shutdown()
    assert len(list((tmp_path / "files").iterdir())) == 1

    ds2 = await make_ds()
    assert await pending_rows(ds2) == []
    assert list((tmp_path / "files").iterdir()) == []
    assert (await api.complete(ds2, "files", token)).status_code == 400


@pytest.mark.asyncio
async def test_abort_removes_the_bytes_before_the_row(make_ds, api, tmp_path):
    ds = await make_ds()
    token = (await api.prepare(ds, "files", "order.txt", 5)).json()["upload_token"]
    assert (await api.send(ds, "files", token, b"order")).status_code == 200
    storage = get_state(ds).sources["files"].storage
    seen = []
    original = storage.abort_upload

    async def abort_upload(path, state):
        seen.append(await pending_rows(ds))
        await original(path, state)

    storage.abort_upload = abort_upload
    assert (await api.abort(ds, "files", token)).status_code == 200
    # While the bytes were being removed, the row still owned them.
    assert [[row["status"] for row in rows] for rows in seen] == [["aborting"]]
    assert await pending_rows(ds) == []
    assert list((tmp_path / "files").iterdir()) == []


@pytest.mark.asyncio
async def test_startup_removes_orphan_temp_files_only(make_ds, upload, tmp_path):
    ds1 = await make_ds()
    await upload(ds1, "files", "keep.txt", b"keep")
    await ds1.invoke_shutdown()
    root = tmp_path / "files"
    (root / ".datasette-files-tmp-0123456789abcdef").write_bytes(b"half a file")
    (root / "not-ours.txt").write_bytes(b"someone else's")
    before = sorted(p.name for p in root.iterdir())

    await make_ds()
    after = sorted(p.name for p in root.iterdir())
    assert after == [name for name in before if not name.startswith(".datasette")]
    assert len(after) == 2


@pytest.mark.asyncio
async def test_expired_uploads_are_swept_at_startup(make_ds, api, clock, tmp_path):
    ds1 = await make_ds()
    token = (await api.prepare(ds1, "files", "stale.txt", 5)).json()["upload_token"]
    assert (await api.send(ds1, "files", token, b"stale")).status_code == 200
    clock.advance(3000)
    fresh = (await api.prepare(ds1, "files", "fresh.txt", 5)).json()["file_id"]
    await ds1.invoke_shutdown()
    assert len(list((tmp_path / "files").iterdir())) == 1

    # Past the first upload's hour, well within the second one's.
    clock.advance(700)
    ds2 = await make_ds()
    assert await pending_rows(ds2) == [{"id": fresh, "status": "prepared"}]
    # The expired upload's stored bytes went with its row.
    assert list((tmp_path / "files").iterdir()) == []


@pytest.mark.asyncio
async def test_expired_uploads_are_swept_while_running(make_ds, api, clock, tmp_path):
    ds = await make_ds(plugin={"sweep_interval": 1})
    token = (await api.prepare(ds, "files", "stale.txt", 5)).json()["upload_token"]
    assert (await api.send(ds, "files", token, b"stale")).status_code == 200
    clock.advance(3601)
    for _ in range(100):  # the sweep runs every second; allow for a busy machine
        if not await pending_rows(ds):
            break
        await asyncio.sleep(0.05)
    assert await pending_rows(ds) == []
    assert list((tmp_path / "files").iterdir()) == []


@pytest.mark.asyncio
async def test_old_orphan_temp_files_are_swept_while_running(make_ds, tmp_path):
    """Partial data no live upload can own (older than upload_expires) goes
    without a restart; younger data may be an upload in flight and stays."""
    await make_ds(plugin={"sweep_interval": 1, "upload_expires": 60})
    root = tmp_path / "files"
    old = root / ".datasette-files-tmp-00000000000000aa"
    young = root / ".datasette-files-tmp-00000000000000bb"
    old.write_bytes(b"left by a failed cleanup")
    young.write_bytes(b"being written")
    two_minutes_ago = time.time() - 120
    os.utime(old, (two_minutes_ago, two_minutes_ago))
    for _ in range(100):  # the sweep runs every second; allow for a busy machine
        if not old.exists():
            break
        await asyncio.sleep(0.05)
    assert not old.exists()
    assert young.exists()
