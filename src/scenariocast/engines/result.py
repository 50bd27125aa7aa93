"""The one result type both engines return."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scenariocast.evidence.select import Evidence

if TYPE_CHECKING:  # pandas is imported only when a frame is asked for
    import pandas as pd


@dataclass(frozen=True)
class OutcomeForecast:
    """The probability of one outcome, before and after the evidence."""

    id: str
    question: str
    probability: float
    prior: float
    resolve_by: dt.date
    interval: tuple[float, float] | None = None  # credible interval, from the PyMC engine

    @property
    def log_odds_change(self) -> float:
        """Change in log-odds from prior to posterior (inf when either is 0 or 1)."""
        return logit(self.probability) - logit(self.prior)


@dataclass(frozen=True)
class Scenario:
    """A complete scenario (a state for every node) and its probability."""

    states: Mapping[str, str]
    probability: float


@dataclass(frozen=True)
class ForecastResult:
    """Posterior and prior of every node and outcome, with what produced them.

    Both engines return this type; the PyMC engine fills ``interval`` on outcomes and
    ``diagnostics``.
    """

    tree_id: str
    tree_hash: str
    engine: str
    as_of: dt.date
    given: Mapping[str, str]
    evidence: Evidence
    log_evidence: float
    outcomes: Mapping[str, OutcomeForecast]
    nodes: Mapping[str, Mapping[str, float]]
    prior_nodes: Mapping[str, Mapping[str, float]]
    top_scenarios: tuple[Scenario, ...]
    readings_hash: str = ""
    diagnostics: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_observations(self) -> int:
        """Number of readings that count (after combining repeated and linked readings)."""
        return len(self.evidence.observations)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the ``forecast --json`` output)."""
        return {
            "tree": self.tree_id,
            "tree_hash": self.tree_hash,
            "as_of": self.as_of.isoformat(),
            "engine": self.engine,
            "given": dict(self.given),
            "n_observations": self.n_observations,
            "n_readings_used": len(self.evidence.reading_ids),
            "n_readings_not_counted": len(self.evidence.excluded),
            "readings_hash": self.readings_hash,
            "log_evidence": _json_float(self.log_evidence),
            "outcomes": {
                o.id: {
                    "question": o.question,
                    "probability": o.probability,
                    "prior": o.prior,
                    "resolve_by": o.resolve_by.isoformat(),
                    **({"interval": list(o.interval)} if o.interval else {}),
                }
                for o in self.outcomes.values()
            },
            "nodes": {n: dict(s) for n, s in self.nodes.items()},
            "prior_nodes": {n: dict(s) for n, s in self.prior_nodes.items()},
            "top_scenarios": [
                {"states": dict(s.states), "probability": s.probability} for s in self.top_scenarios
            ],
            "diagnostics": dict(self.diagnostics),
        }

    def to_frame(self, what: str = "outcomes") -> pd.DataFrame:
        """A pandas table of ``"outcomes"`` (one row each) or ``"nodes"`` (one row per state)."""
        import pandas as pd

        if what == "outcomes":
            rows: list[dict[str, Any]] = [
                {
                    "outcome": o.id,
                    "question": o.question,
                    "prior": o.prior,
                    "probability": o.probability,
                    "resolve_by": o.resolve_by,
                }
                for o in self.outcomes.values()
            ]
            return pd.DataFrame(rows).set_index("outcome")
        if what == "nodes":
            rows = [
                {
                    "node": n,
                    "state": s,
                    "prior": self.prior_nodes[n][s],
                    "probability": p,
                }
                for n, states in self.nodes.items()
                for s, p in states.items()
            ]
            return pd.DataFrame(rows).set_index(["node", "state"])
        raise ValueError(f"what must be 'outcomes' or 'nodes', got {what!r}")


def logit(p: float) -> float:
    """Log-odds of ``p`` (plus or minus infinity at 1 and 0)."""
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return math.log(p) - math.log1p(-p)


def _json_float(x: float) -> float | None:
    return x if math.isfinite(x) else None
