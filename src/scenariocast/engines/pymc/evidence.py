"""The readings as log-potentials of the PyMC model.

A report's likelihood is ``r p(R | states, parameters) + (1 - r) q(R)`` (docs/evidence.md). In
both engines ``q`` is the report's prior predictive under the tree's numbers as written, a fixed
reference density, so that a report whose source's reliability and indicators' parameters are
all certain contributes a constant table: those are summed, per clique of the junction tree,
into one constant log-potential, whatever the number of readings (the cost of a gradient does
not grow with them), and a new reading changes the data, not the compiled model.

The other reports (an uncertain reliability, or an indicator with uncertain parameters) are
PyTensor expressions of the parameters. Reports with the same shape (the same indicators, the
same number of readings of each, on the same nodes, with calendar nodes in the same states) are
stacked and computed at once *whatever their step*: a monthly tree's surveys of three years are
one expression of shape ``(reports, *states)``, and each report's row is then placed in the
junction tree at its own step (the rows of one step summed first). The number of expressions
grows with the number of shapes, not with the number of steps or reports. Readings enter through
what their likelihood needs (for normal and lognormal readings, their count, sum and sum of
squares).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.tensor.special import logaddexp

from scenariocast.engines.exact.junction import Factor
from scenariocast.engines.exact.model import ExactModel, Query, _genuine, merge_factors
from scenariocast.evidence.likelihood import logsumexp, report_log_likelihood
from scenariocast.evidence.select import Report
from scenariocast.spec.model import Uncertain
from scenariocast.spec.tree import CompiledIndicator, Tree

Tensor = Any
_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Group:
    """Readings of one indicator at one step within a report."""

    indicator: str
    step: int | None
    values: tuple[float, ...]


#: A variable of a report as seen from the report: (node, its step less the report's first
#: step), ``None`` for a static node.
LocalVar = tuple[str, int | None]


@dataclass
class Stack:
    """Groups of readings of one indicator with uncertain parameters, of one shape.

    From any report at any step: their log-likelihoods are one expression of the parameters.

    A group's shape is its indicator, its number of readings and the states of the indicator's
    calendar nodes at its step; its table has one axis per other node of the indicator.
    """

    indicator: str
    calendar: tuple[int, ...]  # the state of each calendar node the indicator reads
    n: int  # readings per group
    values: list[tuple[float, ...]] = field(default_factory=list)  # per group (row)


@dataclass
class Batch:
    """Reports over variables of one local shape, whatever their step: one stacked factor.

    Two reports share a local shape when they depend on the same nodes at the same steps
    *relative to the report's first step* (a survey of March 2023 and one of October 2025 of the
    same nodes do). Their factors are one tensor of shape ``(reports, *shape)``; row ``j`` is
    over the variables ``scopes[j]``, at the report's own step.
    """

    local: tuple[LocalVar, ...]  # the variables, in the order of every report's scope
    shape: tuple[int, ...]  # the states of each local variable
    reports: list[int] = field(default_factory=list)  # positions in evidence.reports
    scopes: list[tuple[int, ...]] = field(default_factory=list)  # per report, its variables
    sources: list[str] = field(default_factory=list)
    log_q: list[float] = field(default_factory=list)
    # per report, log p of its readings of indicators whose parameters are all certain
    certain: list[np.ndarray] = field(default_factory=list)
    # (stack, step less the report's first, occurrence) -> (row here, row in the stack) per
    # group placed there
    parts: dict[tuple[int, int | None, int], list[tuple[int, int]]] = field(default_factory=dict)

    def placements(self) -> list[tuple[tuple[int, ...], list[int]]]:
        """Each distinct scope of the batch's reports, with the rows placed there."""
        rows: dict[tuple[int, ...], list[int]] = {}
        for j, scope in enumerate(self.scopes):
            rows.setdefault(scope, []).append(j)
        return list(rows.items())


