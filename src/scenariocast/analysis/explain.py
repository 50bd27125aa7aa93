"""What each report does to each outcome, in log-odds: its influence and its contribution.

A report (the readings of one source on one date, or with one report id) counts as a whole (it
is genuine or not as a whole), so it is explained as one line with its readings listed. Two
numbers are given for each report and outcome:

* its **influence** (leave one out): the outcome's log-odds given every report, minus its
  log-odds given every report but this one. This is what the report does to today's forecast,
  and the explanation ranks reports by it (:meth:`Explanation.strongest`, the text rendering,
  the report's "what moved the forecast").
* its **contribution** (sequential): the reports are added one at a time in the order they were
  observed, and a report's contribution is the change in log-odds when it is added. The
  contributions add up exactly to the change from prior to posterior (a telescoping sum).

Ranking by the sequential contribution misleads on a tree that evolves over time: when an old
reading is added nothing later has been seen yet, so it moves the forecast a lot, but later
readings of the same indicators screen it off (what they say about the state now makes it
nearly redundant), and without it today's forecast would be almost the same. Its influence says
so. The influences need not add up to the total change: readings that tell the same story each
have a small influence (each is nearly redundant given the others) though together they move the
forecast a lot, and readings that only count together can each have a large one.

The influences are read off the forecast with every report (:func:`_leave_one_out_by_division`:
each report's likelihood divided out of the joints of its scope with every outcome, from the
few calibrations of :class:`~scenariocast.analysis.joint.OutcomeJoints`), with a calibration
without the report (:func:`_leave_one_out`) where division does not hold (a likelihood of 0 in
some state, or one spanning too wide a range). The sequential contributions need one calibration
per report (:func:`_stepwise`, batched) and are computed only when first read
(:attr:`Contribution.log_odds`, :attr:`Contribution.probability_after`, ``to_dict``,
``to_frame``), for every report at once, and kept: ranking and the default text do not pay for
them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from scenariocast.analysis.joint import OutcomeJoints
from scenariocast.engines.exact import ExactModel, conflict_error
from scenariocast.engines.exact.junction import Factor, FloatArray
from scenariocast.engines.exact.model import Query
from scenariocast.engines.result import logit
from scenariocast.errors import EvidenceConflictError
from scenariocast.evidence.readings import Reading
from scenariocast.evidence.select import Evidence, Observation, Report, select_evidence
from scenariocast.spec.tree import Tree

if TYPE_CHECKING:
    import pandas as pd


IntArray = npt.NDArray[np.intp]


def _delta(after: float, before: float) -> float:
    a, b = logit(after), logit(before)
    if a == b:  # covers the same infinity on both sides
        return 0.0
    return a - b


@dataclass(frozen=True)
class Contribution:
    """What one report did to each outcome."""

    report: Report
    # the sequential numbers: from explain(), computed for every report when one is first read
    log_odds: Mapping[str, float]  # outcome id -> change in log-odds when added (sequential)
    probability_after: Mapping[str, float]  # outcome id -> probability once this is added
    influence: Mapping[str, float]  # outcome id -> log-odds with every report minus without it
    probability_without: Mapping[str, float]  # outcome id -> probability without this report

    @property
    def observations(self) -> tuple[Observation, ...]:
        """The report's counted readings."""
        return self.report.observations

    @property
    def readings(self) -> tuple[Reading, ...]:
        """The readings that count in the report."""
        return tuple(o.reading for o in self.report.observations)

    @property
    def reading(self) -> Reading:
        """The report's first reading."""
        return self.report.observations[0].reading


