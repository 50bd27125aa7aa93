"""Simulation: data generated as the engine says evidence arises give calibrated forecasts.

If scenarios are drawn from a tree's prior and readings from its indicators (genuine with the
source's reliability, uninformative otherwise), then among all forecasts that give an outcome
probability p, the outcome is true a fraction p of the time, and the average posterior equals
the prior. A wrong likelihood, a wrong reliability mixture or a wrong update breaks this.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from scenariocast.engines.exact import ExactModel
from scenariocast.evidence.readings import ObservedDate, Reading
from scenariocast.spec.tree import Tree
from scenariocast.testing import random_tree, sample_path, simulate, tree_from_dict
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


# ---------------------------------------------------------------------------------------------
# a world that changes month by month, surveyed in reports whose city readings share a shock

MONTHS = 6
SURVEY_MU = {"calm": 0.0, "tight": 0.5, "crisis": 1.0}
SURVEY_SIGMA, SURVEY_RHO, SURVEY_RELIABILITY = 0.35, 0.6, 0.85
SHOCK_STATES = list(SURVEY_MU)


def _survey_tree(*, dynamic: bool) -> Tree:
    """The world's tree (dynamic, correlated reports) or the old reading of it (a static node
    for the whole period, every city reading counted as independent)."""
    params = [
        {"when": {"shock": s}, "then": {"mu": mu, "sigma": SURVEY_SIGMA}}
        for s, mu in SURVEY_MU.items()
    ]
    shock: dict[str, Any] = {
        "states": SHOCK_STATES,
        "parents": ["imports"],
        "probabilities": [
            {"when": {"imports": "normal"}, "then": {"calm": 0.7, "tight": 0.22, "crisis": 0.08}},
            {"when": {"imports": "low"}, "then": {"calm": 0.4, "tight": 0.4, "crisis": 0.2}},
        ],
    }
    rice: dict[str, Any] = {"kind": "normal", "depends_on": ["shock"], "params": params}
    resolve = {"resolve_by": "2026-06-30", "resolution": "By construction."}
    outcomes: dict[str, Any] = {
        "crisis_ever": {"question": "q", "node": "shock", "states": ["crisis"], **resolve},
        "crisis_twice": {"question": "q", "node": "shock", "states": ["crisis"], **resolve},
        "strained_at_end": {"question": "q", "node": "shock", "states": ["tight", "crisis"]}
        | resolve,
        "imports_low": {"question": "q", "node": "imports", "states": ["low"], **resolve},
    }
    spec: dict[str, Any] = {
        "sources": {"survey": {"reliability": SURVEY_RELIABILITY}},
        "nodes": {
            "imports": {"states": ["normal", "low"], "probabilities": {"normal": 0.6, "low": 0.4}},
            "shock": shock,
        },
        "indicators": {"rice": rice},
        "outcomes": outcomes,
    }
    if dynamic:
        spec["horizon"] = {"start": "2026-01-01", "end": "2026-06-30"}
        shock["dynamic"] = {"persistence": {"calm": 0.85, "tight": 0.75, "crisis": 0.6}}
        rice["within_report_correlation"] = SURVEY_RHO
        rice["combine"] = {"rule": "all"}
        outcomes["crisis_ever"]["timing"] = "ever"
        outcomes["crisis_twice"] |= {"timing": "at_least", "k": 2}
        outcomes["strained_at_end"]["timing"] = "end"
    else:
        rice["within_report_correlation"] = 0.0
    return tree_from_dict(spec)


def _survey_world(tree: Tree, rng: np.random.Generator) -> tuple[dict[str, bool], list[Reading]]:
    """A path drawn from the tree, and one survey a month of three cities sharing a shock.

    A survey is genuine with the source's reliability; otherwise it is made up as a whole, from
    a month of another world drawn from the prior. City readings share the survey's error:
    ``x = mu + sigma * (sqrt(rho) a + sqrt(1 - rho) b_city)``.
    """
    path = sample_path(tree, rng)
    readings: list[Reading] = []
    for t in range(MONTHS):
        genuine = rng.random() < SURVEY_RELIABILITY
        state = path[("shock", t)] if genuine else sample_path(tree, rng)[("shock", t)]
        common = rng.normal()
        day = dt.date(2026, t + 1, 10 + int(rng.integers(0, 10)))
        for city in range(3):
            own = rng.normal()
            x = SURVEY_MU[SHOCK_STATES[state]] + SURVEY_SIGMA * (
                math.sqrt(SURVEY_RHO) * common + math.sqrt(1 - SURVEY_RHO) * own
            )
            readings.append(
                Reading(
                    id=len(readings) + 1,
                    indicator="rice",
                    value=repr(x),
                    observed=ObservedDate.parse(day.isoformat()),
                    source="survey",
                    location=f"city{city}",
                )
            )
    crisis_months = sum(path[("shock", t)] == 2 for t in range(MONTHS))
    truth = {
        "crisis_ever": crisis_months >= 1,
        "crisis_twice": crisis_months >= 2,
        "strained_at_end": path[("shock", MONTHS - 1)] >= 1,
        "imports_low": path[("imports", None)] == 1,
    }
    return truth, readings


def _each_its_own_report(readings: list[Reading]) -> list[Reading]:
    return [replace(r, report=f"reading-{r.id}") for r in readings]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_forecasts_stay_calibrated_in_a_world_that_changes(seed: int) -> None:
    """Forecasts made at the end of every month of a world whose state changes mid-horizon and
    whose surveys share a shock are calibrated; the old reading of the same data (one state for
    the whole period, every city reading independent) is not: the check has power."""
    world = _survey_tree(dynamic=True)
    models = {"dynamic": ExactModel(world), "old": ExactModel(_survey_tree(dynamic=False))}
    rng = np.random.default_rng(seed)
    terms: dict[str, list[float]] = {k: [] for k in models}
    brier = dict.fromkeys(models, 0.0)
    brier_prior = dict.fromkeys(models, 0.0)
    for _ in range(300):
        truth, readings = _survey_world(world, rng)
        for name, model in models.items():
            seen = readings if name == "dynamic" else _each_its_own_report(readings)
            term = 0.0
            for month in range(1, MONTHS + 1):
                result = model.forecast(seen, as_of=dt.date(2026, month, 28), top=0)
                for oid, out in result.outcomes.items():
                    y, p = float(truth[oid]), out.probability
                    term += (y - p) * (1 - 2 * p)
                    brier[name] += (p - y) ** 2
                    brier_prior[name] += (out.prior - y) ** 2
            terms[name].append(term)
    z = {
        name: float(np.mean(t) / (np.std(t, ddof=1) / math.sqrt(len(t))))
        for name, t in terms.items()
    }
    assert abs(z["dynamic"]) < 3.0, z
    assert brier["dynamic"] < brier_prior["dynamic"]
    # the old treatment is overconfident and misses what happened earlier in the horizon
    assert z["old"] > 3.0, z
    assert brier["old"] > brier["dynamic"]
