"""Simulation: data generated as the engine says evidence arises give calibrated forecasts.

If scenarios are drawn from a tree's prior and readings from its indicators (genuine with the
source's reliability, uninformative otherwise), then among all forecasts that give an outcome
probability p, the outcome is true a fraction p of the time, and the average posterior equals
the prior. A wrong likelihood, a wrong reliability mixture or a wrong update breaks this.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from scenariocast.engines.exact import ExactModel
from scenariocast.testing import random_tree, simulate
from tests.conftest import FAR_FUTURE


@pytest.mark.parametrize("seed", [3, 17, 29])
def test_forecasts_are_calibrated_on_simulated_data(seed: int) -> None:
    tree = random_tree(seed, 5, n_indicators=6, reliabilities=(1.0, 0.6, 0.3))
    model = ExactModel(tree)
    rng = np.random.default_rng(seed)
    probs, truths, priors, spiegelhalter = [], [], [], []
    for _ in range(1200):
        truth, readings = simulate(tree, 6, rng)
        result = model.forecast(readings, as_of=FAR_FUTURE)
        term = 0.0
        for oid, out in result.outcomes.items():
            node = tree.outcomes[oid].node
            y = tree.nodes[node].states[truth[node]] in tree.outcomes[oid].states
            probs.append(out.probability)
            priors.append(out.prior)
            truths.append(y)
            term += (y - out.probability) * (1 - 2 * out.probability)
        spiegelhalter.append(term)
    p = np.array(probs)
    y = np.array(truths, dtype=float)
    n = len(p)
    # the average forecast equals the frequency of the outcome, and the prior (martingale)
    se = math.sqrt(float(np.mean(p * (1 - p))) / n) + 1e-3
    assert abs(p.mean() - y.mean()) < 4 * se
    assert abs(p.mean() - np.mean(priors)) < 4 * math.sqrt(float(y.var()) / n) + 1e-3
    # Spiegelhalter's calibration statistic, with its spread estimated across simulations (the
    # outcomes of one simulation share a scenario): over- or under-confidence moves it from 0
    s = np.array(spiegelhalter)
    z = float(s.mean() / (s.std(ddof=1) / math.sqrt(len(s))))
    assert abs(z) < 3.0, z
    # calibration within bins of forecast probability
    edges = np.linspace(0, 1, 6)
    for lo, hi in itertools.pairwise(edges):
        in_bin = (p >= lo) & (p < hi) if hi < 1 else (p >= lo)
        k = int(in_bin.sum())
        if k < 40:
            continue
        mean_p = float(p[in_bin].mean())
        tol = 4 * math.sqrt(max(mean_p * (1 - mean_p), 0.01) / k)
        assert abs(float(y[in_bin].mean()) - mean_p) < tol, (lo, hi, k)
    # and the evidence is informative: forecasts beat the prior on the Brier score
    assert np.mean((p - y) ** 2) < np.mean((np.array(priors) - y) ** 2)


def test_simulated_readings_are_wrongly_calibrated_if_reliability_is_ignored() -> None:
    """The check above has power: treating unreliable readings as fully reliable breaks it."""
    tree = random_tree(5, 4, n_indicators=5, reliabilities=(0.2,))
    honest = ExactModel(tree)
    spec = tree.spec.model_dump(mode="json", exclude_unset=True)
    spec["sources"] = {"src0": {"reliability": 1.0}}
    from scenariocast.testing import tree_from_dict

    overconfident = ExactModel(tree_from_dict(spec))
    rng = np.random.default_rng(5)
    scores = {"honest": 0.0, "overconfident": 0.0}
    for _ in range(400):
        truth, readings = simulate(tree, 8, rng)
        for label, model in (("honest", honest), ("overconfident", overconfident)):
            result = model.forecast(readings, as_of=FAR_FUTURE)
            for oid, out in result.outcomes.items():
                node = tree.outcomes[oid].node
                y = tree.nodes[node].states[truth[node]] in tree.outcomes[oid].states
                scores[label] += (out.probability - y) ** 2
    assert scores["honest"] < scores["overconfident"]
