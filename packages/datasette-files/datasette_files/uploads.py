"""The prepare / upload / complete / abort protocol, storage-agnostic.

Views parse HTTP and check permissions; this module owns the pending-upload
state machine:

    prepared --upload--> uploading --> uploaded --complete--> (file row)
    prepared (direct, multipart) ------------------complete--> (file row)

The mode (``proxy``, ``direct`` or ``multipart``) is decided at prepare from
what the storage returned and recorded with the pending upload; the storage's
``state`` is never looked into here.

Tokens are ``secrets.token_urlsafe`` values; only their sha256 is stored. Each
transition is a conditional UPDATE, so two requests racing on one token see
exactly one winner.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ulid import ULID

from .accept import SNIFF_BYTES, NotAccepted
from .base import UploadInstructions, UploadVerificationError
from .errors import HTTPError
from .filenames import (
    InvalidFilename,
    storage_path,
    validate_content_type,
    validate_filename,
)
from .hashing import SHA256_PREFIX, StreamHasher, recorded_hash
from .permissions import actor_id
from .registry import FileRow, PendingStatus, PendingUpload, utcnow_iso
from .sources import Source

if TYPE_CHECKING:
    from .state import FilesState

log = logging.getLogger("datasette_files")

MAX_TOKEN_LENGTH = 128
MAX_PARTS_PER_REQUEST = 100
PENDING_STATUSES = tuple(PendingStatus)


def refused(source: Source, ex: NotAccepted) -> HTTPError:
    return HTTPError(
        415, str(ex), {"allowed_types": list(source.accept.allowed_types or ())}
    )


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_file_id() -> tuple[str, str]:
    """(file id, the lowercase ULID inside it)."""
    ulid_text = str(ULID()).lower()
    return f"df-{ulid_text}", ulid_text


@dataclass
class PrepareRequest:
    filename: str
    content_type: str
    size: int
    direct: bool = True

    @classmethod
    def parse(cls, body: object) -> PrepareRequest:
        if not isinstance(body, dict):
            raise HTTPError(400, "Request body must be a JSON object")
        try:
            filename = validate_filename(body.get("filename"))
            content_type = validate_content_type(body.get("content_type"))
        except InvalidFilename as ex:
            raise HTTPError(400, str(ex)) from None
        size = body.get("size")
        if not isinstance(size, int) or isinstance(size, bool):
            raise HTTPError(400, "size must be an integer number of bytes")
        if size < 0:
            raise HTTPError(400, "size must not be negative")
        direct = body.get("direct", True)
        if not isinstance(direct, bool):
            raise HTTPError(400, "direct must be true or false")
        return cls(filename, content_type, size, direct)


async def prepare(state: FilesState, source: Source, actor, body: object) -> dict:
    """Validate, create the pending row, and say how to send the bytes."""
    request = PrepareRequest.parse(body)
    storage = await source.ensure_ready()
    capabilities = storage.capabilities
    if not capabilities.can_upload:
        raise HTTPError(400, f"Source '{source.slug}' does not accept uploads")
    try:
        source.accept.check_declared(request.content_type)
    except NotAccepted as ex:
        raise refused(source, ex) from None
    limit = capabilities.max_file_size
    if limit is not None and request.size > limit:
        raise HTTPError(
            413, f"File is {request.size} bytes; this source accepts at most {limit}"
        )
    file_id, ulid_text = new_file_id()
    path = storage_path(ulid_text, request.filename)
    expires_in = state.settings.upload_expires
    instructions = None
    if request.direct and capabilities.can_direct_upload:
        instructions = await source.call(
            storage.prepare_upload(
                path, request.content_type, request.size, expires_in
            ),
        )
    token = secrets.token_urlsafe(32)
    pending = PendingUpload(
        id=file_id,
        token_hash=hash_token(token),
        source_slug=source.slug,
        path=path,
        filename=request.filename,
        content_type=request.content_type,
        size=request.size,
        actor_id=actor_id(actor),
        mode=upload_mode(instructions),
        status=PendingStatus.PREPARED,
        state=dict(instructions.state) if instructions else {},
        content_hash=None,
        created_at=utcnow_iso(),
        expires_at=time.time() + expires_in,
    )
    await state.registry.insert_pending(pending)
    return {
        "token": token,
        "pending": pending,
        "instructions": instructions,
        "expires_in": expires_in,
    }


def upload_mode(instructions: UploadInstructions | None) -> str:
    """How the bytes travel: through Datasette, in one request straight to
    the storage, or straight to the storage in presigned parts."""
    if instructions is None:
        return "proxy"
    return "multipart" if instructions.multipart else "direct"


# What a step answers (409) for an upload whose bytes travel another way.
WRONG_MODE = {
    "proxy": "This upload goes directly to the storage backend",
    "multipart": "This upload is not a multipart upload",
}


async def lookup(
    state: FilesState, source: Source, actor, token: object, mode: str | None = None
) -> PendingUpload:
    """The pending upload for ``token``, checked against source and actor
    (and, given ``mode``, against how its bytes travel)."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise HTTPError(400, "upload_token is missing or malformed")
    token_hash = hash_token(token)
    pending = await state.registry.get_pending(token_hash)
    if pending is None:
        if await state.registry.was_completed(token_hash, source.slug):
            raise HTTPError(409, "This upload has already been completed")
        raise HTTPError(400, "upload_token is invalid or has already been used")
    if pending.source_slug != source.slug:
        raise HTTPError(400, "upload_token belongs to a different source")
    if pending.actor_id != actor_id(actor):
        raise HTTPError(403, "upload_token belongs to a different actor")
    if pending.expires_at < time.time():
        await discard(state, source, pending)
        raise HTTPError(400, "upload_token has expired")
    if mode is not None and pending.mode != mode:
        raise HTTPError(409, WRONG_MODE[mode])
    return pending


