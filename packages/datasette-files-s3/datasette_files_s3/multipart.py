"""Multipart uploads: streaming one through Datasette, and checking the
part lists browsers send back for direct ones."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

from datasette_files.base import FileTooLarge
from datasette_files.hashing import StreamHasher

from .client import S3Connection, s3_errors
from .config import S3_MAX_PARTS, MiB

log = logging.getLogger(__name__)

# Parts of a proxied upload sent to S3 at once. Memory is bounded by
# (PARTS_IN_FLIGHT + 1) parts: those uploading and the one filling.
PARTS_IN_FLIGHT = 2


def part_size_for(size: int, preferred: int) -> int:
    """The part size for ``size`` bytes: ``preferred`` unless that would need
    more than S3's 10,000 parts, then the smallest whole MiB that fits."""
    needed = math.ceil(size / S3_MAX_PARTS)
    if needed <= preferred:
        return preferred
    return math.ceil(needed / MiB) * MiB


@dataclass
class StreamedUpload:
    """What ``stream_to_s3`` stored."""

    size: int
    sha256: str


async def stream_to_s3(
    connection: S3Connection,
    path: str,
    stream: AsyncIterator[bytes],
    content_type: str,
    *,
    part_size: int,
    max_size: int,
) -> StreamedUpload:
    """Store ``stream`` at ``path`` with bounded memory.

    Up to ``part_size`` bytes go up as one PutObject. Past that it becomes a
    multipart upload: full parts are sent (``PARTS_IN_FLIGHT`` at once) while
    the next one fills, so at most ``PARTS_IN_FLIGHT + 1`` parts are in
    memory. If anything fails, the stream included,
    the multipart upload is aborted so no partial object or orphaned parts
    are left behind, and the error is re-raised.
    """
    # Small batches: the chunks it holds add to the parts in memory.
    hasher = StreamHasher(batch_bytes=MiB)
    size = 0
    # Each part is gathered in its own BytesIO and handed to botocore as it
    # is: bytes would be wrapped in a BytesIO by botocore and then copied
    # whole by aiohttp, a third part's worth of memory.
    buffer = io.BytesIO()
    writer: _MultipartWriter | None = None
    try:
        async for chunk in stream:
            size += len(chunk)
            if size > max_size:
                raise FileTooLarge(f"upload is larger than {max_size} bytes")
            await hasher.add(chunk)
            rest = memoryview(chunk)
            while rest:
                room = part_size - buffer.tell()
                buffer.write(rest[:room])
                rest = rest[room:]
                if buffer.tell() < part_size:
                    break
                if writer is None:
                    writer = await _MultipartWriter.start(
                        connection, path, content_type
                    )
                # A few parts in flight while the next fills, never more.
                await writer.wait_for_room()
                writer.start_part(buffer)
                buffer = io.BytesIO()
        digest = await hasher.digest()
        if writer is None:
            await _put_object(connection, path, buffer, content_type, digest)
        else:
            if buffer.tell():
                await writer.wait_for_room()
                writer.start_part(buffer)
            await writer.complete()
    except BaseException:
        if writer is not None:
            await writer.abort()
        raise
    return StreamedUpload(size=size, sha256=digest.hex())


async def _put_object(
    connection: S3Connection, path: str, body: io.BytesIO, content_type: str, digest
) -> None:
    body.seek(0)
    async with connection.lease() as s3:
        with s3_errors("PutObject"):
            await s3.client.put_object(
                Bucket=s3.bucket,
                Key=s3.key(path),
                Body=body,
                ContentType=content_type,
                # S3 verifies the bytes against it and keeps it, so a later
                # HEAD can report the file's sha256 without reading it.
                ChecksumSHA256=base64.b64encode(digest).decode(),
                Metadata={"sha256": digest.hex()},
            )


