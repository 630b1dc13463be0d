"""Who may do what: every endpoint against every kind of actor, from one table.

The Datasette below has one source, ``files``, holding ``bob.txt`` (uploaded by
bob) and ``alice.txt`` (uploaded by alice), and these grants::

    permissions:
      files-browse: {id: [viewer, alice, bob]}
      files-upload: {id: [alice, bob]}
      files-edit: {id: alice}
      files-delete: {id: alice}
      files-sync: {id: alice}
      debug-storages: {id: alice}
    plugins:
      datasette-files: {owners_can_edit: true, owners_can_delete: true}

and runs with ``--root``. The "root alone" column drops the permissions block
once the two files are uploaded.
"""

from __future__ import annotations

import re

import pytest
from datasette_files.routes import ROUTES
from testkit import ALICE

ACTORS = {
    "anonymous": None,
    "stranger": {"id": "stranger"},  # signed in, no grants at all
    "viewer": {"id": "viewer"},  # files-browse only
    "alice": {"id": "alice"},  # every grant the endpoint needs
    "owner": {"id": "bob"},  # browse + upload, and owns bob.txt
    "root": {"id": "root"},  # datasette --root
    "root alone": {"id": "root"},  # datasette --root, no permissions block
}

# Listing endpoints answer 200 to everyone; what differs is what they show.
SEES = "200, shows the source"
BLIND = "200, shows nothing"

# fmt: off
MATRIX = [
    # endpoint            anonymous stranger viewer alice owner root   root alone
    ("index",             BLIND,    BLIND,   SEES,  SEES, SEES, BLIND, SEES),
    ("sources.json",      BLIND,    BLIND,   SEES,  SEES, SEES, BLIND, SEES),
    ("batch.json",        BLIND,    BLIND,   SEES,  SEES, SEES, BLIND, SEES),
    ("search page",       BLIND,    BLIND,   SEES,  SEES, SEES, BLIND, SEES),
    ("search.json",       BLIND,    BLIND,   SEES,  SEES, SEES, BLIND, SEES),
    ("storages",          403,      403,     403,   200,  403,  403,   200),
    ("storages/list",     403,      403,     403,   200,  403,  403,   200),
    ("source page",       404,      404,     200,   200,  200,  404,   200),
    ("source .json",      404,      404,     200,   200,  200,  404,   200),
    ("sync status",       403,      403,     403,   200,  403,  403,   200),
    ("sync .json",        403,      403,     403,   200,  403,  403,   200),
    ("start sync",        403,      403,     403,   202,  403,  403,   202),
    ("upload page",       403,      403,     403,   200,  200,  403,   200),
    ("prepare",           403,      403,     403,   200,  200,  403,   200),
    ("upload",            403,      403,     403,   200,  200,  403,   200),
    ("parts",             403,      403,     403,   409,  409,  403,   409),
    ("complete",          403,      403,     403,   201,  201,  403,   201),
    ("abort",             403,      403,     403,   200,  200,  403,   200),
    ("file page",         404,      404,     200,   200,  200,  404,   200),
    ("file .json",        404,      404,     200,   200,  200,  404,   200),
    ("download",          404,      404,     200,   200,  200,  404,   200),
    ("thumbnail",         404,      404,     200,   200,  200,  404,   200),
    ("update bob.txt",    404,      404,     403,   200,  200,  404,   200),
    ("delete bob.txt",    404,      404,     403,   200,  200,  404,   200),
    ("update alice.txt",  404,      404,     403,   200,  403,  404,   200),
    ("delete alice.txt",  404,      404,     403,   200,  403,  404,   200),
    ("import bob.txt",    404,      404,     400,   400,  400,  404,   400),
    ("import job page",   404,      404,     404,   404,  404,  404,   404),
    ("import job .json",  404,      404,     404,   404,  404,  404,   404),
    ("openapi.json",      200,      200,     200,   200,  200,  200,   200),
]
# fmt: on
# "import bob.txt": a plain-text file is not a CSV (400) for those who may see
# it; test_import.py covers who may import a CSV. Unknown import jobs are 404.
#
# "parts" is for multipart direct uploads: on a proxied upload, an actor who
# passes the permission check gets 409 rather than 403.
#
# "root" is `datasette --root` with the grants above. As everywhere in
# Datasette, a permissions block that names other actors excludes root too
# (Datasette's own view-instance behaves the same). "root alone" is root when
# the config has no permissions block at all: then root may do anything.

