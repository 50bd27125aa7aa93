"""What the forecast hinges on: how every outcome moves with every number in the tree.

For every entry of every probability table (a node's ``probabilities``, its ``transitions``,
its ``persistence``), every parameter of every indicator's rows, and every source's
reliability (docs/watch-and-sensitivity.md):

- the **derivative** of each outcome's probability (given the evidence) with respect to it.
  A probability in a row moves with **proportional co-variation**: the row's other entries
  shrink or grow in proportion so that the row still sums to 1 (``p_k * (1 - theta') /
  (1 - theta)``; a row whose entry is 1 shares the freed probability equally). The
  derivative is exact: the derivative of a total probability with respect to a factor's entry
  is the posterior probability of that entry's states over the entry (Darwiche's differential
  semantics), read off the calibrations the outcome's probability is made of; the chain rule
  then follows each number into every factor it enters (a dynamic node's table at step 0, in
  its persistence transitions, in the backward chain before the horizon), and into each
  report's prior predictive ``q``, which moves with the tree's numbers. That last part is the
  derivative of a prior expectation, ``Cov_prior(h, [factor's states])``, and is taken by a
  central difference in a tilt of the prior (one pair of calibrations per outcome), accurate to
  about 1e-10. An indicator parameter enters through the likelihood of every report that
  reads the indicator; its local derivative is a central difference (steps of 1e-5).
- the outcome's **range** when the number moves over an interval: 0.1 either way for a
  probability (within [0, 1]); the stated uncertainty for a number written ``{mean, sd}``
  (the mean plus or minus one sd); otherwise a quarter of the row's sigma either way for a
  location ``mu``, and a quarter of the value either way for ``sigma``, ``nu`` and ``rate``.
  For a number that enters the evidence's probability once and linearly (a static node's table
  when no report's source is less than fully reliable, and no reading before the horizon meets
  a backward chain that averages static parents with their prior), the outcome's probability
  is a ratio
  of two linear functions of it, ``(c1 theta + c2) / (c3 theta + c4)``, and the range follows
  exactly from the derivatives. Otherwise that ratio is a first-order estimate, and the numbers
  a tornado chart shows are recomputed exactly, by forecasting again with the number at each
  end of its interval (many at once, on a batch axis).

A number at exactly 0 has no derivative of its own here (the formula divides by it): its row's
other entries are still differentiated, and its range is recomputed when it is shown.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from scenariocast.analysis.joint import OutcomeJoints, Term
from scenariocast.engines.exact.junction import Calibrated, Factor, FloatArray
from scenariocast.engines.exact.model import ExactModel, Query, merge_factors
from scenariocast.engines.exact.network import Network, check_outcome
from scenariocast.errors import QueryError
from scenariocast.evidence.likelihood import logsumexp, report_log_likelihood
from scenariocast.evidence.readings import Reading
from scenariocast.evidence.select import Report, select_evidence
from scenariocast.spec.load import persistence_transition
from scenariocast.spec.model import Uncertain
from scenariocast.spec.tree import NODE_PREFIX, CompiledIndicator, Tree

#: How far a probability moves either way (within [0, 1]).
PROBABILITY_STEP = 0.1
#: How far a location (mu) moves either way, as a share of its row's sigma; and a positive
#: parameter (sigma, nu, rate), as a share of its value.
LOCATION_SHARE = 0.25
SCALE_SHARE = 0.25
#: Entries in a tornado chart, per outcome.
TORNADO = 15
#: The tilt of the prior for the reports' prior predictive: its size, relative to the largest
#: value of the tilting function.
_TILT = 1e-5
#: Members of one batched calibration when recomputing exactly (memory, not speed).
_CHUNK = 8


@dataclass(frozen=True)
class Parameter:
    """A number in the tree.

    ``kind`` is ``probability`` (an entry of a node's ``probabilities``), ``transition`` (of
    its ``transitions``), ``persistence``, ``indicator`` (a parameter of an indicator's row)
    or ``reliability`` (a source's). ``owner`` is the node, indicator or source; ``when`` the
    row (the parents' states, and for a transition the node's previous state under the node's
    own name); ``column`` the state, category or parameter name. ``low`` and ``high`` are the
    interval it is moved over (``basis`` says why).
    """

    kind: str
    owner: str
    when: Mapping[str, str]
    column: str
    value: float
    low: float
    high: float
    basis: str
    rationale: str
    index: tuple[int, ...] = field(default=(), repr=False, compare=False)
    name: str = field(default="", repr=False, compare=False)  # the indicator's parameter

    @property
    def label(self) -> str:
        """The number in words, as a forecaster would look for it in the file."""
        given = ", ".join(f"{k} = {v}" for k, v in self.when.items())
        if self.kind == "probability":
            return f"P({self.owner} = {self.column}" + (f" | {given})" if given else ")")
        if self.kind == "transition":
            return f"P({self.owner} next = {self.column} | {given})"
        if self.kind == "persistence":
            state = f" in {self.column}" if self.column else ""
            return f"persistence of {self.owner}{state}"
        if self.kind == "indicator":
            return f"{self.owner} {self.column}" + (f" | {given}" if given else "")
        return f"reliability of {self.owner}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "label": self.label,
            "kind": self.kind,
            "owner": self.owner,
            "when": dict(self.when),
            "column": self.column,
            "value": self.value,
            "interval": [self.low, self.high],
            "interval_basis": self.basis,
            "rationale": self.rationale,
        }


@dataclass(frozen=True)
class Effect:
    """What moving one number does to one outcome.

    ``at_low`` and ``at_high`` are the outcome's probability with the number at the ends of
    its interval; ``exact`` says whether they were computed exactly (else they are the
    first-order estimate, see the module's notes).
    """

    derivative: float
    at_low: float
    at_high: float
    exact: bool

    @property
    def swing(self) -> float:
        """How far the outcome moves over the interval."""
        return abs(self.at_high - self.at_low)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "derivative": self.derivative,
            "at_low": self.at_low,
            "at_high": self.at_high,
            "swing": self.swing,
            "exact": self.exact,
        }


@dataclass(frozen=True)
class SensitivityResult:
    """Every number's effect on every outcome, and what the forecast hinges on."""

    tree_id: str
    as_of: dt.date
    probabilities: Mapping[str, float]
    parameters: tuple[Parameter, ...]
    effects: Mapping[str, tuple[Effect, ...]]  # outcome -> one per parameter, in order
    evidence: tuple[float, ...] = ()  # d log P(evidence) / d parameter, one per parameter
    notes: tuple[str, ...] = ()
    power_scaling: Any = None  # analysis.power_scaling.PowerScaling, with the PyMC engine

    def ranked(self, outcome: str) -> list[tuple[Parameter, Effect]]:
        """The numbers by how far they move ``outcome`` over their intervals, most first."""
        pairs = list(zip(self.parameters, self.effects[outcome], strict=True))
        return sorted(pairs, key=lambda pe: (-pe[1].swing, -abs(pe[1].derivative), pe[0].label))

    def tornado(self, outcome: str, n: int = TORNADO) -> list[tuple[Parameter, Effect]]:
        """The ``n`` numbers that move ``outcome`` most (the tornado chart's bars)."""
        return [pe for pe in self.ranked(outcome)[:n] if pe[1].swing > 0]

    def to_dict(self, *, top: int | None = None) -> dict[str, Any]:
        """A JSON-ready dictionary (``scenariocast sensitivity --json``).

        Every parameter with its effect on every outcome, and each outcome's tornado.
        """
        out: dict[str, Any] = {
            "tree": self.tree_id,
            "as_of": self.as_of.isoformat(),
            "outcomes": {
                o: {
                    "probability": p,
                    "tornado": [
                        {**par.to_dict(), **eff.to_dict()}
                        for par, eff in self.tornado(o, top or TORNADO)
                    ],
                }
                for o, p in self.probabilities.items()
            },
            "parameters": [
                {
                    **par.to_dict(),
                    "evidence_log_derivative": self.evidence[i] if self.evidence else None,
                    "effects": {o: self.effects[o][i].to_dict() for o in self.probabilities},
                }
                for i, par in enumerate(self.parameters)
            ],
            "notes": list(self.notes),
        }
        if self.power_scaling is not None:
            out["power_scaling"] = self.power_scaling.to_dict()
        return out


# -- the numbers of a tree --------------------------------------------------------------------


def _interval(value: float, kind: str, lo: float = 0.0, hi: float = 1.0) -> tuple[float, float]:
    if kind == "probability":
        return max(lo, value - PROBABILITY_STEP), min(hi, value + PROBABILITY_STEP)
    return value * (1 - SCALE_SHARE), value * (1 + SCALE_SHARE)


def _short(text: str) -> str:
    return " ".join(text.split())


def parameters(tree: Tree) -> list[Parameter]:
    """Every number in ``tree`` that a forecast depends on, with its interval and rationale."""
    out: list[Parameter] = []
    states = {n: node.states for n, node in tree.nodes.items()}
    for name, node in tree.nodes.items():
        if node.kind == "calendar":
            continue
        spec = tree.spec.nodes[name]
        rows = spec.probabilities if isinstance(spec.probabilities, list) else []
        for idx in np.ndindex(*node.cpt.shape[:-1]):
            when = {p: states[p][i] for p, i in zip(node.parents, idx, strict=True)}
            row = next((r for r in rows if dict(r.when) == when), None)
            why = _short(row.rationale if row and row.rationale else spec.rationale)
            for j, state in enumerate(node.states):
                v = float(node.cpt[(*idx, j)])
                lo, hi = _interval(v, "probability")
                out.append(
                    Parameter("probability", name, when, state, v, lo, hi, "±0.1", why,
                              (*idx, j))
                )  # fmt: skip
        dyn = spec.dynamic
        if dyn is None or node.transition is None:
            continue
        why_dyn = _short(dyn.rationale or spec.rationale)
        if dyn.transitions is not None:
            for idx in np.ndindex(*node.transition.shape[:-1]):
                prev, rest = idx[0], idx[1:]
                when = {name: node.states[prev]}
                when.update({p: states[p][i] for p, i in zip(node.parents, rest, strict=True)})
                row = next((r for r in dyn.transitions if dict(r.when) == when), None)
                why = _short(row.rationale if row and row.rationale else why_dyn)
                for j, state in enumerate(node.states):
                    v = float(node.transition[(*idx, j)])
                    lo, hi = _interval(v, "probability")
                    out.append(
                        Parameter("transition", name, when, state, v, lo, hi, "±0.1", why,
                                  (*idx, j))
                    )  # fmt: skip
        elif isinstance(dyn.persistence, dict):
            for h, state in enumerate(node.states):
                v = float(dyn.persistence[state])
                lo, hi = _interval(v, "probability")
                out.append(
                    Parameter("persistence", name, {}, state, v, lo, hi, "±0.1", why_dyn, (h,))
                )
        else:
            v = float(dyn.persistence or 0.0)
            lo, hi = _interval(v, "probability")
            out.append(Parameter("persistence", name, {}, "", v, lo, hi, "±0.1", why_dyn, ()))
    for iid, ind in tree.indicators.items():
        spec_i = ind.spec
        for prow in spec_i.params:
            idx = tuple(states[n].index(prow.when[n]) for n in ind.scope)
            why = _short(prow.rationale or spec_i.rationale)
            for pname, raw in prow.then.items():
                v = raw.mean if isinstance(raw, Uncertain) else float(raw)
                if spec_i.kind == "categorical":
                    cats = spec_i.categories or []
                    k = cats.index(pname)
                    index, name, kind = (*idx, k), "probs", "probability"
                else:
                    index, name, kind = idx, pname, "probability" if pname == "p" else pname
                if isinstance(raw, Uncertain):
                    lo, hi, basis = v - raw.sd, v + raw.sd, "± its sd"
                    if kind == "probability":
                        lo, hi = max(0.0, lo), min(1.0, hi)
                    elif kind != "mu":
                        lo = max(lo, v * 1e-3)
                elif kind == "probability":
                    (lo, hi), basis = _interval(v, "probability"), "±0.1"
                elif kind == "mu":
                    sigma = float(ind.params["sigma"][idx])
                    lo, hi = v - LOCATION_SHARE * sigma, v + LOCATION_SHARE * sigma
                    basis = "± a quarter of the row's sigma"
                else:
                    (lo, hi), basis = _interval(v, "scale"), "± a quarter of its value"
                out.append(
                    Parameter("indicator", iid, dict(prow.when), pname, v, lo, hi, basis, why,
                              index, name)
                )  # fmt: skip
    for sid, src in tree.sources.items():
        v = src.mean_reliability
        if isinstance(src.reliability, Uncertain):
            lo, hi = max(0.0, v - src.reliability.sd), min(1.0, v + src.reliability.sd)
            basis = "± its sd"
        else:
            (lo, hi), basis = _interval(v, "probability"), "±0.1"
        out.append(
            Parameter("reliability", sid, {}, "reliability", v, lo, hi, basis,
                      _short(src.description))
        )  # fmt: skip
    return out


# -- gradients -------------------------------------------------------------------------------


@dataclass
class _Grad:
    """Derivatives of one quantity with respect to the tree's arrays, entry by entry."""

    cpt: dict[str, FloatArray]
    transition: dict[str, FloatArray]
    params: dict[str, dict[str, FloatArray]]
    reliability: dict[str, float]

    @classmethod
    def zeros(cls, tree: Tree) -> _Grad:
        return cls(
            cpt={n: np.zeros_like(node.cpt) for n, node in tree.nodes.items()},
            transition={
                n: np.zeros_like(node.transition)
                for n, node in tree.nodes.items()
                if node.transition is not None
            },
            params={
                i: {k: np.zeros_like(v) for k, v in ind.params.items()}
                for i, ind in tree.indicators.items()
            },
            reliability=dict.fromkeys(tree.sources, 0.0),
        )


@dataclass(frozen=True)
class _ReportParts:
    """One report's pieces: its variables, genuine log-likelihood, factor, prior and groups."""

    report: Report
    union: tuple[int, ...]
    genuine: FloatArray  # log p(report | states) over union
    log_lik: FloatArray  # the factor: log(r p + (1 - r) q)
    log_prior: FloatArray  # log prior joint of union
    log_q: float
    groups: tuple[tuple[str, int | None, tuple[float, ...]], ...]  # (indicator, step, values)
    # each group's log-likelihood under the tree's numbers, placed over union (filled on use)
    placed: dict[int, FloatArray] = field(default_factory=dict, compare=False, repr=False)


def _marginal_onto(union: Sequence[int], values: FloatArray, scope: Sequence[int]) -> FloatArray:
    """Sum ``values`` (axes ``union``) onto the variables ``scope`` (a subset), in its order."""
    drop = tuple(k for k, v in enumerate(union) if v not in scope)
    out = values.sum(axis=drop) if drop else values
    kept = [v for v in union if v in scope]
    return np.asarray(np.transpose(out, [kept.index(v) for v in scope]), dtype=np.float64)


def _report_parts(model: ExactModel, query: Query) -> list[_ReportParts]:
    net = query.network
    prior = query.structure.prior
    out: list[_ReportParts] = []
    for rep, (union, values) in zip(query.evidence.reports, query.report_factors, strict=True):
        genuine = model.genuine_table(net, rep, union)
        with np.errstate(divide="ignore"):
            log_prior = np.log(prior.joint(union))
        groups: dict[tuple[str, int | None], list[float]] = defaultdict(list)
        for o in rep.observations:
            groups[(o.indicator, o.step)].append(o.value)
        out.append(
            _ReportParts(
                rep,
                union,
                genuine,
                values,
                log_prior,
                float(logsumexp(genuine + log_prior)),
                tuple((i, t, tuple(v)) for (i, t), v in groups.items()),
            )
        )
    return out


class _Joints:
    """Joint distributions of the given scopes in each calibration, computed once for all."""

    def __init__(self, scopes: Sequence[tuple[int, ...]]) -> None:
        self.scopes = list(scopes)
        self._index = {scope: k for k, scope in enumerate(self.scopes)}
        self._cache: dict[int, list[FloatArray]] = {}

    def get(self, cal: Calibrated, member: int | None, scope: tuple[int, ...]) -> FloatArray:
        if id(cal) not in self._cache:
            self._cache[id(cal)] = cal.joints(self.scopes)
        j = self._cache[id(cal)][self._index[scope]]
        return j if member is None else np.asarray(j[..., member])


def _fd_weights() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Offsets and weights of the central difference (with steps of 1e-5 of the scale)."""
    return (-1.0, 1.0), (-0.5, 0.5)


def _steps(ind: CompiledIndicator, name: str) -> FloatArray:
    """The difference step for each row of one parameter of ``ind`` (or category ``name``)."""
    if name.startswith("probs:"):
        k = int(name.split(":", 1)[1])
        p = ind.params["probs"][..., k]
        return np.asarray(1e-5 * np.clip(np.minimum(p, 1 - p), 1e-8, None), dtype=np.float64)
    v = ind.params[name]
    if name == "p":
        return np.asarray(1e-5 * np.clip(np.minimum(v, 1 - v), 1e-8, None), dtype=np.float64)
    if name == "mu":
        return np.asarray(1e-5 * np.maximum(np.abs(v), ind.params["sigma"]), dtype=np.float64)
    return np.asarray(1e-5 * np.abs(v), dtype=np.float64)


def _variants(ind: CompiledIndicator) -> tuple[dict[str, FloatArray], list[str]]:
    """Every parameter of ``ind`` shifted in every row, one variant per (parameter, offset).

    Returns the parameter arrays with a leading variant axis (variant 0 is the tree's) and the
    names in order (``probs:k`` for category ``k``).
    """
    names = (
        [f"probs:{k}" for k in range(ind.params["probs"].shape[-1])]
        if ind.spec.kind == "categorical"
        else list(ind.params)
    )
    offsets, _ = _fd_weights()
    stacked: dict[str, list[FloatArray]] = {k: [v] for k, v in ind.params.items()}
    for name in names:
        h = _steps(ind, name)
        for off in offsets:
            for k, v in ind.params.items():
                if name.startswith("probs:") and k == "probs":
                    c = int(name.split(":", 1)[1])
                    shifted = v.copy()
                    shifted[..., c] = v[..., c] + off * h
                    stacked[k].append(shifted)
                elif k == name:
                    stacked[k].append(v + off * h)
                else:
                    stacked[k].append(v)
    return {k: np.stack(v) for k, v in stacked.items()}, names


def _local_derivatives(
    tree: Tree, net: Network, parts: Sequence[_ReportParts]
) -> dict[int, list[tuple[str, tuple[int, ...], tuple[int | slice, ...], str, FloatArray]]]:
    """Per report: for each of its groups and each parameter, d log p(group) / d parameter.

    Each entry is (indicator, the group's variables, the placement index, the parameter name,
    the derivative over the group's variables), the derivative taken for every row at once
    (each row's entries change only its own states' likelihood).
    """
    offsets, weights = _fd_weights()
    out: dict[int, list[tuple[str, tuple[int, ...], tuple[int | slice, ...], str, FloatArray]]]
    out = defaultdict(list)
    cache: dict[str, tuple[CompiledIndicator, list[str]]] = {}
    for r, part in enumerate(parts):
        for iid, step, values in part.groups:
            if iid.startswith(NODE_PREFIX):  # a reading of a node: no number of the tree in it
                continue
            ind = tree.indicators[iid]
            if iid not in cache:
                arrays, names = _variants(ind)
                cache[iid] = (replace(ind, params=arrays), names)
            shifted, names = cache[iid]
            table = report_log_likelihood(shifted, np.array(values), ind.spec.correlation())
            index, scope = net.placement([(n, step) for n in ind.scope])
            placed = table[(slice(None), *index)]
            for j, name in enumerate(names):
                h = _steps(ind, name)[index]
                block = placed[1 + j * len(offsets) : 1 + (j + 1) * len(offsets)]
                with np.errstate(invalid="ignore"):
                    d = sum(w * block[i] for i, w in enumerate(weights)) / h
                d = np.where(np.isfinite(d), d, 0.0)
                out[r].append((iid, scope, index, name, np.asarray(d, dtype=np.float64)))
    return out


def _backward_grads(
    cpt: FloatArray,
    transition: FloatArray,
    w: FloatArray,
    averaged: Sequence[int] = (),
    weights: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """d/d(cpt, transition, weights) of ``sum w * log K`` for the backward kernel K.

    ``w`` has the kernel's axes ``(x_t, *moving parents, x_{t+1})``: the parents at positions
    ``averaged`` are averaged out with ``weights`` (their joint prior), as
    :func:`~scenariocast.engines.exact.network.reverse_kernel` does. The derivatives are with
    respect to the full arrays (every parent), and to ``weights`` (None without averaging).
    """
    n_par = cpt.ndim - 1
    start = np.moveaxis(cpt, n_par, 0)[(slice(None),) * (1 + n_par) + (None,)]  # (h, *pa, 1)
    axes = tuple(1 + j for j in averaged)
    shape = [1] * transition.ndim
    for ax in axes:
        shape[ax] = transition.shape[ax]
    wt = np.ones(shape) if weights is None else np.asarray(weights).reshape(shape)
    wx = np.expand_dims(w, axis=axes) if axes else w  # (h, *pa with 1s averaged, i)
    joint = (start * transition * wt).sum(axis=axes, keepdims=True) if axes else start * transition
    total = joint.sum(axis=0, keepdims=True)  # D(moving, i)
    wsum = wx.sum(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(joint > 0, wx / joint, 0.0) - np.where(total > 0, wsum / total, 0.0)
    d_t = wt * start * ratio
    d_start = (wt * transition * ratio).sum(axis=-1, keepdims=True)
    d_cpt = np.moveaxis(d_start[..., 0], 0, n_par)
    d_w = None
    if axes:
        keep = set(axes)
        other = tuple(k for k in range(transition.ndim) if k not in keep)
        d_w = (start * transition * ratio).sum(axis=other)
    return np.asarray(d_cpt, dtype=np.float64), np.asarray(d_t, dtype=np.float64), d_w


def _static_weight_grads(
    tree: Tree, net: Network, parents: Sequence[str], d_w: FloatArray, g: _Grad
) -> None:
    """Add to ``g`` the static tables' share of ``d_w`` (w.r.t. the prior of ``parents``).

    ``d_w`` is a derivative with respect to the joint prior of the static nodes ``parents``;
    through each static table it is ``dP(s) / dθ(x | u) = P(s, x, u) / θ(x | u)``.
    """
    for name, node in tree.nodes.items():
        if node.kind != "static":
            continue
        family = [*node.parents, name]
        union = list(dict.fromkeys([*parents, *family]))
        joint = net.static_joint(union)
        letters = {n: chr(97 + k) for k, n in enumerate(union)}
        spec = (
            "".join(letters[n] for n in union)
            + ","
            + "".join(letters[n] for n in parents)
            + "->"
            + "".join(letters[n] for n in family)
        )
        fam = np.einsum(spec, joint, d_w)
        with np.errstate(divide="ignore", invalid="ignore"):
            g.cpt[name] += np.where(node.cpt > 0, fam / node.cpt, 0.0)


def _gradients(
    model: ExactModel,
    query: Query,
    joints: OutcomeJoints,
    targets: Mapping[str, list[tuple[Term, float]]],
    parts: Sequence[_ReportParts],
) -> dict[str, _Grad]:
    """The derivative of each target (a weighted sum of log totals) w.r.t. the tree's arrays."""
    tree = model.tree
    net = query.network
    terms = net.prior_terms()
    cache = _Joints([*(f[0] for f in net.factors), *(p.union for p in parts)])
    # per target: the expected counts of each prior factor, and the reports' weights
    counts: dict[str, list[FloatArray]] = {}
    alpha: dict[str, FloatArray] = {}
    share: dict[str, list[FloatArray]] = {}  # P(u) r p / L, per report
    rel: dict[str, dict[str, float]] = {}
    for t, pairs in targets.items():
        counts[t] = [np.zeros(tuple(net.cards[v] for v in f[0])) for f in net.factors]
        alpha[t] = np.zeros(len(parts))
        share[t] = [np.zeros(p.log_lik.shape) for p in parts]
        rel[t] = dict.fromkeys(tree.sources, 0.0)
        for term, coef in pairs:
            if coef == 0.0:
                continue
            cal, member = term.calibrated, term.member
            for k, (scope, _) in enumerate(net.factors):
                counts[t][k] += coef * cache.get(cal, member, scope)
            for k, part in enumerate(parts):
                pu = cache.get(cal, member, part.union)
                r = part.report.reliability
                with np.errstate(under="ignore"):
                    inv = np.exp(-part.log_lik)
                    alpha[t][k] += coef * (1.0 - r) * float(np.sum(pu * inv))
                    share[t][k] += coef * pu * r * np.exp(part.genuine - part.log_lik)
                    rel[t][part.report.source] += coef * float(
                        np.sum(pu * (np.exp(part.genuine) - math.exp(part.log_q)) * inv)
                    )
    # the reports' prior predictive: Cov_prior(h, [states of each factor]), h = sum alpha p
    names = list(targets)
    tilt = _tilt_covariances(query, parts, [alpha[t] for t in names])
    for t, cov in zip(names, tilt, strict=True):
        for k in range(len(net.factors)):
            counts[t][k] = counts[t][k] + cov[k]
    local = _local_derivatives(tree, net, parts)
    out: dict[str, _Grad] = {}
    for t in names:
        g = _Grad.zeros(tree)
        for origin, scope_w in zip(terms, counts[t], strict=True):
            node = tree.nodes[origin.node]
            index, _ = net.placement(origin.axes)
            if origin.kind == "start":
                full = np.zeros_like(node.cpt)
                full[index] = scope_w
                with np.errstate(divide="ignore", invalid="ignore"):
                    g.cpt[origin.node] += np.where(node.cpt > 0, full / node.cpt, 0.0)
            elif origin.kind == "transition":
                assert node.transition is not None
                full = np.zeros_like(node.transition)
                full[index] = scope_w
                with np.errstate(divide="ignore", invalid="ignore"):
                    g.transition[origin.node] += np.where(
                        node.transition > 0, full / node.transition, 0.0
                    )
            else:
                assert node.transition is not None
                averaged, weights = net.backward_averaging(origin.node)
                shape = [n for k, n in enumerate(node.transition.shape) if k - 1 not in averaged]
                full = np.zeros(shape)
                full[index] = scope_w
                d_cpt, d_t, d_w = _backward_grads(
                    node.cpt, node.transition, full, averaged, weights
                )
                g.cpt[origin.node] += d_cpt
                g.transition[origin.node] += d_t
                if d_w is not None:
                    static = [node.parents[j] for j in averaged]
                    _static_weight_grads(tree, net, static, d_w, g)
        for k, part in enumerate(parts):
            with np.errstate(under="ignore"):
                weight = share[t][k] + alpha[t][k] * np.exp(part.log_prior + part.genuine)
            for iid, scope, index, name, d in local.get(k, []):
                contrib = _marginal_onto(part.union, weight, scope) * d
                if name.startswith("probs:"):
                    c = int(name.split(":", 1)[1])
                    g.params[iid]["probs"][(*index, c)] += contrib
                else:
                    g.params[iid][name][index] += contrib
        g.reliability = rel[t]
        out[t] = g
    return out


def _tilt_covariances(
    query: Query, parts: Sequence[_ReportParts], alphas: Sequence[FloatArray]
) -> list[list[FloatArray]]:
    """For each weight vector ``a``: ``Cov_prior(h, [states of each prior factor])``.

    ``h`` is ``sum over reports of a_R p(report R | states)``. The prior is tilted by
    ``exp(+-eps h)`` in one batched calibration, and the covariance is the central difference
    of each factor's marginal, divided by ``2 eps``.
    """
    net = query.network
    jt = query.structure.jt
    size = 2 * len(alphas)
    if not parts or size == 0:
        return [[np.zeros(tuple(net.cards[v] for v in f[0])) for f in net.factors] for _ in alphas]
    eps = []
    for a in alphas:
        top = sum(abs(float(a[k])) * float(np.exp(p.genuine.max())) for k, p in enumerate(parts))
        eps.append(_TILT / top if top > 0 else 0.0)
    extra: list[Factor] = []
    for k, p in enumerate(parts):
        with np.errstate(under="ignore"):
            lik = np.exp(p.genuine)
        values = np.zeros((*lik.shape, size))
        for b, a in enumerate(alphas):
            values[..., 2 * b] = eps[b] * a[k] * lik
            values[..., 2 * b + 1] = -eps[b] * a[k] * lik
        extra.append((p.union, values))
    cal = jt.calibrate([*net.factors, *merge_factors(extra)], size)
    marginals = cal.joints([scope for scope, _ in net.factors])
    out: list[list[FloatArray]] = []
    for b in range(len(alphas)):
        rows = []
        for (scope, _), j in zip(net.factors, marginals, strict=True):
            if eps[b] == 0.0:
                rows.append(np.zeros(tuple(net.cards[v] for v in scope)))
                continue
            rows.append(np.asarray((j[..., 2 * b] - j[..., 2 * b + 1]) / (2 * eps[b])))
        out.append(rows)
    return out


# -- from arrays to the file's numbers --------------------------------------------------------


def _covary(row: FloatArray, grad_row: FloatArray, j: int) -> float:
    """d/d row[j] with the row's other entries in proportion (equal shares from 1)."""
    theta = float(row[j])
    others = [k for k in range(len(row)) if k != j]
    if not others:
        return float(grad_row[j])
    if theta < 1.0:
        rest = sum(float(grad_row[k]) * float(row[k]) for k in others) / (1.0 - theta)
    else:
        rest = sum(float(grad_row[k]) for k in others) / len(others)
    return float(grad_row[j]) - rest


def _node_grads(tree: Tree, g: _Grad) -> tuple[dict[str, FloatArray], dict[str, FloatArray]]:
    """Per node, the derivatives w.r.t. its ``probabilities`` and its persistence (per state).

    For a node with ``persistence`` the transition is made of its table and its persistence,
    so the transition's derivatives flow into both.
    """
    cpt = {n: v.copy() for n, v in g.cpt.items()}
    keep: dict[str, FloatArray] = {}
    for name, node in tree.nodes.items():
        spec = tree.spec.nodes[name]
        if spec.dynamic is None or spec.dynamic.transitions is not None:
            continue
        gt = g.transition[name]  # (h, *pa, j)
        k = node.card
        pers = spec.dynamic.persistence
        rho = np.array(
            [pers[s] for s in node.states] if isinstance(pers, dict) else [float(pers or 0)] * k
        )
        rho_b = rho.reshape((k,) + (1,) * (node.cpt.ndim - 1) + (1,))
        cpt[name] = cpt[name] + ((1.0 - rho_b) * gt).sum(axis=0)
        stay = np.eye(k).reshape((k,) + (1,) * (node.cpt.ndim - 1) + (k,))
        axes = tuple(range(1, gt.ndim))
        keep[name] = np.asarray((gt * (stay - node.cpt[None, ...])).sum(axis=axes))
    return cpt, keep


def _derivative(tree: Tree, par: Parameter, g: _Grad, cpt: Mapping[str, FloatArray],
                keep: Mapping[str, FloatArray]) -> float:  # fmt: skip
    if par.kind == "probability":
        node = tree.nodes[par.owner]
        row_idx = par.index[:-1]
        return _covary(node.cpt[row_idx], cpt[par.owner][row_idx], par.index[-1])
    if par.kind == "transition":
        node = tree.nodes[par.owner]
        assert node.transition is not None
        row_idx = par.index[:-1]
        return _covary(node.transition[row_idx], g.transition[par.owner][row_idx], par.index[-1])
    if par.kind == "persistence":
        per_state = keep[par.owner]
        return float(per_state[par.index[0]]) if par.index else float(per_state.sum())
    if par.kind == "indicator":
        ind = tree.indicators[par.owner]
        if par.name == "probs":
            row_idx = par.index[:-1]
            return _covary(
                ind.params["probs"][row_idx], g.params[par.owner]["probs"][row_idx], par.index[-1]
            )
        return float(g.params[par.owner][par.name][par.index])
    return float(g.reliability[par.owner])


# -- exact values at the ends of an interval ---------------------------------------------------


def _moved_row(row: FloatArray, j: int, value: float) -> FloatArray:
    theta = float(row[j])
    out = row.copy()
    if theta < 1.0:
        out = row * (1.0 - value) / (1.0 - theta)
    else:
        out = np.full(len(row), (1.0 - value) / max(1, len(row) - 1))
    out[j] = value
    return np.asarray(out, dtype=np.float64)


def _moved_tables(tree: Tree, par: Parameter, value: float) -> tuple[FloatArray, FloatArray | None]:
    node = tree.nodes[par.owner]
    spec = tree.spec.nodes[par.owner]
    cpt, transition = node.cpt.copy(), None if node.transition is None else node.transition.copy()
    dyn = spec.dynamic
    keep = None
    if dyn is not None and dyn.transitions is None:
        pers = dyn.persistence
        keep = np.array(
            [pers[s] for s in node.states]
            if isinstance(pers, dict)
            else [float(pers or 0.0)] * node.card
        )
    if par.kind == "probability":
        cpt[par.index[:-1]] = _moved_row(node.cpt[par.index[:-1]], par.index[-1], value)
    elif par.kind == "transition":
        assert transition is not None
        transition[par.index[:-1]] = _moved_row(transition[par.index[:-1]], par.index[-1], value)
    elif par.kind == "persistence":
        assert keep is not None
        keep = keep.copy()
        if par.index:
            keep[par.index[0]] = value
        else:
            keep[:] = value
    if keep is not None:
        transition = persistence_transition(keep, cpt)
    return cpt, transition


def _moved_indicator(ind: CompiledIndicator, par: Parameter, value: float) -> CompiledIndicator:
    params = {k: v.copy() for k, v in ind.params.items()}
    if par.name == "probs":
        row = params["probs"][par.index[:-1]]
        params["probs"][par.index[:-1]] = _moved_row(row, par.index[-1], value)
    else:
        params[par.name][par.index] = value
    return replace(ind, params=params)


def _genuine_with(
    model: ExactModel, net: Network, part: _ReportParts, ind: CompiledIndicator
) -> FloatArray:
    """A report's genuine log table with ``ind`` (changed parameters) in place of the tree's."""
    out = np.zeros(part.genuine.shape)
    for k, (iid, step, values) in enumerate(part.groups):
        if iid == ind.name:
            out = out + _group_table(net, part.union, ind, step, values)
            continue
        if k not in part.placed:  # the same for every move of another indicator
            use = model.tree.readable[iid]
            part.placed[k] = _group_table(net, part.union, use, step, values)
        out = out + part.placed[k]
    return out


def _group_table(
    net: Network,
    union: tuple[int, ...],
    ind: CompiledIndicator,
    step: int | None,
    values: tuple[float, ...],
) -> FloatArray:
    """One group's log-likelihood under every state of ``ind``'s scope, placed over ``union``."""
    table = report_log_likelihood(ind, np.array(values), ind.spec.correlation())
    index, scope = net.placement([(n, step) for n in ind.scope])
    placed = table[index]
    order = sorted(range(len(scope)), key=lambda i: union.index(scope[i]))
    shape = tuple(net.cards[v] if v in scope else 1 for v in union)
    return np.asarray(np.transpose(placed, order).reshape(shape), dtype=np.float64)


def _exact(
    model: ExactModel,
    query: Query,
    moves: Sequence[tuple[Parameter, float]],
    outcomes: Sequence[str],
    parts: Sequence[_ReportParts],
) -> FloatArray:
    """Each outcome's probability with each (parameter, value) moved: (outcomes, moves).

    Moves of a table (which change the prior, and so every report's prior predictive) and
    moves of an indicator or a reliability (which change only reports) go in separate batches.
    ``parts`` are the query's reports taken apart (:func:`_report_parts`).
    """
    out = np.zeros((len(outcomes), len(moves)))
    tables = [k for k, (p, _) in enumerate(moves) if p.kind not in ("indicator", "reliability")]
    reports = [k for k, (p, _) in enumerate(moves) if p.kind in ("indicator", "reliability")]
    for group in (tables, reports):
        for start in range(0, len(group), _CHUNK):
            ids = group[start : start + _CHUNK]
            chunk = [moves[k] for k in ids]
            out[:, ids] = _exact_chunk(model, query, parts, chunk, outcomes)
    return out


def _exact_chunk(
    model: ExactModel,
    query: Query,
    parts: Sequence[_ReportParts],
    moves: Sequence[tuple[Parameter, float]],
    outcomes: Sequence[str],
) -> FloatArray:
    tree = model.tree
    net = query.network
    jt = query.structure.jt
    size = len(moves)
    # the tables: every node a member moves gets a batch axis
    moved_nodes = {
        p.owner for p, _ in moves if p.kind in ("probability", "transition", "persistence")
    }
    tables: dict[str, tuple[FloatArray, FloatArray | None]] = {}
    for name in moved_nodes:
        node = tree.nodes[name]
        cpts = np.repeat(node.cpt[..., None], size, axis=-1)
        trans = None if node.transition is None else np.repeat(node.transition[..., None], size, -1)
        for b, (par, value) in enumerate(moves):
            if par.owner == name and par.kind != "indicator" and par.kind != "reliability":
                c, t = _moved_tables(tree, par, value)
                cpts[..., b] = c
                if trans is not None and t is not None:
                    trans[..., b] = t
        tables[name] = (cpts, trans)
    base_prior = net.prior_factors(tables, weigh_by_tables=True) if tables else list(net.factors)
    if tables:
        prior = jt.calibrate(base_prior, size)
    reports: list[Factor] = []
    for part in parts:
        rep = part.report
        genuine = np.repeat(part.genuine[..., None], size, axis=-1)
        rel = np.full(size, rep.reliability)
        for b, (par, value) in enumerate(moves):
            if par.kind == "indicator" and any(i == par.owner for i, _, _ in part.groups):
                ind = _moved_indicator(tree.indicators[par.owner], par, value)
                genuine[..., b] = _genuine_with(model, net, part, ind)
            elif par.kind == "reliability" and rep.source == par.owner:
                rel[b] = value
        if tables:
            with np.errstate(divide="ignore"):
                log_prior = np.log(prior.joint(part.union))
        else:
            log_prior = np.repeat(part.log_prior[..., None], size, axis=-1)
        log_q = logsumexp(genuine + log_prior, axis=tuple(range(len(part.union))))
        with np.errstate(divide="ignore"):
            lik = np.logaddexp(np.log(rel) + genuine, np.log1p(-rel) + log_q)
        reports.append((part.union, np.asarray(lik, dtype=np.float64)))
    assumptions = list(query.base[len(net.factors) :])
    factors = [*base_prior, *assumptions, *merge_factors(reports)]
    # one upward pass: the outcomes' totals reuse its messages below the first clique their
    # masks touch (the years before the horizon are not summed again)
    every, _ = model.outcome_totals(query, factors, size, outcomes)
    return np.stack([every[oid] for oid in outcomes])


# -- the analysis -------------------------------------------------------------------------------


def _linear(tree: Tree, par: Parameter, query: Query) -> bool:
    """Whether the evidence's probability is linear in ``par`` (so the first order is exact)."""
    if par.kind != "probability" or par.owner not in tree.nodes:
        return False
    if tree.nodes[par.owner].kind != "static":
        return False
    if query.network.lo < 0 and any(
        node.kind == "dynamic" and any(tree.nodes[p].kind == "static" for p in node.parents)
        for node in tree.nodes.values()
    ):
        return False  # the backward chain averages static parents with their prior: a ratio
    return all(rep.reliability >= 1.0 for rep in query.evidence.reports)


def sensitivity(
    model: ExactModel,
    readings: Sequence[Reading],
    *,
    as_of: dt.date | None = None,
    outcomes: Sequence[str] | None = None,
    exact: int = TORNADO,
) -> SensitivityResult:
    """The derivative of every outcome with respect to every number in the tree, and ranges.

    Parameters
    ----------
    model
        The prepared model of the tree.
    readings
        The ledger's readings (those that count as of ``as_of`` are the evidence).
    as_of
        The day the evidence stands on (default: today).
    outcomes
        Only these outcomes (default: every outcome).
    exact
        For this many numbers per outcome (those that move it most, by the first-order
        estimate, and a few more in reserve), the ranges are recomputed exactly; 0 keeps
        the first-order estimate everywhere.

    Raises
    ------
    QueryError
        For an unknown outcome, or a tree without outcomes.
    EvidenceConflictError
        If the evidence has zero probability.
    """
    tree = model.tree
    if not tree.outcomes:
        raise QueryError(f"tree '{tree.id}' has no outcomes: nothing depends on its numbers")
    wanted = list(outcomes) if outcomes else list(tree.outcomes)
    for oid in wanted:
        check_outcome(tree, oid)
    as_of = as_of or dt.date.today()
    evidence = select_evidence(tree, readings, as_of)
    query = model.query(evidence)
    joints = OutcomeJoints(model, query, wanted)
    probs = {o: joints.probability(o) for o in wanted}
    targets: dict[str, list[tuple[Term, float]]] = {
        o: [*((t, t.weight) for t in joints.terms[o]), (joints.evidence, -probs[o])] for o in wanted
    }
    targets[""] = [(joints.evidence, 1.0)]  # d log P(evidence)
    parts = _report_parts(model, query)  # the reports taken apart, once for every use below
    grads = _gradients(model, query, joints, targets, parts)
    pars = parameters(tree)
    prepared = {t: _node_grads(tree, g) for t, g in grads.items()}
    d_evidence = [_derivative(tree, p, grads[""], *prepared[""]) for p in pars]
    effects: dict[str, list[Effect]] = {}
    for o in wanted:
        cpt, keep = prepared[o]
        row: list[Effect] = []
        for p, d_ev in zip(pars, d_evidence, strict=True):
            d = _derivative(tree, p, grads[o], cpt, keep)
            ends = []
            for value in (p.low, p.high):
                delta = value - p.value
                num = probs[o] + delta * (d + probs[o] * d_ev)
                den = 1.0 + delta * d_ev
                # the ratio of the two totals' tangents; where the evidence's tangent reaches 0
                # before the end, the outcome's own tangent
                guess = num / den if den > 0 else probs[o] + delta * d
                ends.append(min(1.0, max(0.0, guess)))
            row.append(Effect(d, ends[0], ends[1], _linear(tree, p, query)))
        effects[o] = row
    notes: list[str] = []
    if exact > 0:
        # recompute the numbers that look largest, until the first ``exact`` of every outcome
        # are all recomputed (the first-order estimate decides only which to try)
        for rounds in range(4):
            chosen: set[int] = set()
            reserve = exact + (max(2, exact // 4) if rounds == 0 else 0)
            for o in wanted:
                swings = np.array([e.swing for e in effects[o]])
                order = np.argsort(-swings, kind="stable")[:reserve]
                chosen.update(int(i) for i in order if not effects[o][int(i)].exact)
            if not chosen:
                break
            picked = sorted(chosen)
            moves = [(pars[i], v) for i in picked for v in (pars[i].low, pars[i].high)]
            values = _exact(model, query, moves, wanted, parts)
            for k, i in enumerate(picked):
                for n, o in enumerate(wanted):
                    old = effects[o][i]
                    effects[o][i] = Effect(
                        old.derivative, float(values[n, 2 * k]), float(values[n, 2 * k + 1]), True
                    )
    return SensitivityResult(
        tree_id=tree.id,
        as_of=as_of,
        probabilities=probs,
        parameters=tuple(pars),
        effects={o: tuple(v) for o, v in effects.items()},
        evidence=tuple(d_evidence),
        notes=tuple(notes),
    )