@dataclass
class EvidencePlan:
    """Which reports are constant and which are expressions, and how they are stacked."""

    constant: list[int]  # positions of reports with nothing uncertain
    batches: list[Batch]
    stacks: list[Stack] = field(default_factory=list)

    @property
    def n_uncertain(self) -> int:
        """The number of reports whose factor depends on the parameters."""
        return sum(len(b.reports) for b in self.batches)

    @property
    def key(self) -> object:
        """What the compiled model depends on (the readings of uncertain reports included)."""
        return (
            [(s.indicator, s.calendar, s.n, s.values) for s in self.stacks],
            [
                (b.local, b.scopes, b.sources, sorted(b.parts.items(), key=str))
                for b in self.batches
            ],
        )


def plan(model: ExactModel, query: Query, uncertain_indicators: set[str]) -> EvidencePlan:
    """Sort the query's reports into constant ones and stacked batches of the others.

    Each group of readings of an indicator with uncertain parameters goes into the stack of its
    shape; each report whose factor depends on the parameters into the batch of its local
    shape. Neither depends on the step.
    """
    tree = model.tree
    net = query.network
    constant: list[int] = []
    batches: dict[tuple[LocalVar, ...], Batch] = {}
    stacks: dict[tuple[str, tuple[int, ...], int], int] = {}
    stack_list: list[Stack] = []
    for i, rep in enumerate(query.evidence.reports):
        uncertain_source = isinstance(tree.sources[rep.source].reliability, Uncertain)
        indicators = {o.indicator for o in rep.observations}
        if not uncertain_source and not (indicators & uncertain_indicators):
            constant.append(i)
            continue
        scope = query.report_factors[i][0]
        names = [net.names[v] for v in scope]
        # variables are numbered static first, then step by step: shifting every step of a
        # report by the same amount keeps the order of its scope, so reports of one local
        # shape line their variables up position by position
        first = min((t for _, t in names if t is not None), default=0)
        local = tuple((n, None if t is None else t - first) for n, t in names)
        batch = batches.get(local)
        if batch is None:
            batch = batches[local] = Batch(local, tuple(net.cards[v] for v in scope))
        row = len(batch.reports)
        certain: list[Factor] = []
        seen: list[tuple[int, int | None]] = []
        for g in _groups(rep):
            ind = tree.indicators[g.indicator]
            if g.indicator not in uncertain_indicators:
                table = report_log_likelihood(ind, np.array(g.values), ind.spec.correlation())
                placed = net.place([(n, g.step) for n in ind.scope], table)
                if placed is not None:
                    certain.append(placed)
                continue
            calendar = tuple(
                net.calendar_state(n, g.step or 0)
                for n in ind.scope
                if tree.nodes[n].kind == "calendar"
            )
            skey = (g.indicator, calendar, len(g.values))
            if skey not in stacks:
                stacks[skey] = len(stack_list)
                stack_list.append(Stack(*skey))
            stack = stack_list[stacks[skey]]
            moving = any(tree.nodes[n].kind == "dynamic" for n in ind.scope)
            step = g.step - first if moving and g.step is not None else None
            # a report reads an indicator once per step, but a static one may recur at another
            key = (stacks[skey], step, sum(1 for k in seen if k == (stacks[skey], step)))
            seen.append(key[:2])
            batch.parts.setdefault(key, []).append((row, len(stack.values)))
            stack.values.append(g.values)
        batch.reports.append(i)
        batch.scopes.append(scope)
        batch.sources.append(rep.source)
        batch.log_q.append(_log_q(model, query, rep, scope))
        batch.certain.append(_genuine(net, certain, scope))
    return EvidencePlan(constant, list(batches.values()), stack_list)


def _groups(rep: Report) -> list[Group]:
    found: dict[tuple[str, int | None], list[float]] = defaultdict(list)
    for o in rep.observations:
        found[(o.indicator, o.step)].append(o.value)
    return [Group(ind, step, tuple(vs)) for (ind, step), vs in found.items()]


