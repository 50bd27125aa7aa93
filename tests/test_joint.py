"""Joint probabilities of outcomes with any few variables, and the tables behind them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from scenariocast.analysis.joint import OutcomeJoints
from scenariocast.analysis.quadrature import sinh_sinh, t_from_normal_score, t_scores
from scenariocast.engines.exact import ExactModel
from scenariocast.evidence.select import select_evidence
from scenariocast.evidence.special import t_normal_scores
from scenariocast.testing import brute_force, random_dynamic_tree, random_readings, random_tree

FAR = dt.date(2100, 1, 1)


@pytest.mark.parametrize("seed", range(6))
def test_outcome_events_and_joints_agree_with_the_forecast_and_brute_force(seed: int) -> None:
    tree = (
        random_dynamic_tree(seed, 3, n_steps=3, max_states=2) if seed % 2 else random_tree(seed, 5)
    )
    readings = random_readings(tree, 8, seed)
    model = ExactModel(tree)
    result = model.forecast(readings, as_of=FAR)
    query = model.query(select_evidence(tree, readings, FAR))
    joints = OutcomeJoints(model, query)
    bf = brute_force(tree, readings)
    net = query.network
    for oid in tree.outcomes:
        assert joints.probability(oid) == pytest.approx(result.outcomes[oid].probability, abs=1e-12)
        assert joints.probability(oid) == pytest.approx(bf.outcomes[oid], abs=1e-9)
        for name, node in tree.nodes.items():
            if node.kind == "calendar":
                continue
            step = 0 if node.kind == "dynamic" else None
            var = (net.var_of[net.at(name, step)],)
            both = joints.outcome_joint(oid, var)
            alone = joints.joint(var)
            assert np.all(both <= alone + 1e-12)
            assert both.sum() == pytest.approx(joints.probability(oid), abs=1e-12)


def test_the_sinh_sinh_rule_integrates_a_normal_and_a_heavy_tail() -> None:
    u, w = sinh_sinh(6)
    normal = np.exp(-0.5 * u * u) / np.sqrt(2 * np.pi)
    assert float(w @ normal) == pytest.approx(1.0, abs=1e-12)
    assert float(w @ (u * u * normal)) == pytest.approx(1.0, abs=1e-12)
    cauchy = 1.0 / (np.pi * (1.0 + u * u))
    assert float(w @ cauchy) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("nu", [0.8, 2.0, 4.0, 30.0])
def test_student_t_normal_scores_by_table_match_the_exact_function(nu: float) -> None:
    rng = np.random.default_rng(int(nu * 10))
    z = rng.standard_t(max(nu, 1.0), 5000) * rng.choice([0.01, 1.0, 100.0, 1e5], 5000)
    table = t_scores(nu)
    exact = t_normal_scores(z, np.full(z.shape, nu))
    np.testing.assert_allclose(table.score(z), exact, atol=1e-9)
    g = rng.normal(0, 3, 5000)
    back = table.value(g)
    np.testing.assert_allclose(back, t_from_normal_score(g, np.full(g.shape, nu)), rtol=1e-9)
    np.testing.assert_allclose(t_normal_scores(back, np.full(g.shape, nu)), g, atol=1e-9)
