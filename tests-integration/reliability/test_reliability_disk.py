"""A full disk under a filesystem source: the upload that does not fit gets
a 507 JSON error, its temp file is removed, and the source keeps working for
files that fit.

It runs twice: on a real 8 MiB tmpfs mounted by the test (skipped where
mounting is not allowed: not root, or no CAP_SYS_ADMIN in a container), and
on a plain directory with a simulated full disk, where the ``faults`` plugin
makes the server's writes fail with ENOSPC past 8 MiB.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess

import pytest

MB = 1024 * 1024
DISK = 8 * MB
pytestmark = pytest.mark.asyncio


@pytest.fixture(params=["tmpfs", "simulated"])
def small_disk(request, tmp_path):
    """(root, how): an 8 MiB tmpfs, or a directory and "simulated"."""
    root = tmp_path / "small"
    root.mkdir()
    if request.param == "simulated":
        yield root, "simulated"
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0755", "tmpfs", str(root)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield root, "tmpfs"
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


async def test_disk_full(
    small_disk,
    start_datasette,
    faults,
    files_client,
    json_error,
    partial_data,
    nothing_lost,
):
    root, how = small_disk
    server = start_datasette(
        sources={"files": {"storage": "filesystem", "config": {"root": str(root)}}},
        args=faults.args,
        env=faults.env(disk_quota=DISK if how == "simulated" else None),
    )
    expected = {}
    figures = {"disk": how, "requests": 0, "errors_507": 0}
    async with files_client(server) as client:

        async def upload(name: str, size: int):
            """(file or None, the failing response)."""
            data = os.urandom(size)
            prepared = await client.prepare("files", name, size)
            assert prepared.status_code == 200, prepared.text
            prepared = prepared.json()
            sent = await client.send(prepared, data)
            figures["requests"] += 2
            if sent.status_code != 200:
                # The token survives a failed send; give it up cleanly.
                assert (await client.abort(prepared)).status_code == 200
                figures["requests"] += 1
                return None, sent
            completed = await client.complete(prepared)
            figures["requests"] += 1
            assert completed.status_code == 201, completed.text
            file = completed.json()["file"]
            expected[file["id"]] = hashlib.sha256(data).hexdigest()
            return file, None

        file, _ = await upload("first.bin", 5 * MB)
        assert file is not None

        # Declared too big for the free space only shows while writing.
        file, failed = await upload("too-big.bin", 4 * MB)
        assert file is None
        assert "full" in json_error(failed, 507)
        figures["errors_507"] += 1
        assert partial_data(server) == []

        # Smaller files still fit.
        file, _ = await upload("small.bin", MB)
        assert file is not None

        # Several at once into the last ~2 MiB: some fit, the rest get 507s.
        results = await asyncio.gather(
            *(upload(f"race-{i}.bin", 768 * 1024) for i in range(4))
        )
        refused = [failed for file, failed in results if file is None]
        for response in refused:
            json_error(response, 507)
        figures["errors_507"] += len(refused)
        assert 0 < len(refused) < 4, [f for f, _ in results]
        figures["concurrent_fitted"] = 4 - len(refused)

        # Past the source's max_file_size, prepare refuses it up front.
        too_large = await client.prepare("files", "huge.bin", 200 * MB)
        json_error(too_large, 413)
        figures["requests"] += 1

    assert partial_data(server) == []
    await nothing_lost(server, expected)
    print(f"\nFIGURES disk full: lost=0, {figures}")
