"""Back-tests (analysis.backtest), the within-report spread (analysis.correlation), and the
shipped back-test of the North Korea trees: its trees are the 2026 trees moved in time, and the
table in scenarios/backtest/README.md is exactly what scripts/backtest.py prints."""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from scenariocast.analysis.backtest import (
    Resolution,
    backtest,
    brier_score,
    load_resolutions,
    quarter_starts,
)
from scenariocast.analysis.correlation import report_spread
from scenariocast.errors import QueryError, ResolutionError
from scenariocast.evidence.readings import ObservedDate, Reading
from scenariocast.report.text import render_backtest
from scenariocast.spec.load import load_tree, parse_tree

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "backtest"
BACKTEST = ROOT / "scenarios" / "backtest"
DOC = ROOT / "docs" / "scenario-format.md"


@pytest.fixture(scope="module")
def lean_year() -> object:
    """The dynamic example of docs/scenario-format.md."""
    block = re.search(
        r"```yaml\n(.*?)```", DOC.read_text().split("## A dynamic example", 1)[1], re.DOTALL
    )
    assert block is not None
    return parse_tree(block.group(1), file="lean-year.yaml")


def _reading(
    rid: int, value: str, on: str, location: str = "Pyongyang", source: str = "survey"
) -> Reading:
    return Reading(
        id=rid,
        indicator="rice_price",
        value=value,
        observed=ObservedDate.parse(on),
        source=source,
        location=location,
    )


# ---------------------------------------------------------------------------------------------
# scoring and dates


def test_brier_score() -> None:
    assert brier_score([1.0, 1.0], True) == 0.0
    assert brier_score([0.5], False) == 0.25
    assert brier_score([0.2, 0.4], True) == pytest.approx((0.64 + 0.36) / 2)
    with pytest.raises(ValueError, match="no forecast"):
        brier_score([], True)


def test_quarter_starts(lean_year: object) -> None:
    assert quarter_starts(lean_year) == (  # type: ignore[arg-type]
        dt.date(2026, 1, 1),
        dt.date(2026, 4, 1),
        dt.date(2026, 7, 1),
        dt.date(2026, 10, 1),
    )
    static = load_tree(ROOT / "examples" / "example-harvest.yaml")
    with pytest.raises(QueryError, match="no horizon"):
        quarter_starts(static)


def test_a_backtest_uses_only_the_readings_observed_by_each_date(lean_year: object) -> None:
    readings = [_reading(1, "16000", "2026-03-10"), _reading(2, "17000", "2026-08-10")]
    resolutions = {
        "crisis_in_2026": Resolution(happened=True, basis="settled", record="x"),
        "controls_at_year_end": Resolution(happened=None, basis="unsettled", record="y"),
    }
    res = backtest(lean_year, readings, resolutions)  # type: ignore[arg-type]
    probs = res.probabilities["crisis_in_2026"]
    assert res.dates == quarter_starts(lean_year)  # type: ignore[arg-type]
    assert probs[0] == pytest.approx(res.priors["crisis_in_2026"])  # nothing observed by 1 Jan
    assert probs[1] > probs[0]  # the March crisis price counts from 1 April
    assert res.brier("crisis_in_2026") == pytest.approx(brier_score(probs, True))
    assert res.prior_brier("crisis_in_2026") == pytest.approx(
        (1 - res.priors["crisis_in_2026"]) ** 2
    )
    assert res.brier("controls_at_year_end") is None
    assert res.brier("crisis_two_months") is None  # not resolved at all
    table = render_backtest([res])
    assert "| example-lean-year | 2026 | crisis_in_2026 | yes |" in table
    assert "not settled" in table
    assert "mean of 1" in table
    with pytest.raises(QueryError, match="no outcome 'riots'"):
        backtest(lean_year, readings, {"riots": resolutions["crisis_in_2026"]})  # type: ignore[arg-type]


def test_resolutions_file() -> None:
    years = load_resolutions(FIXTURES / "resolutions.yaml")
    assert years[2026]["crisis_in_2026"].happened is True
    assert years[2026]["controls_at_year_end"].basis == "unsettled"


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("null_settled", r":4: years\.2026\.crisis_in_2026: `happened` is null exactly when"),
        (
            "basis",
            r":6: years\.2026\.crisis_in_2026\.basis: .*'settled', 'inferred' or 'unsettled'",
        ),
        (
            "key",
            r":5: years\.2026\.crisis_in_2026: unknown key 'happend' \(did you mean 'happened'\?\)",
        ),
        ("no_record", r":4: years\.2026\.crisis_in_2026: missing required key 'record'"),
    ],
)
def test_broken_resolutions_files(name: str, pattern: str) -> None:
    with pytest.raises(ResolutionError) as err:
        load_resolutions(FIXTURES / f"wrong_{name}.yaml")
    lines = [str(p) for p in err.value.problems]
    assert any(re.search(pattern, line) for line in lines), lines


