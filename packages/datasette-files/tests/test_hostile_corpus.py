"""A corpus of hostile requests beyond test_hostile_inputs.py (issue 12).

Same table, same starting states and helpers (``Given``), same promise:
whatever a client sends, the answer is never a 5xx; on a JSON route it is
the ``{"ok": false, "errors": [...]}`` shape; nothing is written to any
source root; no pending upload is created or left claimed.

The corpus: bodies that are not UTF-8, NUL bytes, 10 MB JSON and JSON nested
100,000 levels deep, sent to every JSON step; multipart bodies that are
truncated, lack a boundary or repeat fields; Content-Length lies both ways
and slow-loris uploads, sent over a raw socket to a real HTTP server (the
test client would fix Content-Length); garbage pagination cursors; file ids
that are almost ULIDs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from dataclasses import dataclass

import pytest
import uvicorn
from test_hostile_inputs import ALICE, NOTHING, PREPARED, REGISTERED, UPLOADED, Given

MAX_FILE_SIZE = 1000
# Short, so the slow-loris cases end quickly; see upload_idle_timeout.
IDLE_TIMEOUT = 0.5
MB = 1024 * 1024


@dataclass
class Case:
    id: str
    given: str
    # The expected 4xx status, or a tuple of acceptable ones.
    status: int | tuple
    request: object
    # False where the HTTP server itself answers, before Datasette.
    json: bool = True


# Requests


def post_raw(path: str, content: bytes, content_type="application/json"):
    """``path`` may name the setup's token or file: {token}, {file}."""

    async def send(g):
        return await g.post(
            expand(g, path), content=content, headers={"content-type": content_type}
        )

    return send


def get(path: str):
    return lambda g: g.get(expand(g, path))


def expand(g, path: str) -> str:
    return path.format(file=g.file["id"] if g.file else "")


def form(body_of, boundary: str = "x", content_type=None):
    """A hand-made multipart body (``body_of(token)``) to the upload step."""

    async def send(g):
        return await g.post(
            "/-/files/upload/files/-/upload",
            content=body_of(g.token or ""),
            headers={
                "content-type": content_type
                or f"multipart/form-data; boundary={boundary}"
            },
        )

    return send


def field(name: str, value: bytes, boundary: bytes = b"x") -> bytes:
    return (
        b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + name.encode()
        + b"\"\r\n\r\n" + value + b"\r\n"
    )  # fmt: skip


def file_part(data: bytes, name: str = "file", boundary: bytes = b"x") -> bytes:
    return (
        b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + name.encode()
        + b"\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n" + data + b"\r\n"
    )  # fmt: skip


END = b"--x--\r\n"


def token_field(token: str) -> bytes:
    return field("upload_token", token.encode())


def cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Over a raw socket, to a real server


async def raw_exchange(g, head: str, body: bytes = b""):
    """Send ``head`` (request line and headers, without the cookie) and
    ``body``, then nothing more, keeping the connection open (a half-close
    would make the server drop the request). Returns the first response as
    (status, headers, body)."""
    port = await g.served()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        cookie = g.ds.client.actor_cookie(ALICE)
        request = head.replace("\n", "\r\n") + f"Cookie: ds_actor={cookie}\r\n\r\n"
        writer.write(request.encode() + body)
        await writer.drain()
        return await asyncio.wait_for(read_response(reader), 10)
    finally:
        writer.close()


async def read_response(reader) -> tuple[int, dict, bytes]:
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"]))
    body = b""
    if headers.get("transfer-encoding") == "chunked":
        while size := int((await reader.readline()).split(b";")[0], 16):
            body += await reader.readexactly(size)
            await reader.readline()
        await reader.readline()
    return status, headers, body


class RawResponse:
    """Enough of an httpx response for the checks."""

    def __init__(self, status, headers, body):
        self.status_code = status
        self.headers = headers
        self.content = body
        self.text = body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)


def raw(head: str, body_of, stall: bool = False):
    """``head`` may use {token}; ``body_of(token)`` gives the body bytes.
    ``stall``: the body is shorter than Content-Length and the client then
    sends nothing (documentation only: every raw client stays silent)."""

    async def send(g):
        token = g.token or ""
        return RawResponse(
            *await raw_exchange(g, head.format(token=token), body_of(token))
        )

    return send


