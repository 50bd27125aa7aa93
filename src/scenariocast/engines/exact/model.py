"""The exact engine: Bayes' rule on the whole tree, by junction tree, NumPy only.

What a report means (docs/evidence.md): the readings of one source on one observed date (or
with one report id) are one report, genuine with the source's reliability ``r`` and otherwise
carrying no information, so its likelihood is ``r * p(x | states) + (1 - r) * q(x)``. Here
``p`` is the joint density of the report's readings (readings of one continuous indicator at one
step share an error, the indicator's within-report correlation; different indicators are
independent given the states) and ``q`` is the report's prior predictive (under the tree's
prior, before assumptions and evidence). Every product is a sum of logs.

A tree with dynamic nodes is unrolled over the steps of its horizon (:mod:`.network`); the
junction tree of the unrolled network is built once per structure and reused, so the cost of a
forecast grows linearly with the number of steps.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from scenariocast.bulk import bulk
from scenariocast.engines.exact.junction import (
    Calibrated,
    Factor,
    FloatArray,
    JunctionTree,
    LinearCalibrated,
    Reduction,
)
from scenariocast.engines.exact.network import (
    Assumption,
    Network,
    parse_assumptions,
)
from scenariocast.engines.exact.small import SmallJoint, small_joint
from scenariocast.engines.exact.support import Support
from scenariocast.engines.result import ForecastResult, OutcomeForecast, Scenario, StepForecast
from scenariocast.errors import EvidenceConflictError
from scenariocast.evidence.likelihood import logsumexp, report_log_likelihood
from scenariocast.evidence.nodes import Finding, findings_from
from scenariocast.evidence.readings import Reading
from scenariocast.evidence.select import Evidence, Report, select_evidence
from scenariocast.spec.tree import Tree

TOP_SCENARIOS = 5
#: Whether a small static tree is forecast from its joint (:mod:`.small`) when only hard
#: evidence is given; ``False`` sends every forecast through the junction tree (for tests).
USE_JOINT = True
#: Rounds of iterative proportional fitting for soft findings, and how close each marginal
#: must come to its target.
SOFT_ITERATIONS = 500
SOFT_TOLERANCE = 1e-10

_Scopes = frozenset[tuple[int, ...]]
_ReductionKey = tuple[frozenset[int], tuple[tuple[int, int], ...]]
#: The most sets of observed states whose reduction a model keeps.
REDUCTIONS_KEPT = 4096
#: A report's values by (indicator, step), in the order observed.
_Groups = dict[tuple[str, int | None], list[float]]


def _groups(report: Report) -> _Groups:
    """A report's values by (indicator, step), in the order observed."""
    groups: _Groups = defaultdict(list)
    for o in report.observations:
        groups[(o.indicator, o.step)].append(o.value)
    return groups


@dataclass(frozen=True)
class Belief:
    """One calibration of a structure (reduced by hard evidence, or not) and its constant.

    Reads like a :class:`~.junction.Calibrated` of the whole network: ``marginal`` gives every
    variable's marginal over all its states (one-hot for an observed one) and ``log_z`` includes
    the factors the reduction turned into constants.
    """

    structure: Structure
    cal: Calibrated | LinearCalibrated
    const: float
    factors: tuple[Factor, ...]  # the reduced factors calibrated

    batch = None

    @property
    def log_z(self) -> float:
        """Log of the total (unnormalised) probability."""
        return float(self.cal.log_z) + self.const

    @property
    def reduction(self) -> Reduction:
        """The hard evidence taken out of the factors."""
        return self.structure.reduction

    def marginal(self, var: int) -> FloatArray:
        """The variable's marginal over all its states."""
        card = self.structure.network.cards[var]
        return self.reduction.expand(var, self.cal.marginal(var), card)

    def log_z_with(self, extra: Sequence[Factor]) -> float:
        """The log normaliser with ``extra`` factors (over the whole network's variables)."""
        reduced, const = self.reduction.apply(extra)
        if not math.isfinite(const):
            return -math.inf
        return float(self.cal.log_z_with(reduced)) + const + self.const


@dataclass(frozen=True)
class Posterior:
    """Node marginals and log normalising constant of one calibration."""

    calibrated: Belief
    nodes: dict[str, dict[str, float]]

    @property
    def log_z(self) -> float:
        """Log of the total (unnormalised) probability."""
        return self.calibrated.log_z


@dataclass
class Structure:
    """A network with the junction tree for its factors and the readings' scopes.

    ``reports`` keeps the factor of each report already seen on this structure (a report's
    factor depends only on its readings and the prior), so that forecasting again after a new
    reading computes only the new report's. A structure reduced by hard evidence
    (``reduction``) has the junction tree of the reduced factors; ``full`` is then the
    structure it was reduced from, which holds the tree's prior.
    """

    network: Network
    scopes: tuple[tuple[int, ...], ...]
    # the junction tree, or how to build it when first needed (a forecast given hard evidence
    # calibrates only the reduced structure's)
    junction: JunctionTree | Callable[[], JunctionTree]
    reports: dict[tuple[object, ...], Factor] = field(default_factory=dict)
    reduction: Reduction = field(default_factory=Reduction)
    full: Structure | None = None
    _prior: Calibrated | LinearCalibrated | None = field(default=None, repr=False)
    # the network's factors, when the reduction also took out states their zeros rule out: a
    # calibration is exact only on factors that include them
    pruned_by: tuple[Factor, ...] = ()

    @property
    def jt(self) -> JunctionTree:
        """The junction tree of the structure's factors (built on first use)."""
        if not isinstance(self.junction, JunctionTree):
            self.junction = self.junction()
        return self.junction

    @property
    def prior(self) -> Calibrated | LinearCalibrated:
        """The tree's prior, without assumptions or evidence, on the full structure (kept)."""
        if self.full is not None:
            return self.full.prior
        if self._prior is None:
            self._prior = self.jt.calibrate_linear(self.network.factors)
        return self._prior

    def calibrate(self, factors: Sequence[Factor]) -> Belief:
        """Calibrate on ``factors`` (over the whole network), reduced by the hard evidence."""
        need = self.pruned_by
        if need and not (
            len(factors) >= len(need) and all(a is b for a, b in zip(need, factors, strict=False))
        ):
            raise ValueError(
                "a structure narrowed by the zeros of the network's tables calibrates only "
                "factors that start with those tables"
            )
        reduced, const = self.reduction.apply(factors)
        return Belief(self, self.jt.calibrate_linear(reduced), const, tuple(reduced))

    # the genuine log-likelihood of the readings of one indicator at one step, by their values
    groups: dict[tuple[str, int | None, tuple[float, ...]], Factor | None] = field(
        default_factory=dict
    )
    # the log of the prior joint of a report's variables
    log_priors: dict[tuple[int, ...], FloatArray] = field(default_factory=dict)


