"""Uploads that go straight from the browser to S3.

Small files: a presigned POST whose policy pins the key, the Content-Type
and the exact size. Large files: an S3 multipart upload; the browser asks
for presigned part URLs, PUTs the parts, and sends back their ETags.
"""

from __future__ import annotations

import math
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from datasette_files.base import (
    FileTooLarge,
    MultipartUpload,
    UploadInstructions,
    UploadVerificationError,
)

from .client import Target, check_path, error_code, is_missing, s3_errors
from .config import S3Config
from .headers import checked_content_type, iso
from .multipart import check_part_numbers, check_parts, part_size_for


class DirectUploads:
    """The direct-upload half of ``S3Storage`` (needs its ``_lease``,
    ``_config`` and ``_expires``)."""

    if TYPE_CHECKING:
        _config: S3Config

        def _lease(self) -> AbstractAsyncContextManager[Target]: ...

        def _expires(self, expires_in: int) -> int: ...

    async def prepare_upload(
        self,
        path: str,
        content_type: str | None,
        size: int,
        expires_in: int = 3600,
    ) -> UploadInstructions:
        """A presigned POST pinned to this key, type and exact size; above
        ``multipart_threshold``, a multipart upload whose part URLs the client
        asks for with ``presign_parts``."""
        check_path(path)
        content_type = checked_content_type(content_type)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError("size must be a non-negative integer")
        limit = self._config.direct_upload_limit
        if size > limit:
            raise FileTooLarge(
                f"{size} bytes is more than this source's limit of {limit}"
            )
        expires = self._expires(expires_in)
        async with self._lease() as s3:
            key = s3.key(path)
            if size <= self._config.multipart_threshold:
                with s3_errors("presign PostObject"):
                    post = await s3.client.generate_presigned_post(
                        s3.bucket,
                        key,
                        Fields={"Content-Type": content_type},
                        Conditions=[
                            {"Content-Type": content_type},
                            ["content-length-range", size, size],
                        ],
                        ExpiresIn=expires,
                    )
                return UploadInstructions(
                    upload_url=post["url"],
                    upload_method="POST",
                    upload_fields=post["fields"],
                )
            part_size = part_size_for(size, self._config.multipart_part_size)
            part_count = math.ceil(size / part_size)
            with s3_errors("CreateMultipartUpload"):
                response = await s3.client.create_multipart_upload(
                    Bucket=s3.bucket, Key=key, ContentType=content_type
                )
        upload_id = response["UploadId"]
        return UploadInstructions(
            upload_url="",
            upload_method="PUT",
            multipart=MultipartUpload(
                part_size, part_count, upload_id, part_tag_header="ETag"
            ),
            state={
                "upload_id": upload_id,
                "part_size": part_size,
                "part_count": part_count,
            },
        )

    async def presign_parts(
        self, path: str, state: dict, part_numbers: list[int], expires_in: int = 3600
    ) -> dict[int, str]:
        """Presigned UploadPart URLs; the client PUTs each part's bytes and
        keeps the ``ETag`` response header for ``complete_upload``."""
        upload_id = _upload_id(state, required=True)
        numbers = check_part_numbers(part_numbers, state.get("part_count"))
        expires = self._expires(expires_in)
        async with self._lease() as s3:
            key = s3.key(path)
            with s3_errors("presign UploadPart"):
                return {
                    number: await s3.client.generate_presigned_url(
                        "upload_part",
                        Params={
                            "Bucket": s3.bucket,
                            "Key": key,
                            "UploadId": upload_id,
                            "PartNumber": number,
                        },
                        ExpiresIn=expires,
                    )
                    for number in numbers
                }

    async def complete_upload(
        self, path: str, state: dict, parts: list[dict] | None = None
    ) -> None:
        """Finish a multipart upload. A presigned POST needs no finishing:
        the core HEAD-checks the object either way."""
        upload_id = _upload_id(state)
        if upload_id is None:
            return
        checked = check_parts(parts, state.get("part_count"))
        async with self._lease() as s3:
            try:
                with s3_errors("CompleteMultipartUpload"):
                    await s3.client.complete_multipart_upload(
                        Bucket=s3.bucket,
                        Key=s3.key(path),
                        UploadId=upload_id,
                        MultipartUpload={"Parts": checked},
                    )
            except ClientError as error:
                code = error_code(error)[1]
                if code == "NoSuchUpload":
                    raise UploadVerificationError(
                        "the multipart upload no longer exists"
                    ) from None
                if code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall"):
                    raise ValueError(f"S3 rejected the part list ({code})") from None
                raise

    async def abort_upload(self, path: str, state: dict) -> None:
        """Abort the multipart upload (if any) and delete whatever reached
        the key. Safe to call twice. A state from ``list_unfinished_uploads``
        (``abort_only``) only aborts: the sweep found the upload, not an
        upload of ours, so an object at that key is not ours to delete."""
        upload_id = _upload_id(state)
        async with self._lease() as s3:
            key = s3.key(path)
            if upload_id is not None:
                try:
                    with s3_errors("AbortMultipartUpload"):
                        await s3.client.abort_multipart_upload(
                            Bucket=s3.bucket, Key=key, UploadId=upload_id
                        )
                except ClientError as error:
                    if error_code(error)[1] != "NoSuchUpload" and not is_missing(error):
                        raise
            if isinstance(state, dict) and state.get("abort_only"):
                return
            with s3_errors("DeleteObject"):
                await s3.client.delete_object(Bucket=s3.bucket, Key=key)

    async def list_unfinished_uploads(self) -> list[dict]:
        """Multipart uploads under the prefix that were never completed."""
        found: list[dict] = []
        async with self._lease() as s3:
            params = {"Bucket": s3.bucket, "Prefix": s3.prefix}
            while True:
                with s3_errors("ListMultipartUploads"):
                    response = await s3.client.list_multipart_uploads(**params)
                for upload in response.get("Uploads", []):
                    path = s3.path(upload["Key"])
                    if not upload["Key"].startswith(s3.prefix) or not _valid(path):
                        continue
                    found.append(
                        {
                            "path": path,
                            "state": {
                                "upload_id": upload["UploadId"],
                                "abort_only": True,
                            },
                            "initiated": iso(upload.get("Initiated")),
                        }
                    )
                markers = {
                    "KeyMarker": response.get("NextKeyMarker"),
                    "UploadIdMarker": response.get("NextUploadIdMarker"),
                }
                # Stop on a backend that says "truncated" without moving on.
                if not response.get("IsTruncated") or not markers["KeyMarker"]:
                    break
                if all(params.get(name) == value for name, value in markers.items()):
                    break
                params.update(markers)
        return found


def _upload_id(state: dict, required: bool = False) -> str | None:
    upload_id = state.get("upload_id") if isinstance(state, dict) else None
    if upload_id is not None and not isinstance(upload_id, str):
        raise ValueError("state has an invalid upload_id")
    if required and not upload_id:
        raise ValueError("this upload is not a multipart upload")
    return upload_id or None


def _valid(path: str) -> bool:
    try:
        check_path(path)
    except ValueError:
        return False
    return True