def upload_head(length) -> str:
    return (
        "POST /-/files/upload/files/-/upload HTTP/1.1\nHost: localhost\n"
        f"Content-Type: application/octet-stream\nX-Upload-Token: {{token}}\n"
        f"Content-Length: {length}\n"
    )


def form_head(length) -> str:
    return (
        "POST /-/files/upload/files/-/upload HTTP/1.1\nHost: localhost\n"
        f"Content-Type: multipart/form-data; boundary=x\nContent-Length: {length}\n"
    )


def prepare_head(length) -> str:
    return (
        "POST /-/files/upload/files/-/prepare HTTP/1.1\nHost: localhost\n"
        f"Content-Type: application/json\nContent-Length: {length}\n"
    )


PREPARE_BODY = json.dumps(
    {"filename": "ok.txt", "content_type": "text/plain", "size": 10}
).encode()


# The corpus (URLs stay under the HTTP client's 64 KiB limit)


JSON_STEPS = {
    # step: (path, the state it needs, what a well-formed request would be)
    "prepare": ("/-/files/upload/files/-/prepare", NOTHING),
    "complete": ("/-/files/upload/files/-/complete", UPLOADED),
    "abort": ("/-/files/upload/files/-/abort", UPLOADED),
    "parts": ("/-/files/upload/files/-/parts", PREPARED),
    "update": ("/-/files/{file}/-/update", REGISTERED),
    # Nobody may delete here: refused before the body is read.
    "delete": ("/-/files/{file}/-/delete", REGISTERED),
}

TEN_MB_JSON = b'{"upload_token": "' + b"x" * (10 * MB) + b'"}'
DEEP = 100_000
HOSTILE_BODIES = {
    # name: (body, status for the JSON steps that read it)
    "not UTF-8": (b'{"upload_token": "\xff\xfe\x80"}', 400),
    "Latin-1 bytes": (b"\xe9t\xe9", 400),
    "NUL bytes": (b"\x00" * 64, 400),
    "10 MB JSON": (TEN_MB_JSON, 413),
    f"JSON nested {DEEP:,} deep": (b"[" * DEEP + b"]" * DEEP, (400, 413)),
    "JSON nested 30,000 deep (fits the limit)": (b"[" * 30_000 + b"]" * 30_000, 400),
}


def json_step_cases() -> list[Case]:
    cases = []
    for step, (path, given) in JSON_STEPS.items():
        for name, (body, status) in HOSTILE_BODIES.items():
            if step == "delete":
                status = 403
            cases.append(Case(f"{step}: {name}", given, status, post_raw(path, body)))
    return cases


ALMOST_ULIDS = {
    "25 chars": "df-" + "0" * 25,
    "27 chars": "df-" + "0" * 27,
    "uppercase": "df-01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "non-Crockford letters": "df-01arz3ndektsv4rrffq69g5fiu",
    "Cyrillic look-alikes": "df-01аrz3ndеktsv4rrffq69g5fаv",
    "fullwidth digits": "df-０１arz3ndektsv4rrffq69g5fav",
    "df- alone": "df-",
    "10,000 chars": "df-" + "0" * 10_000,
    "percent-encoded NUL": "df-01arz3ndektsv4rrffq69g5f%00",
    "trailing newline": "df-01arz3ndektsv4rrffq69g5fav%0A",
}


def almost_ulid_cases() -> list[Case]:
    cases = []
    for name, file_id in ALMOST_ULIDS.items():
        cases.append(
            Case(f"id {name}: JSON", NOTHING, 404, get(f"/-/files/{file_id}.json"))
        )
        cases.append(
            Case(
                f"id {name}: download",
                NOTHING,
                404,
                get(f"/-/files/{file_id}/download"),
            )
        )
        cases.append(
            Case(
                f"id {name}: update",
                NOTHING,
                404,
                post_raw(
                    f"/-/files/{file_id}/-/update", b'{"update": {"search_text": "x"}}'
                ),
            )
        )
        cases.append(
            Case(
                f"id {name}: delete",
                NOTHING,
                404,
                post_raw(f"/-/files/{file_id}/-/delete", b"{}"),
            )
        )
    cases.append(
        Case(
            "batch.json with almost-ULIDs",
            NOTHING,
            200,
            get(
                "/-/files/batch.json?"
                + "&".join(f"id={i}" for i in ALMOST_ULIDS.values())
            ),
        )
    )
    return cases


