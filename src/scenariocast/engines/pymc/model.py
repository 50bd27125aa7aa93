"""The PyMC model of a tree and its readings.

Parameters: the priors of :mod:`.priors`. Likelihood: the readings' log-potentials
(:mod:`.evidence`) with the scenario states summed out by the junction tree of the exact engine
(:mod:`.elimination`), as one ``pm.Potential``. Assumptions (``given``) enter as they do in the
exact engine, as log-potentials that rule the other states out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import shared

from scenariocast.engines.exact.model import ExactModel, Query, merge_factors
from scenariocast.engines.pymc import elimination, evidence, priors

Tensor = Any


@dataclass
class BuiltModel:
    """A PyMC model with handles on what the posterior needs."""

    model: pm.Model
    query: Query
    plan: evidence.EvidencePlan
    tables: dict[str, tuple[Tensor, Tensor | None]]  # node -> table, transition
    batches: list[Tensor]  # per batch of uncertain reports: (reports, *shape) log-likelihoods
    params: dict[str, dict[str, Tensor]]  # uncertain indicators' parameter arrays
    constant: list[Any]  # the shared constant evidence (see :func:`constant_values`)
    chain: elimination.Chain | None = None  # how the past is summed out, if by a scan


def constant_values(
    query: Query, plan: evidence.EvidencePlan, chain: elimination.Chain | None
) -> list[np.ndarray]:
    """The constant reports' log-potentials, as the model's shared data takes them.

    Without a chain: one per clique of the query's junction tree. With one: one per clique of
    the chain's junction tree (the static nodes and the horizon), then the past's, one array
    ``(steps, *chain.shape)`` (with the assumptions about the past, which are constant too).
    """
    if chain is None:
        return evidence.constant_potentials(query, plan.constant)
    net = query.network
    reports = merge_factors([query.report_factors[i] for i in plan.constant])
    past = np.zeros((len(chain.steps), *chain.shape))
    rest = []
    for scope, values in [*reports, *query.base[len(net.factors) :]]:
        if chain.is_past(scope):
            perm, shape = chain.layout(scope)
            past[chain.step(scope)] += np.transpose(values, perm).reshape(shape)
        else:
            rest.append((chain.kept(scope), values))
    return [*chain.jt.potentials(rest), past]


def build(exact: ExactModel, query: Query, *, scan: bool = True) -> BuiltModel:
    """The PyMC model of ``query`` (a tree, its readings and assumptions).

    A dynamic tree read before its horizon has its past summed out by a scan
    (:func:`.elimination.plan_chain`) when every factor that touches the past lies within one
    step; ``scan=False`` (or any other tree) unrolls every step in the junction tree.
    """
    tree = exact.tree
    net = query.network
    uncertain = priors.uncertain_indicators(tree)
    plan = evidence.plan(exact, query, uncertain)
    chain = elimination.plan_chain(query) if scan else None
    with pm.Model() as model:
        tables = priors.node_tables(tree)
        reliabilities = priors.source_reliabilities(tree)
        params = priors.indicator_parameters(tree, uncertain)
        prior = net.prior_factors(tables, xp=pt)
        constant = [
            shared(np.asarray(p, dtype=np.float64), name=f"evidence:{i}")
            for i, p in enumerate(constant_values(query, plan, chain))
        ]
        stacked = evidence.stack_tables(tree, plan, params)
        batches = [
            evidence.batch_factors(tree, plan, b, stacked, reliabilities) for b in plan.batches
        ]
        if chain is None:
            factors = [*prior, *query.base[len(net.factors) :]]  # assumptions, as exact does
            for b, table in zip(plan.batches, batches, strict=True):
                factors += evidence.placed_factors(b, table)
            log_evidence = elimination.log_z(query.structure.jt, factors, constant)
        else:
            log_evidence = _chained(chain, query, plan, prior, batches, constant)
        pm.Potential("log_evidence", log_evidence)
    return BuiltModel(model, query, plan, tables, batches, params, constant, chain)


def _chained(
    chain: elimination.Chain,
    query: Query,
    plan: evidence.EvidencePlan,
    prior: list[tuple[tuple[int, ...], Tensor]],
    batches: list[Tensor],
    constant: list[Any],
) -> Tensor:
    """Log Z with the past summed out by the chain's scan and the rest by its junction tree."""
    net = query.network
    n = len(chain.steps)
    past: Tensor = constant[-1]
    factors = [
        (chain.kept(scope), values)
        for scope, values in prior
        if not chain.is_past(scope) and not chain.is_later(scope)
    ]
    for b, table in zip(plan.batches, batches, strict=True):
        rows = [j for j, scope in enumerate(b.scopes) if chain.is_past(scope)]
        for scope, where in b.placements():
            if not chain.is_past(scope):
                one = table[where[0]] if len(where) == 1 else pt.sum(table[where], axis=0)
                factors.append((chain.kept(scope), one))
        if not rows:
            continue
        # the past's rows, each added to its step's potential: a (steps, reports) matrix
        perm, shape = chain.layout(b.scopes[rows[0]])
        onto = np.zeros((n, len(rows)))
        for k, j in enumerate(rows):
            onto[chain.step(b.scopes[j]), k] = 1.0
        placed = table[rows].transpose((0, *(1 + i for i in perm))).reshape((len(rows), -1))
        past = past + pt.dot(pt.as_tensor(onto), placed).reshape((n, *shape))
    message = elimination.chain_message(chain, net, prior, past + pt.zeros((n, *chain.shape)))
    factors.append((chain.kept(chain.message), message))
    return elimination.log_z(chain.jt, factors, constant[:-1])
