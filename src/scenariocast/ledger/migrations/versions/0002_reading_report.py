"""A report id per reading: readings of one source with the same id are one report.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable ``report`` column; existing readings keep none."""
    op.add_column("readings", sa.Column("report", sa.String(200), nullable=True))


def downgrade() -> None:
    """Drop the ``report`` column."""
    with op.batch_alter_table("readings") as batch:
        batch.drop_column("report")