@dataclass(frozen=True)
class Explanation:
    """The contributions of every report to every outcome of a tree."""

    tree_id: str
    as_of: dt.date
    given: Mapping[str, str]
    prior: Mapping[str, float]
    posterior: Mapping[str, float]
    contributions: tuple[Contribution, ...]
    evidence: Evidence

    def total(self, outcome: str) -> float:
        """Change in log-odds from prior to posterior (the sum of the contributions)."""
        return _delta(self.posterior[outcome], self.prior[outcome])

    def strongest(self, outcome: str, n: int = 5) -> list[Contribution]:
        """The ``n`` reports with the largest influence on ``outcome`` in size, largest first.

        The influence (leave one out) is what the report does to today's forecast; ties keep
        the order observed.
        """
        ranked = sorted(self.contributions, key=lambda c: -abs(c.influence[outcome]))
        return [c for c in ranked[:n] if c.influence[outcome] != 0.0]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the ``explain --json`` output)."""
        return {
            "tree": self.tree_id,
            "as_of": self.as_of.isoformat(),
            "given": dict(self.given),
            "outcomes": {
                o: {
                    "prior": self.prior[o],
                    "probability": self.posterior[o],
                    "log_odds_change": _finite(self.total(o)),
                }
                for o in self.prior
            },
            "contributions": [
                {
                    "source": c.report.source,
                    "report": c.report.key,
                    "reliability": c.report.reliability,
                    "readings": [
                        {
                            "reading": o.reading.id,
                            "counted_with": list(o.folded),
                            **(
                                {"node": o.reading.indicator}
                                if o.reading.of_node
                                else {"indicator": o.indicator}
                            ),
                            "value": o.reading.value,
                            "observed": str(o.reading.observed),
                            "location": o.reading.location,
                            "source_url": o.reading.source_url,
                            "note": o.reading.note,
                        }
                        for o in c.observations
                    ],
                    "log_odds": {o: _finite(v) for o, v in c.log_odds.items()},
                    "probability_after": dict(c.probability_after),
                    "influence": {o: _finite(v) for o, v in c.influence.items()},
                    "probability_without": dict(c.probability_without),
                }
                for c in self.contributions
            ],
            "stale": [st.to_dict() for st in self.evidence.stale],
            "not_counted": [
                {
                    "reading": e.reading.id,
                    ("node" if e.reading.of_node else "indicator"): e.reading.indicator,
                    "kind": e.kind,
                    "reason": e.reason,
                }
                for e in self.evidence.excluded
            ],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per report: per outcome, its contribution and its influence, in log-odds.

        The contribution as added is in a column named by the outcome, the influence (leave one
        out) in ``OUTCOME influence``.
        """
        import pandas as pd

        rows = [
            {
                "source": c.report.source,
                "report": c.report.key,
                "observed": c.report.last_day,
                "readings": ", ".join(str(r.id) for r in c.readings),
                "indicators": ", ".join(sorted({o.indicator for o in c.observations})),
                **{f"{o}": v for o, v in c.log_odds.items()},
                **{f"{o} influence": v for o, v in c.influence.items()},
            }
            for c in self.contributions
        ]
        return pd.DataFrame(rows)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def explain(
    tree: Tree,
    readings: Sequence[Reading],
    *,
    given: Mapping[str, str] | None = None,
    as_of: dt.date | None = None,
    outcomes: Sequence[str] | None = None,
    model: ExactModel | None = None,
) -> Explanation:
    """Influence and contribution of each report on each outcome (all outcomes unless named).

    The influences are computed at once; the sequential contributions
    (:attr:`Contribution.log_odds`, :attr:`Contribution.probability_after`) on first use, for
    every report together, and kept.
    """
    from scenariocast.engines.exact.network import check_outcome

    model = model or ExactModel(tree)
    as_of = as_of or dt.date.today()
    ids = list(outcomes) if outcomes else list(tree.outcomes)
    for o in ids:
        check_outcome(tree, o)
    evidence = select_evidence(tree, readings, as_of)
    query = model.query(evidence, given)
    prior = _prior(model, query, ids)
    if query.report_factors:
        joints = OutcomeJoints(model, query, ids)  # raises the conflict if there is one
        posterior = {o: joints.probability(o) for o in ids}
        without = _leave_one_out_by_division(model, query, ids, joints)
    else:
        posterior, without = dict(prior), []
    sequence = _Sequence(model, query, ids)
    contributions = tuple(
        Contribution(
            report=rep,
            log_odds=_Lazy(sequence, k, added=True),
            probability_after=_Lazy(sequence, k, added=False),
            influence={o: _delta(posterior[o], rest[o]) for o in ids},
            probability_without=rest,
        )
        for k, (rep, rest) in enumerate(zip(evidence.reports, without, strict=True))
    )
    return Explanation(
        tree_id=tree.id,
        as_of=as_of,
        given=query.given,
        prior=prior,
        posterior=posterior,
        contributions=contributions,
        evidence=evidence,
    )


