"""The credentials broker client, against a mocked broker (pytest-httpx)."""

import asyncio
import json
import logging
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

import httpx
import pytest
import pytest_asyncio
from datasette_files.base import StorageUnavailable
from datasette_files_s3.credentials import RETRY_AFTER, CredentialsBroker

pytestmark = pytest.mark.asyncio

URL = "https://broker.example/api/s3-credentials"
SHARED_SECRET = "shared-secret-do-not-log"
# Every value a broker hands out that must never show up in an error or log.
SECRETS = (
    SHARED_SECRET,
    "AKIA-BROKER-KEY-ID",
    "broker-secret-access-key",
    "broker-session-token",
)
START = datetime(2026, 3, 20, 11, 0, 0, tzinfo=timezone.utc)


class Clock:
    """A hand-wound clock for refresh timing."""

    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


def reply(expires_in=timedelta(hours=1), clock_now=START, **changes):
    body = {
        "AccessKeyId": "AKIA-BROKER-KEY-ID",
        "SecretAccessKey": "broker-secret-access-key",
        "SessionToken": "broker-session-token",
        "Expiration": (clock_now + expires_in).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "S3Folder": "s3://datasettecloud-dev-files/team-1/",
    }
    for key, value in changes.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    return body


@pytest.fixture
def clock():
    return Clock()


@pytest_asyncio.fixture
async def broker(clock):
    broker = CredentialsBroker(URL, SHARED_SECRET, now=clock, total_timeout=0.5)
    yield broker
    await broker.close()


def assert_no_secrets(*texts):
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into {text!r}"


async def test_posts_form_encoded_secret_and_parses_reply(broker, httpx_mock):
    httpx_mock.add_response(method="POST", url=URL, json=reply())
    credentials = await broker.get()

    [request] = httpx_mock.get_requests()
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {"secret": [SHARED_SECRET]}

    assert credentials.access_key_id == "AKIA-BROKER-KEY-ID"
    assert credentials.secret_access_key == "broker-secret-access-key"
    assert credentials.session_token == "broker-session-token"
    assert credentials.expiration == START + timedelta(hours=1)
    assert credentials.bucket == "datasettecloud-dev-files"
    assert credentials.prefix == "team-1/"
    assert credentials.folder == "s3://datasettecloud-dev-files/team-1/"
    assert_no_secrets(repr(credentials), repr(broker))


@pytest.mark.parametrize(
    "expiration,expected",
    [
        ("2026-03-20T12:00:00Z", datetime(2026, 3, 20, 12, tzinfo=timezone.utc)),
        ("2026-03-20T14:00:00+02:00", datetime(2026, 3, 20, 12, tzinfo=timezone.utc)),
        ("2026-03-20T07:00:00-0500", datetime(2026, 3, 20, 12, tzinfo=timezone.utc)),
        (
            "2026-03-20T12:00:00.123456789Z",
            datetime(2026, 3, 20, 12, 0, 0, 123456, tzinfo=timezone.utc),
        ),
    ],
)
async def test_expiration_formats(broker, httpx_mock, expiration, expected):
    httpx_mock.add_response(json=reply(Expiration=expiration))
    assert (await broker.get()).expiration == expected


async def test_folder_prefix_is_normalised(broker, httpx_mock):
    httpx_mock.add_response(json=reply(S3Folder="s3://bucket-1//a//b"))
    credentials = await broker.get()
    assert (credentials.bucket, credentials.prefix) == ("bucket-1", "a/b/")


async def test_refreshes_five_minutes_before_expiry(broker, clock, httpx_mock):
    httpx_mock.add_response(json=reply(expires_in=timedelta(hours=1)))
    first = await broker.get()
    assert first.refresh_at == START + timedelta(minutes=55)

    clock.advance(minutes=54, seconds=59)
    assert await broker.get() is first
    assert len(httpx_mock.get_requests()) == 1

    clock.advance(seconds=1)
    httpx_mock.add_response(
        json=reply(clock_now=clock.now, AccessKeyId="AKIA-SECOND-KEY")
    )
    second = await broker.get()
    assert second is not first
    assert second.access_key_id == "AKIA-SECOND-KEY"
    assert broker.current is second
    assert len(httpx_mock.get_requests()) == 2


