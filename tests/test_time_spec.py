"""Validation of horizons, dynamic and calendar nodes, outcome timing and report correlation.

Each ``tests/fixtures/spec/time/wrong_*.yaml`` is a copy of ``valid_dynamic.yaml`` with one
defect; each must give exactly one problem, at the right field and line, and name it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from scenariocast.cli import app
from scenariocast.errors import SpecError
from scenariocast.spec.load import load_tree
from scenariocast.spec.time import Steps, step_end, step_start

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "spec" / "time"

# fixture -> (field path, a regular expression the message matches, text on the problem's line)
CASES: dict[str, tuple[str, str, str]] = {
    "no_horizon": ("nodes.season.calendar", r"the tree needs a horizon", "calendar:"),
    "horizon_start": (
        "horizon.start",
        r"2026-01-15 is not the first day of a month .*did you mean 2026-01-01\?",
        "start:",
    ),
    "horizon_end_before_start": ("horizon.end", r"is before the start 2026-01-01", "end:"),
    "horizon_step": ("horizon.step", r"'week', 'month' or 'quarter', got 'fortnight'", "step:"),
    "both_dynamics": (
        "nodes.controls.dynamic",
        r"give either persistence or transitions",
        "dynamic:",
    ),
    "persistence_state": (
        "nodes.shock.dynamic.persistence.sever",
        r"unknown state 'sever' \(did you mean 'severe'\?\)",
        "persistence:",
    ),
    "persistence_range": (
        "nodes.shock.dynamic.persistence",
        r"less than or equal to 1, got 1\.2",
        "persistence:",
    ),
    "transition_missing_row": (
        "nodes.controls.dynamic.transitions",
        r"no row for controls=heavy, shock=severe",
        "transitions:",
    ),
    "transition_sum": (
        "nodes.controls.dynamic.transitions.2.then",
        r"probabilities sum to 1\.1, not 1",
        "heavy: 0.8}",
    ),
    "transition_no_self": (
        "nodes.controls.dynamic.transitions.0.when",
        r"no state given for controls \(its state at the previous step\)",
        "when: {shock: calm}",
    ),
    "static_child_of_dynamic": (
        "nodes.response.parents.0",
        r"does not change over time but its parent 'controls' does: make it dynamic",
        "parents: [controls]",
    ),
    "no_timing": ("outcomes.severe_twice", r"node 'shock' is dynamic: say when", "severe_twice:"),
    "k_without_at_least": ("outcomes.severe_twice.k", r"k applies to timing at_least only", "k: 2"),
    "k_too_large": ("outcomes.severe_twice.k", r"k is 13 but the horizon has 12 steps", "k: 13"),
    "at_least_without_k": ("outcomes.severe_twice", r"timing at_least needs k", "severe_twice:"),
    "timing_on_static": (
        "outcomes.imports_low.timing",
        r"node 'imports' does not change over time: timing applies to outcomes on dynamic",
        "timing: end",
    ),
    "resolve_before_end": (
        "outcomes.severe_twice.resolve_by",
        r"2026-06-30 is before the horizon's end 2026-12-31",
        "resolve_by: 2026-06-30",
    ),
    "calendar_month_twice": (
        "nodes.season.calendar.other",
        r"month 8 is also in state 'lean'",
        "calendar:",
    ),
    "calendar_month_missing": ("nodes.season.calendar", r"^month 12 is in no state$", "calendar:"),
    "calendar_with_parents": (
        "nodes.season.parents",
        r"a calendar node takes no parents",
        "parents: [imports]",
    ),
    "correlation_range": (
        "indicators.rice_price.within_report_correlation",
        r"less than 1, got 1\.0",
        "within_report_correlation: 1.0",
    ),
    "correlation_binary": (
        "indicators.crackdown.within_report_correlation",
        r"within_report_correlation is for continuous indicators, not binary",
        "within_report_correlation: 0.5",
    ),
    "calendar_only_indicator": (
        "indicators.lean_report.depends_on",
        r"depends only on calendar nodes",
        "depends_on: [season]",
    ),
    "stale_days": (
        "indicators.rice_price.stale_after_days",
        r"greater than 0, got -5",
        "stale_after_days: -5",
    ),
}


def test_every_fixture_has_a_case() -> None:
    found = {p.stem.removeprefix("wrong_") for p in FIXTURES.glob("wrong_*.yaml")}
    assert found == set(CASES)


def test_the_valid_fixture_loads() -> None:
    tree = load_tree(FIXTURES / "valid_dynamic.yaml")
    assert tree.steps is not None and tree.steps.n == 12
    assert [n.kind for n in tree.nodes.values()] == ["static", "calendar", "dynamic", "dynamic"]
    shock = tree.nodes["shock"]
    assert shock.transition is not None
    # persistence 0.9 for calm: stay with 0.9, else draw from the table given the parents
    np.testing.assert_allclose(shock.transition[0, 0, 0, :], [0.9 + 0.1 * 0.8, 0.1 * 0.2])
    np.testing.assert_allclose(shock.transition[1, 1, 1, :], [0.3 * 0.7, 0.7 + 0.3 * 0.3])
    assert tree.nodes["season"].calendar == (1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1)


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_time_fixture_is_reported(name: str) -> None:
    file = FIXTURES / f"wrong_{name}.yaml"
    path, pattern, anchor = CASES[name]
    with pytest.raises(SpecError) as info:
        load_tree(file)
    problems = info.value.problems
    # a misspelt state is also a missing one, as in probability tables
    assert len(problems) == (2 if name == "persistence_state" else 1), [str(p) for p in problems]
    (problem,) = [p for p in problems if re.search(pattern, p.message)]
    assert ".".join(str(p) for p in problem.path) == path
    lines = file.read_text().splitlines()
    assert anchor in lines[(problem.line or 0) - 1], (problem.line, anchor)


def test_validate_reports_the_line_and_exits_1() -> None:
    result = CliRunner().invoke(app, ["validate", str(FIXTURES / "wrong_k_too_large.yaml")])
    assert result.exit_code == 1
    assert "wrong_k_too_large.yaml:" in result.output and "k is 13" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("unit", "day", "start", "end"),
    [
        ("month", "2026-02-14", "2026-02-01", "2026-02-28"),
        ("month", "2024-02-29", "2024-02-01", "2024-02-29"),
        ("quarter", "2026-05-20", "2026-04-01", "2026-06-30"),
        ("quarter", "2026-12-31", "2026-10-01", "2026-12-31"),
        ("week", "2026-01-01", "2025-12-29", "2026-01-04"),  # a Thursday; ISO week 1 of 2026
        ("week", "2026-03-09", "2026-03-09", "2026-03-15"),
    ],
)
def test_steps_are_calendar_periods(unit: str, day: str, start: str, end: str) -> None:
    import datetime as dt

    d = dt.date.fromisoformat(day)
    assert step_start(unit, d) == dt.date.fromisoformat(start)  # type: ignore[arg-type]
    assert step_end(unit, d) == dt.date.fromisoformat(end)  # type: ignore[arg-type]


def test_step_numbers_and_labels() -> None:
    import datetime as dt

    months = Steps("month", dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    assert months.n == 12
    assert months.index(dt.date(2025, 10, 26)) == -3
    assert months.index(dt.date(2027, 1, 1)) == 12
    assert [months.label(i) for i in (-3, 0, 11)] == ["2025-10", "2026-01", "2026-12"]
    assert months.first_day(-3) == dt.date(2025, 10, 1)
    assert months.last_day(1) == dt.date(2026, 2, 28)
    quarters = Steps("quarter", dt.date(2026, 1, 1), dt.date(2027, 6, 30))
    assert quarters.n == 6 and quarters.label(5) == "2027-Q2"
    assert quarters.index(dt.date(2025, 12, 31)) == -1
    weeks = Steps("week", dt.date(2025, 12, 29), dt.date(2026, 3, 1))
    assert weeks.n == 9 and weeks.label(0) == "2026-W01"
    assert weeks.index(dt.date(2025, 12, 28)) == -1
    assert weeks.month(1) == 1


# ---------------------------------------------------------------------------------------------
# the command line on a tree that evolves


def _cli(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    import shutil

    scen = tmp_path / "scenarios"
    scen.mkdir(exist_ok=True)
    shutil.copy(FIXTURES / "valid_dynamic.yaml", scen / "valid_dynamic.yaml")
    env = {"SCENARIOCAST_DB": str(tmp_path / "ledger.db"), "SCENARIOCAST_SCENARIOS": str(scen)}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_observe_a_survey_and_forecast_month_by_month(tmp_path: Path) -> None:
    import json

    tree = str(tmp_path / "scenarios" / "valid_dynamic.yaml")
    code, out, _ = _cli(tmp_path, "show", str(FIXTURES / "valid_dynamic.yaml"))
    assert code == 0
    assert "Horizon: 2026-01-01 to 2026-12-31, 12 steps of a month" in out
    assert "dynamic (persistence calm 0.9, severe 0.7)" in out and "in 2+ steps" in out
    for city, value in (("Pyongyang", "11800"), ("Hyesan", "12500"), ("Sinuiju", "11000")):
        code, _, err = _cli(
            tmp_path, "observe", "rice_price", value, "--on", "2026-05-14",
            "--source", "survey", "--location", city,
        )  # fmt: skip
        assert code == 0, err
    code, out, err = _cli(tmp_path, "forecast", tree, "--as-of", "2026-05-31")
    assert code == 0, err
    assert "3 observations in 1 reports from 3 readings" in out
    assert "shock, % by step from 2026-01 to 2026-12" in out and "05*" in out
    assert "Most probable states at the horizon's end, 2026-12" in out
    code, out, err = _cli(tmp_path, "forecast", tree, "--as-of", "2026-05-31", "--json")
    data = json.loads(out)
    path = data["steps"]["shock"]
    assert [p["kind"] for p in path] == ["estimated"] * 5 + ["predicted"] * 7
    # a survey of three cities at severe levels, from a source right 80% of the time
    assert path[4]["probabilities"]["severe"] > 0.8
    assert path[0]["probabilities"]["severe"] < path[4]["probabilities"]["severe"]
    assert data["outcomes"]["severe_twice"]["timing"] == "at_least"
    assert data["outcomes"]["severe_twice"]["k"] == 2
    code, out, err = _cli(tmp_path, "explain", tree, "--as-of", "2026-05-31")
    assert code == 0, err
    assert "survey report 2026-05-14, 3 readings (#1, #2, #3)" in out
    # a stale survey is named in the forecast and in explain --json
    code, out, _ = _cli(tmp_path, "forecast", tree, "--as-of", "2026-09-30")
    assert "rice_price: newest reading 2026-05-14, 139 days before the as-of date" in out
    code, out, _ = _cli(tmp_path, "explain", tree, "--as-of", "2026-09-30", "--json")
    assert json.loads(out)["stale"][0]["indicator"] == "rice_price"


def test_assumptions_by_step_at_the_command_line(tmp_path: Path) -> None:
    import json

    tree = str(tmp_path / "scenarios" / "valid_dynamic.yaml")
    code, _, err = _cli(tmp_path, "ledger", "init")  # an empty ledger of its own
    assert code == 0, err
    args = ("forecast", tree, "--json", "--as-of", "2026-01-15")
    code, out, err = _cli(tmp_path, *args, "--given", "shock@2026-07=severe")
    assert code == 0, err
    data = json.loads(out)
    assert data["given"] == {"shock@2026-07": "severe"}
    assert data["steps"]["shock"][6]["probabilities"]["severe"] == 1.0
    assert data["steps"]["shock"][0]["probabilities"]["severe"] < 1.0
    code, out, err = _cli(tmp_path, *args, "--given", "imports@2026-07=low")
    assert code == 1 and "does not change over time" in err and "Traceback" not in err
    code, out, err = _cli(tmp_path, *args, "--given", "season=lean")
    assert code == 1 and "set by the calendar" in err


def test_every_example_in_the_docs_validates_against_the_json_schema() -> None:
    """The schema `scenariocast schema` prints accepts what the validator accepts."""
    import json
    import re as regex

    import jsonschema
    import yaml

    from scenariocast.spec.model import ScenarioTree

    schema = json.loads(json.dumps(ScenarioTree.model_json_schema()))
    doc = (Path(__file__).resolve().parent.parent / "docs" / "scenario-format.md").read_text()
    blocks = regex.findall(r"```yaml\n(.*?)```", doc, regex.DOTALL)
    whole = [b for b in blocks if "nodes:" in b and b.lstrip().startswith("id:")]
    assert len(whole) >= 2  # the complete example and the dynamic one
    for block in whole:
        data = json.loads(json.dumps(yaml.safe_load(block), default=str))  # dates as text
        jsonschema.validate(data, schema)
    for fixture in sorted(FIXTURES.glob("valid_*.yaml")):
        data = json.loads(json.dumps(yaml.safe_load(fixture.read_text()), default=str))
        jsonschema.validate(data, schema)
