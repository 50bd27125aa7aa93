"""The ledger's tables, in portable SQL (SQLAlchemy Core).

Rows are only ever inserted: a correction is a retraction plus a new reading.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

readings = Table(
    "readings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("indicator", String(200), nullable=False, index=True),
    Column("value", Text, nullable=False),
    Column("unit", String(200)),
    Column("observed", String(64), nullable=False),
    Column("observed_start", Date, nullable=False),
    Column("observed_end", Date, nullable=False),
    Column("location", Text),
    Column("source", String(200), nullable=False),
    Column("note", Text),
    Column("source_url", Text),
    Column("links", Integer, ForeignKey("readings.id"), nullable=True),
    # readings with the same source and report id are one report (genuine or not as a whole);
    # without an id, a report is the readings of one source on one observed date
    Column("report", String(200), nullable=True),
    Column("entered_at", DateTime, nullable=False),  # UTC, stored without a time zone
    Column("entered_by", String(200), nullable=False),
)

# One retraction per reading at most: the primary key enforces it even for concurrent writers.
retractions = Table(
    "retractions",
    metadata,
    Column("reading_id", Integer, ForeignKey("readings.id"), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("retracted_at", DateTime, nullable=False),  # UTC
    Column("retracted_by", String(200), nullable=False),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime, nullable=False),  # UTC
    Column("tree_id", String(200), nullable=False, index=True),
    Column("tree_hash", String(128), nullable=False),
    Column("engine", String(64), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("given", Text, nullable=False),  # JSON object of node -> state
    Column("n_readings", Integer, nullable=False),
    Column("readings_hash", String(128), nullable=False),
    Column("payload", Text, nullable=False),  # JSON of the probabilities
)


#: Columns added to a table after its first release: (table, column). A ledger made before a
#: column existed gains it, empty, when it is next opened (see :func:`upgrade`).
ADDED_COLUMNS: tuple[tuple[Table, str], ...] = ((readings, "report"),)


def upgrade(conn: sa.Connection) -> list[str]:
    """Add the nullable columns a ledger made by an earlier version lacks; return their names.

    Every reading, retraction and snapshot is kept as it is; the new columns are empty.
    """
    inspector = sa.inspect(conn)
    added: list[str] = []
    for table, name in ADDED_COLUMNS:
        if not inspector.has_table(table.name):
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        if name in present:
            continue
        column = table.c[name]
        kind = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{name}" {kind}')
        added.append(f"{table.name}.{name}")
    return added
