"""The registry's schema, as the migrations that built it, in order.

Each runs once, by name (``Registry.migrate`` records what has run in
``files_migrations``); a new one goes at the end with the next number. None
scans the files table on every start, so startup time does not grow with the
number of files.
"""

MIGRATIONS = [
    (
        "001_initial",
        """
        CREATE TABLE IF NOT EXISTS files_sources (
            slug TEXT PRIMARY KEY,
            storage_type TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 1,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS files_files (
            id TEXT PRIMARY KEY,
            source_slug TEXT NOT NULL,
            path TEXT NOT NULL,
            filename TEXT NOT NULL,
            content_type TEXT,
            content_hash TEXT,
            size INTEGER,
            width INTEGER,
            height INTEGER,
            uploaded_by TEXT,
            created_at TEXT NOT NULL,
            search_text TEXT NOT NULL DEFAULT '',
            metadata TEXT NOT NULL DEFAULT '{}',
            UNIQUE (source_slug, path)
        );
        CREATE INDEX IF NOT EXISTS files_files_source_listing
            ON files_files (source_slug, created_at DESC, id DESC);
        CREATE INDEX IF NOT EXISTS files_files_uploaded_by
            ON files_files (uploaded_by);
        CREATE TABLE IF NOT EXISTS files_pending (
            id TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            source_slug TEXT NOT NULL,
            path TEXT NOT NULL,
            filename TEXT NOT NULL,
            content_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            actor_id TEXT,
            mode TEXT NOT NULL,
            status TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT '{}',
            content_hash TEXT,
            created_at TEXT NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE INDEX IF NOT EXISTS files_pending_expires
            ON files_pending (expires_at);
        """,
    ),
    (
        # Full-text search over filename, content type and search_text, kept
        # in sync by triggers: never rebuilt at startup.
        "002_search",
        """
        CREATE VIRTUAL TABLE IF NOT EXISTS files_fts USING fts5(
            filename, content_type, search_text,
            content='files_files', content_rowid='rowid',
            tokenize='unicode61 remove_diacritics 2', prefix='2 3'
        );
        CREATE TRIGGER IF NOT EXISTS files_fts_insert AFTER INSERT ON files_files BEGIN
            INSERT INTO files_fts (rowid, filename, content_type, search_text)
            VALUES (new.rowid, new.filename, new.content_type, new.search_text);
        END;
        CREATE TRIGGER IF NOT EXISTS files_fts_delete AFTER DELETE ON files_files BEGIN
            INSERT INTO files_fts (files_fts, rowid, filename, content_type, search_text)
            VALUES ('delete', old.rowid, old.filename, old.content_type, old.search_text);
        END;
        CREATE TRIGGER IF NOT EXISTS files_fts_update AFTER UPDATE ON files_files BEGIN
            INSERT INTO files_fts (files_fts, rowid, filename, content_type, search_text)
            VALUES ('delete', old.rowid, old.filename, old.content_type, old.search_text);
            INSERT INTO files_fts (rowid, filename, content_type, search_text)
            VALUES (new.rowid, new.filename, new.content_type, new.search_text);
        END;
        INSERT INTO files_fts (files_fts) VALUES ('rebuild');
        """,
    ),
    (
        # Thumbnail outcomes; queries in thumbnails/cache.py. The trigger
        # keeps every delete path from leaving a deleted file's thumbnail.
        "003_thumbnails",
        """
        CREATE TABLE IF NOT EXISTS files_thumbnails (
            file_id TEXT NOT NULL,
            cache_key TEXT NOT NULL,
            outcome TEXT NOT NULL,
            generator TEXT NOT NULL,
            reason TEXT,
            content_type TEXT,
            data BLOB,
            etag TEXT,
            attempts INTEGER NOT NULL DEFAULT 1,
            retry_at REAL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (file_id, cache_key)
        );
        CREATE TRIGGER IF NOT EXISTS files_thumbnails_file_deleted
        AFTER DELETE ON files_files BEGIN
            DELETE FROM files_thumbnails WHERE file_id = old.id;
        END;
        """,
    ),
    (
        # CSV/TSV imports into tables: one row per job, so progress survives
        # page reloads and a restart can mark an interrupted job failed.
        # Queries: imports/store.py.
        "004_imports",
        """
        CREATE TABLE IF NOT EXISTS files_imports (
            id TEXT PRIMARY KEY,
            file_id TEXT NOT NULL,
            database_name TEXT NOT NULL,
            table_name TEXT NOT NULL,
            actor_id TEXT,
            status TEXT NOT NULL,
            options TEXT NOT NULL DEFAULT '{}',
            rows_imported INTEGER NOT NULL DEFAULT 0,
            bytes_read INTEGER NOT NULL DEFAULT 0,
            bytes_total INTEGER,
            error TEXT,
            error_line INTEGER,
            created_at TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE INDEX IF NOT EXISTS files_imports_status ON files_imports (status);
        """,
    ),
    (
        # Tokens of completed uploads, until they would have expired: a
        # replayed or racing complete is told "already completed" (409)
        # rather than "invalid token".
        "005_completed_uploads",
        """
        CREATE TABLE IF NOT EXISTS files_completed_uploads (
            token_hash TEXT PRIMARY KEY,
            source_slug TEXT NOT NULL,
            actor_id TEXT,
            expires_at REAL NOT NULL
        );
        CREATE INDEX IF NOT EXISTS files_completed_uploads_expires
            ON files_completed_uploads (expires_at);
        """,
    ),
    (
        # content_hash is "sha256:<hex>", as in datasette-files 0.1a3; rows
        # recorded before as bare hex get the prefix (one pass, once). The
        # search trigger now fires only when an indexed column changes, so
        # neither this pass nor a background hash rewrites the FTS index.
        "006_content_hash_prefix",
        """
        DROP TRIGGER IF EXISTS files_fts_update;
        CREATE TRIGGER files_fts_update
        AFTER UPDATE OF filename, content_type, search_text ON files_files BEGIN
            INSERT INTO files_fts (files_fts, rowid, filename, content_type, search_text)
            VALUES ('delete', old.rowid, old.filename, old.content_type, old.search_text);
            INSERT INTO files_fts (rowid, filename, content_type, search_text)
            VALUES (new.rowid, new.filename, new.content_type, new.search_text);
        END;
        UPDATE files_files SET content_hash = 'sha256:' || lower(content_hash)
        WHERE content_hash NOT LIKE 'sha256:%'
            AND length(content_hash) = 64
            AND content_hash NOT GLOB '*[^0-9a-fA-F]*';
        UPDATE files_pending SET content_hash = 'sha256:' || lower(content_hash)
        WHERE content_hash NOT LIKE 'sha256:%'
            AND length(content_hash) = 64
            AND content_hash NOT GLOB '*[^0-9a-fA-F]*';
        """,
    ),
    (
        # Rows of a datasette-files 0.1a3 registry already considered for
        # adoption (adopt.py), so a file deleted here is never adopted again.
        "007_adopted_0_1a3",
        """
        CREATE TABLE IF NOT EXISTS files_adopted (
            kind TEXT NOT NULL,
            old_id TEXT NOT NULL,
            outcome TEXT NOT NULL,
            adopted_at TEXT NOT NULL,
            PRIMARY KEY (kind, old_id)
        ) WITHOUT ROWID;
        """,
    ),
    (
        # files_pending.mode is proxy, direct or multipart, recorded at
        # prepare. Before, a multipart upload was a "direct" row whose
        # storage state held an upload_id (the only storage that had them
        # then was S3); such rows in flight across the upgrade keep working.
        "008_pending_upload_mode",
        """
        UPDATE files_pending SET mode = 'multipart'
        WHERE mode = 'direct'
            AND json_valid(state)
            AND json_extract(state, '$.upload_id') IS NOT NULL;
        """,
    ),
    (
        # on_duplicate looks files up by hash within a source; the file
        # page lists other files with the same hash.
        "009_content_hash_index",
        """
        CREATE INDEX IF NOT EXISTS files_files_content_hash
            ON files_files (source_slug, content_hash);
        """,
    ),
    (
        # Syncs of files already in a source (sync/): one row per run, its
        # listing cursor and counters checkpointed with every batch, so a
        # killed sync resumes. The partial unique index allows one running
        # sync per source, across processes. Queries: sync/store.py.
        "010_sync_jobs",
        """
        CREATE TABLE IF NOT EXISTS files_sync_jobs (
            id TEXT PRIMARY KEY,
            source_slug TEXT NOT NULL,
            prefix TEXT NOT NULL DEFAULT '',
            prune INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL,
            owner TEXT,
            actor_id TEXT,
            cursor TEXT,
            last_path TEXT,
            listing_done INTEGER NOT NULL DEFAULT 0,
            ordered INTEGER NOT NULL DEFAULT 1,
            seen INTEGER NOT NULL DEFAULT 0,
            registered INTEGER NOT NULL DEFAULT 0,
            updated INTEGER NOT NULL DEFAULT 0,
            skipped INTEGER NOT NULL DEFAULT 0,
            missing INTEGER NOT NULL DEFAULT 0,
            removed INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            heartbeat_at REAL,
            created_at TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE UNIQUE INDEX IF NOT EXISTS files_sync_jobs_one_running
            ON files_sync_jobs (source_slug) WHERE status = 'running';
        CREATE INDEX IF NOT EXISTS files_sync_jobs_source
            ON files_sync_jobs (source_slug, created_at);
        """,
    ),
]
