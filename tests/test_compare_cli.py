"""The commands of a team of forecasters: resolve, resolutions, retract-resolution, score,
compare, pool, backtest; who made each entry; what they import."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scenariocast.cli import app
from tests.report_support import NK_EVIDENCE, Page

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "example-harvest.yaml"
RIVAL = Path(__file__).resolve().parent / "fixtures" / "compare" / "harvest-imports-first.yaml"
NK = ROOT / "scenarios" / "nk-2026.yaml"
NK_CHINA = ROOT / "scenarios" / "nk-2026-china-first.yaml"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    scen = tmp_path / "scenarios"
    scen.mkdir()
    shutil.copy(EXAMPLE, scen / EXAMPLE.name)
    shutil.copy(RIVAL, scen / RIVAL.name)
    return {
        "SCENARIOCAST_DB": str(tmp_path / "ledger.db"),
        "SCENARIOCAST_SCENARIOS": str(scen),
        "SCENARIOCAST_USER": "ana",
    }


def run(env: dict[str, str], *args: str, code: int = 0) -> tuple[str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, result.output
    return result.stdout, result.stderr


def _readings(env: dict[str, str]) -> None:
    for args in (
        (
            "rice_price",
            "5600",
            "--on",
            "2026-01-20",
            "--source",
            "market_survey",
            "--location",
            "A",
        ),
        (
            "rice_price",
            "9800",
            "--on",
            "2026-03-15",
            "--source",
            "market_survey",
            "--location",
            "A",
        ),
        ("distribution_report", "yes", "--on", "2026-04", "--source", "wire"),
    ):
        run(env, "observe", *args)


def test_a_team_resolves_and_scores(env: dict[str, str], tmp_path: Path) -> None:
    _readings(env)
    run(env, "forecast", str(EXAMPLE), "--as-of", "2026-04-30", "--by", "bo")
    run(env, "forecast", str(RIVAL), "--as-of", "2026-04-30")  # by $SCENARIOCAST_USER
    history = json.loads(run(env, "history", "--json")[0])
    assert [h["created_by"] for h in history] == ["bo", "ana"]
    assert "bo" in run(env, "history")[0]
    out, _ = run(
        env, "resolve", "rationing_returns", "no", "--on", "2026-05-01", "--source", "a rumour"
    )
    assert out.startswith("recorded resolution #1: rationing_returns no on 2026-05-01")
    # resolved already: refused, naming the standing resolution and how to retract it
    _, err = run(
        env,
        "resolve",
        "rationing_returns",
        "yes",
        "--on",
        "2026-06-01",
        "--source",
        "two outlets",
        code=1,
    )
    assert "already resolved: resolution #1 says no on 2026-05-01" in err
    assert "retract-resolution 1" in err
    run(env, "retract-resolution", "1", "--reason", "the rumour was wrong", "--by", "cy")
    _, err = run(env, "retract-resolution", "1", "--reason", "again", code=1)
    assert "already retracted" in err
    run(
        env,
        "resolve",
        "rationing_returns",
        "yes",
        "--on",
        "2026-06-01",
        "--source",
        "two outlets",
        "--note",
        "<b>not bold</b>",
        "--by",
        "dee",
    )
    listed = json.loads(run(env, "resolutions", "--json")[0])
    assert [(r["id"], r["answer"], r["retracted"], r["entered_by"]) for r in listed] == [
        (1, "no", True, "ana"),
        (2, "yes", False, "dee"),
    ]
    assert listed[0]["retracted_by"] == "cy"
    assert "retracted: the rumour was wrong" in run(env, "resolutions")[0]
    assert "resolutions: 2 (1 retracted)" in run(env, "info")[0]

    plot = tmp_path / "calibration.svg"
    out, err = run(env, "score", "--plot", str(plot))
    assert "example-harvest" in out and "evidence pool" in out and "calibration" in out
    assert plot.read_bytes().startswith(b"<?xml") and f"written to {plot}" in err
    data = json.loads(run(env, "score", "--json")[0])
    rows = {r["forecaster"]: r for r in data["scores"]}
    assert rows["example-harvest"]["resolution"] == 2
    assert rows["example-harvest"]["happened"] is True
    assert rows["example-harvest"]["recorded"]["by"] == "bo"
    assert rows["harvest-imports-first"]["recorded"]["by"] == "ana"
    assert set(rows) == {
        "example-harvest",
        "harvest-imports-first",
        "linear pool",
        "log pool",
        "extremized pool",
        "evidence pool",
    }
    again = json.loads(run(env, "score", "--json")[0])
    assert again == data  # the same ledger, the same numbers
    only = json.loads(run(env, "score", str(EXAMPLE), "--no-pools", "--json")[0])
    assert [r["forecaster"] for r in only["scores"]] == ["example-harvest"]

    back = json.loads(run(env, "backtest", str(EXAMPLE), "--as-of", "2026-07-01", "--json")[0])
    assert [p["as_of"] for p in back["trajectory"]] == ["2026-01-20", "2026-03-15", "2026-04-30"]
    score_ = back["scores"]["rationing_returns"]
    assert score_["resolved_on"] == "2026-06-01" and score_["forecasts_scored"] == 3
    text = run(env, "backtest", str(EXAMPLE), "--as-of", "2026-07-01", "--every", "month")[0]
    assert "2026-02-01" in text and "Brier of the prior" in text


def test_compare_and_pool_at_the_command_line(env: dict[str, str], tmp_path: Path) -> None:
    _readings(env)
    trees = (str(EXAMPLE), str(RIVAL))
    data = json.loads(run(env, "compare", *trees, "--as-of", "2026-04-30", "--json")[0])
    fit = data["evidence"]
    assert fit["common_readings"] == 2  # the January price is superseded by March's in both
    weights = fit["posterior_weight"]
    assert sum(weights.values()) == pytest.approx(1.0)
    text = run(env, "compare", *trees, "--as-of", "2026-04-30")[0]
    assert "log Bayes factor example-harvest against harvest-imports-first" in text
    assert "probabilities harvest: the same parents, other numbers" in text
    for method in ("linear", "log", "extremized", "evidence"):
        pooled = json.loads(
            run(env, "pool", *trees, "--method", method, "--as-of", "2026-04-30", "--json")[0]
        )
        assert 0.0 < pooled["outcomes"]["rationing_returns"]["pooled"] < 1.0
    pooled = json.loads(
        run(env, "pool", *trees, "--method", "evidence", "--as-of", "2026-04-30", "--json")[0]
    )
    assert pooled["weights"] == weights
    assert (
        "extremizing factor 1.5 (the default"
        in run(env, "pool", *trees, "--method", "extremized", "--as-of", "2026-04-30")[0]
    )
    # no reading in common: a note, not an error
    _, err = run(env, "compare", *trees, "--as-of", "2025-01-01")
    assert "count no reading in common" in err


def test_the_nk_comparison_page(tmp_path: Path) -> None:
    env = {
        "SCENARIOCAST_DB": str(tmp_path / "l.db"),
        "SCENARIOCAST_SCENARIOS": str(ROOT / "scenarios"),
    }
    run(env, "import", str(NK_EVIDENCE))
    out = tmp_path / "cmp"
    (out).mkdir()
    (out / "notes.txt").write_text("kept")
    _, err = run(env, "compare", str(NK), str(NK_CHINA), "--as-of", "2026-01-15", "--out", str(out))
    assert sorted(p.name for p in out.iterdir()) == ["compare.html", "compare.json", "notes.txt"]
    data = json.loads((out / "compare.json").read_text())
    html = (out / "compare.html").read_text()
    page = Page(html)
    assert [a for a in page.attrs("tr", "data-outcome")] == list(data["outcomes"])
    averages = [float(x) for x in page.attrs("tr", "data-average")]
    assert averages == [o["model_average"] for o in data["outcomes"].values()]
    assert "<script" not in html.lower()
    assert "wrote" in err and "compare.html" in err


@pytest.mark.parametrize(
    "args",
    [
        ["compare", str(EXAMPLE), str(RIVAL), "--json"],
        ["pool", str(EXAMPLE), str(RIVAL), "--method", "evidence", "--json"],
        ["score", "--json"],
        ["backtest", str(EXAMPLE), "--json"],
        ["resolutions", "--json"],
    ],
    ids=lambda a: a[0],
)
def test_commands_that_do_not_draw_import_no_heavy_library(
    env: dict[str, str], args: list[str]
) -> None:
    _readings(env)
    run(env, "resolve", "rationing_returns", "yes", "--on", "2026-06-01", "--source", "x")
    code = (
        "import sys\n"
        "from scenariocast.cli import app\n"
        f"sys.argv = ['scenariocast', *{args!r}]\n"
        "try:\n    app()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = ('pymc', 'arviz', 'pytensor', 'pandas', 'jinja2', 'matplotlib', 'scipy')\n"
        "heavy = sorted(m for m in heavy if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env={**env}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stderr
