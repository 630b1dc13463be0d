"""Config validation and prefix normalisation."""

import pytest
from datasette_files.base import StorageConfigError
from datasette_files_s3.config import (
    GiB,
    MiB,
    normalise_prefix,
    parse_config,
    resolve_secrets,
)


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("uploads", "uploads/"),
        ("uploads/", "uploads/"),
        ("/uploads", "uploads/"),
        ("//uploads//2024//", "uploads/2024/"),
        ("a/b/c", "a/b/c/"),
        ("", ""),
        ("/", ""),
        ("///", ""),
    ],
)
def test_prefix_normalisation(raw, expected):
    assert normalise_prefix(raw) == expected
    assert parse_config({"bucket": "b", "prefix": raw}).prefix == expected


@pytest.mark.parametrize("raw", ["../x", "a/../b", "a/./b", "a\nb"])
def test_prefix_refuses_dot_segments_and_control_characters(raw):
    with pytest.raises(StorageConfigError) as info:
        parse_config({"bucket": "b", "prefix": raw})
    assert info.value.key == "prefix"


def test_defaults():
    config = parse_config({"bucket": "my-bucket"})
    assert config.bucket == "my-bucket"
    assert config.region == "us-east-1"
    assert config.prefix == ""
    assert config.max_file_size is None
    assert config.direct_upload_limit == 5 * 1024 * GiB
    assert config.proxied_upload_limit == 5 * GiB
    assert config.multipart_threshold == 100 * MiB
    assert config.multipart_part_size == 8 * MiB
    assert config.presign_expires == 3600
    assert not config.uses_broker


def test_full_config_and_secrets_hidden_from_repr():
    config = parse_config(
        {
            "bucket": "b1",
            "region": "eu-west-2",
            "prefix": "x",
            "endpoint_url": "http://127.0.0.1:8333",
            "access_key_id": "AKIDEXAMPLE",
            "secret_access_key": "very-secret-value",
            "session_token": "session-token-value",
            "max_file_size": 1000,
            "multipart_threshold": "2000",
            "multipart_part_size": 6 * MiB,
            "presign_expires": 60,
        }
    )
    assert config.region == "eu-west-2"
    assert config.multipart_threshold == 2000
    assert config.direct_upload_limit == config.proxied_upload_limit == 1000
    assert config.secret_access_key == "very-secret-value"
    text = repr(config)
    assert "very-secret-value" not in text
    assert "session-token-value" not in text
    assert "AKIDEXAMPLE" not in text


def test_numeric_bucket_from_dash_s_flag_is_accepted():
    # `-s ...config.bucket 2024` arrives JSON-decoded as an int.
    assert parse_config({"bucket": 2024}).bucket == "2024"


@pytest.mark.parametrize(
    "config,key,words",
    [
        ({"bucket": "b", "buckt": "x"}, "buckt", "did you mean 'bucket'"),
        ({"bucket": "b", "nonsense": 1}, "nonsense", "unknown"),
        ({}, "bucket", "bucket is required"),
        ({"bucket": ["b"]}, "bucket", "must be a string"),
        ({"bucket": "b", "region": 12.5}, "region", "must be a string"),
        ({"bucket": "b", "max_file_size": "big"}, "max_file_size", "integer"),
        ({"bucket": "b", "max_file_size": True}, "max_file_size", "integer"),
        ({"bucket": "b", "max_file_size": 0}, "max_file_size", "between"),
        ({"bucket": "b", "multipart_part_size": MiB}, "multipart_part_size", "between"),
        (
            {"bucket": "b", "multipart_threshold": 6 * GiB},
            "multipart_threshold",
            "between",
        ),
        ({"bucket": "b", "presign_expires": 8 * 86400}, "presign_expires", "between"),
        ({"bucket": "b", "endpoint_url": "localhost:8333"}, "endpoint_url", "http"),
        ({"bucket": "bad bucket"}, "bucket", "not a valid bucket"),
        ({"bucket": ""}, "bucket", "empty"),
        (
            {"credentials_url": "https://broker.example/creds"},
            "credentials_url_secret",
            "required with credentials_url",
        ),
        (
            {"bucket": "b", "credentials_url_secret": "s"},
            "credentials_url",
            "only used with credentials_url",
        ),
        (
            {"bucket": "b", "access_key_id": "AKID"},
            "secret_access_key",
            "required with access_key_id",
        ),
        (
            {"bucket": "b", "secret_access_key": "s"},
            "access_key_id",
            "required with secret_access_key",
        ),
        ({"bucket": "b", "session_token": "t"}, "session_token", "access_key_id"),
        (
            {"bucket": "b", "access_key_id": "A", "secret_access_key": {"x": 1}},
            "secret_access_key",
            "secret",
        ),
    ],
)
def test_invalid_config_names_the_key(config, key, words):
    with pytest.raises(StorageConfigError) as info:
        parse_config(config)
    assert info.value.key == key
    assert key in str(info.value)
    assert words in str(info.value)


def test_secret_values_never_appear_in_errors():
    with pytest.raises(StorageConfigError) as info:
        parse_config({"bucket": "b", "secret_access_key": "hunter2-secret"})
    assert "hunter2-secret" not in str(info.value)


def test_broker_config_needs_no_bucket():
    config = parse_config(
        {
            "credentials_url": "https://broker.example/creds",
            "credentials_url_secret": "s3cret",
        }
    )
    assert config.uses_broker
    assert config.bucket is None


def test_not_a_mapping():
    with pytest.raises(StorageConfigError):
        parse_config(["bucket"])


@pytest.mark.asyncio
async def test_secret_references_are_resolved_with_get_secret():
    asked = []

    async def get_secret(name):
        asked.append(name)
        return {"BROKER_SECRET": "from-secrets", "AWS_SECRET": "aws-secret"}.get(name)

    config = parse_config(
        {
            "credentials_url": "https://broker.example/creds",
            "credentials_url_secret": {"secret": "BROKER_SECRET"},
            "access_key_id": "AKID",
            "secret_access_key": {"secret": "AWS_SECRET"},
        }
    )
    assert config.credentials_url_secret is None
    resolved = await resolve_secrets(config, get_secret)
    assert sorted(asked) == ["AWS_SECRET", "BROKER_SECRET"]
    assert resolved.credentials_url_secret == "from-secrets"
    assert resolved.secret_access_key == "aws-secret"
    assert resolved.pending_secrets == {}


@pytest.mark.asyncio
async def test_missing_secret_is_a_config_error():
    async def get_secret(name):
        return None

    config = parse_config(
        {
            "credentials_url": "https://broker.example/creds",
            "credentials_url_secret": {"secret": "NOPE"},
        }
    )
    with pytest.raises(StorageConfigError) as info:
        await resolve_secrets(config, get_secret)
    assert info.value.key == "credentials_url_secret"
    assert "NOPE" in str(info.value)