CASES = [
    *json_step_cases(),
    # Multipart bodies, to a prepared upload of 10 bytes.
    Case("form truncated inside the file", PREPARED, 400,
         form(lambda t: token_field(t) + file_part(b"01234")[:-2])),
    Case("form truncated after the token field", PREPARED, 400,
         form(lambda t: token_field(t))),
    Case("form truncated inside the closing boundary", PREPARED, 400,
         form(lambda t: token_field(t) + file_part(b"0123456789") + b"--x-")),
    Case("form truncated inside the part headers", PREPARED, 400,
         form(lambda t: token_field(t) + b"--x\r\nContent-Disposition: form-da")),
    Case("form with an empty boundary", PREPARED, 400,
         form(lambda t: token_field(t) + file_part(b"0123456789") + END,
              content_type="multipart/form-data; boundary=")),
    Case("form whose body has another boundary", PREPARED, 400,
         form(lambda t: token_field(t) + file_part(b"0123456789") + END, boundary="y")),
    Case("form body without any boundary", PREPARED, 400,
         form(lambda t: b"0123456789")),
    Case("form with a broken part header", PREPARED, 400,
         form(lambda t: b"--x\r\nbroken multipart")),
    Case("form with two upload_token fields", PREPARED, 400,
         form(lambda t: token_field("forged") + token_field(t)
              + file_part(b"0123456789") + END)),
    Case("form with two upload_token fields, real first", PREPARED, 400,
         form(lambda t: token_field(t) + token_field("forged")
              + file_part(b"0123456789") + END)),
    Case("form with two file fields", PREPARED, 400,
         form(lambda t: token_field(t) + file_part(b"0123456789")
              + file_part(b"9876543210") + END)),
    Case("form with a file field without a filename", PREPARED, 400,
         form(lambda t: token_field(t) + field("file", b"0123456789") + END)),
    Case("form part without Content-Disposition", PREPARED, 400,
         form(lambda t: b"--x\r\nContent-Type: text/plain\r\n\r\nabc\r\n" + END)),
    Case("form with a 1 MB part header", PREPARED, 400,
         form(lambda t: b"--x\r\nX-Junk: " + b"j" * MB + b"\r\n\r\n" + END)),
    Case("form token with NUL bytes", PREPARED, 400,
         form(lambda t: token_field(t + "\x00") + file_part(b"0123456789") + END)),
    Case("form token not UTF-8", PREPARED, 400,
         form(lambda t: field("upload_token", b"\xff\xfe") + file_part(b"0123456789") + END)),
    Case("multipart/mixed", PREPARED, 400,
         form(lambda t: token_field(t) + file_part(b"0123456789") + END,
              content_type="multipart/mixed; boundary=x")),
    # Content-Length lies and stalled clients, over a raw socket.
    Case("raw upload: Content-Length larger than the body, then silence", PREPARED, 408,
         raw(upload_head(10), lambda t: b"01234", stall=True)),
    Case("raw upload: Content-Length smaller than the body", PREPARED, 400,
         raw(upload_head(5), lambda t: b"0123456789")),
    Case("raw upload: Content-Length over the declared size", PREPARED, 413,
         raw(upload_head(20), lambda t: b"0" * 20)),
    Case("raw upload: no bytes at all, then silence", PREPARED, 408,
         raw(upload_head(10), lambda t: b"", stall=True)),
    Case("form: Content-Length larger than the body, then silence", PREPARED, 408,
         raw(form_head(1000), lambda t: token_field(t) + file_part(b"01234")[:-2],
             stall=True)),
    Case("form: Content-Length smaller than the body", PREPARED, 400,
         raw(form_head(60), lambda t: token_field(t) + file_part(b"0123456789") + END)),
    Case("prepare: Content-Length larger than the body, then silence", NOTHING, 408,
         raw(prepare_head(len(PREPARE_BODY) + 50), lambda t: PREPARE_BODY, stall=True)),
    Case("prepare: Content-Length smaller than the body", NOTHING, 400,
         raw(prepare_head(10), lambda t: PREPARE_BODY)),
    Case("prepare: Content-Length of 10 TB", NOTHING, 413,
         raw(prepare_head(10 * 1024**4), lambda t: PREPARE_BODY)),
    Case("upload: Content-Length not a number", PREPARED, 400,
         raw(upload_head("ten"), lambda t: b"0123456789"), json=False),
    Case("upload: Content-Length negative", PREPARED, 400,
         raw(upload_head(-1), lambda t: b"0123456789"), json=False),
    # Garbage cursors.
    Case("search _next superscript digit", NOTHING, 400, get("/-/files/search.json?_next=²")),
    Case("search _next of 40 digits", NOTHING, 400,
         get("/-/files/search.json?_next=" + "9" * 40)),
    Case("search _next negative", NOTHING, 400, get("/-/files/search.json?_next=-1")),
    Case("search _next NUL", NOTHING, 400, get("/-/files/search.json?_next=%00")),
    Case("search _next of 30 KB", NOTHING, 400, get("/-/files/search.json?_next=" + "a" * 30_000)),
    Case("listing _next not base64", NOTHING, 400, get("/-/files/source/files.json?_next=%C3%A9%00")),
    Case("listing _next not UTF-8 inside", NOTHING, 400,
         get("/-/files/source/files.json?_next=" + cursor(b"\xff\xfe"))),
    Case("listing _next JSON nested 40,000 deep", NOTHING, 400,
         get("/-/files/source/files.json?_next=" + cursor(b"[" * 40_000))),
    Case("listing _next with nulls", NOTHING, 400,
         get("/-/files/source/files.json?_next=" + cursor(b"[null, null]"))),
    Case("listing _next of 30 KB", NOTHING, 400,
         get("/-/files/source/files.json?_next=" + "A" * 30_000)),
    Case("debug listing limit superscript", NOTHING, 400,
         get("/-/files/storages/list/files?limit=²")),
    Case("debug listing limit of 40 digits", NOTHING, 400,
         get("/-/files/storages/list/files?limit=" + "9" * 40)),
    Case("debug listing cursor of path tricks", NOTHING, 200,
         get("/-/files/storages/list/files?cursor=../../../etc/passwd")),
    Case("debug listing cursor NUL", NOTHING, 200,
         get("/-/files/storages/list/files?cursor=%00")),
    Case("debug listing cursor of 30 KB", NOTHING, 200,
         get("/-/files/storages/list/files?cursor=" + "z" * 30_000)),
    Case("debug listing prefix of path tricks", NOTHING, 200,
         get("/-/files/storages/list/files?prefix=../")),
    # Ids that are almost ULIDs.
    *almost_ulid_cases(),
]  # fmt: skip