async def test_short_lived_credentials_refresh_at_half_life(broker, clock, httpx_mock):
    httpx_mock.add_response(json=reply(expires_in=timedelta(seconds=10)))
    first = await broker.get()
    assert first.refresh_at == START + timedelta(seconds=5)
    clock.advance(seconds=4)
    assert await broker.get() is first
    clock.advance(seconds=1)
    httpx_mock.add_response(json=reply(clock_now=clock.now))
    assert await broker.get() is not first


async def test_fifty_concurrent_callers_at_expiry_make_one_request(
    broker, clock, httpx_mock
):
    httpx_mock.add_response(json=reply())
    first = await broker.get()
    clock.advance(hours=1)  # expired: every caller needs new credentials
    in_flight = 0
    most_in_flight = 0

    async def slow_broker(request):
        nonlocal in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return httpx.Response(200, json=reply(clock_now=clock.now))

    httpx_mock.add_callback(slow_broker)
    results = await asyncio.gather(*(broker.get() for _ in range(50)))

    assert len(httpx_mock.get_requests()) == 2  # the first fetch + exactly one
    assert most_in_flight == 1
    assert all(result is results[0] for result in results)
    assert results[0] is not first
    assert broker.fetch_count == 2


async def test_callers_in_the_refresh_window_do_not_wait(broker, clock, httpx_mock):
    httpx_mock.add_response(json=reply())
    first = await broker.get()
    clock.advance(minutes=56)  # due for refresh, not yet expired
    arrived, release = asyncio.Event(), asyncio.Event()

    async def slow_broker(request):
        arrived.set()
        await release.wait()
        return httpx.Response(200, json=reply(clock_now=clock.now))

    httpx_mock.add_callback(slow_broker)
    refreshing = asyncio.ensure_future(broker.get())
    await asyncio.wait_for(arrived.wait(), 5)  # the refresh is now in flight
    others = await asyncio.wait_for(
        asyncio.gather(*(broker.get() for _ in range(20))), timeout=1
    )
    assert all(result is first for result in others)
    release.set()
    assert (await refreshing) is not first
    assert len(httpx_mock.get_requests()) == 2


def _timeout_after(seconds):
    async def callback(request):
        await asyncio.sleep(seconds)
        return httpx.Response(200, json=reply())

    return callback


FAILURES = [
    ("connection refused", {"exception": httpx.ConnectError("refused")}, "reach"),
    ("read timeout", {"exception": httpx.ReadTimeout("slow")}, "timed out"),
    ("total timeout", {"callback": _timeout_after(2)}, "timed out"),
    ("forbidden", {"status_code": 403, "text": SHARED_SECRET}, "HTTP 403"),
    ("server error", {"status_code": 503}, "HTTP 503"),
    ("invalid JSON", {"content": b"{AccessKeyId: nope"}, "invalid JSON"),
    ("JSON list", {"json": [1, 2]}, "not an object"),
    ("no AccessKeyId", {"json": reply(AccessKeyId=None)}, "no AccessKeyId"),
    (
        "no SecretAccessKey",
        {"json": reply(SecretAccessKey=None)},
        "no SecretAccessKey",
    ),
    ("no SessionToken", {"json": reply(SessionToken=None)}, "no SessionToken"),
    ("no Expiration", {"json": reply(Expiration=None)}, "no Expiration"),
    ("no S3Folder", {"json": reply(S3Folder=None)}, "no S3Folder"),
    ("empty AccessKeyId", {"json": reply(AccessKeyId="")}, "invalid AccessKeyId"),
    (
        "numeric SecretAccessKey",
        {"json": reply(SecretAccessKey=12345)},
        "invalid SecretAccessKey",
    ),
    ("Expiration words", {"json": reply(Expiration="tomorrow")}, "invalid Expiration"),
    (
        "Expiration without zone",
        {"json": reply(Expiration="2026-03-20T12:00:00")},
        "invalid Expiration",
    ),
    (
        "Expiration not a date",
        {"json": reply(Expiration="2026-02-30T12:00:00Z")},
        "invalid Expiration",
    ),
    ("Expiration number", {"json": reply(Expiration=1774000000)}, "invalid Expiration"),
    (
        "Expiration in the past",
        {"json": reply(Expiration="2026-03-20T10:00:00Z")},
        "already expired",
    ),
    (
        "S3Folder no scheme",
        {"json": reply(S3Folder="bucket/team/")},
        "invalid S3Folder",
    ),
    ("S3Folder no bucket", {"json": reply(S3Folder="s3:///team/")}, "invalid S3Folder"),
    (
        "S3Folder dot-dot",
        {"json": reply(S3Folder="s3://b/a/../x/")},
        "invalid S3Folder",
    ),
    ("S3Folder number", {"json": reply(S3Folder=42)}, "invalid S3Folder"),
]


