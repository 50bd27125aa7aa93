"""Scoring forecasters: each tree's forecasts against the resolutions in the ledger.

A **resolution** (``scenariocast resolve``) says that an outcome resolved yes or no on a day. It
answers the question of every tree that has that outcome and asks it over a period holding the
day: from the horizon's first day (any day, for a tree without a horizon) to the outcome's
``resolve_by``. So one resolution can score several trees, and a tree for 2024 is not scored by
a resolution of 2026.

For each tree and each resolved outcome:

- the **Brier score** ``(p - y)^2`` and the **log score** ``-ln P(what happened)`` (in nats; 0
  is perfect, lower is better, and a forecast of 0% for what happened scores infinity) of the
  *latest forecast before the resolution*: the tree's forecast as of the day before the
  resolution day, replayed from the ledger (readings observed by then);
- the **time-averaged Brier score** over the question's open period: the mean, over every day
  from the day the question opened (the horizon's first day; for a tree without a horizon, the
  day of its first reading) to the day before the resolution, of the Brier score of
  the forecast as it stood that day. The forecast changes only on days a reading was observed
  or dropped out of a window, so it is computed on those days (``analysis.timeline``) and
  weighted by how long each stood;
- the latest *recorded* forecast of the tree before the resolution day (a snapshot in the
  ledger's history, not a what-if), with who made it, scored the same way.

With several trees, the pools of :mod:`scenariocast.analysis.pool` are scored beside them, on
the outcomes two or more trees share. The extremized pool's factor for a question is fitted on
the *other* resolved questions (leave one out), so that no question scores a factor fitted on
its own answer.

Across the resolved outcomes, each forecaster's **calibration table** puts its latest forecasts
before resolution into probability bins and gives, for each, how many, their mean, and how
often the outcomes happened.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scenariocast.analysis.compare import (
    common_evidence,
    log_marginal_likelihood,
    posterior_weights,
    prior_weights,
)
from scenariocast.analysis.pool import (
    Extremizing,
    choose_extremizing,
    log_odds_average,
    pool_probability,
)
from scenariocast.analysis.timeline import outcome_timeline
from scenariocast.engines.exact import ExactModel
from scenariocast.errors import QueryError
from scenariocast.evidence.catalog import question_of
from scenariocast.evidence.readings import Reading
from scenariocast.ledger.records import OutcomeResolution, Snapshot
from scenariocast.spec.tree import Tree

#: The pools scored beside the trees, and how they are named in a score table.
POOLS = {
    "linear": "linear pool",
    "log": "log pool",
    "extremized": "extremized pool",
    "evidence": "evidence pool",
}
DAY = dt.timedelta(days=1)


class ScoreError(QueryError):
    """Resolutions that cannot score a tree: two that stand for one question."""


# ---------------------------------------------------------------------------------------------
# the scores of one forecast


def brier(p: float, happened: bool) -> float:
    """``(p - y)^2``: 0 is perfect, always saying 50% scores 0.25."""
    return (p - (1.0 if happened else 0.0)) ** 2


def log_score(p: float, happened: bool) -> float:
    """``-ln P(what happened)`` in nats: 0 is perfect, 50% scores ln 2; infinite at 0%."""
    q = p if happened else 1.0 - p
    return math.inf if q <= 0.0 else -math.log(q)


def time_averaged_brier(
    path: Sequence[tuple[dt.date, float]], start: dt.date, end: dt.date, happened: bool
) -> float:
    """The mean Brier score over the days ``start`` to ``end`` (both included).

    ``path`` is the forecast's steps: ``(day, p)`` holds from ``day`` until the next step. The
    first step must be on or before ``start``.
    """
    if not path or path[0][0] > start:
        raise ValueError("the path must start on or before the first day")
    if end < start:
        raise ValueError("the last day is before the first")
    total = 0.0
    days = 0
    steps = sorted(path)
    for k, (day, p) in enumerate(steps):
        until = steps[k + 1][0] - DAY if k + 1 < len(steps) else end
        lo, hi = max(day, start), min(until, end)
        if hi < lo:
            continue
        n = (hi - lo).days + 1
        total += n * brier(p, happened)
        days += n
    return total / days


# ---------------------------------------------------------------------------------------------
# which resolution answers which question


def resolved_questions(
    tree: Tree, resolutions: Sequence[OutcomeResolution]
) -> dict[str, OutcomeResolution]:
    """Outcome id -> the standing resolution that answers the tree's question, if any.

    Raises
    ------
    ScoreError
        When two resolutions that are not retracted answer one question.
    """
    out: dict[str, OutcomeResolution] = {}
    for oid in tree.outcomes:
        q = question_of(tree, oid)
        standing = [
            r
            for r in resolutions
            if r.outcome == oid and not r.retracted and q.holds(r.resolved_on)
        ]
        if len(standing) > 1:
            shown = ", ".join(f"#{r.id} ({r.answer} on {r.resolved_on})" for r in standing)
            raise ScoreError(
                f"'{oid}' of tree '{tree.id}' has {len(standing)} resolutions that stand: "
                f"{shown}; retract all but one (scenariocast retract-resolution ID --reason ...)"
            )
        if standing:
            out[oid] = standing[0]
    return out


def opening_day(tree: Tree, readings: Sequence[Reading], resolved_on: dt.date) -> dt.date:
    """The first day of a question's open period, before its resolution day.

    The horizon's first day; for a tree without a horizon, the day its first reading was
    observed (of its indicators, from its sources, not retracted; the day before the
    resolution, if none).
    """
    last = resolved_on - DAY
    if tree.steps is not None:
        return min(tree.steps.start, last)
    days = [
        r.observed.end
        for r in readings
        if r.indicator in tree.indicators
        and r.source in tree.sources
        and not r.retracted
        and r.observed.end <= last
    ]
    return min(days) if days else last


def change_days(
    trees: Sequence[Tree], readings: Sequence[Reading], start: dt.date, end: dt.date
) -> list[dt.date]:
    """``start`` and every later day up to ``end`` on which a tree's forecast can change.

    A forecast as of a day changes only when a reading starts to count (its observed date)
    or stops (the day after it leaves an indicator's ``max_age_days`` or ``window_days``).
    """
    days = {start}
    for tree in trees:
        for r in readings:
            ind = tree.indicators.get(r.indicator)
            if ind is None or r.retracted:
                continue
            e = r.observed.end
            candidates = [e]
            rule = ind.spec.combine_rule()
            candidates += [
                e + dt.timedelta(days=d + 1) for d in (rule.max_age_days, rule.window_days) if d
            ]
            days.update(d for d in candidates if start < d <= end)
    return sorted(days)


# ---------------------------------------------------------------------------------------------
# scores


@dataclass(frozen=True)
class Recorded:
    """The latest forecast recorded in the ledger before the resolution, and its scores."""

    snapshot: int
    as_of: dt.date
    created_by: str | None
    probability: float
    brier: float
    log_score: float
    tree_changed: bool  # the tree file has changed since

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "snapshot": self.snapshot,
            "as_of": self.as_of.isoformat(),
            "by": self.created_by,
            "probability": self.probability,
            "brier": self.brier,
            "log_score": _finite(self.log_score),
            "tree_changed_since": self.tree_changed,
        }


@dataclass(frozen=True)
class ScoreRow:
    """One forecaster's score on one resolved outcome."""

    forecaster: str  # a tree id, or the name of a pool
    outcome: str
    happened: bool
    resolved_on: dt.date
    resolution: int
    as_of: dt.date  # the day before the resolution: the latest forecast scored
    probability: float
    brier: float
    log_score: float
    mean_brier: float  # time-averaged over the open period
    opens: dt.date
    days: int
    recorded: Recorded | None = None
    trees: tuple[str, ...] = ()  # for a pool: the trees pooled

    def answer_text(self) -> str:
        """``yes on 2026-09-05``."""
        return f"{'yes' if self.happened else 'no'} on {self.resolved_on}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        out: dict[str, Any] = {
            "forecaster": self.forecaster,
            "outcome": self.outcome,
            "happened": self.happened,
            "resolved_on": self.resolved_on.isoformat(),
            "resolution": self.resolution,
            "forecast_as_of": self.as_of.isoformat(),
            "probability": self.probability,
            "brier": self.brier,
            "log_score": _finite(self.log_score),
            "time_averaged_brier": self.mean_brier,
            "open_from": self.opens.isoformat(),
            "open_days": self.days,
            "recorded": self.recorded.to_dict() if self.recorded else None,
        }
        if self.trees:
            out["trees"] = list(self.trees)
        return out


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class CalibrationBin:
    """Forecasts between ``lo`` and ``hi``: how many, their mean, how often it happened."""

    lo: float
    hi: float
    n: int
    mean_forecast: float | None
    observed: float | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "from": self.lo,
            "to": self.hi,
            "n": self.n,
            "mean_forecast": self.mean_forecast,
            "observed_frequency": self.observed,
        }