@dataclass(frozen=True)
class Query:
    """One forecast's factors: the prior with the assumptions, and one factor per report."""

    structure: Structure
    evidence: Evidence
    assumptions: tuple[Assumption, ...]
    base: tuple[Factor, ...]
    report_factors: tuple[Factor, ...]  # in the order of evidence.reports

    @property
    def network(self) -> Network:
        """The unrolled network."""
        return self.structure.network

    @property
    def given(self) -> dict[str, str]:
        """The assumptions as given (key -> state name)."""
        tree = self.network.tree
        return {a.key: tree.nodes[a.node].states[a.state] for a in self.assumptions}

    def factors(self, n_reports: int | None = None) -> list[Factor]:
        """The prior, the assumptions and the first ``n_reports`` reports (default: all)."""
        reports = self.report_factors if n_reports is None else self.report_factors[:n_reports]
        return [*self.base, *merge_factors(reports)]


@dataclass(frozen=True)
class OutcomeEvent:
    """One term of an outcome's probability: ``P(outcome, evidence) = sum of sign * Z``.

    ``Z`` is the total probability of the query's factors and ``extra`` on ``jt``: the junction
    tree of the query's structure, or one with a counter of steps for an ``at_least`` outcome.
    An outcome on a static node or at the horizon's end is one term (the node's states masked);
    ``ever`` is two (everything, less the paths never in the states); ``at_least k`` is one, on
    the counter's junction tree.
    """

    jt: JunctionTree
    extra: tuple[Factor, ...]
    sign: float


@dataclass(frozen=True)
class Draws:
    """Forecast quantities for a batch of parameter draws; the last axis is the draw.

    ``outcomes`` and ``prior_outcomes`` (outcome -> (B,)), ``nodes`` (node -> (states, B), at
    the as-of date's step), ``steps`` (dynamic node -> (steps, states, B)), ``log_evidence``
    (B,).
    """

    outcomes: dict[str, FloatArray]
    prior_outcomes: dict[str, FloatArray]
    nodes: dict[str, FloatArray]
    steps: dict[str, FloatArray]
    log_evidence: FloatArray


