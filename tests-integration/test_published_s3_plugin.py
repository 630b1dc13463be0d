"""The published datasette-files-s3 0.1a2 (from PyPI), unchanged, on our core.

Existing users upgrade datasette-files and keep the S3 plugin they have
(issue 11). A throwaway venv gets OUR core (editable, from this checkout) and
the published plugin, never our own datasette-files-s3; a real ``datasette
serve`` from that venv stores files in the session's SeaweedFS, configured
with the keys the plugin's README documents. Everything after that goes
through HTTP, as an existing user's client would.

The venv is built with ``uv`` (on PATH; test.sh installs it) and the uv
cache; the tests skip only when the package registry cannot be reached.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from servers import DatasetteServer, client_limits

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "packages" / "datasette-files"
PUBLISHED = "datasette-files-s3"
PUBLISHED_VERSION = "0.1a2"
SLUG = "legacy"
ROOT_ACTOR = {"id": "root"}
ACTIONS = (
    "files-browse",
    "files-upload",
    "files-edit",
    "files-delete",
    "debug-storages",
)
INSTALL_TIMEOUT = 600
# What uv prints when it cannot reach the index at all (as opposed to a
# package or version the index does not have, which must fail the test).
UNREACHABLE = re.compile(
    r"error sending request|dns error|failed to lookup address|tcp connect error"
    r"|connection refused|network is unreachable|operation timed out"
    r"|connection reset|certificate",
    re.IGNORECASE,
)
# Run in the venv: what the published plugin requires (from its metadata,
# before any of it is importable), then where each package is imported from.
REQUIRES = """
import importlib.metadata, json
print(json.dumps(importlib.metadata.requires("datasette-files-s3") or []))
"""
WHO_IS_WHO = """
import importlib.metadata, json
import datasette_files, datasette_files_s3
print(json.dumps({
    "core_file": datasette_files.__file__,
    "plugin_file": datasette_files_s3.__file__,
    "plugin_version": importlib.metadata.version("datasette-files-s3"),
}))
"""


def run_python(python: str, code: str, cwd: Path):
    """The JSON that ``code`` prints when run by ``python``."""
    done = subprocess.run(  # noqa: S603 - our own argv
        [python, "-c", code], cwd=cwd, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def uv(*args: str, cwd: Path) -> str:
    """Run ``uv``; skip when the registry is unreachable, fail otherwise."""
    binary = shutil.which("uv")
    if binary is None:
        pytest.fail("uv is not on PATH (test.sh installs it)", pytrace=False)
    done = subprocess.run(  # noqa: S603 - our own argv
        [binary, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )
    if done.returncode != 0:
        if UNREACHABLE.search(done.stderr):
            pytest.skip(f"package registry unreachable: {done.stderr.strip()[-500:]}")
        pytest.fail(f"uv {' '.join(args)} failed:\n{done.stderr}", pytrace=False)
    return done.stdout


def runtime_requirements(requires: list[str], leave_out: str) -> list[str]:
    """The requirements that apply without extras, minus ``leave_out``."""
    wanted = []
    for text in requires:
        requirement = Requirement(text)
        if canonicalize_name(requirement.name) == leave_out:
            continue
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        wanted.append(text)
    return wanted


@pytest.fixture(scope="session")
def published_venv(tmp_path_factory) -> Path:
    """A venv with our core (editable) and the published S3 plugin, not ours."""
    work = tmp_path_factory.mktemp("published-s3")
    venv = work / "venv"
    python = str(venv / "bin" / "python")
    uv("venv", "--quiet", "--python", sys.executable, str(venv), cwd=work)
    uv("pip", "install", "--quiet", "--python", python, "-e", str(CORE), cwd=work)
    # --no-deps: its "datasette-files" requirement must stay satisfied by
    # ours, never by a datasette-files release from the registry.
    uv(
        "pip",
        "install",
        "--quiet",
        "--python",
        python,
        "--no-deps",
        f"{PUBLISHED}=={PUBLISHED_VERSION}",
        cwd=work,
    )
    others = runtime_requirements(
        run_python(python, REQUIRES, work), leave_out="datasette-files"
    )
    if others:
        uv("pip", "install", "--quiet", "--python", python, *others, cwd=work)
    found = run_python(python, WHO_IS_WHO, work)
    assert Path(found["core_file"]).is_relative_to(CORE), found
    assert Path(found["plugin_file"]).is_relative_to(venv), found
    assert found["plugin_version"] == PUBLISHED_VERSION, found
    return venv


@pytest.fixture(scope="module")
def legacy_server(published_venv, seaweedfs, tmp_path_factory):
    """``datasette serve`` from that venv: one ``s3`` source, root may do all."""
    bucket = seaweedfs.make_bucket("published-plugin")
    prefix = "compat-" + secrets.token_hex(6)
    directory = tmp_path_factory.mktemp("legacy-datasette")
    # A writable database for the CSV import, which streams through the plugin.
    database = directory / "data.db"
    sqlite3.connect(database).close()
    config = {
        "permissions": {action: {"id": "root"} for action in ACTIONS},
        "databases": {
            "data": {
                "permissions": {
                    "create-table": {"id": "root"},
                    "insert-row": {"id": "root"},
                }
            }
        },
        "plugins": {
            "datasette-files": {
                "sources": {
                    SLUG: {
                        "storage": "s3",
                        # The keys the published plugin's README documents.
                        "config": {
                            "bucket": bucket,
                            "region": seaweedfs.region,
                            "prefix": prefix,
                            "endpoint_url": seaweedfs.endpoint_url,
                            "access_key_id": seaweedfs.access_key_id,
                            "secret_access_key": seaweedfs.secret_access_key,
                        },
                    }
                }
            }
        },
    }
    server = DatasetteServer(directory, config, {}, [database])
    server.data_db = database
    server.executable = str(published_venv / "bin" / "datasette")
    server.bucket = bucket
    server.prefix = prefix + "/"
    server.s3 = seaweedfs.client()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_traceback(legacy_server):
    """Each test fails if the server logged a traceback while it ran."""
    start = legacy_server.log_path.stat().st_size
    yield
    with open(legacy_server.log_path, errors="replace") as fp:
        fp.seek(start)
        written = fp.read()
    assert "Traceback" not in written, f"server log:\n{written}"


@pytest.fixture
def client(legacy_server):
    with legacy_server.client(ROOT_ACTOR) as client:
        yield client


def objects(server) -> dict[str, int]:
    """key → size of what the source holds in SeaweedFS."""
    listing = server.s3.list_objects_v2(Bucket=server.bucket, Prefix=server.prefix)
    return {item["Key"]: item["Size"] for item in listing.get("Contents", [])}


def send(client: httpx.Client, server, upload: dict, filename, data, content_type):
    """Send the bytes the way prepare's instructions say."""
    method = upload.get("method") or "POST"
    headers = upload.get("headers") or {}
    if upload.get("fields"):
        body = {
            "data": upload["fields"],
            "files": {"file": (filename, data, content_type)},
        }
    else:
        body = {"content": data}
    if upload["url"].startswith("/"):
        return client.request(
            method, server.origin + upload["url"], headers=headers, **body
        )
    # Straight to the backend: Datasette's cookie does not go there.
    with httpx.Client(timeout=60, limits=client_limits()) as plain:
        return plain.request(method, upload["url"], headers=headers, **body)


