"""Hard evidence (``given``) answered on the junction tree of the network without its observed
variables: the same marginals as the whole network's junction tree and as enumeration, and one
junction tree per set of observed variables, whatever their states."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from scenariocast.engines.exact import ExactModel
from scenariocast.engines.exact import model as exact_model
from scenariocast.evidence.select import select_evidence
from scenariocast.interop import read_network
from scenariocast.interop.scenario import to_yaml
from scenariocast.spec.load import parse_tree
from scenariocast.spec.tree import Tree
from scenariocast.testing import brute_force, random_readings, random_tree
from tests.conftest import FAR_FUTURE

NETWORKS = Path(__file__).resolve().parent / "data" / "networks"


def _close(a: Mapping[str, Mapping[str, float]], b: Mapping[str, Mapping[str, float]]) -> None:
    assert a.keys() == b.keys()
    for n in a:
        for s in a[n]:
            assert a[n][s] == pytest.approx(b[n][s], abs=1e-9), (n, s)


def _full_and_reduced(
    model: ExactModel, given: Mapping[str, str], as_of: dt.date = FAR_FUTURE
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]], float, float]:
    """Node marginals and log Z given ``given``: the whole network's junction tree with the
    assumptions as zero factors, and the junction tree of the network without them."""
    query = model.query(select_evidence(model.tree, [], as_of), given)
    base = list(query.base)
    full = model.posterior(query, base)  # the query's own structure: nothing taken out
    assert not full.calibrated.reduction.observed
    observed = model.observed(query, query.assumptions)
    reduced = model.posterior(query, base, model.reduced(query.structure, observed))
    # the observed variables, and those the tables' zeros leave in one state (none without a
    # zero in the tables)
    reduction = reduced.calibrated.reduction
    assert reduction.variables >= frozenset(observed)
    assert all(reduction.observed_states[v] == s for v, s in observed.items())
    return full.nodes, reduced.nodes, full.log_z, reduced.log_z


def _given(tree: Tree, seed: int, k: int) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    names = list(tree.nodes)
    picked = rng.choice(len(names), size=min(k, len(names)), replace=False)
    return {
        names[i]: tree.nodes[names[i]].states[int(rng.integers(tree.nodes[names[i]].card))]
        for i in sorted(picked)
    }


@pytest.mark.parametrize("seed", range(12))
def test_reduced_structure_equals_full_structure_and_enumeration(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # through the junction tree even where the tree is small enough for its joint (small.py)
    monkeypatch.setattr(exact_model, "USE_JOINT", False)
    tree = random_tree(seed, 8, max_parents=3)
    given = _given(tree, seed, 2 + seed % 3)
    model = ExactModel(tree)
    full, reduced, log_z_full, log_z_reduced = _full_and_reduced(model, given)
    if not math.isfinite(log_z_full):  # an impossible combination: both say so
        assert not math.isfinite(log_z_reduced)
        return
    _close(reduced, full)
    assert log_z_reduced == pytest.approx(log_z_full, abs=1e-9)
    readings = random_readings(tree, seed % 4, seed)
    result = model.forecast(readings, given=given, as_of=FAR_FUTURE, top=0)
    ref = brute_force(tree, readings, given=given)
    _close(result.nodes, ref.nodes)
    for node, state in given.items():
        assert result.nodes[node][state] == 1.0


def test_one_junction_tree_per_set_of_observed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exact_model, "USE_JOINT", False)
    # indicators of one node each: readings add no scope, so the structure stays the same
    tree = random_tree(3, 8, max_parents=3, max_states=3, max_indicator_nodes=1)
    model = ExactModel(tree)
    a, b, c = list(tree.nodes)[1:4]
    states = {n: tree.nodes[n].states for n in (a, b, c)}
    first = model.forecast([], given={a: states[a][0], b: states[b][0]}, top=0)
    assert len(model._reduced_trees) == 1
    (jt,) = model._reduced_trees.values()
    # the same variables in other states, and with readings: the same junction tree
    other = {a: states[a][-1], b: states[b][-1]}
    second = model.forecast([], given=other, top=0)
    assert len(model._reduced_trees) == 1
    assert next(iter(model._reduced_trees.values())) is jt
    read = random_readings(tree, 3, 3)
    with_readings = model.forecast(read, given=other, as_of=FAR_FUTURE, top=0)
    assert len(model._reduced_trees) == 1
    _close(with_readings.nodes, brute_force(tree, read, given=other).nodes)
    # nothing was kept by input: each forecast is its own calibration
    assert second.nodes != first.nodes or states[a][0] == states[a][-1]
    _close(second.nodes, brute_force(tree, [], given=other).nodes)
    # another set of observed variables: another junction tree, the first one kept
    model.forecast([], given={a: states[a][0], c: states[c][0]}, top=0)
    assert sum(1 for t in model._reduced_trees.values() if t is jt) == 1
    assert len({id(t) for t in model._reduced_trees.values()}) >= 2


def _water() -> tuple[Tree, list[dict[str, str]]]:
    net = read_network(NETWORKS / "water.bif")
    tree = parse_tree(to_yaml(net, tree_id="water"), file="water.yaml")
    by_name = {(v.label or v.id): v for v in net.variables.values()}
    cases = json.loads((NETWORKS / "references.json").read_text(encoding="utf-8"))["networks"]
    givens = []
    for case in cases["water"][1:]:
        givens.append(
            {
                by_name[v].id: by_name[v].states[by_name[v].shown_states().index(s)]
                for v, s in case["evidence"].items()
            }
        )
    return tree, givens


def test_water_reduced_structure_is_smaller_and_gives_the_full_marginals() -> None:
    tree, givens = _water()
    model = ExactModel(tree)
    for given in givens:
        full, reduced, log_z_full, log_z_reduced = _full_and_reduced(model, given)
        _close(reduced, full)
        assert log_z_reduced == pytest.approx(log_z_full, abs=1e-9)
        query = model.query(select_evidence(tree, [], FAR_FUTURE), given)
        observed = model.observed(query, query.assumptions)
        whole = query.structure.jt
        jt = model.reduced(query.structure, observed).jt
        # no clique of the reduced tree joins an observed variable to another variable
        assert all(len(c) == 1 for c in jt.cliques if set(c) & set(observed))
        largest = max(math.prod(s) for s in jt.clusters.shapes)
        assert largest * 3 <= max(math.prod(s) for s in whole.clusters.shapes)
        assert sum(jt.clusters.sizes) * 3 <= sum(whole.clusters.sizes)
