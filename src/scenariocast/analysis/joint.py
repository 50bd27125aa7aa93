"""Joint probabilities of the outcomes with any few variables, given the evidence.

The value of information and the sensitivity analysis both need, for many small sets of
variables at once (an indicator's nodes at one step, a probability table's node and parents),
``P(vars | evidence)`` and ``P(outcome, vars | evidence)`` for every outcome. Each outcome's
probability is a signed sum of totals (:meth:`ExactModel.outcome_events`): a calibration of the
evidence with the outcome's states masked, or with the paths never in them masked (``ever``),
or with a counter of the steps (``at_least``). :class:`OutcomeJoints` runs those calibrations
once (those on the query's own junction tree in one batch) and reads any joint off them; the
cost is a few calibrations whatever the number of questions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scenariocast.engines.exact.junction import Calibrated, Factor, FloatArray
from scenariocast.engines.exact.model import ExactModel, Query, conflict_error


@dataclass(frozen=True)
class Term:
    """One calibration behind an outcome's probability, and its weight.

    ``P(outcome, vars | evidence) = sum over terms of weight * P_term(vars)``, with ``P_term``
    the normalised joint in the term's calibration (``member`` of a batched one) and ``weight``
    the term's sign times its total relative to the evidence's.
    """

    calibrated: Calibrated
    member: int | None
    weight: float
    log_z: float

    def joint(self, scope: Sequence[int]) -> FloatArray:
        """The normalised joint of ``scope`` in this term's calibration."""
        j = self.calibrated.joint(scope)
        return j if self.member is None else np.asarray(j[..., self.member])

    def marginals(self, scopes: Sequence[Sequence[int]]) -> list[FloatArray]:
        """The normalised joint of each scope (one per scope, in order)."""
        return [self.joint(s) for s in scopes]


class OutcomeJoints:
    """The calibrations that give ``P(vars | E)`` and ``P(outcome, vars | E)`` for any ``vars``.

    ``vars`` must lie within one clique of the query's junction tree (an indicator's nodes at
    one step, or a probability table's scope, always do). ``outcomes`` limits the outcomes.

    Raises
    ------
    EvidenceConflictError
        If the evidence has zero probability.
    """

    def __init__(
        self, model: ExactModel, query: Query, outcomes: Sequence[str] | None = None
    ) -> None:
        self.model = model
        self.query = query
        factors = query.factors()
        self.factors: list[Factor] = factors
        events = model.outcome_events(query)
        wanted = list(outcomes) if outcomes is not None else list(events)
        jt = query.structure.jt
        # the evidence, then every event with a mask on the query's own tree, in one batch
        batched: list[tuple[str, int]] = []
        for oid in wanted:
            for k, ev in enumerate(events[oid]):
                if ev.jt is jt and ev.extra:
                    batched.append((oid, k))
        size = 1 + len(batched)
        extra: list[Factor] = []
        for b, (oid, k) in enumerate(batched, start=1):
            for scope, values in events[oid][k].extra:
                arr = np.zeros((*values.shape, size))
                arr[..., b] = values
                extra.append((scope, arr))
        cal = jt.calibrate([*factors, *extra], size)
        log_zs = np.asarray(cal.log_z, dtype=np.float64)
        self.log_z = float(log_zs[0])
        if not math.isfinite(self.log_z):
            raise conflict_error(model.tree, query)
        self.evidence = Term(cal, 0, 1.0, self.log_z)
        self.terms: dict[str, list[Term]] = {}
        index = {key: b for b, key in enumerate(batched, start=1)}
        for oid in wanted:
            terms: list[Term] = []
            for k, ev in enumerate(events[oid]):
                if ev.jt is jt and not ev.extra:
                    terms.append(self.evidence if ev.sign == 1.0 else _scaled(self.evidence, -1))
                    continue
                if ev.jt is jt:
                    b = index[(oid, k)]
                    term_cal, member, log_z = cal, b, float(log_zs[b])
                else:
                    term_cal = ev.jt.calibrate([*factors, *ev.extra])
                    member, log_z = None, float(term_cal.log_z)
                weight = ev.sign * math.exp(log_z - self.log_z) if math.isfinite(log_z) else 0.0
                terms.append(Term(term_cal, member, weight, log_z))
            self.terms[oid] = terms

    @property
    def outcomes(self) -> list[str]:
        """The outcomes covered, in the tree's order."""
        return list(self.terms)

    def probability(self, outcome: str) -> float:
        """``P(outcome | evidence)``."""
        return min(1.0, max(0.0, math.fsum(t.weight for t in self.terms[outcome])))

    def joint(self, scope: Sequence[int]) -> FloatArray:
        """``P(scope | evidence)``: an array with one axis per variable of ``scope``."""
        return self.evidence.joint(scope)

    def outcome_joint(self, outcome: str, scope: Sequence[int]) -> FloatArray:
        """``P(outcome, scope | evidence)``: an array with one axis per variable of ``scope``."""
        total: FloatArray | None = None
        for t in self.terms[outcome]:
            if t.weight == 0.0:
                continue
            part = t.weight * t.joint(scope)
            total = part if total is None else total + part
        if total is None:
            return np.zeros(self.joint(scope).shape)
        return np.asarray(np.clip(total, 0.0, None), dtype=np.float64)


def _scaled(term: Term, sign: float) -> Term:
    return Term(term.calibrated, term.member, sign * term.weight, term.log_z)