async def receive(
    state: FilesState, source: Source, actor, token, stream
) -> PendingUpload:
    """Stream a proxied upload's bytes into the storage."""
    pending = await lookup(state, source, actor, token, mode="proxy")
    # Before the claim: an unavailable backend must leave the token usable.
    storage = await source.ensure_ready()
    if not await state.registry.claim_pending(
        pending.id, (PendingStatus.PREPARED,), PendingStatus.UPLOADING
    ):
        raise HTTPError(409, "This upload has already been sent")
    hasher = None
    # A source that compares hashes needs one before complete, at any size.
    if not storage.capabilities.hashes_uploads and (
        pending.size <= state.settings.inline_hash_max_size
        or source.accept.on_duplicate != "allow"
    ):
        hasher = StreamHasher()
    inspect: Callable[[bytes], None] | None = None
    if source.accept.allowed_types is not None:

        def check_head(head: bytes) -> None:
            try:
                source.accept.check_bytes(pending.content_type, head)
            except NotAccepted as ex:
                raise refused(source, ex) from None

        inspect = check_head

    limited = enforce_size(stream, pending.size, source.max_file_size, hasher, inspect)
    try:
        stored = await source.call(
            storage.receive_upload(pending.path, limited, pending.content_type)
        )
    except HTTPError as ex:
        if ex.status != 415:
            await state.registry.claim_pending(
                pending.id, (PendingStatus.UPLOADING,), PendingStatus.PREPARED
            )
            raise
        # Refused for what it is: the storage removed what it had, and the
        # same bytes would be refused again, so the upload ends here.
        await discard(state, source, pending)
        raise
    except BaseException:
        # The storage removed its partial data; let the client try again.
        await state.registry.claim_pending(
            pending.id, (PendingStatus.UPLOADING,), PendingStatus.PREPARED
        )
        raise
    # Without a hash here, complete hands the file to the background Hasher.
    if hasher is not None:
        content_hash = SHA256_PREFIX + (await hasher.digest()).hex()
    else:
        content_hash = recorded_hash(getattr(stored, "content_hash", None))
    if not await state.registry.mark_uploaded(
        pending.id, content_hash, PendingStatus.UPLOADING
    ):
        # Aborted (or swept) while the bytes were arriving.
        await storage.delete_file(pending.path)
        raise HTTPError(409, "This upload was aborted")
    pending.status = PendingStatus.UPLOADED
    pending.content_hash = content_hash
    return pending


