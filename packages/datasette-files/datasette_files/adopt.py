"""Adopting a datasette-files 0.1a3 registry at startup.

0.1a3 kept its registry in the same internal database, in the tables
``datasette_files_sources``, ``datasette_files`` and (where present)
``datasette_files_thumbnails``. When they exist, startup copies their rows
into ours with a few set-based statements in one transaction. The old tables
are only read, never written, so going back to 0.1a3 keeps working.

``files_adopted`` (migration ``007_adopted_0_1a3``) records every old row
already considered and what became of it, so a later startup adopts only rows
added since, and a file deleted here is never adopted again.

The adoption SQL lives here rather than in ``registry.py`` because it is the
only code that reads the 0.1a3 tables; like ``thumbnails/cache.py`` it writes
tables that ``registry.py`` creates.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field

from .registry import FILE_COLUMNS, utcnow_iso
from .thumbnails.cache import ADOPTED_KEY, ThumbnailOutcome
from .thumbnails.service import SAFE_CONTENT_TYPES

log = logging.getLogger("datasette_files")

OLD_SOURCES = "datasette_files_sources"
OLD_FILES = "datasette_files"
OLD_THUMBNAILS = "datasette_files_thumbnails"
# Old rows without these columns cannot be adopted at all; any other column
# missing from an older schema is adopted as NULL.
REQUIRED = {OLD_SOURCES: {"id", "slug"}, OLD_FILES: {"id", "source_id", "path"}}
REQUIRED_THUMBNAIL = {"file_id", "thumbnail", "content_type"}
# Files whose 0.1a3 source id names no source row get a slug no one configures.
ORPHAN_SLUG_PREFIX = "0.1a3-source-"
NOT_CONSIDERED = (
    "{alias}.{column} NOT IN (SELECT old_id FROM files_adopted WHERE kind = '{kind}')"
)


@dataclass
class AdoptionReport:
    """What one startup did with the 0.1a3 rows it had not seen before."""

    adopted: int = 0
    present: int = 0  # the id already was in our registry: left as it was
    unconfigured: dict[str, int] = field(default_factory=dict)  # slug → files
    # Not adopted: their (source, path) belongs to another file (or no path).
    skipped: list[str] = field(default_factory=list)
    thumbnails: int = 0
    thumbnails_skipped: int = 0
    earlier: int = 0  # old files handled by earlier startups

    @property
    def changed(self) -> bool:
        """Whether this startup considered any old row."""
        return any(
            (
                self.adopted,
                self.present,
                self.skipped,
                self.thumbnails,
                self.thumbnails_skipped,
            )
        )

    def summary(self) -> str:
        hidden = sum(self.unconfigured.values())
        text = (
            f"datasette-files: adopted the 0.1a3 registry: {self.adopted} files "
            f"adopted ({hidden} of them in unconfigured sources), "
            f"{self.present} already present, {len(self.skipped)} skipped "
            "(their source and path belong to another file), "
            f"{self.thumbnails} thumbnails adopted "
            f"({self.thumbnails_skipped} skipped), {self.earlier} adopted earlier"
        )
        if self.unconfigured:
            text += "; hidden until configured: " + ", ".join(
                f"{slug} ({count})" for slug, count in sorted(self.unconfigured.items())
            )
        if self.skipped:
            shown = ", ".join(self.skipped[:10])
            more = len(self.skipped) - 10
            text += f"; skipped ids: {shown}" + (
                f" and {more} more" if more > 0 else ""
            )
        return text


def _columns(conn, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_xinfo({table})")}


def _file_select(columns: set[str]) -> str:
    """The 0.1a3 files not considered yet, as rows of ``FILE_COLUMNS``.

    In the old table's rowid order, which is the order 0.1a3 registered them
    in, so search (newest first by rowid) keeps their order. No ORDER BY:
    sorting the rows would triple the time of a 100k-file adoption.
    """

    def old(name: str) -> str:
        return f"f.{name}" if name in columns else "NULL"

    metadata = old("metadata")
    return f"""
        SELECT f.id,
            COALESCE(s.slug, '{ORPHAN_SLUG_PREFIX}' || f.source_id),
            f.path,
            COALESCE({old("filename")}, f.path),
            {old("content_type")}, {old("content_hash")}, {old("size")},
            {old("width")}, {old("height")}, {old("uploaded_by")},
            COALESCE({old("created_at")}, :now),
            COALESCE({old("search_text")}, ''),
            CASE WHEN json_valid({metadata}) AND json_type({metadata}) = 'object'
                THEN {metadata} ELSE '{{}}' END
        FROM {OLD_FILES} f LEFT JOIN {OLD_SOURCES} s ON s.id = f.source_id
        WHERE {NOT_CONSIDERED.format(alias="f", column="id", kind="file")}
            AND f.path IS NOT NULL
    """


def _has_new(conn, table: str, column: str, kind: str) -> bool:
    """Whether ``table`` has rows not considered yet: one walk, no writes."""
    new = NOT_CONSIDERED.format(alias="o", column=column, kind=kind)
    sql = f"SELECT EXISTS (SELECT 1 FROM {table} o WHERE {new})"
    return bool(conn.execute(sql).fetchone()[0])


def _adopt_files(conn, report: AdoptionReport, columns: set[str], now: str) -> None:
    new = NOT_CONSIDERED.format(alias="f", column="id", kind="file")
    # Ids already in our registry are never overwritten.
    report.present = conn.execute(
        f"INSERT INTO files_adopted (kind, old_id, outcome, adopted_at) "
        f"SELECT 'file', f.id, 'present', :now FROM {OLD_FILES} f "
        f"WHERE {new} AND f.id IN (SELECT id FROM files_files)",
        {"now": now},
    ).rowcount
    # OR IGNORE: a (source, path) another file holds is skipped, not fatal.
    report.adopted = conn.execute(
        f"INSERT OR IGNORE INTO files_files ({FILE_COLUMNS}) {_file_select(columns)}",
        {"now": now},
    ).rowcount
    report.unconfigured = dict(
        conn.execute(
            # CROSS JOIN: walk the new old rows, not all of files_files.
            f"SELECT ff.source_slug, count(*) FROM {OLD_FILES} f "
            "CROSS JOIN files_files ff ON ff.id = f.id "
            f"WHERE {new} AND ff.source_slug NOT IN "
            "(SELECT slug FROM files_sources WHERE active = 1) "
            "GROUP BY ff.source_slug"
        ).fetchall()
    )
    conn.execute(
        f"INSERT INTO files_adopted (kind, old_id, outcome, adopted_at) "
        f"SELECT 'file', f.id, 'adopted', :now FROM {OLD_FILES} f "
        f"WHERE {new} AND f.id IN (SELECT id FROM files_files)",
        {"now": now},
    )
    report.skipped = [
        row[0]
        for row in conn.execute(
            f"SELECT f.id FROM {OLD_FILES} f WHERE {new} AND f.id IS NOT NULL "
            "ORDER BY f.id"
        )
    ]
    conn.execute(
        f"INSERT OR IGNORE INTO files_adopted (kind, old_id, outcome, adopted_at) "
        f"SELECT 'file', f.id, 'skipped', :now FROM {OLD_FILES} f "
        f"WHERE {new} AND f.id IS NOT NULL",
        {"now": now},
    )


def _adopt_thumbnails(conn, report: AdoptionReport, now: str) -> None:
    """Old thumbnails become fallbacks, shown until ours is made.

    They were made under 0.1a3's size and format, so no current cache key
    fits them: they are stored under ``ADOPTED_KEY``, for files that have no
    thumbnail row of ours yet, and only if they are a safe raster image.
    """
    new = NOT_CONSIDERED.format(alias="t", column="file_id", kind="thumbnail")
    safe = ", ".join(f"'{content_type}'" for content_type in sorted(SAFE_CONTENT_TYPES))
    report.thumbnails = conn.execute(
        f"""
        INSERT OR IGNORE INTO files_thumbnails (file_id, cache_key, outcome,
            generator, content_type, data, etag, attempts, created_at)
        SELECT t.file_id, :key, :ok, '0.1a3', lower(t.content_type), t.thumbnail,
            '"a-' || t.file_id || '"', 1, :now
        FROM {OLD_THUMBNAILS} t
        WHERE {new}
            AND t.file_id IN (SELECT id FROM files_files)
            AND NOT EXISTS (SELECT 1 FROM files_thumbnails x WHERE x.file_id = t.file_id)
            AND lower(t.content_type) IN ({safe})
            AND typeof(t.thumbnail) = 'blob' AND length(t.thumbnail) > 0
        """,
        {"key": ADOPTED_KEY, "ok": ThumbnailOutcome.OK, "now": now},
    ).rowcount
    considered = conn.execute(
        f"""
        INSERT OR IGNORE INTO files_adopted (kind, old_id, outcome, adopted_at)
        SELECT DISTINCT 'thumbnail', t.file_id,
            CASE WHEN EXISTS (SELECT 1 FROM files_thumbnails x
                WHERE x.file_id = t.file_id AND x.cache_key = :key)
            THEN 'adopted' ELSE 'skipped' END, :now
        FROM {OLD_THUMBNAILS} t WHERE {new} AND t.file_id IS NOT NULL
        """,
        {"key": ADOPTED_KEY, "now": now},
    ).rowcount
    report.thumbnails_skipped = considered - report.thumbnails


def adopt(conn) -> AdoptionReport | None:
    """Adopt the 0.1a3 rows not considered yet; None if there are no old tables.

    Runs on the write connection inside ``execute_write_fn``'s transaction:
    it all happens or none of it.
    """
    tables = {
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?, ?)",
            [OLD_SOURCES, OLD_FILES, OLD_THUMBNAILS],
        )
    }
    if not {OLD_SOURCES, OLD_FILES} <= tables:
        return None
    columns = {table: _columns(conn, table) for table in tables}
    for table, required in REQUIRED.items():
        missing = required - columns[table]
        if missing:
            log.warning(
                "datasette-files: not adopting the 0.1a3 registry: %s has no %s",
                table,
                ", ".join(sorted(missing)),
            )
            return None
    thumbnails = OLD_THUMBNAILS in tables and REQUIRED_THUMBNAIL <= columns.get(
        OLD_THUMBNAILS, set()
    )
    report = AdoptionReport()
    now = utcnow_iso()
    if _has_new(conn, OLD_FILES, "id", "file"):
        _adopt_files(conn, report, columns[OLD_FILES], now)
    if thumbnails and _has_new(conn, OLD_THUMBNAILS, "file_id", "thumbnail"):
        _adopt_thumbnails(conn, report, now)
    report.earlier = (
        conn.execute(
            "SELECT count(*) FROM files_adopted WHERE kind = 'file'"
        ).fetchone()[0]
        - report.adopted
        - report.present
        - len(report.skipped)
    )
    return report


async def adopt_0_1a3(db) -> AdoptionReport | None:
    """Adopt a 0.1a3 registry found in the internal database ``db``; log it.

    A database error rolls the adoption back and is logged; Datasette starts
    anyway and the next startup tries again.
    """
    try:
        report = await db.execute_write_fn(adopt)
    except sqlite3.Error as ex:
        log.error("datasette-files: adopting the 0.1a3 registry failed: %s", ex)
        return None
    if report is None:
        return None
    if report.changed:
        log.warning(report.summary())
    else:
        log.info(report.summary())
    return report
