"""States of probability 0 taken out before calibration (``engines/exact/support.py``).

Where the tables have zeros, arc consistency finds states no scenario can take given the hard
evidence; the engine drops them from every table (a variable left with one state like an
observed one) and calibrates a smaller junction tree. Checked here: the states kept are every
state of positive probability (by enumeration, and exactly the reference's on water), the
calibration on the states kept equals enumeration, and forecasts of trees with zeros in their
tables equal enumeration of every scenario (nodes, outcomes, evidence, top scenarios).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scenariocast.engines.exact import ExactModel
from scenariocast.engines.exact import model as exact_model
from scenariocast.engines.exact.junction import Factor, JunctionTree, LinearCalibrated, Reduction
from scenariocast.engines.exact.support import Support
from scenariocast.errors import EvidenceConflictError
from scenariocast.evidence.likelihood import logsumexp
from scenariocast.evidence.select import select_evidence
from scenariocast.interop import read_network
from scenariocast.interop.scenario import to_yaml
from scenariocast.spec.load import parse_tree
from scenariocast.spec.tree import Tree
from scenariocast.testing import (
    brute_force,
    random_dynamic_tree_spec,
    random_readings,
    random_tree_spec,
    tree_from_dict,
)
from tests.exact_support import check_against_brute_force

NETWORKS = Path(__file__).resolve().parent / "data" / "networks"


def _factors_with_zeros(seed: int, n: int) -> tuple[list[int], list[Factor]]:
    """A random network's conditional tables (logs) with about half their entries 0 (each row
    keeps at least one state), and a non-negative factor with zeros."""
    rng = np.random.default_rng(seed)
    cards = [int(c) for c in rng.integers(2, 5, size=n)]
    factors: list[Factor] = []
    for v in range(n):
        k = min(v, int(rng.integers(0, 4)))
        parents = sorted(int(p) for p in rng.choice(v, size=k, replace=False)) if k else []
        shape = (*(cards[p] for p in parents), cards[v])
        table = rng.dirichlet(np.ones(cards[v]), size=int(np.prod(shape[:-1])))
        table[rng.random(table.shape) < 0.5] = 0.0
        empty = table.sum(axis=1) == 0
        table[empty, rng.integers(cards[v], size=int(empty.sum()))] = 1.0
        table /= table.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore"):
            factors.append(((*parents, v), np.log(table.reshape(shape))))
    scope = (0, n - 1)
    values = rng.normal(size=(cards[0], cards[n - 1]))
    values[rng.random(values.shape) < 0.3] = -np.inf
    factors.append((scope, values))
    return cards, factors


def _joint(cards: list[int], factors: list[Factor]) -> tuple[np.ndarray, float]:
    """The normalised joint over every variable (zeros if nothing is possible), and log Z."""
    n = len(cards)
    log_joint = np.zeros(cards)
    for scope, values in factors:
        order = sorted(range(len(scope)), key=lambda i: scope[i])
        shape = [cards[v] if v in scope else 1 for v in range(n)]
        log_joint = log_joint + np.transpose(values, order).reshape(shape)
    log_z = float(logsumexp(log_joint))
    if not math.isfinite(log_z):
        return np.zeros(cards), log_z
    return np.exp(log_joint - log_z), log_z


def _marginal(joint: np.ndarray, v: int) -> np.ndarray:
    return joint.sum(axis=tuple(k for k in range(joint.ndim) if k != v))


def _evidence(cards: list[int], observed: Mapping[int, int]) -> list[Factor]:
    return [((v,), np.where(np.arange(cards[v]) == s, 0.0, -np.inf)) for v, s in observed.items()]


@pytest.mark.parametrize("seed", range(25))
def test_support_keeps_every_state_of_positive_probability(seed: int) -> None:
    cards, factors = _factors_with_zeros(seed, n=7)
    rng = np.random.default_rng(seed)
    observed = {int(v): int(rng.integers(cards[v])) for v in rng.choice(7, size=2, replace=False)}
    joint, log_z = _joint(cards, [*factors, *_evidence(cards, observed)])
    domains = Support(cards, factors).domains(observed)
    if domains is None:  # nothing left: only when nothing is possible
        assert not math.isfinite(log_z)
        return
    for v, allowed in enumerate(domains):
        positive = _marginal(joint, v) > 0
        assert not (positive & ~allowed).any(), v  # never a possible state dropped
        if v in observed:
            assert allowed.sum() == 1 and allowed[observed[v]]


def test_support_drops_what_a_chain_of_copies_rules_out() -> None:
    # x0 -> x1 -> x2, each a copy of its parent except that x1 never takes state 2; observing
    # x2 = 0 leaves x0 and x1 in state 0 alone, and nothing rules out x2 = 1 or x0 = 2 before
    cards = [3, 3, 3]
    with np.errstate(divide="ignore"):
        copy = np.log(np.eye(3))
        no_two = np.log(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]]))
    factors: list[Factor] = [((0,), np.log(np.full(3, 1 / 3))), ((0, 1), no_two), ((1, 2), copy)]
    support = Support(cards, factors)
    base = support.domains({})
    assert base is not None
    assert [d.tolist() for d in base] == [[True] * 3, [True, True, False], [True, True, False]]
    given = support.domains({2: 0})
    assert given is not None
    left = [[True, False, True], [True, False, False], [True, False, False]]
    assert [d.tolist() for d in given] == left
    assert support.domains({2: 2}) is None  # x2 = 2 is impossible


def test_support_of_a_table_without_zeros_rules_nothing_out() -> None:
    cards = [2, 3]
    factors: list[Factor] = [((0,), np.log([0.5, 0.5])), ((0, 1), np.log(np.full((2, 3), 1 / 3)))]
    support = Support(cards, factors)
    assert not support.any_zero
    domains = support.domains({1: 2})
    assert domains is not None
    assert [d.tolist() for d in domains] == [[True, True], [False, False, True]]


@pytest.mark.parametrize("seed", range(20))
def test_calibration_on_the_states_kept_equals_enumeration(seed: int) -> None:
    cards, factors = _factors_with_zeros(seed + 50, n=8)
    observed = {1: 0}
    joint, log_z = _joint(cards, [*factors, *_evidence(cards, observed)])
    domains = Support(cards, factors).domains(observed)
    if domains is None:
        assert not math.isfinite(log_z)
        return
    fixed = dict(observed)
    kept = []
    for v, allowed in enumerate(domains):
        states = tuple(int(i) for i in np.flatnonzero(allowed))
        if v not in fixed and len(states) == 1:
            fixed[v] = states[0]
        elif v not in fixed and len(states) < cards[v]:
            kept.append((v, states))
    reduction = Reduction(tuple(sorted(fixed.items())), tuple(kept))
    reduced, const = reduction.apply(factors)
    jt = JunctionTree(reduction.cards(cards), [s for s, _ in reduced])
    cal = jt.calibrate_linear(reduced)
    if not math.isfinite(log_z):
        assert not math.isfinite(cal.log_z + const)
        return
    assert isinstance(cal, LinearCalibrated)
    assert cal.log_z + const == pytest.approx(log_z, abs=1e-10)
    for v in range(len(cards)):
        if v in fixed:
            assert _marginal(joint, v)[fixed[v]] == pytest.approx(1.0, abs=1e-12)
            continue
        got = reduction.expand(v, cal.marginal(v), cards[v])
        np.testing.assert_allclose(got, _marginal(joint, v), atol=1e-12)
    # a joint of two variables left, on the states kept
    scope = next((c[:2] for c in jt.cliques if len(c) >= 2), None)
    if scope is not None:
        a, b = scope
        want = joint.sum(axis=tuple(k for k in range(len(cards)) if k not in scope))
        want = want if a < b else want.T
        rows = [reduction.state(a, i) for i in range(reduction.cards(cards)[a])]
        cols = [reduction.state(b, j) for j in range(reduction.cards(cards)[b])]
        np.testing.assert_allclose(cal.joint(scope), want[np.ix_(rows, cols)], atol=1e-12)


def _with_zeros(spec: dict[str, Any], seed: int) -> dict[str, Any]:
    """``spec`` with some probabilities 0 in every table (each row keeps a state)."""
    rng = np.random.default_rng(seed)

    def thin(dist: dict[str, float]) -> dict[str, float]:
        keys = list(dist)
        dropped = [k for k in keys if rng.random() < 0.45][: len(keys) - 1]
        left = {k: (0.0 if k in dropped else p) for k, p in dist.items()}
        total = sum(left.values())
        return {k: p / total for k, p in left.items()}

    for node in spec["nodes"].values():
        probs = node.get("probabilities")
        if isinstance(probs, dict):
            node["probabilities"] = thin(probs)
        elif isinstance(probs, list):
            for row in probs:
                row["then"] = thin(row["then"])
        dynamic = node.get("dynamic")
        if isinstance(dynamic, dict) and "transitions" in dynamic:
            for row in dynamic["transitions"]:
                row["then"] = thin(row["then"])
    return spec


def _pruned(model: ExactModel, given: Mapping[str, str]) -> tuple[bool, bool]:
    """Whether a reduction of the model kept some states of a variable, and whether one fixed
    a variable that was not given."""
    kept = any(r.kept for r in model._reductions.values())
    fixed = any(len(r.observed) > len(given) for r in model._reductions.values())
    return kept, fixed


def test_static_trees_with_zeros_equal_enumeration(monkeypatch: pytest.MonkeyPatch) -> None:
    # through the junction tree even where the tree is small enough for its joint (small.py)
    monkeypatch.setattr(exact_model, "USE_JOINT", False)
    seen_kept = seen_fixed = False
    for seed in range(16):
        tree = tree_from_dict(_with_zeros(random_tree_spec(seed, 7, max_parents=3), seed))
        # the given states of a possible scenario, and readings
        scenarios = [s for s, p in brute_force(tree, []).scenarios if p > 0]
        rng = np.random.default_rng(seed)
        picked = scenarios[int(rng.integers(len(scenarios)))]
        names = sorted(rng.choice(list(picked), size=1 + seed % 3, replace=False).tolist())
        given = {n: picked[n] for n in names}
        readings = random_readings(tree, seed % 4, seed)
        try:
            model = check_against_brute_force(tree, readings, given=given)
        except EvidenceConflictError:  # the readings rule the assumptions out: so must enumeration
            assert not math.isfinite(brute_force(tree, readings, given=given).log_evidence)
            continue
        kept, fixed = _pruned(model, given)
        seen_kept |= kept
        seen_fixed |= fixed
    assert seen_kept and seen_fixed  # both kinds of narrowing were checked


def test_dynamic_trees_with_zeros_equal_enumeration() -> None:
    seen = False
    for seed in range(10):
        spec = random_dynamic_tree_spec(seed, 3, n_steps=3, max_states=2 + seed % 2)
        tree = tree_from_dict(_with_zeros(spec, seed))
        readings = random_readings(tree, 2 + seed % 3, seed, n_dates=2)
        scenarios = [s for s, p in brute_force(tree, []).scenarios if p > 0]
        static = [n for n in tree.nodes if tree.nodes[n].kind == "static"]
        given = {static[0]: scenarios[0][static[0]]} if static and seed % 2 else {}
        try:
            model = check_against_brute_force(tree, readings, given=given)
        except EvidenceConflictError:
            assert not math.isfinite(brute_force(tree, readings, given=given).log_evidence)
            continue
        seen |= any(_pruned(model, given))
    assert seen


def _water() -> tuple[Tree, list[dict[str, str]], list[dict[str, dict[str, float]]]]:
    net = read_network(NETWORKS / "water.bif")
    tree = parse_tree(to_yaml(net, tree_id="water"), file="water.yaml")
    by_name = {(v.label or v.id): v for v in net.variables.values()}
    cases = json.loads((NETWORKS / "references.json").read_text(encoding="utf-8"))["networks"]
    givens, marginals = [], []
    for case in cases["water"]:
        givens.append(
            {
                by_name[v].id: by_name[v].states[by_name[v].shown_states().index(s)]
                for v, s in case["evidence"].items()
            }
        )
        marginals.append(
            {
                by_name[v].id: dict(zip(by_name[v].states, m.values(), strict=True))
                for v, m in case["marginals"].items()
            }
        )
    return tree, givens, marginals


def test_water_keeps_exactly_the_states_of_positive_probability() -> None:
    tree, givens, marginals = _water()
    model = ExactModel(tree)
    for given, reference in zip(givens, marginals, strict=True):
        query = model.query(select_evidence(tree, [], dt.date(2026, 1, 1)), given)
        observed = model.observed(query, query.assumptions)
        structure = model.reduced(query.structure, observed)
        reduction = structure.reduction
        net = query.network
        for name, probs in reference.items():
            var = net.var_of[net.at(name, None)]
            states = [tree.nodes[name].states.index(s) for s, p in probs.items() if p > 0]
            card = tree.nodes[name].card
            allowed = [reduction.state(var, i) for i in range(reduction.cards(net.cards)[var])]
            assert sorted(allowed) == states or (len(states) == card and len(allowed) == card)
        # most of the 1.77 million entries of the largest clique are of probability 0
        assert max(structure.jt.clusters.sizes) <= 20_000


def test_a_narrowed_structure_calibrates_only_with_the_network_tables() -> None:
    tree, givens, _ = _water()
    model = ExactModel(tree)
    query = model.query(select_evidence(tree, [], dt.date(2026, 1, 1)), givens[1])
    structure = model.reduced(query.structure, model.observed(query, query.assumptions))
    assert structure.pruned_by  # the tables' zeros narrowed it
    structure.calibrate(list(query.base))  # the network's tables first: calibrated
    with pytest.raises(ValueError, match="start with those tables"):
        structure.calibrate(list(query.base)[1:])