MATRIX_PERMISSIONS = {
    "files-browse": {"id": ["viewer", "alice", "bob"]},
    "files-upload": {"id": ["alice", "bob"]},
    "files-edit": {"id": "alice"},
    "files-delete": {"id": "alice"},
    "files-sync": {"id": "alice"},
    "debug-storages": {"id": "alice"},
}
OWNERS = {"owners_can_edit": True, "owners_can_delete": True}


class World:
    """The Datasette described in the module docstring, plus its two files."""

    def __init__(self, ds, api, bob_file, alice_file):
        self.ds = ds
        self.api = api
        self.bob_file = bob_file
        self.alice_file = alice_file

    async def token_for(self, actor, send: bool = False) -> str:
        """A token the actor prepared while uploads were open to everyone.

        The grant is then back to normal for the request under test, which is
        exactly what happens when an admin tightens the config mid-upload.
        """
        permissions = self.ds.config["permissions"]
        tightened = permissions.get("files-upload")
        permissions["files-upload"] = True
        try:
            prepared = await self.api.prepare(self.ds, "files", size=3, actor=actor)
            assert prepared.status_code == 200, prepared.text
            token = prepared.json()["upload_token"]
            if send:
                sent = await self.api.send(self.ds, "files", token, b"abc", actor)
                assert sent.status_code == 200, sent.text
        finally:
            if tightened is None:
                del permissions["files-upload"]
            else:
                permissions["files-upload"] = tightened
        return token


def lists(response, needle: str) -> str:
    assert response.status_code == 200, response.text
    return SEES if needle in response.text else BLIND


async def request(world: World, endpoint: str, actor):
    ds, api = world.ds, world.api
    client = ds.client
    if endpoint == "index":
        return lists(
            await client.get("/-/files", actor=actor), 'href="/-/files/source/files"'
        )
    if endpoint == "sources.json":
        return lists(
            await client.get("/-/files/sources.json", actor=actor), '"slug": "files"'
        )
    if endpoint == "batch.json":
        file_id = world.bob_file["id"]
        response = await client.get(f"/-/files/batch.json?id={file_id}", actor=actor)
        assert response.status_code == 200
        return SEES if file_id in response.json()["files"] else BLIND
    if endpoint == "search page":
        response = await client.get("/-/files/search?q=bob", actor=actor)
        return lists(response, world.bob_file["url"])
    if endpoint == "search.json":
        response = await client.get("/-/files/search.json?q=bob", actor=actor)
        assert response.status_code == 200
        found = [f["id"] for f in response.json()["files"]]
        return SEES if found == [world.bob_file["id"]] else BLIND
    if endpoint in PLAIN_GETS:
        return (await client.get(ENDPOINT_PATHS[endpoint], actor=actor)).status_code
    if endpoint == "start sync":
        response = await client.post(ENDPOINT_PATHS[endpoint], json={}, actor=actor)
        return response.status_code
    if endpoint == "prepare":
        return (await api.prepare(ds, "files", size=3, actor=actor)).status_code
    if endpoint == "upload":
        token = await world.token_for(actor)
        return (await api.send(ds, "files", token, b"abc", actor)).status_code
    if endpoint == "parts":
        token = await world.token_for(actor)
        response = await client.post(
            "/-/files/upload/files/-/parts",
            json={"upload_token": token, "part_numbers": [1]},
            actor=actor,
        )
        return response.status_code
    if endpoint == "complete":
        token = await world.token_for(actor, send=True)
        return (await api.complete(ds, "files", token, actor)).status_code
    if endpoint == "abort":
        token = await world.token_for(actor, send=True)
        return (await api.abort(ds, "files", token, actor)).status_code
    file = world.bob_file
    file_paths = {
        "file page": file["url"],
        "file .json": file["url"] + ".json",
        "download": file["download_url"],
        "thumbnail": file["thumbnail_url"],
        "import bob.txt": file["url"] + "/-/import.json",
        # Public: the description of the API, not of anyone's files.
        "openapi.json": "/-/files/openapi.json",
    }
    if endpoint in file_paths:
        return (await client.get(file_paths[endpoint], actor=actor)).status_code
    verb, filename = endpoint.split(" ")
    file = world.bob_file if filename == "bob.txt" else world.alice_file
    if verb == "update":
        response = await client.post(
            file["url"] + "/-/update",
            json={"update": {"search_text": "edited"}},
            actor=actor,
        )
    else:
        response = await client.post(file["url"] + "/-/delete", actor=actor)
    return response.status_code


