"""The 0.1a3 Python surface, used the way a third-party plugin would.

``from datasette_files import File, get_file, FileColumnType, FileResource,
FileSourceResource``; resources that work with ``datasette.allowed()``; and a
``file`` in ``file_actions`` that is also the mapping 0.1a3 passed.
"""

from __future__ import annotations

import pytest
from datasette import hookimpl
from datasette.plugins import pm
from datasette_files import (
    File,
    FileColumnType,
    FileResource,
    FileSourceResource,
    get_file,
)
from testkit import ALICE

pytestmark = pytest.mark.asyncio


BOB = {"id": "bob"}


async def test_the_old_names_import_and_resolve():
    from datasette.permissions import Resource

    assert issubclass(FileSourceResource, Resource)
    assert issubclass(FileResource, Resource)
    assert FileResource.parent_class is FileSourceResource
    assert FileColumnType.name == "file"
    assert callable(get_file) and isinstance(File, type)


async def test_a_plugin_checks_permissions_with_the_resources(make_ds, upload):
    ds = await make_ds(
        sources={"open": {}, "closed": {}},
        permissions={
            "files-browse": {"open": {"allow": True}, "closed": {"allow": ALICE}},
            "files-delete": {"id": "alice"},
        },
    )

    async def allowed(action, actor, resource):
        return await ds.allowed(action=action, actor=actor, resource=resource)

    assert await allowed("files-browse", BOB, FileSourceResource("open"))
    assert not await allowed("files-browse", BOB, FileSourceResource("closed"))
    assert await allowed("files-browse", ALICE, FileSourceResource("closed"))
    assert not await allowed("files-upload", ALICE, FileSourceResource("open"))

    # Files: a source-wide grant cascades to every file in the source.
    ds.config["permissions"]["files-upload"] = {"id": "alice"}
    file = await upload(ds, "open", "a.txt", b"a")
    assert await allowed("files-delete", ALICE, FileResource("open", file["id"]))
    assert not await allowed("files-delete", BOB, FileResource("open", file["id"]))


class FileActionsPlugin:
    """Written against 0.1a3, where ``file`` was a dict."""

    def __init__(self):
        self.seen = []

    @hookimpl
    def file_actions(self, datasette, actor, file, preview_bytes):
        self.seen.append(
            {
                "dict": dict(file),
                "keys": list(file.keys()),
                "has_id": "id" in file,
                "missing": file.get("no-such-key", "default"),
                "attribute": file.filename,
                "preview": preview_bytes,
            }
        )
        return [
            {
                "href": f"/-/inspect/{file['id']}",
                "label": f"Inspect {file['filename']} ({file['size']} bytes, "
                f"{file['content_type']}, in {file['source_slug']})",
            }
        ]


@pytest.fixture
def actions_plugin():
    plugin = FileActionsPlugin()
    pm.register(plugin, name="test-old-file-actions")
    yield plugin
    pm.unregister(name="test-old-file-actions")


async def test_file_actions_gets_a_file_that_is_also_the_old_dict(
    make_ds, upload, actions_plugin
):
    ds = await make_ds()
    data = b"hello, world\n" * 300
    file = await upload(ds, "files", "hello.txt", data, content_type="text/plain")

    page = await ds.client.get(file["url"], actor=ALICE)
    assert page.status_code == 200, page.text
    assert f'href="/-/inspect/{file["id"]}"' in page.text
    assert f"Inspect hello.txt ({len(data)} bytes, text/plain, in files)" in page.text

    (seen,) = actions_plugin.seen
    assert seen["has_id"] and seen["missing"] == "default"
    assert seen["attribute"] == "hello.txt"
    assert seen["preview"] == data[:2048]
    assert {"id", "filename", "content_type", "size", "source_slug"} <= set(
        seen["keys"]
    )
    assert seen["dict"]["id"] == file["id"]
    assert seen["dict"]["content_hash"] == file["content_hash"]


async def test_get_file_is_a_mapping_too(make_ds, upload):
    ds = await make_ds()
    uploaded = await upload(ds, "files", "a.txt", b"abc", content_type="text/plain")
    file = await get_file(ds, uploaded["id"])
    assert file["id"] == file.id == uploaded["id"]
    assert file.get("size") == 3 and len(file) == len(list(file))
    with pytest.raises(KeyError):
        file["read"]
    # Usable as a dict key and in sets, like any other object.
    assert {file: 1}[await get_file(ds, uploaded["id"])] == 1
