"""Where an import may go: databases, permissions, table names, the table itself."""

from __future__ import annotations

import os
import re
import sqlite3

from datasette.resources import DatabaseResource, TableResource

from ..errors import HTTPError
from .csvstream import INTEGER, REAL, Column

CREATE_TABLE = "create-table"
INSERT_ROW = "insert-row"
MAX_TABLE_NAME = 128


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def importable(datasette, db) -> bool:
    """Mutable databases whose tables outlive a connection, never the internal one."""
    if db is datasette.get_internal_database() or not db.is_mutable:
        return False
    return not db.is_memory or bool(db.memory_name)


async def may_import_into(datasette, actor, database: str, table: str | None) -> bool:
    """``create-table`` on the database and ``insert-row`` on the (new) table."""
    if not await datasette.allowed(
        action=CREATE_TABLE, resource=DatabaseResource(database), actor=actor
    ):
        return False
    resource = TableResource(database, table) if table else DatabaseResource(database)
    return await datasette.allowed(action=INSERT_ROW, resource=resource, actor=actor)


async def import_databases(datasette, actor) -> list[str]:
    """Names of the databases this actor could import a file into."""
    names = []
    for name, db in list(datasette.databases.items()):
        if importable(datasette, db) and await may_import_into(
            datasette, actor, name, None
        ):
            names.append(name)
    return names


async def check_target(datasette, actor, database: str | None, table: str | None):
    """The database to import into, or HTTPError (400, 403 or 404)."""
    if not isinstance(database, str) or not database:
        raise HTTPError(400, "Choose a database to import into")
    db = datasette.databases.get(database)
    if db is None:
        raise HTTPError(400, f"Database '{database}' does not exist")
    if not importable(datasette, db):
        raise HTTPError(400, f"Database '{database}' is read-only")
    validate_table_name(table)
    if not await may_import_into(datasette, actor, database, table):
        raise HTTPError(
            403,
            f"You need create-table and insert-row permission on '{database}' "
            "to import into it",
        )
    return db


def validate_table_name(table) -> str:
    if not isinstance(table, str) or not table.strip():
        raise HTTPError(400, "Enter a table name")
    if table != table.strip():
        raise HTTPError(400, "The table name cannot start or end with a space")
    if len(table) > MAX_TABLE_NAME:
        raise HTTPError(
            400, f"The table name must be at most {MAX_TABLE_NAME} characters"
        )
    if any(not ch.isprintable() for ch in table):
        raise HTTPError(400, "The table name cannot contain control characters")
    if table.lower().startswith("sqlite_"):
        raise HTTPError(400, "Table names starting with 'sqlite_' are reserved")
    return table


def default_table_name(filename: str) -> str:
    """'Sales 2024 (final).csv' -> 'Sales_2024_final'."""
    stem = os.path.splitext(filename or "")[0]
    name = re.sub(r"[^\w]+", "_", stem).strip("_")[:MAX_TABLE_NAME]
    if not name or name.lower().startswith("sqlite_"):
        name = f"import_{name}" if name else "imported"
    return name


async def create_table(db, table: str, columns: list[Column]) -> None:
    """Create the table; HTTPError 409 if a table or view of that name exists."""
    sql = "CREATE TABLE {} (\n{}\n)".format(
        quote_identifier(table),
        ",\n".join(
            f"    {quote_identifier(column.name)} {column.type}" for column in columns
        ),
    )

    def run(conn):
        taken = conn.execute(
            "SELECT type FROM sqlite_master WHERE lower(name) = lower(?)", [table]
        ).fetchone()
        if taken:
            raise HTTPError(409, f"A {taken[0]} named '{table}' already exists")
        conn.execute(sql)

    try:
        await db.execute_write_fn(run)
    except sqlite3.Error as ex:
        raise HTTPError(400, f"Could not create table '{table}': {ex}") from None


async def drop_table(db, table: str) -> None:
    await db.execute_write(f"DROP TABLE IF EXISTS {quote_identifier(table)}")


def insert_sql(table: str, columns: list[Column]) -> str:
    return "INSERT INTO {} ({}) VALUES ({})".format(
        quote_identifier(table),
        ", ".join(quote_identifier(column.name) for column in columns),
        ", ".join("?" for _ in columns),
    )


def numeric_indexes(columns: list[Column]) -> list[int]:
    return [i for i, column in enumerate(columns) if column.type in (INTEGER, REAL)]
