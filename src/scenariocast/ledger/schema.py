"""The ledger's tables at the current schema revision, in portable SQL (SQLAlchemy Core).

Rows are only ever inserted: a correction is a retraction plus a new reading. The database
refuses updates and deletes (triggers, created by the migrations), and every row carries its
place in the hash chain (``entry``, ``hash``; see :mod:`scenariocast.ledger.chain`).

The schema's history is in ``ledger/migrations`` (Alembic); this module describes where the
migrations end, and a test checks that the two agree.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

# the revision these tables are at, the tables, and the table Alembic keeps the revision in
# (defined with the ledger's read queries, which need no SQLAlchemy)
from scenariocast.ledger.reads import SCHEMA_REVISION as SCHEMA_REVISION
from scenariocast.ledger.reads import TABLES as TABLES
from scenariocast.ledger.reads import VERSION_TABLE as VERSION_TABLE

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
    # readings with the same source and report id are one report (genuine or not as a whole);
    # without an id, a report is the readings of one source on one observed date (rev. 0002)
    Column("report", String(200), nullable=True),
    Column("entry", Integer, nullable=True),  # place in the hash chain (revision 0003)
    Column("hash", String(64), nullable=True),
    # empty for a reading of an indicator; "node" for a reading of a node, whose name is in
    # `indicator` and whose state is in `value` (revision 0005)
    Column("kind", String(16), nullable=True),
    Index("ix_readings_entry", "entry", unique=True),
)

# One retraction per reading at most: the primary key enforces it even for concurrent writers.
retractions = Table(
    "retractions",
    metadata,
    Column("reading_id", Integer, ForeignKey("readings.id"), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("retracted_at", DateTime, nullable=False),  # UTC
    Column("retracted_by", String(200), nullable=False),
    Column("entry", Integer, nullable=True),
    Column("hash", String(64), nullable=True),
    Index("ix_retractions_entry", "entry", unique=True),
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
    Column("entry", Integer, nullable=True),
    Column("hash", String(64), nullable=True),
    # revision 0003 added it after the chain's columns; empty before
    Column("created_by", String(200), nullable=True),
    Index("ix_snapshots_entry", "entry", unique=True),
)

# How a question turned out (revision 0004): an outcome id, yes or no, the day it resolved and
# the source that settles it. Which trees' questions it answers is decided when scoring: the
# trees that ask that outcome over a period holding the day (docs/compare-and-score.md).
resolutions = Table(
    "resolutions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("outcome", String(200), nullable=False, index=True),
    Column("answer", String(3), nullable=False),  # yes or no
    Column("resolved_on", Date, nullable=False),
    Column("source", Text, nullable=False),
    Column("note", Text),
    Column("entered_at", DateTime, nullable=False),  # UTC
    Column("entered_by", String(200), nullable=False),
    Column("entry", Integer, nullable=True),
    Column("hash", String(64), nullable=True),
    Index("ix_resolutions_entry", "entry", unique=True),
)

# One retraction per resolution at most, as for readings.
resolution_retractions = Table(
    "resolution_retractions",
    metadata,
    Column("resolution_id", Integer, ForeignKey("resolutions.id"), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("retracted_at", DateTime, nullable=False),  # UTC
    Column("retracted_by", String(200), nullable=False),
    Column("entry", Integer, nullable=True),
    Column("hash", String(64), nullable=True),
    Index("ix_resolution_retractions_entry", "entry", unique=True),
)
