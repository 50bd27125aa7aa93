"""Shared helpers for the ledger tests (imported by tests/test_ledger*.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from scenariocast.evidence.catalog import Catalog
from scenariocast.ledger import Ledger

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_TREE = ROOT / "scenarios" / "example-harvest.yaml"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ledger"


def example_catalog() -> Catalog:
    """The catalog of the example tree: rice_price, distribution_report, crackdowns."""
    from scenariocast.spec.load import load_tree

    return Catalog.from_trees([load_tree(EXAMPLE_TREE)])


def dump(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read straight from the SQLite file."""
    ledger.readings()  # create the tables if nothing was ever written
    con = sqlite3.connect(ledger.location)
    try:
        return {
            table: con.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
            for table in ("readings", "retractions", "snapshots")
        }
    finally:
        con.close()
