"""S3Storage reads, listing, deleting and download URLs, on real SeaweedFS."""

import hashlib
import random

import httpx
import pytest
from datasette_files.base import FileMetadata, FileTooLarge, StorageCapabilities
from datasette_files_s3 import S3Storage
from datasette_files_s3.storage import CHUNK_SIZE

pytestmark = pytest.mark.asyncio

MiB = 1024 * 1024


async def chunks_of(data: bytes, size: int = 64 * 1024):
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def put(storage, path, data, content_type="application/octet-stream"):
    return await storage.receive_upload(path, chunks_of(data), content_type)


async def test_capabilities(make_storage):
    storage = await make_storage(max_file_size=12345)
    assert S3Storage.storage_type == "s3"
    assert storage.capabilities == StorageCapabilities(
        can_upload=True,
        can_delete=True,
        can_list=True,
        can_generate_signed_urls=True,
        requires_proxy_download=False,
        max_file_size=12345,
        can_direct_upload=True,
        can_multipart_upload=True,
        can_range_read=True,
        hashes_uploads=True,
    )


async def test_put_read_and_metadata(storage):
    data = b"hello, datasette-files"
    stored = await put(storage, "docs/hello.txt", data, "text/plain")
    assert stored.size == len(data)
    assert stored.content_hash == "sha256:" + hashlib.sha256(data).hexdigest()
    assert stored.content_type == "text/plain"

    metadata = await storage.get_file_metadata("docs/hello.txt")
    assert isinstance(metadata, FileMetadata)
    assert metadata.path == "docs/hello.txt"
    assert metadata.filename == "hello.txt"
    assert metadata.size == len(data)
    assert metadata.content_type == "text/plain"
    assert metadata.content_hash == "sha256:" + hashlib.sha256(data).hexdigest()
    assert metadata.metadata["etag"] == hashlib.md5(data).hexdigest()  # noqa: S324
    assert metadata.created_at.startswith("20")
    assert await storage.read_file("docs/hello.txt") == data


async def test_missing_file(storage):
    assert await storage.get_file_metadata("nope/missing.bin") is None
    with pytest.raises(FileNotFoundError):
        await storage.read_file("nope/missing.bin")
    with pytest.raises(FileNotFoundError):
        await storage.read_bytes("nope/missing.bin")


async def test_range_reads(storage):
    data = random.Random(1).randbytes(5000)
    await put(storage, "ranges.bin", data)
    assert await storage.read_bytes("ranges.bin") == data[:2048]
    assert await storage.read_bytes("ranges.bin", 10) == data[:10]
    assert await storage.read_bytes("ranges.bin", 0) == b""
    # read_file_limited is all or nothing, as in datasette-files 0.1a3.
    assert await storage.read_file_limited("ranges.bin", 100_000) == data
    assert await storage.read_file_limited("ranges.bin", 5000) == data
    with pytest.raises(FileTooLarge):
        await storage.read_file_limited("ranges.bin", 4999)

    async def collect(**kwargs):
        return b"".join([c async for c in storage.stream_file("ranges.bin", **kwargs)])

    assert await collect(start=100, end=199) == data[100:200]
    assert await collect(start=4990) == data[4990:]
    assert await collect(start=4999, end=4999) == data[4999:]
    assert await collect(start=0, end=10_000) == data
    with pytest.raises(ValueError):
        await collect(start=6000)
    with pytest.raises(ValueError):
        await collect(start=10, end=5)


async def test_empty_file(storage):
    stored = await put(storage, "empty.txt", b"")
    assert stored.size == 0
    assert stored.content_hash == "sha256:" + hashlib.sha256(b"").hexdigest()
    assert (await storage.get_file_metadata("empty.txt")).size == 0
    assert await storage.read_bytes("empty.txt") == b""
    assert await storage.read_file("empty.txt") == b""


async def test_stream_file_yields_bounded_chunks(storage):
    data = random.Random(2).randbytes(3 * MiB + 17)
    await put(storage, "stream.bin", data)
    chunks = [chunk async for chunk in storage.stream_file("stream.bin")]
    assert len(chunks) > 1
    assert all(0 < len(chunk) <= CHUNK_SIZE for chunk in chunks)
    assert b"".join(chunks) == data