def _prior(model: ExactModel, query: Query, ids: Sequence[str]) -> dict[str, float]:
    """The probability of each outcome given the assumptions alone (no report)."""
    factors = list(query.base)
    cal = query.structure.jt.calibrate(factors)
    if not math.isfinite(float(cal.log_z)):
        raise EvidenceConflictError(
            f"the assumptions {query.given} have zero probability in tree '{model.tree.id}'"
        )
    every = model.outcome_probabilities(query, factors, cal)
    return {o: float(every[o]) for o in ids}


class _Sequence:
    """The forecasts after the first ``k`` reports (:func:`_stepwise`), computed on first use."""

    def __init__(self, model: ExactModel, query: Query, ids: Sequence[str]) -> None:
        self.model = model
        self.query = query
        self.ids = tuple(ids)
        self._steps: list[dict[str, float]] | None = None

    @property
    def computed(self) -> bool:
        return self._steps is not None

    def steps(self) -> list[dict[str, float]]:
        if self._steps is None:
            self._steps = _stepwise(self.model, self.query, self.ids)
        return self._steps


class _Lazy(Mapping[str, float]):
    """One report's sequential numbers, read off :class:`_Sequence` when first looked at.

    ``added``: the change in log-odds when the ``k``-th report is added after those before
    it; otherwise the probability once it is added.
    """

    def __init__(self, sequence: _Sequence, k: int, *, added: bool) -> None:
        self._sequence = sequence
        self._k = k
        self._added = added
        self._values: dict[str, float] | None = None

    def _get(self) -> dict[str, float]:
        if self._values is None:
            steps = self._sequence.steps()
            after = steps[self._k + 1]
            if self._added:
                before = steps[self._k]
                self._values = {o: _delta(after[o], before[o]) for o in self._sequence.ids}
            else:
                self._values = {o: after[o] for o in self._sequence.ids}
        return self._values

    def __getitem__(self, key: str) -> float:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sequence.ids)

    def __len__(self) -> int:
        return len(self._sequence.ids)

    def __repr__(self) -> str:
        if self._values is None and not self._sequence.computed:
            return "<sequential contributions, not computed yet>"
        return repr(self._get())


#: Largest range (in nats) of a report's log factor whose influence is taken by division: over
#: it, the beliefs given every report could underflow where the report's factor is low.
_DIVISION_RANGE = 500.0
#: Below this, an outcome's probability without the report is recomputed (by calibration): near
#: the smallest floating-point numbers the division's terms could have underflowed.
_DIVISION_FLOOR = 1e-40


