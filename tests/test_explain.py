"""Explanations: each reading's contribution in log-odds, adding up to the total change."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenariocast.analysis.explain import explain
from scenariocast.engines.exact import forecast_exact
from scenariocast.engines.result import logit
from scenariocast.errors import QueryError
from scenariocast.testing import random_readings, random_tree
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
    strongest = expl.strongest("rationing_returns", 1)[0]
    assert strongest.log_odds["rationing_returns"] == max(
        c.log_odds["rationing_returns"] for c in expl.contributions
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
