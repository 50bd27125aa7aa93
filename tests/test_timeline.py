"""The outcome timeline: the forecast as it would have stood on each observed date."""

from __future__ import annotations

import datetime as dt

import pytest

from scenariocast.analysis.timeline import outcome_timeline
from scenariocast.engines.exact import forecast_exact
from tests.conftest import reading


def test_each_point_is_the_forecast_as_of_that_day(example_tree) -> None:  # type: ignore[no-untyped-def]
    rs = [
        reading(1, "rice_price", "5200", on="2026-01-05", source="market_survey", location="A"),
        reading(2, "distribution_report", "yes", on="2026-02"),
        reading(3, "rice_price", "16000", on="2026-03-05", source="market_survey", location="A"),
        reading(4, "distribution_report", "yes", on="2026-04", retracted=True),
    ]
    tl = outcome_timeline(example_tree, rs)
    assert tl.dates == (None, dt.date(2026, 1, 5), dt.date(2026, 2, 28), dt.date(2026, 3, 5))
    prior = forecast_exact(example_tree, []).outcomes["rationing_returns"].prior
    assert tl.outcomes["rationing_returns"][0] == pytest.approx(prior)
    for k, day in enumerate(tl.dates[1:], start=1):
        expected = forecast_exact(example_tree, rs, as_of=day).outcomes["rationing_returns"]
        assert tl.outcomes["rationing_returns"][k] == pytest.approx(expected.probability)
    # the March price supersedes the January one: still two observations, not three
    assert tl.n_observations == (0, 1, 2, 2)
    frame = tl.to_frame()
    assert list(frame.columns) == ["rationing_returns", "n_observations"]
    assert len(frame) == 4
