"""Shared helpers for the ledger tests (imported by tests/test_ledger*.py and test_cli.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from scenariocast.evidence.catalog import Catalog
from scenariocast.ledger import Ledger

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_TREE = ROOT / "examples" / "example-harvest.yaml"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ledger"
TABLES = ("readings", "retractions", "snapshots", "resolutions", "resolution_retractions")


def example_catalog() -> Catalog:
    """The catalog of the example tree: rice_price, distribution_report, crackdowns."""
    from scenariocast.spec.load import load_tree

    return Catalog.from_trees([load_tree(EXAMPLE_TREE)])


def _rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = sa.create_engine(url if "://" in url else f"sqlite:///{url}")
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            out: dict[str, list[tuple[Any, ...]]] = {}
            for table in (*TABLES, "alembic_version"):
                if table in tables:
                    out[table] = [
                        tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1")
                    ]
            return out
    finally:
        engine.dispose()


def dump(ledger: Ledger | str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (empty lists if there is no ledger yet)."""
    target = ledger if isinstance(ledger, str) else ledger.url
    if "://" not in target or target.startswith("sqlite"):
        path = Path(target.removeprefix("sqlite:///"))
        if not path.exists():
            return {t: [] for t in TABLES}
    rows = _rows(target)
    return {t: rows.get(t, []) for t in TABLES}


def state(target: Ledger | str) -> dict[str, Any]:
    """The ledger's whole state, to check that a command left it byte-for-byte as it was.

    For a SQLite file: after a checkpoint (which moves committed pages from the WAL into the
    file), every page of the database as SQLite reads it, the file's size, what remains in the
    WAL, and every row. For a server: every row of every table, and the schema revision.

    The database file is read through SQLite (``serialize``), never opened directly: closing
    any descriptor of a file releases every POSIX lock the process holds on it, including the
    shared lock by which an open SQLite connection (a ``Ledger`` the test still holds) tells
    other processes it is there. Without that lock, the next process to close its last
    connection takes itself for the last user, checkpoints and deletes the WAL and the shared
    memory file under the open connections, and a new connection in this process then reads
    frames its stale wal-index promises from an empty WAL (``SQLITE_IOERR_SHORT_READ``), or
    its writes are lost. (The WAL file holds no locks, so reading it is safe; its size after
    the checkpoint is 0 unless a reader kept the checkpoint from finishing.)
    """
    url = target if isinstance(target, str) else target.url
    if "://" not in url or url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            return {"exists": False}
        con = sqlite3.connect(path)
        try:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = con.serialize()
        finally:
            con.close()
        wal = Path(f"{path}-wal")
        return {
            "pages": pages,
            "size": path.stat().st_size,
            "wal": wal.read_bytes() if wal.exists() else b"",
            "rows": _rows(str(path)),
        }
    return {"rows": _rows(url)}
