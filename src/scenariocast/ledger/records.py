"""Value objects the ledger returns besides readings: snapshots and the evidence hash."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from scenariocast.evidence.readings import Reading


@dataclass(frozen=True)
class Snapshot:
    """A forecast as it was made: which tree, engine, evidence and what came out."""

    id: int
    created_at: dt.datetime
    tree_id: str
    tree_hash: str
    engine: str
    as_of: dt.date
    given: dict[str, str]
    n_readings: int
    readings_hash: str
    payload: dict[str, Any]
    created_by: str | None = None  # empty for snapshots made before revision 0003

    @property
    def is_what_if(self) -> bool:
        """Whether the forecast assumed states (``--given``): a what-if, not a forecast."""
        return bool(self.given)


@dataclass(frozen=True)
class OutcomeResolution:
    """How a question turned out: an outcome id, yes or no, the day, and what settles it.

    A resolution answers the question of every tree that asks that outcome over a period
    holding ``resolved_on`` (from the horizon's first day to the outcome's ``resolve_by``).
    A retracted resolution stays in the ledger and answers nothing.
    """

    id: int
    outcome: str
    happened: bool
    resolved_on: dt.date
    source: str
    note: str | None = None
    entered_at: dt.datetime | None = None
    entered_by: str | None = None
    retracted: bool = False
    retraction_reason: str | None = None
    retracted_by: str | None = None

    @property
    def answer(self) -> str:
        """``yes`` or ``no``."""
        return "yes" if self.happened else "no"


def readings_hash(readings: Iterable[Reading]) -> str:
    """The sha256 of the ids, values and retraction state of ``readings``, in id order.

    Two forecasts with the same hash used exactly the same evidence, in whatever order the
    readings were given.
    """
    rows = list(readings)
    ids = [r.id for r in rows]
    items = list(zip(ids, [r.value for r in rows], [r.retracted for r in rows], strict=True))
    if not all(map(operator.lt, ids, itertools.islice(ids, 1, None))):
        items.sort()  # else in id order already (the ledger's order)
    blob = json.dumps(items, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
