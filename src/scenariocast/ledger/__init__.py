"""The evidence ledger: readings, retractions and forecast snapshots in one database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scenariocast.ledger.records import Snapshot, readings_hash

if TYPE_CHECKING:
    from scenariocast.ledger.importing import ImportReport
    from scenariocast.ledger.store import Ledger

__all__ = ["ImportReport", "Ledger", "Snapshot", "readings_hash"]


def __getattr__(name: str) -> Any:
    # the ledger (and SQLAlchemy) load when first used, so that `scenariocast.ledger.reads`
    # lists a SQLite ledger without them; the CSV importer (and its mapping models) load only
    # when an import is asked for
    if name == "Ledger":
        from scenariocast.ledger.store import Ledger

        return Ledger
    if name == "ImportReport":
        from scenariocast.ledger.importing import ImportReport

        return ImportReport
    raise AttributeError(f"module 'scenariocast.ledger' has no attribute {name!r}")
