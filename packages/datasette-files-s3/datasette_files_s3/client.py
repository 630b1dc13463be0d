"""The S3 client a source talks through, and how S3 errors are reported.

One aiobotocore client per source lives as long as its credentials: static
keys and the default AWS chain get one client for the life of the process;
broker credentials get a new client whenever the broker hands out a new set.
Callers borrow the client with ``async with connection.lease() as target``;
a replaced client is closed once the last borrower gives it back, so a
download that is still streaming is never cut off by a credentials refresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from datasette_files.base import StorageUnavailable

from .config import S3Config
from .credentials import BrokerCredentials, CredentialsBroker

log = logging.getLogger(__name__)

# Error codes that mean "this source cannot work right now" rather than
# "this request was wrong": the core answers them with a 503.
_UNAVAILABLE_CODES = {
    "AccessDenied",
    "AllAccessDisabled",
    "ExpiredToken",
    "InternalError",
    "InvalidAccessKeyId",
    "InvalidToken",
    "NoSuchBucket",
    "RequestTimeTooSkewed",
    "RequestTimeout",
    "ServiceUnavailable",
    "SignatureDoesNotMatch",
    "SlowDown",
    "TokenRefreshRequired",
}
_NETWORK_ERRORS = (ConnectionError, HTTPClientError, asyncio.TimeoutError)
_CREDENTIAL_ERRORS = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
)


def error_code(error: ClientError) -> tuple[int, str]:
    """(HTTP status, S3 error code) of a ``ClientError``."""
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    code = str(error.response.get("Error", {}).get("Code", ""))
    return int(status or 0), code


def is_missing(error: ClientError) -> bool:
    """True for the ways S3 and look-alikes say "no such object"."""
    status, code = error_code(error)
    return status == 404 or code in ("404", "NoSuchKey", "NotFound")


def translate(error: BaseException, operation: str) -> BaseException:
    """The exception to raise for a failed S3 call.

    Network failures, 5xx, throttling and credential problems become
    ``StorageUnavailable`` (the core answers 503); anything else is returned
    unchanged for the caller to handle. Messages carry the operation and the
    S3 error code only, never a key, a URL or a credential.
    """
    if isinstance(error, ClientError):
        status, code = error_code(error)
        if status >= 500 or status == 403 or code in _UNAVAILABLE_CODES:
            return StorageUnavailable(
                f"S3 {operation} failed: {code or 'error'} (HTTP {status})"
            )
    elif isinstance(error, _NETWORK_ERRORS):
        return StorageUnavailable(
            f"could not reach S3 for {operation} ({type(error).__name__})"
        )
    elif isinstance(error, _CREDENTIAL_ERRORS):
        return StorageUnavailable(
            f"no usable AWS credentials for {operation} ({type(error).__name__})"
        )
    return error


@contextmanager
def s3_errors(operation: str) -> Iterator[None]:
    """Apply ``translate`` to whatever the body raises."""
    try:
        yield
    except (ClientError, *_NETWORK_ERRORS, *_CREDENTIAL_ERRORS) as error:
        translated = translate(error, operation)
        if translated is error:
            raise
        raise translated from None


def check_path(path: str) -> str:
    """Refuse paths that are absolute or climb with ``..``.

    The core chooses paths, so this is a guard against bugs, not users.
    """
    if not isinstance(path, str) or not path:
        raise ValueError("path must be a non-empty string")
    if path.startswith("/") or "\\" in path:
        raise ValueError(f"path must be relative: {path!r}")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise ValueError(f"path must not contain '.' or '..' segments: {path!r}")
    if any(ord(ch) < 32 or ch == "\x7f" for ch in path):
        raise ValueError("path must not contain control characters")
    return path


@dataclass(frozen=True)
class Target:
    """A client plus the bucket and prefix it should be used with."""

    client: Any
    bucket: str
    prefix: str

    def key(self, path: str) -> str:
        return self.prefix + check_path(path)

    def path(self, key: str) -> str:
        return key[len(self.prefix) :]


class _Client:
    """An open aiobotocore client and who is using it."""

    def __init__(self, stack: AsyncExitStack, client, credentials):
        self.stack = stack
        self.client = client
        self.credentials = credentials
        self.users = 0
        self.retired = False

    async def close(self) -> None:
        stack, self.stack = self.stack, None
        if stack is not None:
            await stack.aclose()


class S3Connection:
    """Owns the S3 client(s) of one source; see the module docstring."""

    def __init__(self, config: S3Config, broker: CredentialsBroker | None = None):
        self.config = config
        self.broker = broker
        self._session: Any = None
        self._client: _Client | None = None
        self._retired: set[_Client] = set()
        self._swap_lock = asyncio.Lock()
        self.clients_opened = 0

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[Target]:
        """Borrow the current client for one operation (or one stream)."""
        credentials = await self.broker.get() if self.broker else None
        handle = await self._client_for(credentials)
        handle.users += 1
        try:
            # The folder comes with the credentials the client was built from.
            held = handle.credentials
            if held is not None:
                yield Target(handle.client, held.bucket, held.prefix)
            else:
                # parse_config requires a bucket when there is no broker.
                assert self.config.bucket is not None
                yield Target(handle.client, self.config.bucket, self.config.prefix)
        finally:
            handle.users -= 1
            if handle.retired and handle.users == 0:
                self._retired.discard(handle)
                await handle.close()

    async def close(self) -> None:
        """Close every client, including retired ones still borrowed."""
        handles = list(self._retired) + ([self._client] if self._client else [])
        self._client = None
        self._retired.clear()
        for handle in handles:
            await handle.close()
        if self.broker is not None:
            await self.broker.close()

    async def _client_for(self, credentials: BrokerCredentials | None) -> _Client:
        current = self._client
        if current is not None and current.credentials is credentials:
            return current
        async with self._swap_lock:
            # The broker may have moved on while this task waited: always
            # build the client for its newest credentials, never an older set.
            if self.broker is not None:
                credentials = self.broker.current
            current = self._client
            if current is not None and current.credentials is credentials:
                return current
            fresh = await self._open(credentials)
            self._client = fresh
            if current is not None:
                current.retired = True
                if current.users == 0:
                    await current.close()
                else:
                    self._retired.add(current)
            return fresh

    async def _open(self, credentials: BrokerCredentials | None) -> _Client:
        # aioboto3 takes half a second to import: only a process that talks
        # to S3 pays for it, not every ``datasette`` start with us installed.
        import aioboto3
        from aiobotocore.config import AioConfig

        if self._session is None:
            self._session = aioboto3.Session()
        config = self.config
        kwargs: dict = {}
        if credentials is not None:
            kwargs = {
                "aws_access_key_id": credentials.access_key_id,
                "aws_secret_access_key": credentials.secret_access_key,
                "aws_session_token": credentials.session_token or None,
            }
        elif config.access_key_id:
            kwargs = {
                "aws_access_key_id": config.access_key_id,
                "aws_secret_access_key": config.secret_access_key,
                "aws_session_token": config.session_token,
            }
        # Otherwise botocore's default chain: env vars, ~/.aws, instance roles.
        boto_config = AioConfig(
            signature_version="s3v4",
            # Custom endpoints (SeaweedFS, MinIO) rarely do virtual hosts.
            s3={"addressing_style": "path" if config.endpoint_url else "auto"},
            connect_timeout=5,
            read_timeout=60,
            # One retry smooths over a blip; more would keep a request
            # waiting seconds for its 503 while the backend is down.
            retries={"total_max_attempts": 2, "mode": "standard"},
            max_pool_connections=32,
            # Only checksum when S3 demands it: S3 look-alikes vary in their
            # support for the newer flexible-checksum headers.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        stack = AsyncExitStack()
        # aioboto3's client() is an async context manager its stubs miss.
        client = await stack.enter_async_context(
            self._session.client(  # pyright: ignore[reportArgumentType]
                "s3",
                region_name=config.region,
                endpoint_url=config.endpoint_url,
                config=boto_config,
                **kwargs,
            )
        )
        self.clients_opened += 1
        return _Client(stack, client, credentials)
