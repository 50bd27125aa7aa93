"""Which schema revision a ledger is at, and bringing it to the current one with Alembic.

Reading the revision is one or two plain queries; Alembic itself is imported only when a
ledger is upgraded (or made on a server), so that everyday commands do not pay for it. A new
SQLite ledger is made at the current revision directly (:func:`create_current`: the tables of
:mod:`scenariocast.ledger.schema`, the append-only triggers, the revision stamped), as
Alembic's own recipe for a new database does; a test checks it is the ledger the migrations
make.
"""

from __future__ import annotations

import sqlalchemy as sa

from scenariocast.ledger.schema import SCHEMA_REVISION, TABLES, VERSION_TABLE, metadata

#: Revisions this version knows, oldest first.
REVISIONS = ("0001", "0002", "0003", "0004", "0005")
assert REVISIONS[-1] == SCHEMA_REVISION


def table_names(conn: sa.Connection) -> set[str]:
    """The tables in the ledger's database (its current schema on PostgreSQL)."""
    if conn.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    elif conn.dialect.name == "postgresql":
        query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    else:
        return set(sa.inspect(conn).get_table_names())
    return {str(r[0]) for r in conn.exec_driver_sql(query)}


def read_revision(conn: sa.Connection) -> str | None:
    """The schema revision of the ledger: ``None`` for a database with no ledger in it.

    A ledger made before the schema had revisions (0.1.0, and the first ledgers with a report
    column) is recognised by its columns.
    """
    tables = table_names(conn)
    if VERSION_TABLE in tables:
        row = conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").first()
        if row is not None:
            return str(row[0])
    if "readings" not in tables:
        return None
    columns = {c["name"] for c in sa.inspect(conn).get_columns("readings")}
    return "0002" if "report" in columns else "0001"


def _stamped(conn: sa.Connection) -> bool:
    if VERSION_TABLE not in table_names(conn):
        return False
    return conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").first() is not None


def upgrade(conn: sa.Connection) -> tuple[str | None, str]:
    """Bring the ledger on ``conn`` (inside a write transaction) to the current revision.

    Creates the tables in an empty database. Returns the revisions before and after. Every
    reading, retraction and snapshot is kept.
    """
    from alembic import command
    from alembic.config import Config

    before = read_revision(conn)
    cfg = Config()
    cfg.set_main_option("script_location", "scenariocast.ledger:migrations")
    cfg.attributes["connection"] = conn
    if before is not None and not _stamped(conn):
        command.stamp(cfg, before)  # a ledger from before revisions: say where it is
    if before != SCHEMA_REVISION:
        command.upgrade(cfg, "head")
    return before, SCHEMA_REVISION


def create_current(conn: sa.Connection) -> None:
    """Make the ledger's tables at the current revision in the empty SQLite database on ``conn``.

    Inside a write transaction. The same tables, indexes and triggers as running every
    migration (``tests/test_ledger_trust.py`` compares the two), without importing Alembic.
    """
    if conn.dialect.name != "sqlite":  # pragma: no cover - servers are made by the migrations
        raise ValueError("create_current makes SQLite ledgers only")
    metadata.create_all(conn)
    for table in TABLES:  # as revisions 0003 and 0004 make them
        for action, verb in (("UPDATE", "changed"), ("DELETE", "deleted")):
            conn.exec_driver_sql(
                f"CREATE TRIGGER {table}_append_only_{action.lower()} BEFORE {action} "
                f"ON {table} BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: "
                f"{table} cannot be {verb}'); END"
            )
    conn.exec_driver_sql(  # as Alembic makes its version table
        f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL, "
        f"CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num))"
    )
    conn.exec_driver_sql(
        f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (?)", (SCHEMA_REVISION,)
    )
