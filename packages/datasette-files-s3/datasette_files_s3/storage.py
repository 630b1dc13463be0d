"""``S3Storage``: the ``s3`` storage type for datasette-files."""

from __future__ import annotations

import base64
import logging
import posixpath
import re
from collections.abc import AsyncIterator
from datetime import datetime, timezone

from botocore.exceptions import ClientError
from datasette_files.base import (
    FileMetadata,
    FileTooLarge,
    GetSecret,
    Storage,
    StorageCapabilities,
    StorageUnavailable,
    content_disposition,
)

from .client import (
    S3Connection,
    Target,
    check_path,
    error_code,
    is_missing,
    s3_errors,
    translate,
)
from .config import S3Config, parse_config, resolve_secrets
from .credentials import CredentialsBroker
from .direct import DirectUploads
from .headers import checked_content_type, is_content_type, iso
from .multipart import part_size_for, stream_to_s3

log = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024


class S3Storage(DirectUploads, Storage):
    """Files in an S3 (or S3-compatible) bucket, under an optional prefix."""

    # A class attribute, read from the class when storage types are found.
    storage_type = "s3"  # pyright: ignore[reportAssignmentType]

    def __init__(self):
        self._config = S3Config()
        self._connection: S3Connection | None = None

    @property
    def capabilities(self) -> StorageCapabilities:
        return StorageCapabilities(
            can_upload=True,
            can_delete=True,
            can_list=True,
            can_generate_signed_urls=True,
            max_file_size=self._config.direct_upload_limit,
            can_direct_upload=True,
            can_multipart_upload=True,
            can_range_read=True,
            hashes_uploads=True,
        )

    async def configure(self, config: dict, get_secret: GetSecret) -> None:
        """Validate ``config`` (``StorageConfigError`` stops startup), then
        check the bucket answers (``StorageUnavailable`` marks the source
        unavailable; the core retries ``check_available`` later)."""
        parsed = await resolve_secrets(parse_config(config), get_secret)
        broker = None
        if parsed.uses_broker:
            if parsed.bucket or parsed.prefix:
                log.warning(
                    "s3 source: bucket and prefix are ignored with "
                    "credentials_url; the broker's S3Folder decides them"
                )
            # parse_config and resolve_secrets refuse a broker without both.
            assert parsed.credentials_url and parsed.credentials_url_secret
            broker = CredentialsBroker(
                parsed.credentials_url, parsed.credentials_url_secret
            )
        # The core calls configure() again while a source is unavailable:
        # release the previous attempt's clients rather than leak them.
        if self._connection is not None:
            await self._connection.close()
        self._config = parsed
        self._connection = S3Connection(parsed, broker)
        await self.check_available()

    async def check_available(self) -> None:
        """List one key under the prefix: unlike HeadBucket this works with
        the prefix-scoped ``s3:ListBucket`` grants brokers hand out."""
        async with self._lease() as s3:
            try:
                with s3_errors("ListObjectsV2"):
                    await s3.client.list_objects_v2(
                        Bucket=s3.bucket, Prefix=s3.prefix, MaxKeys=1
                    )
            except ClientError as error:
                if is_missing(error):
                    raise StorageUnavailable(
                        f"bucket {s3.bucket!r} does not exist"
                    ) from None
                raise

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def get_file_metadata(self, path: str) -> FileMetadata | None:
        async with self._lease() as s3:
            key = s3.key(path)
            try:
                head = await s3.client.head_object(
                    Bucket=s3.bucket, Key=key, ChecksumMode="ENABLED"
                )
            except ClientError as error:
                if is_missing(error) or (
                    error_code(error)[0] == 403 and await _absent(s3, key)
                ):
                    return None
                raise translate(error, "HeadObject") from None
            except Exception as error:
                raise translate(error, "HeadObject") from None
        return FileMetadata(
            path=path,
            filename=posixpath.basename(path),
            content_type=head.get("ContentType"),
            content_hash=_sha256_of(head),
            size=head.get("ContentLength"),
            created_at=iso(head.get("LastModified")),
            metadata={"etag": head.get("ETag", "").strip('"')},
        )

    async def read_file(self, path: str) -> bytes:
        chunks = [chunk async for chunk in self.stream_file(path)]
        return b"".join(chunks)

    async def read_file_limited(self, path: str, max_bytes: int) -> bytes:
        """The whole file, or ``FileTooLarge`` if it is larger than ``max_bytes``.

        One ranged GET of ``max_bytes + 1`` bytes: getting the extra byte
        means the file is too large.
        """
        data = await self.read_bytes(path, max(max_bytes, 0) + 1)
        if len(data) > max_bytes:
            raise FileTooLarge.for_limit(max_bytes)
        return data

    async def read_bytes(self, path: str, num_bytes: int = 2048) -> bytes:
        """The first ``num_bytes``, with one ranged GET."""
        if num_bytes <= 0:
            return b""
        chunks = [chunk async for chunk in self.stream_file(path, 0, num_bytes - 1)]
        return b"".join(chunks)

    async def stream_file(
        self, path: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Yield bytes ``start``..``end`` (inclusive) with one ranged GET.

        A missing file raises ``FileNotFoundError``; a range that starts past
        the end raises ``ValueError``, except that any read of an empty file
        yields nothing.
        """
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range {start}-{end}")
        extra = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end}"
        async with self._lease() as s3:
            with s3_errors("GetObject"):
                try:
                    response = await s3.client.get_object(
                        Bucket=s3.bucket, Key=s3.key(path), **extra
                    )
                except ClientError as error:
                    if is_missing(error):
                        raise FileNotFoundError(path) from None
                    if error_code(error)[1] != "InvalidRange":
                        raise
                    # S3 refuses every range of an empty object.
                    if start == 0:
                        return
                    raise ValueError(f"range starts past the end of {path}") from None
                body = response["Body"]
                async with body:
                    while chunk := await body.read(CHUNK_SIZE):
                        yield chunk

    async def list_files(
        self, prefix: str = "", cursor: str | None = None, limit: int = 100
    ) -> tuple[list[FileMetadata], str | None]:
        """One page of objects under the source prefix (+ ``prefix``); paths
        are relative to the source prefix. ``cursor`` is S3's opaque
        continuation token."""
        if prefix:
            check_path(prefix)
        limit = max(1, min(int(limit), 1000))
        async with self._lease() as s3:
            extra = {"ContinuationToken": cursor} if cursor else {}
            try:
                with s3_errors("ListObjectsV2"):
                    response = await s3.client.list_objects_v2(
                        Bucket=s3.bucket,
                        Prefix=s3.prefix + prefix,
                        MaxKeys=limit,
                        **extra,
                    )
            except ClientError as error:
                if cursor and error_code(error)[0] == 400:
                    raise ValueError("invalid cursor") from None
                raise
        files = [
            FileMetadata(
                path=s3.path(item["Key"]),
                filename=posixpath.basename(item["Key"]),
                size=item.get("Size"),
                created_at=iso(item.get("LastModified")),
                metadata={"etag": item.get("ETag", "").strip('"')},
            )
            for item in response.get("Contents", [])
            # Folder markers some tools create are not files.
            if item["Key"].startswith(s3.prefix) and not item["Key"].endswith("/")
        ]
        next_cursor = response.get("NextContinuationToken")
        return files, (next_cursor if response.get("IsTruncated") else None)

    async def delete_file(self, path: str) -> None:
        async with self._lease() as s3:
            with s3_errors("DeleteObject"):
                await s3.client.delete_object(Bucket=s3.bucket, Key=s3.key(path))

    async def download_url(
        self,
        path: str,
        expires_in: int = 300,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """A presigned GET that makes browsers download, not render, the file."""
        params = {
            "ResponseContentDisposition": content_disposition(
                filename or posixpath.basename(path)
            )
        }
        if content_type is not None and is_content_type(content_type):
            params["ResponseContentType"] = content_type
        async with self._lease() as s3:
            params.update(Bucket=s3.bucket, Key=s3.key(path))
            with s3_errors("presign GetObject"):
                return await s3.client.generate_presigned_url(
                    "get_object", Params=params, ExpiresIn=self._expires(expires_in)
                )

    async def receive_upload(
        self, path: str, stream: AsyncIterator[bytes], content_type: str | None
    ) -> FileMetadata:
        """Stream an upload through to S3; see ``multipart.stream_to_s3``."""
        check_path(path)
        content_type = checked_content_type(content_type)
        stored = await stream_to_s3(
            self._require_connection(),
            path,
            stream,
            content_type,
            part_size=part_size_for(
                self._config.proxied_upload_limit, self._config.multipart_part_size
            ),
            max_size=self._config.proxied_upload_limit,
        )
        return FileMetadata(
            path=path,
            filename=posixpath.basename(path),
            content_type=content_type,
            content_hash=f"sha256:{stored.sha256}",
            size=stored.size,
            created_at=datetime.now(timezone.utc).isoformat(),
        )

    def _lease(self):
        return self._require_connection().lease()

    def _require_connection(self) -> S3Connection:
        if self._connection is None:
            raise RuntimeError("S3Storage.configure() has not been called")
        return self._connection

    def _expires(self, expires_in: int) -> int:
        """``presign_expires`` caps every presigned URL's lifetime."""
        return max(1, min(int(expires_in), self._config.presign_expires))


async def _absent(s3: Target, key: str) -> bool:
    """Whether a key that HEAD answered 403 for is really missing (S3 does
    that without ``s3:ListBucket``); a 403 here too means access denied."""
    with s3_errors("ListObjectsV2"):
        response = await s3.client.list_objects_v2(
            Bucket=s3.bucket, Prefix=key, MaxKeys=1
        )
    return not any(item["Key"] == key for item in response.get("Contents", []))


def _sha256_of(head: dict) -> str | None:
    """The object's sha256 as ``sha256:<hex>``, if S3 knows it."""
    checksum = head.get("ChecksumSHA256")
    # A multipart checksum ("...-3") is a hash of hashes, not of the file.
    if checksum and "-" not in checksum:
        try:
            return "sha256:" + base64.b64decode(checksum, validate=True).hex()
        except ValueError:
            pass
    stored = head.get("Metadata", {}).get("sha256", "")
    if re.fullmatch(r"[0-9a-fA-F]{64}", stored):
        return "sha256:" + stored.lower()
    return None
