"""A small static tree forecast from its full joint (engines/exact/small.py).

Given hard evidence and nothing else, a tree of a few nodes is answered by slicing its joint;
every number must be what the junction tree gives (to rounding) and what enumerating every
scenario gives, errors must be the same, and the lean path must be taken only where it holds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from scenariocast import Model
from scenariocast.engines.exact import ExactModel, small
from scenariocast.engines.exact import model as exact_model
from scenariocast.engines.result import ForecastResult
from scenariocast.errors import EvidenceConflictError, QueryError
from scenariocast.spec.tree import Tree
from scenariocast.testing import brute_force, random_dynamic_tree, random_tree, tree_from_dict

AS_OF = dt.date(2026, 6, 1)


def _junction(tree: Tree, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> ForecastResult:
    """The forecast through the junction tree, the joint turned off."""
    with monkeypatch.context() as m:
        m.setattr(exact_model, "USE_JOINT", False)
        model = ExactModel(tree)
        assert model.small() is None
        return model.forecast([], as_of=AS_OF, **kwargs)


def _close(a: Mapping[str, Mapping[str, float]], b: Mapping[str, Mapping[str, float]]) -> None:
    assert a.keys() == b.keys()
    for n in a:
        assert list(a[n]) == list(b[n])
        for s in a[n]:
            assert a[n][s] == pytest.approx(b[n][s], abs=1e-12), (n, s)


def _random_given(tree: Tree, seed: int) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    names = list(tree.nodes)
    k = int(rng.integers(0, len(names) + 1))
    chosen = rng.choice(names, size=k, replace=False).tolist()
    return {n: tree.nodes[n].states[int(rng.integers(tree.nodes[n].card))] for n in chosen}


@pytest.mark.parametrize("whole", [True, False])
@pytest.mark.parametrize("seed", range(40))
def test_the_joint_gives_what_the_junction_tree_and_enumeration_give(
    seed: int, whole: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = random_tree(seed, 1 + seed % 7)
    given = _random_given(tree, seed)
    model = ExactModel(tree)
    if not whole:  # the whole joint too large: the tables sliced at the assumptions, per query
        size = int(np.prod([n.card for n in tree.nodes.values()]))
        monkeypatch.setattr(small, "JOINT_SIZE", size - 1)
    joint = model.small()
    assert joint is not None and (joint.joint is not None) == whole
    assert joint.fits(given) == (whole or bool(given))
    got = model.forecast([], given=given, as_of=AS_OF, top=5)
    ref = _junction(tree, monkeypatch, given=given, top=5)
    _close(got.nodes, ref.nodes)
    _close(got.prior_nodes, ref.prior_nodes)
    assert got.given == ref.given
    assert got.evidence == ref.evidence and got.evidence.reading_ids == ()
    assert got.log_evidence == ref.log_evidence == 0.0
    assert (got.steps, got.now_step) == (ref.steps, ref.now_step)
    assert got.outcomes.keys() == ref.outcomes.keys()
    for oid, o in got.outcomes.items():
        r = ref.outcomes[oid]
        assert (o.question, o.resolve_by, o.timing, o.k) == (
            r.question,
            r.resolve_by,
            r.timing,
            r.k,
        )
        assert o.probability == pytest.approx(r.probability, abs=1e-12)
        assert o.prior == pytest.approx(r.prior, abs=1e-12)
    # the same number of scenarios, the same probabilities in the same order, and each one's
    # probability is its own (brute force): equally probable ones may come in another order
    brute = brute_force(tree, [], given=given, as_of=AS_OF)
    assert len(got.top_scenarios) == len(ref.top_scenarios)
    lookup = {tuple(s.values()): p for s, p in brute.scenarios}
    for a, b in zip(got.top_scenarios, ref.top_scenarios, strict=True):
        assert a.probability == pytest.approx(b.probability, abs=1e-12)
        assert list(a.states) == list(tree.nodes)
        assert lookup[tuple(a.states.values())] == pytest.approx(a.probability, abs=1e-12)
    for name, states in brute.nodes.items():
        for s, p in states.items():
            assert got.nodes[name][s] == pytest.approx(p, abs=1e-12)
    for oid, p in brute.outcomes.items():
        assert got.outcomes[oid].probability == pytest.approx(p, abs=1e-12)


def test_a_result_holds_every_field_its_constructor_sets() -> None:
    tree = random_tree(3, 4)
    result = ExactModel(tree).forecast([], given={"n1": "s0"}, as_of=AS_OF)
    again = dataclasses.replace(result)  # built by ForecastResult.__init__, defaults and all
    assert again == result
    assert vars(again).keys() == vars(result).keys()
    assert result.to_dict()["given"] == {"n1": "s0"}


def test_the_same_question_gives_the_same_bits_and_the_prior_is_kept() -> None:
    tree = random_tree(11, 6)
    model = Model(tree)
    given = {"n2": "s1", "n4": "s0"}
    first = model.forecast(given=given, as_of=AS_OF)
    assert model.forecast(given=given, as_of=AS_OF) == first
    assert Model(tree).forecast(given=given, as_of=AS_OF) == first
    assert model.forecast(as_of=AS_OF).nodes is model.forecast(as_of=AS_OF).nodes
    assert model.forecast(given=given, as_of=AS_OF, top=0).top_scenarios == ()


def _certain_tree() -> Tree:
    return tree_from_dict(
        {
            "id": "certain",
            "nodes": {
                "a": {"states": ["x", "y"], "probabilities": {"x": 1.0, "y": 0.0}},
                "b": {
                    "states": ["u", "v"],
                    "parents": ["a"],
                    "probabilities": [
                        {"when": {"a": "x"}, "then": {"u": 0.3, "v": 0.7}},
                        {"when": {"a": "y"}, "then": {"u": 0.5, "v": 0.5}},
                    ],
                },
            },
            "indicators": {},
            "outcomes": {},
        }
    )


@pytest.mark.parametrize(
    "given",
    [
        {"a": "y"},  # zero probability
        {"a": "x", " a": "y"},  # two states of one node at once
        {"a": "z"},  # no such state
        {"c": "x"},  # no such node
        {"a@2026-06": "x"},  # a date on a static node
    ],
)
def test_errors_are_those_of_the_junction_tree(
    given: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = _certain_tree()
    model = ExactModel(tree)
    assert model.small() is not None
    with pytest.raises((EvidenceConflictError, QueryError)) as ours:
        model.forecast([], given=given, as_of=AS_OF)
    with pytest.raises((EvidenceConflictError, QueryError)) as theirs:
        _junction(tree, monkeypatch, given=given)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


def test_a_name_with_spaces_is_read_as_the_junction_tree_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree = _certain_tree()
    got = ExactModel(tree).forecast([], given={" b ": "v"}, as_of=AS_OF)
    ref = _junction(tree, monkeypatch, given={" b ": "v"})
    assert got.given == ref.given == {" b ": "v"}
    _close(got.nodes, ref.nodes)
    assert got.nodes["a"] == {"x": 1.0, "y": 0.0}


def test_only_small_static_trees_without_tiny_products_use_the_joint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert small.small_joint(random_dynamic_tree(1, 3)) is None
    tree = random_tree(5, 6)
    size = int(np.prod([n.card for n in tree.nodes.values()]))
    whole = small.small_joint(tree)
    assert whole is not None and whole.joint is not None
    assert whole.joint.shape == tuple(n.card for n in tree.nodes.values())
    # too large as a whole: a forecast given nothing takes the junction tree, one given a node
    # the tables sliced at its state
    monkeypatch.setattr(small, "JOINT_SIZE", size - 1)
    part = small.small_joint(tree)
    assert part is not None and part.joint is None
    assert not part.fits({})
    assert part.fits({"n0": "s0"})
    monkeypatch.setattr(small, "JOINT_SIZE", size // tree.nodes["n0"].card - 1)
    assert not small.small_joint(tree).fits({"n0": "s0"})  # type: ignore[union-attr]
    monkeypatch.undo()
    # products of entries near 1e-150 would underflow: the junction tree answers (in logs)
    tiny = {
        "id": "tiny",
        "nodes": {
            "a": {"states": ["x", "y"], "probabilities": {"x": 1e-150, "y": 1 - 1e-150}},
            "b": {
                "states": ["u", "v"],
                "parents": ["a"],
                "probabilities": [
                    {"when": {"a": "x"}, "then": {"u": 1e-150, "v": 1 - 1e-150}},
                    {"when": {"a": "y"}, "then": {"u": 0.5, "v": 0.5}},
                ],
            },
        },
        "indicators": {},
        "outcomes": {},
    }
    tree = tree_from_dict(tiny)
    assert small.small_joint(tree) is None
    result = ExactModel(tree).forecast([], given={"b": "u"}, as_of=AS_OF)
    assert result.nodes["a"]["x"] == pytest.approx(2e-300, rel=1e-9)


def test_readings_and_findings_go_through_the_junction_tree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree = random_tree(7, 4)
    calls: list[object] = []
    real = small.SmallJoint.forecast

    def spy(self: small.SmallJoint, *args: Any, **kwargs: Any) -> ForecastResult:
        calls.append(args)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(small.SmallJoint, "forecast", spy)
    model = ExactModel(tree)
    model.forecast([], given={"n0": "s0"}, as_of=AS_OF)
    assert len(calls) == 1
    model.forecast([], virtual={"n0": {"s0": 2.0, "s1": 1.0}}, as_of=AS_OF)
    model.forecast([], soft={"n0": {"s0": 0.5, "s1": 0.5}}, as_of=AS_OF)
    assert len(calls) == 1


def test_equally_probable_scenarios_come_in_the_order_of_the_states() -> None:
    # four scenarios of probability 0.25 each: the first three, in the order of the states
    tree = tree_from_dict(
        {
            "id": "even",
            "nodes": {
                "a": {"states": ["x", "y"], "probabilities": {"x": 0.5, "y": 0.5}},
                "b": {"states": ["u", "v"], "probabilities": {"u": 0.5, "v": 0.5}},
            },
            "indicators": {},
            "outcomes": {},
        }
    )
    result = ExactModel(tree).forecast([], as_of=AS_OF, top=3)
    assert [dict(s.states) for s in result.top_scenarios] == [
        {"a": "x", "b": "u"},
        {"a": "x", "b": "v"},
        {"a": "y", "b": "u"},
    ]
    assert [s.probability for s in result.top_scenarios] == [0.25, 0.25, 0.25]
