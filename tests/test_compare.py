"""Comparing trees: exact Bayes factors, per-report scores, which readings count, units,
the synthetic check, structure, reproducibility."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scenariocast.analysis.compare import (
    ComparisonError,
    common_evidence,
    compare,
    log_marginal_likelihood,
    parse_weights,
    posterior_weights,
    prior_weights,
    structure_differences,
)
from scenariocast.engines.exact import ExactModel
from scenariocast.errors import QueryError
from scenariocast.evidence.readings import ObservedDate, Reading
from scenariocast.spec.load import load_tree
from scenariocast.spec.tree import Tree
from scenariocast.testing import (
    brute_force,
    random_dynamic_tree,
    random_readings,
    random_reports,
    random_tree,
    random_tree_spec,
    simulate,
    tree_from_dict,
)
from tests.conftest import FAR_FUTURE, reading

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "compare"
EXAMPLE = ROOT / "examples" / "example-harvest.yaml"


def _renamed(tree: Tree, new_id: str) -> Tree:
    data = tree.spec.model_dump(mode="json", exclude_defaults=True)
    data["id"] = new_id
    return tree_from_dict(data)


# ---------------------------------------------------------------------------------------------
# the Bayes factor is exact


@pytest.mark.parametrize("seed", range(8))
def test_the_bayes_factor_is_exact_on_small_static_trees(seed: int) -> None:
    a = random_tree(seed, 4, max_states=3)
    b = _renamed(random_tree(seed + 100, 4, max_states=3), "rival")
    readings = random_reports(a, 14, seed, max_size=3)
    c = compare([a, b], readings, as_of=FAR_FUTURE)
    common = list(c.common.readings)
    assert c.n_common == len(readings)  # same indicators, sources and rules: all in common
    for tree in (a, b):
        exact = brute_force(tree, common, as_of=FAR_FUTURE).log_evidence
        assert c.fits[tree.id].log_evidence == pytest.approx(exact, abs=1e-8)
        # the per-report scores, each given the reports before it, add up to it
        scores = [r.scores[tree.id] for r in c.reports]
        assert math.fsum(scores) == pytest.approx(exact, abs=1e-8)
        # and to the one-calibration log marginal likelihood
        one = log_marginal_likelihood(ExactModel(tree), c.common.evidence[tree.id])
        assert one == pytest.approx(exact, abs=1e-8)
    bf = (
        brute_force(a, common, as_of=FAR_FUTURE).log_evidence
        - brute_force(b, common, as_of=FAR_FUTURE).log_evidence
    )
    assert c.log_bayes_factor(a.id, b.id) == pytest.approx(bf, abs=1e-8)
    w = 1.0 / (1.0 + math.exp(-bf))
    assert c.fits[a.id].weight == pytest.approx(w, abs=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_the_bayes_factor_is_exact_on_small_dynamic_trees(seed: int) -> None:
    kw: dict[str, Any] = {"n_dynamic": 1, "n_steps": 3, "max_states": 2, "n_indicators": 3}
    a = random_dynamic_tree(seed, 2, **kw)
    b = _renamed(random_dynamic_tree(seed + 50, 2, **kw), "rival")
    readings = random_readings(a, 8, seed, n_dates=4)
    c = compare([a, b], readings, as_of=FAR_FUTURE)
    for tree in (a, b):
        exact = brute_force(tree, list(c.common.readings), as_of=FAR_FUTURE).log_evidence
        assert c.fits[tree.id].log_evidence == pytest.approx(exact, abs=1e-8)
        assert math.fsum(r.scores[tree.id] for r in c.reports) == pytest.approx(exact, abs=1e-8)


def test_each_report_is_scored_given_the_ones_before_it() -> None:
    a = random_tree(3, 4)
    b = _renamed(random_tree(4, 4), "rival")
    readings = random_reports(a, 12, 3, max_size=3)
    c = compare([a, b], readings, as_of=FAR_FUTURE)
    reports = c.common.reports
    for k in range(1, len(reports) + 1):
        upto = [o.reading for rep in reports[:k] for o in rep.observations]
        before = [o.reading for rep in reports[: k - 1] for o in rep.observations]
        step = (
            brute_force(a, upto, as_of=FAR_FUTURE).log_evidence
            - brute_force(a, before, as_of=FAR_FUTURE).log_evidence
        )
        assert c.reports[k - 1].scores[a.id] == pytest.approx(step, abs=1e-8)


# ---------------------------------------------------------------------------------------------
# which readings count, and in what units


def _one_indicator_tree(tree_id: str, indicator: dict[str, Any]) -> Tree:
    return tree_from_dict(
        {
            "id": tree_id,
            "sources": {"survey": {"reliability": 0.9}},
            "nodes": {
                "shock": {
                    "states": ["calm", "severe"],
                    "probabilities": {"calm": 0.7, "severe": 0.3},
                }
            },
            "outcomes": {
                "severe": {
                    "question": "Severe?",
                    "node": "shock",
                    "states": ["severe"],
                    "resolve_by": "2026-12-31",
                    "resolution": "By construction.",
                }
            },
            "indicators": {"price": indicator},
        }
    )


def _price_rows(kind_params: tuple[dict[str, float], dict[str, float]]) -> list[dict[str, Any]]:
    return [
        {"when": {"shock": "calm"}, "then": kind_params[0]},
        {"when": {"shock": "severe"}, "then": kind_params[1]},
    ]


def _prices(values: list[str], *, location: str | None = None) -> list[Reading]:
    return [
        Reading(
            id=k + 1,
            indicator="price",
            value=v,
            observed=ObservedDate.parse(f"2026-0{k % 9 + 1}-10"),
            source="survey",
            location=location or f"city{k}",
        )
        for k, v in enumerate(values)
    ]


def test_a_lognormal_and_a_normal_of_the_log_are_the_same_model_in_other_units() -> None:
    params = ({"mu": 8.5, "sigma": 0.3}, {"mu": 9.4, "sigma": 0.4})
    a = _one_indicator_tree(
        "lognormal", {"kind": "lognormal", "depends_on": ["shock"], "params": _price_rows(params)}
    )
    b = _one_indicator_tree(
        "normal-of-log",
        {
            "kind": "normal",
            "depends_on": ["shock"],
            "read_as": {"transform": "log"},
            "params": _price_rows(params),
        },
    )
    readings = _prices(["5200", "6100", "9800", "15000", "12000"])
    c = compare([a, b], readings, as_of=FAR_FUTURE)
    assert c.n_common == 5
    # the density of log x is the density of x times x: without the Jacobian they would differ
    raw_b = brute_force(b, readings, as_of=FAR_FUTURE).log_evidence
    assert raw_b - c.fits["normal-of-log"].log_evidence == pytest.approx(
        sum(math.log(float(r.value)) for r in readings)
    )
    assert c.log_bayes_factor("lognormal", "normal-of-log") == pytest.approx(0.0, abs=1e-9)
    for r in c.reports:
        assert r.scores["lognormal"] == pytest.approx(r.scores["normal-of-log"], abs=1e-9)
    (o,) = c.outcomes
    assert o.probability["lognormal"] == pytest.approx(o.probability["normal-of-log"], abs=1e-12)


def test_a_pct_change_reading_is_scored_in_the_units_entered() -> None:
    a = _one_indicator_tree(
        "level",
        {
            "kind": "normal",
            "depends_on": ["shock"],
            "params": _price_rows(({"mu": 100.0, "sigma": 5.0}, {"mu": 130.0, "sigma": 8.0})),
        },
    )
    b = _one_indicator_tree(
        "pct",
        {
            "kind": "normal",
            "depends_on": ["shock"],
            "read_as": {"transform": "pct_change", "baseline": 100.0},
            "params": _price_rows(({"mu": 0.0, "sigma": 5.0}, {"mu": 30.0, "sigma": 8.0})),
        },
    )
    c = compare([a, b], _prices(["104", "98", "131"]), as_of=FAR_FUTURE)
    assert c.log_bayes_factor("level", "pct") == pytest.approx(0.0, abs=1e-9)


def test_readings_only_one_tree_counts_are_listed_and_left_out() -> None:
    rows = _price_rows(({"mu": 5000.0, "sigma": 800.0}, {"mu": 9000.0, "sigma": 1500.0}))
    latest = _one_indicator_tree(
        "latest",
        {
            "kind": "normal",
            "depends_on": ["shock"],
            "params": rows,
            "combine": {"rule": "latest", "per": ["source"]},
        },
    )
    every = _one_indicator_tree(
        "every",
        {"kind": "normal", "depends_on": ["shock"], "params": rows, "combine": {"rule": "all"}},
    )
    readings = _prices(["5200", "6100", "9800"], location="Pyongyang")
    c = compare([latest, every], readings, as_of=FAR_FUTURE)
    assert [r.id for r in c.common.readings] == [3]
    assert [x.reading.id for x in c.common.left_out] == [1, 2]
    for x in c.common.left_out:
        assert x.counted_by == ("every",)
        assert x.reasons["latest"].startswith("superseded by #3")
    assert c.counted == {"latest": 1, "every": 3}
    # the Bayes factor is that of the common reading alone
    for tree in (latest, every):
        exact = brute_force(tree, [readings[2]], as_of=FAR_FUTURE).log_evidence
        assert c.fits[tree.id].log_evidence == pytest.approx(exact, abs=1e-9)
    # each tree's own forecast still counts all it reads
    (o,) = c.outcomes
    assert o.probability["every"] == pytest.approx(
        brute_force(every, readings, as_of=FAR_FUTURE).outcomes["severe"]
    )
    assert o.common["every"] == pytest.approx(
        brute_force(every, [readings[2]], as_of=FAR_FUTURE).outcomes["severe"]
    )


def test_a_reading_read_as_a_density_in_one_tree_and_a_count_in_another_is_left_out() -> None:
    dense = _one_indicator_tree(
        "dense",
        {
            "kind": "normal",
            "depends_on": ["shock"],
            "params": _price_rows(({"mu": 1.0, "sigma": 1.0}, {"mu": 3.0, "sigma": 1.0})),
            "combine": {"rule": "all"},
        },
    )
    counted = _one_indicator_tree(
        "counted",
        {
            "kind": "count",
            "depends_on": ["shock"],
            "params": _price_rows(({"rate": 1.0}, {"rate": 3.0})),
        },
    )
    c = compare([dense, counted], _prices(["2", "4"]), as_of=FAR_FUTURE)
    assert c.n_common == 0
    assert {x.reading.id for x in c.common.left_out} == {1, 2}
    assert "not comparable" in c.common.left_out[0].reasons["all"]
    assert c.fits["dense"].weight == c.fits["counted"].weight == 0.5


def test_the_common_readings_are_a_fixed_point() -> None:
    # a window in one tree, linked readings, repeats: after the fixed point, each tree's own
    # selection from the common readings is exactly the common readings
    tree = load_tree(EXAMPLE)
    rival = load_tree(FIXTURES / "harvest-imports-first.yaml")
    readings = [
        reading(1, "rice_price", "5200", "2026-01-10", "market_survey", "A"),
        reading(2, "rice_price", "5200", "2026-01-10", "market_survey", "A"),  # repeat
        reading(3, "rice_price", "6400", "2026-03-10", "market_survey", "A"),
        reading(4, "distribution_report", "yes", "2026-03", "wire"),
        reading(5, "distribution_report", "yes", "2026-03", "rumour", links=4),
        reading(6, "crackdowns", "2", "2026-02", "wire"),
    ]
    common = common_evidence([tree, rival], readings, dt.date(2026, 4, 30))
    ids = {r.id for r in common.readings}
    for ev in common.evidence.values():
        assert {o.reading.id for o in ev.observations} == ids
    assert len({tuple(rep.ids for rep in ev.reports) for ev in common.evidence.values()}) == 1


# ---------------------------------------------------------------------------------------------
# the synthetic check: the evidence favours the tree the world came from

N_WORLDS = 40


def _wrong_numbers(seed: int) -> Tree:
    """The tree of ``random_tree_spec(seed)`` with every node's table drawn again."""
    spec = random_tree_spec(seed, 5)
    rng = np.random.default_rng(seed)

    def fresh(states: list[str]) -> dict[str, float]:
        p = rng.dirichlet([1.0] * len(states))
        return {s: float(x) for s, x in zip(states, p, strict=True)}

    for node in spec["nodes"].values():
        if isinstance(node["probabilities"], dict):
            node["probabilities"] = fresh(node["states"])
        else:
            for row in node["probabilities"]:
                row["then"] = fresh(node["states"])
    spec["id"] = "wrong-numbers"
    return tree_from_dict(spec)


