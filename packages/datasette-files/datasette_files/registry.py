"""The file registry in Datasette's internal database.

Every SQL statement that touches the registry lives here; the schema and its
history are in ``migrations.py``.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum

from .migrations import MIGRATIONS

# A file id: "df-" and a lowercase ULID.
FILE_ID_RE = re.compile(r"^df-[0-9a-z]{26}$")

FILE_COLUMNS = (
    "id, source_slug, path, filename, content_type, content_hash, size, width, "
    "height, uploaded_by, created_at, search_text, metadata"
)


# Same source, hash and size (the index on (source_slug, content_hash)).
DUPLICATE_WHERE = "source_slug = ? AND content_hash = ? AND size = ? AND id != ?"


def sql_statements(script: str):
    """The statements of an SQL script, trigger bodies kept whole."""
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n;"):
                yield statement.strip()
            statement = ""
    if statement.strip(" \n;"):
        raise ValueError(f"incomplete SQL statement: {statement.strip()!r}")


async def first_row(db, cls, sql: str, params: list):
    """``cls.from_row`` of the query's first row, or None without one."""
    row = (await db.execute(sql, params)).first()
    return cls.from_row(row) if row else None


class TextEnum(str, Enum):
    """A ``str`` enum: stored, bound as an SQL parameter and printed as its
    value (``enum.StrEnum`` arrived in Python 3.11)."""

    def __str__(self) -> str:
        return str(self.value)


class PendingStatus(TextEnum):
    """Where a pending upload (a ``files_pending`` row) stands."""

    PREPARED = "prepared"  # instructions handed out, no bytes yet
    UPLOADING = "uploading"  # bytes streaming through the proxy
    UPLOADED = "uploaded"  # proxy upload received, not yet completed
    COMPLETING = "completing"  # the file row is being created
    ABORTING = "aborting"  # being cancelled; its partial object is removed


def utcnow_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dataclass_from_row(cls, row, json_column: str, **converters):
    """An instance of the dataclass ``cls`` from a database row, with the
    ``json_column`` text decoded (missing or empty: ``{}``) and each column
    named in ``converters`` passed through its function (e.g. an enum)."""
    values = dict(row)
    values[json_column] = json.loads(values.get(json_column) or "{}")
    for column, convert in converters.items():
        values[column] = convert(values[column])
    return cls(**{key: values[key] for key in cls.__dataclass_fields__})


@dataclass
class FileRow:
    """One registered file, as stored."""

    id: str
    source_slug: str
    path: str
    filename: str
    content_type: str | None
    content_hash: str | None
    size: int | None
    width: int | None
    height: int | None
    uploaded_by: str | None
    created_at: str
    search_text: str
    metadata: dict

    @classmethod
    def from_row(cls, row) -> FileRow:
        return dataclass_from_row(cls, row, "metadata")


@dataclass
class PendingUpload:
    """An upload that was prepared but not yet completed."""

    id: str
    token_hash: str
    source_slug: str
    path: str
    filename: str
    content_type: str
    size: int
    actor_id: str | None
    mode: str
    status: PendingStatus
    state: dict
    content_hash: str | None
    created_at: str
    expires_at: float

    @classmethod
    def from_row(cls, row) -> PendingUpload:
        return dataclass_from_row(cls, row, "state", status=PendingStatus)


