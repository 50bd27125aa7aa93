"""Scoring and pooling: the scores against an independent implementation (scoringrules), the
time average against a day-by-day replay, the pools and the extremizing fit, scores on a
ledger with resolutions, the back-test through the API."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pytest
import scoringrules as sr
from scipy.optimize import minimize_scalar

from scenariocast.analysis.backtest import backtest as analysis_backtest
from scenariocast.analysis.backtest import load_resolutions, quarter_starts
from scenariocast.analysis.pool import (
    DEFAULT_EXTREMIZE,
    MIN_FIT_QUESTIONS,
    choose_extremizing,
    fit_extremizing,
    pool,
    pool_probability,
)
from scenariocast.analysis.score import (
    ScoreError,
    brier,
    calibration_table,
    change_days,
    log_score,
    resolved_questions,
    score,
    time_averaged_brier,
)
from scenariocast.api import backtest
from scenariocast.engines.exact import ExactModel
from scenariocast.errors import QueryError
from scenariocast.evidence.catalog import Catalog
from scenariocast.ledger import Ledger
from scenariocast.ledger.records import OutcomeResolution
from scenariocast.spec.load import load_tree
from tests.conftest import reading

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "example-harvest.yaml"
RIVAL = Path(__file__).resolve().parent / "fixtures" / "compare" / "harvest-imports-first.yaml"
BACKTEST = ROOT / "scenarios" / "backtest"


# ---------------------------------------------------------------------------------------------
# the scoring rules agree with scoringrules


def test_brier_and_log_score_agree_with_scoringrules_on_random_forecasts() -> None:
    rng = np.random.default_rng(7)
    p = rng.uniform(0.0, 1.0, size=500)
    p[:5] = [0.0, 1.0, 0.5, 1e-9, 1 - 1e-9]
    y = rng.integers(0, 2, size=500)
    ours_brier = np.array([brier(float(a), bool(b)) for a, b in zip(p, y, strict=True)])
    np.testing.assert_allclose(ours_brier, sr.brier_score(y, p), rtol=1e-12, atol=1e-15)
    inside = (p > 0) & (p < 1)
    ours_log = np.array(
        [log_score(float(a), bool(b)) for a, b in zip(p[inside], y[inside], strict=True)]
    )
    # rtol 1e-7: scoringrules takes 1 - p as p + y - 1, which loses digits near 0 and 1
    np.testing.assert_allclose(ours_log, sr.log_score(y[inside], p[inside]), rtol=1e-7)
    assert log_score(0.0, True) == math.inf and log_score(1.0, False) == math.inf
    assert log_score(1.0, True) == 0.0 and log_score(0.5, False) == pytest.approx(math.log(2))


def test_the_time_average_is_the_mean_over_days() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        start = dt.date(2026, 1, 1) + dt.timedelta(days=int(rng.integers(0, 30)))
        end = start + dt.timedelta(days=int(rng.integers(0, 200)))
        days = sorted(
            {start - dt.timedelta(days=int(rng.integers(0, 5)))}
            | {start + dt.timedelta(days=int(d)) for d in rng.integers(0, 250, size=6)}
        )
        path = [(d, float(rng.uniform())) for d in days]
        happened = bool(rng.integers(2))
        daily = []
        day = start
        while day <= end:
            p = [q for d, q in path if d <= day][-1]
            daily.append(brier(p, happened))
            day += dt.timedelta(days=1)
        assert time_averaged_brier(path, start, end, happened) == pytest.approx(np.mean(daily))


def test_the_forecast_changes_only_on_the_change_days() -> None:
    """The example's price counts for 90 days: a reading that ages out moves the forecast."""
    tree = load_tree(EXAMPLE)
    readings = [
        reading(1, "rice_price", "7400", "2026-01-10", "market_survey", "A"),
        reading(2, "distribution_report", "yes", "2026-02", "wire"),
        reading(3, "rice_price", "5100", "2026-03-20", "market_survey", "B"),
    ]
    start, end = dt.date(2026, 1, 1), dt.date(2026, 7, 31)
    days = change_days([tree], readings, start, end)
    assert dt.date(2026, 4, 11) in days  # 2026-01-10 + 91 days: out of the 90-day window
    model = ExactModel(tree)
    day = start
    while day <= end:
        p = model.forecast(readings, as_of=day, top=0).outcomes["rationing_returns"].probability
        last = max(d for d in days if d <= day)
        q = model.forecast(readings, as_of=last, top=0).outcomes["rationing_returns"].probability
        assert p == pytest.approx(q, abs=1e-15), day
        day += dt.timedelta(days=7)


