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
from scenariocast.evidence.likelihood import logsumexp
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


def _random_params(rng: np.random.Generator, kind: str) -> dict[str, float]:
    if kind == "binary":
        return {"p": float(rng.uniform(0.05, 0.95))}
    if kind == "categorical":
        return {f"c{i}": p for i, p in enumerate(_dirichlet(rng, 3).values())}
    if kind == "count":
        return {"rate": float(rng.uniform(0.2, 4.0))}
    if kind == "student_t":
        return {"mu": float(rng.normal()), "sigma": float(rng.uniform(0.5, 1.5)), "nu": 4.0}
    return {"mu": float(rng.normal()), "sigma": float(rng.uniform(0.5, 1.5))}


def _rows(
    rng: np.random.Generator,
    names: Sequence[str],
    states: Mapping[str, Sequence[str]],
    then: Any,
) -> list[dict[str, Any]]:
    return [{"when": c, "then": then(c)} for c in combos(names, states)]


def random_dynamic_tree_spec(
    seed: int,
    n_nodes: int = 3,
    *,
    n_dynamic: int | None = None,
    n_steps: int = 4,
    step: str = "month",
    calendar: bool = False,
    max_states: int = 3,
    max_parents: int = 2,
    n_indicators: int = 4,
    max_indicator_nodes: int = 2,
    reliabilities: Sequence[float] = (1.0, 0.8, 0.5),
    correlations: Sequence[float | None] = (None, 0.0, 0.6, 0.9),
) -> dict[str, Any]:
    """A random valid tree with dynamic nodes over a horizon of ``n_steps`` steps.

    The last ``n_dynamic`` nodes (default: all but the first) are dynamic, with a random
    persistence (one, or one per state) or a random transition table; with ``calendar``, a
    calendar node ``season`` (lean May to August) is a parent of some of them. Outcomes on
    dynamic nodes take each timing (end, ever, at least k steps).
    """
    from scenariocast.spec.time import Steps, step_end

    rng = np.random.default_rng(seed)
    n_dynamic = max(1, n_nodes - 1) if n_dynamic is None else n_dynamic
    unit: Any = step
    start = dt.date(2026, 1, 5) if step == "week" else dt.date(2026, 1, 1)
    probe = Steps(unit, start, step_end(unit, start))
    end = probe.last_day(n_steps - 1)
    names = [f"n{i}" for i in range(n_nodes)]
    dynamic = set(names[n_nodes - n_dynamic :])
    states: dict[str, list[str]] = {
        n: [f"s{j}" for j in range(int(rng.integers(2, max_states + 1)))] for n in names
    }
    nodes: dict[str, Any] = {}
    if calendar:
        states["season"] = ["lean", "other"]
        nodes["season"] = {
            "states": ["lean", "other"],
            "calendar": {"lean": [5, 6, 7, 8], "other": [1, 2, 3, 4, 9, 10, 11, 12]},
        }
    for i, n in enumerate(names):
        pool = [m for m in names[:i] if m in dynamic or n in dynamic]
        k = int(rng.integers(0, min(len(pool), max_parents) + 1))
        parents = sorted(rng.choice(pool, size=k, replace=False).tolist()) if k else []
        if calendar and n in dynamic and rng.random() < 0.6:
            parents = ["season", *parents]

        def draw(_: Any, n: str = n) -> dict[str, float]:
            return dict(zip(states[n], _dirichlet(rng, len(states[n])).values(), strict=True))

        spec: dict[str, Any] = {"states": states[n]}
        if parents:
            spec["parents"] = parents
            spec["probabilities"] = _rows(rng, parents, states, draw)
        else:
            spec["probabilities"] = draw(None)
        if n in dynamic:
            choice = int(rng.integers(3))
            if choice == 0:
                spec["dynamic"] = {"persistence": float(rng.uniform(0.3, 0.95))}
            elif choice == 1:
                spec["dynamic"] = {
                    "persistence": {s: float(rng.uniform(0.0, 1.0)) for s in states[n]}
                }
            else:
                spec["dynamic"] = {"transitions": _rows(rng, [n, *parents], states, draw)}
        nodes[n] = spec
    kinds = ["binary", "categorical", "count", "normal", "lognormal", "student_t"]
    indicators: dict[str, Any] = {}
    for j in range(n_indicators):
        kind = kinds[j % len(kinds)]
        k = int(rng.integers(1, min(max_indicator_nodes, n_nodes) + 1))
        scope = sorted(rng.choice(names, size=k, replace=False).tolist())
        if calendar and rng.random() < 0.3:
            scope = ["season", *scope]
        ind: dict[str, Any] = {
            "kind": kind,
            "depends_on": scope,
            "params": _rows(rng, scope, states, lambda _, kind=kind: _random_params(rng, kind)),
            "combine": {"rule": "all"},
        }
        if kind == "categorical":
            ind["categories"] = ["c0", "c1", "c2"]
        rho = correlations[int(rng.integers(len(correlations)))]
        if kind in ("normal", "lognormal", "student_t") and rho is not None:
            ind["within_report_correlation"] = rho
        indicators[f"i{j}"] = ind
    outcomes: dict[str, Any] = {}
    for n in names[: min(3, n_nodes)]:
        out: dict[str, Any] = {
            "question": f"Is {n} in s0?",
            "node": n,
            "states": ["s0"],
            "resolve_by": end.isoformat(),
            "resolution": "By construction.",
        }
        if n in dynamic:
            timing = ["end", "ever", "at_least"][int(rng.integers(3))]
            out["timing"] = timing
            if timing == "at_least":
                out["k"] = int(rng.integers(1, n_steps + 1))
        outcomes[f"o_{n}"] = out
    return {
        "id": f"random-dynamic-{seed}",
        "horizon": {"start": start.isoformat(), "end": end.isoformat(), "step": step},
        "sources": {f"src{i}": {"reliability": r} for i, r in enumerate(reliabilities)},
        "nodes": nodes,
        "indicators": indicators,
        "outcomes": outcomes,
    }


