"""Uploads on real SeaweedFS: streamed through Datasette, presigned POST, and
direct multipart with presigned part URLs (sent with plain httpx, as a
browser would)."""

import hashlib
import random
import tracemalloc

import httpx
import pytest
from datasette_files.base import FileTooLarge, UploadVerificationError
from datasette_files_s3.multipart import PARTS_IN_FLIGHT

pytestmark = pytest.mark.asyncio

MiB = 1024 * 1024
PART = 5 * MiB


async def chunks_of(data: bytes, size: int = 64 * 1024):
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def generated(total: int, seed: int = 0, chunk: int = 64 * 1024):
    """``total`` bytes made up on the fly, never held all at once."""
    rng = random.Random(seed)
    sent = 0
    while sent < total:
        size = min(chunk, total - sent)
        yield rng.randbytes(size)
        sent += size


def digest_of(total: int, seed: int = 0, chunk: int = 64 * 1024) -> str:
    rng = random.Random(seed)
    hasher = hashlib.sha256()
    sent = 0
    while sent < total:
        size = min(chunk, total - sent)
        hasher.update(rng.randbytes(size))
        sent += size
    return hasher.hexdigest()


def unfinished(seaweedfs, storage_prefix):
    response = seaweedfs.client().list_multipart_uploads(
        Bucket="storage-tests", Prefix=storage_prefix
    )
    return response.get("Uploads", [])


