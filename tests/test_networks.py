"""The exact engine on 12 published networks (bnlearn), against pgmpy's variable elimination.

The reference marginals (tests/data/networks/references.json) were computed once by pgmpy from
the BIF files with its own reader and inference, by scripts/network_references.py; pgmpy is not
needed to run this test. Every marginal of every unobserved variable must agree to 1e-9, with no
evidence and with 3 and 4 observed variables.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from scenariocast.engines.exact import ExactModel
from scenariocast.interop import Network, read_network
from scenariocast.interop.scenario import to_yaml
from scenariocast.spec.load import parse_tree
from scenariocast.spec.tree import Tree

NETWORKS = Path(__file__).resolve().parent / "data" / "networks"
REFERENCES = json.loads((NETWORKS / "references.json").read_text(encoding="utf-8"))["networks"]
TOLERANCE = 1e-9


@cache
def _network(name: str) -> tuple[Network, Tree]:
    net = read_network(NETWORKS / f"{name}.bif")
    return net, parse_tree(to_yaml(net, tree_id=name), file=f"{name}.yaml")


def _ids(net: Network) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """BIF name -> node id, and per BIF name, BIF state name -> state id."""
    nodes: dict[str, str] = {}
    states: dict[str, dict[str, str]] = {}
    for var in net.variables.values():
        name = var.label or var.id
        nodes[name] = var.id
        states[name] = dict(zip(var.shown_states(), var.states, strict=True))
    return nodes, states


def test_references_cover_the_twelve_networks() -> None:
    assert sorted(REFERENCES) == sorted(p.stem for p in NETWORKS.glob("*.bif"))
    assert len(REFERENCES) == 12
    for cases in REFERENCES.values():
        assert [len(c["evidence"]) for c in cases] == [0, 3, 4]


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_every_marginal_agrees_with_pgmpy(name: str) -> None:
    net, tree = _network(name)
    nodes, states = _ids(net)
    model = ExactModel(tree)
    for case in REFERENCES[name]:
        given = {nodes[v]: states[v][s] for v, s in case["evidence"].items()}
        result = model.forecast([], given=given, top=0)
        expected = case["marginals"]
        assert len(expected) + len(given) == len(net.variables)
        worst = 0.0
        for var, probs in expected.items():
            got = result.nodes[nodes[var]]
            for state, p in probs.items():
                worst = max(worst, abs(got[states[var][state]] - p))
        assert worst < TOLERANCE, (name, case["evidence"], worst)
        for v, s in given.items():  # an observed node is certain in its state
            assert result.nodes[v][s] == pytest.approx(1.0, abs=1e-12)


def test_a_prepared_model_gives_what_forecast_gives() -> None:
    from scenariocast import Model, forecast

    net, tree = _network("alarm")
    nodes, states = _ids(net)
    model = Model(tree)
    for case in REFERENCES["alarm"]:
        given = {nodes[v]: states[v][s] for v, s in case["evidence"].items()}
        once = forecast(tree, given=given, record=False)
        again = model.forecast(given=given)
        assert again.nodes == once.nodes
        assert again.top_scenarios == once.top_scenarios
        assert model.forecast(given=given, top=0).top_scenarios == ()