def upload_file(
    client,
    server,
    filename="report.bin",
    size=20_000,
    data=None,
    content_type="application/octet-stream",
) -> tuple:
    """prepare → send → complete, as a 0.1a3 client: (file object, bytes)."""
    data = os.urandom(size) if data is None else data
    size = len(data)
    prepared = client.post(
        f"/-/files/upload/{SLUG}/-/prepare",
        json={"filename": filename, "content_type": content_type, "size": size},
    )
    assert prepared.status_code in (200, 201), prepared.text
    prepared = prepared.json()
    # 0.1a3 replied with flat keys; ours nests them under "upload" too.
    upload = prepared.get("upload") or {
        "url": prepared["upload_url"],
        "method": prepared.get("upload_method", "POST"),
        "headers": prepared.get("upload_headers") or {},
        "fields": prepared.get("upload_fields") or {},
    }
    sent = send(client, server, upload, filename, data, content_type)
    assert sent.is_success, f"{sent.status_code} {sent.text}"
    completed = client.post(
        server.origin + prepared["complete_url"],
        json={"upload_token": prepared["upload_token"]},
    )
    assert completed.status_code == 201, completed.text
    return completed.json()["file"], data


def test_server_runs_our_core_with_the_published_plugin(client):
    plugins = {p["name"]: p for p in client.get("/-/plugins.json").json()}
    assert plugins[PUBLISHED]["version"] == PUBLISHED_VERSION
    assert "datasette-files" in plugins
    storages = client.get("/-/files/storages")
    assert storages.status_code == 200, storages.text
    (source,) = storages.json()["sources"]
    assert source["slug"] == SLUG
    assert source["storage"] == "s3"
    assert source["available"], source["error"]
    assert source["error"] is None