class Registry:
    """Queries on the registry tables, bound to one internal database."""

    def __init__(self, db):
        self.db = db

    async def migrate(self) -> None:
        # One transaction holding the write lock from the first read of
        # files_migrations to the last statement, so two processes starting
        # on a new internal database (a server and `datasette files sync`)
        # cannot both apply a migration. Datasette opens it with BEGIN
        # IMMEDIATE; executescript() would commit it, so statements run one
        # at a time.
        def run(conn):
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS files_migrations "
                "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            applied = {
                row[0] for row in conn.execute("SELECT name FROM files_migrations")
            }
            for name, sql in MIGRATIONS:
                if name in applied:
                    continue
                for statement in sql_statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO files_migrations (name, applied_at) VALUES (?, ?)",
                    (name, utcnow_iso()),
                )

        await self.db.execute_write_fn(run)

    # Sources

    async def sync_sources(self, sources: dict[str, str]) -> None:
        """Mark exactly ``sources`` (slug → storage type) as the active ones."""

        def run(conn):
            now = utcnow_iso()
            conn.execute("UPDATE files_sources SET active = 0")
            for slug, storage_type in sources.items():
                conn.execute(
                    """
                    INSERT INTO files_sources (slug, storage_type, active, updated_at)
                    VALUES (?, ?, 1, ?)
                    ON CONFLICT (slug) DO UPDATE SET
                        storage_type = excluded.storage_type,
                        active = 1,
                        updated_at = excluded.updated_at
                    """,
                    (slug, storage_type, now),
                )

        await self.db.execute_write_fn(run)

    async def file_counts(self, slugs: list[str]) -> dict[str, int]:
        if not slugs:
            return {}
        placeholders = ", ".join("?" for _ in slugs)
        rows = await self.db.execute(
            f"SELECT source_slug, count(*) FROM files_files "
            f"WHERE source_slug IN ({placeholders}) GROUP BY source_slug",
            slugs,
        )
        counts = {slug: 0 for slug in slugs}
        counts.update({row[0]: row[1] for row in rows})
        return counts

    # Files

    async def get_file(self, file_id: str) -> FileRow | None:
        return await first_row(
            self.db,
            FileRow,
            f"""
            SELECT {FILE_COLUMNS} FROM files_files
            WHERE id = ? AND source_slug IN
                (SELECT slug FROM files_sources WHERE active = 1)
            """,
            [file_id],
        )

    async def list_files(
        self, source_slug: str, limit: int, after: tuple[str, str] | None = None
    ) -> tuple[list[FileRow], tuple[str, str] | None]:
        """Newest first, keyset-paginated on (created_at, id)."""
        params: list = [source_slug]
        where = "source_slug = ?"
        if after is not None:
            where += " AND (created_at, id) < (?, ?)"
            params.extend(after)
        params.append(limit + 1)
        rows = await self.db.execute(
            f"SELECT {FILE_COLUMNS} FROM files_files WHERE {where} "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            params,
        )
        files = [FileRow.from_row(row) for row in rows]
        if len(files) > limit:
            files = files[:limit]
            return files, (files[-1].created_at, files[-1].id)
        return files, None

    async def set_content_hash(self, file_id: str, content_hash: str) -> None:
        await self.db.execute_write(
            "UPDATE files_files SET content_hash = ? WHERE id = ? AND content_hash IS NULL",
            [content_hash, file_id],
        )

    async def files_missing_hash(
        self, slugs: list[str], limit: int
    ) -> list[tuple[str, str, str]]:
        if not slugs:
            return []
        placeholders = ", ".join("?" for _ in slugs)
        rows = await self.db.execute(
            f"SELECT id, source_slug, path FROM files_files WHERE content_hash IS NULL "
            f"AND source_slug IN ({placeholders}) LIMIT ?",
            [*slugs, limit],
        )
        return [tuple(row) for row in rows]

    async def update_filename(self, file_id: str, filename: str) -> None:
        await self.db.execute_write(
            "UPDATE files_files SET filename = ? WHERE id = ?", [filename, file_id]
        )

    async def update_search_text(self, file_id: str, search_text: str) -> None:
        await self.db.execute_write(
            "UPDATE files_files SET search_text = ? WHERE id = ?",
            [search_text, file_id],
        )

    async def delete_file(self, file_id: str) -> None:
        await self.db.execute_write("DELETE FROM files_files WHERE id = ?", [file_id])

    # Pending uploads

    async def insert_pending(self, pending: PendingUpload) -> None:
        await self.db.execute_write(
            """
            INSERT INTO files_pending (id, token_hash, source_slug, path, filename,
                content_type, size, actor_id, mode, status, state, content_hash,
                created_at, expires_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                pending.id,
                pending.token_hash,
                pending.source_slug,
                pending.path,
                pending.filename,
                pending.content_type,
                pending.size,
                pending.actor_id,
                pending.mode,
                pending.status,
                json.dumps(pending.state),
                pending.content_hash,
                pending.created_at,
                pending.expires_at,
            ],
        )

    async def get_pending(self, token_hash: str) -> PendingUpload | None:
        return await first_row(
            self.db,
            PendingUpload,
            "SELECT * FROM files_pending WHERE token_hash = ?",
            [token_hash],
        )

    async def claim_pending(
        self,
        pending_id: str,
        from_statuses: tuple[PendingStatus, ...],
        to_status: PendingStatus,
    ) -> bool:
        """Move a pending upload between states; False if someone else did."""
        placeholders = ", ".join("?" for _ in from_statuses)

        def run(conn):
            cursor = conn.execute(
                f"UPDATE files_pending SET status = ? "
                f"WHERE id = ? AND status IN ({placeholders})",
                [to_status, pending_id, *from_statuses],
            )
            return cursor.rowcount == 1

        return await self.db.execute_write_fn(run)

    async def mark_uploaded(
        self, pending_id: str, content_hash: str | None, from_status: PendingStatus
    ) -> bool:
        def run(conn):
            cursor = conn.execute(
                "UPDATE files_pending SET status = ?, content_hash = ? "
                "WHERE id = ? AND status = ?",
                [PendingStatus.UPLOADED, content_hash, pending_id, from_status],
            )
            return cursor.rowcount == 1

        return await self.db.execute_write_fn(run)

    async def delete_pending(self, pending_id: str) -> None:
        await self.db.execute_write(
            "DELETE FROM files_pending WHERE id = ?", [pending_id]
        )

    async def find_duplicate(self, file: FileRow) -> FileRow | None:
        """The oldest other file in ``file``'s source with its hash and size."""
        return await first_row(
            self.db,
            FileRow,
            f"SELECT {FILE_COLUMNS} FROM files_files WHERE {DUPLICATE_WHERE} "
            "ORDER BY created_at, id LIMIT 1",
            [file.source_slug, file.content_hash, file.size, file.id],
        )

    async def finish_upload(
        self, pending_id: str, file: FileRow, unique: bool = False
    ) -> bool:
        """Insert the file row and drop the pending row in one transaction.

        With ``unique``, nothing happens (False) if the source already has a
        file with the same hash and size: the check and the insert are one
        transaction, so two identical uploads cannot both get in.
        """

        def run(conn):
            with conn:
                if (
                    unique
                    and conn.execute(
                        f"SELECT 1 FROM files_files WHERE {DUPLICATE_WHERE}",
                        [file.source_slug, file.content_hash, file.size, file.id],
                    ).fetchone()
                ):
                    return False
                conn.execute(
                    "INSERT INTO files_completed_uploads "
                    "(token_hash, source_slug, actor_id, expires_at) "
                    "SELECT token_hash, source_slug, actor_id, expires_at "
                    "FROM files_pending WHERE id = ? AND status = ?",
                    [pending_id, PendingStatus.COMPLETING],
                )
                cursor = conn.execute(
                    "DELETE FROM files_pending WHERE id = ? AND status = ?",
                    [pending_id, PendingStatus.COMPLETING],
                )
                if cursor.rowcount != 1:
                    return False
                conn.execute(
                    f"INSERT INTO files_files ({FILE_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        file.id,
                        file.source_slug,
                        file.path,
                        file.filename,
                        file.content_type,
                        file.content_hash,
                        file.size,
                        file.width,
                        file.height,
                        file.uploaded_by,
                        file.created_at,
                        file.search_text,
                        json.dumps(file.metadata),
                    ],
                )
                return True

        try:
            return await self.db.execute_write_fn(run)
        except sqlite3.IntegrityError:
            return False

    async def was_completed(self, token_hash: str, source_slug: str) -> bool:
        rows = await self.db.execute(
            "SELECT 1 FROM files_completed_uploads "
            "WHERE token_hash = ? AND source_slug = ?",
            [token_hash, source_slug],
        )
        return rows.first() is not None

    async def forget_completed(self, now: float) -> None:
        await self.db.execute_write(
            "DELETE FROM files_completed_uploads WHERE expires_at < ?", [now]
        )

    async def expired_pending(self, now: float) -> list[PendingUpload]:
        rows = await self.db.execute(
            "SELECT * FROM files_pending WHERE expires_at < ? LIMIT 1000", [now]
        )
        return [PendingUpload.from_row(row) for row in rows]

    async def stale_pending(
        self, statuses: tuple[PendingStatus, ...]
    ) -> list[PendingUpload]:
        placeholders = ", ".join("?" for _ in statuses)
        rows = await self.db.execute(
            f"SELECT * FROM files_pending WHERE status IN ({placeholders})",
            list(statuses),
        )
        return [PendingUpload.from_row(row) for row in rows]

    async def pending_paths(
        self, source_slug: str, skip_proxy: bool = False
    ) -> set[str]:
        """Paths of the source's pending uploads; with ``skip_proxy``, only
        those whose bytes go straight to the storage (direct, multipart)."""
        sql = "SELECT path FROM files_pending WHERE source_slug = ?"
        if skip_proxy:
            sql += " AND mode != 'proxy'"
        rows = await self.db.execute(sql, [source_slug])
        return {row[0] for row in rows}