class ExactModel:
    """A tree prepared for exact inference; reuse it for many forecasts of the same tree.

    Junction trees are built once per structure (the steps the readings span, and the nodes
    each report touches) and kept, so that a second forecast after a new reading costs one
    calibration.
    """

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self._networks: dict[tuple[int, int], Network] = {}
        self._structures: dict[tuple[int, int, _Scopes], Structure] = {}
        self._counters: dict[
            tuple[int, int, _Scopes, str, _ReductionKey], tuple[JunctionTree, list[Factor]]
        ] = {}
        self._priors: dict[
            tuple[int, int, _Scopes, int], tuple[Posterior, dict[str, FloatArray]]
        ] = {}
        self._reduced_trees: dict[tuple[int, int, _Scopes, _ReductionKey], JunctionTree] = {}
        # per unrolled network: the states its tables allow (None: no table has a zero)
        self._supports: dict[tuple[int, int], Support | None] = {}
        # per unrolled network and observed states: the reduction they give, kept
        self._reductions: dict[tuple[int, int, tuple[tuple[int, int], ...]], Reduction] = {}
        self._covers: dict[tuple[int, int], _Cover] = {}
        # per unrolled network and step: each node's variable and states
        self._read: dict[tuple[int, int, int], tuple[tuple[str, int, tuple[str, ...]], ...]] = {}
        self._top_trees: dict[tuple[int, int, _Scopes, _ReductionKey], JunctionTree] = {}
        self._small: SmallJoint | None = None
        self._small_checked = False

    # -- structure ---------------------------------------------------------------------------

    def small(self) -> SmallJoint | None:
        """The tree's joint, kept, when the tree is small and static (:mod:`.small`)."""
        if not self._small_checked:
            self._small = small_joint(self.tree) if USE_JOINT else None
            self._small_checked = True
        return self._small

    def network(self, lo: int = 0, hi: int | None = None) -> Network:
        """The tree unrolled over steps ``lo..hi`` (the horizon at least), built once."""
        steps = self.tree.steps
        n = steps.n if steps is not None and self.tree.is_dynamic else 1
        key = (min(lo, 0), max(n - 1 if hi is None else hi, n - 1))
        if key not in self._networks:
            self._networks[key] = Network.build(self.tree, *key)
        return self._networks[key]

    def _indicator_scopes(self, net: Network) -> list[tuple[int, ...]]:
        out: list[tuple[int, ...]] = []
        for ind in self.tree.indicators.values():
            if net.timed and self.tree.varies(ind.scope):
                out += [net.scope_at(ind.scope, t) for t in range(net.lo, net.hi + 1)]
            else:
                out.append(net.scope_at(ind.scope, None))
        return [s for s in out if s]

    def structure(self, net: Network, extra: _Scopes = frozenset()) -> Structure:
        """The junction tree for ``net``'s factors, every indicator and the scopes ``extra``."""
        key = (net.lo, net.hi, extra)
        if key not in self._structures:
            scopes = (
                *(s for s, _ in net.factors),
                *self._indicator_scopes(net),
                *sorted(extra),
            )

            def build(
                net: Network = net, scopes: tuple[tuple[int, ...], ...] = scopes
            ) -> JunctionTree:
                return JunctionTree(net.cards, scopes, rank=net.ranks if net.timed else None)

            self._structures[key] = Structure(net, scopes, build)
        return self._structures[key]

    def reduced(self, structure: Structure, observed: Mapping[int, int]) -> Structure:
        """``structure`` with the variables ``observed`` (variable -> state) taken out.

        The states of probability 0 given ``observed`` (where the tables have zeros, see
        :mod:`.support`) are taken out too: a variable left with one state is taken out like an
        observed one, and one left with fewer states keeps only those. The junction tree depends
        only on which variables are taken out and how many states the others keep, so it is
        built once per such shape; the states are sliced per query.
        """
        net = structure.network
        reduction = self._reduction(net, observed)
        if not reduction.observed and not reduction.kept:
            return structure
        key = (net.lo, net.hi, frozenset(structure.scopes), reduction.key)
        jt = self._reduced_trees.get(key)
        if jt is None:
            jt = JunctionTree(
                reduction.cards(net.cards),
                [reduction.scope(sc) for sc in structure.scopes],
                rank=net.ranks if net.timed else None,
            )
            self._reduced_trees[key] = jt
        return Structure(
            net,
            structure.scopes,
            jt,
            structure.reports,
            reduction=reduction,
            full=structure,
            pruned_by=net.factors
            if reduction.kept or len(reduction.observed) > len(observed)
            else (),
        )

    def _reduction(self, net: Network, observed: Mapping[int, int]) -> Reduction:
        """The hard evidence ``observed`` and the states it leaves possible (kept per model)."""
        items = tuple(sorted(observed.items()))
        key = (net.lo, net.hi, items)
        found = self._reductions.get(key)
        if found is not None:
            return found
        fixed = dict(items)
        kept: list[tuple[int, tuple[int, ...]]] = []
        if (net.lo, net.hi) not in self._supports:
            tables = Support(net.cards, net.factors)
            self._supports[(net.lo, net.hi)] = tables if tables.any_zero else None
        support = self._supports[(net.lo, net.hi)]
        # (an impossible set of states is left to the calibration, which reports it)
        narrowed = support.narrowed(fixed) if support is not None else None
        if support is not None and narrowed is not None:
            flat, counts = narrowed
            offsets = support.offsets
            for v, (n, card) in enumerate(zip(counts, net.cards, strict=True)):
                if n == card or v in fixed:
                    continue
                states = tuple(np.flatnonzero(flat[offsets[v] : offsets[v + 1]]).tolist())
                if n == 1:
                    fixed[v] = states[0]
                else:
                    kept.append((v, states))
        reduction = Reduction(tuple(sorted(fixed.items())), tuple(kept))
        if len(self._reductions) >= REDUCTIONS_KEPT:
            self._reductions.clear()
        self._reductions[key] = reduction
        return reduction

    def _top_tree(self, structure: Structure) -> JunctionTree:
        """The junction tree that finds the most probable end states of ``structure``.

        The end states (the static variables and the dynamic ones at the horizon's last step)
        are eliminated after every other variable, so that a sum over the others followed by a
        maximum over them ranks whole scenarios (:meth:`JunctionTree.top_k`). A tree without
        steps needs nothing held back: its own junction tree does.
        """
        net = structure.network
        if not net.timed:
            return structure.jt
        reduction = structure.reduction
        key = (net.lo, net.hi, frozenset(structure.scopes), reduction.key)
        jt = self._top_trees.get(key)
        if jt is None:
            jt = JunctionTree(
                reduction.cards(net.cards),
                [reduction.scope(sc) for sc in structure.scopes],
                rank=net.forward_ranks,
                # (none left when every end variable is observed or has one possible state:
                # then the one scenario, everything else summed)
                last=set(self._end_variables(net)) - reduction.variables,
            )
            self._top_trees[key] = jt
        return jt

    def _end_variables(self, net: Network) -> tuple[int, ...]:
        """The static variables and the dynamic ones at the horizon's last step."""
        steps = self.tree.steps
        end = steps.n - 1 if steps is not None else 0
        return tuple(
            net.var_of[net.at(n, end)]
            for n, node in self.tree.nodes.items()
            if node.kind != "calendar"
        )

    @bulk
    def query(
        self,
        evidence: Evidence,
        given: Mapping[str, str] | None = None,
        *,
        steps: Sequence[int] = (),
    ) -> Query:
        """The factors of one forecast: the prior, the assumptions and the reports.

        ``steps`` are further steps the unrolled network must hold (where a reading not yet
        taken would be observed, for the value of information).
        """
        assumptions = parse_assumptions(self.tree, dict(given or {}))
        steps = [*steps, *(o.step for o in evidence.observations if o.step is not None)]
        steps += [t for a in assumptions for t in a.steps if t is not None]
        steps += [t for f in evidence.findings for t in f.steps if t is not None]
        net = self.network(min(steps, default=0), max(steps, default=0))
        grouped = [_groups(rep) for rep in evidence.reports]
        unions = [self._groups_scope(net, groups) for groups in grouped]
        extra: _Scopes = frozenset()
        if any(len(u) > 1 for u in unions):
            covered = self._covers.get((net.lo, net.hi))
            if covered is None:
                base_scopes = (*(s for s, _ in net.factors), *self._indicator_scopes(net))
                covered = self._covers[(net.lo, net.hi)] = _Cover(base_scopes)
            extra = frozenset(u for u in unions if len(u) > 1 and not covered(u))
        structure = self.structure(net, extra)
        factors = tuple(
            self._cached_report_factor(structure, rep, groups, union)
            for rep, groups, union in zip(evidence.reports, grouped, unions, strict=True)
        )
        base = (*net.factors, *self._assumption_factors(net, assumptions))
        return Query(structure, evidence, tuple(assumptions), base, factors)

    def _assumption_factors(self, net: Network, assumptions: Sequence[Assumption]) -> list[Factor]:
        out: list[Factor] = []
        for a in assumptions:
            card = self.tree.nodes[a.node].card
            values = np.full(card, -np.inf)
            values[a.state] = 0.0
            out += [((net.var_of[net.at(a.node, t)],), values) for t in a.steps]
        return out

    def _report_scope(self, net: Network, report: Report) -> tuple[int, ...]:
        """The variables a report's readings depend on."""
        return self._groups_scope(net, _groups(report))

    def _groups_scope(self, net: Network, groups: _Groups) -> tuple[int, ...]:
        scope: set[int] = set()
        for name, step in groups:
            scope.update(net.scope_at(self.tree.readable[name].scope, step))
        return tuple(sorted(scope))

    def report_scope(self, net: Network, report: Report) -> tuple[int, ...]:
        """The variables of ``net`` a report's readings depend on (its union scope)."""
        return self._report_scope(net, report)

    def _cached_report_factor(
        self, structure: Structure, report: Report, groups: _Groups, union: tuple[int, ...]
    ) -> Factor:
        # the factor follows from the reliability and the values of each (indicator, step)
        # group, in order
        key = (report.reliability, tuple((k, tuple(v)) for k, v in groups.items()))
        if key not in structure.reports:
            parts = self._placed(structure.network, groups, structure.groups)
            structure.reports[key] = self._report_factor(structure, report, parts, union)
        return structure.reports[key]

    def report_factor(self, structure: Structure, report: Report) -> Factor:
        """A report's log-likelihood factor on ``structure`` (kept for the next forecast)."""
        groups = _groups(report)
        union = self._groups_scope(structure.network, groups)
        return self._cached_report_factor(structure, report, groups, union)

    def genuine_table(self, net: Network, report: Report, union: tuple[int, ...]) -> FloatArray:
        """``log p(report | states)`` over the variables ``union`` (the report if genuine)."""
        return _genuine(net, self._placed(net, _groups(report)), union)

    def _report_groups(self, structure: Structure, report: Report) -> list[Factor]:
        """The genuine log-likelihood of each (indicator, step) group of a report."""
        return self._placed(structure.network, _groups(report), structure.groups)

    def _placed(
        self,
        net: Network,
        groups: _Groups,
        kept: dict[tuple[str, int | None, tuple[float, ...]], Factor | None] | None = None,
    ) -> list[Factor]:
        """The genuine log-likelihood of each (indicator, step) group, placed on variables.

        With ``kept`` (a structure's), each group's table is kept by its values (reports often
        repeat the same reading).
        """
        parts: list[Factor] = []
        for (name, step), values in groups.items():
            key = (name, step, tuple(values))
            if kept is not None and key in kept:
                placed = kept[key]
            else:
                ind = self.tree.readable[name]
                table = report_log_likelihood(ind, np.array(values), ind.spec.correlation())
                placed = net.place([(n, step) for n in ind.scope], table)
                if kept is not None:
                    kept[key] = placed
            if placed is not None:
                parts.append(placed)
        return parts

    @staticmethod
    def _report_factor(
        structure: Structure, report: Report, parts: Sequence[Factor], union: tuple[int, ...]
    ) -> Factor:
        """``log(r p(report | states) + (1 - r) q(report))`` over the report's variables."""
        genuine = _genuine(structure.network, parts, union)
        log_prior = structure.log_priors.get(union)
        if log_prior is None:
            with np.errstate(divide="ignore"):
                log_prior = structure.log_priors[union] = np.log(structure.prior.joint(union))
        return (union, report_log_factor(genuine, log_prior, report.reliability))

    # -- queries -----------------------------------------------------------------------------

    def posterior(
        self, query: Query, factors: Sequence[Factor], structure: Structure | None = None
    ) -> Posterior:
        """Calibrate on ``factors`` and read off every node's marginal (now, for dynamic).

        ``structure`` is the query's structure reduced by hard evidence (default: the query's).
        """
        return self._marginals(query, (structure or query.structure).calibrate(factors))

    def _marginals(self, query: Query, cal: Belief) -> Posterior:
        nodes: dict[str, dict[str, float]] = {}
        if math.isfinite(cal.log_z):
            net = query.network
            now = self._now_step(query.evidence.as_of)
            key = (net.lo, net.hi, now)
            read = self._read.get(key)
            if read is None:
                read = self._read[key] = tuple(
                    (name, net.var_of[net.at(name, now)], tuple(node.states))
                    for name, node in self.tree.nodes.items()
                    if node.kind != "calendar"
                )
            reduction = cal.reduction
            observed = reduction.observed_states
            kept = reduction.kept_states
            inner = cal.cal
            for name, var, states in read:
                state = observed.get(var)
                if state is None:
                    m = inner.marginal(var)
                    if var in kept:
                        m = reduction.expand(var, m, len(states))
                    nodes[name] = dict(zip(states, m.tolist(), strict=True))
                else:
                    nodes[name] = {s: 1.0 if k == state else 0.0 for k, s in enumerate(states)}
        return Posterior(cal, nodes)

    def _now_step(self, as_of: dt.date) -> int:
        steps = self.tree.steps
        if steps is None or not self.tree.is_dynamic:
            return 0
        return min(max(steps.index(as_of), 0), steps.n - 1)

    def outcome_probabilities(
        self, query: Query, factors: Sequence[Factor], cal: Calibrated | Belief
    ) -> dict[str, FloatArray]:
        """The probability of every outcome given ``factors`` (calibrated as ``cal``).

        In a batched calibration each probability is an array over the batch.
        """
        net = query.network
        steps = self.tree.steps
        out: dict[str, FloatArray] = {}
        for oid, o in self.tree.outcomes.items():
            node = self.tree.nodes[o.node]
            in_set = np.array([s in o.states for s in node.states])
            if node.kind == "static" or o.timing == "end":
                step = None if node.kind == "static" else (steps.n - 1 if steps else 0)
                p = cal.marginal(net.var_of[net.at(o.node, step)])[in_set].sum(axis=0)
            elif o.timing == "ever" or (o.timing == "at_least" and o.k == 1):
                assert steps is not None
                never = np.where(in_set, -np.inf, 0.0)
                masks = [((net.var_of[(o.node, t)],), never) for t in range(steps.n)]
                log_never = cal.log_z_with(masks)
                p = -np.expm1(log_never - cal.log_z)
            else:
                reduction = getattr(cal, "reduction", Reduction())
                counter_jt, counter = self._counter(query, oid, reduction)
                k = int(o.k or 1)
                last = len(net.cards) + (steps.n - 1 if steps else 0)
                hit = np.full(k + 1, -np.inf)
                hit[k] = 0.0
                every, const = reduction.apply([*factors, *counter, ((last,), hit)])
                log_hit = counter_jt.log_z(every, cal.batch) + const
                p = np.exp(log_hit - cal.log_z)
            out[oid] = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
        return out

    def outcome_events(self, query: Query) -> dict[str, tuple[OutcomeEvent, ...]]:
        """Each outcome's probability as a sum of totals (see :class:`OutcomeEvent`).

        ``P(outcome | evidence)`` is the sum over its events of ``sign * exp(log Z - log Z_E)``
        with ``log Z`` the total of the query's factors and the event's ``extra`` on its junction
        tree and ``Z_E`` that of the factors alone; it equals :meth:`outcome_probabilities`.
        """
        net = query.network
        steps = self.tree.steps
        jt = query.structure.jt
        out: dict[str, tuple[OutcomeEvent, ...]] = {}
        for oid, o in self.tree.outcomes.items():
            node = self.tree.nodes[o.node]
            in_set = np.array([s in o.states for s in node.states])
            if node.kind == "static" or o.timing == "end":
                step = None if node.kind == "static" else (steps.n - 1 if steps else 0)
                mask = np.where(in_set, 0.0, -np.inf)
                out[oid] = (OutcomeEvent(jt, (((net.var_of[net.at(o.node, step)],), mask),), 1.0),)
            elif o.timing == "ever" or (o.timing == "at_least" and o.k == 1):
                assert steps is not None
                never = np.where(in_set, -np.inf, 0.0)
                masks = tuple(((net.var_of[(o.node, t)],), never) for t in range(steps.n))
                out[oid] = (OutcomeEvent(jt, (), 1.0), OutcomeEvent(jt, masks, -1.0))
            else:
                counter_jt, counter = self._counter(query, oid)
                k = int(o.k or 1)
                last = len(net.cards) + (steps.n - 1 if steps else 0)
                hit = np.full(k + 1, -np.inf)
                hit[k] = 0.0
                out[oid] = (OutcomeEvent(counter_jt, (*counter, ((last,), hit)), 1.0),)
        return out

    def outcome_totals(
        self,
        query: Query,
        factors: Sequence[Factor],
        batch: int | None = None,
        outcomes: Sequence[str] | None = None,
    ) -> tuple[dict[str, FloatArray], FloatArray]:
        """Each outcome's probability given ``factors`` from one upward pass, and log Z.

        No downward pass: an outcome is a sum of totals (:meth:`outcome_events`), and a total
        on the query's junction tree reuses the upward messages below the first clique its
        masks touch. ``factors`` are over the query's (unreduced) structure and may carry a
        last axis of length ``batch``; so do the results.
        """
        jt = query.structure.jt
        events = self.outcome_events(query)
        upward = jt.upward(factors, batch)
        log_z = np.asarray(upward.log_z, dtype=np.float64)
        shape = log_z.shape
        out: dict[str, FloatArray] = {}
        for oid in outcomes if outcomes is not None else list(self.tree.outcomes):
            total = np.zeros(shape)
            for ev in events[oid]:
                if not ev.extra and ev.jt is jt:
                    total += ev.sign
                    continue
                if ev.jt is jt:
                    lz = np.asarray(upward.log_z_with(ev.extra), dtype=np.float64)
                else:
                    lz = np.asarray(ev.jt.log_z([*factors, *ev.extra], batch), dtype=np.float64)
                with np.errstate(invalid="ignore", over="ignore"):
                    total += ev.sign * np.exp(lz - log_z)
            out[oid] = np.clip(total, 0.0, 1.0)
        return out, log_z

    def evaluate(
        self,
        query: Query,
        tables: Mapping[str, tuple[FloatArray, FloatArray | None]],
        batch: int,
        reports: Sequence[Factor] | None = None,
    ) -> Draws:
        """Every outcome, node and step for ``batch`` sets of tables at once.

        ``tables`` gives each node's table and transition with a last axis of ``batch`` (for
        instance posterior draws); ``reports`` replaces the query's report factors (their last
        axis may be the batch too).
        """
        net = query.network
        jt = query.structure.jt
        assumptions = list(query.base[len(net.factors) :])
        base = [*net.prior_factors(tables), *assumptions]
        prior = jt.calibrate(base, batch)
        evidence = list(query.report_factors) if reports is None else list(reports)
        factors = [*base, *merge_factors(evidence)]
        post = jt.calibrate(factors, batch)
        now = self._now_step(query.evidence.as_of)
        steps = self.tree.steps
        nodes = {
            name: post.marginal(net.var_of[net.at(name, now)])
            for name, node in self.tree.nodes.items()
            if node.kind != "calendar"
        }
        paths = {}
        if net.timed and steps is not None:
            paths = {
                name: np.stack([post.marginal(net.var_of[(name, t)]) for t in range(steps.n)])
                for name, node in self.tree.nodes.items()
                if node.kind == "dynamic"
            }
        return Draws(
            outcomes=self.outcome_probabilities(query, factors, post),
            prior_outcomes=self.outcome_probabilities(query, base, prior),
            nodes=nodes,
            steps=paths,
            log_evidence=np.asarray(post.log_z - prior.log_z, dtype=np.float64),
        )

    def report_log_likelihoods(
        self,
        query: Query,
        tables: Mapping[str, tuple[FloatArray, FloatArray | None]] | None = None,
        batch: int | None = None,
        reports: Sequence[Factor] | None = None,
        *,
        left_out: bool = True,
    ) -> tuple[FloatArray, FloatArray]:
        """Each report's log-likelihood with the states summed out, two ways.

        Returns ``(in_order, left_out)``, each of shape ``(reports[, batch])``: ``in_order[i]``
        is ``log p(report i | reports before it)`` (in the order observed; they add up to the
        log evidence) and ``left_out[i]`` is ``log p(report i | every other report)``. With
        ``left_out=False`` only the first is computed (the second comes back empty), at half
        the cost: what comparing trees needs.
        """
        net = query.network
        jt = query.structure.jt
        assumptions = list(query.base[len(net.factors) :])
        base = [*net.prior_factors(tables), *assumptions]
        evidence = list(query.report_factors) if reports is None else list(reports)
        n = len(evidence)
        totals = [jt.log_z([*base, *merge_factors(evidence[:k])], batch) for k in range(n + 1)]
        in_order = np.array([totals[k + 1] - totals[k] for k in range(n)])
        if not left_out:
            return in_order, np.empty((0,))
        full = totals[n]
        left = np.array(
            [
                full - jt.log_z([*base, *merge_factors(evidence[:i] + evidence[i + 1 :])], batch)
                for i in range(n)
            ]
        )
        return in_order, left

    def _counter(
        self, query: Query, oid: str, reduction: Reduction | None = None
    ) -> tuple[JunctionTree, list[Factor]]:
        """The junction tree with a counter of the steps the outcome's node is in its states.

        Counter ``c_t`` (``k + 1`` states, the last meaning "k or more") is deterministic:
        ``c_0 = [x_0 in S]``, ``c_t = min(k, c_{t-1} + [x_t in S])``. With ``reduction``, the
        tree of the factors reduced by that hard evidence.
        """
        s = query.structure
        reduction = reduction or Reduction()
        key = (s.network.lo, s.network.hi, frozenset(s.scopes), oid, reduction.key)
        if key in self._counters:
            return self._counters[key]
        o = self.tree.outcomes[oid]
        node = self.tree.nodes[o.node]
        steps = self.tree.steps
        assert steps is not None
        k = int(o.k or 1)
        net = s.network
        base = len(net.cards)
        in_set = np.array([st in o.states for st in node.states], dtype=int)
        first = np.full((node.card, k + 1), -np.inf)
        for i in range(node.card):
            first[i, min(k, in_set[i])] = 0.0
        step = np.full((k + 1, node.card, k + 1), -np.inf)
        for c in range(k + 1):
            for i in range(node.card):
                step[c, i, min(k, c + in_set[i])] = 0.0
        factors: list[Factor] = [((net.var_of[(o.node, 0)], base), first)]
        for t in range(1, steps.n):
            factors.append(((base + t - 1, net.var_of[(o.node, t)], base + t), step))
        cards = (*reduction.cards(net.cards), *([k + 1] * steps.n))
        ranks = [*net.ranks, *(net.step_rank(t) for t in range(steps.n))]  # with its step
        scopes = [reduction.scope(sc) for sc in [*s.scopes, *(scope for scope, _ in factors)]]
        jt = JunctionTree(cards, [sc for sc in scopes if sc], rank=ranks)
        self._counters[key] = (jt, factors)
        return jt, factors

    # -- the forecast ------------------------------------------------------------------------

    def observed(self, query: Query, assumptions: Sequence[Assumption] = ()) -> dict[int, int]:
        """The variables the assumptions fix, and their states (hard evidence)."""
        net = query.network
        out: dict[int, int] = {}
        for a in assumptions:
            for t in a.steps:
                var = net.var_of[net.at(a.node, t)]
                if out.get(var, a.state) != a.state:
                    out[var] = -1  # two states at once: nothing is possible
                else:
                    out[var] = a.state
        return out

    def forecast(
        self,
        readings: Sequence[Reading],
        *,
        given: Mapping[str, str] | None = None,
        as_of: dt.date | None = None,
        readings_hash: str = "",
        top: int = TOP_SCENARIOS,
        virtual: Mapping[str, str | Mapping[str, float]] | None = None,
        soft: Mapping[str, str | Mapping[str, float]] | None = None,
    ) -> ForecastResult:
        """Posterior of every node and outcome given the readings, findings and assumptions.

        ``given`` assumes nodes in states (hard evidence, a what-if); ``virtual`` gives
        likelihood ratios on a node's states and ``soft`` the distribution a node's marginal
        must have (Jeffrey's rule), each ``node`` or ``node@date`` -> ``{state: number}`` (see
        :mod:`scenariocast.evidence.nodes`).
        ``top`` is the number of most probable scenarios to find (0 skips the search). Hard
        evidence reduces the tables before calibration, so that every clique is smaller.
        """
        as_of = as_of or dt.date.today()
        if not readings and not virtual and not soft:
            small = self.small()
            if small is not None and small.fits(given or {}):
                # a static tree whose joint given the assumptions is small: that joint
                return small.forecast(given, as_of, top=top, readings_hash=readings_hash)
        evidence = select_evidence(self.tree, readings, as_of)
        extra = [
            *findings_from(self.tree, "virtual", dict(virtual or {})),
            *findings_from(self.tree, "soft", dict(soft or {})),
        ]
        if extra:
            evidence = replace(evidence, findings=(*evidence.findings, *extra))
        query = self.query(evidence, given)
        base = list(query.base)
        observed = self.observed(query, query.assumptions)
        if any(state < 0 for state in observed.values()):
            raise self._impossible(query)
        if query.assumptions:
            prior = self.posterior(query, base, self.reduced(query.structure, observed))
            if not math.isfinite(prior.log_z):
                raise self._impossible(query)
            prior_p = self.outcome_probabilities(query, base, prior.calibrated)
        else:
            prior, prior_p = self._prior(query, as_of)
        factors = query.factors()
        if evidence.findings:
            reduced = self.reduced(query.structure, observed)
            post, factors, log_z = self._posterior_with_findings(query, factors, reduced)
        elif query.report_factors:
            post = self.posterior(query, factors, self.reduced(query.structure, observed))
            if not math.isfinite(post.log_z):
                raise conflict_error(self.tree, query)
            log_z = post.log_z
        else:
            post, log_z = prior, prior.log_z
        post_p = (
            self.outcome_probabilities(query, factors, post.calibrated)
            if post is not prior
            else prior_p
        )
        outcomes = {
            oid: OutcomeForecast(
                id=oid,
                question=o.question,
                probability=float(post_p[oid]),
                prior=float(prior_p[oid]),
                resolve_by=o.resolve_by,
                timing=o.timing,
                k=o.k,
            )
            for oid, o in self.tree.outcomes.items()
        }
        return ForecastResult(
            tree_id=self.tree.id,
            tree_hash=self.tree.file_hash,
            engine="exact",
            as_of=as_of,
            given=query.given,
            evidence=evidence,
            log_evidence=log_z - prior.log_z,
            outcomes=outcomes,
            nodes=post.nodes,
            prior_nodes=prior.nodes,
            top_scenarios=self._scenarios(query, post.calibrated, top),
            readings_hash=readings_hash,
            steps=self._steps(query, post.calibrated, prior.calibrated),
            now_step=self._now_label(as_of),
        )

    def _posterior_with_findings(
        self, query: Query, factors: list[Factor], structure: Structure
    ) -> tuple[Posterior, list[Factor], float]:
        """The posterior with the readings and the findings on nodes.

        A virtual finding is a factor ``log(lambda)`` over the node (at each of its steps). Soft
        findings are fitted by iterative proportional fitting: each node's factor is scaled by
        its target over its current marginal until every marginal is its target (one round for
        one node, as Jeffrey's rule). Returns the posterior, every factor (over the whole
        network) and the log normaliser without the soft findings (Jeffrey's rule is a
        revision, not a likelihood).
        """
        net = query.network
        extra: list[Factor] = []
        soft: list[tuple[Finding, int]] = []
        for f in query.evidence.findings:
            variables = [net.var_of[net.at(f.node, t)] for t in f.steps]
            if f.kind == "soft":
                soft += [(f, v) for v in variables]
                continue
            with np.errstate(divide="ignore"):
                lam = np.log(np.asarray(f.values, dtype=np.float64))
            extra += [((v,), lam) for v in variables]
        every = [*factors, *extra]
        post = self.posterior(query, every, structure)
        if not math.isfinite(post.log_z):
            if extra:
                raise self._conflict(query, "the virtual evidence rules every scenario out")
            raise conflict_error(self.tree, query)
        log_z = post.log_z
        if not soft:
            return post, every, log_z
        fitted: dict[int, FloatArray] = {v: np.zeros(net.cards[v]) for _, v in soft}
        targets = [(f, v, np.asarray(f.values, dtype=np.float64)) for f, v in soft]
        soft_factors: list[Factor] = []
        for _ in range(SOFT_ITERATIONS):
            worst = 0.0
            for f, v, q in targets:
                m = post.calibrated.marginal(v)
                if np.any((q > 0) & (m <= 0)):
                    states = self.tree.nodes[f.node].states
                    shown = ", ".join(
                        s for s, a, b in zip(states, q, m, strict=True) if a > 0 and b <= 0
                    )
                    raise self._conflict(
                        query,
                        f"soft evidence on {f.key} gives probability to {shown}, which the "
                        "other evidence rules out",
                    )
                off = float(np.abs(m - q).max())
                worst = max(worst, off)
                if off < SOFT_TOLERANCE:
                    continue
                with np.errstate(divide="ignore"):
                    step = np.where(q > 0, np.log(np.where(q > 0, q, 1.0)) - np.log(m), -np.inf)
                fitted[v] = fitted[v] + step
                soft_factors = [((u,), table) for u, table in fitted.items()]
                post = self.posterior(query, [*every, *soft_factors], structure)
            if worst < SOFT_TOLERANCE:
                break
        else:
            raise self._conflict(
                query,
                f"the soft findings cannot all hold at once (still {worst:.2g} off after "
                f"{SOFT_ITERATIONS} rounds)",
            )
        return post, [*every, *soft_factors], log_z

    def _conflict(self, query: Query, why: str) -> EvidenceConflictError:
        shown = "; ".join(f.describe() for f in query.evidence.findings[:6])
        return EvidenceConflictError(f"{why} in tree '{self.tree.id}' ({shown})")

    def _impossible(self, query: Query) -> EvidenceConflictError:
        shown = ", ".join(f"{k}={v}" for k, v in query.given.items())
        return EvidenceConflictError(
            f"the assumptions {shown} have zero probability in tree '{self.tree.id}'"
        )

    def _prior(self, query: Query, as_of: dt.date) -> tuple[Posterior, dict[str, FloatArray]]:
        """The prior (no assumption, no evidence) and its outcome probabilities, kept."""
        s = query.structure
        key = (s.network.lo, s.network.hi, frozenset(s.scopes), self._now_step(as_of))
        if key not in self._priors:
            belief = Belief(s, s.prior, 0.0, tuple(query.network.factors))
            prior = self._marginals(query, belief)  # the structure's prior calibration
            self._priors[key] = (prior, self.outcome_probabilities(query, query.base, belief))
        return self._priors[key]

    def _now_label(self, as_of: dt.date) -> str | None:
        steps = self.tree.steps
        if steps is None or not self.tree.is_dynamic:
            return None
        return steps.label(self._now_step(as_of))

    def _scenarios(self, query: Query, belief: Belief, top: int) -> tuple[Scenario, ...]:
        """The ``top`` most probable scenarios (dynamic nodes at the horizon's end)."""
        if top <= 0:
            return ()
        s = belief.structure
        net = query.network
        keep = self._end_variables(net) if net.timed else tuple(range(len(net.cards)))
        reduction = s.reduction
        out: list[Scenario] = []
        for values, score in self._top_tree(s).top_k(belief.factors, top):
            states = {}
            for v in keep:
                name, _ = net.names[v]
                states[name] = self.tree.nodes[name].states[reduction.state(v, values[v])]
            ordered = {n: states[n] for n in self.tree.nodes if n in states}
            p = math.exp(score + belief.const - belief.log_z)
            out.append(Scenario(states=ordered, probability=float(p)))
        return tuple(out)

    def _steps(
        self, query: Query, post: Belief, prior: Belief
    ) -> dict[str, tuple[StepForecast, ...]]:
        steps = self.tree.steps
        net = query.network
        if steps is None or not net.timed:
            return {}
        # a step is estimated when readings inform it: up to the as-of date's step, and no later
        # than the newest step a counted reading belongs to; the others are predicted
        read = [o.step for o in query.evidence.observations if o.step is not None]
        now = min(steps.index(query.evidence.as_of), max(read, default=-(10**9)))
        out: dict[str, tuple[StepForecast, ...]] = {}
        for name, node in self.tree.nodes.items():
            if node.kind != "dynamic":
                continue
            path = []
            for t in range(steps.n):
                var = net.var_of[(name, t)]
                path.append(
                    StepForecast(
                        step=t,
                        label=steps.label(t),
                        first_day=steps.first_day(t),
                        last_day=steps.last_day(t),
                        estimated=t <= now,
                        probabilities=_named(node.states, post.marginal(var)),
                        prior=_named(node.states, prior.marginal(var)),
                    )
                )
            out[name] = tuple(path)
        return out


