"""Thumbnail outcomes in the internal database (table ``files_thumbnails``).

The table is created by the ``003_thumbnails`` migration in ``registry.py``,
with a trigger that drops a file's rows when the file row is deleted. One row
per file and cache key; the key names the generator, its version, the policy
hash and the file's size and content hash (the "family" of the plain
thumbnail), then the sized variant if any. Storing a result drops the rows
of every other family: those are stale.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import TextEnum, utcnow_iso


class ThumbnailOutcome(TextEnum):
    """What making a file's thumbnail came to (column ``outcome``)."""

    OK = "ok"
    SKIPPED = "skipped"  # the policy refused the input: final
    FAILED = "failed"  # the input is broken: final
    TRANSIENT = "transient"  # retried once retry_at has passed


OK = ThumbnailOutcome.OK
SKIPPED = ThumbnailOutcome.SKIPPED
FAILED = ThumbnailOutcome.FAILED
TRANSIENT = ThumbnailOutcome.TRANSIENT
# A thumbnail adopted from a datasette-files 0.1a3 registry (adopt.py): made
# under an unknown policy, so it is shown only until ours has an answer.
ADOPTED_KEY = "adopted:0.1a3"

COLUMNS = "outcome, generator, reason, content_type, data, etag, attempts, retry_at"


@dataclass
class CachedThumbnail:
    """One stored outcome; ``data`` only for ``ok``."""

    outcome: ThumbnailOutcome
    generator: str
    reason: str | None = None
    content_type: str | None = None
    data: bytes | None = None
    etag: str | None = None
    attempts: int = 1
    retry_at: float | None = None

    def is_current(self, now: float) -> bool:
        """False once a transient failure's cooldown is over."""
        return self.outcome != TRANSIENT or (self.retry_at or 0) > now


class ThumbnailCache:
    """Reads and writes ``files_thumbnails``."""

    def __init__(self, db):
        self.db = db

    async def get(self, file_id: str, cache_key: str) -> CachedThumbnail | None:
        rows = await self.db.execute(
            f"SELECT {COLUMNS} FROM files_thumbnails WHERE file_id = ? AND cache_key = ?",
            [file_id, cache_key],
        )
        row = rows.first()
        if row is None:
            return None
        values = dict(row)
        values["outcome"] = ThumbnailOutcome(values["outcome"])
        return CachedThumbnail(**values)

    async def put(
        self, file_id: str, cache_key: str, entry: CachedThumbnail, family: str
    ) -> None:
        """Store ``entry``, replacing the file's rows outside ``family``.

        ``family`` is ``cache_key`` for a plain thumbnail, or its prefix for a
        sized variant: the plain thumbnail and the variants of one family
        stay side by side.

        Nothing is stored for a file deleted while its thumbnail was made. An
        adopted 0.1a3 thumbnail outlives a transient failure, not a final
        answer.
        """

        def run(conn):
            with conn:
                conn.execute(
                    """
                    DELETE FROM files_thumbnails WHERE file_id = :file_id
                    AND (
                        cache_key = :key
                        OR NOT (
                            cache_key = :family
                            OR substr(cache_key, 1, length(:family) + 1)
                                = :family || ':'
                        )
                    )
                    AND NOT (cache_key = :adopted AND :transient)
                    """,
                    {
                        "file_id": file_id,
                        "key": cache_key,
                        "family": family,
                        "adopted": ADOPTED_KEY,
                        "transient": entry.outcome == TRANSIENT,
                    },
                )
                conn.execute(
                    f"""
                    INSERT INTO files_thumbnails (file_id, cache_key, {COLUMNS}, created_at)
                    SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
                    WHERE EXISTS (SELECT 1 FROM files_files WHERE id = ?)
                    """,
                    [
                        file_id,
                        cache_key,
                        entry.outcome,
                        entry.generator,
                        entry.reason,
                        entry.content_type,
                        entry.data,
                        entry.etag,
                        entry.attempts,
                        entry.retry_at,
                        utcnow_iso(),
                        file_id,
                    ],
                )

        await self.db.execute_write_fn(run)
