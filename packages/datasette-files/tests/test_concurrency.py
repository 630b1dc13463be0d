"""Requests racing on one upload token: exactly one wins."""

from __future__ import annotations

import asyncio

import pytest

ALICE = {"id": "alice"}


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


@pytest.mark.asyncio
async def test_abort_racing_complete(make_ds, api, tmp_path):
    """Whoever wins, a registered file keeps its bytes and an aborted one has none.

    The abort starts a little later each round, so some rounds land in the
    window where complete has registered the file but abort has already
    looked the token up.
    """
    ds = await make_ds()
    outcomes = set()
    for round in range(40):
        name = f"race-{round}.txt"
        token = (await api.prepare(ds, "files", name, 4)).json()["upload_token"]
        assert (await api.send(ds, "files", token, b"race")).status_code == 200

        async def abort_later(token=token, delay=round / 10_000):
            await asyncio.sleep(delay)
            return await api.abort(ds, "files", token)

        completed, aborted = await asyncio.gather(
            api.complete(ds, "files", token), abort_later()
        )
        outcomes.add((completed.status_code, aborted.status_code))
        stored = [p for p in (tmp_path / "files").iterdir() if p.name.endswith(name)]
        if completed.status_code == 201:
            assert aborted.status_code == 409, aborted.text
            download = await ds.client.get(
                completed.json()["file"]["download_url"], actor=ALICE
            )
            assert download.content == b"race", round
        else:
            # Abort won: complete either found the row being aborted (409)
            # or found no row at all, the token already spent (400).
            assert completed.status_code in (400, 409)
            assert aborted.status_code == 200
            assert stored == []
    assert await count_rows(ds, "files_pending") == 0
    assert await count_rows(ds, "files_files") == len(
        list((tmp_path / "files").iterdir())
    )


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
