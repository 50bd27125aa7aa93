"""The ledger's tables, in portable SQL (SQLAlchemy Core).

Rows are only ever inserted: a correction is a retraction plus a new reading.
"""

from __future__ import annotations

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