def _log_q(model: ExactModel, query: Query, rep: Report, scope: tuple[int, ...]) -> float:
    """Log q(report): its prior predictive under the tree's numbers as written."""
    parts = model._report_groups(query.structure, rep)  # genuine log-likelihood per group
    cards = query.network.cards
    genuine = np.zeros(tuple(cards[v] for v in scope))
    for part_scope, values in parts:
        order = sorted(range(len(part_scope)), key=lambda i: scope.index(part_scope[i]))
        shape = tuple(cards[v] if v in part_scope else 1 for v in scope)
        genuine = genuine + np.transpose(values, order).reshape(shape)
    with np.errstate(divide="ignore"):
        log_prior = np.log(query.structure.prior.joint(scope))
    return float(logsumexp(genuine + log_prior))


def constant_potentials(query: Query, positions: Sequence[int]) -> list[np.ndarray]:
    """The constant reports' factors summed into one log-potential per clique."""
    factors = merge_factors([query.report_factors[i] for i in positions])
    return query.structure.jt.potentials(factors)


def stack_tables(
    tree: Tree, plan: EvidencePlan, params: dict[str, dict[str, Tensor]]
) -> list[Tensor]:
    """Each stack's log-likelihoods: a tensor ``(groups, *the indicator's non-calendar nodes)``."""
    out = []
    for stack in plan.stacks:
        ind = tree.indicators[stack.indicator]
        table = _group_loglik(ind, np.array(stack.values), params[stack.indicator])
        out.append(_slice_calendar(tree, ind, stack.calendar, table))
    return out


def batch_factors(
    tree: Tree,
    plan: EvidencePlan,
    batch: Batch,
    stacked: Sequence[Tensor],
    reliabilities: dict[str, Tensor],
) -> Tensor:
    """The batch's reports' log-likelihoods: a tensor of shape ``(reports, *batch.shape)``.

    ``stacked`` is :func:`stack_tables`. Row ``j`` is over the variables ``batch.scopes[j]``
    (see :func:`placed_factors`).
    """
    m = len(batch.reports)
    local = batch.local
    genuine: Tensor = pt.as_tensor(np.stack(batch.certain))  # (m, *shape)
    for (k, step, _), rows in sorted(batch.parts.items(), key=lambda kv: str(kv[0])):
        stack = plan.stacks[k]
        ind = tree.indicators[stack.indicator]
        part = [
            (n, None if tree.nodes[n].kind == "static" else step)
            for n in ind.scope
            if tree.nodes[n].kind != "calendar"
        ]
        order = [0, *(1 + i for i in sorted(range(len(part)), key=lambda i: local.index(part[i])))]
        size = len(stack.values)
        shape = (size, *(c if v in part else 1 for v, c in zip(local, batch.shape, strict=True)))
        table = stacked[k].transpose(order).reshape(shape)
        # a row of zeros for the reports without a group here; every other row takes its own
        padded = pt.concatenate([table, pt.zeros((1, *shape[1:]))], axis=0)
        index = np.full(m, size, dtype=np.int64)
        for here, there in rows:
            index[here] = there
        genuine = genuine + padded[index]
    r = pt.stack(
        [
            reliabilities[s]
            if s in reliabilities
            else pt.as_tensor(tree.sources[s].mean_reliability)
            for s in batch.sources
        ]
    )
    extra = (slice(None),) + (None,) * len(local)
    log_q = pt.as_tensor(np.array(batch.log_q))[extra]
    return logaddexp(pt.log(r)[extra] + genuine, pt.log1p(-r)[extra] + log_q)


def placed_factors(batch: Batch, table: Tensor) -> list[tuple[tuple[int, ...], Tensor]]:
    """The batch's stacked table as factors: the rows of each step's reports summed, at it."""
    out: list[tuple[tuple[int, ...], Tensor]] = []
    for scope, rows in batch.placements():
        out.append((scope, table[rows[0]] if len(rows) == 1 else pt.sum(table[rows], axis=0)))
    return out


