"""The readings as log-potentials of the PyMC model.

A report's likelihood is ``r p(R | states, parameters) + (1 - r) q(R)`` (docs/evidence.md). In
both engines ``q`` is the report's prior predictive under the tree's numbers as written, a fixed
reference density, so that a report whose source's reliability and indicators' parameters are
all certain contributes a constant table: those are summed, per clique of the junction tree,
into one constant log-potential, whatever the number of readings (the cost of a gradient does
not grow with them), and a new reading changes the data, not the compiled model.

The other reports (an uncertain reliability, or an indicator with uncertain parameters) are
PyTensor expressions of the parameters. Reports with the same shape (the same variables, the
same indicators at the same steps, the same number of readings of each) are stacked and computed
at once, readings entering through what their likelihood needs (for normal and lognormal
readings, their count, sum and sum of squares).
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

from scenariocast.engines.exact.model import ExactModel, Query, merge_factors
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


@dataclass
class Batch:
    """Reports of one shape, stacked: their factor is computed at once."""

    scope: tuple[int, ...]  # the variables (a report's union scope)
    signature: tuple[tuple[str, int | None, int], ...]  # (indicator, step, readings) per group
    reports: list[int] = field(default_factory=list)  # positions in evidence.reports
    values: list[list[tuple[float, ...]]] = field(default_factory=list)  # per report, per group
    sources: list[str] = field(default_factory=list)
    log_q: list[float] = field(default_factory=list)


@dataclass
class EvidencePlan:
    """Which reports are constant and which are expressions, and how they are stacked."""

    constant: list[int]  # positions of reports with nothing uncertain
    batches: list[Batch]

    @property
    def n_uncertain(self) -> int:
        """The number of reports whose factor depends on the parameters."""
        return sum(len(b.reports) for b in self.batches)


def plan(model: ExactModel, query: Query, uncertain_indicators: set[str]) -> EvidencePlan:
    """Sort the query's reports into constant ones and stacked batches of the others."""
    tree = model.tree
    constant: list[int] = []
    batches: dict[tuple[object, ...], Batch] = {}
    for i, rep in enumerate(query.evidence.reports):
        uncertain_source = isinstance(tree.sources[rep.source].reliability, Uncertain)
        indicators = {o.indicator for o in rep.observations}
        if not uncertain_source and not (indicators & uncertain_indicators):
            constant.append(i)
            continue
        groups = _groups(rep)
        scope = query.report_factors[i][0]
        signature = tuple((g.indicator, g.step, len(g.values)) for g in groups)
        key = (scope, signature)
        batch = batches.setdefault(key, Batch(scope, signature))
        batch.reports.append(i)
        batch.values.append([g.values for g in groups])
        batch.sources.append(rep.source)
        batch.log_q.append(_log_q(model, query, rep, scope))
    return EvidencePlan(constant, list(batches.values()))


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


def batch_factors(
    tree: Tree,
    query: Query,
    batch: Batch,
    params: dict[str, dict[str, Tensor]],
    reliabilities: dict[str, Tensor],
) -> Tensor:
    """The stacked reports' log-likelihoods: a tensor of shape ``(reports, *scope)``."""
    net = query.network
    cards = net.cards
    scope = batch.scope
    m = len(batch.reports)
    genuine: Tensor = pt.zeros((m, *(cards[v] for v in scope)))
    for j, (name, step, _) in enumerate(batch.signature):
        ind = tree.indicators[name]
        x = np.array([vals[j] for vals in batch.values])  # (m, n)
        if name in params:
            table = _group_loglik(ind, x, params[name])  # (m, *indicator scope)
        else:
            table = pt.as_tensor(
                np.stack([report_log_likelihood(ind, row, ind.spec.correlation()) for row in x])
            )
        table = _slice_calendar(net, ind, step, table)
        part_scope = net.scope_at(ind.scope, step)
        order = [
            0,
            *(
                1 + i
                for i in sorted(range(len(part_scope)), key=lambda i: scope.index(part_scope[i]))
            ),
        ]
        shape = (m, *(cards[v] if v in part_scope else 1 for v in scope))
        genuine = genuine + table.transpose(order).reshape(shape)
    r = pt.stack(
        [
            reliabilities[s]
            if s in reliabilities
            else pt.as_tensor(tree.sources[s].mean_reliability)
            for s in batch.sources
        ]
    )
    extra = (slice(None),) + (None,) * len(scope)
    log_q = pt.as_tensor(np.array(batch.log_q))[extra]
    return logaddexp(pt.log(r)[extra] + genuine, pt.log1p(-r)[extra] + log_q)


def _slice_calendar(net: Any, ind: CompiledIndicator, step: int | None, table: Tensor) -> Tensor:
    index: list[Any] = [slice(None)]
    for n in ind.scope:
        if net.tree.nodes[n].kind == "calendar":
            index.append(net.calendar_state(n, step or 0))
        else:
            index.append(slice(None))
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
    g = pt.sgn(z) * math.sqrt(2.0) * pt.erfcinv(2.0 * tail)  # the normal score of z
    c = rho / (1.0 + (n - 1) * rho)
    log_det = (n - 1) * math.log1p(-rho) + math.log1p((n - 1) * rho)
    s1, s2 = pt.sum(g, axis=1), pt.sum(g * g, axis=1)
    quad = (s2 - c * s1 * s1) / (1.0 - rho)
    return total - 0.5 * log_det - 0.5 * (quad - s2)