def add_failure(httpx_mock, how):
    how = dict(how)
    if "exception" in how:
        httpx_mock.add_exception(how["exception"])
    elif "callback" in how:
        httpx_mock.add_callback(how["callback"])
    else:
        httpx_mock.add_response(**how)


@pytest.mark.parametrize(
    "name,how,words", FAILURES, ids=[failure[0] for failure in FAILURES]
)
async def test_failure_modes(broker, clock, httpx_mock, caplog, name, how, words):
    caplog.set_level(logging.DEBUG)
    # 1. With nothing cached the failure is a clear StorageUnavailable.
    add_failure(httpx_mock, how)
    with pytest.raises(StorageUnavailable) as info:
        await broker.get()
    message = str(info.value)
    assert words in message
    assert "broker.example" in message
    assert_no_secrets(message, repr(info.value))
    assert info.value.__cause__ is None
    assert broker.current is None

    # 2. The broker recovers; a retry is allowed once RETRY_AFTER has passed.
    clock.advance(seconds=RETRY_AFTER.total_seconds())
    httpx_mock.add_response(json=reply(clock_now=clock.now))
    good = await broker.get()

    # 3. A failed refresh while the old credentials are valid keeps them.
    clock.advance(minutes=56)
    add_failure(httpx_mock, how)
    assert await broker.get() is good
    assert broker.current is good
    assert good.access_key_id == "AKIA-BROKER-KEY-ID"
    assert good.session_token == "broker-session-token"
    assert any(words in record.getMessage() for record in caplog.records)

    # 4. Once they have expired, the failure surfaces again.
    clock.advance(minutes=5)
    add_failure(httpx_mock, how)
    with pytest.raises(StorageUnavailable):
        await broker.get()
    assert_no_secrets(caplog.text)


async def test_down_broker_is_not_hammered(broker, clock, httpx_mock):
    httpx_mock.add_exception(httpx.ConnectError("refused"))
    for _ in range(20):
        with pytest.raises(StorageUnavailable):
            await broker.get()
    assert len(httpx_mock.get_requests()) == 1
    clock.advance(seconds=RETRY_AFTER.total_seconds())
    httpx_mock.add_response(json=reply(clock_now=clock.now))
    assert (await broker.get()).bucket == "datasettecloud-dev-files"


@pytest.mark.parametrize(
    "url,shown",
    [
        (URL + "?token=url-token-123", "https://broker.example"),
        (
            "https://user:url-token-123@broker.example:8443/creds",
            "https://broker.example:8443",
        ),
    ],
)
async def test_url_tokens_are_not_shown(clock, httpx_mock, url, shown):
    broker = CredentialsBroker(url, SHARED_SECRET, now=clock)
    httpx_mock.add_response(status_code=500)
    try:
        with pytest.raises(StorageUnavailable) as info:
            await broker.get()
        assert f"{shown} answered HTTP 500" in str(info.value)
        assert "url-token-123" not in str(info.value)
        assert "url-token-123" not in repr(broker)
    finally:
        await broker.close()


async def test_empty_session_token_means_long_lived_keys(broker, httpx_mock):
    httpx_mock.add_response(json=reply(SessionToken=""))
    assert (await broker.get()).session_token == ""


async def test_folder_change_is_logged_without_secrets(
    broker, clock, httpx_mock, caplog
):
    httpx_mock.add_response(json=reply())
    await broker.get()
    clock.advance(minutes=56)
    httpx_mock.add_response(
        json=reply(clock_now=clock.now, S3Folder="s3://other-bucket/team-2/")
    )
    moved = await broker.get()
    assert (moved.bucket, moved.prefix) == ("other-bucket", "team-2/")
    warning = " ".join(
        r.getMessage() for r in caplog.records if r.levelname == "WARNING"
    )
    assert "s3://datasettecloud-dev-files/team-1/" in warning
    assert "s3://other-bucket/team-2/" in warning
    assert_no_secrets(caplog.text)


async def test_reply_body_is_json_encoded_bytes(broker, httpx_mock):
    # Brokers often send application/json without a charset.
    httpx_mock.add_response(
        content=json.dumps(reply()).encode(), headers={"content-type": "text/plain"}
    )
    assert (await broker.get()).prefix == "team-1/"
