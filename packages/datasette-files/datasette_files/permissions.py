"""Actions, resources and the permission SQL for datasette-files.

Everything is denied by default. Grants come from Datasette's own config
processing (``permissions: {files-browse: ...}`` at the root) plus two forms
handled here: per-source blocks and the ``owners_can_edit`` /
``owners_can_delete`` plugin settings.
"""

from __future__ import annotations

from datasette.permissions import Action, PermissionSQL, Resource
from datasette.utils import actor_matches_allow

from .settings import PLUGIN

BROWSE = "files-browse"
UPLOAD = "files-upload"
EDIT = "files-edit"
DELETE = "files-delete"
SYNC = "files-sync"
DEBUG = "debug-storages"


class SourceResource(Resource):
    """A configured file source."""

    name = "files-source"
    parent_class = None

    def __init__(self, source: str):
        super().__init__(parent=source, child=None)

    @classmethod
    async def resources_sql(cls, datasette, actor=None) -> str:
        return (
            "SELECT slug AS parent, NULL AS child FROM files_sources WHERE active = 1"
        )


# The 0.1a3 name, for plugins that import it from datasette_files.
FileSourceResource = SourceResource


class FileResource(Resource):
    """One registered file; grants on its source cascade to it."""

    name = "files-file"
    parent_class = SourceResource

    def __init__(self, source: str, file_id: str):
        super().__init__(parent=source, child=file_id)

    @classmethod
    async def resources_sql(cls, datasette, actor=None) -> str:
        return """
            SELECT f.source_slug AS parent, f.id AS child
            FROM files_files f JOIN files_sources s ON s.slug = f.source_slug
            WHERE s.active = 1
        """


ACTIONS = [
    Action(
        name=BROWSE,
        abbr="fb",
        description="List, search, view and download files in a source",
        resource_class=SourceResource,
    ),
    Action(
        name=UPLOAD,
        abbr="fu",
        description="Upload files into a source",
        resource_class=SourceResource,
    ),
    Action(
        name=EDIT,
        abbr="fe",
        description="Edit a file's metadata",
        resource_class=FileResource,
    ),
    Action(
        name=DELETE,
        abbr="fd",
        description="Delete a file",
        resource_class=FileResource,
    ),
    Action(
        name=SYNC,
        abbr="fs",
        description="Sync a source: register the files already in its storage",
        resource_class=SourceResource,
    ),
    Action(
        name=DEBUG,
        description="Use the datasette-files storage debug endpoints",
    ),
]

OWNER_SETTINGS = {EDIT: "owners_can_edit", DELETE: "owners_can_delete"}


def per_source_rules(config_block, actor) -> list[tuple[str, bool]]:
    """Rules from ``files-browse: {photos: {allow: {id: alice}}}``.

    A mapping is per-source only when every value is itself a mapping with an
    ``allow`` key; anything else is an ordinary allow block that Datasette's
    own config processing already handles.
    """
    if not isinstance(config_block, dict) or not config_block:
        return []
    if not all(
        isinstance(value, dict) and "allow" in value for value in config_block.values()
    ):
        return []
    rules = []
    for slug, value in config_block.items():
        allow = value["allow"]
        if isinstance(allow, int) and allow in (0, 1):
            allow = bool(allow)
        rules.append((slug, bool(actor_matches_allow(actor, allow))))
    return rules


def permission_sql(datasette, actor, action) -> list[PermissionSQL]:
    if action not in (BROWSE, UPLOAD, EDIT, DELETE, SYNC):
        return []
    results = []
    root_block = (datasette.config or {}).get("permissions", {}).get(action)
    plugin_perms = (datasette.plugin_config(PLUGIN) or {}).get("permissions") or {}
    rules = per_source_rules(root_block, actor) + per_source_rules(
        plugin_perms.get(action), actor
    )
    if rules:
        params = {}
        selects = []
        for i, (slug, allowed) in enumerate(rules):
            params[f"files_src_{i}"] = slug
            selects.append(
                f"SELECT :files_src_{i} AS parent, NULL AS child, "
                f"{1 if allowed else 0} AS allow, "
                f"'datasette-files per-source config' AS reason"
            )
        results.append(PermissionSQL(sql=" UNION ALL ".join(selects), params=params))
    setting = OWNER_SETTINGS.get(action)
    if (
        setting
        and actor
        and actor.get("id") is not None
        and (datasette.plugin_config(PLUGIN) or {}).get(setting)
    ):
        results.append(
            PermissionSQL(
                sql="""
                    SELECT source_slug AS parent, id AS child, 1 AS allow,
                        'datasette-files owner' AS reason
                    FROM files_files WHERE uploaded_by = :files_owner_id
                """,
                params={"files_owner_id": str(actor["id"])},
            )
        )
    return results


async def can(datasette, actor, action, source: str, file_id: str | None = None):
    if file_id is not None:
        resource = FileResource(source, file_id)
    else:
        resource = SourceResource(source)
    return await datasette.allowed(action=action, resource=resource, actor=actor)


async def may_browse_any(datasette, actor, slugs) -> bool:
    for slug in slugs:
        if await can(datasette, actor, BROWSE, slug):
            return True
    return False


def actor_id(actor) -> str | None:
    """Who owns an upload or an import: the actor's id, None for anonymous."""
    if actor and actor.get("id") is not None:
        return str(actor["id"])
    return None
