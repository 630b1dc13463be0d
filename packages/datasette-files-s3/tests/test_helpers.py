"""The small pure pieces: error translation, path checks, header values,
part sizing. No SeaweedFS needed."""

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from datasette_files.base import StorageUnavailable
from datasette_files_s3 import S3Storage
from datasette_files_s3.client import check_path, translate
from datasette_files_s3.headers import checked_content_type
from datasette_files_s3.multipart import part_size_for

MiB = 1024 * 1024


def client_error(status, code):
    return ClientError(
        {
            "Error": {"Code": code, "Message": "x"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetObject",
    )


@pytest.mark.parametrize(
    "error,words",
    [
        (EndpointConnectionError(endpoint_url="http://x"), "could not reach S3"),
        (ConnectTimeoutError(endpoint_url="http://x"), "could not reach S3"),
        (ReadTimeoutError(endpoint_url="http://x"), "could not reach S3"),
        (client_error(500, "InternalError"), "InternalError (HTTP 500)"),
        (client_error(503, "SlowDown"), "SlowDown (HTTP 503)"),
        (client_error(403, "AccessDenied"), "AccessDenied (HTTP 403)"),
        (client_error(400, "ExpiredToken"), "ExpiredToken"),
        (client_error(404, "NoSuchBucket"), "NoSuchBucket"),
    ],
)
def test_translate_unavailable(error, words):
    translated = translate(error, "GetObject")
    assert isinstance(translated, StorageUnavailable)
    assert words in str(translated)
    assert "GetObject" in str(translated)


@pytest.mark.parametrize(
    "error", [client_error(404, "NoSuchKey"), client_error(416, "InvalidRange")]
)
def test_translate_leaves_request_errors_alone(error):
    assert translate(error, "GetObject") is error


@pytest.mark.parametrize("path", ["a.txt", "dir/a.txt", "01abc-name with spaces.pdf"])
def test_check_path_accepts(path):
    assert check_path(path) == path


@pytest.mark.parametrize(
    "path", ["", "/a", "../a", "a/../b", "a/./b", "a\\b", "a\x00b", None, 3]
)
def test_check_path_refuses(path):
    with pytest.raises(ValueError):
        check_path(path)


def test_content_types():
    assert checked_content_type(None) == "application/octet-stream"
    assert checked_content_type("text/plain; charset=utf-8") == (
        "text/plain; charset=utf-8"
    )
    for bad in ("text", "text/html\r\nX: 1", "a b/c"):
        with pytest.raises(ValueError):
            checked_content_type(bad)


def test_part_size_for():
    assert part_size_for(10 * MiB, 16 * MiB) == 16 * MiB
    assert part_size_for(10_000 * 16 * MiB, 16 * MiB) == 16 * MiB
    grown = part_size_for(10_000 * 16 * MiB + 1, 16 * MiB)
    assert grown == 17 * MiB
    huge = 5 * 1024 * 1024 * MiB
    assert part_size_for(huge, 5 * MiB) * 10_000 >= huge


@pytest.mark.asyncio
async def test_default_chain_without_credentials_is_unavailable(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))

    async def no_secrets(name):
        return None

    storage = S3Storage()
    try:
        with pytest.raises(StorageUnavailable) as info:
            await storage.configure(
                {"bucket": "b", "endpoint_url": "http://127.0.0.1:9"}, no_secrets
            )
        assert "no usable AWS credentials" in str(info.value)
    finally:
        await storage.close()


@pytest.mark.asyncio
async def test_unconfigured_storage_says_so():
    with pytest.raises(RuntimeError, match="configure"):
        await S3Storage().get_file_metadata("a.txt")
