"""Comparing scenario trees on one ledger: where they disagree and which the evidence favours.

Two forecasters can read the same readings through different trees. :func:`compare` puts them
side by side:

- **outcomes**: each shared outcome's prior and probability in every tree, and the average of
  the trees' probabilities weighted by how well each predicted the evidence;
- **structure**: nodes, states, edges, tables, indicators, sources and outcomes that differ
  (:func:`structure_differences`);
- **evidence fit**: the log marginal likelihood of the readings that *every* tree counts, in
  the units the readings are entered in, the Bayes factors between the trees and their
  posterior weights; each common report's log predictive score in observed order (given the
  reports before it), which add up to the log marginal likelihood.

**Which readings enter the Bayes factor.** A Bayes factor compares two trees' predictions of
the same data. Each tree chooses its readings by its own rules (its indicators and sources, its
``combine`` rules and windows, which of two linked readings stands for the event), so the
readings it counts can differ from another tree's. The comparison uses the readings that every
tree counts, found as a fixed point: select each tree's evidence, keep the readings that every
tree counts, select again from those alone, until nothing changes (then every tree counts
exactly those readings, grouped into the same reports). A reading is also left out when the
trees read it as different kinds of evidence (a density in one, a probability in another,
which cannot be compared). Readings that only some trees count are listed, with each other
tree's reason, and move those trees' own forecasts but not the Bayes factor.

**Units.** A density depends on the units of what it describes: a tree that reads a price
through ``read_as: log`` gives the density of the log price. Every continuous reading's density
is taken in the units the reading is entered in (the Jacobian of the ``read_as`` transform is
added: ``-log x`` for ``log`` and ``log_change``, ``log(100 / baseline)`` for ``pct_change``),
so trees that read one indicator through different transforms are still compared on the same
data. The term does not depend on the states, so it changes no forecast.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scenariocast.engines.exact import ExactModel
from scenariocast.engines.result import ForecastResult
from scenariocast.errors import QueryError
from scenariocast.evidence.likelihood import logsumexp
from scenariocast.evidence.readings import Reading
from scenariocast.evidence.select import Evidence, Observation, Report, select_evidence
from scenariocast.evidence.values import parse_value
from scenariocast.spec.model import CONTINUOUS_KINDS
from scenariocast.spec.tree import Tree


class ComparisonError(QueryError):
    """Trees that cannot be compared: fewer than two, the same id twice, no shared outcome."""


# ---------------------------------------------------------------------------------------------
# weights


def prior_weights(
    trees: Sequence[Tree], weights: Sequence[float] | Mapping[str, float] | None
) -> dict[str, float]:
    """Each tree's prior weight, normalised to add up to one (equal when ``weights`` is None).

    ``weights`` gives one non-negative number per tree, in order, or by tree id.

    Raises
    ------
    QueryError
        For a weight that is negative or not finite, a count that does not match the trees, an
        id that is not one of the trees', or weights that are all zero.
    """
    ids = [t.id for t in trees]
    if weights is None:
        raw = dict.fromkeys(ids, 1.0)
    elif isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(ids))
        if unknown:
            raise QueryError(
                f"--weights names '{unknown[0]}', which is not one of the trees ({', '.join(ids)})"
            )
        missing = [i for i in ids if i not in weights]
        if missing:
            raise QueryError(f"--weights gives no weight for tree '{missing[0]}'")
        raw = {i: float(weights[i]) for i in ids}
    else:
        if len(weights) != len(ids):
            raise QueryError(
                f"--weights gives {len(weights)} weight{'s' if len(weights) != 1 else ''} for "
                f"{len(ids)} trees: give one per tree, in the order the trees are given"
            )
        raw = {i: float(w) for i, w in zip(ids, weights, strict=True)}
    for i, w in raw.items():
        if not math.isfinite(w) or w < 0:
            raise QueryError(f"the weight of tree '{i}' must be a number >= 0, got {w}")
    total = math.fsum(raw.values())
    if total <= 0:
        raise QueryError("the weights are all zero: give at least one tree a positive weight")
    return {i: w / total for i, w in raw.items()}


def parse_weights(text: str | None) -> list[float] | dict[str, float] | None:
    """``"2,1"`` (one per tree, in order) or ``"nk-2026=2,other=1"`` (by tree id).

    Raises
    ------
    QueryError
        For a value that is not a number, or a mix of the two forms.
    """
    if text is None or not text.strip():
        return None
    items = [x.strip() for x in text.split(",") if x.strip()]
    named = ["=" in x for x in items]
    if any(named) and not all(named):
        raise QueryError(f"--weights takes 2,1 or ID=2,ID=1, not a mix: '{text}'")

    def number(x: str) -> float:
        try:
            return float(x)
        except ValueError:
            raise QueryError(f"--weights: '{x}' is not a number") from None

    if all(named):
        out: dict[str, float] = {}
        for x in items:
            key, _, value = x.partition("=")
            if key.strip() in out:
                raise QueryError(f"--weights names '{key.strip()}' twice")
            out[key.strip()] = number(value.strip())
        return out
    return [number(x) for x in items]


def posterior_weights(
    log_evidence: Mapping[str, float], prior: Mapping[str, float]
) -> dict[str, float]:
    """``P(tree | readings)``: the prior weights times the marginal likelihoods, normalised."""
    ids = list(log_evidence)
    with np.errstate(divide="ignore"):
        logs = np.array([math.log(prior[i]) if prior[i] > 0 else -math.inf for i in ids])
    logs = logs + np.array([log_evidence[i] for i in ids])
    total = float(logsumexp(logs))
    if not math.isfinite(total):
        return dict(prior)
    return {i: float(math.exp(v - total)) for i, v in zip(ids, logs, strict=True)}


# ---------------------------------------------------------------------------------------------
# the readings every tree counts


def _kind_class(tree: Tree, indicator: str) -> str:
    return "density" if tree.readable[indicator].spec.kind in CONTINUOUS_KINDS else "probability"


@dataclass(frozen=True)
class LeftOut:
    """A reading that some trees count and the comparison leaves out, with why.

    ``counted_by`` are the trees that count it; ``reasons`` says, for every other tree, why it
    does not (or, when every tree counts it, why the trees do not count it as the same data).
    """

    reading: Reading
    counted_by: tuple[str, ...]
    reasons: Mapping[str, str]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        r = self.reading
        return {
            "reading": r.id,
            "indicator": r.indicator,
            "value": r.value,
            "observed": str(r.observed),
            "source": r.source,
            "location": r.location,
            "counted_by": list(self.counted_by),
            "reasons": dict(self.reasons),
        }


@dataclass(frozen=True)
class CommonEvidence:
    """The readings every tree counts, and each tree's evidence on them alone.

    ``readings`` are the common readings (the representatives each tree counts; their repeats
    and linked readings are not among them), ``evidence`` each tree's selection from them
    (the same readings, in the same reports), ``full`` each tree's selection from every
    reading, ``left_out`` the readings some tree counts that are not common.
    """

    as_of: dt.date
    readings: tuple[Reading, ...]
    evidence: Mapping[str, Evidence]
    full: Mapping[str, Evidence]
    left_out: tuple[LeftOut, ...]

    @property
    def reports(self) -> tuple[Report, ...]:
        """The common reports, in observed order (the same for every tree)."""
        first = next(iter(self.evidence.values()))
        return first.reports


def _counted(ev: Evidence) -> set[int]:
    return {o.reading.id for o in ev.observations}


def common_evidence(
    trees: Sequence[Tree], readings: Sequence[Reading], as_of: dt.date
) -> CommonEvidence:
    """The readings every tree counts as of ``as_of`` (the fixed point in the module's notes)."""
    full = {t.id: select_evidence(t, readings, as_of) for t in trees}
    pool: list[Reading] = list(readings)
    mismatched: dict[int, str] = {}
    evidence = full
    while True:
        sets = [_counted(evidence[t.id]) for t in trees]
        common = set.intersection(*sets) if sets else set()
        for rid in sorted(common):
            indicator = next(
                o.indicator for o in evidence[trees[0].id].observations if o.reading.id == rid
            )
            kinds = {t.id: _kind_class(t, indicator) for t in trees}
            if len(set(kinds.values())) > 1:
                shown = ", ".join(f"a {k} in '{i}'" for i, k in kinds.items())
                mismatched[rid] = f"read as different kinds of evidence ({shown}): not comparable"
                common.discard(rid)
        if all(s == common for s in sets):
            break
        pool = [r for r in pool if r.id in common]
        evidence = {t.id: select_evidence(t, pool, as_of) for t in trees}
    chosen = tuple(r for r in pool if r.id in common)
    left: list[LeftOut] = []
    reasons_by_tree = {
        tid: {e.reading.id: e.reason for e in ev.excluded} for tid, ev in full.items()
    }
    counted_full = {tid: _counted(ev) for tid, ev in full.items()}
    by_id = {r.id: r for r in readings}
    for rid in sorted(set().union(*counted_full.values()) - common):
        counted_by = tuple(t.id for t in trees if rid in counted_full[t.id])
        reasons: dict[str, str] = {}
        for t in trees:
            if rid in counted_full[t.id]:
                continue
            reasons[t.id] = reasons_by_tree[t.id].get(rid, "not counted")
        if not reasons:
            why = mismatched.get(
                rid,
                "counted by every tree, but not as the same evidence once the readings only "
                "some trees count are set aside (a linked or superseded reading chosen "
                "differently)",
            )
            reasons = {"all": why}
        left.append(LeftOut(by_id[rid], counted_by, reasons))
    return CommonEvidence(as_of, chosen, evidence, full, tuple(left))


# ---------------------------------------------------------------------------------------------
# scores in the units readings are entered in


def log_jacobian(tree: Tree, observation: Observation) -> float:
    """``log |dq/dx|`` of the tree's ``read_as`` transform ``q`` at the reading as entered.

    Adding it to the density of the transformed value gives the density of the value as
    entered; 0 for discrete readings and for readings taken as they are.
    """
    spec = tree.readable[observation.indicator].spec
    if spec.kind not in CONTINUOUS_KINDS or spec.read_as is None:
        return 0.0
    transform = spec.read_as.transform
    if transform == "identity":
        return 0.0
    if transform == "pct_change":
        return math.log(100.0 / float(spec.read_as.baseline or 1.0))
    x = parse_value(spec.kind, observation.reading.value, spec.categories)
    return -math.log(x)  # log and log_change: d/dx log(x / b) = 1 / x


def report_scores(model: ExactModel, evidence: Evidence) -> list[float]:
    """Each report's log predictive score given the reports before it, in observed order.

    ``log p(report i | reports 1 .. i-1)`` with the states summed out, in the units readings
    are entered in; they add up to the log marginal likelihood of the evidence.
    """
    if not evidence.reports:
        return []
    query = model.query(evidence)
    in_order, _ = model.report_log_likelihoods(query, left_out=False)
    tree = model.tree
    return [
        float(score) + math.fsum(log_jacobian(tree, o) for o in rep.observations)
        for score, rep in zip(in_order, evidence.reports, strict=True)
    ]


def log_marginal_likelihood(model: ExactModel, evidence: Evidence) -> float:
    """``log p(evidence | tree)`` in the units readings are entered in (one calibration)."""
    if not evidence.reports:
        return 0.0
    query = model.query(evidence)
    jt = query.structure.jt
    log_z = float(jt.log_z(query.factors()))
    base = float(jt.log_z(list(query.base)))
    jac = math.fsum(log_jacobian(model.tree, o) for o in evidence.observations)
    return log_z - base + jac


# ---------------------------------------------------------------------------------------------
# structure


@dataclass(frozen=True)
class Difference:
    """One way two trees differ: ``what`` (node, edge, table, indicator...), ``name``, detail.

    ``size`` is the largest difference between two probabilities, where one is measured.
    """

    what: str
    name: str
    detail: str
    size: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {"what": self.what, "name": self.name, "detail": self.detail, "size": self.size}


@dataclass(frozen=True)
class StructureDiff:
    """How ``other`` differs from ``reference``: one entry per difference."""

    reference: str
    other: str
    differences: tuple[Difference, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "reference": self.reference,
            "other": self.other,
            "differences": [d.to_dict() for d in self.differences],
        }


def _aligned(a: np.ndarray[Any, Any], pa: Sequence[str], pb: Sequence[str]) -> np.ndarray[Any, Any]:
    """Table ``a`` (parent axes in order ``pa``, then the node) with its axes in order ``pb``."""
    order = [list(pa).index(p) for p in pb]
    return np.transpose(a, (*order, len(pa)))


def _words(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "none"


def structure_differences(
    a: Tree, b: Tree, *, priors: Mapping[str, ForecastResult] | None = None
) -> StructureDiff:
    """Every difference of ``b`` from ``a``: nodes, states, edges, tables, indicators, sources.

    ``priors`` (tree id -> a forecast) adds, for nodes in both with the same states, how far
    their prior distributions (at the forecast's as-of step) differ.
    """
    out: list[Difference] = []
    na, nb = a.nodes, b.nodes
    for name in na:
        if name not in nb:
            out.append(Difference("node", name, f"only in '{a.id}'"))
    for name in nb:
        if name not in na:
            out.append(Difference("node", name, f"only in '{b.id}'"))
    edges_a = {(p, n) for n, node in na.items() for p in node.parents}
    edges_b = {(p, n) for n, node in nb.items() for p in node.parents}
    for p, n in sorted(edges_a - edges_b):
        out.append(Difference("edge", f"{p} -> {n}", f"only in '{a.id}'"))
    for p, n in sorted(edges_b - edges_a):
        out.append(Difference("edge", f"{p} -> {n}", f"only in '{b.id}'"))
    for name, x in na.items():
        y = nb.get(name)
        if y is None:
            continue
        if x.states != y.states:
            out.append(
                Difference(
                    "states",
                    name,
                    f"{_words(x.states)} in '{a.id}'; {_words(y.states)} in '{b.id}'",
                )
            )
            continue
        if x.kind != y.kind:
            out.append(Difference("time", name, f"{x.kind} in '{a.id}'; {y.kind} in '{b.id}'"))
        same_parents = set(x.parents) == set(y.parents) and all(
            na[p].states == nb[p].states for p in x.parents
        )
        if not same_parents and set(x.parents) == set(y.parents):
            out.append(
                Difference(
                    "probabilities", name, "the same parents, with other states: not compared"
                )
            )
        if same_parents:
            diff = float(np.max(np.abs(_aligned(x.cpt, x.parents, y.parents) - y.cpt)))
            if diff > 1e-12:
                out.append(
                    Difference("probabilities", name, "the same parents, other numbers", diff)
                )
            if x.transition is not None and y.transition is not None:
                ta = np.transpose(
                    x.transition,
                    (0, *(1 + list(x.parents).index(p) for p in y.parents), len(x.parents) + 1),
                )
                tdiff = float(np.max(np.abs(ta - y.transition)))
                if tdiff > 1e-12:
                    out.append(
                        Difference("transitions", name, "the same parents, other numbers", tdiff)
                    )
        if priors is not None and a.id in priors and b.id in priors:
            pa_ = priors[a.id].prior_nodes.get(name)
            pb_ = priors[b.id].prior_nodes.get(name)
            if pa_ and pb_:
                gap = max(abs(pa_[s] - pb_[s]) for s in x.states)
                if gap > 0.005:
                    shown = "; ".join(f"{s} {pa_[s]:.0%} vs {pb_[s]:.0%}" for s in x.states)
                    out.append(Difference("prior", name, shown, gap))
    for name, ia in a.indicators.items():
        ib = b.indicators.get(name)
        if ib is None:
            out.append(Difference("indicator", name, f"only in '{a.id}'"))
            continue
        sa_, sb_ = ia.spec, ib.spec
        notes: list[str] = []
        if sa_.kind != sb_.kind:
            notes.append(f"kind {sa_.kind} vs {sb_.kind}")
        if tuple(ia.scope) != tuple(ib.scope):
            notes.append(f"depends on {_words(ia.scope)} vs {_words(ib.scope)}")
        ra = sa_.read_as.model_dump() if sa_.read_as else None
        rb = sb_.read_as.model_dump() if sb_.read_as else None
        if ra != rb:
            notes.append("read differently (read_as)")
        if sa_.combine_rule() != sb_.combine_rule():
            ca, cb = sa_.combine_rule(), sb_.combine_rule()
            notes.append(
                f"combined differently ({_combine(ca.model_dump())} vs {_combine(cb.model_dump())})"
            )
        if sa_.correlation() != sb_.correlation():
            notes.append(f"within-report correlation {sa_.correlation()} vs {sb_.correlation()}")
        size = None
        if not notes and set(ia.params) == set(ib.params):
            gaps = [
                float(np.max(np.abs(ia.params[k] - ib.params[k])))
                for k in ia.params
                if ia.params[k].shape == ib.params[k].shape
            ]
            if gaps and max(gaps) > 1e-12:
                notes.append("the same nodes, other parameters")
                size = max(gaps)
        if notes:
            out.append(Difference("indicator", name, "; ".join(notes), size))
    for name in b.indicators:
        if name not in a.indicators:
            out.append(Difference("indicator", name, f"only in '{b.id}'"))
    for name, src in a.sources.items():
        other = b.sources.get(name)
        if other is None:
            out.append(Difference("source", name, f"only in '{a.id}'"))
        elif src.mean_reliability != other.mean_reliability:
            out.append(
                Difference(
                    "source",
                    name,
                    f"reliability {src.mean_reliability:g} vs {other.mean_reliability:g}",
                    abs(src.mean_reliability - other.mean_reliability),
                )
            )
    for name in b.sources:
        if name not in a.sources:
            out.append(Difference("source", name, f"only in '{b.id}'"))
    for oid, oa in a.outcomes.items():
        ob = b.outcomes.get(oid)
        if ob is None:
            out.append(Difference("outcome", oid, f"only in '{a.id}'"))
            continue
        keys = ("node", "states", "timing", "k", "resolve_by")
        changed = [k for k in keys if getattr(oa, k) != getattr(ob, k)]
        if changed:
            shown = "; ".join(f"{k} {getattr(oa, k)} vs {getattr(ob, k)}" for k in changed)
            out.append(Difference("outcome", oid, f"defined differently: {shown}"))
    for oid in b.outcomes:
        if oid not in a.outcomes:
            out.append(Difference("outcome", oid, f"only in '{b.id}'"))
    return StructureDiff(a.id, b.id, tuple(out))


def _combine(rule: Mapping[str, Any]) -> str:
    parts = [str(rule["rule"])]
    if rule["rule"] == "latest":
        parts.append("per " + "+".join(rule["per"]))
    for key in ("max_age_days", "window_days"):
        if rule.get(key) is not None:
            parts.append(f"{key} {rule[key]}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------
# the comparison


@dataclass(frozen=True)
class TreeFit:
    """How well one tree predicted the common readings."""

    tree_id: str
    log_evidence: float  # log p(common readings | tree), in the units readings are entered in
    prior_weight: float
    weight: float  # posterior weight among the trees compared


@dataclass(frozen=True)
class ReportScore:
    """One common report's log predictive score in each tree (given the reports before it)."""

    source: str
    key: str
    last_day: dt.date
    readings: tuple[Reading, ...]
    scores: Mapping[str, float]

    @property
    def spread(self) -> float:
        """The best tree's score minus the worst's: how much this report told them apart."""
        values = list(self.scores.values())
        return max(values) - min(values)

    @property
    def best(self) -> str:
        """The tree that predicted this report best."""
        return max(self.scores, key=lambda t: self.scores[t])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "source": self.source,
            "report": self.key,
            "observed": self.last_day.isoformat(),
            "readings": [
                {
                    "reading": r.id,
                    "indicator": r.indicator,
                    "value": r.value,
                    "location": r.location,
                }
                for r in self.readings
            ],
            "log_score": dict(self.scores),
            "best": self.best,
        }


@dataclass(frozen=True)
class OutcomeComparison:
    """One shared outcome in every tree: prior, probability, and the weighted average.

    ``probability`` is each tree's forecast on every reading it counts; ``common`` its
    forecast on the common readings alone; ``average`` the trees' ``probability`` weighted by
    their posterior weights.
    """

    id: str
    question: str
    prior: Mapping[str, float]
    probability: Mapping[str, float]
    common: Mapping[str, float]
    average: float

    @property
    def spread(self) -> float:
        """The largest difference between two trees' probabilities."""
        values = list(self.probability.values())
        return max(values) - min(values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "question": self.question,
            "prior": dict(self.prior),
            "probability": dict(self.probability),
            "probability_on_common_readings": dict(self.common),
            "model_average": self.average,
            "largest_difference": self.spread,
        }


@dataclass(frozen=True)
class Comparison:
    """Trees compared on one ledger (see the module's notes)."""

    trees: tuple[str, ...]
    titles: Mapping[str, str]
    as_of: dt.date
    outcomes: tuple[OutcomeComparison, ...]
    not_shared: Mapping[str, tuple[str, ...]]  # tree id -> its outcomes not in every tree
    structure: tuple[StructureDiff, ...]
    fits: Mapping[str, TreeFit]
    reports: tuple[ReportScore, ...]
    common: CommonEvidence
    counted: Mapping[str, int]  # tree id -> readings it counts (all of them)

    @property
    def n_common(self) -> int:
        """How many readings every tree counts."""
        return len(self.common.readings)

    def log_bayes_factor(self, a: str, b: str) -> float:
        """``log p(common readings | a) - log p(common readings | b)``."""
        return self.fits[a].log_evidence - self.fits[b].log_evidence

    def pairs(self) -> list[tuple[str, str, float]]:
        """Every pair of trees with the log Bayes factor of the first against the second."""
        ids = self.trees
        return [
            (ids[i], ids[j], self.log_bayes_factor(ids[i], ids[j]))
            for i in range(len(ids))
            for j in range(i + 1, len(ids))
        ]

    def deciding(self, n: int = 8) -> list[ReportScore]:
        """The ``n`` reports that told the trees apart most, in observed order."""
        ranked = sorted(self.reports, key=lambda r: -r.spread)[:n]
        return sorted((r for r in ranked if r.spread > 0), key=lambda r: (r.last_day, r.key))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the ``compare --json`` output)."""
        return {
            "trees": list(self.trees),
            "as_of": self.as_of.isoformat(),
            "outcomes": {o.id: o.to_dict() for o in self.outcomes},
            "outcomes_not_shared": {k: list(v) for k, v in self.not_shared.items()},
            "structure": [s.to_dict() for s in self.structure],
            "evidence": {
                "readings_counted": dict(self.counted),
                "common_readings": self.n_common,
                "common_reports": len(self.reports),
                "log_marginal_likelihood": {t: f.log_evidence for t, f in self.fits.items()},
                "prior_weight": {t: f.prior_weight for t, f in self.fits.items()},
                "posterior_weight": {t: f.weight for t, f in self.fits.items()},
                "log_bayes_factors": [
                    {"tree": a, "against": b, "log_bayes_factor": v, "bayes_factor": _exp(v)}
                    for a, b, v in self.pairs()
                ],
                "reports": [r.to_dict() for r in self.reports],
                "left_out": [x.to_dict() for x in self.common.left_out],
            },
        }


def _exp(x: float) -> float | None:
    try:
        value = math.exp(x)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def check_trees(trees: Sequence[Tree]) -> list[str]:
    """The outcome ids every tree has, in the first tree's order.

    Raises
    ------
    ComparisonError
        For fewer than two trees, one id twice, or no outcome in common.
    """
    if len(trees) < 2:
        raise ComparisonError("give at least two trees to compare")
    seen: dict[str, Tree] = {}
    for t in trees:
        if t.id in seen:
            where = f" ({seen[t.id].path} and {t.path})" if t.path and seen[t.id].path else ""
            raise ComparisonError(
                f"two trees have the id '{t.id}'{where}: compare different trees, or give one "
                "another id"
            )
        seen[t.id] = t
    shared = [o for o in trees[0].outcomes if all(o in t.outcomes for t in trees[1:])]
    if not shared:
        asked = "; ".join(
            f"'{t.id}' ({t.path or 'tree'}) asks {_words(list(t.outcomes))}" for t in trees
        )
        raise ComparisonError(
            f"the trees share no outcome, so there is no question to compare them on: {asked}"
        )
    return shared


def compare(
    trees: Sequence[Tree],
    readings: Sequence[Reading],
    *,
    as_of: dt.date | None = None,
    weights: Sequence[float] | Mapping[str, float] | None = None,
    models: Mapping[str, ExactModel] | None = None,
) -> Comparison:
    """Compare ``trees`` on ``readings`` as of ``as_of`` (default: today).

    ``weights`` are the trees' prior weights (equal by default); ``models`` prepared models to
    reuse, by tree id.

    Raises
    ------
    ComparisonError
        For fewer than two trees, one id twice, or no outcome in common.
    QueryError
        For bad weights.
    """
    shared = check_trees(trees)
    prior = prior_weights(trees, weights)
    day = as_of or dt.date.today()
    prepared = {t.id: (models or {}).get(t.id) or ExactModel(t) for t in trees}
    common = common_evidence(trees, readings, day)
    full = {t.id: prepared[t.id].forecast(readings, as_of=day, top=0) for t in trees}
    ids = {r.id for r in common.readings}
    on_common = {
        # a tree that counts exactly the common readings has its forecast already
        t.id: full[t.id]
        if _counted(full[t.id].evidence) == ids
        else prepared[t.id].forecast(common.readings, as_of=day, top=0)
        for t in trees
    }
    scores = {t.id: report_scores(prepared[t.id], common.evidence[t.id]) for t in trees}
    log_ml = {tid: math.fsum(s) for tid, s in scores.items()}
    weight = posterior_weights(log_ml, prior)
    fits = {t.id: TreeFit(t.id, log_ml[t.id], prior[t.id], weight[t.id]) for t in trees}
    reports = tuple(
        ReportScore(
            source=rep.source,
            key=rep.key,
            last_day=rep.last_day,
            readings=tuple(o.reading for o in rep.observations),
            scores={t.id: scores[t.id][i] for t in trees},
        )
        for i, rep in enumerate(common.reports)
    )
    outcomes = tuple(
        OutcomeComparison(
            id=oid,
            question=trees[0].outcomes[oid].question,
            prior={t.id: full[t.id].outcomes[oid].prior for t in trees},
            probability={t.id: full[t.id].outcomes[oid].probability for t in trees},
            common={t.id: on_common[t.id].outcomes[oid].probability for t in trees},
            average=math.fsum(weight[t.id] * full[t.id].outcomes[oid].probability for t in trees),
        )
        for oid in shared
    )
    not_shared = {
        t.id: tuple(o for o in t.outcomes if o not in shared)
        for t in trees
        if any(o not in shared for o in t.outcomes)
    }
    priors = {t.id: full[t.id] for t in trees}
    structure = tuple(structure_differences(trees[0], t, priors=priors) for t in trees[1:])
    return Comparison(
        trees=tuple(t.id for t in trees),
        titles={t.id: t.spec.title or t.id for t in trees},
        as_of=day,
        outcomes=outcomes,
        not_shared=not_shared,
        structure=structure,
        fits=fits,
        reports=reports,
        common=common,
        counted={t.id: len(full[t.id].evidence.observations) for t in trees},
    )
