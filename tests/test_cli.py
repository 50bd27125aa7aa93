"""Every command of the command line, including bad input: exit code, message, ledger unchanged."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scenariocast.cli import app
from tests.ledger_support import FIXTURES, dump

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "example-harvest.yaml"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    scen = tmp_path / "scenarios"
    scen.mkdir()
    shutil.copy(EXAMPLE, scen / EXAMPLE.name)
    return {"SCENARIOCAST_DB": str(tmp_path / "ledger.db"), "SCENARIOCAST_SCENARIOS": str(scen)}


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def ledger_rows(env: dict[str, str]) -> dict[str, list[tuple[object, ...]]]:
    from scenariocast.ledger import Ledger

    return dump(Ledger(env["SCENARIOCAST_DB"]))


# the readings of these tests are from spring 2026: forecast as of then (the price's window is
# 90 days before the as-of date)
AS_OF = ("--as-of", "2026-04-30")


def observe_ok(env: dict[str, str], *extra: str) -> None:
    code, out, err = run(
        env, "observe", "distribution_report", "yes", "--on", "2026-04", "--source", "wire", *extra
    )
    assert code == 0, err
    assert "recorded reading #" in out


def test_version_and_help() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("scenariocast ")
    for cmd in [
        "validate",
        "show",
        "schema",
        "info",
        "observe",
        "import",
        "evidence",
        "retract",
        "forecast",
        "history",
        "explain",
        "report",
        "watch",
        "sensitivity",
    ]:
        r = CliRunner().invoke(app, [cmd, "--help"])
        assert r.exit_code == 0, cmd
        assert "Usage" in r.stdout


def test_wrong_usage_exits_2(env: dict[str, str]) -> None:
    code, _, _ = run(env, "forecast")
    assert code == 2
    code, _, _ = run(env, "no-such-command")
    assert code == 2
    code, _, _ = run(env, "retract", "not-a-number", "--reason", "x")
    assert code == 2


def test_validate_show_schema_info(env: dict[str, str]) -> None:
    code, out, _ = run(env, "validate")
    assert code == 0 and "ok: " in out and "example-harvest" in out
    code, out, _ = run(env, "show", str(EXAMPLE))
    assert code == 0
    for word in ("weather", "rationing_returns", "rice_price", "market_survey"):
        assert word in out
    code, out, _ = run(env, "schema")
    assert code == 0 and "nodes" in json.loads(out)["properties"]
    code, out, _ = run(env, "info")
    assert code == 0 and env["SCENARIOCAST_DB"] in out and "example-harvest.yaml" in out
    assert "none there yet" in out
    assert not Path(env["SCENARIOCAST_DB"]).exists()  # info creates nothing
    observe_ok(env)
    code, out, _ = run(env, "info")
    assert code == 0 and "readings: 1 (0 retracted)" in out


def test_observe_evidence_retract_forecast_history_explain(env: dict[str, str]) -> None:
    observe_ok(env)
    code, out, err = run(
        env,
        "observe",
        "rice_price",
        "12,500",
        "--on",
        "2026-03-02",
        "--source",
        "market_survey",
        "--location",
        "Pyongyang",
        "--unit",
        "KPW/kg",
        "--note",
        "weekly survey",
        "--url",
        "https://example.org/a",
    )
    assert code == 0, err
    code, out, _ = run(env, "evidence", "--json")
    rows = json.loads(out)
    assert [r["indicator"] for r in rows] == ["distribution_report", "rice_price"]
    assert rows[1]["location"] == "Pyongyang" and rows[1]["source_url"] == "https://example.org/a"

    code, out, err = run(env, "forecast", str(EXAMPLE), "--json", *AS_OF)
    assert code == 0, err
    data = json.loads(out)
    for key in (
        "tree",
        "as_of",
        "engine",
        "n_observations",
        "log_evidence",
        "outcomes",
        "nodes",
        "top_scenarios",
    ):
        assert key in data
    assert data["engine"] == "exact" and data["n_observations"] == 2
    out_p = data["outcomes"]["rationing_returns"]
    assert out_p["probability"] > out_p["prior"]
    assert abs(sum(data["nodes"]["rationing"].values()) - 1) < 1e-9

    code, out, _ = run(env, "retract", "1", "--reason", "misdated report")
    assert code == 0 and "retracted reading #1" in out
    code, out, _ = run(env, "evidence")
    assert "retracted: misdated report" in out
    code, out, _ = run(env, "forecast", str(EXAMPLE), "--json", *AS_OF)
    assert json.loads(out)["n_observations"] == 1

    code, out, _ = run(env, "forecast", str(EXAMPLE), "--given", "harvest=short", *AS_OF)
    assert code == 0 and "Assuming harvest = short" in out
    code, out, _ = run(env, "history", "--json")
    assert len(json.loads(out)) == 2  # a what-if is not a forecast: not recorded
    code, out, _ = run(env, "forecast", str(EXAMPLE), "--given", "harvest=short", "--record")
    assert code == 0 and "Assuming harvest = short" in out

    code, out, _ = run(env, "history", "--json")
    snaps = json.loads(out)
    assert len(snaps) == 3
    assert snaps[0]["n_readings"] == 2 and snaps[1]["n_readings"] == 1
    assert snaps[0]["readings_hash"] != snaps[1]["readings_hash"]
    assert snaps[2]["given"] == {"harvest": "short"} and snaps[2]["what_if"]
    assert not snaps[0]["what_if"] and snaps[0]["created_by"]
    code, out, _ = run(env, "history")
    assert code == 0 and "example-harvest" in out
    header, _rule, *rows = out.splitlines()
    assert "given (what-if)" in header
    assert "harvest=short" in rows[2]
    assert "harvest=short" not in rows[0] and "harvest=short" not in rows[1]

    code, out, _ = run(env, "explain", str(EXAMPLE), "--json", *AS_OF)
    expl = json.loads(out)
    total = sum(c["log_odds"]["rationing_returns"] for c in expl["contributions"])
    assert total == pytest.approx(expl["outcomes"]["rationing_returns"]["log_odds_change"])
    assert expl["not_counted"][0]["reading"] == 1
    code, out, _ = run(env, "explain", str(EXAMPLE), "--outcome", "rationing_returns", *AS_OF)
    assert code == 0 and "Sum of contributions" in out
    assert "#2" in out and "rice_price = 12,500 in Pyongyang" in out


def test_forecast_as_of_counts_only_earlier_readings(env: dict[str, str]) -> None:
    observe_ok(env)
    _, out, _ = run(env, "forecast", str(EXAMPLE), "--json", "--as-of", "2026-03-31")
    assert json.loads(out)["n_observations"] == 0
    _, out, _ = run(env, "forecast", str(EXAMPLE), "--json", "--as-of", "2026-04-30")
    assert json.loads(out)["n_observations"] == 1


def test_import_then_forecast(env: dict[str, str]) -> None:
    code, out, err = run(env, "import", str(FIXTURES / "native_good.csv"))
    assert code == 0, err
    assert out.startswith("imported ")
    code, out, _ = run(env, "import", str(FIXTURES / "native_good.csv"))
    assert "imported 0 readings" in out and "already in the ledger" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["observe", "rice_prce", "1", "--on", "2026-01", "--source", "wire"],
            "did you mean 'rice_price'",
        ),
        (["observe", "rice_price", "abc", "--on", "2026-01", "--source", "wire"], "not a number"),
        (["observe", "rice_price", "1", "--on", "2026-13", "--source", "wire"], "is not a day"),
        (
            ["observe", "rice_price", "1", "--on", "2026-01", "--source", "wir"],
            "did you mean 'wire'",
        ),
        (
            ["observe", "distribution_report", "maybe", "--on", "2026-01", "--source", "wire"],
            "yes/no",
        ),
        (["observe", "crackdowns", "2.5", "--on", "2026-01", "--source", "wire"], "whole number"),
        (
            ["observe", "crackdowns", "2", "--on", "2026-01", "--source", "wire", "--links", "99"],
            "99",
        ),
        (["retract", "99", "--reason", "x"], "no reading with id 99"),
        (["retract", "1", "--reason", " "], "reason"),
        (["import", str(FIXTURES / "native_bad.csv")], "native_bad.csv:3:"),
        (["import", "no-such-file.csv"], "no-such-file.csv"),
        (["forecast", "no-such-tree.yaml"], "no such file"),
        (["forecast", str(EXAMPLE), "--given", "harvst=short"], "did you mean 'harvest'"),
        (["forecast", str(EXAMPLE), "--given", "harvest"], "NODE=STATE"),
        (["forecast", str(EXAMPLE), "--as-of", "yesterday"], "YYYY-MM-DD"),
        (["explain", str(EXAMPLE), "--outcome", "rationing"], "did you mean 'rationing_returns'"),
        (["validate", str(FIXTURES.parent / "spec" / "wrong_cycle.yaml")], "cycle"),
    ],
)
def test_bad_input_is_one_clear_error_and_changes_nothing(
    env: dict[str, str], args: list[str], message: str
) -> None:
    observe_ok(env)  # reading #1
    before = ledger_rows(env)
    code, out, err = run(env, *args)
    assert code == 1
    assert message in err
    assert "Traceback" not in out + err
    assert all(line.startswith("error: ") for line in err.strip().splitlines())
    after = ledger_rows(env)
    assert after["readings"] == before["readings"] and after["retractions"] == before["retractions"]
    if args[0] != "forecast":
        assert after["snapshots"] == before["snapshots"]


def test_import_reports_every_bad_row_with_its_line(env: dict[str, str]) -> None:
    code, _, err = run(env, "import", str(FIXTURES / "native_bad.csv"))
    assert code == 1
    lines = [line for line in err.splitlines() if ":" in line]
    assert len(lines) >= 2
    assert ledger_rows(env)["readings"] == []


def test_conflicting_evidence_is_reported_not_nan(env: dict[str, str], tmp_path: Path) -> None:
    tree = tmp_path / "scenarios" / "certain.yaml"
    tree.write_text(
        "sources: {sure: {reliability: 1.0}}\n"
        "nodes:\n  a: {states: [x, y], probabilities: {x: 0.5, y: 0.5}}\n"
        "indicators:\n  sign:\n    kind: binary\n    depends_on: [a]\n    params:\n"
        "      - {when: {a: x}, then: {p: 1.0}}\n      - {when: {a: y}, then: {p: 0.0}}\n"
    )
    for value in ("yes", "no"):
        code, _, err = run(env, "observe", "sign", value, "--on", "2026-01", "--source", "sure")
        assert code == 0, err
    code, out, err = run(env, "forecast", str(tree), "--json")
    assert code == 1
    assert "zero probability" in err and "#1" in err and "#2" in err
    assert "NaN" not in out


def test_twenty_observe_processes_at_once(env: dict[str, str]) -> None:
    exe = Path(sys.executable).parent / "scenariocast"
    procs = [
        subprocess.Popen(
            [str(exe), "observe", "crackdowns", str(k), "--on", "2026-05", "--source", "wire"],
            env={**env, "PATH": str(exe.parent)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for k in range(20)
    ]
    results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    assert all(code == 0 for _, _, code in results), [e for _, e, c in results if c]
    assert len(ledger_rows(env)["readings"]) == 20


@pytest.mark.parametrize("command", ["forecast", "explain", "watch", "sensitivity"])
def test_commands_that_do_not_sample_import_neither_pymc_arviz_pandas_nor_report_libraries(
    env: dict[str, str], command: str
) -> None:
    observe_ok(env)
    code = (
        "import sys\n"
        "from scenariocast.cli import app\n"
        f"sys.argv = ['scenariocast', '{command}', {str(EXAMPLE)!r}, '--json']\n"
        "try:\n    app()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = ('pymc', 'arviz', 'pytensor', 'pandas', 'jinja2', 'matplotlib')\n"
        "heavy = sorted(m for m in heavy if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env={**env}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stderr


def test_import_with_a_mapping_reports_rows_not_imported_by_indicator(
    env: dict[str, str], tmp_path: Path
) -> None:
    shutil.copytree(FIXTURES / "shaped", tmp_path / "shaped")
    csv_path = tmp_path / "shaped" / "readings.csv"
    with csv_path.open("a") as fh:  # a second unused row of the same indicator
        fh.write("2025-12,usd_kpw_pct_change_vs_2025-02-16,Sinuiju,190,%,,DERIVED\n")
    code, out, err = run(env, "import", str(csv_path))
    assert code == 0, err
    assert "imported 4 readings" in out
    assert "mapping: " in out and "mapping.yaml" in out
    assert (
        "not imported: usd_kpw_pct_change_vs_2025-02-16 (lines 5, 7): "
        "a percentage derived from two readings already in the file"
    ) in out


def test_watch_ranks_indicators_and_says_the_best_in_words(env: dict[str, str]) -> None:
    observe_ok(env)
    code, out, err = run(env, "watch", str(EXAMPLE), *AS_OF)
    assert code == 0, err
    assert out.startswith("What to watch next: example-harvest, as of 2026-04-30")
    assert "rationing_returns:" in out and "gain (bits)" in out
    assert "Knowing a node exactly" in out
    assert "would raise rationing_returns from" in out
    code, out, err = run(env, "watch", str(EXAMPLE), *AS_OF, "--json", "--source", "rumour")
    assert code == 0, err
    data = json.loads(out)
    assert data["tree"] == "example-harvest" and data["reading_step"] is None
    assert set(data["ranking"]["rationing_returns"]) == {
        "rice_price",
        "distribution_report",
        "crackdowns",
    }
    first = data["indicators"][0]
    assert first["source"] == "rumour" and first["reliability"] == 0.3
    gains = {i["name"]: i["outcomes"]["rationing_returns"]["gain_bits"] for i in data["indicators"]}
    code, out, _ = run(env, "watch", str(EXAMPLE), *AS_OF, "--json", "--source", "wire")
    more = {
        i["name"]: i["outcomes"]["rationing_returns"]["gain_bits"]
        for i in json.loads(out)["indicators"]
    }
    assert all(more[k] > gains[k] for k in gains)  # a more reliable source tells more


def test_sensitivity_prints_what_the_forecast_hinges_on_and_writes_tornado_charts(
    env: dict[str, str], tmp_path: Path
) -> None:
    observe_ok(env)
    out = tmp_path / "sens"
    code, text, err = run(env, "sensitivity", str(EXAMPLE), *AS_OF, "--top", "5", "--out", str(out))
    assert code == 0, err
    assert text.startswith("What the forecast hinges on: example-harvest, as of 2026-04-30")
    assert "rationing_returns: " in text and "This forecast hinges on these numbers:" in text
    assert "The tree says:" in text
    png = (out / "tornado-rationing_returns.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    data = json.loads((out / "sensitivity.json").read_text())
    bars = data["outcomes"]["rationing_returns"]["tornado"]
    assert len(bars) == 5 and all(b["exact"] for b in bars)
    swings = [b["swing"] for b in bars]
    assert swings == sorted(swings, reverse=True)
    code, text, err = run(env, "sensitivity", str(EXAMPLE), *AS_OF, "--json", "--top", "3")
    assert code == 0, err
    assert json.loads(text)["tree"] == "example-harvest"
    kinds = {p["kind"] for p in json.loads(text)["parameters"]}
    assert kinds == {"probability", "indicator", "reliability"}
