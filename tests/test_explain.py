"""Explanations: each report's influence on today's forecast (leave one out), checked against
a forecast without it, and its sequential contribution, adding up to the total change."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenariocast.analysis.explain import Explanation, explain
from scenariocast.engines.exact import ExactModel, forecast_exact
from scenariocast.engines.result import logit
from scenariocast.errors import QueryError
from scenariocast.evidence.readings import ObservedDate, Reading
from scenariocast.report.text import render_explanation
from scenariocast.spec.tree import Tree
from scenariocast.testing import (
    random_dynamic_tree,
    random_readings,
    random_reports,
    random_tree,
    tree_from_dict,
)
from tests.conftest import FAR_FUTURE, reading


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_readings=st.integers(0, 12))
def test_contributions_add_up_to_the_change_from_prior_to_posterior(
    seed: int, n_readings: int
) -> None:
    tree = random_tree(seed, 5)
    readings = random_readings(tree, n_readings, seed)
    expl = explain(tree, readings, as_of=FAR_FUTURE)
    result = forecast_exact(tree, readings, as_of=FAR_FUTURE)
    for oid, out in result.outcomes.items():
        assert expl.prior[oid] == pytest.approx(out.prior, abs=1e-12)
        assert expl.posterior[oid] == pytest.approx(out.probability, abs=1e-12)
        total = logit(out.probability) - logit(out.prior)
        assert math.fsum(c.log_odds[oid] for c in expl.contributions) == pytest.approx(
            total, abs=1e-9
        )


def test_contributions_come_in_observed_order_and_match_stepwise_forecasts(example_tree) -> None:  # type: ignore[no-untyped-def]
    rs = [
        reading(3, "distribution_report", "yes", on="2026-05"),
        reading(1, "crackdowns", "3", on="2026-07-02", source="rumour"),
        reading(
            2, "rice_price", "15000", on="2026-05-20", source="market_survey", location="Pyongyang"
        ),
    ]
    as_of = dt.date(2026, 8, 1)  # the price is within its 90-day window
    expl = explain(example_tree, rs, as_of=as_of)
    assert [c.reading.id for c in expl.contributions] == [2, 3, 1]
    # each step equals a forecast on the readings observed up to then
    ordered = [rs[2], rs[0], rs[1]]
    for k, c in enumerate(expl.contributions, start=1):
        step = forecast_exact(example_tree, ordered[:k], as_of=as_of)
        assert c.probability_after["rationing_returns"] == pytest.approx(
            step.outcomes["rationing_returns"].probability, abs=1e-12
        )
    # a report of distribution raises the outcome; the price reading too (a short harvest)
    assert all(c.log_odds["rationing_returns"] > 0 for c in expl.contributions)
    assert all(c.influence["rationing_returns"] > 0 for c in expl.contributions)
    strongest = expl.strongest("rationing_returns", 1)[0]
    assert strongest.influence["rationing_returns"] == max(
        c.influence["rationing_returns"] for c in expl.contributions
    )


def test_unknown_outcome_has_a_hint(example_tree) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(QueryError, match="did you mean 'rationing_returns'"):
        explain(example_tree, [], outcomes=["rationing_return"])


def test_explanation_lists_readings_not_counted(example_tree) -> None:  # type: ignore[no-untyped-def]
    rs = [
        reading(1, "distribution_report", "yes", retracted=True),
        reading(2, "distribution_report", "no"),
    ]
    data = explain(example_tree, rs, as_of=FAR_FUTURE).to_dict()
    assert [r["reading"] for c in data["contributions"] for r in c["readings"]] == [2]
    assert data["not_counted"][0]["reading"] == 1
    assert data["not_counted"][0]["reason"].startswith("retracted")


# ---------------------------------------------------------------------------------------------
# influence: the forecast with every report against the forecast without one


def _same_log_odds(a: float, b: float) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-9


def _check_leave_one_out(tree: Tree, readings: list[Reading], expl: Explanation) -> int:
    """Each report's influence against a separate forecast without its readings; returns the
    number of reports checked."""
    assert expl.contributions
    for c in expl.contributions:
        gone = set(c.report.ids)
        rest = [r for r in readings if r.id not in gone]
        without = forecast_exact(tree, rest, as_of=expl.as_of)
        # leaving its readings out leaves every other report as it was
        others = [rep.ids for rep in expl.evidence.reports if rep is not c.report]
        assert [rep.ids for rep in without.evidence.reports] == others
        for oid, out in without.outcomes.items():
            assert c.probability_without[oid] == pytest.approx(out.probability, abs=1e-9)
            influence = logit(expl.posterior[oid]) - logit(out.probability)
            assert _same_log_odds(c.influence[oid], influence), (oid, c.influence[oid], influence)
    return len(expl.contributions)


@pytest.mark.parametrize("seed", range(6))
def test_influence_is_the_change_without_the_report_on_a_static_tree(seed: int) -> None:
    tree = random_tree(seed, 5)
    readings = random_readings(tree, 10, seed, n_dates=4)  # reports of several readings
    expl = explain(tree, readings, as_of=FAR_FUTURE)
    assert _check_leave_one_out(tree, readings, expl) >= 2


@pytest.mark.parametrize("seed", range(6))
def test_influence_is_the_change_without_the_report_on_a_dynamic_tree(seed: int) -> None:
    tree = random_dynamic_tree(seed, 3, n_steps=4, max_states=2)
    readings = random_reports(tree, 10, seed)
    expl = explain(tree, readings, as_of=FAR_FUTURE)
    assert _check_leave_one_out(tree, readings, expl) >= 2


def test_reports_of_the_same_readings_each_have_their_own_influence() -> None:
    """Reports with the same readings in the same step share one table in the model: each is
    still left out on its own, and each leaves the same forecast."""
    tree = _screening_tree()
    days = ["2026-06-03", "2026-06-17", "2026-07-01", "2026-07-15", "2026-07-29"]
    values = ["yes", "yes", "no", "yes", "no"]
    readings = [
        Reading(i, "severe_report", v, ObservedDate.parse(d), "survey")
        for i, (d, v) in enumerate(zip(days, values, strict=True), start=1)
    ]
    expl = explain(tree, readings, as_of=dt.date(2026, 8, 31))
    model = ExactModel(tree)
    tables = [t for _, t in model.query(expl.evidence).report_factors]
    assert tables[0] is tables[1] and tables[2] is tables[4]  # shared, not copied
    assert _check_leave_one_out(tree, readings, expl) == 5
    o = "severe_at_end"
    first, second, _, _, last = expl.contributions
    assert first.influence[o] == pytest.approx(second.influence[o], abs=1e-12)
    assert first.influence[o] > 0 > last.influence[o]


def _screening_tree() -> Tree:
    return tree_from_dict(
        {
            "horizon": {"start": "2026-01-01", "end": "2026-12-31"},
            "sources": {"survey": {"reliability": 0.9}},
            "nodes": {
                "shock": {
                    "states": ["calm", "severe"],
                    "probabilities": {"calm": 0.8, "severe": 0.2},
                    "dynamic": {"persistence": 0.95},
                }
            },
            "indicators": {
                "severe_report": {
                    "kind": "binary",
                    "depends_on": ["shock"],
                    "params": [
                        {"when": {"shock": "calm"}, "then": {"p": 0.1}},
                        {"when": {"shock": "severe"}, "then": {"p": 0.9}},
                    ],
                }
            },
            "outcomes": {
                "severe_at_end": {
                    "question": "Severe in December?",
                    "node": "shock",
                    "states": ["severe"],
                    "resolve_by": "2026-12-31",
                    "resolution": "By construction.",
                    "timing": "end",
                }
            },
        }
    )


def test_later_readings_screen_off_an_early_one_and_the_recent_report_ranks_first() -> None:
    """Three severe reports in January, then two in each of September, October and November:
    added first, January moves the forecast most; but given the autumn's readings it says almost
    nothing more about December, and November (the nearest) matters most today."""
    tree = _screening_tree()
    readings = [
        Reading(
            m * 10 + k,
            "severe_report",
            "yes",
            ObservedDate.parse(f"2026-{m:02d}-10"),
            "survey",
            location=f"city{k}",
        )
        for m, n in ((1, 3), (9, 2), (10, 2), (11, 2))
        for k in range(1, n + 1)
    ]
    expl = explain(tree, readings, as_of=dt.date(2026, 11, 30))
    _check_leave_one_out(tree, readings, expl)
    by_month = {c.report.last_day.month: c for c in expl.contributions}
    jan, nov = by_month[1], by_month[11]
    o = "severe_at_end"
    # added first, January is the largest sequential contribution (the old ranking's first)
    assert max(expl.contributions, key=lambda c: abs(c.log_odds[o])) is jan
    assert jan.log_odds[o] > 1.0
    # but today it is screened off: without it the forecast barely moves
    assert abs(jan.influence[o]) < 0.01 * abs(nov.influence[o])
    assert abs(jan.influence[o]) < 0.01
    ranked = expl.strongest(o, 4)
    assert [c.report.last_day.month for c in ranked] == [11, 10, 9, 1]
    # the sequential contributions still add up to the change; the influences do not
    assert math.fsum(c.log_odds[o] for c in expl.contributions) == pytest.approx(expl.total(o))
    assert math.fsum(c.influence[o] for c in expl.contributions) < 0.8 * expl.total(o)
    # the text leads with November and says what the number is
    text = render_explanation(expl, outcome=o, top=1)
    assert "leave one out" in text
    first = next(line for line in text.splitlines() if line.startswith("   +"))
    assert "survey report 2026-11-10, 2 readings (#111, #112)" in first
    assert f"without it {100 * nov.probability_without[o]:.1f}%" in first
    # and so do the JSON and the frame
    data = expl.to_dict()
    entries = {e["readings"][0]["reading"]: e for e in data["contributions"]}
    assert entries[111]["influence"][o] == nov.influence[o]
    assert entries[11]["probability_without"][o] == jan.probability_without[o]
    frame = expl.to_frame()
    assert frame[f"{o} influence"].tolist() == [c.influence[o] for c in expl.contributions]
    assert frame[o].tolist() == [c.log_odds[o] for c in expl.contributions]


def test_on_the_shipped_north_korea_ledger_recent_reports_move_the_forecast_most(
    tmp_path: Path,
) -> None:
    """The monthly North Korea tree with the shipped 2023-2025 readings: added first, the 2023
    and 2024 price reports move the 2026 outcomes most, but the 2025 readings of the same prices
    screen them off, and the reports that move today's forecast most are all from 2025."""
    from scenariocast import api
    from scenariocast.spec.load import load_tree
    from tests.report_support import NK_AS_OF, NK_TREE, nk_ledger

    tree = load_tree(NK_TREE)
    ledger = nk_ledger(tmp_path / "ledger.db", hostile=False)
    expl = api.explain(tree, ledger, as_of=dt.date.fromisoformat(NK_AS_OF))
    early = [c for c in expl.contributions if c.report.last_day.year < 2025]
    assert early
    for o in expl.prior:
        assert all(c.report.last_day.year >= 2025 for c in expl.strongest(o, 3)), o
        assert max(abs(c.influence[o]) for c in early) < 0.02
    o = "severe_food_shock"
    as_added = max(expl.contributions, key=lambda c: abs(c.log_odds[o]))
    assert as_added in early and abs(as_added.log_odds[o]) > 0.3