def test_the_calibration_table() -> None:
    rng = np.random.default_rng(5)
    p = rng.uniform(size=300)
    y = rng.uniform(size=300) < p
    bins = calibration_table(list(zip(p.tolist(), y.tolist(), strict=True)), bins=5)
    assert [b.n for b in bins] == np.histogram(p, bins=5, range=(0, 1))[0].tolist()
    for b in bins:
        inside = (p >= b.lo) & ((p < b.hi) | (b.hi == 1.0))
        assert b.mean_forecast == pytest.approx(p[inside].mean())
        assert b.observed == pytest.approx(y[inside].mean())
    assert calibration_table([(1.0, True)], bins=4)[-1].n == 1
    with pytest.raises(QueryError):
        calibration_table([], bins=0)


# ---------------------------------------------------------------------------------------------
# pools


def test_the_pools_by_their_formulas() -> None:
    rng = np.random.default_rng(11)
    for _ in range(100):
        k = int(rng.integers(2, 5))
        p = rng.uniform(0.01, 0.99, size=k)
        w = rng.dirichlet(np.ones(k))
        z = float(np.sum(w * np.log(p / (1 - p))))
        assert pool_probability("linear", p.tolist(), w.tolist()) == pytest.approx(float(w @ p))
        geo_yes, geo_no = np.prod(p**w), np.prod((1 - p) ** w)
        assert pool_probability("log", p.tolist(), w.tolist()) == pytest.approx(
            geo_yes / (geo_yes + geo_no)
        )
        assert pool_probability("extremized", p.tolist(), w.tolist(), extremize=2.0) == (
            pytest.approx(1 / (1 + math.exp(-2.0 * z)))
        )
    assert pool_probability("log", [0.0, 0.3], [0.5, 0.5]) == 0.0
    with pytest.raises(QueryError, match="cannot be averaged"):
        pool_probability("log", [0.0, 1.0], [0.5, 0.5], names=["a", "b"])
    with pytest.raises(QueryError, match="unknown pooling method 'median'"):
        pool_probability("median", [0.2], [1.0])


def test_the_extremizing_fit_is_the_maximum_likelihood() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(0.0, 1.2, size=3000)
    y = rng.uniform(size=3000) < 1 / (1 + np.exp(-2.0 * z))
    a = fit_extremizing(z.tolist(), y.tolist())
    assert a is not None and abs(a - 2.0) < 0.15

    def negative_log_likelihood(b: float) -> float:
        q = 1 / (1 + np.exp(-b * z))
        return float(-np.sum(np.where(y, np.log(q), np.log1p(-q))))

    best = minimize_scalar(negative_log_likelihood, bounds=(0.25, 4.0), method="bounded")
    assert a == pytest.approx(best.x, abs=1e-4)
    # too few questions, or too few of one answer: the default
    assert (
        fit_extremizing(z[: MIN_FIT_QUESTIONS - 1].tolist(), y[: MIN_FIT_QUESTIONS - 1].tolist())
        is None
    )
    assert fit_extremizing([1.0] * 30, [True] * 30) is None
    assert choose_extremizing(None, [], []).value == DEFAULT_EXTREMIZE
    assert choose_extremizing(1.2, [], []).how == "given"
    with pytest.raises(QueryError, match="must be a number > 0"):
        choose_extremizing(0.0, [], [])


def test_pool_of_two_trees() -> None:
    a, b = load_tree(EXAMPLE), load_tree(RIVAL)
    readings = [reading(1, "rice_price", "7400", "2026-03-10", "market_survey", "A")]
    day = dt.date(2026, 4, 30)
    pa = (
        ExactModel(a).forecast(readings, as_of=day, top=0).outcomes["rationing_returns"].probability
    )
    pb = (
        ExactModel(b).forecast(readings, as_of=day, top=0).outcomes["rationing_returns"].probability
    )
    linear = pool([a, b], readings, method="linear", weights=[3, 1], as_of=day)
    assert linear.outcomes[0].pooled == pytest.approx(0.75 * pa + 0.25 * pb)
    ev = pool([a, b], readings, method="evidence", as_of=day)
    w = ev.weights[a.id]
    assert ev.outcomes[0].pooled == pytest.approx(w * pa + (1 - w) * pb)
    assert ev.log_evidence is not None and ev.n_common == 1
    ext = pool([a, b], readings, method="extremized", as_of=day)
    assert ext.extremizing is not None and ext.extremizing.how == "default"


# ---------------------------------------------------------------------------------------------
# scores on a ledger


def _res(
    rid: int, outcome: str, happened: bool, on: str, *, retracted: bool = False
) -> OutcomeResolution:
    return OutcomeResolution(
        rid, outcome, happened, dt.date.fromisoformat(on), "record", retracted=retracted
    )


