"""Tamper evidence: a hash chain, append-only triggers, and who made each forecast.

Every reading, retraction and snapshot gains ``entry`` (its place in one sequence across the
three tables) and ``hash`` (see :mod:`scenariocast.ledger.chain`); existing rows are placed in
the order they were written (by time, then table, then id) and hashed. Snapshots gain
``created_by`` (empty for those made before). Then the database itself refuses UPDATE and
DELETE on the three tables (and TRUNCATE on PostgreSQL).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from scenariocast.ledger.chain import FIELDS, GENESIS, entry_hash

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("readings", "retractions", "snapshots")
_TIME = {"readings": "entered_at", "retractions": "retracted_at", "snapshots": "created_at"}
_KEY = {"readings": "id", "retractions": "reading_id", "snapshots": "id"}
_DATES = {"observed_start", "observed_end", "as_of"}
_TIMES = {"entered_at", "retracted_at", "created_at"}
_INTS = {"id", "links", "reading_id", "n_readings"}


def _typed(name: str) -> sa.ColumnClause[Any]:
    if name in _DATES:
        return sa.column(name, sa.Date)
    if name in _TIMES:
        return sa.column(name, sa.DateTime)
    if name in _INTS:
        return sa.column(name, sa.Integer)
    return sa.column(name, sa.Text)


def _backfill(conn: sa.Connection) -> None:
    rows: list[tuple[Any, int, int, str, dict[str, Any]]] = []
    for order, table in enumerate(TABLES):
        t = sa.table(table, *[_typed(n) for n in FIELDS[table]])
        for r in conn.execute(sa.select(t)).mappings():
            row = dict(r)
            rows.append((row[_TIME[table]], order, int(row[_KEY[table]]), table, row))
    rows.sort(key=lambda x: (x[0], x[1], x[2]))
    previous = GENESIS
    updates: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
    for entry, (_, _, key, table, row) in enumerate(rows, start=1):
        digest = entry_hash(previous, table, row)
        updates[table].append({"k": key, "e": entry, "h": digest})
        previous = digest
    for table, params in updates.items():
        if params:
            conn.execute(
                sa.text(f"UPDATE {table} SET entry = :e, hash = :h WHERE {_KEY[table]} = :k"),
                params,
            )


def _create_triggers(dialect: str) -> None:
    if dialect == "sqlite":
        for table in TABLES:
            for action, verb in (("UPDATE", "changed"), ("DELETE", "deleted")):
                op.execute(
                    f"CREATE TRIGGER {table}_append_only_{action.lower()} BEFORE {action} "
                    f"ON {table} BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: "
                    f"{table} cannot be {verb}'); END"
                )
    elif dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION scenariocast_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
            "'the ledger is append-only: % cannot be changed or deleted', TG_TABLE_NAME; "
            "END $$"
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION scenariocast_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION scenariocast_append_only()"
            )


def _drop_triggers(dialect: str) -> None:
    if dialect == "sqlite":
        for table in TABLES:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only_{action}")
    elif dialect == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS scenariocast_append_only()")


def upgrade() -> None:
    """Add the chain columns and ``snapshots.created_by``, hash what is there, lock it."""
    for table in TABLES:
        op.add_column(table, sa.Column("entry", sa.Integer, nullable=True))
        op.add_column(table, sa.Column("hash", sa.String(64), nullable=True))
    op.add_column("snapshots", sa.Column("created_by", sa.String(200), nullable=True))
    _backfill(op.get_bind())
    for table in TABLES:
        op.create_index(f"ix_{table}_entry", table, ["entry"], unique=True)
    _create_triggers(op.get_bind().dialect.name)


def downgrade() -> None:
    """Drop the triggers, the chain columns and ``snapshots.created_by``."""
    _drop_triggers(op.get_bind().dialect.name)
    for table in TABLES:
        op.drop_index(f"ix_{table}_entry", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("hash")
            batch.drop_column("entry")
            if table == "snapshots":
                batch.drop_column("created_by")
