"""Every bad input, tried as a hostile user would, on SQLite and on PostgreSQL.

Each case is a file in tests/fixtures/bad_input/: the command line (with ``{example}``,
``{fixtures}``, ``{here}`` and ``{tmp}`` filled in), the exit code (1 for bad input, 2 for wrong
usage) and a text the error must contain. Every case must give that exit code, only lines that
start with ``error:`` on stderr (one per problem), no traceback, and leave the ledger byte for
byte as it was (a SQLite file's bytes; every row on a server).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from scenariocast.cli import app
from tests.ledger_support import EXAMPLE_TREE, state

HERE = Path(__file__).resolve().parent / "fixtures" / "bad_input"
CASES = sorted(HERE.glob("*.yaml"))


def _fill(text: str, tmp: Path) -> str:
    return (
        text.replace("{example}", str(EXAMPLE_TREE))
        .replace("{fixtures}", str(HERE.parent))
        .replace("{here}", str(HERE))
        .replace("{tmp}", str(tmp))
    )


def _make(what: str, tmp: Path) -> None:
    if what == "huge_yaml":  # 50 MB of an unclosed flow sequence
        with (tmp / "huge.yaml").open("w") as fh:
            fh.write("nodes: [")
            chunk = "1, " * 100_000
            while fh.tell() < 50 * 1024 * 1024:
                fh.write(chunk)
    else:  # pragma: no cover - a case file names an unknown maker
        raise ValueError(what)


def test_there_are_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_bad_input_is_refused_cleanly_and_changes_nothing(
    case: Path, ledger_url: str, tmp_path: Path
) -> None:
    spec: dict[str, Any] = yaml.safe_load(case.read_text(encoding="utf-8"))
    work = tmp_path / "work"
    work.mkdir()
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    shutil.copy(EXAMPLE_TREE, scenarios / EXAMPLE_TREE.name)
    env = {"SCENARIOCAST_DB": ledger_url, "SCENARIOCAST_SCENARIOS": str(scenarios)}
    runner = CliRunner()
    seeded = runner.invoke(
        app,
        ["observe", "rice_price", "5200", "--on", "2025-10-26", "--source", "market_survey"],
        env=env,
    )
    assert seeded.exit_code == 0, seeded.output
    if "make" in spec:
        _make(spec["make"], work)
    before = state(ledger_url)

    result = runner.invoke(app, [_fill(a, work) for a in spec["args"]], env=env)

    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == spec["exit"], result.output
    lines = result.stderr.splitlines()
    assert lines, "no error message"
    assert all(line.startswith("error: ") for line in lines), lines
    assert _fill(spec["error"], work) in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert state(ledger_url) == before
    for path in spec.get("absent", []):
        assert not Path(_fill(path, work)).exists(), path
