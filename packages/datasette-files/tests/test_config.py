"""Configuration: bad config stops startup with a useful message; good config
is honoured; the internal database's lifetime is made visible."""

from __future__ import annotations

import logging

import pytest
from datasette.utils import StartupError, pairs_to_nested_config
from datasette_files import get_file
from testkit import ALICE

# (source entry, words the error message must contain). The source is "docs".
BAD_SOURCES = {
    "unknown storage": (
        {"storage": "floppy", "config": {}},
        ["'docs'", "floppy"],
    ),
    "missing storage": ({"config": {"root": "x"}}, ["'docs'", "'storage'"]),
    "missing root": ({"storage": "filesystem", "config": {}}, ["'docs'", "'root'"]),
    "empty root": (
        {"storage": "filesystem", "config": {"root": "  "}},
        ["'docs'", "'root'"],
    ),
    "no config at all": ({"storage": "filesystem"}, ["'docs'", "'root'"]),
    "negative max_file_size": (
        {"storage": "filesystem", "config": {"root": "ROOT", "max_file_size": -1}},
        ["'docs'", "'max_file_size'"],
    ),
    "zero max_file_size": (
        {"storage": "filesystem", "config": {"root": "ROOT", "max_file_size": 0}},
        ["'docs'", "'max_file_size'"],
    ),
    "text max_file_size": (
        {"storage": "filesystem", "config": {"root": "ROOT", "max_file_size": "2GB"}},
        ["'docs'", "'max_file_size'"],
    ),
    "boolean max_file_size": (
        {"storage": "filesystem", "config": {"root": "ROOT", "max_file_size": True}},
        ["'docs'", "'max_file_size'"],
    ),
    "float max_file_size": (
        {"storage": "filesystem", "config": {"root": "ROOT", "max_file_size": 1.5}},
        ["'docs'", "'max_file_size'"],
    ),
    "unknown config key": (
        {"storage": "filesystem", "config": {"root": "ROOT", "max_size": 10}},
        ["'docs'", "'max_size'"],
    ),
    "unknown source key": (
        {"storage": "filesystem", "config": {"root": "ROOT"}, "permissions": {}},
        ["'docs'", "'permissions'"],
    ),
    "config not a mapping": (
        {"storage": "filesystem", "config": "ROOT"},
        ["'docs'", "'config'"],
    ),
    "root is a file": (
        {"storage": "filesystem", "config": {"root": "FILE"}},
        ["'docs'", "'root'"],
    ),
}


def fill_paths(entry: dict, tmp_path) -> dict:
    config = entry.get("config")
    if isinstance(config, dict) and config.get("root") in ("ROOT", "FILE"):
        if config["root"] == "FILE":
            (tmp_path / "a-file").write_text("not a directory")
            root = tmp_path / "a-file"
        else:
            root = tmp_path / "docs"
        entry = {**entry, "config": {**config, "root": str(root)}}
    return entry


@pytest.mark.asyncio
@pytest.mark.parametrize("name", BAD_SOURCES)
async def test_bad_source_stops_startup(make_ds, tmp_path, name):
    entry, words = BAD_SOURCES[name]
    config = {"datasette-files": {"sources": {"docs": fill_paths(entry, tmp_path)}}}
    ds = await make_ds(config={"plugins": config}, start=False)
    with pytest.raises(StartupError) as error:
        await ds.invoke_startup()
    message = str(error.value)
    assert message.startswith("datasette-files source 'docs'")
    for word in words:
        assert word in message


BAD_SETTINGS = {
    "sources a list": {"sources": ["files"]},
    "slug with a slash": {"sources": {"../up": {"storage": "filesystem"}}},
    "upload_expires zero": {"upload_expires": 0},
    "upload_expires text": {"upload_expires": "soon"},
    "sweep_interval negative": {"sweep_interval": -5},
}


@pytest.mark.asyncio
@pytest.mark.parametrize("name", BAD_SETTINGS)
async def test_bad_plugin_settings_stop_startup(make_ds, name):
    settings = BAD_SETTINGS[name]
    ds = await make_ds(config={"plugins": {"datasette-files": settings}}, start=False)
    with pytest.raises(StartupError) as error:
        await ds.invoke_startup()
    key = next(iter(settings))
    if key == "sources" and isinstance(settings["sources"], dict):
        assert "'../up'" in str(error.value)
    else:
        assert f"'{key}'" in str(error.value)


@pytest.mark.asyncio
async def test_max_file_size_is_honoured(make_ds, api, upload, json_error):
    ds = await make_ds(sources={"small": {"max_file_size": 100}, "files": {}})
    sources = (await ds.client.get("/-/files/sources.json", actor=ALICE)).json()
    limits = {s["slug"]: s["max_file_size"] for s in sources["sources"]}
    assert limits == {"small": 100, "files": 100 * 1024 * 1024}
    json_error(await api.prepare(ds, "small", "big.bin", 101), 413)
    file = await upload(ds, "small", "exact.bin", b"x" * 100)
    assert file["size"] == 100


