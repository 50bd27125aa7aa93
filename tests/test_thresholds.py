"""A state's definition in numbers: thresholds as stated quantiles of an indicator's readings.

Each ``tests/fixtures/spec/thresholds/wrong_*.yaml`` is a copy of ``valid_thresholds.yaml`` with
one defect; each must give exactly one problem, at the right field and line, and name it. The
distribution functions behind the check are compared with SciPy's.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from scenariocast.cli import app
from scenariocast.errors import SpecError, format_path
from scenariocast.evidence.likelihood import reading_cdf
from scenariocast.spec.load import load_tree, parse_tree
from scenariocast.spec.model import ReadAs

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "spec" / "thresholds"
VALID = FIXTURES / "valid_thresholds.yaml"

# fixture -> (field path, a regular expression the message matches, text on the problem's line)
CASES: dict[str, tuple[str, str, str]] = {
    "quantile": (
        "nodes.shock.thresholds.crisis[0]",
        r"^'rice_price' puts 12000 at quantile 0\.185 where shock=crisis, controls=none "
        r"\(indicators\.rice_price\.params\[4\]\), not 0\.5 \(within 0\.05\); and in 1 more rows$",
        "threshold: 12000, quantile: 0.5}",
    ),
    "state": (
        "nodes.shock.thresholds.crises",
        r"^unknown state 'crises' \(did you mean 'crisis'\?\)$",
        "crises:",
    ),
    "indicator": (
        "nodes.shock.thresholds.calm[0].indicator",
        r"^unknown indicator 'rice_prices' \(did you mean 'rice_price'\?\)$",
        "rice_prices",
    ),
    "binary": (
        "nodes.shock.thresholds.calm[0].indicator",
        r"^thresholds are for continuous indicators; 'crackdown' is binary$",
        "indicator: crackdown,",
    ),
    "quantile_range": (
        "nodes.shock.thresholds.crisis[0].quantile",
        r"less than 1, got 1\.2$",
        "quantile: 1.2}",
    ),
    "nonpositive": (
        "nodes.shock.thresholds.calm[0].threshold",
        r"^0 cannot be a reading of 'rice_price', which reads the log of a value",
        "threshold: 0,",
    ),
    "claim_key": (
        "nodes.shock.thresholds.tight[1]",
        r"^unknown key 'tolerence' \(did you mean 'tolerance'\?\)$",
        "tolerence: 0.02}",
    ),
    "not_dependent": (
        "nodes.controls.thresholds.heavy[0].indicator",
        r"^indicator 'crackdown_count' does not depend on node 'controls' \(it depends on shock\)$",
        "indicator: crackdown_count",
    ),
    "calendar": (
        "nodes.season.thresholds",
        r"^a calendar node takes no thresholds",
        "thresholds:",
    ),
}


def _line(path: Path, text: str) -> int:
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)


def test_every_fixture_has_a_case() -> None:
    names = {p.stem.removeprefix("wrong_") for p in FIXTURES.glob("wrong_*.yaml")}
    assert names == set(CASES)


def test_the_valid_fixture_loads() -> None:
    tree = load_tree(VALID)
    claims = tree.spec.nodes["shock"].thresholds
    assert claims is not None
    assert [c.quantile for c in claims["tight"]] == [0.1, 0.9]
    assert claims["tight"][1].tolerance == 0.02
    assert claims["calm"][0].tolerance == 0.05  # the default


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_fixture_is_reported(name: str) -> None:
    path = FIXTURES / f"wrong_{name}.yaml"
    field, pattern, on_line = CASES[name]
    with pytest.raises(SpecError) as info:
        load_tree(path)
    problems = info.value.problems
    assert len(problems) == 1, [str(p) for p in problems]
    problem = problems[0]
    assert format_path(problem.path) == field
    assert re.search(pattern, problem.message), problem.message
    assert problem.line == _line(path, on_line)


def test_one_row_out_of_line_is_caught() -> None:
    """The claim must hold in every row of the state, not on average over them."""
    text = VALID.read_text().replace(
        "- when: {shock: calm, controls: heavy}\n        then: {mu: -0.03, sigma: 0.2}",
        "- when: {shock: calm, controls: heavy}\n        then: {mu: 0.15, sigma: 0.2}",
    )
    assert text != VALID.read_text()
    with pytest.raises(SpecError, match=r"where shock=calm, controls=heavy .*params\[1\]"):
        parse_tree(text, file="one-row.yaml")


def test_tolerance_is_the_limit() -> None:
    """The calm rows put 6,500 at 0.905 and 0.928: a tolerance of 0.02 fails, 0.03 passes."""
    claim = "- {indicator: rice_price, threshold: 6500, quantile: 0.9}"
    assert claim in VALID.read_text()
    tight = VALID.read_text().replace(claim, claim[:-1] + ", tolerance: 0.02}")
    loose = VALID.read_text().replace(claim, claim[:-1] + ", tolerance: 0.03}")
    with pytest.raises(SpecError, match=r"puts 6500 at quantile 0\.928"):
        parse_tree(tight, file="tight.yaml")
    parse_tree(loose, file="loose.yaml")


def test_validate_reports_the_line_and_exits_1() -> None:
    path = FIXTURES / "wrong_quantile.yaml"
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    line = _line(path, "threshold: 12000, quantile: 0.5}")
    assert result.stderr.startswith(f"error: {path}:{line}: nodes.shock.thresholds.crisis[0]: ")


def test_schema_has_thresholds_and_accepts_the_valid_fixture() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(CliRunner().invoke(app, ["schema"]).stdout)
    assert "thresholds" in schema["$defs"]["Node"]["properties"]
    assert set(schema["$defs"]["Threshold"]["required"]) == {"indicator", "threshold", "quantile"}
    data = json.loads(json.dumps(yaml.safe_load(VALID.read_text()), default=str))
    jsonschema.validate(data, schema)
    data["nodes"]["shock"]["thresholds"]["calm"][0]["quantile"] = 1.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


# ---------------------------------------------------------------------------------------------
# the distribution functions behind the check


@pytest.mark.parametrize("value", [3000.0, 4800.0, 15000.0, 30000.0, 250000.0])
@pytest.mark.parametrize("nu", [2.5, 4.0, 30.0])
def test_student_t_cdf_matches_scipy(value: float, nu: float) -> None:
    read_as = ReadAs(transform="log_change", baseline=4800.0)
    params = {"mu": 1.4, "sigma": 0.3, "nu": nu}
    want = stats.t.cdf((math.log(value / 4800.0) - 1.4) / 0.3, nu)
    assert reading_cdf("student_t", params, read_as, value) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize(
    ("transform", "value", "x"),
    [
        ("identity", 70.0, 70.0),
        ("log", 200.0, math.log(200.0)),
        ("pct_change", 150.0, 50.0),
    ],
)
def test_normal_cdf_reads_the_value_as_the_indicator_does(
    transform: str, value: float, x: float
) -> None:
    read_as = ReadAs(transform=transform, baseline=100.0)  # type: ignore[arg-type]
    want = stats.norm.cdf((x - 3.0) / 2.0)
    got = reading_cdf("normal", {"mu": 3.0, "sigma": 2.0}, read_as, value)
    assert got == pytest.approx(want, abs=1e-12)


def test_lognormal_cdf_and_values_it_cannot_take() -> None:
    params = {"mu": 1.0, "sigma": 0.5}
    assert reading_cdf("lognormal", params, None, 5.0) == pytest.approx(
        stats.lognorm.cdf(5.0, 0.5, scale=math.e), abs=1e-12
    )
    assert reading_cdf("lognormal", params, None, 0.0) == 0.0
    with pytest.raises(ValueError, match="binary"):
        reading_cdf("binary", {"p": 0.5}, None, 1.0)