# ---------------------------------------------------------------------------------------------
# the within-report spread


def test_report_spread_recovers_the_correlation(lean_year: object) -> None:
    """Simulated surveys of three cities with a known city spread give back rho."""
    rng = np.random.default_rng(7)
    sigma = 0.2  # the lean-year tree's narrowest scale for rice_price
    city_sd = 0.05
    readings, rid = [], 0
    for k in range(200):
        day = dt.date(2024, 1, 1) + dt.timedelta(days=7 * k)
        common = rng.normal(0.3, 0.15)
        for city in ("Pyongyang", "Sinuiju", "Hyesan"):
            rid += 1
            value = 5000 * math.exp(common + rng.normal(0.0, city_sd))
            readings.append(_reading(rid, f"{value:.0f}", day.isoformat(), city))
    readings.append(_reading(rid + 1, "6000", "2023-06-01"))  # alone in its report: no spread
    est = report_spread(lean_year, readings, "rice_price")  # type: ignore[arg-type]
    assert (est.n_reports, est.n_readings, est.df) == (200, 600, 400)
    assert est.scale == sigma
    assert est.within_sd == pytest.approx(city_sd, rel=0.1)
    assert est.correlation == math.floor(100 * (1 - (est.within_sd / sigma) ** 2)) / 100
    assert 0.9 < est.correlation < 0.97


def test_report_spread_without_reports_of_two(lean_year: object) -> None:
    est = report_spread(lean_year, [_reading(1, "6000", "2026-01-05")], "rice_price")  # type: ignore[arg-type]
    assert (est.n_reports, est.within_sd, est.correlation) == (0, None, None)
    with pytest.raises(QueryError, match="binary"):
        report_spread(lean_year, [], "crackdown_report")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# the shipped back-test


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "backtest_script", ROOT / "scripts" / "backtest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("year", [2024, 2025])
@pytest.mark.parametrize("source", ["nk-2026", "nk-2026-china-first"])
def test_backtest_trees_are_the_2026_trees_moved_in_time(source: str, year: int) -> None:
    script = _script()
    path = BACKTEST / f"{script.SOURCES[source].format(year=year)}.yaml"
    text = (ROOT / "scenarios" / f"{source}.yaml").read_text(encoding="utf-8")
    assert path.read_text(encoding="utf-8") == script.shifted_text(text, source, year)
    old, new = load_tree(ROOT / "scenarios" / f"{source}.yaml"), load_tree(path)
    assert new.spec.nodes == old.spec.nodes
    assert new.spec.indicators == old.spec.indicators
    assert new.spec.sources == old.spec.sources
    assert (new.steps.start, new.steps.end) == (dt.date(year, 1, 1), dt.date(year, 12, 31))
    for oid, out in new.spec.outcomes.items():
        was = old.spec.outcomes[oid]
        assert (out.node, out.states, out.timing, out.k) == (
            was.node,
            was.states,
            was.timing,
            was.k,
        )
        assert out.resolve_by == dt.date(year, 12, 31)
        assert "2026" not in out.resolution and "2026" not in out.question
    bar = {2024: "2,320", 2025: "2,200"}[year]
    assert f"above USD {bar} million" in new.spec.outcomes["china_realignment"].resolution


def test_every_backtest_question_is_resolved_with_its_record() -> None:
    years = load_resolutions(BACKTEST / "resolutions.yaml")
    for year in (2024, 2025):
        tree = load_tree(BACKTEST / f"nk-{year}.yaml")
        assert set(years[year]) == set(tree.outcomes)
        for res in years[year].values():
            assert len(res.record) > 100
            assert res.basis == "unsettled" or "CSV" in res.record or "article" in res.record


def test_the_readme_table_is_the_script_output() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "backtest.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.strip()
    readme = (BACKTEST / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- backtest-table:start -->", 1)[1].split(
        "<!-- backtest-table:end -->"
    )[0]
    assert table.strip() == out
    assert out.count("\n") >= 20
