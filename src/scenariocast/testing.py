"""Builders for random trees and readings, and a brute-force reference engine.

Shared by the tests, the benchmarks and the notebooks. The brute-force engine enumerates every
complete scenario, so it is only for small trees; it is the reference the exact engine is
checked against.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scenariocast.errors import SpecError
from scenariocast.evidence.likelihood import log_likelihood, logsumexp
from scenariocast.evidence.readings import ObservedDate, Reading
from scenariocast.evidence.select import select_evidence
from scenariocast.spec.load import check_tree, compile_tree
from scenariocast.spec.model import ScenarioTree
from scenariocast.spec.tree import Tree, combos


def _dirichlet(rng: np.random.Generator, k: int, alpha: float = 1.0) -> dict[str, float]:
    p = rng.dirichlet([alpha] * k)
    return {f"s{i}": float(x) for i, x in enumerate(p)}


def random_tree_spec(
    seed: int,
    n_nodes: int = 6,
    *,
    max_states: int = 3,
    max_parents: int = 3,
    n_indicators: int = 4,
    max_indicator_nodes: int = 2,
    reliabilities: Sequence[float] = (1.0, 0.8, 0.5),
) -> dict[str, Any]:
    """A random but valid scenario tree as the dictionary a YAML file would hold."""
    rng = np.random.default_rng(seed)
    names = [f"n{i}" for i in range(n_nodes)]
    states = {n: [f"s{j}" for j in range(int(rng.integers(2, max_states + 1)))] for n in names}
    nodes: dict[str, Any] = {}
    for i, n in enumerate(names):
        k = int(rng.integers(0, min(i, max_parents) + 1))
        parents = sorted(rng.choice(names[:i], size=k, replace=False).tolist()) if k else []
        if parents:
            rows = [
                {
                    "when": c,
                    "then": {
                        s: p
                        for s, p in zip(
                            states[n], _dirichlet(rng, len(states[n])).values(), strict=True
                        )
                    },
                }
                for c in combos(parents, states)
            ]
            nodes[n] = {"states": states[n], "parents": parents, "probabilities": rows}
        else:
            probs = _dirichlet(rng, len(states[n]))
            nodes[n] = {
                "states": states[n],
                "probabilities": dict(zip(states[n], probs.values(), strict=True)),
            }
    kinds = ["binary", "categorical", "count", "normal", "lognormal", "student_t"]
    indicators: dict[str, Any] = {}
    for j in range(n_indicators):
        kind = kinds[j % len(kinds)]
        k = int(rng.integers(1, min(max_indicator_nodes, n_nodes) + 1))
        scope = sorted(rng.choice(names, size=k, replace=False).tolist())
        rows = []
        for c in combos(scope, states):
            if kind == "binary":
                then: dict[str, float] = {"p": float(rng.uniform(0.05, 0.95))}
            elif kind == "categorical":
                then = {f"c{i}": p for i, p in enumerate(_dirichlet(rng, 3).values())}
            elif kind == "count":
                then = {"rate": float(rng.uniform(0.2, 4.0))}
            elif kind == "student_t":
                then = {"mu": float(rng.normal()), "sigma": float(rng.uniform(0.5, 1.5)), "nu": 4.0}
            else:
                then = {"mu": float(rng.normal()), "sigma": float(rng.uniform(0.5, 1.5))}
            rows.append({"when": c, "then": then})
        ind: dict[str, Any] = {
            "kind": kind,
            "depends_on": scope,
            "params": rows,
            "combine": {"rule": "all"},
        }
        if kind == "categorical":
            ind["categories"] = ["c0", "c1", "c2"]
        indicators[f"i{j}"] = ind
    sources = {f"src{i}": {"reliability": r} for i, r in enumerate(reliabilities)}
    outcomes = {
        f"o_{n}": {
            "question": f"Is {n} in s0?",
            "node": n,
            "states": ["s0"],
            "resolve_by": "2026-12-31",
            "resolution": "By construction.",
        }
        for n in names[: min(3, n_nodes)]
    }
    return {
        "id": f"random-{seed}",
        "sources": sources,
        "nodes": nodes,
        "indicators": indicators,
        "outcomes": outcomes,
    }


def tree_from_dict(data: Mapping[str, Any], *, tree_id: str = "tree") -> Tree:
    """Validate and compile a tree given as a dictionary (what YAML would load)."""
    spec = ScenarioTree.model_validate(dict(data))
    problems = check_tree(spec)
    if problems:
        from scenariocast.errors import Problem

        raise SpecError([Problem(msg, path=loc) for loc, msg in problems])
    return compile_tree(spec, default_id=tree_id)


def random_tree(seed: int, n_nodes: int = 6, **kwargs: Any) -> Tree:
    """A random valid :class:`Tree` (see :func:`random_tree_spec`)."""
    return tree_from_dict(random_tree_spec(seed, n_nodes, **kwargs))


def random_readings(tree: Tree, n: int, seed: int, *, start_id: int = 1) -> list[Reading]:
    """``n`` random readings of ``tree``'s indicators, on distinct days of 2026."""
    rng = np.random.default_rng(seed)
    names = list(tree.indicators)
    sources = list(tree.sources)
    out: list[Reading] = []
    for k in range(n):
        ind = tree.indicators[names[int(rng.integers(len(names)))]]
        kind = ind.spec.kind
        if kind == "binary":
            value = str(int(rng.integers(2)))
        elif kind == "categorical":
            value = str(rng.choice(ind.spec.categories or ["c0"]))
        elif kind == "count":
            value = str(int(rng.poisson(1.5)))
        elif kind == "lognormal":
            value = f"{float(rng.lognormal(0.0, 1.0)):.6g}"
        else:
            value = f"{float(rng.normal(0.0, 1.5)):.6g}"
        day = dt.date(2026, 1, 1) + dt.timedelta(days=int(rng.integers(0, 300)))
        out.append(
            Reading(
                id=start_id + k,
                indicator=ind.name,
                value=value,
                observed=ObservedDate.parse(day.isoformat()),
                source=sources[int(rng.integers(len(sources)))],
            )
        )
    return out