def random_dynamic_tree(seed: int, n_nodes: int = 3, **kwargs: Any) -> Tree:
    """A random valid :class:`Tree` with dynamic nodes (see :func:`random_dynamic_tree_spec`)."""
    return tree_from_dict(random_dynamic_tree_spec(seed, n_nodes, **kwargs))


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


def random_readings(
    tree: Tree, n: int, seed: int, *, start_id: int = 1, n_dates: int | None = None
) -> list[Reading]:
    """``n`` random readings of ``tree``'s indicators.

    On random days of 2026 for a static tree; for a tree with a horizon, from two steps before
    it to one step after it. With ``n_dates``, the days are drawn from that many, so that
    readings of one source on one day (one report) are common.
    """
    rng = np.random.default_rng(seed)
    names = list(tree.indicators)
    sources = list(tree.sources)
    steps = tree.steps
    if steps is not None and tree.is_dynamic:
        first, last = steps.first_day(-2), steps.last_day(steps.n)
    else:
        first, last = dt.date(2026, 1, 1), dt.date(2026, 10, 27)
    span = (last - first).days + 1
    pool = (
        sorted(int(d) for d in rng.integers(0, span, size=n_dates)) if n_dates is not None else None
    )
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
        offset = int(rng.choice(pool)) if pool else int(rng.integers(0, span))
        day = first + dt.timedelta(days=offset)
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


