"""Trees that evolve over a horizon: the exact engine against enumeration of every path, and
the properties a forecaster relies on (persistence, history, assumptions by step, outcomes)."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenariocast.analysis.explain import explain
from scenariocast.engines.exact import forecast_exact
from scenariocast.engines.exact.network import Network, reverse_kernel
from scenariocast.errors import QueryError
from scenariocast.evidence.readings import ObservedDate, Reading
from scenariocast.spec.load import parse_tree
from scenariocast.testing import (
    brute_force,
    random_dynamic_tree,
    random_dynamic_tree_spec,
    random_readings,
    tree_from_dict,
)
from tests.conftest import FAR_FUTURE
from tests.exact_support import check_against_brute_force

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DOC = Path(__file__).resolve().parent.parent / "docs" / "scenario-format.md"


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    n_nodes=st.integers(1, 3),
    n_steps=st.integers(2, 5),
    n_readings=st.integers(0, 10),
    calendar=st.booleans(),
)
def test_dynamic_trees_equal_enumeration_of_every_path(
    seed: int, n_nodes: int, n_steps: int, n_readings: int, calendar: bool
) -> None:
    tree = random_dynamic_tree(
        seed, n_nodes, n_steps=n_steps, calendar=calendar, max_states=2 if n_nodes == 3 else 3
    )
    # few dates: readings of one source on one day form reports of several readings
    readings = random_readings(tree, n_readings, seed, n_dates=max(1, n_readings // 3))
    check_against_brute_force(tree, readings)


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    n_readings=st.integers(0, 8),
    step=st.sampled_from(["week", "quarter"]),
)
def test_weeks_and_quarters_equal_enumeration(seed: int, n_readings: int, step: str) -> None:
    tree = random_dynamic_tree(seed, 2, n_steps=3, step=step, max_states=2)
    readings = random_readings(tree, n_readings, seed, n_dates=3)
    check_against_brute_force(tree, readings)


@SETTINGS
@given(seed=st.integers(0, 10_000), n_readings=st.integers(0, 8), data=st.data())
def test_assumptions_equal_enumeration(seed: int, n_readings: int, data: st.DataObject) -> None:
    tree = random_dynamic_tree(seed, 3, n_steps=3, max_states=2)
    readings = random_readings(tree, n_readings, seed, n_dates=3)
    node = data.draw(st.sampled_from(list(tree.nodes)))
    state = data.draw(st.sampled_from(list(tree.nodes[node].states)))
    key = node
    if tree.nodes[node].kind == "dynamic" and data.draw(st.booleans()):
        key = f"{node}@2026-0{data.draw(st.integers(1, 3))}"  # one step of the horizon
    given_ = {key: state}
    try:
        ref = brute_force(tree, readings, given=given_)
    except ValueError:  # pragma: no cover - a zero-probability assumption
        return
    if not math.isfinite(ref.log_evidence):
        return
    check_against_brute_force(tree, readings, given=given_)


def test_larger_dynamic_tree_with_history_matches_enumeration() -> None:
    """Readings two steps before and one after the horizon, reports of several readings."""
    tree = random_dynamic_tree(3, 3, n_steps=4, calendar=True, max_states=2, n_indicators=6)
    readings = random_readings(tree, 25, 3, n_dates=6)
    late = random_readings(tree, 2, 4, start_id=26)
    readings += [
        Reading(r.id, r.indicator, r.value, ObservedDate.parse("2026-05-20"), r.source)
        for r in late
    ]
    steps = tree.steps
    assert steps is not None
    assert min(steps.index(r.observed.end) for r in readings) < 0
    assert max(steps.index(r.observed.end) for r in readings) >= steps.n
    result = forecast_exact(tree, readings, as_of=FAR_FUTURE)
    assert any(len(rep.observations) > 1 for rep in result.evidence.reports)
    check_against_brute_force(tree, readings)


# ---------------------------------------------------------------------------------------------
# persistence


def _one_node_tree(persistence: float, *, timing: str = "ever", k: int | None = None) -> Any:
    outcome: dict[str, Any] = {
        "question": "Severe in any month?",
        "node": "shock",
        "states": ["severe"],
        "resolve_by": "2026-12-31",
        "resolution": "By construction.",
        "timing": timing,
    }
    if k is not None:
        outcome["k"] = k
    return tree_from_dict(
        {
            "horizon": {"start": "2026-01-01", "end": "2026-12-31"},
            "sources": {"survey": {"reliability": 1.0}},
            "nodes": {
                "shock": {
                    "states": ["calm", "severe"],
                    "probabilities": {"calm": 0.8, "severe": 0.2},
                    "dynamic": {"persistence": persistence},
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
            "outcomes": {"severe": outcome},
        }
    )


def _monthly(value: str, months: range) -> list[Reading]:
    return [
        Reading(
            id=m,
            indicator="severe_report",
            value=value,
            observed=ObservedDate.parse(f"2026-{m:02d}"),
            source="survey",
        )
        for m in months
    ]


def test_a_quiet_month_says_less_early_in_the_year_than_late() -> None:
    """With persistence below 1, a month without a severe report lowers the chance of a severe
    month in the year less in February (ten months left) than in November (one left)."""
    tree = _one_node_tree(0.8)
    early = explain(tree, _monthly("no", range(1, 3)), as_of=dt.date(2026, 2, 28))
    late = explain(tree, _monthly("no", range(1, 12)), as_of=dt.date(2026, 11, 30))
    feb = early.contributions[-1].log_odds["severe"]
    nov = late.contributions[-1].log_odds["severe"]
    assert feb < 0 and nov < 0
    assert abs(feb) < abs(nov) / 2
    # and a quiet February does not settle the year: the chance stays well above zero
    assert early.posterior["severe"] > 0.5 * early.prior["severe"]


def test_a_reading_from_long_ago_says_little_about_now() -> None:
    tree = _one_node_tree(0.8, timing="end")
    recent = forecast_exact(tree, _monthly("yes", range(12, 13)), as_of=FAR_FUTURE)
    old = [Reading(1, "severe_report", "yes", ObservedDate.parse("2025-01"), "survey")]
    stale = forecast_exact(tree, old, as_of=FAR_FUTURE)
    prior = recent.outcomes["severe"].prior
    assert recent.outcomes["severe"].probability > 0.6
    assert abs(stale.outcomes["severe"].probability - prior) < 0.01
    # the prior at the horizon's start is the table written, however far back readings go
    assert stale.steps["shock"][0].prior["severe"] == pytest.approx(0.2, abs=1e-12)


def _static_twin(tree_spec: dict[str, Any]) -> dict[str, Any]:
    """The same tree with every dynamic node made static (and outcomes without timing)."""
    twin = {k: v for k, v in tree_spec.items() if k != "horizon"}
    twin["nodes"] = {
        n: {k: v for k, v in spec.items() if k != "dynamic"}
        for n, spec in tree_spec["nodes"].items()
    }
    twin["outcomes"] = {
        o: {k: v for k, v in spec.items() if k not in ("timing", "k")}
        for o, spec in tree_spec["outcomes"].items()
    }
    return twin


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_persistence_one_equals_the_static_tree(seed: int) -> None:
    spec = random_dynamic_tree_spec(seed, 3, n_steps=6, max_states=3)
    for node in spec["nodes"].values():
        if "dynamic" in node:
            node["dynamic"] = {"persistence": 1.0}
    dynamic = tree_from_dict(spec)
    static = tree_from_dict(_static_twin(spec))
    readings = random_readings(dynamic, 12, seed, n_dates=5)  # some before and after the horizon
    a = forecast_exact(dynamic, readings, as_of=FAR_FUTURE)
    b = forecast_exact(static, readings, as_of=FAR_FUTURE)
    for n in b.nodes:
        for s in b.nodes[n]:
            assert a.nodes[n][s] == pytest.approx(b.nodes[n][s], abs=1e-12)
    for oid in b.outcomes:
        assert a.outcomes[oid].probability == pytest.approx(b.outcomes[oid].probability, abs=1e-12)
    assert a.log_evidence == pytest.approx(b.log_evidence, abs=1e-12)


def test_the_backward_chain_of_a_stationary_start_is_the_forward_chain() -> None:
    """With one persistence and static parents, the start table is stationary: reading the
    chain backwards from the start gives the same joint as running it forwards."""
    rng = np.random.default_rng(0)
    p0 = rng.dirichlet([1, 1, 1], size=2)  # two parent states
    keep = 0.7
    trans = keep * np.eye(3)[:, None, :] + (1 - keep) * p0[None, :, :]  # (h, parent, i)
    back = reverse_kernel(p0, trans)
    for pa in range(2):
        forward = p0[pa][:, None] * trans[:, pa, :]  # P(x_t = h, x_{t+1} = i)
        backward = back[:, pa, :] * p0[pa][None, :]  # P(x_t = h | x_{t+1} = i) P(x_{t+1} = i)
        np.testing.assert_allclose(forward, backward, atol=1e-15)


def test_network_size_grows_linearly_with_the_steps() -> None:
    tree = random_dynamic_tree(8, 3, n_steps=12, max_states=3)
    small, large = Network.build(tree, 0, 11), Network.build(tree, -12, 23)
    assert len(large.cards) - 1 == 3 * (len(small.cards) - 1)  # one static node, two dynamic


# ---------------------------------------------------------------------------------------------
# outcomes and assumptions


def test_ever_and_at_least_k_are_ordered() -> None:
    base = _one_node_tree(0.7)
    readings = _monthly("yes", range(3, 4))
    p = {}
    for k in (1, 2, 6, 12):
        tree = _one_node_tree(0.7, timing="at_least", k=k)
        p[k] = forecast_exact(tree, readings, as_of=FAR_FUTURE).outcomes["severe"].probability
    ever = forecast_exact(base, readings, as_of=FAR_FUTURE).outcomes["severe"].probability
    assert p[1] == pytest.approx(ever, abs=1e-12)
    assert ever > p[2] > p[6] > p[12] > 0


def test_an_assumption_without_a_date_holds_at_every_step() -> None:
    tree = _one_node_tree(0.7, timing="at_least", k=12)
    every = forecast_exact(tree, [], given={"shock": "severe"}, as_of=FAR_FUTURE)
    assert every.outcomes["severe"].probability == pytest.approx(1.0, abs=1e-12)
    one = forecast_exact(tree, [], given={"shock@2026-06": "severe"}, as_of=FAR_FUTURE)
    path = one.steps["shock"]
    assert path[5].probabilities["severe"] == pytest.approx(1.0)
    assert path[4].probabilities["severe"] == pytest.approx(0.7 + 0.3 * 0.2 * 0, abs=0.3)
    assert path[0].probabilities["severe"] < 1.0


@pytest.mark.parametrize(
    ("given_", "message"),
    [
        ({"shock@2026-13": "severe"}, "the date after @"),
        ({"shok": "severe"}, "did you mean 'shock'"),
        ({"shock": "sever"}, "did you mean 'severe'"),
    ],
)
def test_bad_assumptions_are_named(given_: dict[str, str], message: str) -> None:
    with pytest.raises(QueryError, match=re.escape(message)):
        forecast_exact(_one_node_tree(0.7), [], given=given_)


def test_steps_are_estimated_as_far_as_readings_go_and_predicted_after() -> None:
    tree = _one_node_tree(0.7)
    readings = _monthly("yes", range(1, 5))  # January to April
    result = forecast_exact(tree, readings, as_of=dt.date(2026, 4, 30))
    path = result.steps["shock"]
    assert [x.estimated for x in path] == [True] * 4 + [False] * 8
    # months that have passed with nothing read about them are predicted, not estimated
    later = forecast_exact(tree, readings, as_of=dt.date(2026, 9, 30))
    assert [x.estimated for x in later.steps["shock"]] == [True] * 4 + [False] * 8
    assert later.now_step == "2026-09"
    nothing = forecast_exact(tree, [], as_of=dt.date(2026, 9, 30))
    assert not any(x.estimated for x in nothing.steps["shock"])
    assert result.now_step == "2026-04"
    assert result.nodes["shock"] == path[3].probabilities
    # the predicted path relaxes back towards the table
    severe = [x.probabilities["severe"] for x in path[3:]]
    assert all(a > b for a, b in itertools.pairwise(severe))
    data = result.to_dict()
    assert data["steps"]["shock"][4]["kind"] == "predicted"
    assert data["steps"]["shock"][0]["step"] == "2026-01"


def test_the_documented_dynamic_example_loads_and_forecasts() -> None:
    text = DOC.read_text()
    block = re.search(r"```yaml\n(.*?)```", text.split("## A dynamic example", 1)[1], re.DOTALL)
    assert block is not None
    tree = parse_tree(block.group(1), file="doc-dynamic-example.yaml")
    assert tree.steps is not None and tree.steps.n == 12
    assert {n.kind for n in tree.nodes.values()} == {"static", "calendar", "dynamic"}
    survey = [
        Reading(i, "rice_price", v, ObservedDate.parse("2026-05-10"), "survey", location=city)
        for i, (v, city) in enumerate([("16000", "A"), ("17500", "B"), ("15800", "C")], start=1)
    ]
    result = forecast_exact(tree, survey, as_of=dt.date(2026, 5, 31))
    assert len(result.evidence.reports) == 1  # one survey round, one report
    crisis = result.outcomes["crisis_in_2026"]
    # prices three times the baseline in May; the survey's reliability (0.8) caps the certainty
    assert crisis.probability > 0.8 > 0.3 > crisis.prior
    assert result.outcomes["crisis_two_months"].probability < crisis.probability
