"""/-/files/openapi.json: a valid OpenAPI 3.1 document, under base_url, that
leaves out no JSON route. (Responses are checked against it by schemathesis
in tests-integration/test_openapi_contract.py.)"""

from __future__ import annotations

import re

import pytest
from datasette_files.imports import views as imports
from datasette_files.routes import ROUTES
from datasette_files.views import common, files, search, sources
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from conftest import ALICE

# Views that answer HTML; every other route answers JSON (at least its errors).
HTML_VIEWS = {
    sources.index_view,
    search.search_page_view,
    sources.source_page_view,
    sources.upload_page_view,
    files.file_page_view,
    imports.job_page_view,
    # The catch-all 404 (tested below).
    common.not_found_view,
}


def template(pattern: str) -> str:
    """``^/-/files/(?P<file_id>df-[^/.]+)\\.json$`` → ``/-/files/{file_id}.json``."""
    path = pattern.removeprefix("^").removesuffix("$")
    path = re.sub(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)", r"{\1}", path)
    return path.replace("\\.", ".")


def json_paths() -> set[str]:
    """Every JSON route as an OpenAPI path; ``(\\.json)?`` counts as ``.json``."""
    paths = set()
    for pattern, view in ROUTES:
        if view in HTML_VIEWS:
            continue
        pattern = pattern.replace(r"(?P<format>\.json)?", r"\.json")
        paths.add(template(pattern))
    return paths


async def fetch(ds, path="/-/files/openapi.json"):
    response = await ds.client.get(path, actor=ALICE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


@pytest.mark.asyncio
async def test_document_is_valid_openapi_3_1(make_ds):
    ds = await make_ds()
    document = await fetch(ds)
    assert document["openapi"].startswith("3.1")
    OpenAPIV31SpecValidator(document).validate()
    assert document["servers"][0]["url"] == "/"


@pytest.mark.asyncio
async def test_served_under_base_url(make_ds):
    ds = await make_ds(settings={"base_url": "/prefix/"})
    response = await ds.client.request(
        "GET", "/prefix/-/files/openapi.json", avoid_path_rewrites=True
    )
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["servers"][0]["url"] == "/prefix"
    # Paths stay relative to the server, so server + path is the real URL.
    assert "/-/files/sources.json" in document["paths"]
    sources = await ds.client.request(
        "GET",
        document["servers"][0]["url"] + "/-/files/sources.json",
        avoid_path_rewrites=True,
    )
    assert sources.status_code == 200


def test_template_reads_route_patterns():
    assert template(r"^/-/files/upload/(?P<slug>[^/]+)/-/prepare$") == (
        "/-/files/upload/{slug}/-/prepare"
    )
    assert template(r"^/-/files/(?P<file_id>df-[^/.]+)\.json$") == (
        "/-/files/{file_id}.json"
    )


@pytest.mark.asyncio
async def test_every_json_route_is_documented(make_ds):
    document = await fetch(await make_ds())
    documented = set(document["paths"])
    missing = json_paths() - documented
    assert not missing, f"JSON routes missing from openapi.json: {sorted(missing)}"
    # And nothing documented that no route serves.
    assert documented <= json_paths()


@pytest.mark.asyncio
async def test_every_operation_documents_the_error_shape(make_ds):
    document = await fetch(await make_ds())
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.endswith("openapi.json"):
                continue
            errors = {s for s in operation["responses"] if int(s) >= 400}
            assert errors, f"{method} {path} documents no error"
            for status in errors:
                assert operation["responses"][status] == {
                    "$ref": f"#/components/responses/E{status}"
                }
            if method == "post":
                assert "405" in operation["responses"]


@pytest.mark.asyncio
async def test_examples_match_their_schemas(make_ds):
    document = await fetch(await make_ds())
    checked = 0

    def validate(schema, example, where):
        nonlocal checked
        # Resolve local $refs against the whole document.
        wrapper = {**schema, "components": document["components"]}
        errors = list(Draft202012Validator(wrapper).iter_errors(example))
        assert not errors, f"{where}: {errors[0].message}"
        checked += 1

    for status, response in document["components"]["responses"].items():
        content = response["content"]["application/json"]
        validate(content["schema"], content["example"], status)
        assert content["example"]["status"] == int(status[1:])
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {})
            for media in body.values():
                if "example" in media:
                    validate(media["schema"], media["example"], f"{method} {path}")
            for status, response in operation["responses"].items():
                media = response.get("content", {}).get("application/json", {})
                if "example" in media:
                    validate(media["schema"], media["example"], f"{path} {status}")
    assert checked >= 15


@pytest.mark.asyncio
async def test_error_replies_carry_error_and_status(make_ds, json_error):
    ds = await make_ds()
    response = await ds.client.post(
        "/-/files/upload/files/-/prepare",
        json={"filename": "a.txt", "size": -1},
        actor=ALICE,
    )
    body = json_error(response, 400)
    assert body == {
        "ok": False,
        "error": body["errors"][0],
        "errors": body["errors"],
        "status": 400,
    }


@pytest.mark.parametrize(
    "path",
    [
        # Found by schemathesis: no route matched, so Datasette answered with
        # its own handler, a 500 when ``rich`` is installed.
        "/-/files/0/download",
        "/-/files/df-x/zzz",
        "/-/files/source/a/b.json",
        "/-/files/%0A",
    ],
)
@pytest.mark.asyncio
async def test_unknown_paths_under_files_are_json_404s(make_ds, json_error, path):
    ds = await make_ds()
    response = await ds.client.get(path, actor=ALICE)
    json_error(response, 404)


@pytest.mark.asyncio
async def test_unknown_paths_are_an_html_404_for_browsers(make_ds):
    ds = await make_ds()
    response = await ds.client.get(
        "/-/files/df-x/zzz", headers={"accept": "text/html,*/*"}, actor=ALICE
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Not found" in response.text


@pytest.mark.parametrize("token", ["228261917243073305081564", str(2**63), "\u0661"])
@pytest.mark.asyncio
async def test_search_next_token_beyond_sqlite_integers_is_a_400(
    make_ds, json_error, token
):
    """Found by schemathesis: a rowid too big for SQLite was a 500."""
    ds = await make_ds()
    response = await ds.client.get(
        "/-/files/search.json", params={"q": "a", "_next": token}, actor=ALICE
    )
    body = json_error(response, 400)
    assert "_next" in body["error"]


@pytest.mark.asyncio
async def test_trailing_slash_still_redirects(make_ds):
    ds = await make_ds()
    response = await ds.client.get("/-/files/sources.json/?a=1", actor=ALICE)
    assert response.status_code == 302
    assert response.headers["location"] == "/-/files/sources.json?a=1"
