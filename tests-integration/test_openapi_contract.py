"""The HTTP API against its own OpenAPI document, by schemathesis.

One ``datasette serve`` with a filesystem source (``files``) and an S3 source
on SeaweedFS (``s3``), each holding a file, and a CSV import that has run.
Schemathesis loads ``/-/files/openapi.json`` from it and, for every operation,
generates valid and invalid requests (path parameters drawn from the real
slugs and file ids as well as made-up ones). Each request is sent twice: as
alice, who may do everything, and anonymously. Every answer must be:

- not a 5xx;
- a status the document lists for that operation;
- of the content type it documents (JSON for every error);
- valid against the documented response schema.

The quick run (part of ``./test.sh``) is bounded and derandomized; the deep
run (``slow``) draws more examples and walks the OpenAPI links
prepare → upload → complete → get/update/delete as a state machine.

Each run prints how many requests it sent (docs/reliability.md has figures).
"""

from __future__ import annotations

import secrets
import sqlite3
from collections import Counter

import httpx
import pytest
import schemathesis
from datasette_files.openapi import DOCUMENT
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from servers import ALICE, MB, DatasetteServer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
PERMISSIONS = {
    action: {"id": "alice"}
    for action in (
        "files-browse",
        "files-upload",
        "files-edit",
        "files-delete",
        "debug-storages",
        "create-table",
        "insert-row",
    )
}
BUCKET = "openapi-contract"
CSV = b"name,count\napple,3\npear,5\n"

# Requests sent per run, by run name; printed at the end of each test.
SENT: dict[str, int] = {}


class Contract:
    """The server under test and the real values requests may point at."""

    def __init__(self, server: DatasetteServer):
        self.server = server
        self.slugs = ["files", "s3"]
        self.file_ids: list[str] = []
        self.job_ids: list[str] = []
        self.alice = {"ds_actor": server.cookie(ALICE)}

    def seed(self) -> None:
        with self.server.client(ALICE) as client:
            for slug, name, data, content_type in (
                ("files", "fruit.csv", CSV, "text/csv"),
                ("s3", "fruit.csv", CSV, "text/csv"),
                ("files", "notes.txt", b"hello", "text/plain"),
            ):
                self.file_ids.append(upload(client, slug, name, data, content_type))
            started = client.post(
                f"/-/files/{self.file_ids[0]}/-/import.json",
                json={"database": "content", "table": "fruit"},
            )
            assert started.status_code == 202, started.text
            self.job_ids.append(started.json()["job"]["id"])


def upload(client: httpx.Client, slug, filename, data, content_type) -> str:
    """Prepare (proxied), send, complete: the new file's id."""
    prepared = client.post(
        f"/-/files/upload/{slug}/-/prepare",
        json={
            "filename": filename,
            "content_type": content_type,
            "size": len(data),
            "direct": False,
        },
    )
    assert prepared.is_success, prepared.text
    prepared = prepared.json()
    upload = prepared["upload"]
    origin = str(client.base_url.copy_with(path="/")).rstrip("/")
    sent = client.post(origin + upload["url"], content=data, headers=upload["headers"])
    assert sent.status_code == 200, sent.text
    completed = client.post(
        origin + prepared["complete_url"],
        json={"upload_token": prepared["upload_token"]},
    )
    assert completed.status_code == 201, completed.text
    return completed.json()["file"]["id"]


@pytest.fixture(scope="module")
def contract(tmp_path_factory, seaweedfs):
    directory = tmp_path_factory.mktemp("openapi-contract")
    seaweedfs.make_bucket(BUCKET)
    content = directory / "content.db"
    sqlite3.connect(content).close()
    config = {
        "permissions": PERMISSIONS,
        "plugins": {
            "datasette-files": {
                "sources": {
                    "files": {
                        "storage": "filesystem",
                        "config": {"root": str(directory / "files")},
                    },
                    "s3": {
                        "storage": "s3",
                        "config": {
                            "bucket": BUCKET,
                            "region": seaweedfs.region,
                            "prefix": "c-" + secrets.token_hex(4),
                            "endpoint_url": seaweedfs.endpoint_url,
                            "access_key_id": seaweedfs.access_key_id,
                            "secret_access_key": seaweedfs.secret_access_key,
                        },
                    },
                }
            }
        },
    }
    server_dir = directory / "server"
    server_dir.mkdir()
    server = DatasetteServer(
        server_dir, config, {"base_url": "/api/"}, databases=[content]
    )
    server.start()
    try:
        contract = Contract(server)
        contract.seed()
        yield contract
    finally:
        server.stop()


def real_values(contract: Contract):
    """Path parameters: as generated, or one of the real slugs / ids."""

    def flatmap_path_parameters(context, path_parameters):
        if not path_parameters:
            return st.just(path_parameters)
        real = {
            "slug": contract.slugs,
            "file_id": contract.file_ids,
            "job_id": contract.job_ids,
        }
        options = [path_parameters]
        for name, values in real.items():
            if name in path_parameters:
                options += [{**path_parameters, name: value} for value in values]
        return st.sampled_from(options)

    return flatmap_path_parameters


