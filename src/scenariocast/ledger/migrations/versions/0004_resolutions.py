"""Resolutions: how each question turned out, recorded like readings and retractable like them.

Two new tables, in the hash chain and append-only from the start: ``resolutions`` (an outcome
id, yes or no, the day it resolved, the source that settles it, a note, who recorded it and
when) and ``resolution_retractions`` (at most one per resolution: the reason, who, when). A
resolution is never changed or deleted; a wrong one is retracted and recorded again. The
append-only triggers are those of revision 0003 (on PostgreSQL the same trigger function).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("resolutions", "resolution_retractions")


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
        # scenariocast_append_only() was created by revision 0003
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


def upgrade() -> None:
    """Create the two tables with their chain columns, then lock them."""
    op.create_table(
        "resolutions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("outcome", sa.String(200), nullable=False, index=True),
        sa.Column("answer", sa.String(3), nullable=False),
        sa.Column("resolved_on", sa.Date, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("entered_at", sa.DateTime, nullable=False),
        sa.Column("entered_by", sa.String(200), nullable=False),
        sa.Column("entry", sa.Integer, nullable=True),
        sa.Column("hash", sa.String(64), nullable=True),
        sa.Index("ix_resolutions_entry", "entry", unique=True),
    )
    op.create_table(
        "resolution_retractions",
        sa.Column("resolution_id", sa.Integer, sa.ForeignKey("resolutions.id"), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("retracted_at", sa.DateTime, nullable=False),
        sa.Column("retracted_by", sa.String(200), nullable=False),
        sa.Column("entry", sa.Integer, nullable=True),
        sa.Column("hash", sa.String(64), nullable=True),
        sa.Index("ix_resolution_retractions_entry", "entry", unique=True),
    )
    _create_triggers(op.get_bind().dialect.name)


def downgrade() -> None:
    """Drop the triggers and the two tables."""
    _drop_triggers(op.get_bind().dialect.name)
    op.drop_table("resolution_retractions")
    op.drop_table("resolutions")
