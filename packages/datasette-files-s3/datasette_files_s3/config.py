"""Parse, validate and normalise an ``s3`` source's config block.

Everything here is synchronous and side-effect free except
``resolve_secrets``, which awaits the core's ``get_secret`` for values given
as ``{"secret": "NAME"}``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace

from datasette_files.base import GetSecret, StorageConfigError
from datasette_files.settings import int_setting

MiB = 1024 * 1024
GiB = 1024 * MiB
TiB = 1024 * GiB

# Limits S3 itself imposes; a config outside them could never work.
S3_MAX_SINGLE_UPLOAD = 5 * GiB
S3_MAX_OBJECT_SIZE = 5 * TiB
S3_MIN_PART_SIZE = 5 * MiB
S3_MAX_PART_SIZE = 5 * GiB
S3_MAX_PARTS = 10_000
# SigV4 presigned URLs cannot live longer than seven days.
S3_MAX_PRESIGN_EXPIRES = 7 * 24 * 3600

STRING_KEYS = (
    "bucket",
    "region",
    "prefix",
    "endpoint_url",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "credentials_url",
    "credentials_url_secret",
)
INTEGER_KEYS = (
    "max_file_size",
    "multipart_threshold",
    "multipart_part_size",
    "presign_expires",
)
# Keys whose value may be {"secret": "NAME"}, looked up with get_secret().
SECRET_KEYS = (
    "access_key_id",
    "secret_access_key",
    "session_token",
    "credentials_url_secret",
)

_INTEGER_BOUNDS = {
    "max_file_size": (1, S3_MAX_OBJECT_SIZE),
    "multipart_threshold": (1, S3_MAX_SINGLE_UPLOAD),
    "multipart_part_size": (S3_MIN_PART_SIZE, S3_MAX_PART_SIZE),
    "presign_expires": (1, S3_MAX_PRESIGN_EXPIRES),
}

# A bucket name S3-compatible servers accept (a config key or a broker's S3Folder).
BUCKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


@dataclass(frozen=True)
class S3Config:
    """A validated source config. Secrets are kept out of ``repr``."""

    bucket: str | None = None
    region: str = "us-east-1"
    prefix: str = ""
    endpoint_url: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    credentials_url: str | None = None
    credentials_url_secret: str | None = field(default=None, repr=False)
    # None: direct uploads up to S3's 5 TiB, uploads through Datasette up
    # to 5 GiB. A number caps both.
    max_file_size: int | None = None
    multipart_threshold: int = 100 * MiB
    multipart_part_size: int = 8 * MiB
    presign_expires: int = 3600
    # Names of secrets still to be fetched: {config key: secret name}.
    pending_secrets: dict = field(default_factory=dict, repr=False)

    @property
    def uses_broker(self) -> bool:
        return self.credentials_url is not None

    @property
    def direct_upload_limit(self) -> int:
        """Largest browser-to-S3 upload (multipart above the threshold)."""
        return self.max_file_size or S3_MAX_OBJECT_SIZE

    @property
    def proxied_upload_limit(self) -> int:
        """Largest upload streamed through Datasette (``receive_upload``)."""
        return self.max_file_size or S3_MAX_SINGLE_UPLOAD


def normalise_prefix(prefix: str, key: str = "prefix") -> str:
    """``uploads`` -> ``uploads/``; strip leading ``/``; collapse ``//``.

    An empty prefix (or just slashes) means the whole bucket. ``.`` and
    ``..`` segments are refused: S3 keys are not paths, and a prefix that
    looks like it climbs out of itself is always a mistake.
    """
    segments = [segment for segment in prefix.split("/") if segment]
    for segment in segments:
        if segment in (".", ".."):
            raise StorageConfigError(
                f"{key} must not contain '.' or '..' segments", key=key
            )
    if any(ord(ch) < 32 or ch == "\x7f" for ch in prefix):
        raise StorageConfigError(f"{key} must not contain control characters", key=key)
    return "".join(segment + "/" for segment in segments)


def parse_config(config: dict) -> S3Config:
    """Validate a raw config dict; raise ``StorageConfigError`` naming the key."""
    if not isinstance(config, dict):
        raise StorageConfigError("s3 config must be a mapping of keys to values")
    known = set(STRING_KEYS) | set(INTEGER_KEYS)
    for key in config:
        if key not in known:
            suggestion = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean {suggestion[0]!r}?)" if suggestion else ""
            raise StorageConfigError(f"unknown s3 config key {key!r}{hint}", key=key)

    values: dict = {}
    pending: dict = {}
    for key in STRING_KEYS:
        if key not in config or config[key] is None:
            continue
        value = config[key]
        if key in SECRET_KEYS and isinstance(value, dict):
            pending[key] = _secret_name(key, value)
            continue
        values[key] = _string(key, value)
    for key in INTEGER_KEYS:
        if config.get(key) is not None:
            values[key] = int_setting(config, key, None, *_INTEGER_BOUNDS[key])

    parsed = S3Config(pending_secrets=pending, **values)
    _check_combinations(parsed, set(values) | set(pending))
    return replace(parsed, prefix=normalise_prefix(parsed.prefix))


async def resolve_secrets(config: S3Config, get_secret: GetSecret) -> S3Config:
    """Fetch ``{"secret": "NAME"}`` values; a missing secret is a config error."""
    resolved = {}
    for key, name in config.pending_secrets.items():
        value = await get_secret(name)
        if not value:
            raise StorageConfigError(
                f"{key} refers to secret {name!r}, which is not set", key=key
            )
        resolved[key] = _string(key, value)
    return replace(config, pending_secrets={}, **resolved)


def _secret_name(key: str, value: dict) -> str:
    name = value.get("secret")
    if set(value) != {"secret"} or not isinstance(name, str) or not name:
        raise StorageConfigError(
            f'{key} must be a string or {{"secret": "NAME"}}', key=key
        )
    return name


def _string(key: str, value) -> str:
    # Datasette's -s flag JSON-decodes values, so a bucket called "2024"
    # arrives as an int; accept it rather than make users quote it twice.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise StorageConfigError(
            f"{key} must be a string, not {type(value).__name__}", key=key
        )
    value = value.strip()
    if key == "prefix":
        return value
    if not value:
        raise StorageConfigError(f"{key} must not be empty", key=key)
    if key == "bucket" and not BUCKET_RE.match(value):
        raise StorageConfigError(
            f"bucket {value!r} is not a valid bucket name", key=key
        )
    if key in ("endpoint_url", "credentials_url") and not re.match(
        r"^https?://[^/\s]+", value
    ):
        raise StorageConfigError(f"{key} must be an http:// or https:// URL", key=key)
    return value


# (a key given, the key it needs, the error, the key the error names)
_KEYS_GIVEN_TOGETHER = (
    (
        "access_key_id",
        "secret_access_key",
        "secret_access_key is required with access_key_id",
        "secret_access_key",
    ),
    (
        "secret_access_key",
        "access_key_id",
        "access_key_id is required with secret_access_key",
        "access_key_id",
    ),
    (
        "session_token",
        "access_key_id",
        "session_token needs access_key_id and secret_access_key",
        "session_token",
    ),
)


def _check_combinations(config: S3Config, given: set) -> None:
    if config.uses_broker:
        if "credentials_url_secret" not in given:
            raise StorageConfigError(
                "credentials_url_secret is required with credentials_url",
                key="credentials_url_secret",
            )
    else:
        if "credentials_url_secret" in given:
            raise StorageConfigError(
                "credentials_url_secret is only used with credentials_url",
                key="credentials_url",
            )
        if "bucket" not in given:
            raise StorageConfigError(
                "bucket is required (unless credentials_url is set)", key="bucket"
            )
    for present, needed, message, key in _KEYS_GIVEN_TOGETHER:
        if present in given and needed not in given:
            raise StorageConfigError(message, key=key)