def _favoured_rate(make_wrong: Any, n_readings: int) -> float:
    wins = 0
    for seed in range(N_WORLDS):
        truth = random_tree(seed, 5)
        wrong = make_wrong(seed)
        _, readings = simulate(truth, n_readings, np.random.default_rng(1000 + seed))
        c = compare([truth, wrong], readings, as_of=FAR_FUTURE)
        wins += c.log_bayes_factor(truth.id, wrong.id) > 0
    return wins / N_WORLDS


def test_the_comparison_favours_the_tree_the_world_came_from() -> None:
    """Worlds simulated from tree A, compared with a wrong tree B: A wins in most worlds.

    Two kinds of wrong tree: another random structure (the same node, indicator and source
    names), and A's own structure and indicators with every probability table drawn again.
    With 60 readings (each genuine with its source's reliability, 1, 0.8 or 0.5) in 40 worlds
    A wins 97.5% against another tree and 90% against wrong numbers (with 30 readings: 87.5%
    and 85%; with 10: 82.5% and 77.5%).
    """
    other = _favoured_rate(lambda s: _renamed(random_tree(s + 500, 5), "other"), 60)
    numbers = _favoured_rate(_wrong_numbers, 60)
    assert other >= 0.95
    assert numbers >= 0.85


# ---------------------------------------------------------------------------------------------
# outcomes, weights, structure, errors, reproducibility


