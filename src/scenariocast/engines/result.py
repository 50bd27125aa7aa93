"""The one result type both engines return."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scenariocast.evidence.select import Evidence, Stale

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
    interval: tuple[float, float] | None = None  # 90% credible interval, from the PyMC engine
    timing: str | None = None  # for an outcome on a dynamic node: end, ever or at_least
    k: int | None = None  # with timing at_least

    @property
    def log_odds_change(self) -> float:
        """Change in log-odds from prior to posterior (inf when either is 0 or 1)."""
        return logit(self.probability) - logit(self.prior)


@dataclass(frozen=True)
class Predictive:
    """What the next genuine reading of an indicator is expected to be, at the as-of step.

    From the PyMC engine: readings drawn from the posterior (the states and every uncertain
    parameter), in the units readings are entered in. For continuous and count indicators the
    median and the central 90% range; for yes/no and categorical ones, the probability of each
    answer.
    """

    median: float | None = None
    low: float | None = None
    high: float | None = None
    probabilities: Mapping[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The non-empty fields, JSON-ready."""
        if self.probabilities is not None:
            return {"probabilities": dict(self.probabilities)}
        return {"median": self.median, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Scenario:
    """A complete scenario (a state for every node) and its probability.

    In a tree with dynamic nodes, a dynamic node's state is its state at the horizon's last
    step (calendar nodes are left out).
    """

    states: Mapping[str, str]
    probability: float


@dataclass(frozen=True)
class StepForecast:
    """A dynamic node's distribution at one step of the horizon.

    ``estimated`` is true for the steps the readings inform: up to the step of the as-of date
    and no later than the newest step a counted reading belongs to (the distribution given every
    counted reading, those observed later included); later steps are predicted. ``intervals``
    holds a 90% credible interval of each state's probability when the engine gives one (the
    PyMC engine); the exact engine leaves it empty.
    """

    step: int
    label: str
    first_day: dt.date
    last_day: dt.date
    estimated: bool
    probabilities: Mapping[str, float]
    prior: Mapping[str, float]
    intervals: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # PyMC engine


@dataclass(frozen=True)
class ForecastResult:
    """Posterior and prior of every node and outcome, with what produced them.

    Both engines return this type; the PyMC engine fills ``interval`` on outcomes,
    ``node_intervals``, the intervals of ``steps``, ``diagnostics`` and ``predictive``.
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
    steps: Mapping[str, tuple[StepForecast, ...]] = field(default_factory=dict)
    now_step: str | None = None  # the label of the step ``nodes`` describes (dynamic trees)
    node_intervals: Mapping[str, Mapping[str, tuple[float, float]]] = field(default_factory=dict)
    predictive: Mapping[str, Predictive] = field(default_factory=dict)  # PyMC engine

    @property
    def n_observations(self) -> int:
        """Number of readings that count (after combining repeated and linked readings)."""
        return len(self.evidence.observations)

    @property
    def stale(self) -> tuple[Stale, ...]:
        """Indicators whose newest usable reading is older than their threshold."""
        return self.evidence.stale

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the ``forecast --json`` output)."""
        return {
            "tree": self.tree_id,
            "tree_hash": self.tree_hash,
            "as_of": self.as_of.isoformat(),
            "engine": self.engine,
            "given": dict(self.given),
            **(
                {"findings": [f.to_dict() for f in self.evidence.findings]}
                if self.evidence.findings
                else {}
            ),
            "n_observations": self.n_observations,
            "n_reports": len(self.evidence.reports),
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
                    **(
                        {"mean": o.probability, "ci_low": o.interval[0], "ci_high": o.interval[1]}
                        if o.interval
                        else {}
                    ),
                    **({"timing": o.timing} if o.timing else {}),
                    **({"k": o.k} if o.k is not None else {}),
                }
                for o in self.outcomes.values()
            },
            "stale": [st.to_dict() for st in self.stale],
            "nodes": {n: dict(s) for n, s in self.nodes.items()},
            **(
                {
                    "node_intervals": {
                        n: {s: list(iv) for s, iv in states.items()}
                        for n, states in self.node_intervals.items()
                    }
                }
                if self.node_intervals
                else {}
            ),
            "prior_nodes": {n: dict(s) for n, s in self.prior_nodes.items()},
            **({"now_step": self.now_step} if self.now_step else {}),
            "steps": {
                n: [
                    {
                        "step": x.label,
                        "first_day": x.first_day.isoformat(),
                        "last_day": x.last_day.isoformat(),
                        "kind": "estimated" if x.estimated else "predicted",
                        "probabilities": dict(x.probabilities),
                        "prior": dict(x.prior),
                        **(
                            {"intervals": {s: list(iv) for s, iv in x.intervals.items()}}
                            if x.intervals
                            else {}
                        ),
                    }
                    for x in path
                ]
                for n, path in self.steps.items()
            },
            "top_scenarios": [
                {"states": dict(s.states), "probability": s.probability} for s in self.top_scenarios
            ],
            "diagnostics": dict(self.diagnostics),
            **(
                {"predictive": {k: v.to_dict() for k, v in self.predictive.items()}}
                if self.predictive
                else {}
            ),
        }

    def to_frame(self, what: str = "outcomes") -> pd.DataFrame:
        """A pandas table of outcomes, nodes or steps.

        ``"outcomes"``: one row each; ``"nodes"``: one row per state; ``"steps"``: one row per
        dynamic node, step and state.
        """
        import pandas as pd

        if what == "steps":
            rows_s: list[dict[str, Any]] = [
                {
                    "node": n,
                    "step": x.label,
                    "first_day": x.first_day,
                    "kind": "estimated" if x.estimated else "predicted",
                    "state": state,
                    "prior": x.prior[state],
                    "probability": p,
                }
                for n, path in self.steps.items()
                for x in path
                for state, p in x.probabilities.items()
            ]
            return pd.DataFrame(rows_s).set_index(["node", "step", "state"])

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
        raise ValueError(f"what must be 'outcomes', 'nodes' or 'steps', got {what!r}")


def logit(p: float) -> float:
    """Log-odds of ``p`` (plus or minus infinity at 1 and 0)."""
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return math.log(p) - math.log1p(-p)


def _json_float(x: float) -> float | None:
    return x if math.isfinite(x) else None
