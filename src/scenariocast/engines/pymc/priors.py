"""Priors of the numbers in a tree, as PyMC random variables.

- Each row of a node's table (and of a dynamic node's transition table) is a Dirichlet whose
  mean is the row in the file and whose concentration (the sum of its pseudo-counts) is the
  node's ``strength`` (default: the tree's, 20). Entries written as 0 stay 0, and a row with a
  single non-zero entry is certain.
- A ``persistence`` is a Beta with the same mean and concentration (0 and 1 stay exact).
- A number written ``{mean, sd}`` gets a prior with that mean and standard deviation: a Beta
  for a probability (a reliability, a binary indicator's ``p``), a Gamma for a positive
  parameter (``sigma``, ``rate``) and a normal for ``mu``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from scenariocast.spec.model import Uncertain
from scenariocast.spec.tree import CompiledIndicator, CompiledNode, Tree

Tensor = Any


def beta_params(mean: float, sd: float) -> tuple[float, float]:
    """The Beta(alpha, beta) with this mean and standard deviation."""
    nu = mean * (1.0 - mean) / (sd * sd) - 1.0
    return mean * nu, (1.0 - mean) * nu


def gamma_params(mean: float, sd: float) -> tuple[float, float]:
    """The Gamma(alpha, beta) (shape, rate) with this mean and standard deviation."""
    return (mean / sd) ** 2, mean / (sd * sd)


def uncertain_number(name: str, value: Uncertain, *, kind: str) -> Tensor:
    """A random variable for a number held with uncertainty."""
    if kind == "probability":
        a, b = beta_params(value.mean, value.sd)
        return pm.Beta(name, alpha=a, beta=b)
    if kind == "positive":
        a, b = gamma_params(value.mean, value.sd)
        return pm.Gamma(name, alpha=a, beta=b)
    return pm.Normal(name, mu=value.mean, sigma=value.sd)


def dirichlet_table(name: str, probs: np.ndarray, strength: float) -> Tensor:
    """A table whose rows (last axis) are Dirichlet around ``probs`` with ``strength``.

    Rows are grouped by which entries are non-zero; each group is one Dirichlet variable
    (``name``, or ``name_2``, ... for further groups).
    """
    k = probs.shape[-1]
    rows = probs.reshape(-1, k)
    flat = pt.as_tensor(rows.reshape(-1).copy())
    groups: dict[tuple[bool, ...], list[int]] = {}
    for r, row in enumerate(rows):
        support = tuple(bool(x > 0) for x in row)
        if sum(support) > 1:
            groups.setdefault(support, []).append(r)
    for g, (support, members) in enumerate(groups.items()):
        cols = [j for j in range(k) if support[j]]
        alpha = strength * rows[np.ix_(members, cols)]
        rv = pm.Dirichlet(name if g == 0 else f"{name}_{g + 1}", a=alpha, shape=alpha.shape)
        index = np.array([r * k + j for r in members for j in cols])
        flat = pt.set_subtensor(flat[index], rv.reshape((-1,)))
    return flat.reshape(probs.shape)


def persistence_transition(
    name: str, node: CompiledNode, spec_persistence: Any, cpt: Tensor
) -> Tensor:
    """The transition table of a node that keeps its state with an uncertain persistence."""
    k = node.card
    n_pa = len(node.parents)
    if isinstance(spec_persistence, dict):
        means = [float(spec_persistence[s]) for s in node.states]
    else:
        means = [float(spec_persistence)] * k
    free = [i for i, m in enumerate(means) if 0.0 < m < 1.0]
    values = pt.as_tensor(np.array(means))
    if free:
        strength = node.strength
        alpha = np.array([strength * means[i] for i in free])
        beta = np.array([strength * (1.0 - means[i]) for i in free])
        rv = pm.Beta(name, alpha=alpha, beta=beta, shape=(len(free),))
        values = pt.set_subtensor(values[np.array(free)], rv)
    keep_b = values.reshape((k,) + (1,) * n_pa + (1,))
    stay = pt.as_tensor(np.eye(k).reshape((k,) + (1,) * n_pa + (k,)))
    return keep_b * stay + (1.0 - keep_b) * cpt[None, ...]


def node_tables(tree: Tree) -> dict[str, tuple[Tensor, Tensor | None]]:
    """Every node's table and transition (calendar nodes excepted) as PyMC variables."""
    out: dict[str, tuple[Tensor, Tensor | None]] = {}
    for name, node in tree.nodes.items():
        if node.kind == "calendar":
            continue
        cpt = dirichlet_table(f"table:{name}", node.cpt, node.strength)
        transition = None
        if node.kind == "dynamic":
            dyn = tree.spec.nodes[name].dynamic
            assert dyn is not None and node.transition is not None
            if dyn.persistence is not None:
                transition = persistence_transition(
                    f"persistence:{name}", node, dyn.persistence, cpt
                )
            else:
                transition = dirichlet_table(f"transition:{name}", node.transition, node.strength)
        out[name] = (cpt, transition)
    return out


def source_reliabilities(tree: Tree) -> dict[str, Tensor]:
    """Reliabilities held with uncertainty, as Beta variables (sources named once)."""
    out: dict[str, Tensor] = {}
    for sid, src in tree.sources.items():
        if isinstance(src.reliability, Uncertain):
            out[sid] = uncertain_number(f"reliability:{sid}", src.reliability, kind="probability")
    return out


def uncertain_indicators(tree: Tree) -> set[str]:
    """The indicators with at least one parameter held with uncertainty."""
    return {
        name
        for name, ind in tree.indicators.items()
        if any(isinstance(v, Uncertain) for row in ind.spec.params for v in row.then.values())
    }


def indicator_parameters(tree: Tree, names: set[str]) -> dict[str, dict[str, Tensor]]:
    """For each indicator in ``names``, its parameter arrays (over its scope) as tensors.

    Fixed entries are constants, uncertain ones random variables.
    """
    out: dict[str, dict[str, Tensor]] = {}
    for name in sorted(names):
        ind = tree.indicators[name]
        out[name] = _parameters(tree, ind)
    return out


def _parameters(tree: Tree, ind: CompiledIndicator) -> dict[str, Tensor]:
    states = {n: tree.nodes[n].states for n in ind.scope}
    params: dict[str, Tensor] = {}
    for pname, fixed in ind.params.items():
        if pname == "probs":
            params[pname] = pt.as_tensor(fixed)
            continue
        flat = pt.as_tensor(fixed.reshape(-1).copy())
        for r, row in enumerate(ind.spec.params):
            value = row.then.get(pname)
            if not isinstance(value, Uncertain):
                continue
            index = np.ravel_multi_index(
                tuple(states[n].index(row.when[n]) for n in ind.scope), fixed.shape
            )
            kind = {"p": "probability", "mu": "real"}.get(pname, "positive")
            rv = uncertain_number(f"{pname}:{ind.name}[{r}]", value, kind=kind)
            flat = pt.set_subtensor(flat[index], rv)
        params[pname] = flat.reshape(fixed.shape)
    return params
