"""Requests racing on one upload token: exactly one wins."""

from __future__ import annotations

import asyncio

import pytest
from datasette_files.state import get_state
from testkit import ALICE


async def count_rows(ds, table: str) -> int:
    rows = await ds.get_internal_database().execute(f"SELECT count(*) FROM {table}")
    return rows.first()[0]


@pytest.mark.asyncio
@pytest.mark.parametrize("racers", [2, 5])
async def test_concurrent_completes(make_ds, api, racers):
    ds = await make_ds()
    token = (await api.prepare(ds, "files", "race.txt", 4)).json()["upload_token"]
    assert (await api.send(ds, "files", token, b"race")).status_code == 200

    responses = await asyncio.gather(
        *(api.complete(ds, "files", token) for _ in range(racers))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, [r.text for r in responses]
    # The losers are told it was already completed, not that the token is bad.
    assert set(statuses) - {201} == {409}, [r.text for r in responses]
    assert await count_rows(ds, "files_files") == 1
    assert await count_rows(ds, "files_pending") == 0


@pytest.mark.asyncio
async def test_concurrent_uploads(make_ds, api, tmp_path):
    ds = await make_ds()
    token = (await api.prepare(ds, "files", "race.txt", 4)).json()["upload_token"]
    responses = await asyncio.gather(
        api.send(ds, "files", token, b"AAAA"), api.send(ds, "files", token, b"BBBB")
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    completed = await api.complete(ds, "files", token)
    assert completed.status_code == 201
    download = await ds.client.get(
        completed.json()["file"]["download_url"], actor=ALICE
    )
    winner = next(r for r in responses if r.status_code == 200)
    assert download.content in (b"AAAA", b"BBBB")
    assert winner.json()["content_hash"] == completed.json()["file"]["content_hash"]
    assert len(list((tmp_path / "files").iterdir())) == 1


async def sent_upload(ds, api, name: str) -> str:
    token = (await api.prepare(ds, "files", name, 4)).json()["upload_token"]
    assert (await api.send(ds, "files", token, b"race")).status_code == 200
    return token


def stored_files(tmp_path, name: str) -> list:
    return [p for p in (tmp_path / "files").iterdir() if p.name.endswith(name)]


async def assert_consistent(ds, tmp_path) -> None:
    assert await count_rows(ds, "files_pending") == 0
    assert await count_rows(ds, "files_files") == len(
        list((tmp_path / "files").iterdir())
    )


# Abort racing complete, one test per outcome: whoever wins, a registered
# file keeps its bytes and an aborted one has none. Each race is held at
# its decisive moment by an asyncio.Event, not left to timing.


@pytest.mark.asyncio
async def test_abort_before_complete_wins(make_ds, api, tmp_path):
    ds = await make_ds()
    token = await sent_upload(ds, api, "first.txt")
    assert (await api.abort(ds, "files", token)).status_code == 200
    # The token is spent: complete finds no upload at all.
    assert (await api.complete(ds, "files", token)).status_code == 400
    assert stored_files(tmp_path, "first.txt") == []
    await assert_consistent(ds, tmp_path)


@pytest.mark.asyncio
async def test_abort_while_complete_verifies_wins(make_ds, api, tmp_path):
    ds = await make_ds()
    token = await sent_upload(ds, api, "verifying.txt")
    storage = get_state(ds).sources["files"].storage
    verifying, go_on = asyncio.Event(), asyncio.Event()
    get_file_metadata = storage.get_file_metadata

    async def held_get_file_metadata(path):
        verifying.set()
        await go_on.wait()
        return await get_file_metadata(path)

    storage.get_file_metadata = held_get_file_metadata
    completing = asyncio.create_task(api.complete(ds, "files", token))
    await asyncio.wait_for(verifying.wait(), 10)
    aborted = await api.abort(ds, "files", token)
    go_on.set()
    completed = await completing
    assert aborted.status_code == 200, aborted.text
    # The row being completed was taken over by the abort.
    assert completed.status_code == 409, completed.text
    assert stored_files(tmp_path, "verifying.txt") == []
    await assert_consistent(ds, tmp_path)


@pytest.mark.asyncio
async def test_complete_wins_over_an_abort_that_found_the_token(make_ds, api, tmp_path):
    ds = await make_ds()
    token = await sent_upload(ds, api, "complete.txt")
    registry = get_state(ds).registry
    looked_up, go_on = asyncio.Event(), asyncio.Event()
    claim_pending = registry.claim_pending

    async def held_claim_pending(pending_id, from_statuses, to_status):
        if to_status == "aborting":
            # The abort has looked the token up and is about to claim it.
            looked_up.set()
            await go_on.wait()
        return await claim_pending(pending_id, from_statuses, to_status)

    registry.claim_pending = held_claim_pending
    aborting = asyncio.create_task(api.abort(ds, "files", token))
    await asyncio.wait_for(looked_up.wait(), 10)
    completed = await api.complete(ds, "files", token)
    go_on.set()
    aborted = await aborting
    assert completed.status_code == 201, completed.text
    assert aborted.status_code == 409, aborted.text
    download = await ds.client.get(
        completed.json()["file"]["download_url"], actor=ALICE
    )
    assert download.content == b"race"
    assert len(stored_files(tmp_path, "complete.txt")) == 1
    await assert_consistent(ds, tmp_path)


@pytest.mark.asyncio
async def test_abort_stops_an_upload_in_flight(make_ds, api, snapshot, json_error):
    ds = await make_ds()
    empty = await snapshot(ds)
    token = (await api.prepare(ds, "files", "slow.bin", 2_000_000)).json()[
        "upload_token"
    ]
    halfway, resume = asyncio.Event(), asyncio.Event()

    async def slow_body():
        yield b"x" * 1_000_000
        halfway.set()
        await resume.wait()
        yield b"x" * 1_000_000

    sending = asyncio.create_task(
        ds.client.post(
            "/-/files/upload/files/-/upload",
            content=slow_body(),
            headers={"x-upload-token": token},
            actor=ALICE,
        )
    )
    await halfway.wait()
    in_flight = await snapshot(ds)
    assert [row["status"] for row in in_flight["pending"]] == ["uploading"]
    assert (await api.abort(ds, "files", token)).status_code == 200
    resume.set()

    json_error(await sending, 409)
    assert await snapshot(ds) == empty