PLAIN_GETS = {
    "storages",
    "storages/list",
    "source page",
    "source .json",
    "sync status",
    "sync .json",
    "upload page",
    "import job page",
    "import job .json",
}


def matrix_cells():
    return [
        pytest.param(endpoint, actor_name, outcome, id=f"{endpoint}-{actor_name}")
        for endpoint, *expected in MATRIX
        for actor_name, outcome in zip(ACTORS, expected, strict=True)
    ]


# The URL each endpoint in the matrix is served from.
ENDPOINT_PATHS = {
    "index": "/-/files",
    "sources.json": "/-/files/sources.json",
    "batch.json": "/-/files/batch.json",
    "search page": "/-/files/search",
    "search.json": "/-/files/search.json",
    "storages": "/-/files/storages",
    "storages/list": "/-/files/storages/list/files",
    "source page": "/-/files/source/files",
    "source .json": "/-/files/source/files.json",
    "sync status": "/-/files/source/files/-/sync",
    "sync .json": "/-/files/source/files/-/sync.json",
    "start sync": "/-/files/source/files/-/sync",
    "upload page": "/-/files/upload/files",
    "prepare": "/-/files/upload/files/-/prepare",
    "upload": "/-/files/upload/files/-/upload",
    "parts": "/-/files/upload/files/-/parts",
    "complete": "/-/files/upload/files/-/complete",
    "abort": "/-/files/upload/files/-/abort",
    "file page": "/-/files/df-1",
    "file .json": "/-/files/df-1.json",
    "download": "/-/files/df-1/download",
    "thumbnail": "/-/files/df-1/thumbnail",
    "update bob.txt": "/-/files/df-1/-/update",
    "delete bob.txt": "/-/files/df-1/-/delete",
    "update alice.txt": "/-/files/df-2/-/update",
    "delete alice.txt": "/-/files/df-2/-/delete",
    "import bob.txt": "/-/files/df-1/-/import.json",
    "import job page": "/-/files/imports/imp-1",
    "import job .json": "/-/files/imports/imp-1.json",
    "openapi.json": "/-/files/openapi.json",
}


def test_matrix_covers_every_route():
    assert [row[0] for row in MATRIX] == list(ENDPOINT_PATHS)
    for pattern, view in ROUTES:
        assert any(re.match(pattern, path) for path in ENDPOINT_PATHS.values()), (
            f"{view.__name__} ({pattern}) is missing from the permission matrix"
        )


@pytest.mark.asyncio
@pytest.mark.parametrize("endpoint,actor_name,expected", matrix_cells())
async def test_permission_matrix(make_ds, api, endpoint, actor_name, expected):
    ds = await make_ds(permissions=MATRIX_PERMISSIONS, plugin=OWNERS, root=True)
    world = World(
        ds,
        api,
        bob_file=await api.upload(ds, "files", "bob.txt", b"bob", actor={"id": "bob"}),
        alice_file=await api.upload(ds, "files", "alice.txt", b"alice"),
    )
    if actor_name == "root alone":
        ds.config["permissions"].clear()
    assert await request(world, endpoint, ACTORS[actor_name]) == expected


# The config forms the README documents, each checked by what alice and bob
# (who is granted nothing) can see and do in two sources, files and photos.