def _genuine(net: Network, parts: Sequence[Factor], union: tuple[int, ...]) -> FloatArray:
    """The sum of a report's per-group log-likelihoods, broadcast over ``union``."""
    cards = net.cards
    genuine = np.zeros(tuple(cards[v] for v in union))
    for scope, values in parts:
        order = sorted(range(len(scope)), key=lambda i: union.index(scope[i]))
        shape = tuple(cards[v] if v in scope else 1 for v in union)
        genuine = genuine + np.transpose(values, order).reshape(shape)
    return genuine


def report_log_factor(
    genuine: FloatArray, log_prior: FloatArray, reliability: float, *, batch: bool = False
) -> FloatArray:
    """``log(r p + (1 - r) q)``: a report's log-likelihood table (docs/evidence.md).

    ``genuine`` is ``log p(report | states)`` over the report's variables and ``log_prior`` the
    log prior joint of those variables; ``q``, the report's prior predictive, is the sum of
    their product. With ``batch``, either may carry a last batch axis (and the result does).
    """
    r = reliability
    log_r = math.log(r) if r > 0 else -math.inf
    log_not = math.log1p(-r) if r < 1 else -math.inf
    if not batch:
        log_q = float(logsumexp(genuine + log_prior))
        return np.asarray(np.logaddexp(log_r + genuine, log_not + log_q), dtype=np.float64)
    n = max(genuine.ndim, log_prior.ndim) - 1
    g = genuine if genuine.ndim > n else genuine[..., None]
    lp = log_prior if log_prior.ndim > n else log_prior[..., None]
    log_qs = logsumexp(g + lp, axis=tuple(range(n))) if n else g + lp
    return np.asarray(np.logaddexp(log_r + g, log_not + log_qs), dtype=np.float64)


