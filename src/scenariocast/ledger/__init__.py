"""The evidence ledger: readings, retractions and forecast snapshots in one database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scenariocast.ledger.records import Snapshot, readings_hash
from scenariocast.ledger.store import Ledger

if TYPE_CHECKING:
    from scenariocast.ledger.importing import ImportReport

__all__ = ["ImportReport", "Ledger", "Snapshot", "readings_hash"]


def __getattr__(name: str) -> Any:
    # the CSV importer (and its mapping models) load only when an import is asked for
    if name == "ImportReport":
        from scenariocast.ledger.importing import ImportReport

        return ImportReport
    raise AttributeError(f"module 'scenariocast.ledger' has no attribute {name!r}")