def sample_scenario(tree: Tree, rng: np.random.Generator) -> dict[str, int]:
    """Draw a complete scenario (state index of every node) from the tree's prior."""
    values: dict[str, int] = {}
    for name, node in tree.nodes.items():  # parents come first
        probs = node.cpt[tuple(values[p] for p in node.parents)]
        values[name] = int(rng.choice(node.card, p=probs))
    return values


def sample_value(
    tree: Tree, indicator: str, scenario: Mapping[str, int], rng: np.random.Generator
) -> str:
    """Draw a reading of ``indicator`` as it would be reported, given a scenario."""
    ind = tree.indicators[indicator]
    idx = tuple(scenario[n] for n in ind.scope)
    p = {k: float(v[idx]) for k, v in ind.params.items() if k != "probs"}
    kind = ind.spec.kind
    if kind == "binary":
        return "yes" if rng.random() < p["p"] else "no"
    if kind == "categorical":
        cats = ind.spec.categories or []
        return cats[int(rng.choice(len(cats), p=ind.params["probs"][idx]))]
    if kind == "count":
        return str(int(rng.poisson(p["rate"])))
    if kind == "lognormal":
        return repr(float(rng.lognormal(p["mu"], p["sigma"])))
    if kind == "student_t":
        x = p["mu"] + p["sigma"] * float(rng.standard_t(p["nu"]))
    else:
        x = float(rng.normal(p["mu"], p["sigma"]))
    read_as = ind.spec.read_as
    if read_as is None or read_as.transform == "identity":
        return repr(x)
    base = float(read_as.baseline or 1.0)
    if read_as.transform == "log":
        return repr(math.exp(x))
    if read_as.transform == "log_change":
        return repr(base * math.exp(x))
    return repr(base * (1.0 + x / 100.0))