def _named(states: Sequence[str], probs: FloatArray) -> dict[str, float]:
    return {s: float(p) for s, p in zip(states, probs, strict=True)}


class _Cover:
    """Whether a scope lies within one of the given scopes."""

    def __init__(self, scopes: Sequence[tuple[int, ...]]) -> None:
        self._by_var: dict[int, list[frozenset[int]]] = defaultdict(list)
        for s in scopes:
            fs = frozenset(s)
            for v in s:
                self._by_var[v].append(fs)

    def __call__(self, scope: Sequence[int]) -> bool:
        want = set(scope)
        return any(want <= s for s in self._by_var.get(scope[0], ()))


def outcome_probability(
    nodes: Mapping[str, Mapping[str, float]], node: str, states: Sequence[str]
) -> float:
    """Probability that ``node`` is in one of ``states``."""
    return min(1.0, math.fsum(nodes[node][s] for s in states))


def merge_factors(factors: Sequence[Factor]) -> list[Factor]:
    """Add factors that share a scope (one clique update per scope instead of per report)."""
    merged: dict[tuple[int, ...], FloatArray] = {}
    for scope, values in factors:
        merged[scope] = merged[scope] + values if scope in merged else values
    return list(merged.items())


def _describe(r: Reading) -> str:
    where = f", {r.location}" if r.location else ""
    return f"#{r.id} ({r.indicator}={r.value}, {r.observed}{where}, {r.source})"


