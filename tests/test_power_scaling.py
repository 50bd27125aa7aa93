"""Power-scaling sensitivity of the PyMC engine's posterior (sensitivity --engine pymc)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scenariocast.analysis.power_scaling import PowerScaling, Sensitive, _diagnosis
from scenariocast.cli import app
from tests.conftest import EXAMPLE, reading

AS_OF = dt.date(2026, 4, 30)
READINGS = [
    reading(1, "distribution_report", "yes", on="2026-03-01", source="wire"),
    reading(2, "rice_price", "9000", on="2026-03-02", source="market_survey", location="P"),
    reading(3, "crackdowns", "3", on="2026-03-03", source="wire"),
]


def test_the_diagnosis_follows_arviz_rule() -> None:
    assert _diagnosis(0.2, 0.2, 0.05) == "conflict"
    assert _diagnosis(0.2, 0.01, 0.05) == "prior"
    assert _diagnosis(0.01, 0.2, 0.05) == "ok"
    assert _diagnosis(0.01, 0.01, 0.05) == "ok"
    words = PowerScaling(
        (
            Sensitive("outcome_probability[rationing_returns]", 0.14, 0.2, "conflict"),
            Sensitive("table:harvest[0, 0]", 0.2, 0.01, "prior"),
            Sensitive("table:weather[0, 0]", 0.01, 0.2, "ok"),
        )
    ).lines()
    assert "rationing_returns: prior 0.140, likelihood 0.200: prior-data conflict" in words[1]
    assert any("say little about" in w and "harvest" in w for w in words)
    assert any("Tables the readings inform: weather" in w for w in words)


@pytest.mark.slow
def test_sensitivity_with_the_pymc_engine_adds_power_scaling() -> None:
    pytest.importorskip("scenariocast.engines.pymc")
    from scenariocast.api import sensitivity

    result = sensitivity(
        EXAMPLE, READINGS, as_of=AS_OF, engine="pymc", draws=300, chains=2, seed=3, top=3
    )
    ps = result.power_scaling
    assert ps is not None and ps.rows
    names = {r.name for r in ps.rows}
    assert "outcome_probability[rationing_returns]" in names
    assert any(n.startswith("table:") for n in names)
    assert {r.diagnosis for r in ps.rows} <= {"conflict", "prior", "ok"}
    data = result.to_dict()["power_scaling"]
    assert data["quantities"][0]["in_words"]


@pytest.mark.slow
def test_the_command_line_says_the_diagnosis_in_words(tmp_path: Path) -> None:
    pytest.importorskip("scenariocast.engines.pymc")
    from scenariocast.ledger import Ledger

    db = tmp_path / "ledger.db"
    ledger = Ledger(str(db))
    for r in READINGS:
        ledger.observe(
            r.indicator, r.value, observed=str(r.observed), source=r.source, location=r.location
        )
    env = {"SCENARIOCAST_DB": str(db)}
    args = ["sensitivity", str(EXAMPLE), "--as-of", "2026-04-30", "--engine", "pymc"]
    args += ["--draws", "300", "--seed", "3", "--top", "3"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "Power-scaling sensitivity (PyMC engine" in result.stdout
    assert "rationing_returns: prior " in result.stdout
    result = CliRunner().invoke(app, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["power_scaling"]["threshold"] == 0.05