@pytest.mark.asyncio
async def test_sources_from_dash_s_flags(make_ds, api, tmp_path, upload):
    """`datasette -s plugins.datasette-files.sources.cli.storage filesystem ...`"""
    config = pairs_to_nested_config(
        [
            ("plugins.datasette-files.sources.cli.storage", "filesystem"),
            ("plugins.datasette-files.sources.cli.config.root", str(tmp_path / "cli")),
            ("plugins.datasette-files.sources.cli.config.max_file_size", "5"),
            ("permissions.files-upload", "true"),
            ("permissions.files-browse", "true"),
        ]
    )
    ds = await make_ds(config=config)
    file = await upload(ds, "cli", "five.txt", b"12345", actor=None)
    assert (tmp_path / "cli").is_dir()
    assert (await ds.client.get(file["download_url"])).content == b"12345"
    assert (await api.prepare(ds, "cli", "six.txt", 6, actor=None)).status_code == 413


WARNING = "files-temporary-warning"


@pytest.mark.asyncio
async def test_temporary_internal_database_warns_uploaders(make_ds, caplog):
    with caplog.at_level(logging.WARNING, logger="datasette_files"):
        ds = await make_ds(
            internal=False,
            permissions={
                "files-browse": {"id": ["alice", "viewer"]},
                "files-upload": {"id": "alice"},
            },
        )
    assert "without --internal" in caplog.text
    uploader = await ds.client.get("/-/files", actor=ALICE)
    assert WARNING in uploader.text
    assert "will be lost" in uploader.text
    upload_page = await ds.client.get("/-/files/upload/files", actor=ALICE)
    assert WARNING in upload_page.text
    viewer = await ds.client.get("/-/files", actor={"id": "viewer"})
    assert viewer.status_code == 200
    assert 'href="/-/files/source/files"' in viewer.text
    assert WARNING not in viewer.text


@pytest.mark.asyncio
async def test_no_warning_with_an_internal_file(make_ds, caplog):
    with caplog.at_level(logging.WARNING, logger="datasette_files"):
        ds = await make_ds(internal=True)
    assert "without --internal" not in caplog.text
    index = await ds.client.get("/-/files", actor=ALICE)
    assert 'href="/-/files/upload/files"' in index.text
    assert WARNING not in index.text


@pytest.mark.asyncio
async def test_removed_source_disappears_but_its_rows_stay(make_ds, upload):
    both = {"gone": {}, "kept": {}}
    ds1 = await make_ds(sources=both)
    gone = await upload(ds1, "gone", "old.txt", b"old")
    kept = await upload(ds1, "kept", "new.txt", b"new")
    await ds1.invoke_shutdown()

    ds2 = await make_ds(sources={"kept": {}})
    index = await ds2.client.get("/-/files", actor=ALICE)
    assert "/-/files/source/kept" in index.text
    assert "/-/files/source/gone" not in index.text
    sources = await ds2.client.get("/-/files/sources.json", actor=ALICE)
    assert [s["slug"] for s in sources.json()["sources"]] == ["kept"]
    for path in (gone["url"] + ".json", gone["download_url"], gone["thumbnail_url"]):
        assert (await ds2.client.get(path, actor=ALICE)).status_code == 404, path
    assert (await ds2.client.get(gone["url"], actor=ALICE)).status_code == 404
    assert (
        await ds2.client.get("/-/files/source/gone.json", actor=ALICE)
    ).status_code == 404
    batch = await ds2.client.get(
        f"/-/files/batch.json?id={gone['id']}&id={kept['id']}", actor=ALICE
    )
    assert list(batch.json()["files"]) == [kept["id"]]
    assert batch.json()["missing"] == [gone["id"]]
    assert await get_file(ds2, gone["id"]) is None

    rows = await ds2.get_internal_database().execute(
        "SELECT id FROM files_files WHERE source_slug = 'gone'"
    )
    assert [row["id"] for row in rows] == [gone["id"]]
    await ds2.invoke_shutdown()

    # Put the source back and its files are back too.
    ds3 = await make_ds(sources=both)
    again = await ds3.client.get(gone["download_url"], actor=ALICE)
    assert again.content == b"old"


@pytest.mark.asyncio
async def test_lowered_max_file_size_applies_to_prepared_uploads(
    make_ds, api, snapshot, json_error
):
    ds1 = await make_ds(sources={"files": {"max_file_size": 1000}})
    token = (await api.prepare(ds1, "files", "big.bin", 1000)).json()["upload_token"]
    await ds1.invoke_shutdown()

    ds2 = await make_ds(sources={"files": {"max_file_size": 500}})
    before = await snapshot(ds2)
    body = json_error(await api.send(ds2, "files", token, b"x" * 1000), 413)
    assert "500" in body["errors"][0]
    assert await snapshot(ds2) == before
