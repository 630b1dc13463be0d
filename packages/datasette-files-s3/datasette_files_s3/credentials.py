"""The credentials broker client: fetch, validate, cache and refresh.

A broker is an HTTP endpoint that answers ``POST secret=...`` with temporary
AWS credentials and the folder (``s3://bucket/prefix/``) they are good for.
``CredentialsBroker.get()`` always returns a complete, unexpired
``BrokerCredentials``; however many tasks call it at once, at most one broker
request is in flight. Nothing here ever puts a secret into a message, a repr
or a log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import httpx
from datasette_files.base import StorageUnavailable

from .config import BUCKET_RE, normalise_prefix

log = logging.getLogger(__name__)

# Refresh this long before Expiration, or at half the lifetime when the
# credentials live for less than twice this (short-lived test credentials).
REFRESH_MARGIN = timedelta(minutes=5)
# After a failed refresh, wait this long before asking the broker again, so a
# down broker is not hit by every request that needs credentials.
RETRY_AFTER = timedelta(seconds=2)
CONNECT_TIMEOUT = 5.0
TOTAL_TIMEOUT = 10.0

_ISO_8601 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"(Z|z|[+-]\d{2}:?\d{2})$"
)


@dataclass(frozen=True)
class BrokerCredentials:
    """One complete answer from the broker. Immutable: replaced, never edited."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    # Empty when the broker hands out long-lived keys (e.g. a local SeaweedFS).
    session_token: str = field(repr=False)
    expiration: datetime
    bucket: str
    prefix: str
    refresh_at: datetime

    @property
    def folder(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


class CredentialsBroker:
    """Fetches and caches credentials from ``url``; see the module docstring.

    ``now`` returns an aware UTC datetime; tests pass a fake clock.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        now: Callable[[], datetime] | None = None,
        total_timeout: float = TOTAL_TIMEOUT,
        retry_after: timedelta = RETRY_AFTER,
    ):
        self._url = url
        # After a failed refresh, how long until the broker is asked again.
        self.retry_after = retry_after
        self._secret = secret
        self._now = now or (lambda: datetime.now(timezone.utc))
        self._total_timeout = total_timeout
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(total_timeout, connect=CONNECT_TIMEOUT),
            follow_redirects=False,
        )
        self._lock = asyncio.Lock()
        self._current: BrokerCredentials | None = None
        self._last_failure: tuple[datetime, str] | None = None
        # How many times the broker was asked; for tests and benchmarks.
        self.fetch_count = 0

    def __repr__(self) -> str:
        return f"<CredentialsBroker {self.where}>"

    @property
    def where(self) -> str:
        """The broker's scheme, host and port: safe to show, unlike the full
        URL, which might carry a token in its userinfo or query string."""
        parts = urlsplit(self._url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port:
            host += f":{parts.port}"
        return f"{parts.scheme}://{host}"

    @property
    def current(self) -> BrokerCredentials | None:
        """The newest credentials fetched, without refreshing them."""
        return self._current

    async def get(self) -> BrokerCredentials:
        """Unexpired credentials, refreshed first if they are due.

        If the refresh fails but the old credentials have not expired yet, the
        old ones are returned (and the failure logged); otherwise
        ``StorageUnavailable`` is raised.
        """
        current = self._current
        now = self._now()
        if current is not None and now < current.refresh_at:
            return current
        if current is not None and now < current.expiration and self._lock.locked():
            # A refresh is under way and these still work: don't queue up.
            return current
        async with self._lock:
            # Another task may have refreshed while this one waited.
            current = self._current
            now = self._now()
            if current is not None and now < current.refresh_at:
                return current
            if self._last_failure and now < self._last_failure[0] + self.retry_after:
                # The broker failed a moment ago: don't ask again yet.
                if current is not None and now < current.expiration:
                    return current
                raise StorageUnavailable(self._last_failure[1])
            try:
                return await self._refresh_locked()
            except StorageUnavailable as error:
                self._last_failure = (self._now(), str(error))
                return self._fall_back(current, str(error))

    async def close(self) -> None:
        await self._http.aclose()

    def _fall_back(
        self, current: BrokerCredentials | None, problem: str
    ) -> BrokerCredentials:
        if current is not None and self._now() < current.expiration:
            log.warning(
                "%s; still using the current credentials until %s",
                problem,
                current.expiration.isoformat(),
            )
            return current
        raise StorageUnavailable(problem)

    async def _refresh_locked(self) -> BrokerCredentials:
        self.fetch_count += 1
        fetched_at = self._now()
        try:
            # httpx timeouts are per phase; wait_for bounds the whole exchange.
            response = await asyncio.wait_for(
                self._http.post(self._url, data={"secret": self._secret}),
                self._total_timeout,
            )
        except (httpx.TimeoutException, asyncio.TimeoutError):
            raise StorageUnavailable(
                f"credentials broker at {self.where} timed out"
            ) from None
        except httpx.HTTPError as error:
            raise StorageUnavailable(
                f"could not reach the credentials broker at {self.where} "
                f"({type(error).__name__})"
            ) from None
        if response.status_code != 200:
            raise StorageUnavailable(
                f"credentials broker at {self.where} answered HTTP "
                f"{response.status_code}"
            )
        credentials = self._parse(response.content, fetched_at)
        previous = self._current
        if previous is not None and previous.folder != credentials.folder:
            log.warning(
                "credentials broker at %s moved this source from %s to %s; "
                "files stored under the old folder will no longer be found",
                self.where,
                previous.folder,
                credentials.folder,
            )
        # One assignment: readers see the old set or the new set, never a mix.
        self._current = credentials
        self._last_failure = None
        return credentials

    def _parse(self, body: bytes, fetched_at: datetime) -> BrokerCredentials:
        problem = f"credentials broker at {self.where} returned"
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise StorageUnavailable(f"{problem} invalid JSON") from None
        if not isinstance(data, dict):
            raise StorageUnavailable(f"{problem} JSON that is not an object")
        values = {}
        for name in ("AccessKeyId", "SecretAccessKey", "SessionToken"):
            if name not in data:
                raise StorageUnavailable(f"{problem} no {name}")
            value = data[name]
            # Only SessionToken may be empty (long-lived keys need none).
            if not isinstance(value, str) or (not value and name != "SessionToken"):
                raise StorageUnavailable(
                    f"{problem} an invalid {name} (expected a non-empty string)"
                )
            values[name] = value
        for name in ("Expiration", "S3Folder"):
            if name not in data:
                raise StorageUnavailable(f"{problem} no {name}")
        expiration = _parse_expiration(data["Expiration"], problem)
        if expiration <= fetched_at:
            raise StorageUnavailable(
                f"{problem} credentials that already expired "
                f"(Expiration {expiration.isoformat()})"
            )
        bucket, prefix = _parse_folder(data["S3Folder"], problem)
        lifetime = expiration - fetched_at
        margin = min(REFRESH_MARGIN, lifetime / 2)
        return BrokerCredentials(
            access_key_id=values["AccessKeyId"],
            secret_access_key=values["SecretAccessKey"],
            session_token=values["SessionToken"],
            expiration=expiration,
            bucket=bucket,
            prefix=prefix,
            refresh_at=expiration - margin,
        )


def _parse_expiration(value, problem: str) -> datetime:
    """ISO 8601 with a ``Z`` or ``±hh:mm`` offset; naive times are refused
    because guessing the zone would make refresh timing silently wrong."""
    match = _ISO_8601.match(value) if isinstance(value, str) else None
    if match is None:
        raise StorageUnavailable(
            f"{problem} an invalid Expiration {_shown(value)} "
            "(expected ISO 8601 with a timezone, e.g. 2026-03-20T11:56:23Z)"
        )
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if zone in ("Z", "z"):
        offset = timedelta(0)
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=timezone(offset),
        ).astimezone(timezone.utc)
    except ValueError:
        raise StorageUnavailable(
            f"{problem} an invalid Expiration {_shown(value)} (not a real date)"
        ) from None


def _parse_folder(value, problem: str) -> tuple[str, str]:
    """``s3://bucket/prefix/`` -> (bucket, normalised prefix)."""
    expected = "(expected s3://bucket/prefix/)"
    if not isinstance(value, str) or not value.startswith("s3://"):
        raise StorageUnavailable(f"{problem} an invalid S3Folder {expected}")
    bucket, _, prefix = value[len("s3://") :].partition("/")
    if not BUCKET_RE.match(bucket):
        raise StorageUnavailable(
            f"{problem} an invalid S3Folder: bad bucket name {expected}"
        )
    try:
        return bucket, normalise_prefix(prefix, key="S3Folder")
    except ValueError:
        raise StorageUnavailable(
            f"{problem} an invalid S3Folder: bad prefix {expected}"
        ) from None


def _shown(value) -> str:
    """A short repr for non-secret fields in error messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
