"""Explanations: each report's influence on today's forecast (leave one out), checked against
a forecast without it, and its sequential contribution, adding up to the total change."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scenariocast.analysis.explain as ex
from scenariocast.analysis.explain import Explanation, explain
from scenariocast.analysis.joint import OutcomeJoints
from scenariocast.engines.exact import ExactModel, forecast_exact
from scenariocast.engines.result import logit
from scenariocast.errors import QueryError
from scenariocast.evidence.readings import ObservedDate, Reading
from scenariocast.evidence.select import select_evidence
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
    return tree_from_dict(_screening_spec())


def _screening_spec() -> dict[str, Any]:
    return {
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


# ---------------------------------------------------------------------------------------------
# leave one out by division of the joints given every report, against recalibration and against
# a separate forecast without the report


def _division(
    tree: Tree, readings: list[Reading], as_of: dt.date, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[dict[str, float]], list[int]]:
    """Each report's forecast without it by division, checked against the recalibration and a
    separate forecast without its readings; returns the reports that fell back."""
    model = ExactModel(tree)
    query = model.query(select_evidence(tree, readings, as_of))
    ids = list(tree.outcomes)
    fell_back: list[int] = []
    reference = ex._leave_one_out

    def spy(*args: Any, **kwargs: Any) -> list[dict[str, float]]:
        fell_back.extend(kwargs["only"])
        return reference(*args, **kwargs)

    monkeypatch.setattr(ex, "_leave_one_out", spy)
    divided = ex._leave_one_out_by_division(model, query, ids, OutcomeJoints(model, query, ids))
    monkeypatch.setattr(ex, "_leave_one_out", reference)
    recalibrated = reference(model, query, ids)
    assert len(divided) == len(recalibrated) == len(query.evidence.reports)
    for rep, div, cal in zip(query.evidence.reports, divided, recalibrated, strict=True):
        gone = set(rep.ids)
        brute = forecast_exact(tree, [r for r in readings if r.id not in gone], as_of=as_of)
        for o in ids:
            assert div[o] == pytest.approx(cal[o], abs=1e-9), (rep.ids, o)
            assert div[o] == pytest.approx(brute.outcomes[o].probability, abs=1e-9), (rep.ids, o)
    return divided, fell_back


@pytest.mark.parametrize("seed", range(6))
def test_leaving_out_by_division_is_exact_on_a_static_tree(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = random_tree(seed, 5)
    readings = random_readings(tree, 12, seed, n_dates=4)
    divided, fell_back = _division(tree, readings, FAR_FUTURE, monkeypatch)
    assert len(divided) >= 2
    assert fell_back == []  # every report's factor is finite here: all by division


def test_leaving_out_by_division_is_exact_on_dynamic_trees_of_every_timing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timings: set[str] = set()
    for seed in range(8):
        tree = random_dynamic_tree(seed, 3, n_steps=4, max_states=2)
        timings |= {o.timing for o in tree.outcomes.values()}
        readings = random_reports(tree, 12, seed)
        divided, fell_back = _division(tree, readings, FAR_FUTURE, monkeypatch)
        assert len(divided) >= 2
        assert fell_back == []
    assert timings >= {"end", "ever", "at_least"}  # every kind of outcome was checked


def _certain_tree(p_calm: float, reliability: float = 1.0) -> Tree:
    """The screening tree with a source trusted fully and a report that is (nearly) never made
    when calm: a "yes" has a log factor of -inf (or a range of -log p_calm) over the shock."""
    spec = _screening_spec()
    spec["sources"] = {"survey": {"reliability": 0.9}, "inspector": {"reliability": reliability}}
    spec["indicators"]["severe_report"]["params"][0]["then"]["p"] = p_calm
    spec["outcomes"]["severe_ever"] = {
        **spec["outcomes"]["severe_at_end"],
        "question": "Severe in any month?",
        "timing": "ever",
    }
    return tree_from_dict(spec)


def _mixed_readings() -> list[Reading]:
    rows = [
        ("2026-02-10", "no", "survey"),
        ("2026-03-10", "yes", "inspector"),
        ("2026-05-10", "no", "survey"),
        ("2026-06-10", "yes", "survey"),
        ("2026-07-10", "no", "inspector"),
        ("2026-09-10", "yes", "inspector"),
        ("2026-10-10", "no", "survey"),
    ]
    return [
        Reading(i, "severe_report", v, ObservedDate.parse(d), src)
        for i, (d, v, src) in enumerate(rows, start=1)
    ]


def test_a_report_impossible_in_some_state_is_left_out_by_recalibration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fully trusted "yes" that is never reported when calm rules calm out (a log factor of
    -inf): dividing it out is undefined, so it is recalibrated, and still exact."""
    tree = _certain_tree(0.0)
    readings = _mixed_readings()
    model = ExactModel(tree)
    query = model.query(select_evidence(tree, readings, dt.date(2026, 11, 30)))
    infinite = [i for i, (_, t) in enumerate(query.report_factors) if np.isneginf(t).any()]
    assert infinite == [1, 5]  # the inspector's two "yes" reports
    divided, fell_back = _division(tree, readings, dt.date(2026, 11, 30), monkeypatch)
    assert sorted(fell_back) == infinite
    # without the September "yes" the autumn could be calm again
    assert divided[5]["severe_at_end"] < 0.99


