"""SeaweedFS going away and coming back: sources report StorageUnavailable
(never crash, never leak secrets) and recover on their own."""

import pytest
from datasette_files.base import StorageUnavailable
from datasette_files_s3 import S3Storage

pytestmark = pytest.mark.asyncio


async def no_secrets(name):
    return None


async def chunks(data):
    yield data


@pytest.mark.slow
async def test_outage_and_recovery(seaweedfs, source_config):
    before = S3Storage()
    await before.configure(source_config(), no_secrets)
    await before.receive_upload("kept.txt", chunks(b"still here"), "text/plain")

    late_config = source_config()
    late = S3Storage()
    seaweedfs.stop()
    try:
        # Startup with the backend down: unavailable, not a config error.
        with pytest.raises(StorageUnavailable) as info:
            await late.configure(late_config, no_secrets)
        message = str(info.value)
        assert "ListObjectsV2" in message
        assert seaweedfs.secret_access_key not in message
        with pytest.raises(StorageUnavailable):
            await late.check_available()

        # A source that was working fails clearly while the backend is down.
        with pytest.raises(StorageUnavailable):
            await before.get_file_metadata("kept.txt")
        with pytest.raises(StorageUnavailable):
            await before.read_file("kept.txt")
        with pytest.raises(StorageUnavailable):
            await before.receive_upload("new.txt", chunks(b"x"), "text/plain")
        with pytest.raises(StorageUnavailable):
            await before.list_files()
    finally:
        seaweedfs.start()

    # Both recover without being reconfigured.
    await late.check_available()
    await late.receive_upload("after.txt", chunks(b"back"), "text/plain")
    assert await late.read_file("after.txt") == b"back"
    assert await before.read_file("kept.txt") == b"still here"
    assert await before.get_file_metadata("new.txt") is None
    await before.close()
    await late.close()