def calibration_table(
    forecasts: Sequence[tuple[float, bool]], bins: int = 10
) -> tuple[CalibrationBin, ...]:
    """Forecasts in ``bins`` equal probability bins, each against how often it happened.

    Bin ``k`` holds ``k / bins <= p < (k + 1) / bins`` (the last also holds 1).
    """
    if bins < 1:
        raise QueryError(f"the calibration table needs at least one bin, got {bins}")
    groups: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for p, y in forecasts:
        groups[min(bins - 1, int(p * bins))].append((p, y))
    out = []
    for k, g in enumerate(groups):
        n = len(g)
        out.append(
            CalibrationBin(
                lo=k / bins,
                hi=(k + 1) / bins,
                n=n,
                mean_forecast=math.fsum(p for p, _ in g) / n if n else None,
                observed=sum(1 for _, y in g if y) / n if n else None,
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class Summary:
    """A forecaster's scores averaged over the outcomes it was scored on."""

    forecaster: str
    n: int
    brier: float
    log_score: float
    mean_brier: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "forecaster": self.forecaster,
            "outcomes": self.n,
            "brier": self.brier,
            "log_score": _finite(self.log_score),
            "time_averaged_brier": self.mean_brier,
        }


@dataclass(frozen=True)
class Scores:
    """Every forecaster's scores on the resolved outcomes, and their calibration."""

    forecasters: tuple[str, ...]
    rows: tuple[ScoreRow, ...]
    calibration: Mapping[str, tuple[CalibrationBin, ...]]
    unresolved: Mapping[str, tuple[str, ...]]  # tree id -> outcomes with no resolution
    extremizing: Mapping[str, Extremizing] = field(default_factory=dict)  # outcome -> factor

    def summary(self) -> list[Summary]:
        """Each forecaster's mean scores, in the order of :attr:`forecasters`."""
        out = []
        for f in self.forecasters:
            rows = [r for r in self.rows if r.forecaster == f]
            if not rows:
                continue
            n = len(rows)
            out.append(
                Summary(
                    forecaster=f,
                    n=n,
                    brier=math.fsum(r.brier for r in rows) / n,
                    log_score=math.fsum(r.log_score for r in rows) / n,
                    mean_brier=math.fsum(r.mean_brier for r in rows) / n,
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the ``score --json`` output)."""
        return {
            "forecasters": list(self.forecasters),
            "scores": [r.to_dict() for r in self.rows],
            "summary": [s.to_dict() for s in self.summary()],
            "calibration": {f: [b.to_dict() for b in bins] for f, bins in self.calibration.items()},
            "unresolved": {k: list(v) for k, v in self.unresolved.items()},
            "extremizing": {k: v.to_dict() for k, v in self.extremizing.items()},
        }


@dataclass(frozen=True)
class _Path:
    """One tree's forecast of one question, day by day (as steps)."""

    steps: tuple[tuple[dt.date, float], ...]

    def at(self, day: dt.date) -> float:
        value = self.steps[0][1]
        for d, p in self.steps:
            if d > day:
                break
            value = p
        return value


def _paths(
    model: ExactModel,
    readings: Sequence[Reading],
    outcomes: Sequence[str],
    start: dt.date,
    end: dt.date,
) -> dict[str, _Path]:
    days = change_days([model.tree], readings, start, end)
    timeline = outcome_timeline(model.tree, readings, dates=days, model=model)
    return {
        oid: _Path(tuple(zip(days, timeline.outcomes[oid][1:], strict=True))) for oid in outcomes
    }


def _recorded(
    tree: Tree, snapshots: Sequence[Snapshot], outcome: str, resolved_on: dt.date, happened: bool
) -> Recorded | None:
    best: Snapshot | None = None
    for s in snapshots:
        if s.tree_id != tree.id or s.is_what_if or s.as_of >= resolved_on:
            continue
        if outcome not in s.payload.get("outcomes", {}):
            continue
        if best is None or (s.as_of, s.id) > (best.as_of, best.id):
            best = s
    if best is None:
        return None
    p = float(best.payload["outcomes"][outcome])
    return Recorded(
        snapshot=best.id,
        as_of=best.as_of,
        created_by=best.created_by,
        probability=p,
        brier=brier(p, happened),
        log_score=log_score(p, happened),
        tree_changed=best.tree_hash != tree.file_hash,
    )


def _row(
    forecaster: str,
    res: OutcomeResolution,
    path: _Path,
    opens: dt.date,
    *,
    recorded: Recorded | None = None,
    trees: tuple[str, ...] = (),
) -> ScoreRow:
    last = res.resolved_on - DAY
    p = path.at(last)
    return ScoreRow(
        forecaster=forecaster,
        outcome=res.outcome,
        happened=res.happened,
        resolved_on=res.resolved_on,
        resolution=res.id,
        as_of=last,
        probability=p,
        brier=brier(p, res.happened),
        log_score=log_score(p, res.happened),
        mean_brier=time_averaged_brier(path.steps, opens, last, res.happened),
        opens=opens,
        days=(last - opens).days + 1,
        recorded=recorded,
        trees=trees,
    )


def score(
    trees: Sequence[Tree],
    readings: Sequence[Reading],
    resolutions: Sequence[OutcomeResolution],
    *,
    snapshots: Sequence[Snapshot] = (),
    weights: Sequence[float] | Mapping[str, float] | None = None,
    extremize: float | None = None,
    pools: bool = True,
    bins: int = 10,
    models: Mapping[str, ExactModel] | None = None,
) -> Scores:
    """Score each tree (and, with two or more, the pools) on the resolved outcomes.

    ``weights`` are the trees' weights in the pools (equal by default; the evidence pool's prior
    weights); ``extremize`` the extremized pool's factor (fitted, leave one out, when not given
    and enough questions are resolved); ``snapshots`` the ledger's history, for the recorded
    forecasts.

    Raises
    ------
    ScoreError
        When two standing resolutions answer one question.
    QueryError
        For bad weights or a bad extremizing factor.
    """
    ids = [t.id for t in trees]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise QueryError(f"tree '{dup}' is given twice")
    prepared = {t.id: (models or {}).get(t.id) or ExactModel(t) for t in trees}
    w_all = prior_weights(trees, weights) if trees else {}
    resolved = {t.id: resolved_questions(t, resolutions) for t in trees}
    rows: list[ScoreRow] = []
    paths: dict[tuple[str, str], _Path] = {}
    opens_of: dict[tuple[str, str], dt.date] = {}
    for t in trees:
        for oid, res in resolved[t.id].items():
            opens = opening_day(t, readings, res.resolved_on)
            path = _paths(prepared[t.id], readings, [oid], opens, res.resolved_on - DAY)[oid]
            paths[(t.id, oid)] = path
            opens_of[(t.id, oid)] = opens
            rows.append(
                _row(
                    t.id,
                    res,
                    path,
                    opens,
                    recorded=_recorded(t, snapshots, oid, res.resolved_on, res.happened),
                )
            )
    forecasters = list(ids)
    extremizing: dict[str, Extremizing] = {}
    if pools and len(trees) > 1:
        groups = _pooled_questions(trees, resolved)
        z_all = {
            key: _z(
                [paths[(tid, key[0])].at(res.resolved_on - DAY) for tid in members],
                _renormalised(w_all, members),
                members,
            )
            for key, (res, members) in groups.items()
        }
        for method, name in POOLS.items():
            for key, (res, members) in groups.items():
                oid = key[0]
                opens = max(opens_of[(tid, oid)] for tid in members)
                last = res.resolved_on - DAY
                days = sorted(
                    {d for tid in members for d, _ in paths[(tid, oid)].steps if d >= opens}
                    | {opens}
                )
                a = 1.0
                if method == "extremized":
                    others = [k for k in groups if k != key]
                    ext = choose_extremizing(
                        extremize,
                        [z_all[k] for k in others],
                        [groups[k][0].happened for k in others],
                    )
                    extremizing[oid] = ext
                    a = ext.value
                steps = []
                for d in days:
                    probs = [paths[(tid, oid)].at(d) for tid in members]
                    if method == "evidence":
                        ws = _evidence_weights(
                            [t for t in trees if t.id in members], readings, d, w_all, prepared
                        )
                    else:
                        ws = _renormalised(w_all, members)
                    steps.append(
                        (
                            d,
                            pool_probability(
                                method, probs, [ws[m] for m in members], extremize=a, names=members
                            ),
                        )
                    )
                if not any(d <= last for d, _ in steps):
                    continue
                rows.append(_row(name, res, _Path(tuple(steps)), opens, trees=tuple(members)))
            if any(r.forecaster == name for r in rows):
                forecasters.append(name)
    calibration = {
        f: calibration_table([(r.probability, r.happened) for r in rows if r.forecaster == f], bins)
        for f in forecasters
        if any(r.forecaster == f for r in rows)
    }
    unresolved = {
        t.id: tuple(o for o in t.outcomes if o not in resolved[t.id])
        for t in trees
        if any(o not in resolved[t.id] for o in t.outcomes)
    }
    return Scores(tuple(forecasters), tuple(rows), calibration, unresolved, extremizing)


def _renormalised(weights: Mapping[str, float], members: Sequence[str]) -> dict[str, float]:
    total = math.fsum(weights[m] for m in members)
    if total <= 0:
        return {m: 1.0 / len(members) for m in members}
    return {m: weights[m] / total for m in members}


def _z(probs: Sequence[float], weights: Mapping[str, float], members: Sequence[str]) -> float:
    try:
        return log_odds_average(probs, [weights[m] for m in members], members)
    except QueryError:
        return math.nan


def _pooled_questions(
    trees: Sequence[Tree], resolved: Mapping[str, Mapping[str, OutcomeResolution]]
) -> dict[tuple[str, int], tuple[OutcomeResolution, list[str]]]:
    """(outcome, resolution id) -> the resolution and the trees it scores, when two or more."""
    groups: dict[tuple[str, int], tuple[OutcomeResolution, list[str]]] = {}
    for t in trees:
        for oid, res in resolved[t.id].items():
            key = (oid, res.id)
            if key not in groups:
                groups[key] = (res, [])
            groups[key][1].append(t.id)
    return {k: v for k, v in groups.items() if len(v[1]) > 1}


def _evidence_weights(
    trees: Sequence[Tree],
    readings: Sequence[Reading],
    day: dt.date,
    prior: Mapping[str, float],
    models: Mapping[str, ExactModel],
) -> dict[str, float]:
    common = common_evidence(trees, readings, day)
    log_ml = {t.id: log_marginal_likelihood(models[t.id], common.evidence[t.id]) for t in trees}
    return posterior_weights(log_ml, _renormalised(prior, [t.id for t in trees]))


def extremizing_data(
    trees: Sequence[Tree],
    readings: Sequence[Reading],
    resolutions: Sequence[OutcomeResolution],
    weights: Mapping[str, float],
    *,
    models: Mapping[str, ExactModel] | None = None,
) -> tuple[list[float], list[bool]]:
    """The pooled log-odds and the answer of each resolved question every tree asks.

    Each tree's forecast is its latest before the resolution (as of the day before).
    """
    prepared = {t.id: (models or {}).get(t.id) or ExactModel(t) for t in trees}
    resolved = {t.id: resolved_questions(t, resolutions) for t in trees}
    groups = _pooled_questions(trees, resolved)
    members_all = [t.id for t in trees]
    z: list[float] = []
    y: list[bool] = []
    for (oid, _), (res, members) in sorted(groups.items()):
        if sorted(members) != sorted(members_all):
            continue
        day = res.resolved_on - DAY
        probs = [
            prepared[tid].forecast(readings, as_of=day, top=0).outcomes[oid].probability
            for tid in members
        ]
        value = _z(probs, _renormalised(weights, members), members)
        if math.isfinite(value):
            z.append(value)
            y.append(res.happened)
    return z, y
