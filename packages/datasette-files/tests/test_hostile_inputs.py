"""Hostile and broken requests get a clear JSON error and change nothing.

Each case starts from a known state (nothing yet, a prepared upload of 10
bytes, an uploaded-but-not-completed one, or a registered file), sends one bad
request as alice, and checks:

- the answer is ``{"ok": false, "errors": ["..."]}`` with the expected status;
- nothing was written: the source directories (temp files included), the
  file rows and the pending uploads are exactly as before, except where the
  case says the pending upload is gone (an expired token is cleaned up).

The source ``files`` accepts at most 1000 bytes; ``other`` is a second source
alice may also upload to; bob may upload too, but not with alice's token.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from testkit import ALICE

BOB = {"id": "bob"}
MAX_FILE_SIZE = 1000
MISSING = object()

NOTHING = "nothing yet"
PREPARED = "prepared, 10 bytes"
PREPARED_AT_LIMIT = "prepared, 1000 bytes"
UPLOADED = "uploaded, not completed"
REGISTERED = "registered file"


class Given:
    """The state a case starts from, and ways to send requests as alice."""

    def __init__(self, ds, api, clock):
        self.ds = ds
        self.api = api
        self.clock = clock
        self.token = None
        self.file = None

    async def setup(self, given: str) -> None:
        if given == NOTHING:
            return
        size = MAX_FILE_SIZE if given == PREPARED_AT_LIMIT else 10
        prepared = await self.api.prepare(self.ds, "files", "ok.txt", size)
        assert prepared.status_code == 200, prepared.text
        self.token = prepared.json()["upload_token"]
        if given in (UPLOADED, REGISTERED):
            sent = await self.api.send(self.ds, "files", self.token, b"0123456789")
            assert sent.status_code == 200, sent.text
        if given == REGISTERED:
            completed = await self.api.complete(self.ds, "files", self.token)
            assert completed.status_code == 201, completed.text
            self.file = completed.json()["file"]

    async def prepare(self, slug="files", **changes):
        body = {"filename": "ok.txt", "content_type": "text/plain", "size": 10}
        body.update(changes)
        body = {key: value for key, value in body.items() if value is not MISSING}
        return await self.post(f"/-/files/upload/{slug}/-/prepare", json=body)

    async def send(self, data: bytes, token=MISSING, slug="files", actor=ALICE):
        headers = {"content-type": "application/octet-stream"}
        token = self.token if token is MISSING else token
        if token is not None:
            headers["x-upload-token"] = token
        return await self.ds.client.post(
            f"/-/files/upload/{slug}/-/upload",
            content=data,
            headers=headers,
            actor=actor,
        )

    async def send_form(self, parts, content_type=None):
        body, form_type = self.api.form_body(
            [(name, self.token if value is MISSING else value) for name, value in parts]
        )
        return await self.post(
            "/-/files/upload/files/-/upload",
            content=body,
            headers={"content-type": content_type or form_type},
        )

    async def complete(self, body=MISSING, slug="files"):
        body = {"upload_token": self.token} if body is MISSING else body
        return await self.post(f"/-/files/upload/{slug}/-/complete", json=body)

    async def update(self, body=None, **kwargs):
        if body is not None:
            kwargs["json"] = body
        return await self.post(self.file["url"] + "/-/update", **kwargs)

    async def post(self, path, **kwargs):
        return await self.ds.client.post(path, actor=ALICE, **kwargs)

    async def get(self, path):
        return await self.ds.client.get(path, actor=ALICE)


@dataclass
class Case:
    id: str
    given: str
    status: int
    request: Callable
    # What happens to the pending upload: "kept" as it was, or "gone".
    pending: str = "kept"
    marks: list = field(default_factory=list)


def prepare(**changes):
    return lambda g: g.prepare(**changes)


def prepare_raw(content: bytes, content_type="application/json"):
    return lambda g: g.post(
        "/-/files/upload/files/-/prepare",
        content=content,
        headers={"content-type": content_type},
    )


def send(data: bytes, **kwargs):
    return lambda g: g.send(data, **kwargs)


def get(path: str):
    return lambda g: g.get(path)


def cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


async def send_after_expiry(g):
    g.clock.advance(3601)
    return await g.send(b"0123456789")


async def complete_after_expiry(g):
    g.clock.advance(3601)
    return await g.complete()


CASES = [
    # Filenames: display text only, but never a path.
    Case("filename ../../etc/passwd", NOTHING, 400, prepare(filename="../../etc/passwd")),
    Case("filename ..\\x", NOTHING, 400, prepare(filename="..\\x")),
    Case("filename /abs", NOTHING, 400, prepare(filename="/etc/passwd")),
    Case("filename with NUL", NOTHING, 400, prepare(filename="a\x00.txt")),
    Case("filename .", NOTHING, 400, prepare(filename=".")),
    Case("filename ..", NOTHING, 400, prepare(filename="..")),
    Case("filename of 10,000 chars", NOTHING, 400, prepare(filename="a" * 10_000)),
    Case("filename with \\n", NOTHING, 400, prepare(filename="a\nb.txt")),
    Case("filename with \\r", NOTHING, 400, prepare(filename="a\rb.txt")),
    Case("filename with ESC", NOTHING, 400, prepare(filename="\x1b[31mred.txt")),
    Case("filename with U+202E", NOTHING, 400, prepare(filename="evil\u202etxt.exe")),
    Case("filename empty", NOTHING, 400, prepare(filename="")),
    Case("filename only spaces", NOTHING, 400, prepare(filename="   ")),
    Case("filename not a string", NOTHING, 400, prepare(filename=42)),
    Case("filename a list", NOTHING, 400, prepare(filename=["a.txt"])),
    Case("filename missing", NOTHING, 400, prepare(filename=MISSING)),
    # Sizes.
    Case("size negative", NOTHING, 400, prepare(size=-1)),
    Case("size missing", NOTHING, 400, prepare(size=MISSING)),
    Case("size null", NOTHING, 400, prepare(size=None)),
    Case("size bool", NOTHING, 400, prepare(size=True)),
    Case("size float", NOTHING, 400, prepare(size=10.0)),
    Case("size string", NOTHING, 400, prepare(size="10")),
    Case("size over max_file_size", NOTHING, 413, prepare(size=MAX_FILE_SIZE + 1)),
    Case("size 2**70", NOTHING, 413, prepare(size=2**70)),
    # Content types.
    Case("content_type header injection", NOTHING, 400,
         prepare(content_type="text/html\r\nSet-Cookie: a=b")),
    Case("content_type not a string", NOTHING, 400, prepare(content_type=5)),
    # Bodies that are not the JSON object prepare expects.
    Case("malformed JSON", NOTHING, 400, prepare_raw(b'{"filename": ')),
    Case("JSON array", NOTHING, 400, prepare_raw(b'["ok.txt", 10]')),
    Case("JSON string", NOTHING, 400, prepare_raw(b'"ok.txt"')),
    Case("JSON null", NOTHING, 400, prepare_raw(b"null")),
    Case("body not UTF-8", NOTHING, 400, prepare_raw(b"\xff\xfe{}")),
    Case("Content-Type text/plain", NOTHING, 400,
         prepare_raw(b'{"filename": "ok.txt", "size": 10}', "text/plain")),
    Case("Content-Type form-urlencoded", NOTHING, 400,
         prepare_raw(b"filename=ok.txt&size=10", "application/x-www-form-urlencoded")),
    Case("JSON body over 64 KiB", NOTHING, 413,
         prepare_raw(json.dumps({"filename": "ok.txt", "size": 1, "x": "a" * 70_000}).encode())),
    # Unknown sources.
    Case("prepare to unknown source", NOTHING, 404,
         lambda g: g.prepare(slug="no-such-source")),
    Case("upload to unknown source", PREPARED, 404, send(b"0123456789", slug="nope")),
    Case("complete on unknown source", UPLOADED, 404, lambda g: g.complete(slug="nope")),
    # Tokens.
    Case("forged token", PREPARED, 400, send(b"0123456789", token="forged-token")),
    Case("no token", PREPARED, 400, send(b"0123456789", token=None)),
    Case("token of 1,000 chars", PREPARED, 400, send(b"0123456789", token="t" * 1000)),
    Case("expired token on upload", PREPARED, 400, send_after_expiry, pending="gone"),
    Case("expired token on complete", UPLOADED, 400, complete_after_expiry, pending="gone"),
    Case("token from another source", PREPARED, 400, send(b"0123456789", slug="other")),
    Case("token from another actor", PREPARED, 403, send(b"0123456789", actor=BOB)),
    Case("replayed token (complete twice)", REGISTERED, 409, lambda g: g.complete()),
    Case("abort after complete", REGISTERED, 409,
         lambda g: g.post("/-/files/upload/files/-/abort", json={"upload_token": g.token})),
    Case("complete with a non-string token", UPLOADED, 400,
         lambda g: g.complete({"upload_token": 5})),
    Case("complete with no token", UPLOADED, 400, lambda g: g.complete({})),
    Case("complete body a JSON array", UPLOADED, 400, lambda g: g.complete([g.token])),
    Case("abort with a forged token", UPLOADED, 400,
         lambda g: g.post("/-/files/upload/files/-/abort", json={"upload_token": "x"})),
    # The upload protocol's order.
    Case("complete before upload", PREPARED, 409, lambda g: g.complete()),
    Case("upload twice", UPLOADED, 409, send(b"0123456789")),
    Case("upload twice, as a form", UPLOADED, 409,
         lambda g: g.send_form([("upload_token", MISSING), ("file", ("a", b"0123456789"))])),
    Case("parts for a proxied upload", PREPARED, 409,
         lambda g: g.post("/-/files/upload/files/-/parts",
                          json={"upload_token": g.token, "part_numbers": [1]})),
    # Bytes that break the declared size.
    Case("declared 10, sent 11", PREPARED, 413, send(b"0123456789X")),
    Case("declared 10, sent 9", PREPARED, 400, send(b"012345678")),
    Case("declared 10, sent 0", PREPARED, 400, send(b"")),
    Case("over max_file_size while streaming", PREPARED_AT_LIMIT, 413,
         send(b"x" * (MAX_FILE_SIZE + 1))),
    # Multipart forms.
    Case("form with file before upload_token", PREPARED, 400,
         lambda g: g.send_form([("file", ("a", b"0123456789")), ("upload_token", MISSING)])),
    Case("form without a boundary", PREPARED, 400,
         lambda g: g.send_form([("upload_token", MISSING), ("file", ("a", b"0123456789"))],
                               content_type="multipart/form-data")),
    Case("form without a file", PREPARED, 400,
         lambda g: g.send_form([("upload_token", MISSING)])),
    Case("form with a different file field", PREPARED, 400,
         lambda g: g.send_form([("upload_token", MISSING), ("other", ("a", b"0123456789"))])),
    Case("form field over 4 KiB", PREPARED, 400,
         lambda g: g.send_form([("note", "n" * 5000), ("upload_token", MISSING),
                                ("file", ("a", b"0123456789"))])),
    Case("form with 25 fields", PREPARED, 400,
         lambda g: g.send_form([(f"f{i}", "x") for i in range(25)]
                               + [("upload_token", MISSING), ("file", ("a", b"0123456789"))])),
    Case("form cut short", PREPARED, 400,
         lambda g: g.post("/-/files/upload/files/-/upload",
                          content=b"--b\r\nContent-Disposition: form-data; name=\"upl",
                          headers={"content-type": "multipart/form-data; boundary=b"})),
    # Listings.
    Case("_size=0", NOTHING, 400, get("/-/files/source/files.json?_size=0")),
    Case("_size=-1", NOTHING, 400, get("/-/files/source/files.json?_size=-1")),
    Case("_size=abc", NOTHING, 400, get("/-/files/source/files.json?_size=abc")),
    Case("_size=1001", NOTHING, 400, get("/-/files/source/files.json?_size=1001")),
    Case("_next garbage", NOTHING, 400, get("/-/files/source/files.json?_next=!!!")),
    Case("_next of the wrong shape", NOTHING, 400,
         get(f"/-/files/source/files.json?_next={cursor([1, 2])}")),
    Case("listing of unknown source", NOTHING, 404, get("/-/files/source/nope.json")),
    Case("batch.json without ids", NOTHING, 400, get("/-/files/batch.json")),
    Case("batch.json with 101 ids", NOTHING, 400,
         get("/-/files/batch.json?" + "&".join(f"id=df-{i}" for i in range(101)))),
    Case("storages/list limit=0", NOTHING, 400, get("/-/files/storages/list/files?limit=0")),
    Case("unknown file id", NOTHING, 404, get("/-/files/df-00000000000000000000000000.json")),
    # Updates.
    Case("update search_text not a string", REGISTERED, 400,
         lambda g: g.update({"update": {"search_text": 5}})),
    Case("update search_text null", REGISTERED, 400,
         lambda g: g.update({"update": {"search_text": None}})),
    Case("update search_text over 100,000 chars", REGISTERED, 400,
         lambda g: g.update({"update": {"search_text": "a" * 100_001}})),
    Case("update unknown field", REGISTERED, 400,
         lambda g: g.update({"update": {"size": 1}})),
    Case("update filename ../x", REGISTERED, 400,
         lambda g: g.update({"update": {"filename": "../x"}})),
    Case("update nothing", REGISTERED, 400, lambda g: g.update({"update": {}})),
    Case("update body a JSON array", REGISTERED, 400, lambda g: g.update([1])),
    Case("update malformed JSON", REGISTERED, 400,
         lambda g: g.update(content=b"{", headers={"content-type": "application/json"})),
    # Wrong methods.
    Case("GET prepare", NOTHING, 405, get("/-/files/upload/files/-/prepare")),
    Case("GET upload", NOTHING, 405, get("/-/files/upload/files/-/upload")),
    Case("GET parts", NOTHING, 405, get("/-/files/upload/files/-/parts")),
    Case("GET complete", NOTHING, 405, get("/-/files/upload/files/-/complete")),
    Case("GET abort", NOTHING, 405, get("/-/files/upload/files/-/abort")),
    Case("GET update", REGISTERED, 405, lambda g: g.get(g.file["url"] + "/-/update")),
    Case("GET delete", REGISTERED, 405, lambda g: g.get(g.file["url"] + "/-/delete")),
]  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_hostile_request(make_ds, api, snapshot, clock, json_error, case):
    everyone = {"id": ["alice", "bob"]}
    ds = await make_ds(
        sources={"files": {"max_file_size": MAX_FILE_SIZE}, "other": {}},
        permissions={
            "files-browse": everyone,
            "files-upload": everyone,
            "files-edit": everyone,
            "debug-storages": {"id": "alice"},
        },
    )
    g = Given(ds, api, clock)
    await g.setup(case.given)
    before = await snapshot(ds)

    json_error(await case.request(g), case.status)

    after = await snapshot(ds)
    if case.pending == "gone":
        assert before["pending"] and not after["pending"]
        # Its partial data went with it.
        assert after["disk"] == {"files": [], "other": []}
        after["pending"], after["disk"] = before["pending"], before["disk"]
    assert after == before
    assert not any(
        name.startswith(".datasette-files-tmp-")
        for names in after["disk"].values()
        for name in names
    )


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.asyncio
async def test_a_wrong_method_gets_405_with_an_allow_header(make_ds, api, json_error):
    ds = await make_ds()
    file = await api.upload(ds, "files", "a.csv", b"a\n1\n", content_type="text/csv")
    for method, url, allow, message in [
        ("GET", "/-/files/upload/files/-/prepare", "POST", "Use POST"),
        ("PUT", "/-/files/upload/files/-/complete", "POST", "Use POST"),
        ("DELETE", file["url"] + "/-/delete", "POST", "Use POST"),
        ("PUT", file["url"] + "/-/import.json", "GET, HEAD, POST", "Use GET or POST"),
    ]:
        response = await ds.client.request(method, url, actor=ALICE)
        assert json_error(response, 405)["errors"] == [message]
        assert response.headers["allow"] == allow
    # The method is checked before anything else: no 404 for a missing source.
    response = await ds.client.get("/-/files/upload/nope/-/abort")
    assert json_error(response, 405) and response.headers["allow"] == "POST"


@pytest.mark.asyncio
async def test_a_size_lie_leaves_the_token_usable(make_ds, api, snapshot, json_error):
    ds = await make_ds()
    token = (await api.prepare(ds, "files", "ten.txt", 10)).json()["upload_token"]
    before = await snapshot(ds)
    json_error(await api.send(ds, "files", token, b"0123456789X"), 413)
    json_error(await api.send_form(ds, "files", token, b"012345678"), 400)
    assert await snapshot(ds) == before
    # The honest retry goes through with the same token.
    assert (await api.send(ds, "files", token, b"0123456789")).status_code == 200
    completed = await api.complete(ds, "files", token)
    assert completed.status_code == 201
    download = await ds.client.get(
        completed.json()["file"]["download_url"], actor=ALICE
    )
    assert download.content == b"0123456789"


@pytest.mark.asyncio
async def test_aborting_removes_the_uploaded_bytes(make_ds, api, snapshot, json_error):
    ds = await make_ds()
    empty = await snapshot(ds)
    token = (await api.prepare(ds, "files", "gone.txt", 3)).json()["upload_token"]
    assert (await api.send(ds, "files", token, b"abc")).status_code == 200
    assert (await snapshot(ds))["disk"]["files"]
    assert (await api.abort(ds, "files", token)).status_code == 200
    assert await snapshot(ds) == empty
    json_error(await api.complete(ds, "files", token), 400)
