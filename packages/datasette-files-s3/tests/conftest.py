"""Fixtures for S3Storage tests against the session's SeaweedFS."""

import uuid

# datasette.app before the plugins: it loads every plugin, and datasette_files
# only registers its hooks when it is imported after datasette, not before.
import datasette.app  # noqa: F401
import pytest_asyncio
from datasette_files_s3 import S3Storage

BUCKET = "storage-tests"


async def no_secrets(name):
    return None


def seaweedfs_config(seaweedfs, **config) -> dict:
    """A source config for the test bucket with the admin keys."""
    return {
        "bucket": BUCKET,
        "region": seaweedfs.region,
        "endpoint_url": seaweedfs.endpoint_url,
        "access_key_id": seaweedfs.access_key_id,
        "secret_access_key": seaweedfs.secret_access_key,
        "prefix": f"t-{uuid.uuid4().hex[:12]}",
        **config,
    }


@pytest_asyncio.fixture
async def make_storage(seaweedfs):
    """``await make_storage(**config)``: a configured S3Storage under a fresh
    prefix of the shared test bucket; closed after the test."""
    seaweedfs.make_bucket(BUCKET)
    made = []

    async def make(**config):
        storage = S3Storage()
        made.append(storage)
        await storage.configure(seaweedfs_config(seaweedfs, **config), no_secrets)
        return storage

    yield make
    # Close in the test's own loop: aiohttp connectors are loop-bound.
    for storage in made:
        await storage.close()


@pytest_asyncio.fixture
async def storage(make_storage):
    return await make_storage()


@pytest_asyncio.fixture
async def source_config(seaweedfs):
    """``source_config(**overrides)``: a config dict for a fresh prefix."""
    seaweedfs.make_bucket(BUCKET)
    return lambda **config: seaweedfs_config(seaweedfs, **config)