def test_weights_and_the_model_average() -> None:
    a, b = load_tree(EXAMPLE), load_tree(FIXTURES / "harvest-imports-first.yaml")
    readings = [
        reading(1, "rice_price", "7400", "2026-03-10", "market_survey", "A"),
        reading(2, "distribution_report", "yes", "2026-03", "wire"),
    ]
    day = dt.date(2026, 4, 30)
    equal = compare([a, b], readings, as_of=day)
    tilted = compare([a, b], readings, as_of=day, weights=[3, 1])
    bf = equal.log_bayes_factor(a.id, b.id)
    assert tilted.fits[a.id].weight == pytest.approx(1 / (1 + math.exp(-bf) / 3))
    (o,) = tilted.outcomes
    assert o.average == pytest.approx(
        sum(tilted.fits[t].weight * o.probability[t] for t in (a.id, b.id))
    )
    assert posterior_weights({"x": 0.0, "y": math.log(3)}, {"x": 0.5, "y": 0.5}) == pytest.approx(
        {"x": 0.25, "y": 0.75}
    )


def test_weights_are_checked() -> None:
    a, b = load_tree(EXAMPLE), load_tree(FIXTURES / "harvest-imports-first.yaml")
    assert parse_weights("2,1") == [2.0, 1.0]
    assert parse_weights("example-harvest=2, harvest-imports-first=1") == {
        "example-harvest": 2.0,
        "harvest-imports-first": 1.0,
    }
    assert prior_weights([a, b], {"example-harvest": 2, "harvest-imports-first": 2}) == {
        "example-harvest": 0.5,
        "harvest-imports-first": 0.5,
    }
    for bad, message in (
        ([1.0], "gives 1 weight for 2 trees"),
        ([-1.0, 1.0], "must be a number >= 0"),
        ([0.0, 0.0], "all zero"),
        ([math.nan, 1.0], "must be a number >= 0"),
        ({"example-harvest": 1.0}, "no weight for tree 'harvest-imports-first'"),
    ):
        with pytest.raises(QueryError, match=message):
            prior_weights([a, b], bad)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="not a mix"):
        parse_weights("1,a=2")