async def test_stream_can_stop_early(storage):
    data = random.Random(3).randbytes(2 * MiB)
    await put(storage, "early.bin", data)
    stream = storage.stream_file("early.bin")
    first = await stream.__anext__()
    await stream.aclose()
    assert data.startswith(first)
    # The connection went back cleanly: the storage still works.
    assert await storage.read_bytes("early.bin", 4) == data[:4]


async def test_list_with_continuation(storage):
    names = [f"list/file-{i}.txt" for i in range(5)]
    for name in names:
        await put(storage, name, name.encode())
    await put(storage, "other/ignored.txt", b"x")

    seen, pages, cursor = [], [], None
    while True:
        files, cursor = await storage.list_files("list/", cursor=cursor, limit=2)
        pages.append(len(files))
        seen.extend(files)
        if cursor is None:
            break
    assert pages == [2, 2, 1]
    assert [f.path for f in seen] == names
    assert all(f.filename == f.path.rsplit("/", 1)[1] for f in seen)
    assert all(f.size == len(f.path) for f in seen)

    everything, cursor = await storage.list_files(limit=100)
    assert cursor is None
    assert sorted(f.path for f in everything) == sorted(names + ["other/ignored.txt"])


async def test_list_rejects_prefixes_that_escape(storage):
    with pytest.raises(ValueError):
        await storage.list_files("../escape")
    with pytest.raises(ValueError):
        await storage.list_files("/absolute")


async def test_delete(storage):
    await put(storage, "gone.txt", b"bye")
    await storage.delete_file("gone.txt")
    assert await storage.get_file_metadata("gone.txt") is None
    await storage.delete_file("gone.txt")  # deleting twice is fine


async def test_prefix_scoping(make_storage, seaweedfs):
    team_a = await make_storage(prefix="scoping/team-a")
    team_b = await make_storage(prefix="/scoping//team-b/")
    await put(team_a, "shared-name.txt", b"from a")
    await put(team_b, "shared-name.txt", b"from b")
    await put(team_b, "only-b.txt", b"b")

    assert [f.path for f in (await team_a.list_files())[0]] == ["shared-name.txt"]
    assert sorted(f.path for f in (await team_b.list_files())[0]) == [
        "only-b.txt",
        "shared-name.txt",
    ]
    assert await team_a.read_file("shared-name.txt") == b"from a"
    assert await team_a.get_file_metadata("only-b.txt") is None
    keys = {
        item["Key"]
        for item in seaweedfs.client().list_objects_v2(
            Bucket="storage-tests", Prefix="scoping/"
        )["Contents"]
    }
    assert keys == {
        "scoping/team-a/shared-name.txt",
        "scoping/team-b/shared-name.txt",
        "scoping/team-b/only-b.txt",
    }
    # Tidy up the fixed prefixes so a rerun starts clean.
    for storage, name in [(team_a, "shared-name.txt"), (team_b, "shared-name.txt")]:
        await storage.delete_file(name)
    await team_b.delete_file("only-b.txt")


@pytest.mark.parametrize("path", ["../up.txt", "a/../b", "/abs.txt", "a/./b", ""])
async def test_paths_that_escape_are_refused(storage, path):
    with pytest.raises(ValueError):
        await storage.get_file_metadata(path)
    with pytest.raises(ValueError):
        await put(storage, path, b"x")


async def test_download_url_forces_attachment(storage):
    data = b"<html><script>alert(1)</script></html>"
    await put(storage, "page.html", data, "text/html")
    url = await storage.download_url(
        "page.html", filename="report.html", content_type="text/plain"
    )
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert (
        response.headers["content-disposition"] == 'attachment; filename="report.html"'
    )
    assert response.headers["content-type"] == "text/plain"


async def test_download_url_with_unicode_filename(storage):
    await put(storage, "unicode.txt", b"caf\xc3\xa9")
    url = await storage.download_url("unicode.txt", filename='café "menu".txt')
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    # The core's Content-Disposition, as the filesystem storage sends it.
    disposition = response.headers["content-disposition"]
    assert disposition == (
        'attachment; filename="cafe-menu-.txt"; '
        "filename*=UTF-8''caf%C3%A9%20%22menu%22.txt"
    )
    assert response.content == b"caf\xc3\xa9"


async def test_download_url_expiry_is_capped(make_storage):
    storage = await make_storage(presign_expires=60)
    await put(storage, "short.txt", b"x")
    url = await storage.download_url("short.txt", expires_in=3600)
    assert "X-Amz-Expires=60" in url