async def enforce_size(
    stream: AsyncIterator[bytes],
    declared: int,
    limit: int | None,
    hasher: StreamHasher | None = None,
    inspect: Callable[[bytes], None] | None = None,
) -> AsyncIterator[bytes]:
    """Pass the chunks on (to ``hasher`` too), stopping as soon as a size
    promise breaks.

    With ``inspect``, the first ``SNIFF_BYTES`` are held back and handed to
    it before anything reaches the storage; it raises to refuse the upload.
    After that, chunks pass as before: no work beyond the first bytes.
    """
    received = 0
    held: list[bytes] | None = [] if inspect is not None else None
    async for chunk in stream:
        received += len(chunk)
        if limit is not None and received > limit:
            raise HTTPError(413, f"Upload exceeds this source's limit of {limit} bytes")
        if received > declared:
            raise HTTPError(
                413, f"Upload is larger than the declared size of {declared} bytes"
            )
        if hasher is not None:
            await hasher.add(chunk)
        if held is not None and inspect is not None:
            held.append(chunk)
            if received < SNIFF_BYTES:
                continue
            inspect(first_bytes(held, SNIFF_BYTES))
            for earlier in held:
                yield earlier
            held = None
            continue
        yield chunk
    if received != declared:
        raise HTTPError(
            400, f"Upload ended after {received} bytes; declared size was {declared}"
        )
    if held is not None and inspect is not None:
        # The whole upload was shorter than SNIFF_BYTES.
        inspect(first_bytes(held, SNIFF_BYTES))
        for earlier in held:
            yield earlier


def first_bytes(chunks: list[bytes], count: int) -> bytes:
    """The first ``count`` bytes of ``chunks``, copying no more than that."""
    parts, needed = [], count
    for chunk in chunks:
        if needed <= 0:
            break
        parts.append(chunk[:needed])
        needed -= len(parts[-1])
    return b"".join(parts)


async def part_urls(
    state: FilesState, source: Source, actor, token, part_numbers
) -> dict:
    pending = await lookup(state, source, actor, token, mode="multipart")
    if (
        not isinstance(part_numbers, list)
        or not part_numbers
        or len(part_numbers) > MAX_PARTS_PER_REQUEST
        or not all(
            isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 10000
            for n in part_numbers
        )
    ):
        raise HTTPError(
            400,
            f"part_numbers must be a list of 1 to {MAX_PARTS_PER_REQUEST} "
            "integers between 1 and 10000",
        )
    storage = await source.ensure_ready()
    urls = await source.call(
        storage.presign_parts(
            pending.path, pending.state, part_numbers, state.settings.upload_expires
        ),
    )
    return {str(number): url for number, url in urls.items()}


@dataclass
class Completed:
    """What complete registered, or (``on_duplicate: reuse``) the existing
    file the upload turned out to duplicate."""

    file: FileRow
    duplicate_of: str | None = None


