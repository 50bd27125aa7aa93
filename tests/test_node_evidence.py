"""Virtual and soft evidence on nodes, against enumeration of the joint (small trees)."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from scenariocast import Model
from scenariocast.cli import app
from scenariocast.errors import EvidenceConflictError, QueryError
from scenariocast.spec.tree import Tree
from scenariocast.testing import random_tree, tree_from_dict

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "example-harvest.yaml"
SEEDS = range(6)


def _joint(tree: Tree) -> tuple[list[str], np.ndarray]:
    """The prior joint of every node (static trees), one axis per node, by enumeration."""
    names = list(tree.nodes)
    joint = np.zeros([tree.nodes[n].card for n in names])
    for values in itertools.product(*(range(tree.nodes[n].card) for n in names)):
        got = dict(zip(names, values, strict=True))
        p = 1.0
        for n in names:
            node = tree.nodes[n]
            p *= float(node.cpt[(*(got[q] for q in node.parents), got[n])])
        joint[values] = p
    return names, joint


def _marginals(tree: Tree, names: list[str], joint: np.ndarray) -> dict[str, dict[str, float]]:
    joint = joint / joint.sum()
    out = {}
    for i, n in enumerate(names):
        axes = tuple(j for j in range(len(names)) if j != i)
        m = joint.sum(axis=axes)
        out[n] = dict(zip(tree.nodes[n].states, m.tolist(), strict=True))
    return out


def _along(values: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    shape = [1] * ndim
    shape[axis] = len(values)
    return values.reshape(shape)


def _given(tree: Tree, names: list[str], joint: np.ndarray, node: str, state: str) -> np.ndarray:
    i = names.index(node)
    keep = np.zeros(tree.nodes[node].card)
    keep[tree.state_index(node, state)] = 1.0
    return joint * _along(keep, i, joint.ndim)


def _close(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> None:
    assert a.keys() == b.keys()
    for n in a:
        for s in a[n]:
            assert a[n][s] == pytest.approx(b[n][s], abs=1e-9), (n, s)


def _pick(tree: Tree, seed: int) -> tuple[str, str]:
    """Two different nodes of the tree, chosen by the seed."""
    rng = np.random.default_rng(seed)
    first, second = rng.choice(list(tree.nodes), size=2, replace=False)
    return str(first), str(second)


@pytest.mark.parametrize("seed", SEEDS)
def test_virtual_evidence_multiplies_the_joint_by_the_ratios(seed: int) -> None:
    tree = random_tree(seed, 5)
    names, joint = _joint(tree)
    node, other = _pick(tree, seed)
    rng = np.random.default_rng(seed + 100)
    ratios = rng.uniform(0.1, 3.0, tree.nodes[node].card)
    virtual = {node: dict(zip(tree.nodes[node].states, ratios.tolist(), strict=True))}
    state = tree.nodes[other].states[0]
    expected = _given(tree, names, joint, other, state) * _along(
        ratios, names.index(node), joint.ndim
    )
    result = Model(tree).forecast(virtual=virtual, given={other: state})
    _close(dict(result.nodes), _marginals(tree, names, expected))
    # the ratios count, not their scale
    doubled = {node: {s: 2 * v for s, v in virtual[node].items()}}
    again = Model(tree).forecast(virtual=doubled, given={other: state})
    _close(dict(again.nodes), dict(result.nodes))


@pytest.mark.parametrize("seed", SEEDS)
def test_soft_evidence_is_jeffreys_rule(seed: int) -> None:
    tree = random_tree(seed, 5)
    names, joint = _joint(tree)
    node, other = _pick(tree, seed)
    state = tree.nodes[other].states[-1]
    base = _given(tree, names, joint, other, state)
    if base.sum() == 0:
        pytest.skip("the assumption is impossible in this tree")
    q = np.random.default_rng(seed + 200).dirichlet(np.ones(tree.nodes[node].card))
    # P'(x) = sum_s q(s) P(x | s, other = state)
    i = names.index(node)
    per_state = base.sum(axis=tuple(j for j in range(base.ndim) if j != i))
    if np.any(per_state <= 0):
        pytest.skip("a state of the node is impossible given the assumption")
    expected = base * _along(q / per_state, i, base.ndim)
    soft = {
        node: ",".join(f"{s}={float(v)!r}" for s, v in zip(tree.nodes[node].states, q, strict=True))
    }
    result = Model(tree).forecast(soft=soft, given={other: state})
    _close(dict(result.nodes), _marginals(tree, names, expected))
    assert [result.nodes[node][s] for s in tree.nodes[node].states] == pytest.approx(q, abs=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_two_soft_findings_both_hold(seed: int) -> None:
    tree = random_tree(seed, 5)
    names, joint = _joint(tree)
    a, b = _pick(tree, seed)
    rng = np.random.default_rng(seed + 300)
    targets = {n: rng.dirichlet(np.ones(tree.nodes[n].card) * 3) for n in (a, b)}
    # iterative proportional fitting of the joint, by brute force
    fitted = joint.copy()
    for _ in range(2000):
        for n, q in targets.items():
            i = names.index(n)
            m = fitted.sum(axis=tuple(j for j in range(fitted.ndim) if j != i)) / fitted.sum()
            fitted = fitted * _along(q / m, i, fitted.ndim)
    soft = {n: dict(zip(tree.nodes[n].states, q.tolist(), strict=True)) for n, q in targets.items()}
    result = Model(tree).forecast(soft=soft)
    _close(dict(result.nodes), _marginals(tree, names, fitted))
    for n, q in targets.items():
        assert [result.nodes[n][s] for s in tree.nodes[n].states] == pytest.approx(q, abs=1e-9)


# the example of docs/interop.md: the same numbers, two meanings
COIN: dict[str, Any] = {
    "nodes": {
        "weather": {"states": ["good", "poor"], "probabilities": {"good": 0.8, "poor": 0.2}},
        "harvest": {
            "states": ["adequate", "short"],
            "parents": ["weather"],
            "probabilities": [
                {"when": {"weather": "good"}, "then": {"adequate": 0.9, "short": 0.1}},
                {"when": {"weather": "poor"}, "then": {"adequate": 0.3, "short": 0.7}},
            ],
        },
    },
}


def test_virtual_and_soft_differ_as_documented() -> None:
    model = Model(tree_from_dict(COIN))
    # soft: weather IS 50/50 afterwards
    soft = model.forecast(soft={"weather": "good=0.5,poor=0.5"})
    assert soft.nodes["weather"]["poor"] == pytest.approx(0.5, abs=1e-12)
    assert soft.nodes["harvest"]["short"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.7, abs=1e-12)
    # virtual: a report as likely under either state tells nothing
    virtual = model.forecast(virtual={"weather": "good=0.5,poor=0.5"})
    assert virtual.nodes["weather"]["poor"] == pytest.approx(0.2, abs=1e-12)
    # virtual 1:4 against poor weather: 0.2*4 / (0.8*1 + 0.2*4) = 0.5
    four = model.forecast(virtual={"weather": {"good": 1, "poor": 4}})
    assert four.nodes["weather"]["poor"] == pytest.approx(0.5, abs=1e-12)
    assert four.to_dict()["findings"] == [
        {"node": "weather", "kind": "virtual", "values": {"good": 1.0, "poor": 4.0}}
    ]
    assert soft.log_evidence == pytest.approx(0.0, abs=1e-12)  # a revision, not a likelihood
    assert four.log_evidence == pytest.approx(np.log(0.8 * 1 + 0.2 * 4), abs=1e-12)


@pytest.mark.parametrize(
    ("virtual", "soft", "message"),
    [
        ({"weather": "good=0,poor=0"}, None, "every state a ratio of 0"),
        ({"weather": "good=-1,poor=1"}, None, "must be >= 0"),
        ({"weather": "god=1"}, None, "has no state 'god'"),
        ({"wether": "good=1"}, None, "has no node 'wether'"),
        ({"weather": "good 1"}, None, "state=number pairs"),
        (None, {"weather": "good=0.5,poor=0.6"}, "sums to 1.1, not 1"),
        (None, {"weather@2026-01": "good=1"}, "does not change over time"),
    ],
)
def test_bad_evidence_on_nodes_is_one_clear_error(
    virtual: dict[str, str] | None, soft: dict[str, str] | None, message: str
) -> None:
    with pytest.raises(QueryError, match=message):
        Model(tree_from_dict(COIN)).forecast(virtual=virtual, soft=soft)


def test_soft_evidence_on_a_state_ruled_out_is_a_conflict() -> None:
    frost = {
        "states": ["no", "yes"],
        "parents": ["weather"],
        "probabilities": [
            {"when": {"weather": "good"}, "then": {"no": 1.0, "yes": 0.0}},
            {"when": {"weather": "poor"}, "then": {"no": 0.5, "yes": 0.5}},
        ],
    }
    nodes = {"nodes": {**COIN["nodes"], "frost": frost}}
    model = Model(tree_from_dict(nodes))
    with pytest.raises(EvidenceConflictError, match="soft evidence on weather gives probability"):
        model.forecast(soft={"weather": "good=0.5,poor=0.5"}, given={"frost": "yes"})


def test_the_command_line_takes_virtual_and_soft_evidence(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / EXAMPLE.name)
    env = {"SCENARIOCAST_DB": str(tmp_path / "ledger.db"), "SCENARIOCAST_SCENARIOS": str(tmp_path)}
    runner = CliRunner()
    assert runner.invoke(app, ["ledger", "init"], env=env).exit_code == 0
    args = ["forecast", str(tmp_path / EXAMPLE.name), "--as-of", "2026-06-01"]
    ok = runner.invoke(
        app,
        [*args, "--virtual", "weather=good:1,poor:4", "--soft", "imports=normal:0.3,low:0.7"],
        env=env,
    )
    assert ok.exit_code == 0, ok.output
    assert (
        "Evidence on nodes: weather likelihoods good 1, poor 4; imports ~ normal 0.3, low 0.7"
        in (ok.stdout)
    )
    bad = runner.invoke(app, [*args, "--soft", "imports=normal:0.3,low:0.3"], env=env)
    assert bad.exit_code != 0
    assert "Traceback" not in bad.output
    assert "soft evidence on 'imports'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