@pytest.fixture(scope="module")
def api_schema(contract):
    server = contract.server
    schema = schemathesis.openapi.from_url(server.url("/-/files/openapi.json"))
    # servers[0].url is "/api", relative; schemathesis needs the origin too.
    assert schema.raw_schema["servers"][0]["url"] == "/api"
    schema.config.update(base_url=server.url(""), request_timeout=30)
    schema.config.generation.update(
        modes=[
            schemathesis.GenerationMode.POSITIVE,
            schemathesis.GenerationMode.NEGATIVE,
        ],
    )
    schema.hook(real_values(contract))
    return schema


# One test per operation, named by operationId. (schemathesis.pytest's
# from_fixture does not run under pytest 9.2: it reads Function._nodeid.)
OPERATIONS = sorted(
    operation["operationId"]
    for item in DOCUMENT["paths"].values()
    for operation in item.values()
)


def cases(api_schema, operation_id: str):
    """Valid and invalid requests for the operation, and its examples."""
    operation = api_schema.find_operation_by_id(operation_id)
    strategies = [
        operation.as_strategy(mode, hooks=api_schema.hooks)
        for mode in (
            schemathesis.GenerationMode.POSITIVE,
            schemathesis.GenerationMode.NEGATIVE,
        )
    ]
    strategies += api_schema.get_strategies_from_examples(operation)
    return st.one_of(strategies)


def send(case, contract: Contract, run: str) -> None:
    """The case as alice and as nobody; both answers checked."""
    for cookies in (contract.alice, {}):
        response = case.call(cookies=cookies, allow_redirects=False)
        SENT[run] = SENT.get(run, 0) + 1
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception:
            if response.status_code >= 500:
                print(contract.server.log_tail(80))
            raise


def fuzz(api_schema, contract, operation_id: str, run: str, examples: int) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=cases(api_schema, operation_id))
    def run_cases(case):
        send(case, contract, run)

    run_cases()


@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_contract_quick(api_schema, contract, operation_id):
    fuzz(api_schema, contract, operation_id, "quick", 20)


@pytest.mark.slow
@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_contract_deep(api_schema, contract, operation_id):
    fuzz(api_schema, contract, operation_id, "deep", 150)


PREPARE = "POST /-/files/upload/{slug}/-/prepare"
UPLOAD = "POST /-/files/upload/{slug}/-/upload"
COMPLETE = "POST /-/files/upload/{slug}/-/complete"


@pytest.mark.slow
def test_contract_stateful(api_schema, contract):
    """Walk the links: prepare → upload → complete → get / update / delete.

    The upload step sends as many bytes as prepare declared (when that is
    at most 1 MiB), so whole uploads can complete and their files get used.
    """
    # The upload flow and what its links lead to; the rest is fuzzed above.
    flow = api_schema.include(
        operation_id=[
            "prepareUpload",
            "uploadBytes",
            "uploadPartUrls",
            "completeUpload",
            "abortUpload",
            "getFile",
            "updateFile",
            "deleteFile",
        ]
    )
    machine = flow.as_state_machine()
    declared: dict[str, int] = {}
    issued: set[str] = set()
    statuses: Counter = Counter()

    class Stateful(machine):
        def before_call(self, case):
            body = case.body
            if case.operation.label == PREPARE and isinstance(body, dict):
                size = body.get("size")
                if isinstance(size, int) and not isinstance(size, bool) and size > MB:
                    # Small enough to send in the upload step that follows.
                    body["size"] = size % MB
            token = (case.headers or {}).get("X-Upload-Token")
            if case.operation.label == UPLOAD and declared.get(token) is not None:
                case.body = b"x" * declared[token]
                case.media_type = "application/octet-stream"

        def get_call_kwargs(self, case):
            return {"cookies": contract.alice, "allow_redirects": False}

        def after_call(self, response, case):
            super().after_call(response, case)
            statuses[case.operation.label, response.status_code] += 1
            token = (case.headers or {}).get("X-Upload-Token")
            if isinstance(case.body, dict):
                token = case.body.get("upload_token", token)
            if isinstance(token, str) and token in issued:
                statuses["linked"] += 1
            if case.operation.label == PREPARE and response.status_code == 200:
                body = response.json()
                size = body.get("size")
                issued.add(body["upload_token"])
                if isinstance(size, int) and size <= MB:
                    declared[body["upload_token"]] = size

        def validate_response(self, response, case, **kwargs):
            SENT["stateful"] = SENT.get("stateful", 0) + 1
            case.validate_response(response, checks=CHECKS)

    Stateful.run(
        settings=settings(
            max_examples=100,
            stateful_step_count=10,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    print(
        f"\nstateful: {statuses['linked']} steps with a prepared token, "
        f"{statuses[UPLOAD, 200]} uploads, {statuses[COMPLETE, 201]} completes"
    )
    # The links were followed (a prepared token reached a later step), not
    # just every step generated at random.
    assert statuses["linked"] > 0, statuses


def test_listing_a_bad_s3_prefix_is_a_400(contract):
    """Found by schemathesis: S3 refuses a prefix with control characters
    with ValueError, which the debug listing turned into a 500."""
    with contract.server.client(ALICE) as client:
        response = client.get(
            "/-/files/storages/list/s3", params={"prefix": "a\x1cb", "limit": 5}
        )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["ok"] is False and body["status"] == 400
    assert "control characters" in body["error"]


@pytest.fixture(scope="module", autouse=True)
def report_requests(contract):
    yield
    for run, count in SENT.items():
        print(f"\nopenapi contract, {run} run: {count} requests")
