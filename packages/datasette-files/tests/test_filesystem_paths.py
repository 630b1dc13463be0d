"""FilesystemStorage with nested paths (``abc123/hello.txt``), called directly.

Paths in subdirectories work for every method, and no path reaches outside
the root.
"""

from __future__ import annotations

import os

import pytest
from datasette_files.base import FileTooLarge, PathOutsideRoot
from datasette_files.filesystem import FilesystemStorage

pytestmark = pytest.mark.asyncio


async def chunks(*parts: bytes):
    for part in parts:
        yield part


async def storage_at(root) -> FilesystemStorage:
    storage = FilesystemStorage()
    await storage.configure({"root": str(root)}, None)
    return storage


async def test_nested_paths_work_everywhere(tmp_path):
    storage = await storage_at(tmp_path / "root")
    stored = await storage.receive_upload(
        "abc123/hello.txt", chunks(b"hello ", b"world"), "text/plain"
    )
    assert (stored.path, stored.filename, stored.size) == (
        "abc123/hello.txt",
        "hello.txt",
        11,
    )
    assert (tmp_path / "root" / "abc123" / "hello.txt").read_bytes() == b"hello world"

    assert await storage.read_file("abc123/hello.txt") == b"hello world"
    streamed = [c async for c in storage.stream_file("abc123/hello.txt", 6, 10)]
    assert b"".join(streamed) == b"world"
    assert await storage.read_bytes("abc123/hello.txt", 5) == b"hello"
    metadata = await storage.get_file_metadata("abc123/hello.txt")
    assert (metadata.path, metadata.size) == ("abc123/hello.txt", 11)

    await storage.delete_file("abc123/hello.txt")
    assert await storage.get_file_metadata("abc123/hello.txt") is None
    await storage.delete_file("abc123/hello.txt")  # missing: not an error


async def test_listing_walks_nested_directories(tmp_path):
    storage = await storage_at(tmp_path / "root")
    paths = ["top.txt", "a/one.txt", "a/b/two.txt", "c/three.txt"]
    for path in paths:
        await storage.receive_upload(path, chunks(path.encode()), None)
    # Leftovers of an interrupted upload are not files.
    (tmp_path / "root" / ".datasette-files-tmp-0123456789abcdef").write_bytes(b"x")

    files, cursor = await storage.list_files()
    assert [f.path for f in files] == sorted(paths)
    assert cursor is None
    assert {f.path: f.size for f in files}["a/b/two.txt"] == len(b"a/b/two.txt")

    first, cursor = await storage.list_files(limit=3)
    rest, end = await storage.list_files(cursor=cursor, limit=3)
    assert [f.path for f in first + rest] == sorted(paths) and end is None

    under_a, _ = await storage.list_files(prefix="a/")
    assert [f.path for f in under_a] == ["a/b/two.txt", "a/one.txt"]
    under_ab, _ = await storage.list_files(prefix="a/b")
    assert [f.path for f in under_ab] == ["a/b/two.txt"]


@pytest.mark.parametrize(
    "path",
    ["../outside.txt", "a/../../outside.txt", "/etc/passwd", "a/b/../../../x"],
)
async def test_nothing_escapes_the_root(tmp_path, path):
    storage = await storage_at(tmp_path / "root")
    with pytest.raises(PathOutsideRoot, match="outside the storage root"):
        await storage.receive_upload(path, chunks(b"evil"), None)
    for call in (
        storage.read_file(path),
        storage.get_file_metadata(path),
        storage.delete_file(path),
        storage.read_bytes(path),
    ):
        with pytest.raises(PathOutsideRoot):
            await call
    with pytest.raises(PathOutsideRoot):
        [c async for c in storage.stream_file(path)]
    assert not (tmp_path / "outside.txt").exists()
    # Still a ValueError, for code that caught the old error.
    assert issubclass(PathOutsideRoot, ValueError)


async def test_a_symlink_out_of_the_root_is_refused_and_not_listed(tmp_path):
    storage = await storage_at(tmp_path / "root")
    (tmp_path / "secret.txt").write_bytes(b"secret")
    os.symlink(tmp_path / "secret.txt", tmp_path / "root" / "link.txt")
    await storage.receive_upload("a/ok.txt", chunks(b"ok"), None)
    with pytest.raises(PathOutsideRoot):
        await storage.read_file("link.txt")
    files, _ = await storage.list_files()
    assert [f.path for f in files] == ["a/ok.txt"]


async def test_read_file_limited_is_all_or_nothing(tmp_path):
    storage = await storage_at(tmp_path / "root")
    await storage.receive_upload("d/f.bin", chunks(b"0123456789"), None)
    assert await storage.read_file_limited("d/f.bin", 10) == b"0123456789"
    with pytest.raises(FileTooLarge):
        await storage.read_file_limited("d/f.bin", 9)
    assert await storage.read_bytes("d/f.bin", 4) == b"0123"
