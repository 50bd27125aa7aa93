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

from scenariocast.engines.exact.model import ExactModel, Query
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
    constant: list[Any]  # the shared per-clique constant evidence potentials


def build(exact: ExactModel, query: Query) -> BuiltModel:
    """The PyMC model of ``query`` (a tree, its readings and assumptions)."""
    tree = exact.tree
    net = query.network
    uncertain = priors.uncertain_indicators(tree)
    plan = evidence.plan(exact, query, uncertain)
    jt = query.structure.jt
    with pm.Model() as model:
        tables = priors.node_tables(tree)
        reliabilities = priors.source_reliabilities(tree)
        params = priors.indicator_parameters(tree, uncertain)
        factors = net.prior_factors(tables, xp=pt)
        factors += list(query.base[len(net.factors) :])  # assumptions, as in the exact engine
        potentials = evidence.constant_potentials(query, plan.constant)
        constant = [
            shared(np.asarray(p, dtype=np.float64), name=f"evidence:{i}")
            for i, p in enumerate(potentials)
        ]
        stacked = evidence.stack_tables(tree, plan, params)
        batches = []
        for b in plan.batches:
            table = evidence.batch_factors(tree, plan, b, stacked, reliabilities)
            batches.append(table)
            factors += evidence.placed_factors(b, table)
        pm.Potential("log_evidence", elimination.log_z(jt, factors, constant))
    return BuiltModel(model, query, plan, tables, batches, params, constant)
