"""Full-text search over the registry.

User input never reaches FTS5 as syntax: every term is quoted, so operators
and stray quotes typed by users are searched for, not interpreted, and a
query can never be a syntax error.
"""

from __future__ import annotations

import re

from .registry import FILE_COLUMNS, FILE_ID_RE, FileRow

TERM_RE = re.compile(r'"([^"]*)"|(\S+)')
MAX_TERMS = 16


def fts_query(q: str) -> str | None:
    """Each word becomes a prefix term, each "quoted phrase" an exact phrase."""
    parts = []
    for phrase, word in TERM_RE.findall(q)[:MAX_TERMS]:
        text = (phrase or word).replace('"', " ")
        if not text.strip():
            continue
        quoted = '"' + text + '"'
        parts.append(quoted if phrase else quoted + " *")
    return " ".join(parts) or None


async def search_files(
    db,
    allowed_sql: str,
    allowed_params: dict,
    q: str,
    source: str | None,
    limit: int,
    before_rowid: int | None,
) -> tuple[list[FileRow], int | None]:
    """Newest first; keyset-paginated on rowid; only sources in ``allowed_sql``."""
    params = dict(allowed_params)
    where = [
        f"f.source_slug IN (SELECT parent FROM ({allowed_sql}))",
    ]
    if source:
        where.append("f.source_slug = :files_source")
        params["files_source"] = source
    params["files_limit"] = limit + 1
    # With a MATCH, order by the FTS table's own rowid: FTS5 can then walk
    # its index newest-first and stop at LIMIT instead of sorting all matches.
    order = "f.rowid"
    q = q.strip()
    if FILE_ID_RE.match(q):
        where.append("f.id = :files_id")
        params["files_id"] = q
        sql = f"SELECT f.rowid AS _rowid, {qualified()} FROM files_files f"
    elif fts_query(q):
        where.append("files_fts MATCH :files_match")
        params["files_match"] = fts_query(q)
        sql = (
            f"SELECT f.rowid AS _rowid, {qualified()} FROM files_fts "
            "JOIN files_files f ON f.rowid = files_fts.rowid"
        )
        order = "files_fts.rowid"
    else:
        sql = f"SELECT f.rowid AS _rowid, {qualified()} FROM files_files f"
    if before_rowid is not None:
        where.append(f"{order} < :files_before")
        params["files_before"] = before_rowid
    sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {order} DESC LIMIT :files_limit"
    rows = list(await db.execute(sql, params))
    files = [FileRow.from_row(row) for row in rows[:limit]]
    next_rowid = rows[limit - 1]["_rowid"] if len(rows) > limit else None
    return files, next_rowid


async def browsable_files_by_id(
    db, allowed_sql: str, allowed_params: dict, file_ids: list[str]
) -> list[FileRow]:
    """The files among ``file_ids`` in sources the actor may browse: one query."""
    params = dict(allowed_params)
    placeholders = []
    for i, file_id in enumerate(file_ids):
        params[f"files_id_{i}"] = file_id
        placeholders.append(f":files_id_{i}")
    rows = await db.execute(
        f"SELECT {qualified()} FROM files_files f "
        f"WHERE f.id IN ({', '.join(placeholders)}) "
        f"AND f.source_slug IN (SELECT parent FROM ({allowed_sql}))",
        params,
    )
    return [FileRow.from_row(row) for row in rows]


def qualified() -> str:
    return ", ".join(f"f.{column.strip()}" for column in FILE_COLUMNS.split(","))


async def browsable_files_with_hash(
    db,
    allowed_sql: str,
    allowed_params: dict,
    content_hash: str,
    exclude_id: str,
    limit: int,
) -> list[FileRow]:
    """Other files with this content hash, oldest first, in sources the
    actor may browse (one index seek per source)."""
    params = dict(allowed_params)
    params.update({"_hash": content_hash, "_exclude": exclude_id, "_limit": limit})
    rows = await db.execute(
        f"SELECT {qualified()} FROM files_files f "
        f"WHERE f.source_slug IN (SELECT parent FROM ({allowed_sql})) "
        "AND f.source_slug IN (SELECT slug FROM files_sources WHERE active = 1) "
        "AND f.content_hash = :_hash AND f.id != :_exclude "
        "ORDER BY f.created_at, f.id LIMIT :_limit",
        params,
    )
    return [FileRow.from_row(row) for row in rows]
