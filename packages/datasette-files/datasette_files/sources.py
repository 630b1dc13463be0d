"""Sources: the plugin config turned into configured Storage instances.

A source whose config is wrong stops startup with a message naming the source
and the key. A source whose backend cannot be reached is kept, marked
unavailable, and retried on later requests (with a short backoff) until its
backend answers.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field

from datasette.utils import StartupError

from .accept import AcceptRules
from .base import (
    FileTooLarge,
    GetSecret,
    Storage,
    StorageConfigError,
    StorageFull,
    StorageUnavailable,
    UploadVerificationError,
)
from .compat import StorageCalls, call_shapes
from .errors import HTTPError
from .hookspecs import hook_results, plugin_failed

log = logging.getLogger("datasette_files")

SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Defaults of the source_retry_interval and source_connect_timeout settings.
RETRY_SECONDS = 2.0
CONNECT_TIMEOUT = 30.0

# Exceptions a storage raises on purpose, which callers of Source.call handle
# themselves (a missing file, a bad multipart part list, a refused path).
EXPECTED_FROM_STORAGE = (
    HTTPError,
    ValueError,
    UploadVerificationError,
    FileNotFoundError,
    NotImplementedError,
)


class SourceUnavailable(StorageUnavailable):
    """The source's backend cannot be reached right now (a 503).

    A kind of ``StorageUnavailable``: raised by the core for a source it
    already knows is down, rather than by a storage call.
    """


async def no_secrets(name: str) -> str | None:
    """The secret getter of a source built outside startup: knows none."""
    return None


@dataclass
class Source:
    """One configured source and whether its backend is usable."""

    slug: str
    storage_type: str
    config: dict
    storage: Storage
    get_secret: GetSecret = no_secrets
    # allowed_types and on_duplicate, taken out of ``config`` (accept.py).
    accept: AcceptRules = field(default_factory=AcceptRules)
    ready: bool = False
    error: str | None = None
    last_attempt: float = 0.0
    # After a failed attempt, requests fail fast for this many seconds.
    retry_interval: float = RETRY_SECONDS
    # How long one attempt to connect may take, and so how long requests
    # that wait for a reconnection wait at most.
    connect_timeout: float = CONNECT_TIMEOUT
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _reconnect: asyncio.Task | None = None

    @property
    def capabilities(self):
        return self.storage.capabilities

    @property
    def max_file_size(self) -> int | None:
        return self.storage.capabilities.max_file_size

    async def connect(self) -> None:
        """Configure the storage, within ``connect_timeout``; an outage (or
        no answer in time) leaves it not ready, a config error raises."""
        async with self._lock:
            if self.ready:
                return
            self.last_attempt = time.monotonic()
            try:
                await asyncio.wait_for(self._configure(), self.connect_timeout)
            except asyncio.TimeoutError:
                self.error = (
                    f"no answer from the backend within {self.connect_timeout:g}s"
                )
                return
            except StorageUnavailable as ex:
                self.error = str(ex) or "backend unavailable"
                return
            except (StorageConfigError, KeyError, ValueError, TypeError) as ex:
                raise StartupError(config_error_message(self.slug, ex)) from ex
            except Exception as ex:  # noqa: BLE001 - e.g. an SDK's connection error
                # A storage outside our vocabulary could not reach its
                # backend: an outage, retried later, not a crash at startup.
                log.exception("datasette-files: connecting source %s failed", self.slug)
                self.error = f"its storage raised {type(ex).__name__}"
                return
            self.ready = True
            self.error = None

    async def _configure(self) -> None:
        await self.storage.configure(dict(self.config), self.get_secret)
        await self.storage.check_available()

    async def ensure_ready(self) -> StorageCalls:
        """The storage, reconnecting if the backend was down; else raise.

        One reconnection at a time: every request that arrives while one is
        under way waits for its outcome (at most ``connect_timeout``), so a
        burst after an outage makes one attempt and shares its result, all
        succeeding or all getting the same 503. The storage comes wrapped in
        ``StorageCalls``, which calls storages written for 0.1a3 with their
        0.1a3 signatures.
        """
        if self.ready:
            return StorageCalls(self.storage)
        attempt = self._reconnect
        if attempt is None and time.monotonic() - self.last_attempt >= (
            self.retry_interval
        ):
            attempt = self._reconnect = asyncio.create_task(self._reconnect_once())
        if attempt is not None:
            # Shielded: a request that gives up does not cancel the attempt
            # the others are waiting for.
            await asyncio.shield(attempt)
        if not self.ready:
            raise SourceUnavailable(
                f"Source '{self.slug}' is unavailable: {self.error}"
            )
        return StorageCalls(self.storage)

    async def _reconnect_once(self) -> None:
        try:
            await self.connect()
        except StartupError as ex:
            self.error = str(ex)
        except Exception as ex:  # noqa: BLE001 - a storage bug is an outage here
            log.exception("datasette-files: reconnecting source %s failed", self.slug)
            self.error = f"reconnecting failed ({type(ex).__name__})"
        finally:
            self._reconnect = None

    def mark_unavailable(self, error: str) -> None:
        """A call failed with StorageUnavailable: re-check before the next use."""
        self.ready = False
        self.error = error
        self.last_attempt = time.monotonic() - self.retry_interval

    async def call(self, awaitable):
        """Await a storage call, mapping the storage's errors to an ``HTTPError``.

        ``FileTooLarge`` is a 413, ``StorageFull`` a 507 and
        ``StorageUnavailable`` a 503 (and marks the source down). The
        exceptions in ``EXPECTED_FROM_STORAGE`` pass through for the caller;
        anything else is the backend's fault, not the client's: a 503 that
        names only the exception type, since its text may hold secrets.
        """
        try:
            return await awaitable
        except FileTooLarge as ex:
            # A storage limit the core cannot know at prepare time, e.g. S3's
            # 5 GiB for one upload streamed through Datasette.
            raise HTTPError(
                413, f"Source '{self.slug}' refused the file: {ex}"
            ) from None
        except StorageFull as ex:
            raise HTTPError(507, f"Source '{self.slug}' is full: {ex}") from None
        except StorageUnavailable as ex:
            self.mark_unavailable(str(ex))
            raise HTTPError(503, f"Source '{self.slug}' is unavailable: {ex}") from None
        except EXPECTED_FROM_STORAGE:
            raise
        except Exception as ex:  # noqa: BLE001 - e.g. a botocore error from a plugin
            # A storage outside our vocabulary (one written for 0.1a3 raises
            # its SDK's errors) failed.
            log.exception("datasette-files: source %s: storage call failed", self.slug)
            raise HTTPError(
                503,
                f"Source '{self.slug}' failed: its storage raised {type(ex).__name__}",
            ) from None


def config_error_message(slug: str, ex: Exception) -> str:
    if isinstance(ex, KeyError):
        key = ex.args[0] if ex.args else "?"
        return f"datasette-files source '{slug}': missing required config key '{key}'"
    key = getattr(ex, "key", None)
    detail = str(ex)
    if key and f"'{key}'" not in detail:
        detail = f"'{key}': {detail}"
    return f"datasette-files source '{slug}': {detail}"


def parse_sources(plugin_config: dict, storage_types: dict[str, type]) -> list[Source]:
    """Validate the ``sources:`` block and instantiate (not yet configure)."""
    sources_config = plugin_config.get("sources") or {}
    if not isinstance(sources_config, dict):
        raise StartupError("datasette-files: 'sources' must be a mapping of slugs")
    sources = []
    for slug, entry in sources_config.items():
        prefix = f"datasette-files source '{slug}'"
        if not isinstance(slug, str) or not SLUG_RE.match(slug):
            raise StartupError(
                f"{prefix}: slug must be 1-64 letters, digits, '-' or '_'"
            )
        if not isinstance(entry, dict):
            raise StartupError(f"{prefix}: must be a mapping with a 'storage' key")
        unknown = set(entry) - {"storage", "config"}
        if unknown:
            raise StartupError(f"{prefix}: unknown key '{sorted(unknown)[0]}'")
        storage_type = entry.get("storage")
        if not storage_type:
            raise StartupError(f"{prefix}: missing required key 'storage'")
        if storage_type not in storage_types:
            known = ", ".join(sorted(storage_types)) or "none"
            raise StartupError(
                f"{prefix}: unknown storage '{storage_type}' (known: {known})"
            )
        config = entry.get("config") or {}
        if not isinstance(config, dict):
            raise StartupError(f"{prefix}: 'config' must be a mapping")
        # The core's keys out, so storages that refuse unknown keys never
        # see them.
        config = dict(config)
        try:
            accept = AcceptRules.pop_from(config)
        except StorageConfigError as ex:
            raise StartupError(config_error_message(slug, ex)) from None
        sources.append(
            Source(
                slug=slug,
                storage_type=storage_type,
                config=config,
                storage=storage_types[storage_type](),
                accept=accept,
            )
        )
    return sources


def discover_storage_types(datasette) -> dict[str, type]:
    """storage type name → Storage class, from every plugin's hook.

    Each plugin is called on its own: one whose hook raises, or returns
    something other than Storage classes with a ``storage_type``, is logged
    with its name and skipped, and every other plugin's storages still load.
    Each class's method signatures are read here, once (see ``compat``).
    """
    types = {}
    hook = "register_files_storage_types"
    for plugin_name, classes in hook_results(hook, datasette=datasette):
        if classes is None:
            continue
        if not isinstance(classes, (list, tuple)):
            plugin_failed(plugin_name, hook, "did not return a list of classes")
            continue
        for cls in classes:
            name = storage_type_of(cls)
            if name is None:
                plugin_failed(
                    plugin_name,
                    hook,
                    f"{cls!r} is not a Storage class with a storage_type string",
                )
                continue
            call_shapes(cls)
            types[name] = cls
    return types


def storage_type_of(cls) -> str | None:
    """The ``storage_type`` of a Storage class, or None if it is not one."""
    if not isinstance(cls, type) or not issubclass(cls, Storage):
        return None
    name = getattr(cls, "storage_type", None)
    if not isinstance(name, str):
        # storage_type declared as a property: read it off an instance.
        try:
            name = cls().storage_type
        except Exception:  # noqa: BLE001 - still abstract, or a broken __init__
            return None
    return name if isinstance(name, str) and name else None