def simulate(
    tree: Tree, n_readings: int, rng: np.random.Generator
) -> tuple[dict[str, int], list[Reading]]:
    """A true scenario and readings generated the way the engine says evidence arises.

    Each reading comes from a random indicator and source; with the source's reliability it is
    genuine (drawn given the true scenario), otherwise it carries no information (drawn given an
    independent scenario from the prior, that is, from the indicator's prior predictive).
    """
    truth = sample_scenario(tree, rng)
    names = list(tree.indicators)
    sources = list(tree.sources)
    readings = []
    for k in range(n_readings):
        name = names[int(rng.integers(len(names)))]
        source = sources[int(rng.integers(len(sources)))]
        genuine = rng.random() < tree.sources[source].reliability
        scenario = truth if genuine else sample_scenario(tree, rng)
        day = dt.date(2026, 1, 1) + dt.timedelta(days=k)
        readings.append(
            Reading(
                id=k + 1,
                indicator=name,
                value=sample_value(tree, name, scenario, rng),
                observed=ObservedDate.parse(day.isoformat()),
                source=source,
            )
        )
    return truth, readings


@dataclass(frozen=True)
class BruteForce:
    """The reference answer, by enumerating every complete scenario."""

    nodes: dict[str, dict[str, float]]
    log_evidence: float
    scenarios: list[tuple[dict[str, str], float]]  # sorted, most probable first


def brute_force(
    tree: Tree,
    readings: Sequence[Reading],
    *,
    given: Mapping[str, str] | None = None,
    as_of: dt.date = dt.date(2100, 1, 1),
) -> BruteForce:
    """Posterior by enumeration of the joint state space (small trees only)."""
    names = list(tree.nodes)
    given = dict(given or {})
    configs = list(itertools.product(*(range(tree.nodes[n].card) for n in names)))
    idx = {n: i for i, n in enumerate(names)}
    log_prior = np.zeros(len(configs))
    for c, cfg in enumerate(configs):
        total = 0.0
        for n in names:
            node = tree.nodes[n]
            key = (*(cfg[idx[p]] for p in node.parents), cfg[idx[n]])
            p = float(node.cpt[key])
            total += math.log(p) if p > 0 else -math.inf
        log_prior[c] = total
    evidence = select_evidence(tree, readings, as_of)
    log_lik = np.zeros(len(configs))
    for o in evidence.observations:
        ind = tree.indicators[o.indicator]
        table = log_likelihood(ind, np.array([o.value]))[0]
        per_config = np.array([table[tuple(cfg[idx[n]] for n in ind.scope)] for cfg in configs])
        log_q = float(logsumexp(per_config + log_prior))
        log_r = math.log(o.reliability) if o.reliability > 0 else -math.inf
        log_not_r = math.log1p(-o.reliability) if o.reliability < 1 else -math.inf
        log_lik += np.logaddexp(log_r + per_config, log_not_r + log_q)
    mask = np.zeros(len(configs))
    for n, s in given.items():
        k = tree.state_index(n, s)
        mask += np.array([0.0 if cfg[idx[n]] == k else -math.inf for cfg in configs])
    log_base = log_prior + mask
    log_joint = log_base + log_lik
    log_z = float(logsumexp(log_joint))
    post = np.exp(log_joint - log_z)
    nodes = {
        n: {
            s: float(post[[cfg[idx[n]] == k for cfg in configs]].sum())
            for k, s in enumerate(tree.nodes[n].states)
        }
        for n in names
    }
    order = np.argsort(-post, kind="stable")
    scenarios = [
        ({n: tree.nodes[n].states[configs[c][idx[n]]] for n in names}, float(post[c]))
        for c in order
    ]
    return BruteForce(
        nodes=nodes, log_evidence=log_z - float(logsumexp(log_base)), scenarios=scenarios
    )
