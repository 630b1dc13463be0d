"""A page of the listing against the registry, in SQLite.

A page goes to SQLite as one JSON parameter and comes back as only the
objects that need Python's attention: new ones, ones that may have changed
(or have no stamp yet), and registered files missing from the page. Files
whose size and stamp match what was recorded, nearly all of a re-run, stay
inside SQLite: fetching and comparing them row by row in Python cost more
than listing them, and each row fetched hands the interpreter lock back and
forth with the listing thread.

New files go in the same way (``insert_new``): one ``INSERT ... SELECT``
per batch. Row by row, each INSERT was its own statement, and the full-text
index flushes its pending terms at the end of every statement that writes
to it: a sync spent most of its time there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..base import FileMetadata


@dataclass
class NewFile:
    id: str
    path: str
    filename: str
    content_type: str | None
    size: int | None
    created_at: str
    metadata: dict


@dataclass
class ExistingFile:
    """A registered file as a sync compares it: the stamp recorded at its
    last sync read out by SQLite, the rest of its metadata parsed only if
    the file is rewritten (most files of a re-run are not)."""

    id: str
    path: str
    size: int | None
    metadata_json: str
    # Whether a stamp (``metadata.object``) was recorded, and its fields.
    stamped: bool = False
    modified: str | None = None
    etag: str | None = None

    @property
    def metadata(self) -> dict:
        return json.loads(self.metadata_json or "{}")


# json_extract rather than ->>: SQLite before 3.38 has json_each but not ->>.
# The listed files the registry does not hold, as one JSON array of their
# positions: one row, where a row per new file would be fetched one by one.
NEW = """
SELECT json_group_array(listed.key) FROM json_each(:listed) AS listed
WHERE NOT EXISTS (
    SELECT 1 FROM files_files AS f
    WHERE f.source_slug = :source AND f.path = json_extract(listed.value, '$[0]')
)
"""

# The registered ones, unless certainly unchanged (rows.has_changed would
# say False); anything else is for Python to decide.
CHANGED = """
SELECT listed.key, f.id, f.size, f.metadata,
    json_type(f.metadata, '$.object') = 'object',
    json_extract(f.metadata, '$.object.modified'),
    json_extract(f.metadata, '$.object.etag')
-- CROSS JOIN: SQLite then keeps this order, one index lookup per listed
-- file (otherwise it may scan the source's rows against the whole page).
FROM json_each(:listed) AS listed
CROSS JOIN files_files AS f
    ON f.source_slug = :source AND f.path = json_extract(listed.value, '$[0]')
WHERE NOT coalesce(
    coalesce(json_extract(listed.value, '$[1]') = f.size, 1)
    AND json_type(f.metadata, '$.object') = 'object'
    AND CASE WHEN coalesce(json_extract(listed.value, '$[3]'), '') != ''
        THEN json_extract(f.metadata, '$.object.etag')
            = json_extract(listed.value, '$[3]')
        ELSE coalesce(json_extract(f.metadata, '$.object.etag'), '') = ''
            AND json_extract(f.metadata, '$.object.modified')
                = json_extract(listed.value, '$[2]')
        END,
    0  -- NULL (nothing recorded to compare): not certain, so not left out
)
"""

# Registered in the page's range of paths but not listed: gone. The range
# starts after the previous page's last path (one bound, so that SQLite
# seeks to it rather than scanning from the start of the prefix), or at the
# prefix for the first page.
MISSING = """
SELECT id, path FROM files_files
WHERE source_slug = :source AND {start} AND path <= :upto
    AND path NOT IN (
        SELECT json_extract(value, '$[0]') FROM json_each(:listed)
    )
ORDER BY path
"""


def listed_json(listed: list[FileMetadata]) -> str:
    """The page as COMPARE reads it: ``[path, size, modified, etag]`` each."""
    return json.dumps(
        [[f.path, f.size, f.created_at, (f.metadata or {}).get("etag")] for f in listed]
    )


def compare(
    conn,
    source_slug: str,
    listed: list[FileMetadata],
    missing_range: tuple[str, str | None, str] | None,
) -> tuple[list[tuple[FileMetadata, ExistingFile | None]], list[ExistingFile]]:
    """``(to_check, missing)``: listed files with their registered row
    (None: new) unless certainly unchanged, and, given ``missing_range``
    ``(prefix, after, upto)``, registered files in it that were not listed."""
    params = {"source": source_slug, "listed": listed_json(listed)}
    [new] = conn.execute(NEW, params).fetchone()
    to_check: list[tuple[FileMetadata, ExistingFile | None]] = [
        (listed[index], None) for index in json.loads(new)
    ]
    for index, file_id, *row in conn.execute(CHANGED, params):
        path = listed[index].path
        to_check.append((listed[index], ExistingFile(file_id, path, *row)))
    missing = []
    if missing_range is not None:
        prefix, after, upto = missing_range
        start = "path >= :prefix" if after is None else "path > :after"
        rows = conn.execute(
            MISSING.format(start=start),
            {**params, "prefix": prefix, "after": after, "upto": upto},
        )
        missing = [
            ExistingFile(file_id, path, None, "{}")
            for file_id, path in rows
            if path.startswith(prefix)
        ]
    return to_check, missing


NEW_FILES = """
INSERT INTO files_files (id, source_slug, path, filename, content_type, size,
    created_at, metadata)
SELECT json_extract(value, '$[0]'), :source, json_extract(value, '$[1]'),
    json_extract(value, '$[2]'), json_extract(value, '$[3]'),
    json_extract(value, '$[4]'), json_extract(value, '$[5]'),
    json_extract(value, '$[6]')
FROM json_each(:new)
-- A pending upload's path is registered by its own complete.
WHERE json_extract(value, '$[1]') NOT IN (
    SELECT path FROM files_pending WHERE source_slug = :source
)
ON CONFLICT (source_slug, path) DO NOTHING
"""


def insert_new(conn, source_slug: str, new: list[NewFile]) -> int:
    """Insert a batch's new files; returns how many were registered."""
    if not new:
        return 0
    rows = json.dumps(
        [
            # metadata as an object: json_extract gives it back as JSON text.
            [f.id, f.path, f.filename, f.content_type, f.size, f.created_at, f.metadata]
            for f in new
        ]
    )
    cursor = conn.execute(NEW_FILES, {"source": source_slug, "new": rows})
    return max(cursor.rowcount, 0)