async def complete(
    state: FilesState, source: Source, actor, token, parts=None
) -> Completed:
    """Verify the stored object and register it, exactly once."""
    pending = await lookup(state, source, actor, token)
    if pending.mode == "proxy" and pending.status == PendingStatus.PREPARED:
        raise HTTPError(409, "The file has not been uploaded yet")
    if pending.status in (PendingStatus.UPLOADING,):
        raise HTTPError(409, "The file is still being uploaded")
    previous = pending.status
    if not await state.registry.claim_pending(
        pending.id,
        (PendingStatus.PREPARED, PendingStatus.UPLOADED),
        PendingStatus.COMPLETING,
    ):
        raise HTTPError(409, "This upload is already being completed")
    rules = source.accept
    existing = None
    try:
        file = await verify(source, pending, parts)
        if rules.allowed_types is not None and pending.mode != "proxy":
            # Proxied bytes were sniffed on their way in; these never were.
            storage = await source.ensure_ready()
            head = await source.call(storage.read_bytes(pending.path, SNIFF_BYTES))
            rules.check_bytes(pending.content_type, head)
        if rules.on_duplicate != "allow":
            file.content_hash = await sha256_of(source, file)
            existing = await state.registry.find_duplicate(file)
    except NotAccepted as ex:
        await discard(state, source, pending)
        raise refused(source, ex) from None
    except BaseException:
        await state.registry.claim_pending(
            pending.id, (PendingStatus.COMPLETING,), previous
        )
        raise
    if existing is None:
        unique = rules.on_duplicate != "allow"
        if not await state.registry.finish_upload(pending.id, file, unique):
            # With ``unique``, a duplicate registered in the meantime.
            existing = await state.registry.find_duplicate(file) if unique else None
            if existing is None:
                raise HTTPError(
                    409, "This upload was completed or aborted concurrently"
                )
    if existing is not None:
        return await settle_duplicate(state, source, pending, existing)
    if file.content_hash is None and state.hasher is not None:
        state.hasher.schedule(file.id, file.source_slug, file.path)
    if state.thumbnailer is not None:
        state.thumbnailer.schedule(file)
    return Completed(file)


async def settle_duplicate(
    state, source: Source, pending: PendingUpload, existing: FileRow
) -> Completed:
    """``on_duplicate``: the new bytes go; the existing file is the answer."""
    await discard(state, source, pending)
    if source.accept.on_duplicate == "reject":
        raise HTTPError(
            409,
            f"Source '{source.slug}' already has this file (same sha256 and "
            f"size): {existing.id}",
            {"duplicate_of": existing.id},
        )
    return Completed(existing, duplicate_of=existing.id)


async def sha256_of(source: Source, file: FileRow) -> str:
    """The file's ``sha256:<hex>``: as recorded, or by reading it through
    (a direct upload whose backend reported none; costs one full read)."""
    if file.content_hash and file.content_hash.startswith(SHA256_PREFIX):
        return file.content_hash
    storage = await source.ensure_ready()

    async def read_through() -> str:
        hasher = StreamHasher()
        async for chunk in storage.stream_file(file.path):
            await hasher.add(chunk)
        return SHA256_PREFIX + (await hasher.digest()).hex()

    return await source.call(read_through())


async def verify(source: Source, pending: PendingUpload, parts) -> FileRow:
    storage = await source.ensure_ready()
    if pending.mode == "multipart":
        if not isinstance(parts, list):
            raise HTTPError(400, "parts must be a list of {PartNumber, ETag}")
        try:
            await source.call(
                storage.complete_upload(pending.path, pending.state, parts)
            )
        except (ValueError, UploadVerificationError) as ex:
            raise HTTPError(400, f"Could not complete multipart upload: {ex}") from None
    metadata = await source.call(storage.get_file_metadata(pending.path))
    if metadata is None:
        raise HTTPError(409, "The file was not found in the storage backend")
    if metadata.size is not None and metadata.size != pending.size:
        await source.call(storage.delete_file(pending.path))
        raise HTTPError(
            409,
            f"Stored object is {metadata.size} bytes but {pending.size} were declared; "
            "it has been deleted",
        )
    return FileRow(
        id=pending.id,
        source_slug=pending.source_slug,
        path=pending.path,
        filename=pending.filename,
        content_type=pending.content_type,
        content_hash=pending.content_hash or recorded_hash(metadata.content_hash),
        size=pending.size,
        width=metadata.width,
        height=metadata.height,
        uploaded_by=pending.actor_id,
        created_at=utcnow_iso(),
        search_text="",
        metadata={},
    )


