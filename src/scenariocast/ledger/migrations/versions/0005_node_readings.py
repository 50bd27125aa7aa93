"""Readings of a node: a reading can say which state a node of a tree is in.

One new column on ``readings``, ``kind``: empty for a reading of an indicator (every reading
recorded before this revision), ``node`` for a reading of a node (``indicator`` then holds the
node's name and ``value`` its state). Nothing else changes: a node reading is retracted, linked,
exported and chained like any reading. The hash of a reading holds ``kind`` only when it is set,
so every entry made before keeps its hash and the chain needs no re-hashing. Adding a column
is allowed by the append-only triggers (they refuse changes to rows, not to the table).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column (existing rows keep NULL: readings of indicators)."""
    op.add_column("readings", sa.Column("kind", sa.String(16), nullable=True))


def downgrade() -> None:
    """Drop the column (refused by SQLite's append-only triggers if node readings exist)."""
    with op.batch_alter_table("readings") as batch:
        batch.drop_column("kind")
