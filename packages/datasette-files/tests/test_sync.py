"""``datasette files sync`` on a filesystem source: files that were already in
the directory get registered, changed ones updated, gone ones reported or
pruned; a killed sync resumes; two at once never duplicate a row.

The command runs as a real process (``python -m datasette files sync``) on
the same internal database a Datasette then serves, and the outcome is read
the way a user reads it: the command's ``--json`` summary and the HTTP API.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys

import pytest
import yaml

pytestmark = pytest.mark.asyncio

ALICE = {"id": "alice"}

# Each case runs quick with 200 files, and with the 2,000 of the issue when
# slow tests run.
SIZES = [200, pytest.param(2000, marks=pytest.mark.slow)]


def write_tree(root, count: int) -> list[str]:
    """``count`` small files in nested folders: ``d03/e1/file-00042.txt``."""
    paths = []
    for i in range(count):
        path = f"d{i % 7:02d}/e{i % 3}/file-{i:05d}.txt"
        full = root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(f"file number {i}\n")
        paths.append(path)
    return paths


@pytest.fixture
def world(tmp_path):
    """A ``files`` source rooted at tmp_path/files, its config file and the
    internal DB path: the same layout ``make_ds()`` serves."""
    root = tmp_path / "files"
    root.mkdir()
    config = tmp_path / "datasette.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "plugins": {
                    "datasette-files": {
                        "sources": {
                            "files": {
                                "storage": "filesystem",
                                "config": {"root": str(root)},
                            }
                        }
                    }
                }
            }
        )
    )

    class World:
        pass

    world = World()
    world.root = root
    world.config = str(config)
    world.internal = str(tmp_path / "internal.db")
    return world


async def start_sync(world, *args):
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "datasette",
        "files",
        "sync",
        "files",
        "-c",
        world.config,
        "--internal",
        world.internal,
        "--json",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def sync(world, *args, expect_status=0) -> dict:
    process = await start_sync(world, *args)
    out, err = await process.communicate()
    assert process.returncode == expect_status, err.decode()
    summary = json.loads(out)
    return summary["sources"][0]


def registry(world) -> list[tuple]:
    with sqlite3.connect(world.internal) as conn:
        return conn.execute(
            "SELECT path, filename, content_type, size, created_at "
            "FROM files_files WHERE source_slug = 'files' ORDER BY path"
        ).fetchall()


def counts(result: dict) -> dict:
    keys = ("seen", "registered", "updated", "skipped", "missing", "removed")
    return {key: result[key] for key in keys}


@pytest.mark.parametrize("COUNT", SIZES)
async def test_sync_registers_updates_reports_and_prunes(world, make_ds, COUNT):
    paths = write_tree(world.root, COUNT)
    # Never registered: our temp files, a pending upload's path, a symlink
    # leading out of the root, and a symlinked directory.
    (world.root / ".datasette-files-tmp-abc123").write_bytes(b"partial")
    outside = world.root.parent / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside / "secret.txt", world.root / "leak.txt")
    os.symlink(outside, world.root / "linked-dir")

    first = await sync(world)
    assert first["status"] == "finished"
    assert counts(first) == {
        "seen": COUNT,
        "registered": COUNT,
        "updated": 0,
        "skipped": 0,
        "missing": 0,
        "removed": 0,
    }
    rows = registry(world)
    assert [row[0] for row in rows] == sorted(paths)
    assert rows[0][1:4] == ("file-00000.txt", "text/plain", len("file number 0\n"))

    # What a user sees: the files, searchable at once, with the file's time.
    ds = await make_ds(internal=world.internal)
    listing = (await ds.client.get("/-/files/source/files.json", actor=ALICE)).json()
    assert listing["ok"] is True
    assert len(listing["files"]) > 0
    found = await ds.client.get(
        "/-/files/search.json", params={"q": "file-00123"}, actor=ALICE
    )
    assert [hit["filename"] for hit in found.json()["files"]] == ["file-00123.txt"]

    again = await sync(world)
    assert counts(again) == {
        "seen": COUNT,
        "registered": 0,
        "updated": 0,
        "skipped": COUNT,
        "missing": 0,
        "removed": 0,
    }

    # One added, one changed (its hash recorded before), one removed.
    with sqlite3.connect(world.internal) as conn:
        conn.execute(
            "UPDATE files_files SET content_hash = 'sha256:' || hex(randomblob(32)) "
            "WHERE path = ?",
            [paths[1]],
        )
        # A thumbnail outcome cached for it (as the thumbnail route leaves).
        conn.execute(
            "INSERT INTO files_thumbnails (file_id, cache_key, outcome, generator, "
            "created_at) SELECT id, 'k', 'skipped', 'test', '' FROM files_files "
            "WHERE path = ?",
            [paths[1]],
        )
    (world.root / "d00/new.pdf").write_bytes(b"%PDF-1.4 a new file")
    (world.root / paths[1]).write_text("a longer body than before\n")
    (world.root / paths[2]).unlink()
    report = await sync(world)
    assert counts(report) == {
        "seen": COUNT,
        "registered": 1,
        "updated": 1,
        "skipped": COUNT - 2,
        "missing": 1,
        "removed": 0,
    }
    assert report["missing_paths"] == [paths[2]]
    by_path = {row[0]: row for row in registry(world)}
    assert by_path["d00/new.pdf"][2:4] == ("application/pdf", 19)
    assert by_path[paths[1]][3] == len("a longer body than before\n")
    assert paths[2] in by_path  # reported, not removed
    with sqlite3.connect(world.internal) as conn:
        changed_hash = conn.execute(
            "SELECT content_hash FROM files_files WHERE path = ?", [paths[1]]
        ).fetchone()[0]
        thumbnails = conn.execute("SELECT count(*) FROM files_thumbnails").fetchone()
    assert changed_hash is None  # to be computed again
    assert thumbnails == (0,)  # and its thumbnail made again

    pruned = await sync(world, "--prune")
    assert (pruned["missing"], pruned["removed"], pruned["registered"]) == (1, 1, 0)
    assert paths[2] not in {row[0] for row in registry(world)}
    assert len(registry(world)) == COUNT

    quiet = await sync(world, "--prune")
    assert (quiet["registered"], quiet["updated"], quiet["removed"]) == (0, 0, 0)


async def test_name_without_extension_gets_a_sniffed_type(world):
    (world.root / "scan").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    (world.root / "notes").write_text("just words")
    (world.root / "blob").write_bytes(b"\x00\x01\x02\x03")
    await sync(world)
    types = {row[0]: row[2] for row in registry(world)}
    assert types == {"scan": "image/png", "notes": "text/plain", "blob": None}


async def test_dry_run_writes_nothing(world):
    write_tree(world.root, 30)
    result = await sync(world, "--dry-run")
    assert (result["registered"], result["status"]) == (30, "finished")
    assert registry(world) == []


async def test_prefix_limits_the_sync(world):
    write_tree(world.root, 30)
    result = await sync(world, "--prefix", "d01/")
    assert result["registered"] == len([i for i in range(30) if i % 7 == 1])
    assert {row[0].split("/")[0] for row in registry(world)} == {"d01"}


async def test_pending_upload_path_is_not_registered(world, make_ds, api):
    ds = await make_ds(internal=world.internal)
    prepared = await api.prepare(ds, "files", size=3, actor=ALICE)
    token = prepared.json()["upload_token"]
    sent = await api.send(ds, "files", token, b"abc", actor=ALICE)
    assert sent.status_code == 200, sent.text
    # The bytes are in place, the complete has not happened yet.
    assert len(list(world.root.iterdir())) == 1
    result = await sync(world)
    assert result["registered"] == 0
    completed = await api.complete(ds, "files", token, actor=ALICE)
    assert completed.status_code == 201, completed.text


@pytest.mark.parametrize("COUNT", SIZES)
async def test_killed_sync_resumes_from_its_checkpoint(world, tmp_path, make_ds, COUNT):
    write_tree(world.root, COUNT)
    process = await start_sync(world, "--batch-size", "1")
    await wait_for_checkpoints(world, process, 20)
    process.send_signal(signal.SIGKILL)
    await process.wait()
    with sqlite3.connect(world.internal) as conn:
        seen_at_kill, status = conn.execute(
            "SELECT seen, status FROM files_sync_jobs"
        ).fetchone()
    assert status == "running" and 0 < seen_at_kill < COUNT
    assert len(registry(world)) == seen_at_kill  # the checkpoint is exact

    # A server on the same internal DB says so, and stays up while the
    # command resumes beside it.
    ds = await make_ds(
        internal=world.internal,
        permissions={"files-browse": True, "files-sync": {"id": "alice"}},
    )
    shown = await ds.client.get("/-/files/source/files/-/sync.json", actor=ALICE)
    job = shown.json()["job"]
    assert (job["status"], job["finished"], job["seen"]) == (
        "interrupted",
        True,
        seen_at_kill,
    )

    resumed = await sync(world)
    assert resumed["resumed"] is True
    shown = await ds.client.get("/-/files/source/files/-/sync.json", actor=ALICE)
    assert shown.json()["job"]["status"] == "finished"
    # Counted from the checkpoint on: nothing listed twice, nothing skipped.
    assert resumed["seen"] == COUNT and resumed["registered"] == COUNT

    # The same registry as an uninterrupted run over the same files.
    reference = type(world)()
    reference.root, reference.config = world.root, world.config
    reference.internal = str(tmp_path / "reference.db")
    await sync(reference)
    assert registry(world) == registry(reference)


async def wait_for_checkpoints(world, process, at_least: int) -> None:
    """Poll the job row (no blind sleep) until ``at_least`` objects are in."""
    seen = 0
    while seen < at_least:
        assert process.returncode is None, "the sync finished too soon"
        try:
            with sqlite3.connect(world.internal, timeout=5) as conn:
                row = conn.execute("SELECT seen FROM files_sync_jobs").fetchone()
            seen = row[0] if row else 0
        except sqlite3.OperationalError:
            pass  # tables not created yet
        await asyncio.sleep(0.005)


async def test_ctrl_c_stops_cleanly_and_reports(world):
    write_tree(world.root, 200)
    process = await start_sync(world, "--batch-size", "1")
    await wait_for_checkpoints(world, process, 20)
    process.send_signal(signal.SIGINT)
    out, err = await process.communicate()
    assert process.returncode == 130, err.decode()
    stopped = json.loads(out)["sources"][0]
    assert stopped["status"] == "interrupted" and stopped["error"] is None
    assert 0 < stopped["registered"] < 200
    assert len(registry(world)) == stopped["registered"]
    resumed = await sync(world)
    assert resumed["resumed"] is True
    assert resumed["registered"] == 200 and len(registry(world)) == 200


async def test_plain_log_lines_when_not_on_a_terminal(world):
    write_tree(world.root, 20)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "datasette",
        "files",
        "sync",
        "files",
        "-c",
        world.config,
        "--internal",
        world.internal,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0
    assert out == b""
    assert (
        err.decode()
        .splitlines()[-1]
        .startswith(
            "files: finished: seen 20 · registered 20 · updated 0 · skipped 0 · missing 0"
        )
    )
    assert "\x1b[" not in err.decode()  # no terminal control codes


@pytest.mark.parametrize("COUNT", SIZES)
async def test_two_syncs_at_once_never_duplicate(world, COUNT):
    write_tree(world.root, COUNT)
    first, second = await asyncio.gather(
        start_sync(world, "--batch-size", "50"),
        start_sync(world, "--batch-size", "50"),
    )
    outcomes = await asyncio.gather(first.communicate(), second.communicate())
    registered = 0
    for process, (out, err) in zip((first, second), outcomes, strict=True):
        if process.returncode == 0:
            registered += json.loads(out)["sources"][0]["registered"]
        else:
            assert b"already running" in err, err
    assert registered == COUNT
    rows = registry(world)
    assert len(rows) == len({row[0] for row in rows}) == COUNT


async def test_unknown_source_is_a_clear_error(world):
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "datasette",
        "files",
        "sync",
        "nope",
        "-c",
        world.config,
        "--internal",
        world.internal,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 1
    assert "Unknown source 'nope'" in err.decode()