@pytest.fixture
def corpus_ds(make_ds):
    async def make():
        everyone = {"id": ["alice", "bob"]}
        return await make_ds(
            sources={"files": {"max_file_size": MAX_FILE_SIZE}, "other": {}},
            permissions={
                "files-browse": everyone,
                "files-upload": everyone,
                "files-edit": everyone,
                "debug-storages": {"id": "alice"},
            },
            plugin={"upload_idle_timeout": IDLE_TIMEOUT},
        )

    return make


class Served:
    """The Datasette behind a real HTTP server (uvicorn) on 127.0.0.1,
    started on first use and stopped after the test."""

    def __init__(self, ds):
        self.ds = ds
        self.server = None
        self.task = None

    async def port(self) -> int:
        if self.server is None:
            config = uvicorn.Config(
                self.ds.app(),
                host="127.0.0.1",
                port=0,
                log_level="error",
                lifespan="off",
            )
            self.server = uvicorn.Server(config)
            self.task = asyncio.get_running_loop().create_task(self.server.serve())
            while not self.server.started:
                if self.task.done():
                    self.task.result()
                await asyncio.sleep(0.01)
        sockets = self.server.servers[0].sockets
        return next(s for s in sockets if s.family == socket.AF_INET).getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            await self.task


@pytest.mark.asyncio
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_hostile_corpus(corpus_ds, api, snapshot, clock, json_error, case):
    ds = await corpus_ds()
    g = Given(ds, api, clock)
    served = Served(ds)
    g.served = served.port
    await g.setup(case.given)
    before = await snapshot(ds)

    try:
        response = await case.request(g)
    finally:
        await served.stop()

    statuses = case.status if isinstance(case.status, tuple) else (case.status,)
    assert response.status_code < 500, response.text
    assert response.status_code in statuses, (response.status_code, response.text)
    if case.json and response.status_code >= 400:
        json_error(response, response.status_code)
    after = await snapshot(ds)
    assert after == before


def test_the_corpus_has_at_least_sixty_cases():
    assert len(CASES) >= 60
    assert len({case.id for case in CASES}) == len(CASES)
