"""The registry's migrations: each runs once, even when several processes
(a server and ``datasette files sync`` runs) start on a new internal database
at the same moment.
"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from datasette.app import Datasette
from datasette_files.migrations import MIGRATIONS
from datasette_files.registry import Registry, sql_statements


@pytest.mark.asyncio
@pytest.mark.parametrize("round_", range(3))
async def test_migrators_racing_on_a_new_database_apply_each_migration_once(
    tmp_path, round_
):
    path = tmp_path / "internal.db"
    # Separate Datasette instances: separate write connections and threads,
    # contending for SQLite's file lock as separate processes do.
    instances = [Datasette(internal=str(path)) for _ in range(6)]
    registries = [Registry(ds.get_internal_database()) for ds in instances]

    await asyncio.gather(*(registry.migrate() for registry in registries))

    with sqlite3.connect(path) as conn:
        applied = [row[0] for row in conn.execute("SELECT name FROM files_migrations")]
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }
    assert sorted(applied) == [name for name, _ in MIGRATIONS]
    assert {"files_files", "files_pending", "files_sync_jobs"} <= tables


@pytest.mark.asyncio
async def test_migrating_twice_changes_nothing(tmp_path):
    path = tmp_path / "internal.db"
    await Registry(Datasette(internal=str(path)).get_internal_database()).migrate()
    with sqlite3.connect(path) as conn:
        before = conn.execute(
            "SELECT name, applied_at FROM files_migrations"
        ).fetchall()
    await Registry(Datasette(internal=str(path)).get_internal_database()).migrate()
    with sqlite3.connect(path) as conn:
        after = conn.execute("SELECT name, applied_at FROM files_migrations").fetchall()
    assert after == before


def test_a_trigger_body_stays_one_statement():
    script = """
        CREATE TABLE t (a);
        CREATE TRIGGER t_insert AFTER INSERT ON t BEGIN
            INSERT INTO t (a) VALUES (1);
            DELETE FROM t WHERE a = 2;
        END;
        UPDATE t SET a = 'x;y';
    """
    statements = list(sql_statements(script))
    assert len(statements) == 3
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    assert statements[2] == "UPDATE t SET a = 'x;y';"


def test_a_trigger_without_its_end_is_an_error():
    with pytest.raises(ValueError, match="incomplete"):
        list(
            sql_statements("CREATE TRIGGER t_insert AFTER INSERT ON t BEGIN SELECT 1;")
        )