BROWSE_FORMS = {
    "files-browse: {id: alice}": (
        {"permissions": {"files-browse": {"id": "alice"}}},
        {"alice": ["files", "photos"], "bob": [], "anonymous": []},
    ),
    "files-browse: {photos: {allow: {id: alice}}}": (
        {"permissions": {"files-browse": {"photos": {"allow": {"id": "alice"}}}}},
        {"alice": ["photos"], "bob": [], "anonymous": []},
    ),
    "plugin permissions: files-browse: {photos: {allow: {id: alice}}}": (
        {
            "plugin": {
                "permissions": {"files-browse": {"photos": {"allow": {"id": "alice"}}}}
            }
        },
        {"alice": ["photos"], "bob": [], "anonymous": []},
    ),
    "files-browse: true": (
        {"permissions": {"files-browse": True}},
        {
            "alice": ["files", "photos"],
            "bob": ["files", "photos"],
            "anonymous": ["files", "photos"],
        },
    ),
    "-s permissions.files-browse true": (
        {"settings": [("permissions.files-browse", "true")]},
        {
            "alice": ["files", "photos"],
            "bob": ["files", "photos"],
            "anonymous": ["files", "photos"],
        },
    ),
    "no permissions at all": (
        {"permissions": {}},
        {"alice": [], "bob": [], "anonymous": []},
    ),
}