def test_a_report_whose_factor_spans_too_wide_a_range_is_left_out_by_recalibration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A "yes" with probability 1e-250 when calm (a range of 575 nats, over the bound) could
    leave the beliefs given every report underflowing: it is recalibrated; the others are not."""
    tree = _certain_tree(1e-250)
    readings = _mixed_readings()
    model = ExactModel(tree)
    query = model.query(select_evidence(tree, readings, dt.date(2026, 11, 30)))
    wide = [
        i
        for i, (_, t) in enumerate(query.report_factors)
        if float(t.max() - t.min()) > ex._DIVISION_RANGE
    ]
    assert wide == [1, 5]
    assert all(np.isfinite(t).all() for _, t in query.report_factors)
    _, fell_back = _division(tree, readings, dt.date(2026, 11, 30), monkeypatch)
    assert sorted(fell_back) == wide
    # and with the bound lowered, every report that says anything falls back, still exact
    monkeypatch.setattr(ex, "_DIVISION_RANGE", 1e-6)
    _, fell_back = _division(tree, readings, dt.date(2026, 11, 30), monkeypatch)
    assert sorted(fell_back) == list(range(len(readings)))


def test_the_explanation_s_influences_come_from_the_division(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """explain itself: no recalibration when every factor is finite, and influences equal to a
    forecast without the report (the mixed tree, with the inspector trusted at 0.95)."""
    tree = _certain_tree(0.05, reliability=0.95)
    readings = _mixed_readings()

    def refuse(*args: Any, **kwargs: Any) -> list[dict[str, float]]:
        raise AssertionError("recalibrated")

    monkeypatch.setattr(ex, "_leave_one_out", refuse)
    expl = explain(tree, readings, as_of=dt.date(2026, 11, 30))
    assert _check_leave_one_out(tree, readings, expl) == len(readings)


# ---------------------------------------------------------------------------------------------
# the sequential contributions: computed only when read


def test_the_default_explanation_does_not_add_the_reports_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scenariocast.report.content import _movers

    tree = _certain_tree(0.05, reliability=0.95)
    readings = _mixed_readings()
    calls: list[int] = []
    stepwise = ex._stepwise

    def refuse(*args: Any, **kwargs: Any) -> list[dict[str, float]]:
        raise AssertionError("the sequential contributions were computed")

    monkeypatch.setattr(ex, "_stepwise", refuse)
    expl = explain(tree, readings, as_of=dt.date(2026, 11, 30))
    text = render_explanation(expl)  # the default text: influences only
    assert "leave one out" in text
    assert _movers(expl, 5)  # the report's "what moved the forecast"
    assert expl.strongest("severe_at_end", 3)
    assert "not computed" in repr(expl.contributions[0].log_odds)

    def counted(*args: Any, **kwargs: Any) -> list[dict[str, float]]:
        calls.append(1)
        return stepwise(*args, **kwargs)

    monkeypatch.setattr(ex, "_stepwise", counted)
    for o in expl.prior:
        by_outcome = render_explanation(expl, outcome=o)  # --outcome: the "added" column
        assert "added" in by_outcome
        assert math.fsum(c.log_odds[o] for c in expl.contributions) == pytest.approx(
            expl.total(o), abs=1e-9
        )
    data = expl.to_dict()  # --json
    frame = expl.to_frame()
    assert calls == [1]  # once, for every report and outcome, then kept
    for o in expl.prior:
        added = [e["log_odds"][o] for e in data["contributions"]]
        assert math.fsum(added) == pytest.approx(data["outcomes"][o]["log_odds_change"], abs=1e-9)
        assert frame[o].tolist() == added
        assert data["contributions"][-1]["probability_after"][o] == pytest.approx(
            expl.posterior[o], abs=1e-12
        )
    # each step is the forecast on the reports up to it
    for k, c in enumerate(expl.contributions):
        upto = {i for rep in expl.evidence.reports[: k + 1] for i in rep.ids}
        step = forecast_exact(tree, [r for r in readings if r.id in upto], as_of=expl.as_of)
        for o in expl.prior:
            assert c.probability_after[o] == pytest.approx(step.outcomes[o].probability, abs=1e-9)


def test_the_cli_explain_gives_the_sequential_numbers_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from scenariocast.cli import app

    path = tmp_path / "screening.yaml"
    path.write_text(yaml.safe_dump(_screening_spec()))
    env = {"SCENARIOCAST_DB": str(tmp_path / "ledger.db"), "SCENARIOCAST_SCENARIOS": str(tmp_path)}
    runner = CliRunner()
    for month, value in ((3, "yes"), (6, "no"), (9, "yes"), (10, "yes")):
        on = f"2026-{month:02d}-10"
        args = ["observe", "severe_report", value, "--on", on, "--source", "survey"]
        done = runner.invoke(app, args, env=env)
        assert done.exit_code == 0, done.output
    calls: list[int] = []
    stepwise = ex._stepwise

    def counted(*args: Any, **kwargs: Any) -> list[dict[str, float]]:
        calls.append(1)
        return stepwise(*args, **kwargs)

    monkeypatch.setattr(ex, "_stepwise", counted)
    args = ["explain", str(path), "--as-of", "2026-11-30"]
    plain = runner.invoke(app, args, env=env)
    assert plain.exit_code == 0, plain.output
    assert "leave one out" in plain.output and calls == []
    by_outcome = runner.invoke(app, [*args, "--outcome", "severe_at_end"], env=env)
    assert by_outcome.exit_code == 0, by_outcome.output
    assert "added" in by_outcome.output and calls == [1]
    as_json = runner.invoke(app, [*args, "--json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    assert calls == [1, 1]
    data = json.loads(as_json.stdout)
    added = [e["log_odds"]["severe_at_end"] for e in data["contributions"]]
    assert len(added) == 4 and all(a != 0.0 for a in added)
    total = data["outcomes"]["severe_at_end"]["log_odds_change"]
    assert math.fsum(added) == pytest.approx(total, abs=1e-9)