async def abort(state: FilesState, source: Source, actor, token) -> None:
    pending = await lookup(state, source, actor, token)
    if not await discard(state, source, pending):
        raise HTTPError(409, "This upload was completed or aborted concurrently")


async def discard(
    state: FilesState, source: Source | None, pending: PendingUpload
) -> bool:
    """Mark the pending row "aborting" (stopping in-flight uploads and
    completes), remove the data, then the row.

    The row goes last, so a crash in between leaves a row that a sweep
    discards again, never data that nothing owns. False if the row was
    already gone: a concurrent complete may have just registered the file,
    and then its bytes are no longer ours to delete.
    """
    if not await state.registry.claim_pending(
        pending.id, PENDING_STATUSES, PendingStatus.ABORTING
    ):
        return False
    if source is not None:
        try:
            storage = await source.ensure_ready()
            await storage.abort_upload(pending.path, pending.state)
        except Exception as ex:  # noqa: BLE001 - cleanup must not mask the request
            log.warning("Could not remove partial upload %s: %s", pending.path, ex)
    await state.registry.delete_pending(pending.id)
    return True


async def sweep(state: FilesState, startup: bool = False) -> int:
    """Remove expired pending uploads and partial data no upload owns."""
    removed = 0
    await state.registry.forget_completed(time.time())
    for pending in await state.registry.expired_pending(time.time()):
        await discard(state, state.source(pending.source_slug), pending)
        removed += 1
    if state.hasher is not None and not startup:
        await state.hasher.sweep()
    if startup:
        # An abort the last process did not finish.
        for pending in await state.registry.stale_pending((PendingStatus.ABORTING,)):
            await discard(state, state.source(pending.source_slug), pending)
            removed += 1
        # Nothing can be mid-transfer in a process that just started.
        for pending in await state.registry.stale_pending(
            (PendingStatus.UPLOADING, PendingStatus.COMPLETING)
        ):
            # A proxied upload being completed had all its bytes.
            received = (
                pending.mode == "proxy" and pending.status == PendingStatus.COMPLETING
            )
            back = PendingStatus.UPLOADED if received else PendingStatus.PREPARED
            await state.registry.claim_pending(pending.id, (pending.status,), back)
    for source in state.sources.values():
        removed += await sweep_unfinished(state, source, startup)
    return removed


async def sweep_unfinished(state: FilesState, source: Source, startup: bool) -> int:
    """Abort backend-side partial uploads (temp files, multipart uploads)
    that no pending upload owns.

    At startup that is everything but the multipart uploads of direct
    uploads: a proxied upload's bytes came through a process that is gone,
    so its partial data can never be finished (a retry starts afresh). Later,
    only partial data older than ``upload_expires``: no upload still in
    flight can be that old, and younger data may belong to one just starting
    (a direct multipart upload exists before its pending row does).
    """
    if not source.ready:
        return 0
    cutoff = None if startup else time.time() - state.settings.upload_expires
    try:
        unfinished = await source.storage.list_unfinished_uploads()
        owned = await state.registry.pending_paths(source.slug, skip_proxy=startup)
        removed = 0
        for item in unfinished:
            if item["path"] in owned or not started_before(item, cutoff):
                continue
            await source.storage.abort_upload(item["path"], item.get("state") or {})
            removed += 1
        return removed
    except Exception as ex:  # noqa: BLE001 - a sweep must never stop Datasette
        log.warning("Sweep of source %s failed: %s", source.slug, ex)
        return 0


def started_before(item: dict, cutoff: float | None) -> bool:
    """Whether a partial upload began before ``cutoff`` (None: any time).
    Without a parseable ``initiated`` time its age is unknown: not yet."""
    if cutoff is None:
        return True
    try:
        initiated = datetime.fromisoformat(item["initiated"])
    except (KeyError, TypeError, ValueError):
        return False
    if initiated.tzinfo is None:
        initiated = initiated.replace(tzinfo=timezone.utc)
    return initiated.timestamp() < cutoff
