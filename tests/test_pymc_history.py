"""Learning from history with the PyMC engine: an indicator's per-state means held with
uncertainty are refined by the readings of past years, with the states summed out.

Readings are simulated from known per-state means that differ from the ones written in the
tree; the posterior of each mean must move to the truth and narrow. Held (almost) fixed, the
same uncertain parameters must give the exact engine's probabilities, so that the path through
which uncertain readings enter the model is the exact engine's likelihood.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from scenariocast.engines.exact import forecast_exact
from scenariocast.evidence.readings import ObservedDate, Reading
from scenariocast.spec.load import parse_tree

pymc_engine = pytest.importorskip("scenariocast.engines.pymc")

AS_OF = dt.date(2026, 3, 31)
PRIOR_SD = 0.5
STATED = {"calm": 0.0, "high": 1.0}  # the means written in the tree
TRUE = {"calm": 0.5, "high": 1.6}  # the means the past readings are drawn from
SIGMA = 0.3

HISTORY_TREE = """
id: history
strength: {strength}
horizon: {{start: 2026-01-01, end: 2026-12-31, step: quarter}}
sources:
  survey:
    reliability: 0.95
nodes:
  shock:
    states: [calm, high]
    probabilities: {{calm: 0.6, high: 0.4}}
    dynamic:
      persistence: 0.9
outcomes:
  high_in_2026:
    question: Is the shock high in any quarter of 2026?
    node: shock
    states: [high]
    timing: ever
    resolve_by: 2026-12-31
    resolution: By construction.
indicators:
  price:
    kind: normal
    depends_on: [shock]
    params:
      - when: {{shock: calm}}
        then: {{mu: {{mean: {calm}, sd: {sd}}}, sigma: {sigma}}}
      - when: {{shock: high}}
        then: {{mu: {{mean: {high}, sd: {sd}}}, sigma: {sigma}}}
"""


def _tree(*, sd: float, strength: float = 20) -> Any:
    text = HISTORY_TREE.format(strength=strength, sd=sd, sigma=SIGMA, **STATED)
    return parse_tree(text, file="history.yaml")


def _history(seed: int) -> list[Reading]:
    """A year and a half of quarterly surveys (2024-2025): calm for three quarters, high for
    three, four readings a quarter from four cities on separate dates, drawn from the true
    means."""
    rng = np.random.default_rng(seed)
    readings = []
    for k in range(6):
        quarter = 2 + k  # from the third quarter of 2024 to the fourth of 2025
        year, month = 2024 + quarter // 4, 1 + 3 * (quarter % 4)
        mu = TRUE["calm"] if k < 3 else TRUE["high"]
        for day in (3, 10, 17, 24):
            value = rng.normal(mu, SIGMA)
            readings.append(
                Reading(
                    len(readings) + 1,
                    "price",
                    f"{value:.4f}",
                    ObservedDate.parse(f"{year}-{month + 1:02d}-{day:02d}"),
                    "survey",
                    location=f"city {day}",  # the latest reading of each city in a step counts
                )
            )
    return readings


@pytest.mark.slow
def test_past_readings_move_each_states_mean_to_the_truth_and_narrow_it() -> None:
    tree, readings = _tree(sd=PRIOR_SD), _history(7)
    run = pymc_engine.forecast_pymc(tree, readings, as_of=AS_OF, draws=200, seed=3)
    post = run.datatree["posterior"]
    values = np.array([float(r.value) for r in readings])
    for row, state in enumerate(("calm", "high")):
        mu = np.asarray(post[f"mu:price[{row}]"]).ravel()
        seen = values[:12].mean() if state == "calm" else values[12:].mean()
        # 12 readings of each state at sigma 0.3 against a prior sd of 0.5: the posterior mean
        # is their mean, shrunk towards the stated one by about 3% of the distance
        assert abs(mu.mean() - seen) < 0.1, (state, mu.mean(), seen)
        assert abs(mu.mean() - STATED[state]) > 0.3, (state, mu.mean())  # it moved
        # and to the truth, within three standard errors of the mean of 12 readings
        assert abs(mu.mean() - TRUE[state]) < 3 * SIGMA / np.sqrt(12), (state, mu.mean())
        assert mu.std() < PRIOR_SD / 3, (state, mu.std())  # and narrowed
    # the history says the shock entered 2026 high: the outcome is near certain either way,
    # and its interval contains its mean
    out = run.result.outcomes["high_in_2026"]
    assert out.probability > 0.9
    assert out.interval is not None and out.interval[0] <= out.probability <= out.interval[1]


@pytest.mark.slow
def test_means_held_fixed_give_the_exact_engines_probabilities() -> None:
    """The uncertain path (readings as expressions of the parameters, over the unrolled past
    steps) with every number held very firmly agrees with the exact engine, which reads the
    means."""
    tree, readings = _tree(sd=1e-3, strength=1e6), _history(11)
    exact = forecast_exact(tree, readings, as_of=AS_OF)
    run = pymc_engine.forecast_pymc(tree, readings, as_of=AS_OF, draws=200, seed=5)
    assert run.result.outcomes["high_in_2026"].probability == pytest.approx(
        exact.outcomes["high_in_2026"].probability, abs=0.005
    )
    for got, want in zip(run.result.steps["shock"], exact.steps["shock"], strict=True):
        assert got.probabilities["high"] == pytest.approx(want.probabilities["high"], abs=0.005)
    post = run.datatree["posterior"]
    assert np.asarray(post["mu:price[1]"]).std() < 0.01