def random_reports(
    tree: Tree, n: int, seed: int, *, max_size: int = 5, start_id: int = 1
) -> list[Reading]:
    """``n`` random readings in reports of 1 to ``max_size`` readings each.

    A report is one source on one day (within the horizon, or in 2026 for a static tree); its
    readings are of random indicators, each at its own location.
    """
    rng = np.random.default_rng(seed)
    values = random_readings(tree, n, seed, start_id=start_id)
    steps = tree.steps
    first, last = (
        (steps.start, steps.end)
        if steps is not None and tree.is_dynamic
        else (dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    )
    sources = list(tree.sources)
    out: list[Reading] = []
    while len(out) < n:
        size = min(int(rng.integers(1, max_size + 1)), n - len(out))
        day = first + dt.timedelta(days=int(rng.integers(0, (last - first).days + 1)))
        source = sources[int(rng.integers(len(sources)))]
        for j in range(size):
            r = values[len(out)]
            out.append(
                Reading(
                    id=r.id,
                    indicator=r.indicator,
                    value=r.value,
                    observed=ObservedDate.parse(day.isoformat()),
                    source=source,
                    location=f"city{j}",
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


def sample_path(tree: Tree, rng: np.random.Generator) -> dict[tuple[str, int | None], int]:
    """Draw every node's state over the horizon from the tree's prior.

    Keys are ``(node, None)`` for static nodes and ``(node, step)`` for dynamic and calendar
    nodes at steps ``0 .. n - 1``: the state at step 0 from the node's table, later ones from
    its transition (given its parents at the new step).
    """
    steps = tree.steps
    n = steps.n if steps is not None and tree.is_dynamic else 1
    out: dict[tuple[str, int | None], int] = {}

    def key(name: str, t: int) -> tuple[str, int | None]:
        return (name, None if tree.nodes[name].kind == "static" else t)

    for t in range(n):
        for name, node in tree.nodes.items():  # parents come first
            if node.kind == "static" and t > 0:
                continue
            if node.kind == "calendar":
                assert node.calendar is not None and steps is not None
                out[(name, t)] = node.calendar[steps.month(t) - 1]
                continue
            pa = tuple(out[key(p, t)] for p in node.parents)
            if node.kind == "dynamic" and t > 0:
                assert node.transition is not None
                probs = node.transition[(out[(name, t - 1)], *pa)]
            else:
                probs = node.cpt[pa]
            out[key(name, t)] = int(rng.choice(node.card, p=probs))
    return out


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
        genuine = rng.random() < tree.sources[source].mean_reliability
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
    """The reference answer, by enumerating every complete scenario (every path, if dynamic).

    ``nodes`` are the marginals at the as-of date's step (as the engine reports them),
    ``steps`` every dynamic node's marginal at each step of the horizon, ``scenarios`` the
    probabilities of the states of every non-calendar node (dynamic ones at the horizon's last
    step), most probable first.
    """

    nodes: dict[str, dict[str, float]]
    log_evidence: float
    scenarios: list[tuple[dict[str, str], float]]
    outcomes: dict[str, float]
    prior_outcomes: dict[str, float]
    steps: dict[str, list[dict[str, float]]]


def _scipy_group_logpdf(
    kind: str, values: np.ndarray, rho: float, params: Mapping[str, Any]
) -> float:
    """Joint log density of readings of one indicator in one report, by SciPy.

    An implementation independent of :mod:`scenariocast.evidence.likelihood`: the
    multivariate normal for normal and lognormal readings, and for Student-t readings the
    Gaussian copula evaluated through SciPy's distribution and quantile functions.
    """
    from scipy import stats

    n = len(values)
    x = np.asarray(values, dtype=float)
    if kind == "binary":
        return float(stats.bernoulli.logpmf(x.astype(int), params["p"]).sum())
    if kind == "categorical":
        with np.errstate(divide="ignore"):
            return float(np.log(np.asarray(params["probs"])[x.astype(int)]).sum())
    if kind == "count":
        return float(stats.poisson.logpmf(x.astype(int), params["rate"]).sum())
    mu, sigma = float(params["mu"]), float(params["sigma"])
    corr = (1 - rho) * np.eye(n) + rho * np.ones((n, n))
    if kind in ("normal", "lognormal"):
        lx = np.log(x) if kind == "lognormal" else x
        jac = -float(lx.sum()) if kind == "lognormal" else 0.0
        if n == 1 or rho == 0.0:
            return float(stats.norm.logpdf(lx, mu, sigma).sum()) + jac
        mvn = stats.multivariate_normal(np.full(n, mu), sigma**2 * corr)
        return float(mvn.logpdf(lx)) + jac
    nu = float(params["nu"])
    margins = float(stats.t.logpdf(x, nu, mu, sigma).sum())
    if n == 1 or rho == 0.0:
        return margins
    g = stats.norm.ppf(stats.t.cdf((x - mu) / sigma, nu))
    copula = stats.multivariate_normal(np.zeros(n), corr).logpdf(g) - stats.norm.logpdf(g).sum()
    return margins + float(copula)


def _static_joint(tree: Tree, names: Sequence[str]) -> dict[tuple[int, ...], float]:
    """The prior joint of static nodes ``names``, by enumerating every static node."""
    static = [n for n, node in tree.nodes.items() if node.kind == "static"]
    out: dict[tuple[int, ...], float] = {}
    for values in itertools.product(*(range(tree.nodes[n].card) for n in static)):
        got = dict(zip(static, values, strict=True))
        p = 1.0
        for n in static:
            node = tree.nodes[n]
            p *= float(node.cpt[(*(got[q] for q in node.parents), got[n])])
        key = tuple(got[n] for n in names)
        out[key] = out.get(key, 0.0) + p
    return out


def brute_force(
    tree: Tree,
    readings: Sequence[Reading],
    *,
    given: Mapping[str, str] | None = None,
    as_of: dt.date = dt.date(2100, 1, 1),
) -> BruteForce:
    """Posterior by enumeration of the joint state space (small trees only).

    Dynamic nodes are enumerated at every step from the earliest to the latest step the
    readings or assumptions touch (the horizon at least); outcome rules are evaluated on each
    enumerated path. Shares with the engine only the choice of readings and their grouping into
    reports (:func:`~scenariocast.evidence.select.select_evidence`) and the compiled tables.
    """
    evidence = select_evidence(tree, readings, as_of)
    steps = tree.steps
    timed = tree.is_dynamic and steps is not None
    n_steps = steps.n if timed and steps is not None else 1
    assumed: list[tuple[str, int, list[int | None]]] = []
    for key, state_name in dict(given or {}).items():
        target, _, when = key.partition("@")
        k = tree.state_index(target, state_name)
        if tree.nodes[target].kind == "static":
            assumed.append((target, k, [None]))
        elif when:
            assert steps is not None
            assumed.append((target, k, [steps.index(ObservedDate.parse(when).start)]))
        else:
            assumed.append((target, k, list(range(n_steps))))
    touched = [o.step for o in evidence.observations if o.step is not None]
    touched += [t for _, _, ts in assumed for t in ts if t is not None]
    lo, hi = min([0, *touched]), max([n_steps - 1, *touched])
    variables: list[tuple[str, int | None]] = [
        (n, None) for n, node in tree.nodes.items() if node.kind == "static"
    ]
    if timed:
        variables += [
            (n, t)
            for t in range(lo, hi + 1)
            for n, node in tree.nodes.items()
            if node.kind == "dynamic"
        ]
    cards = [tree.nodes[n].card for n, _ in variables]
    configs = np.array(list(itertools.product(*(range(c) for c in cards))), dtype=int)
    configs = configs.reshape(len(configs), len(variables))
    col = {v: i for i, v in enumerate(variables)}
    n_configs = len(configs)

    def state(node: str, step: int | None) -> np.ndarray:
        compiled = tree.nodes[node]
        if compiled.kind == "calendar":
            assert steps is not None and compiled.calendar is not None and step is not None
            return np.full(n_configs, compiled.calendar[steps.month(step) - 1])
        if compiled.kind == "static":
            return configs[:, col[(node, None)]]
        return configs[:, col[(node, step)]]

    with np.errstate(divide="ignore", invalid="ignore"):
        log_prior = np.zeros(n_configs)
        for name, node in tree.nodes.items():
            pa = node.parents
            if node.kind == "static":
                idx = (*(state(p, None) for p in pa), state(name, None))
                log_prior += np.log(node.cpt[idx])
            elif node.kind == "dynamic":
                assert node.transition is not None
                log_prior += np.log(node.cpt[(*(state(p, 0) for p in pa), state(name, 0))])
                for t in range(1, hi + 1):
                    idx = (state(name, t - 1), *(state(p, t) for p in pa), state(name, t))
                    log_prior += np.log(node.transition[idx])
                static_pa = [p for p in pa if tree.nodes[p].kind == "static"]
                weights = _static_joint(tree, static_pa)  # {their states: prior probability}
                for t in range(lo, 0):
                    # the chain read backwards from step t + 1, with the start table as weights
                    # and the static parents averaged out with their prior
                    h, i = state(name, t), state(name, t + 1)
                    num = np.zeros(n_configs)
                    den = np.zeros(n_configs)
                    start = np.zeros(n_configs)
                    for combo, w in weights.items():
                        chosen = dict(zip(static_pa, combo, strict=True))
                        pas = tuple(
                            np.full(n_configs, chosen[p]) if p in chosen else state(p, t + 1)
                            for p in pa
                        )
                        num += w * node.cpt[(*pas, h)] * node.transition[(h, *pas, i)]
                        den += w * sum(
                            node.cpt[(*pas, np.full(n_configs, j))]
                            * node.transition[(np.full(n_configs, j), *pas, i)]
                            for j in range(node.card)
                        )
                        start += w * node.cpt[(*pas, h)]
                    log_prior += np.where(den > 0, np.log(num / den), np.log(start))
    log_prior_norm = log_prior - float(logsumexp(log_prior))

    log_lik = np.zeros(n_configs)
    for rep in evidence.reports:
        groups: dict[tuple[str, int | None], list[float]] = {}
        genuine = np.zeros(n_configs)
        for o in rep.observations:
            if o.reading.of_node:  # the node is in the state reported, or the report is false
                node_name = o.reading.indicator
                k = tree.nodes[node_name].states.index(o.reading.value)
                genuine += np.where(state(node_name, o.step) == k, 0.0, -np.inf)
                continue
            groups.setdefault((o.indicator, o.step), []).append(o.value)
        for (name, step), values in groups.items():
            ind = tree.indicators[name]
            combos_ = list(itertools.product(*(range(tree.nodes[n].card) for n in ind.scope)))
            table = np.zeros(tuple(tree.nodes[n].card for n in ind.scope))
            for combo in combos_:
                params = {k: v[combo] for k, v in ind.params.items()}
                table[combo] = _scipy_group_logpdf(
                    ind.spec.kind, np.array(values), ind.spec.correlation(), params
                )
            genuine += table[tuple(state(n, step) for n in ind.scope)]
        log_q = float(logsumexp(genuine + log_prior_norm))
        r = rep.reliability
        log_r = math.log(r) if r > 0 else -math.inf
        log_not = math.log1p(-r) if r < 1 else -math.inf
        log_lik += np.logaddexp(log_r + genuine, log_not + log_q)

    mask = np.zeros(n_configs)
    for target, index, ts in assumed:
        for when_step in ts:
            mask += np.where(state(target, when_step) == index, 0.0, -np.inf)
    log_base = log_prior + mask
    log_joint = log_base + log_lik
    log_z = float(logsumexp(log_joint))
    post = np.exp(log_joint - log_z)
    prior = np.exp(log_base - float(logsumexp(log_base)))

    def holds(oid: str) -> np.ndarray:
        o = tree.outcomes[oid]
        node = tree.nodes[o.node]
        members = [node.states.index(s) for s in o.states]
        if node.kind == "static":
            return np.isin(state(o.node, None), members)
        inside = np.stack([np.isin(state(o.node, t), members) for t in range(n_steps)])
        if o.timing == "end":
            return np.asarray(inside[-1])
        count = inside.sum(axis=0)
        return np.asarray(count >= (1 if o.timing == "ever" else int(o.k or 1)))

    now = min(max(steps.index(evidence.as_of), 0), n_steps - 1) if timed and steps else 0
    nodes = {
        n: {
            s: float(post[state(n, now if node.kind == "dynamic" else None) == k].sum())
            for k, s in enumerate(node.states)
        }
        for n, node in tree.nodes.items()
        if node.kind != "calendar"
    }
    step_marginals = {
        n: [
            {s: float(post[state(n, t) == k].sum()) for k, s in enumerate(node.states)}
            for t in range(n_steps)
        ]
        for n, node in tree.nodes.items()
        if node.kind == "dynamic"
    }
    keep = [
        (n, (n_steps - 1) if node.kind == "dynamic" else None)
        for n, node in tree.nodes.items()
        if node.kind != "calendar"
    ]
    keys = np.stack([state(n, t) for n, t in keep], axis=1)
    totals: dict[tuple[int, ...], float] = {}
    for row, p in zip(map(tuple, keys.tolist()), post, strict=True):
        totals[row] = totals.get(row, 0.0) + float(p)
    scenarios = sorted(
        (
            ({n: tree.nodes[n].states[v] for (n, _), v in zip(keep, row, strict=True)}, p)
            for row, p in totals.items()
        ),
        key=lambda sp: -sp[1],
    )
    return BruteForce(
        nodes=nodes,
        log_evidence=log_z - float(logsumexp(log_base)),
        scenarios=scenarios,
        outcomes={oid: float(post[holds(oid)].sum()) for oid in tree.outcomes},
        prior_outcomes={oid: float(prior[holds(oid)].sum()) for oid in tree.outcomes},
        steps=step_marginals,
    )