@pytest.fixture
def team_ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(tmp_path / "team.db")
    catalog = Catalog.from_trees([load_tree(EXAMPLE), load_tree(RIVAL)])
    for ind, value, on, source, where in (
        ("rice_price", "5600", "2026-01-20", "market_survey", "A"),
        ("rice_price", "9800", "2026-03-15", "market_survey", "A"),
        ("distribution_report", "yes", "2026-04", "wire", None),
        ("crackdowns", "3", "2026-05", "wire", None),
    ):
        ledger.observe(ind, value, observed=on, source=source, location=where, catalog=catalog)
    from scenariocast.api import forecast

    forecast(EXAMPLE, ledger, as_of=dt.date(2026, 4, 1), by="ana")
    forecast(RIVAL, ledger, as_of=dt.date(2026, 4, 1), by="bo")
    ledger.resolve("rationing_returns", True, on="2026-06-01", source="two outlets", by="cy")
    return ledger


def test_scores_on_a_ledger(team_ledger: Ledger) -> None:
    a, b = load_tree(EXAMPLE), load_tree(RIVAL)
    readings = team_ledger.readings()
    s = score([a, b], readings, team_ledger.resolutions(), snapshots=team_ledger.history())
    assert s.forecasters == (
        "example-harvest",
        "harvest-imports-first",
        "linear pool",
        "log pool",
        "extremized pool",
        "evidence pool",
    )
    rows = {r.forecaster: r for r in s.rows}
    for tree in (a, b):
        row = rows[tree.id]
        p = ExactModel(tree).forecast(readings, as_of=dt.date(2026, 5, 31), top=0)
        # the timeline sums the same factors in another order: equal to rounding
        assert row.probability == pytest.approx(p.outcomes["rationing_returns"].probability, 1e-12)
        assert row.brier == pytest.approx((1 - row.probability) ** 2)
        assert row.log_score == pytest.approx(-math.log(row.probability))
        assert row.as_of == dt.date(2026, 5, 31)
        # no horizon: open from the day of the tree's first reading
        assert row.opens == dt.date(2026, 1, 20) and row.days == 132
        assert row.recorded is not None and row.recorded.as_of == dt.date(2026, 4, 1)
    assert rows["example-harvest"].recorded.created_by == "ana"  # type: ignore[union-attr]
    assert rows["harvest-imports-first"].recorded.created_by == "bo"  # type: ignore[union-attr]
    pa, pb = rows[a.id].probability, rows[b.id].probability
    assert rows["linear pool"].probability == pytest.approx((pa + pb) / 2)
    assert rows["linear pool"].trees == (a.id, b.id)
    assert s.extremizing["rationing_returns"].how == "default"
    assert [m.n for m in s.summary()] == [1] * 6
    # the same ledger gives the same numbers
    again = score([a, b], readings, team_ledger.resolutions(), snapshots=team_ledger.history())
    assert json.dumps(again.to_dict(), sort_keys=True) == json.dumps(s.to_dict(), sort_keys=True)


def test_which_resolution_answers_which_question() -> None:
    nk = load_tree(ROOT / "scenarios" / "nk-2026.yaml")
    old = load_tree(BACKTEST / "nk-2025.yaml")
    resolutions = [
        _res(1, "china_realignment", True, "2025-09-05"),
        _res(2, "china_realignment", False, "2026-06-01", retracted=True),
    ]
    assert list(resolved_questions(old, resolutions)) == ["china_realignment"]
    assert resolved_questions(nk, resolutions) == {}  # 2025 is not in the 2026 question's period
    two = [*resolutions, _res(3, "china_realignment", True, "2025-10-01")]
    with pytest.raises(ScoreError, match=r"2 resolutions that stand: #1 .* #3"):
        resolved_questions(old, two)


def test_the_back_test_through_the_api_is_the_shipped_one(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    ledger.import_csv(
        ROOT / "scenarios" / "evidence" / "nk-indicators-2023-2025.csv",
        catalog=Catalog.from_dir(ROOT / "scenarios"),
    )
    path = BACKTEST / "nk-2025.yaml"
    tree = load_tree(path)
    ours = backtest(
        path,
        ledger,
        as_of=dt.date(2025, 12, 31),
        every="quarter",
        resolutions=BACKTEST / "resolutions.yaml",
    )
    theirs = analysis_backtest(
        tree, ledger.readings(), load_resolutions(BACKTEST / "resolutions.yaml")[2025]
    )
    assert ours.dates == quarter_starts(tree) == theirs.dates
    for oid in tree.outcomes:
        assert ours.probabilities[oid] == theirs.probabilities[oid]
        assert ours.brier(oid) == theirs.brier(oid)