async def test_streamed_upload_of_many_parts(make_storage, seaweedfs):
    storage = await make_storage(multipart_part_size=PART)
    # More parts than can be in flight at once: the bound is really tested.
    total = (PARTS_IN_FLIGHT + 3) * PART + 12345
    tracemalloc.start()
    try:
        stored = await storage.receive_upload(
            "big/stream.bin", generated(total, seed=7), "application/x-test"
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    expected = digest_of(total, seed=7)
    assert stored.size == total
    assert stored.content_hash == f"sha256:{expected}"
    # PARTS_IN_FLIGHT parts uploading while the next fills, plus the hash
    # batches and chunks on their way: bounded, well under the file's size.
    bound = (PARTS_IN_FLIGHT + 1) * PART + 6 * MiB
    assert peak < bound < total, f"peak {peak / MiB:.1f} MiB"

    metadata = await storage.get_file_metadata("big/stream.bin")
    assert metadata.size == total
    assert metadata.content_type == "application/x-test"
    parts = PARTS_IN_FLIGHT + 4
    assert metadata.metadata["etag"].endswith(f"-{parts}")  # really multipart
    hasher = hashlib.sha256()
    async for chunk in storage.stream_file("big/stream.bin"):
        hasher.update(chunk)
    assert hasher.hexdigest() == expected
    assert await storage.list_unfinished_uploads() == []


class StreamBroke(Exception):
    pass


async def test_stream_failing_midway_leaves_nothing(make_storage, seaweedfs):
    storage = await make_storage(multipart_part_size=PART)

    async def breaks_after(limit):
        async for chunk in generated(limit):
            yield chunk
        raise StreamBroke("client went away")

    with pytest.raises(StreamBroke):
        await storage.receive_upload(
            "broken.bin", breaks_after(2 * PART + 100), "application/octet-stream"
        )
    assert await storage.get_file_metadata("broken.bin") is None
    assert await storage.list_unfinished_uploads() == []
    assert unfinished(seaweedfs, storage._config.prefix) == []


async def test_stream_over_max_file_size_is_refused_and_cleaned_up(
    make_storage, seaweedfs
):
    storage = await make_storage(multipart_part_size=PART, max_file_size=PART + 10)
    with pytest.raises(FileTooLarge):
        await storage.receive_upload(
            "too-big.bin", generated(2 * PART), "application/octet-stream"
        )
    assert await storage.get_file_metadata("too-big.bin") is None
    assert unfinished(seaweedfs, storage._config.prefix) == []


async def test_small_stream_is_one_put_with_checksum(storage):
    stored = await storage.receive_upload(
        "small.txt", chunks_of(b"a" * 1000, 7), "text/plain"
    )
    metadata = await storage.get_file_metadata("small.txt")
    assert metadata.content_hash == stored.content_hash
    assert "-" not in metadata.metadata["etag"]  # a single PutObject


async def post_upload(instructions, data: bytes, content_type: str):
    """What the browser does with presigned POST instructions."""
    async with httpx.AsyncClient() as client:
        return await client.post(
            instructions.upload_url,
            data=instructions.upload_fields,
            files={"file": ("upload.bin", data, content_type)},
        )


async def test_presigned_post_upload(storage):
    data = random.Random(4).randbytes(1000)
    instructions = await storage.prepare_upload("direct/photo.png", "image/png", 1000)
    assert instructions.upload_method == "POST"
    assert instructions.multipart is None
    assert instructions.upload_fields["Content-Type"] == "image/png"
    assert instructions.upload_fields["key"].endswith("/direct/photo.png")

    response = await post_upload(instructions, data, "image/png")
    assert response.status_code in (200, 201, 204), response.text
    await storage.complete_upload("direct/photo.png", instructions.state)

    metadata = await storage.get_file_metadata("direct/photo.png")
    assert metadata.size == 1000
    assert metadata.content_type == "image/png"
    assert await storage.read_file("direct/photo.png") == data


@pytest.mark.parametrize(
    "size,content_type,key,status",
    [
        (999, "image/png", None, 400),  # EntityTooSmall
        (1001, "image/png", None, 400),  # EntityTooLarge
        (1000, "text/html", None, 403),  # Content-Type condition
        (1000, "image/png", "someone-else/photo.png", 403),  # key condition
    ],
)
async def test_presigned_post_policy_is_enforced(
    storage, size, content_type, key, status
):
    instructions = await storage.prepare_upload("direct/exact.png", "image/png", 1000)
    fields = dict(instructions.upload_fields)
    fields["Content-Type"] = content_type
    if key:
        fields["key"] = key
    instructions.upload_fields = fields
    response = await post_upload(instructions, b"x" * size, content_type)
    assert response.status_code == status, response.text
    assert await storage.get_file_metadata("direct/exact.png") is None


async def test_prepare_upload_refuses_oversize_and_bad_input(make_storage):
    storage = await make_storage(max_file_size=1000)
    with pytest.raises(FileTooLarge):
        await storage.prepare_upload("x.bin", "application/octet-stream", 1001)
    with pytest.raises(ValueError):
        await storage.prepare_upload("x.bin", "application/octet-stream", -1)
    with pytest.raises(ValueError):
        await storage.prepare_upload("x.bin", "text/html\r\nX-Evil: 1", 10)
    with pytest.raises(ValueError):
        await storage.prepare_upload("../x.bin", "text/plain", 10)


async def put_parts(urls: dict, data: bytes, part_size: int) -> list[dict]:
    parts = []
    async with httpx.AsyncClient(timeout=60) as client:
        for number, url in sorted(urls.items()):
            body = data[(number - 1) * part_size : number * part_size]
            response = await client.put(url, content=body)
            assert response.status_code == 200, response.text
            parts.append({"PartNumber": number, "ETag": response.headers["etag"]})
    return parts


async def test_direct_multipart_upload(make_storage):
    storage = await make_storage(multipart_threshold=MiB, multipart_part_size=PART)
    size = 2 * PART + 777
    data = random.Random(5).randbytes(size)
    instructions = await storage.prepare_upload("direct/big.bin", "video/mp4", size)
    assert instructions.upload_method == "PUT"
    multipart = instructions.multipart
    assert (multipart.part_size, multipart.part_count) == (PART, 3)
    assert instructions.state["upload_id"] == multipart.upload_id

    urls = await storage.presign_parts(
        "direct/big.bin", instructions.state, [1, 2, 3], expires_in=600
    )
    assert sorted(urls) == [1, 2, 3]
    parts = await put_parts(urls, data, PART)

    listed = await storage.list_unfinished_uploads()
    assert [u["path"] for u in listed] == ["direct/big.bin"]
    assert listed[0]["state"] == {
        "upload_id": multipart.upload_id,
        "abort_only": True,
    }
    assert listed[0]["initiated"].startswith("20")

    # Parts may come back in any order; the storage sorts them.
    await storage.complete_upload(
        "direct/big.bin", instructions.state, list(reversed(parts))
    )
    metadata = await storage.get_file_metadata("direct/big.bin")
    assert metadata.size == size
    assert metadata.content_type == "video/mp4"
    assert await storage.read_file("direct/big.bin") == data
    assert await storage.list_unfinished_uploads() == []


async def test_direct_multipart_bad_part_lists(make_storage):
    storage = await make_storage(multipart_threshold=MiB, multipart_part_size=PART)
    size = PART + 10
    data = random.Random(6).randbytes(size)
    instructions = await storage.prepare_upload("direct/bad.bin", None, size)
    state = instructions.state
    urls = await storage.presign_parts("direct/bad.bin", state, [1, 2])
    parts = await put_parts(urls, data, PART)

    for bad in (
        None,
        [],
        "parts",
        parts[:1],  # a part missing
        parts + [parts[0]],  # a part twice
        [{"PartNumber": "1", "ETag": parts[0]["ETag"]}, parts[1]],
        [{"PartNumber": 1}, parts[1]],
        [{**parts[0], "Extra": 1}, parts[1]],
    ):
        with pytest.raises(ValueError):
            await storage.complete_upload("direct/bad.bin", state, bad)
    wrong_etag = [parts[0], {"PartNumber": 2, "ETag": '"0123456789abcdef"'}]
    with pytest.raises(ValueError):
        await storage.complete_upload("direct/bad.bin", state, wrong_etag)
    for bad_numbers in ([0], [3], ["1"], [], "1"):
        with pytest.raises(ValueError):
            await storage.presign_parts("direct/bad.bin", state, bad_numbers)
    with pytest.raises(ValueError):
        await storage.presign_parts("direct/bad.bin", {}, [1])

    # The upload survived the bad attempts and still completes.
    await storage.complete_upload("direct/bad.bin", state, parts)
    assert await storage.read_file("direct/bad.bin") == data


async def test_abort_direct_multipart(make_storage, seaweedfs):
    storage = await make_storage(multipart_threshold=MiB, multipart_part_size=PART)
    instructions = await storage.prepare_upload("direct/abort.bin", None, 3 * PART)
    urls = await storage.presign_parts("direct/abort.bin", instructions.state, [1])
    await put_parts(urls, random.Random(8).randbytes(PART), PART)
    assert len(await storage.list_unfinished_uploads()) == 1

    await storage.abort_upload("direct/abort.bin", instructions.state)
    assert await storage.list_unfinished_uploads() == []
    assert unfinished(seaweedfs, storage._config.prefix) == []
    assert await storage.get_file_metadata("direct/abort.bin") is None
    # Aborting again is harmless; completing an aborted upload is refused.
    await storage.abort_upload("direct/abort.bin", instructions.state)
    with pytest.raises(UploadVerificationError):
        await storage.complete_upload(
            "direct/abort.bin",
            {"upload_id": instructions.state["upload_id"]},
            [{"PartNumber": 1, "ETag": '"x"'}],
        )


async def test_abort_presigned_post_deletes_the_object(storage):
    instructions = await storage.prepare_upload("direct/posted.txt", "text/plain", 5)
    response = await post_upload(instructions, b"hello", "text/plain")
    assert response.status_code in (200, 201, 204)
    await storage.abort_upload("direct/posted.txt", instructions.state)
    assert await storage.get_file_metadata("direct/posted.txt") is None


async def test_unfinished_uploads_are_scoped_to_the_prefix(make_storage):
    mine = await make_storage(multipart_threshold=MiB, multipart_part_size=PART)
    theirs = await make_storage(multipart_threshold=MiB, multipart_part_size=PART)
    a = await mine.prepare_upload("one.bin", None, 2 * PART)
    b = await theirs.prepare_upload("two.bin", None, 2 * PART)
    assert [u["path"] for u in await mine.list_unfinished_uploads()] == ["one.bin"]
    assert [u["path"] for u in await theirs.list_unfinished_uploads()] == ["two.bin"]
    for storage, path, instructions in ((mine, "one.bin", a), (theirs, "two.bin", b)):
        [found] = await storage.list_unfinished_uploads()
        assert found["path"] == path
        await storage.abort_upload(found["path"], found["state"])
        assert await storage.list_unfinished_uploads() == []
        assert found["state"]["upload_id"] == instructions.state["upload_id"]


async def test_part_size_grows_to_stay_within_ten_thousand_parts(make_storage):
    # No max_file_size: direct uploads may be as large as S3 allows.
    storage = await make_storage(multipart_threshold=MiB, multipart_part_size=PART)
    assert storage.capabilities.max_file_size == 5 * 1024 * 1024 * MiB
    size = 100 * 1024 * MiB  # 100 GiB at 5 MiB parts would need 20,480
    instructions = await storage.prepare_upload("huge.bin", None, size)
    multipart = instructions.multipart
    assert multipart.part_count <= 10_000
    assert multipart.part_size * multipart.part_count >= size
    assert multipart.part_size % MiB == 0
    await storage.abort_upload("huge.bin", instructions.state)


async def test_sweeping_an_orphan_never_deletes_an_object(storage, seaweedfs):
    await storage.receive_upload("kept.bin", chunks_of(b"keep me"), "text/plain")
    key = storage._config.prefix + "kept.bin"
    seaweedfs.client().create_multipart_upload(Bucket="storage-tests", Key=key)
    [orphan] = await storage.list_unfinished_uploads()
    assert orphan["path"] == "kept.bin"
    await storage.abort_upload(orphan["path"], orphan["state"])
    assert await storage.list_unfinished_uploads() == []
    assert await storage.read_file("kept.bin") == b"keep me"
