"""The request body as a stream: the idle timeout times the client only."""

from __future__ import annotations

import asyncio

import pytest
from datasette_files.streaming_form import BodyTimeout, read_body

TIMEOUT = 0.2


def messages(*bodies: bytes):
    """An ASGI receive() that hands out ``bodies`` at once, then waits forever."""
    pending = list(bodies)
    forever = asyncio.Event()

    async def receive():
        if pending:
            body = pending.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(pending)}
        await forever.wait()
        raise AssertionError("unreachable")

    return receive


@pytest.mark.asyncio
async def test_a_client_that_goes_quiet_times_out():
    received = []
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(BodyTimeout, match="0.2 seconds"):
        async for chunk in read_body(stalls(), TIMEOUT):
            received.append(chunk)
    assert received == [b"first"]
    assert loop.time() - began >= TIMEOUT


def stalls(waiting: asyncio.Event | None = None):
    """One message with more to come, then nothing (``waiting`` is set)."""
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"first", "more_body": True}
        if waiting is not None:
            waiting.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


@pytest.mark.asyncio
async def test_time_spent_on_the_chunks_is_not_the_clients():
    # The storage takes longer than the idle timeout over each chunk (a slow
    # disk); the client had sent everything at once, so nothing times out.
    received = []
    async for chunk in read_body(messages(b"a", b"b", b"c"), TIMEOUT):
        await asyncio.sleep(TIMEOUT * 1.5)
        received.append(chunk)
    assert received == [b"a", b"b", b"c"]


@pytest.mark.asyncio
async def test_a_slow_but_steady_client_does_not_time_out():
    # A message every half timeout, for three timeouts in all: idle, not total.
    count = 6

    async def receive():
        nonlocal count
        await asyncio.sleep(TIMEOUT / 2)
        count -= 1
        return {"type": "http.request", "body": b"x", "more_body": count > 0}

    received = [chunk async for chunk in read_body(receive, TIMEOUT)]
    assert received == [b"x"] * 6


@pytest.mark.asyncio
async def test_a_cancelled_reader_is_cancelled_not_timed_out():
    waiting = asyncio.Event()

    async def read():
        return [chunk async for chunk in read_body(stalls(waiting), 60)]

    task = asyncio.ensure_future(read())
    await waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.asyncio
async def test_the_timer_is_gone_once_the_body_is_read():
    received = [chunk async for chunk in read_body(messages(b"a", b"b"), 60)]
    assert received == [b"a", b"b"]
    assert idle_timers_armed() == []


def idle_timers_armed() -> list:
    loop = asyncio.get_running_loop()
    return [
        handle
        for handle in loop._scheduled
        if not handle.cancelled()
        and getattr(handle._callback, "__qualname__", "") == "IdleTimer._check"
    ]