def _leave_one_out_by_division(
    model: ExactModel, query: Query, ids: Sequence[str], joints: OutcomeJoints
) -> list[dict[str, float]]:
    """What :func:`_leave_one_out` gives, by dividing each report out of the joints given all.

    With ``f`` a report's log factor over its scope ``s`` (one clique holds it) and ``E`` every
    report, ``P(O | E without it) = sum_x P(O, x | E) exp(-f(x)) / sum_x P(x | E) exp(-f(x))``
    over the states ``x`` of ``s``: the joints of every scope with every outcome come from
    :class:`~scenariocast.analysis.joint.OutcomeJoints` (a few calibrations), so leaving each
    report out costs a product of small arrays, not a calibration. ``exp(max f - f)`` is at
    least 1, so the denominator is at least 1.

    This holds where ``f`` is finite wherever ``P(x | E without it)`` can be positive: a report
    whose factor has a ``-inf`` (a reading impossible in some state) or a range over
    :data:`_DIVISION_RANGE`, a scope whose joints cannot be read, and a result under
    :data:`_DIVISION_FLOOR` are computed by :func:`_leave_one_out` instead.
    """
    reports = query.report_factors
    results: list[dict[str, float] | None] = [None] * len(reports)
    fallback: list[int] = []
    where = _by_scope(reports)
    for scope, at in where.items():
        try:
            # a batched calibration's members of probability 0 (an event given the evidence)
            # have no joint: only the evidence's, and the terms of positive weight, are read
            with np.errstate(invalid="ignore"):
                now = np.asarray(joints.joint(scope), dtype=np.float64)
                with_outcome = [np.asarray(joints.outcome_joint(o, scope)).ravel() for o in ids]
        except (ValueError, KeyError, IndexError):  # not within one clique of a tree read on
            fallback.extend(at)
            continue
        rows: dict[int, int] = {}  # id of a table -> its row (reports may share a table)
        tables: list[FloatArray] = []
        members: list[list[int]] = []
        for i in at:
            table = reports[i][1]
            key = id(table)
            if key in rows:
                members[rows[key]].append(i)
                continue
            values = np.broadcast_to(np.asarray(table, dtype=np.float64), now.shape).ravel()
            if not np.isfinite(values).all() or values.max() - values.min() > _DIVISION_RANGE:
                fallback.append(i)
                continue
            rows[key] = len(tables)
            tables.append(values)
            members.append([i])
        if not tables:
            continue
        logs = np.stack(tables)  # one row per distinct table, one column per state of the scope
        weights = np.exp(logs.max(axis=1, keepdims=True) - logs)  # exp(-f), scaled to >= 1
        # the denominator and the numerators summed alike (not by a matrix product, whose order
        # of summation may differ between columns): an outcome whose joint is the scope's own
        # (certain given every report) gets exactly 1 without the report, as recalibrating does
        joint = np.stack([now.ravel(), *with_outcome])  # rows: the scope, then each outcome
        sums = (weights[:, np.newaxis, :] * joint[np.newaxis]).sum(axis=-1)
        probs = np.clip(sums[:, 1:] / sums[:, :1], 0.0, 1.0)  # rows: tables; columns: outcomes
        for row, group in enumerate(members):
            if not np.isfinite(probs[row]).all() or (probs[row] < _DIVISION_FLOOR).any():
                fallback.extend(group)
                continue
            rest = {o: float(probs[row, j]) for j, o in enumerate(ids)}
            for i in group:
                results[i] = rest
    if fallback:
        fallback.sort()
        for i, rest in zip(fallback, _leave_one_out(model, query, ids, only=fallback), strict=True):
            results[i] = rest
    out: list[dict[str, float]] = []
    for r in results:
        assert r is not None
        out.append(r)
    return out


def _by_scope(reports: Sequence[Factor]) -> dict[tuple[int, ...], list[int]]:
    """The positions of the reports on each scope, in the order observed."""
    where: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, (scope, _) in enumerate(reports):
        where[scope].append(i)
    return where


def _front_sums(stacked: FloatArray) -> FloatArray:
    """Running sums of factors stacked on a first axis: row ``j`` sums the first ``j``."""
    zero = np.zeros((1, *stacked.shape[1:]))
    return np.concatenate([zero, np.cumsum(stacked, axis=0)])


#: At most this many numbers in one batch of calibrations (about 32 MB of beliefs).
_BATCH_CELLS = 4_000_000