def _slice_calendar(
    tree: Tree, ind: CompiledIndicator, calendar: tuple[int, ...], table: Tensor
) -> Tensor:
    """``table`` (reports, *indicator scope) with each calendar node's axis at its state."""
    states = iter(calendar)
    index: list[Any] = [slice(None)]
    for n in ind.scope:
        index.append(next(states) if tree.nodes[n].kind == "calendar" else slice(None))
    return table[tuple(index)]


def _group_loglik(ind: CompiledIndicator, x: np.ndarray, params: dict[str, Tensor]) -> Tensor:
    """Log p of ``m`` stacked groups of ``n`` readings under every state of the scope.

    ``x`` is (m, n); the result is a tensor ``(m, *scope)``; parameters may be random variables.

    The same densities as :func:`scenariocast.evidence.likelihood.report_log_likelihood`
    (equicorrelated readings within a report), written in PyTensor.
    """
    kind = ind.spec.kind
    ndim = len(ind.scope)
    n = x.shape[1]
    xb = pt.as_tensor(x.reshape(x.shape + (1,) * ndim))  # (m, n, 1, ..)

    def p(name: str) -> Tensor:
        return params[name][None, None, ...]

    if kind == "binary":
        prob = p("p")
        return pt.sum(pt.switch(xb > 0.5, pt.log(prob), pt.log1p(-prob)), axis=1)
    if kind == "count":
        rate = p("rate")
        return pt.sum(xb * pt.log(rate) - rate - pt.gammaln(xb + 1.0), axis=1)
    rho = ind.spec.correlation() if n > 1 else 0.0
    if kind in ("normal", "lognormal"):
        lx = pt.log(xb) if kind == "lognormal" else xb
        z = (lx - p("mu")) / p("sigma")
        s1, s2 = pt.sum(z, axis=1), pt.sum(z * z, axis=1)
        log_sigma = pt.log(params["sigma"])[None, ...]
        jac = -pt.sum(lx, axis=1) if kind == "lognormal" else 0.0
        if rho == 0.0:
            return -n * log_sigma - 0.5 * n * _LOG_2PI - 0.5 * s2 + jac
        c = rho / (1.0 + (n - 1) * rho)
        log_det = (n - 1) * math.log1p(-rho) + math.log1p((n - 1) * rho)
        quad = (s2 - c * s1 * s1) / (1.0 - rho)
        return -n * log_sigma - 0.5 * n * _LOG_2PI - 0.5 * log_det - 0.5 * quad + jac
    # student_t: t margins, joined by a Gaussian copula within a report
    nu = p("nu")
    sigma = p("sigma")
    z = (xb - p("mu")) / sigma
    margins = (
        pt.gammaln((nu + 1.0) / 2.0)
        - pt.gammaln(nu / 2.0)
        - 0.5 * pt.log(nu * math.pi)
        - pt.log(sigma)
        - (nu + 1.0) / 2.0 * pt.log1p(z * z / nu)
    )
    total = pt.sum(margins, axis=1)
    if rho == 0.0:
        return total
    tail = 0.5 * pt.betainc(nu / 2.0, 0.5, nu / (nu + z * z))  # P(T <= -|z|)
    tail = pt.clip(tail, 1e-300, 0.5)
    g = pt.sign(z) * math.sqrt(2.0) * pt.erfcinv(2.0 * tail)  # the normal score of z
    c = rho / (1.0 + (n - 1) * rho)
    log_det = (n - 1) * math.log1p(-rho) + math.log1p((n - 1) * rho)
    s1, s2 = pt.sum(g, axis=1), pt.sum(g * g, axis=1)
    quad = (s2 - c * s1 * s1) / (1.0 - rho)
    return total - 0.5 * log_det - 0.5 * (quad - s2)