def test_upload_stores_the_bytes_in_s3(client, legacy_server):
    file, data = upload_file(client, legacy_server, "first.bin", 20_000)
    assert file["id"].startswith("df-")
    assert file["filename"] == "first.bin"
    assert file["size"] == len(data)
    assert file["source_slug"] == SLUG
    assert file["uploaded_by"] == "root"
    # docs/http-api.md: bare hex; SPEC section 2 (0.1a3): "sha256:<hex>".
    digest = hashlib.sha256(data).hexdigest()
    assert file["content_hash"].removeprefix("sha256:") == digest
    assert len(data) in objects(legacy_server).values()
    stored = [k for k in objects(legacy_server) if k.endswith("-first.bin")]
    assert len(stored) == 1, objects(legacy_server)
    body = legacy_server.s3.get_object(Bucket=legacy_server.bucket, Key=stored[0])[
        "Body"
    ].read()
    assert body == data


def test_metadata_json_and_file_page(client, legacy_server):
    file, data = upload_file(client, legacy_server, "meta.bin", 3_000)
    response = client.get(f"/-/files/{file['id']}.json")
    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["ok"] is True
    assert shown["file"] == file
    page = client.get(f"/-/files/{file['id']}")
    assert page.status_code == 200, page.text
    assert "meta.bin" in page.text


def test_image_thumbnail_is_made_from_the_stored_bytes(
    client, legacy_server, make_png, eventually
):
    png = make_png("chart.png", 320, 200).read_bytes()
    file, _ = upload_file(
        client, legacy_server, "chart.png", data=png, content_type="image/png"
    )

    def thumbnail():
        response = client.get(f"/-/files/{file['id']}/thumbnail")
        assert response.status_code == 200, response.text
        return response if response.headers["content-type"] != "image/svg+xml" else None

    # The core reads the image back through the plugin to make it.
    response = eventually(thumbnail, timeout=30, message="a thumbnail")
    assert response.headers["content-type"].startswith("image/")
    assert response.content[:4] != b"<svg"


def test_csv_import_streams_the_file(client, legacy_server, eventually):
    rows = 5_000
    csv = "id,amount\n" + "".join(f"{i},{i * 1.5}\n" for i in range(rows))
    file, _ = upload_file(
        client, legacy_server, "sales.csv", data=csv.encode(), content_type="text/csv"
    )
    preview = client.get(f"/-/files/{file['id']}/-/import.json")
    assert preview.status_code == 200, preview.text
    started = client.post(
        f"/-/files/{file['id']}/-/import.json",
        json={"database": "data", "table": "sales"},
    )
    assert started.status_code == 202, started.text
    job_url = started.json()["job"]["json_url"]

    def finished():
        job = client.get(job_url).json()["job"]
        return job if job["finished"] else None

    job = eventually(finished, timeout=30, message="the import")
    assert job["status"] == "done", job["error"]
    assert job["rows_imported"] == rows
    conn = sqlite3.connect(legacy_server.data_db)
    try:
        assert conn.execute("select count(*), sum(id) from sales").fetchone() == (
            rows,
            sum(range(rows)),
        )
    finally:
        conn.close()


def test_download_returns_the_same_bytes(client, legacy_server):
    file, data = upload_file(client, legacy_server, "down.bin", 50_000)
    response = client.get(f"/-/files/{file['id']}/download")
    assert response.status_code in (200, 302), response.text
    if response.status_code == 302:
        # A signed URL to SeaweedFS: fetched without Datasette's cookie.
        with httpx.Client(timeout=60, limits=client_limits()) as plain:
            response = plain.get(response.headers["location"])
        assert response.status_code == 200, response.text
    assert response.content == data


def test_listings_show_the_file(client, legacy_server):
    file, data = upload_file(client, legacy_server, "listed.bin", 1_000)
    listing = client.get(f"/-/files/source/{SLUG}.json")
    assert listing.status_code == 200, listing.text
    assert file["id"] in [f["id"] for f in listing.json()["files"]]
    # The backend's own listing goes through the plugin's list_files.
    raw = client.get(f"/-/files/storages/list/{SLUG}")
    assert raw.status_code == 200, raw.text
    sizes = {f["path"]: f["size"] for f in raw.json()["files"]}
    (path,) = [p for p in sizes if p.endswith("-listed.bin")]
    assert sizes[path] == len(data)


def test_delete_removes_the_file_and_its_object(client, legacy_server):
    file, data = upload_file(client, legacy_server, "gone.bin", 2_000)
    assert any(k.endswith("-gone.bin") for k in objects(legacy_server))
    deleted = client.post(f"/-/files/{file['id']}/-/delete")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"ok": True, "deleted": file["id"]}
    missing = client.get(f"/-/files/{file['id']}.json")
    assert missing.status_code == 404, missing.text
    assert missing.json()["ok"] is False
    assert client.get(f"/-/files/{file['id']}/download").status_code == 404
    assert not any(k.endswith("-gone.bin") for k in objects(legacy_server))