def _stepwise(model: ExactModel, query: Query, ids: Sequence[str]) -> list[dict[str, float]]:
    """The probability of each outcome after the first ``k`` reports, for k = 0 .. n.

    The posterior after ``k`` reports is the calibration on the prior, the assumptions and
    the first ``k`` report factors, summed per scope in the order observed (as
    :meth:`~scenariocast.engines.exact.model.Query.factors` sums them). Rather than one
    calibration per ``k``, each summing ``k`` factors (quadratic in the number of reports),
    every scope's running sums are taken once (a cumulative sum, adding the factors in the
    same order) and the calibrations run in batches along a last, batch axis.
    """
    tree = model.tree
    jt = query.structure.jt
    reports = query.report_factors
    n = len(reports)
    # each scope's running sums: row j is the sum of its first j factors (row 0: none)
    where = _by_scope(reports)
    running: dict[tuple[int, ...], tuple[IntArray, FloatArray]] = {}
    for scope, at in where.items():
        stacked = np.stack([reports[i][1] for i in at])
        running[scope] = (np.asarray(at, dtype=np.intp), _front_sums(stacked))
    cells = sum(int(np.prod(shape)) for shape in jt.shapes) + sum(
        int(np.prod(sums.shape[1:])) for _, sums in running.values()
    )
    size = max(1, min(n + 1, _BATCH_CELLS // max(cells, 1)))
    out: list[dict[str, float]] = []
    for first in range(0, n + 1, size):
        ks = np.arange(first, min(first + size, n + 1))
        factors: list[Factor] = list(query.base)
        for scope, (positions, sums) in running.items():
            taken = np.searchsorted(positions, ks, side="left")  # of its reports among the first k
            factors.append((scope, np.moveaxis(sums[taken], 0, -1)))
        cal = jt.calibrate(factors, len(ks))
        finite = np.isfinite(cal.log_z)
        if not finite.all():
            k = int(ks[np.argmin(finite)])
            if k == 0:
                raise EvidenceConflictError(
                    f"the assumptions {query.given} have zero probability in tree '{tree.id}'"
                )
            raise conflict_error(tree, query)
        every = model.outcome_probabilities(query, factors, cal)
        for b in range(len(ks)):
            out.append({o: float(every[o][b]) for o in ids})
    return out


def _leave_one_out(
    model: ExactModel, query: Query, ids: Sequence[str], only: Sequence[int] | None = None
) -> list[dict[str, float]]:
    """The probability of each outcome given every report but the ``i``-th, for each ``i``.

    ``only``: just these reports (indices into the query's reports), in that order; the
    calibrations are those of these reports alone.

    Each scope's factor is the sum of its reports' factors (as
    :meth:`~scenariocast.engines.exact.model.Query.factors` sums them); leaving a report out
    changes only its own scope's sum, to the sum of the others there: the running sum before it
    plus the running sum after it (rather than the total minus its factor, which is undefined
    where a factor is ``-inf``). Reports with the same table on the same scope (the model keeps
    one table for reports of the same readings) leave the same forecast, which is calibrated
    once. The calibrations run in batches along a last, batch axis, grouped by scope: a scope no
    member of a batch leaves out keeps its total without a batch axis, so the part of the tree
    only it reaches is computed once for the batch.

    Leaving a report out only relaxes the evidence, so each of these is possible when every
    report together is (:func:`_stepwise` raises the conflict otherwise).
    """
    tree = model.tree
    jt = query.structure.jt
    reports = query.report_factors
    wanted = list(range(len(reports))) if only is None else list(only)
    if not wanted:
        return []
    chosen = set(wanted)
    where = _by_scope(reports)
    # each scope's running sums from the front (row j: its first j factors) and from the back
    # (row j: its factors from the j-th on)
    sums: dict[tuple[int, ...], tuple[FloatArray, FloatArray]] = {}
    for scope, at in where.items():
        stacked = np.stack([reports[i][1] for i in at])
        sums[scope] = (_front_sums(stacked), _front_sums(stacked[::-1])[::-1])
    # one calibration per distinct (scope, table); `firsts` in scope order
    firsts: list[tuple[tuple[int, ...], int]] = []  # (scope, position among its reports)
    same: dict[int, int] = {}  # report -> its entry in firsts
    for scope, at in where.items():
        seen: dict[int, int] = {}
        for pos, i in enumerate(at):
            if i not in chosen:
                continue
            key = id(reports[i][1])
            if key not in seen:
                seen[key] = len(firsts)
                firsts.append((scope, pos))
            same[i] = seen[key]
    cells = sum(int(np.prod(shape)) for shape in jt.shapes) + sum(
        int(np.prod(front.shape[1:])) for front, _ in sums.values()
    )
    size = max(1, min(len(firsts), _BATCH_CELLS // max(cells, 1)))
    results: list[dict[str, float]] = []
    for start in range(0, len(firsts), size):
        chunk = firsts[start : start + size]
        members: dict[tuple[int, ...], tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        for b, (scope, pos) in enumerate(chunk):
            members[scope][0].append(b)
            members[scope][1].append(pos)
        factors: list[Factor] = list(query.base)
        for scope, (front, back) in sums.items():
            total = front[-1]
            if scope not in members:
                factors.append((scope, total))
                continue
            rows, positions = members[scope]
            table = np.repeat(total[np.newaxis], len(chunk), axis=0)
            left = np.asarray(positions, dtype=np.intp)
            table[rows] = front[left] + back[left + 1]
            factors.append((scope, np.moveaxis(table, 0, -1)))
        cal = jt.calibrate(factors, len(chunk))
        if not np.isfinite(cal.log_z).all():  # cannot happen when every report together is possible
            raise conflict_error(tree, query)
        every = model.outcome_probabilities(query, factors, cal)
        for b in range(len(chunk)):
            results.append({o: float(np.broadcast_to(every[o], (len(chunk),))[b]) for o in ids})
    return [results[same[i]] for i in wanted]
