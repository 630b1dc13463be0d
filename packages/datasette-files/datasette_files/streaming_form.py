"""Read a multipart/form-data upload as a stream, never spooling the file.

Datasette's ``request.form(files=True)`` writes uploaded files to temporary
files first; for large uploads we want the bytes to go straight to storage.
python-multipart gives us a push parser; this wraps it as async iteration.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import AsyncIterator

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from .errors import HTTPError

MAX_FIELD_BYTES = 4096
MAX_FIELDS = 20


class FormError(ValueError):
    """The body is not a form we can read: the client's fault (a 400)."""


class BodyTimeout(HTTPError):
    """The client sent nothing for too long (a stalled or slow-loris upload).

    A 408, and an ``HTTPError`` so that it passes through ``Source.call``
    when a storage's ``receive_upload`` is reading the body.
    """

    def __init__(self, message: str):
        super().__init__(408, message)


class IdleTimer:
    """``BodyTimeout`` for a reader that waits ``seconds`` for the client.

    Only the wait for the next ASGI message is timed, never the storage's
    work on what came before. One timer serves a whole body and is re-armed
    lazily, once per ``seconds`` at most: a message costs a clock read and
    two assignments, where a timer per message (``asyncio.timeout``) costs
    a heap entry armed and cancelled thousands of times a second.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.loop = asyncio.get_running_loop()
        self.waiting_since = 0.0
        # The task waiting for the client, or None while nothing waits.
        self.waiter: asyncio.Task | None = None
        self.handle: asyncio.TimerHandle | None = None
        self.expired = False
        self.cancelling = 0

    async def receive(self, receive) -> dict:
        self.waiting_since = self.loop.time()
        waiter = self.waiter = asyncio.current_task()
        if self.handle is None:
            self.handle = self.loop.call_at(
                self.waiting_since + self.seconds, self._check
            )
        try:
            return await receive()
        except asyncio.CancelledError:
            if not self.expired or waiter is None:
                raise
            if sys.version_info >= (3, 11) and waiter.uncancel() > self.cancelling:
                raise  # cancelled by someone else as well: that wins
            raise BodyTimeout(
                f"No data received for {self.seconds:g} seconds; "
                "the upload was abandoned"
            ) from None
        finally:
            self.waiter = None

    def _check(self) -> None:
        self.handle = None
        waiter = self.waiter
        if waiter is None:
            return  # nothing waits now; the next wait arms the timer again
        deadline = self.waiting_since + self.seconds
        if self.loop.time() < deadline:
            self.handle = self.loop.call_at(deadline, self._check)
            return
        self.expired = True
        if sys.version_info >= (3, 11):
            self.cancelling = waiter.cancelling()
        waiter.cancel()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


async def read_body(receive, idle_timeout: float | None = None) -> AsyncIterator[bytes]:
    """The raw request body, message by message; ``BodyTimeout`` if the
    client goes quiet for ``idle_timeout`` seconds."""
    timer = IdleTimer(idle_timeout) if idle_timeout is not None else None
    try:
        while True:
            if timer is None:
                message = await receive()
            else:
                message = await timer.receive(receive)
            if message["type"] == "http.disconnect":
                raise FormError("client disconnected before the upload finished")
            body = message.get("body", b"")
            if body:
                yield body
            if not message.get("more_body", False):
                return
    finally:
        if timer is not None:
            timer.close()


class StreamingForm:
    """Fields before the ``file`` part, then the file's bytes as a stream."""

    def __init__(self, receive, content_type: str, idle_timeout: float | None = None):
        kind, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise FormError("Content-Type must be multipart/form-data with a boundary")
        self.body = read_body(receive, idle_timeout)
        self.events: deque = deque()
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._part_name = ""
        self._part_is_file = False
        self._field_value = bytearray()
        self._ended = False
        self.parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
        )

    # Parser callbacks (synchronous): queue events for the async side.

    def _on_part_begin(self):
        self._headers = {}
        self._field_value = bytearray()

    # A header's name and value arrive in pieces when a body chunk ends
    # inside them: each is whole only at the header's end.
    def _on_header_field(self, data, start, end):
        self._header_field += data[start:end]

    def _on_header_value(self, data, start, end):
        self._header_value += data[start:end]

    def _on_header_end(self):
        self._headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field = bytearray()
        self._header_value = bytearray()

    def _on_headers_finished(self):
        _, options = parse_options_header(
            self._headers.get(b"content-disposition", b"")
        )
        self._part_name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self._part_is_file = filename is not None
        if filename is not None:
            # The fields seen so far travel with the event: the parser may
            # already have read fields that come after the file in the same
            # chunk, and those must not count as sent before it.
            self.events.append(
                (
                    "file",
                    self._part_name,
                    filename.decode("utf-8", "replace"),
                    dict(self.fields),
                )
            )

    def _on_part_data(self, data, start, end):
        if self._part_is_file:
            self.events.append(("data", bytes(data[start:end])))
        else:
            self._field_value += data[start:end]
            if len(self._field_value) > MAX_FIELD_BYTES:
                raise FormError(f"form field {self._part_name!r} is too long")

    def _on_part_end(self):
        if self._part_is_file:
            self.events.append(("file_end",))
        else:
            if len(self.fields) >= MAX_FIELDS:
                raise FormError("too many form fields")
            if self._part_name in self.fields:
                # Which of two upload_token fields counts is not ours to guess.
                raise FormError(f"form field {self._part_name!r} is sent twice")
            self.fields[self._part_name] = self._field_value.decode("utf-8", "replace")

    def _on_end(self):
        self._ended = True

    async def _next_event(self):
        while not self.events:
            if self._ended:
                return None
            try:
                chunk = await self.body.__anext__()
            except StopAsyncIteration:
                if not self._ended:
                    raise FormError("multipart body ended unexpectedly") from None
                return None
            try:
                self.parser.write(chunk)
            except MultipartParseError as ex:
                # Bytes that break the multipart grammar are the client's
                # fault; the parser's message says where (an offset).
                raise FormError(f"malformed multipart body: {ex}") from None
        return self.events.popleft()

    async def file_stream(self, name: str = "file") -> AsyncIterator[bytes]:
        """Advance to the file part ``name``; return its byte stream.

        Fields that come before it are in ``self.fields`` afterwards.
        """
        while True:
            event = await self._next_event()
            if event is None:
                raise FormError(f"form has no file field named {name!r}")
            if event[0] == "file" and event[1] == name:
                self.filename = event[2]
                self.fields = event[3]
                return self._file_bytes()
            if event[0] == "file":
                raise FormError(f"unexpected file field {event[1]!r}")

    async def _file_bytes(self) -> AsyncIterator[bytes]:
        while True:
            event = await self._next_event()
            if event is None:
                return
            if event[0] == "file_end":
                break
            yield event[1]
        # Read to the end of the form before the storage keeps the file: a
        # second file, or a body cut short, fails the upload (text fields
        # after the file are allowed and ignored).
        while (event := await self._next_event()) is not None:
            if event[0] == "file":
                raise FormError(f"unexpected second file field {event[1]!r}")