async def make_with_form(make_ds, form: dict):
    from datasette.utils import pairs_to_nested_config

    permissions = form.get("permissions", {})
    if "settings" in form:
        # Exactly what `datasette -s permissions.files-browse true` produces.
        permissions = pairs_to_nested_config(form["settings"])["permissions"]
    return await make_ds(
        sources={"files": {}, "photos": {}},
        permissions=permissions,
        plugin=form.get("plugin"),
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("form_name", BROWSE_FORMS)
async def test_browse_config_forms(make_ds, form_name):
    form, expected = BROWSE_FORMS[form_name]
    ds = await make_with_form(make_ds, form)
    for name, actor in (
        ("alice", {"id": "alice"}),
        ("bob", {"id": "bob"}),
        ("anonymous", None),
    ):
        response = await ds.client.get("/-/files/sources.json", actor=actor)
        assert [s["slug"] for s in response.json()["sources"]] == expected[name], name
        for slug in ("files", "photos"):
            listing = await ds.client.get(f"/-/files/source/{slug}.json", actor=actor)
            assert listing.status_code == (200 if slug in expected[name] else 404)


@pytest.mark.asyncio
@pytest.mark.parametrize("value", ["true", "1"], ids=["true", "integer 1"])
async def test_upload_granted_with_dash_s(make_ds, api, value):
    from datasette.utils import pairs_to_nested_config

    config = pairs_to_nested_config([("permissions.files-upload", value)])
    ds = await make_ds(permissions=config["permissions"])
    for actor in (None, {"id": "bob"}):
        prepared = await api.prepare(ds, "files", size=0, actor=actor)
        assert prepared.status_code == 200, prepared.text
        token = prepared.json()["upload_token"]
        assert (await api.send(ds, "files", token, b"", actor)).status_code == 200
        assert (await api.complete(ds, "files", token, actor)).status_code == 201
    # Upload does not imply browse.
    sources = await ds.client.get("/-/files/sources.json", actor={"id": "bob"})
    assert sources.json()["sources"] == []


@pytest.mark.asyncio
async def test_debug_storages_needs_its_own_grant(make_ds):
    everything = {action: True for action in ("files-browse", "files-upload")}
    ds = await make_ds(permissions=everything)
    assert (
        await ds.client.get("/-/files/storages", actor={"id": "bob"})
    ).status_code == 403
    ds = await make_ds(permissions={**everything, "debug-storages": {"id": "bob"}})
    response = await ds.client.get("/-/files/storages", actor={"id": "bob"})
    assert response.status_code == 200
    assert "filesystem" in response.json()["storage_types"]
    assert [s["slug"] for s in response.json()["sources"]] == ["files"]


@pytest.mark.asyncio
async def test_source_grant_does_not_leak_to_another_source(make_ds, api, upload):
    ds = await make_ds(
        sources={"files": {}, "photos": {}},
        permissions={
            "files-browse": True,
            "files-upload": True,
            "files-edit": {"photos": {"allow": {"id": "alice"}}},
        },
    )
    in_photos = await upload(ds, "photos", "p.txt", b"p", actor={"id": "bob"})
    in_files = await upload(ds, "files", "f.txt", b"f", actor={"id": "bob"})
    edit = {"update": {"search_text": "x"}}
    allowed = await ds.client.post(
        in_photos["url"] + "/-/update", json=edit, actor=ALICE
    )
    denied = await ds.client.post(in_files["url"] + "/-/update", json=edit, actor=ALICE)
    assert (allowed.status_code, denied.status_code) == (200, 403)


@pytest.mark.asyncio
@pytest.mark.parametrize("verb", ["update", "delete"])
async def test_owners_get_nothing_without_the_setting(make_ds, upload, verb):
    ds = await make_ds(
        permissions={"files-browse": True, "files-upload": True},
        plugin={"owners_can_edit": False},
    )
    file = await upload(ds, "files", "mine.txt", b"mine", actor={"id": "bob"})
    response = await ds.client.post(
        f"{file['url']}/-/{verb}",
        json={"update": {"search_text": "x"}},
        actor={"id": "bob"},
    )
    assert response.status_code == 403
    assert (await ds.client.get(file["url"] + ".json", actor={"id": "bob"})).json()[
        "file"
    ]["search_text"] == ""


# Every step re-checks the actor: a grant revoked after prepare stops the
# upload, and one revoked after the upload stops complete.


async def revoke_upload(ds):
    ds.config["permissions"]["files-upload"] = {"id": "nobody"}


async def restore_upload(ds):
    ds.config["permissions"]["files-upload"] = {"id": "alice"}


@pytest.mark.asyncio
async def test_revoked_after_prepare_stops_the_upload(
    make_ds, api, snapshot, json_error
):
    ds = await make_ds()
    token = (await api.prepare(ds, "files", size=3)).json()["upload_token"]
    before = await snapshot(ds)
    await revoke_upload(ds)
    json_error(await api.send(ds, "files", token, b"abc"), 403)
    json_error(await api.send_form(ds, "files", token, b"abc"), 403)
    assert await snapshot(ds) == before
    # The 403 was the permission, not a spent token: restore it and finish.
    await restore_upload(ds)
    assert (await api.send(ds, "files", token, b"abc")).status_code == 200
    assert (await api.complete(ds, "files", token)).status_code == 201


@pytest.mark.asyncio
async def test_revoked_after_upload_stops_complete(make_ds, api, snapshot, json_error):
    ds = await make_ds()
    token = (await api.prepare(ds, "files", size=3)).json()["upload_token"]
    assert (await api.send(ds, "files", token, b"abc")).status_code == 200
    before = await snapshot(ds)
    await revoke_upload(ds)
    json_error(await api.complete(ds, "files", token), 403)
    json_error(await api.abort(ds, "files", token), 403)
    assert await snapshot(ds) == before
    assert before["files"] == []
    await restore_upload(ds)
    assert (await api.complete(ds, "files", token)).status_code == 201


@pytest.mark.asyncio
async def test_a_second_actor_cannot_use_the_first_ones_token(
    make_ds, api, snapshot, json_error
):
    ds = await make_ds(permissions={"files-upload": True})
    token = (await api.prepare(ds, "files", size=3)).json()["upload_token"]
    before = await snapshot(ds)
    bob = {"id": "bob"}
    json_error(await api.send(ds, "files", token, b"abc", bob), 403)
    assert (await api.send(ds, "files", token, b"abc")).status_code == 200
    json_error(await api.complete(ds, "files", token, bob), 403)
    json_error(await api.abort(ds, "files", token, bob), 403)
    json_error(await api.send(ds, "files", token, b"abc", None), 403)
    assert (await snapshot(ds))["files"] == before["files"] == []


@pytest.mark.asyncio
async def test_sources_json_gives_prepare_url_only_to_uploaders(make_ds):
    ds = await make_ds(
        permissions={
            "files-browse": {"id": ["alice", "bob"]},
            "files-upload": {"id": "alice"},
        },
        settings={"base_url": "/prefix/"},
    )
    for actor, prepare_url in (
        ({"id": "alice"}, "/prefix/-/files/upload/files/-/prepare"),
        ({"id": "bob"}, None),
    ):
        response = await ds.client.get("/-/files/sources.json", actor=actor)
        (source,) = response.json()["sources"]
        assert source["can_upload"] == (prepare_url is not None)
        assert source["prepare_url"] == prepare_url
