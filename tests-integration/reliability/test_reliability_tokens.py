"""Clock and token edges against a real server whose upload clock the test
holds (the ``faults`` plugin): a token used exactly at its expiry instant,
just after it, swept exactly at and just after it, and used twice at once."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

pytestmark = pytest.mark.asyncio


def expires_at(server, file_id: str) -> float:
    [row] = server.query("select expires_at from files_pending where id = ?", [file_id])
    return row["expires_at"]


@pytest.fixture
def server(start_datasette, faults):
    return start_datasette(
        sources={"files": {}},
        plugin={"upload_expires": 60, "sweep_interval": 1},
        args=faults.args,
        env=faults.env(),
    )


async def test_token_at_and_after_expiry(
    server, faults, files_client, json_error, nothing_lost
):
    expected = {}
    async with files_client(server) as client:

        async def prepared_and_sent(name: str, data: bytes) -> dict:
            prepared = (await client.prepare("files", name, len(data))).json()
            assert (await client.send(prepared, data)).status_code == 200
            return prepared

        # Exactly at the expiry instant the token still works: send, complete.
        data = os.urandom(5000)
        prepared = (await client.prepare("files", "at.bin", len(data))).json()
        faults.freeze(expires_at(server, prepared["file_id"]))
        assert (await client.send(prepared, data)).status_code == 200
        completed = await client.complete(prepared)
        assert completed.status_code == 201, completed.text
        expected[prepared["file_id"]] = hashlib.sha256(data).hexdigest()
        faults.thaw()

        # A millisecond later it does not; the uploaded bytes go with it.
        prepared = await prepared_and_sent("late.bin", os.urandom(5000))
        faults.freeze(expires_at(server, prepared["file_id"]) + 0.001)
        assert "expired" in json_error(await client.complete(prepared), 400)
        assert server.pending_uploads() == []
        faults.thaw()

        # Sending after expiry: refused before a byte is stored.
        prepared = (await client.prepare("files", "never.bin", 10)).json()
        faults.freeze(expires_at(server, prepared["file_id"]) + 0.001)
        assert "expired" in json_error(await client.send(prepared, b"0123456789"), 400)
        faults.thaw()

        # Aborting after expiry: the token is gone either way.
        prepared = await prepared_and_sent("aborted.bin", os.urandom(10))
        faults.freeze(expires_at(server, prepared["file_id"]) + 1)
        json_error(await client.abort(prepared), 400)
        faults.thaw()

    await nothing_lost(server, expected)


async def test_sweep_at_and_after_expiry(server, faults, files_client, eventually):
    async with files_client(server) as client:
        prepared = (await client.prepare("files", "swept.bin", 3)).json()
        assert (await client.send(prepared, b"abc")).status_code == 200
        moment = expires_at(server, prepared["file_id"])

        # At the expiry instant the row stays. The sweep runs every second
        # and reads the clock twice per run: four reads of the frozen clock
        # mean a whole sweep ran at that instant and the next one began.
        reads = faults.frozen_reads()
        faults.freeze(moment)
        await eventually(
            lambda: faults.frozen_reads() >= reads + 4, 15, "a sweep at the instant"
        )
        assert len(server.pending_uploads()) == 1
        faults.freeze(moment + 0.001)
        await eventually(lambda: server.pending_uploads() == [], 15, "the sweep")
        assert list(server.source_root("files").iterdir()) == []


async def test_token_used_twice_at_once(server, files_client, json_error, nothing_lost):
    expected = {}
    outcomes = {"complete_201": 0, "complete_409": 0}
    async with files_client(server) as client:
        for round, racers in enumerate([2] * 20 + [10] * 3):
            data = os.urandom(1000)
            prepared = (await client.prepare("files", f"r{round}.bin", 1000)).json()

            # Two sends of one token: one stores, the other is refused.
            sends = await asyncio.gather(
                client.send(prepared, data), client.send(prepared, data)
            )
            assert sorted(r.status_code for r in sends) == [200, 409]
            json_error(next(r for r in sends if r.status_code == 409), 409)

            # Completes racing: exactly one registers the file.
            completes = await asyncio.gather(
                *(client.complete(prepared) for _ in range(racers))
            )
            winners = [r for r in completes if r.status_code == 201]
            assert len(winners) == 1, [r.text for r in completes]
            for response in completes:
                if response.status_code != 201:
                    # 409 whether the winner is still completing or done.
                    json_error(response, 409)
                outcomes[f"complete_{response.status_code}"] += 1
            expected[prepared["file_id"]] = hashlib.sha256(data).hexdigest()

    assert len(server.files()) == len(expected)
    await nothing_lost(server, expected)
    print(f"\nFIGURES tokens used twice: rounds=23, lost=0, {outcomes}")
