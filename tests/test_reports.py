"""Reports: readings of one source and date (or report id) that are genuine or not as a whole,
and that share an error within an indicator; the special functions behind the Student-t case;
staleness of an indicator's newest reading."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import special, stats

from scenariocast.analysis.explain import explain
from scenariocast.engines.exact import forecast_exact
from scenariocast.evidence.likelihood import report_log_likelihood
from scenariocast.evidence.readings import ObservedDate, Reading
from scenariocast.evidence.select import select_evidence
from scenariocast.evidence.special import (
    log_norm_cdf,
    log_t_lower_tail,
    norm_ppf_from_log,
    t_normal_scores,
)
from scenariocast.report.text import render_explanation, render_forecast
from scenariocast.testing import tree_from_dict

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AS_OF = dt.date(2026, 6, 30)


def _tree(kind: str, *, rho: float | None = None, reliability: float = 1.0, **extra: Any) -> Any:
    """Two states; one continuous indicator whose mean differs by state (common sigma)."""
    params = {
        "normal": [{"mu": 0.0, "sigma": 1.0}, {"mu": 1.0, "sigma": 1.0}],
        "lognormal": [{"mu": 0.0, "sigma": 1.0}, {"mu": 1.0, "sigma": 1.0}],
        "student_t": [{"mu": 0.0, "sigma": 1.0, "nu": 4.0}, {"mu": 1.0, "sigma": 1.0, "nu": 4.0}],
        "binary": [{"p": 0.2}, {"p": 0.7}],
    }[kind]
    ind: dict[str, Any] = {
        "kind": kind,
        "depends_on": ["x"],
        "combine": {"rule": "all"},
        "params": [
            {"when": {"x": "lo"}, "then": params[0]},
            {"when": {"x": "hi"}, "then": params[1]},
        ],
        **extra,
    }
    if rho is not None:
        ind["within_report_correlation"] = rho
    return tree_from_dict(
        {
            "sources": {"s": {"reliability": reliability}, "t": {"reliability": reliability}},
            "nodes": {"x": {"states": ["lo", "hi"], "probabilities": {"lo": 0.5, "hi": 0.5}}},
            "indicators": {"i": ind},
            "outcomes": {
                "hi": {
                    "question": "hi?",
                    "node": "x",
                    "states": ["hi"],
                    "resolve_by": "2026-12-31",
                    "resolution": "By construction.",
                }
            },
        }
    )


def _readings(
    values: list[float] | list[str], *, same_report: bool, source: str = "s"
) -> list[Reading]:
    """Readings of indicator i: one report (one date) or one report each (distinct dates)."""
    return [
        Reading(
            id=k + 1,
            indicator="i",
            value=v if isinstance(v, str) else repr(v),
            observed=ObservedDate.parse("2026-03-01" if same_report else f"2026-03-{k + 1:02d}"),
            source=source,
            location=f"city{k}",
        )
        for k, v in enumerate(values)
    ]


def _p_hi(tree: Any, readings: list[Reading]) -> float:
    return forecast_exact(tree, readings, as_of=AS_OF).outcomes["hi"].probability


# ---------------------------------------------------------------------------------------------
# the joint likelihood against SciPy


@SETTINGS
@given(
    n=st.integers(2, 6),
    rho=st.floats(0.0, 0.95),
    seed=st.integers(0, 10_000),
    kind=st.sampled_from(["normal", "lognormal", "student_t"]),
)
def test_report_likelihood_matches_scipy(n: int, rho: float, seed: int, kind: str) -> None:
    rng = np.random.default_rng(seed)
    tree = _tree(kind)
    ind = tree.indicators["i"]
    x = rng.normal(0.5, 1.5, size=n)
    if kind == "lognormal":
        x = np.exp(x)
    got = report_log_likelihood(ind, x, rho)
    corr = (1 - rho) * np.eye(n) + rho * np.ones((n, n))
    for j, mu in enumerate((0.0, 1.0)):
        if kind == "normal":
            want = stats.multivariate_normal(np.full(n, mu), corr).logpdf(x)
        elif kind == "lognormal":
            lx = np.log(x)
            want = stats.multivariate_normal(np.full(n, mu), corr).logpdf(lx) - lx.sum()
        else:
            g = stats.norm.ppf(stats.t.cdf(x - mu, 4.0))
            want = (
                stats.t.logpdf(x - mu, 4.0).sum()
                + stats.multivariate_normal(np.zeros(n), corr).logpdf(g)
                - stats.norm.logpdf(g).sum()
            )
        assert got[j] == pytest.approx(want, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# what a report means


@pytest.mark.parametrize("kind", ["normal", "lognormal", "student_t", "binary"])
def test_uncorrelated_report_equals_independent_readings(kind: str) -> None:
    """With rho = 0 (and a fully reliable source), n readings in one report are n readings."""
    values: list[float] | list[str] = [0.3, 1.2, 0.9]
    if kind == "binary":
        values = ["yes", "yes", "no"]
    elif kind == "lognormal":
        values = [math.exp(v) for v in (0.3, 1.2, 0.9)]
    extra = {"within_report_correlation": 0.0} if kind != "binary" else {}
    tree = _tree(kind, **extra)
    together = _p_hi(tree, _readings(values, same_report=True))
    apart = _p_hi(tree, _readings(values, same_report=False))
    assert together == pytest.approx(apart, abs=1e-12)
    assert together != pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("kind", ["normal", "lognormal"])
def test_fully_correlated_report_moves_the_forecast_as_one_reading(kind: str) -> None:
    values = [0.4, 1.1, 0.7]
    if kind == "lognormal":
        values = [math.exp(v) for v in values]
        mean = math.exp(float(np.mean(np.log(values))))
    else:
        mean = float(np.mean(values))
    one = _p_hi(_tree(kind), _readings([mean], same_report=True))
    report = _p_hi(_tree(kind, rho=1 - 1e-9), _readings(values, same_report=True))
    assert report == pytest.approx(one, abs=1e-6)
    apart = _p_hi(_tree(kind, rho=0.0), _readings(values, same_report=True))
    assert abs(apart - 0.5) > abs(report - 0.5) + 0.05


def test_a_report_carries_the_information_of_n_over_one_plus_n_minus_one_rho_readings() -> None:
    """Four readings with rho = 1/3 move a normal indicator as two readings at their mean."""
    values = [0.2, 1.4, 0.8, 1.0]
    report = _p_hi(_tree("normal", rho=1 / 3), _readings(values, same_report=True))
    mean = float(np.mean(values))
    two = _p_hi(_tree("normal", rho=0.0), _readings([mean, mean], same_report=False))
    assert report == pytest.approx(two, abs=1e-12)


def test_student_t_report_tends_to_one_reading_as_rho_tends_to_one() -> None:
    """For Student-t margins the copula's limit is close to one reading: agreement near the
    centre is itself a little evidence, so it never reaches one reading exactly
    (docs/evidence.md), but it stays far from three independent readings."""
    values = [0.9, 0.9, 0.9]
    one = _p_hi(_tree("student_t"), _readings([0.9], same_report=True))
    three = _p_hi(_tree("student_t", rho=0.0), _readings(values, same_report=True))
    report = _p_hi(_tree("student_t", rho=1 - 1e-9), _readings(values, same_report=True))
    lo = math.log(report / (1 - report))
    assert abs(lo - math.log(one / (1 - one))) < 0.5 * abs(lo - math.log(three / (1 - three)))


def test_a_fabricated_report_is_fabricated_as_a_whole() -> None:
    """Twenty readings that all point to hi, from a source right half the time: as one report
    they are at most as convincing as a genuine report is likely; as twenty reports they
    would be near certain."""
    values = [3.0] * 20
    tree = _tree("normal", rho=0.0, reliability=0.5)
    as_one = _p_hi(tree, _readings(values, same_report=True))
    as_many = _p_hi(tree, _readings(values, same_report=False))
    # P(hi) <= P(genuine) * 1 + P(fabricated) * prior, plus nothing
    assert as_one <= 0.5 + 0.5 * 0.5 + 1e-9
    assert as_many > 0.999


def test_reports_are_grouped_by_source_and_date_or_report_id() -> None:
    tree = _tree("normal", rho=0.5)

    def r(i: int, on: str, source: str = "s", report: str | None = None) -> Reading:
        return Reading(
            i, "i", "0.5", ObservedDate.parse(on), source, location=f"c{i}", report=report
        )

    readings = [
        r(1, "2026-03-01"),
        r(2, "2026-03-01"),
        r(3, "2026-03-01", source="t"),  # another source, another report
        r(4, "2026-03-02"),  # another date
        r(5, "2026-03-05", report="round-7"),  # a report id spans dates
        r(6, "2026-03-09", report="round-7"),
        r(7, "2026-03-09", source="t", report="round-7"),  # ids belong to their source
    ]
    ev = select_evidence(tree, readings, AS_OF)
    groups = sorted(sorted(rep.ids) for rep in ev.reports)
    assert groups == [[1, 2], [3], [4], [5, 6], [7]]
    keys = {rep.ids: (rep.source, rep.key) for rep in ev.reports}
    assert keys[(5, 6)] == ("s", "round-7") and keys[(1, 2)] == ("s", "2026-03-01")


def test_explain_gives_one_line_per_report_with_its_readings() -> None:
    tree = _tree("normal", rho=0.6)
    readings = [
        *_readings([0.9, 1.1, 1.3], same_report=True),
        Reading(9, "i", "-0.5", ObservedDate.parse("2026-04-01"), "t", location="city9"),
    ]
    expl = explain(tree, readings, as_of=AS_OF)
    assert [len(c.readings) for c in expl.contributions] == [3, 1]
    text = render_explanation(expl)
    assert "s report 2026-03-01, 3 readings (#1, #2, #3)" in text
    data = expl.to_dict()
    assert [[r["reading"] for r in c["readings"]] for c in data["contributions"]] == [
        [1, 2, 3],
        [9],
    ]
    total = sum(c["log_odds"]["hi"] for c in data["contributions"])
    assert total == pytest.approx(data["outcomes"]["hi"]["log_odds_change"], abs=1e-12)


# ---------------------------------------------------------------------------------------------
# special functions (NumPy only, for the command line's start-up time)


@pytest.mark.parametrize("nu", [0.5, 2.0, 3.0, 4.0, 5.5, 10.0, 30.0, 100.0])
def test_t_tail_and_normal_scores_match_scipy(nu: float) -> None:
    z = np.concatenate(
        [-np.logspace(-3, 12, 200), np.linspace(-8, 8, 161), np.logspace(-3, 12, 200)]
    )
    cdf = special.stdtr(nu, -np.abs(z))
    ok = cdf > 1e-290  # where SciPy's value is a normal double
    got = log_t_lower_tail(z, np.full(z.shape, nu))
    np.testing.assert_allclose(got[ok], np.log(cdf[ok]), rtol=1e-12)
    scores = t_normal_scores(z, np.full(z.shape, nu))
    want = np.where(z > 0, -special.ndtri(cdf), special.ndtri(cdf))
    np.testing.assert_allclose(scores[ok], want[ok], rtol=1e-11, atol=1e-12)


def test_t_tail_against_closed_forms_and_far_beyond_double_range() -> None:
    z = np.concatenate([np.logspace(-12, 3, 100)])
    cauchy = np.log(0.5 - np.arctan(z) / np.pi)
    np.testing.assert_allclose(log_t_lower_tail(z, np.ones_like(z)), cauchy, rtol=1e-13)
    two = np.log(0.5 - z / (2 * np.sqrt(2 + z * z)))
    ok = z < 1e3
    np.testing.assert_allclose(log_t_lower_tail(z, np.full_like(z, 2.0))[ok], two[ok], rtol=1e-12)
    # tails of 1e-1000 stay finite: a wild reading never turns into NaN
    huge = np.array([1e200, -1e250, 1e300])
    assert np.isfinite(log_t_lower_tail(huge, np.full(3, 4.0))).all()
    assert np.isfinite(t_normal_scores(huge, np.full(3, 4.0))).all()


def test_normal_cdf_and_quantile_in_logs_match_scipy() -> None:
    x = np.linspace(-60, 6, 2001)
    np.testing.assert_allclose(log_norm_cdf(x), special.log_ndtr(x), rtol=1e-13)
    log_p = -np.logspace(-3, 5, 500)
    log_p = log_p[log_p <= math.log(0.5)]
    np.testing.assert_allclose(norm_ppf_from_log(log_p), special.ndtri_exp(log_p), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# staleness


def test_stale_indicators_are_named_with_their_newest_reading() -> None:
    tree = _tree("normal", stale_after_days=30)
    readings = _readings([0.5], same_report=True)  # observed 2026-03-01
    fresh = forecast_exact(tree, readings, as_of=dt.date(2026, 3, 20))
    assert fresh.stale == ()
    late = forecast_exact(tree, readings, as_of=dt.date(2026, 6, 30))
    (st_,) = late.stale
    assert (st_.indicator, st_.newest, st_.age_days, st_.threshold_days, st_.counted) == (
        "i",
        dt.date(2026, 3, 1),
        121,
        30,
        True,
    )
    assert "i: newest reading 2026-03-01, 121 days before the as-of date" in render_forecast(late)
    data = json.loads(json.dumps(late.to_dict()))
    assert data["stale"] == [
        {
            "indicator": "i",
            "newest": "2026-03-01",
            "age_days": 121,
            "stale_after_days": 30,
            "still_counted": True,
        }
    ]


def test_default_staleness_depends_on_the_kind() -> None:
    readings = _readings([1.0], same_report=True)
    as_of = dt.date(2026, 3, 1) + dt.timedelta(days=75)
    assert [s.indicator for s in forecast_exact(_tree("normal"), readings, as_of=as_of).stale] == [
        "i"
    ]  # continuous: 60 days
    assert forecast_exact(_tree("binary"), readings, as_of=as_of).stale == ()  # events: 90 days