def test_trees_that_share_no_outcome_or_an_id_cannot_be_compared() -> None:
    a = load_tree(EXAMPLE)
    with pytest.raises(ComparisonError, match="the trees share no outcome"):
        compare([a, load_tree(FIXTURES / "harvest-other-questions.yaml")], [])
    with pytest.raises(ComparisonError, match="two trees have the id 'example-harvest'"):
        compare([a, a], [])
    with pytest.raises(ComparisonError, match="at least two trees"):
        compare([a], [])


def test_no_common_readings_leaves_the_prior_weights() -> None:
    a, b = load_tree(EXAMPLE), load_tree(FIXTURES / "harvest-imports-first.yaml")
    c = compare([a, b], [], as_of=dt.date(2026, 4, 30), weights=[1, 3])
    assert c.n_common == 0 and c.reports == ()
    assert {t: f.weight for t, f in c.fits.items()} == pytest.approx(
        {"example-harvest": 0.25, "harvest-imports-first": 0.75}
    )


def test_structure_differences_name_what_differs() -> None:
    a, b = load_tree(EXAMPLE), load_tree(FIXTURES / "harvest-imports-first.yaml")
    diff = structure_differences(a, b)
    found = {(d.what, d.name) for d in diff.differences}
    assert found == {("probabilities", "imports"), ("probabilities", "harvest")}
    sizes = {d.name: d.size for d in diff.differences}
    assert sizes["imports"] == pytest.approx(0.15)
    assert sizes["harvest"] == pytest.approx(0.3)
    other = structure_differences(a, load_tree(FIXTURES / "harvest-other-questions.yaml"))
    assert ("outcome", "rationing_returns") in {(d.what, d.name) for d in other.differences}
    assert ("outcome", "harvest_short") in {(d.what, d.name) for d in other.differences}


def test_the_same_readings_give_the_same_comparison() -> None:
    a, b = random_tree(11, 4), _renamed(random_tree(12, 4), "rival")
    readings = random_reports(a, 10, 11)
    first = compare([a, b], readings, as_of=FAR_FUTURE).to_dict()
    again = compare([a, b], list(reversed(readings)), as_of=FAR_FUTURE).to_dict()
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