def _describe_report(rep: Report) -> str:
    if len(rep.observations) == 1:
        return "reading " + _describe(rep.observations[0].reading)
    shown = ", ".join(_describe(o.reading) for o in rep.observations[:4])
    more = f" and {len(rep.observations) - 4} more" if len(rep.observations) > 4 else ""
    return f"report {rep.label} ({shown}{more})"


def conflict_error(tree: Tree, query: Query) -> EvidenceConflictError:
    """An error naming the reports that rule scenarios out entirely."""
    reports = query.evidence.reports
    culprits = [
        rep
        for rep, (_, values) in zip(reports, query.report_factors, strict=True)
        if np.isneginf(values).any()
    ]
    alone = [
        rep
        for rep, (_, values) in zip(reports, query.report_factors, strict=True)
        if np.isneginf(values).all()
    ]
    given = query.given
    assumed = (
        " under the assumptions " + ", ".join(f"{k}={v}" for k, v in given.items()) if given else ""
    )
    if alone:
        return EvidenceConflictError(
            f"{_describe_report(alone[0])} has zero probability under every scenario of tree "
            f"'{tree.id}'; retract it or give its source a reliability below 1"
        )
    shown = "; ".join(_describe_report(r) for r in culprits[:6])
    return EvidenceConflictError(
        f"the evidence has zero probability under every scenario of tree '{tree.id}'{assumed}: "
        f"{shown} cannot all hold; retract one or give a source a reliability below 1"
    )


def forecast_exact(
    tree: Tree,
    readings: Sequence[Reading],
    *,
    given: Mapping[str, str] | None = None,
    as_of: dt.date | None = None,
    readings_hash: str = "",
) -> ForecastResult:
    """Exact posterior of ``tree`` given ``readings`` (see :class:`ExactModel`)."""
    return ExactModel(tree).forecast(
        readings, given=given, as_of=as_of, readings_hash=readings_hash
    )
