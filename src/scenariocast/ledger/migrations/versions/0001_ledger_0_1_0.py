"""The ledger as scenariocast 0.1.0 made it: readings, retractions, snapshots.

Revision ID: 0001
Revises:
Create Date: 2026-11-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the three tables of 0.1.0."""
    op.create_table(
        "readings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("indicator", sa.String(200), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("unit", sa.String(200)),
        sa.Column("observed", sa.String(64), nullable=False),
        sa.Column("observed_start", sa.Date, nullable=False),
        sa.Column("observed_end", sa.Date, nullable=False),
        sa.Column("location", sa.Text),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("source_url", sa.Text),
        sa.Column("links", sa.Integer, sa.ForeignKey("readings.id"), nullable=True),
        sa.Column("entered_at", sa.DateTime, nullable=False),
        sa.Column("entered_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_readings_indicator", "readings", ["indicator"])
    op.create_table(
        "retractions",
        sa.Column("reading_id", sa.Integer, sa.ForeignKey("readings.id"), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("retracted_at", sa.DateTime, nullable=False),
        sa.Column("retracted_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("tree_id", sa.String(200), nullable=False),
        sa.Column("tree_hash", sa.String(128), nullable=False),
        sa.Column("engine", sa.String(64), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("given", sa.Text, nullable=False),
        sa.Column("n_readings", sa.Integer, nullable=False),
        sa.Column("readings_hash", sa.String(128), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_snapshots_tree_id", "snapshots", ["tree_id"])


def downgrade() -> None:
    """Drop the tables (and everything in them)."""
    op.drop_table("snapshots")
    op.drop_table("retractions")
    op.drop_table("readings")