class _MultipartWriter:
    """One multipart upload in progress, with at most ``PARTS_IN_FLIGHT``
    parts uploading at once.

    The bucket and key are fixed when it starts: if broker credentials
    refresh mid-upload the next part uses the new client but the same key.
    """

    def __init__(self, connection: S3Connection, bucket: str, key: str, upload_id):
        self._connection = connection
        self._bucket = bucket
        self._key = key
        self._upload_id = upload_id
        self._parts: list[dict] = []
        # Oldest first, so parts are recorded in order.
        self._in_flight: list[asyncio.Task] = []

    @classmethod
    async def start(cls, connection: S3Connection, path: str, content_type: str):
        async with connection.lease() as s3:
            key = s3.key(path)
            with s3_errors("CreateMultipartUpload"):
                response = await s3.client.create_multipart_upload(
                    Bucket=s3.bucket, Key=key, ContentType=content_type
                )
        return cls(connection, s3.bucket, key, response["UploadId"])

    def start_part(self, data: io.BytesIO) -> None:
        """Start uploading the next part; call ``wait_for_room`` first."""
        assert len(self._in_flight) < PARTS_IN_FLIGHT, "wait_for_room first"
        number = len(self._parts) + len(self._in_flight) + 1
        self._in_flight.append(asyncio.ensure_future(self._upload_part(number, data)))

    async def wait_for_room(self) -> None:
        """Wait until another part may start (re-raising a part's error)."""
        while len(self._in_flight) >= PARTS_IN_FLIGHT:
            await self._finish_oldest()

    async def _finish_oldest(self) -> None:
        task = self._in_flight.pop(0)
        self._parts.append(await task)

    async def complete(self) -> None:
        while self._in_flight:
            await self._finish_oldest()
        async with self._connection.lease() as s3:
            with s3_errors("CompleteMultipartUpload"):
                await s3.client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )

    async def abort(self) -> None:
        """Best effort: log, never raise, so the original error surfaces."""
        for task in self._in_flight:
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._in_flight = []
        try:
            async with self._connection.lease() as s3:
                with s3_errors("AbortMultipartUpload"):
                    await s3.client.abort_multipart_upload(
                        Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
                    )
        except Exception as error:
            log.warning(
                "could not abort a multipart upload; the unfinished-upload "
                "sweep will retry (%s)",
                error,
            )

    async def _upload_part(self, number: int, data: io.BytesIO) -> dict:
        data.seek(0)
        async with self._connection.lease() as s3:
            with s3_errors("UploadPart"):
                response = await s3.client.upload_part(
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    PartNumber=number,
                    Body=data,
                )
        return {"PartNumber": number, "ETag": response["ETag"]}


def check_part_numbers(part_numbers, part_count: int | None) -> list[int]:
    """Validate the part numbers a client asks URLs for."""
    highest = part_count or S3_MAX_PARTS
    if not isinstance(part_numbers, (list, tuple)) or not part_numbers:
        raise ValueError("part_numbers must be a non-empty list")
    if len(part_numbers) > highest:
        raise ValueError(f"at most {highest} part numbers may be requested")
    checked = []
    for number in part_numbers:
        if not isinstance(number, int) or isinstance(number, bool):
            raise ValueError("part numbers must be integers")
        if not 1 <= number <= highest:
            raise ValueError(f"part number {number} is not between 1 and {highest}")
        checked.append(number)
    return sorted(set(checked))


def check_parts(parts, part_count: int | None) -> list[dict]:
    """Validate ``[{"PartNumber": n, "ETag": "..."}]`` from a client and
    return it sorted, as CompleteMultipartUpload needs."""
    if not isinstance(parts, (list, tuple)) or not parts:
        raise ValueError("parts must be a non-empty list")
    if len(parts) > S3_MAX_PARTS:
        raise ValueError(f"at most {S3_MAX_PARTS} parts are allowed")
    checked = {}
    for part in parts:
        if not isinstance(part, dict) or set(part) != {"PartNumber", "ETag"}:
            raise ValueError('each part must be {"PartNumber": n, "ETag": "..."}')
        number, etag = part["PartNumber"], part["ETag"]
        if not isinstance(number, int) or isinstance(number, bool):
            raise ValueError("PartNumber must be an integer")
        if not 1 <= number <= S3_MAX_PARTS:
            raise ValueError(f"PartNumber {number} is out of range")
        if not isinstance(etag, str) or not 0 < len(etag) <= 1024:
            raise ValueError(f"part {number} has an invalid ETag")
        if any(ord(ch) < 32 for ch in etag):
            raise ValueError(f"part {number} has an invalid ETag")
        if number in checked:
            raise ValueError(f"part {number} is listed twice")
        checked[number] = {"PartNumber": number, "ETag": etag}
    if part_count is not None and sorted(checked) != list(range(1, part_count + 1)):
        raise ValueError(f"expected parts 1 to {part_count}, each exactly once")
    return [checked[number] for number in sorted(checked)]
