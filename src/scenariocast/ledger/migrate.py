"""Which schema revision a ledger is at, and bringing it to the current one with Alembic.

Reading the revision is one or two plain queries; Alembic itself is imported only when a
ledger is created or upgraded, so that everyday commands do not pay for it.
"""

from __future__ import annotations

import sqlalchemy as sa

from scenariocast.ledger.schema import SCHEMA_REVISION, VERSION_TABLE

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
