"""The scenario file format: every problem the validator must catch, the CLI, the schema, compile.

Each ``tests/fixtures/spec/wrong_*.yaml`` is a copy of ``valid_small.yaml`` with one defect
(``wrong_several.yaml`` has several). Expected lines are found by searching the fixture text.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from scenariocast.cli import app
from scenariocast.errors import Problem, SpecError
from scenariocast.spec.load import load_tree, parse_tree
from scenariocast.spec.model import (
    INDICATOR_KINDS,
    KIND_PARAMS,
    Combine,
    CptRow,
    Indicator,
    Node,
    Outcome,
    ParamRow,
    ReadAs,
    ScenarioTree,
    Source,
    Threshold,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "spec"
VALID = FIXTURES / "valid_small.yaml"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "example-harvest.yaml"

Loc = tuple[str | int, ...]


def line_of(path: Path, *anchors: str) -> int:
    """The 1-based line holding the last anchor, each anchor searched after the line of the one
    before (so ``("  harvest:", "parents:")`` is the first ``parents:`` line after ``harvest:``).
    """
    lines = path.read_text().splitlines()
    start = 0
    for anchor in anchors:
        start = next(i for i in range(start, len(lines)) if anchor in lines[i]) + 1
    return start


@dataclass(frozen=True)
class Case:
    fixture: str
    match: str  # regular expression the problem's message must match
    path: Loc  # the field path the problem must name
    anchors: tuple[str, ...] | None  # where its line is; None: no line (whole-file problems)
    count: int = 1  # problems the file must produce in all

    @property
    def file(self) -> Path:
        return FIXTURES / f"wrong_{self.fixture}.yaml"


CASES = [
    Case(
        "cost",
        r"^Input should be greater than 0, got -2$",
        ("indicators", "crackdowns", "cost"),
        ("cost: -2",),
    ),
    Case(
        "cost_infinite",
        r"^Input should be a finite number, got inf$",
        ("indicators", "crackdowns", "cost"),
        ("cost: .inf",),
    ),
    Case(
        "indicator_source",
        r"^unknown source 'wires' \(did you mean 'wire'\?\)$",
        ("indicators", "crackdowns", "source"),
        ("source: wires",),
    ),
    Case(
        "unknown_top_key",
        r"^unknown key 'indicatrs' \(did you mean 'indicators'\?\)$",
        (),
        ("indicatrs:",),
    ),
    Case(
        "unknown_node_key",
        r"^unknown key 'probabilites' \(did you mean 'probabilities'\?\)$",
        ("nodes", "weather"),
        ("probabilites:",),
        count=1,  # the hint names the key; nothing about weather's children
    ),
    Case(
        "probability_range",
        r"less than or equal to 1, got 1\.3$",
        ("nodes", "weather", "probabilities", "good"),
        ("good: 1.3",),
    ),
    Case(
        "row_sum",
        r"^probabilities sum to 1\.1, not 1$",
        ("nodes", "harvest", "probabilities", 1, "then"),
        ("{adequate: 0.5, short: 0.6}",),
    ),
    Case(
        "missing_combination",
        r"^no row for weather=poor$",
        ("nodes", "harvest", "probabilities"),
        ("  harvest:", "probabilities:"),
    ),
    Case(
        "unknown_parent",
        r"^unknown parent 'wether' \(did you mean 'weather'\?\)$",
        ("nodes", "harvest", "parents", 0),
        ("parents: [wether]",),
    ),
    Case(
        "when_state",
        r"^node 'weather' has no state 'poore' \(did you mean 'poor'\?\)$",
        ("nodes", "harvest", "probabilities", 1, "when", "weather"),
        ("{weather: poore}",),
    ),
    Case(
        "then_state",
        r"^unknown state 'shrot' \(did you mean 'short'\?\)$",
        ("nodes", "harvest", "probabilities", 1, "then", "shrot"),
        ("shrot: 0.6",),
        count=2,  # and "no probability for state short"
    ),
    Case(
        "cycle",
        r"^cycle: weather <- harvest <- weather$",
        ("nodes", "harvest", "parents"),
        ("  harvest:", "parents:"),
    ),
    Case(
        "indicator_node",
        r"^unknown node 'harvst' \(did you mean 'harvest'\?\)$",
        ("indicators", "price", "depends_on", 0),
        ("depends_on: [harvst]",),
    ),
    Case(
        "sigma",
        r"^sigma must be > 0, got -0\.3$",
        ("indicators", "price", "params", 1, "then", "sigma"),
        ("sigma: -0.3",),
    ),
    Case(
        "nu",
        r"^nu must be > 0, got 0(\.0)?$",
        ("indicators", "price", "params", 1, "then", "nu"),
        ("nu: 0}",),
    ),
    Case(
        "rate",
        r"^rate must be > 0, got -1(\.0)?$",
        ("indicators", "crackdowns", "params", 1, "then", "rate"),
        ("rate: -1.0",),
    ),
    Case(
        "categorical_sum",
        r"^probabilities sum to 0\.9, not 1$",
        ("indicators", "mood", "params", 1, "then"),
        ("tense: 0.6",),
    ),
    Case(
        "duplicate_node",
        r"^duplicate key 'weather' \(first at line \d+\)$",
        ("nodes",),
        ("  weather:", "  weather:"),  # the second definition
    ),
    Case(
        "duplicate_state",
        r"^duplicate state good$",
        ("nodes", "weather", "states"),
        ("[good, poor, good]",),
    ),
    Case(
        "outcome_node",
        r"^unknown node 'harvst' \(did you mean 'harvest'\?\)$",
        ("outcomes", "shortage", "node"),
        ("node: harvst",),
    ),
    Case(
        "outcome_state",
        r"^node 'harvest' has no state 'shrot' \(did you mean 'short'\?\)$",
        ("outcomes", "shortage", "states", 0),
        ("states: [shrot]",),
    ),
    Case(
        "unsafe_tag",
        r"^refused: .*python/object/apply:os\.system.*only plain YAML data is allowed",
        ("title",),
        ("!!python/object/apply",),
    ),
    Case(
        "yaml_syntax",
        r"^not valid YAML: mapping values are not allowed",
        (),
        ("harvest: states: x",),
    ),
    Case("empty", r"^the file is empty$", (), None),
    Case(
        "root_rows",
        r"^a node without parents takes state -> probability, not rows$",
        ("nodes", "weather", "probabilities"),
        ("  weather:", "probabilities:"),
    ),
    Case(
        "child_mapping",
        r"^a node with parents takes rows of `when` and `then`",
        ("nodes", "harvest", "probabilities"),
        ("{adequate: 0.8, short: 0.2}",),
    ),
    Case(
        "log_change_baseline",
        r"^transform log_change needs a baseline value$",
        ("indicators", "price", "read_as", "baseline"),
        ("read_as: {transform: log_change}",),  # no baseline line: the line of read_as
    ),
]

#: Every problem of wrong_several.yaml: (message, path, anchors of its line).
SEVERAL: list[tuple[str, Loc, tuple[str, ...]]] = [
    (r"^duplicate key 'title' \(first at line 3\)$", (), ("title: Small tree",)),
    (r"^Input should be greater than 0, got -5$", ("strength",), ("strength: -5",)),
    (
        r"^unknown key 'unti' \(did you mean 'unit'\?\)$",
        ("indicators", "crackdowns"),
        ("unti: reports",),
    ),
    (
        r"^probabilities sum to 1\.1, not 1$",
        ("nodes", "weather", "probabilities"),
        ("{good: 0.7, poor: 0.4}",),
    ),
    (r"has no state 'shrot'", ("outcomes", "shortage", "states", 0), ("states: [shrot]",)),
    (
        r"^sigma must be > 0, got -0\.3$",
        ("indicators", "price", "params", 1, "then", "sigma"),
        ("sigma: -0.3",),
    ),
    (
        r"^unknown node 'wether' \(did you mean 'weather'\?\)$",
        ("indicators", "mood", "depends_on", 0),
        ("depends_on: [wether]",),
    ),
]


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(SpecError) as info:
        load_tree(path)
    return info.value.problems


def test_every_fixture_has_a_case() -> None:
    on_disk = {p.name for p in FIXTURES.glob("wrong_*.yaml")}
    assert on_disk == {c.file.name for c in CASES} | {"wrong_several.yaml"}


def test_valid_small_loads() -> None:
    tree = load_tree(VALID)
    assert tree.id == "small"
    assert list(tree.nodes) == ["weather", "harvest"]
    assert set(tree.indicators) == {"price", "crackdowns", "mood"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.fixture)
def test_broken_fixture_is_reported(case: Case) -> None:
    problems = problems_of(case.file)
    assert len(problems) == case.count, problems
    matching = [p for p in problems if re.search(case.match, p.message)]
    assert len(matching) == 1, problems
    problem = matching[0]
    assert problem.file == str(case.file)
    assert problem.path == case.path
    expected_line = None if case.anchors is None else line_of(case.file, *case.anchors)
    assert problem.line == expected_line
    # the rendered form names file, line and field: "file:line: path: message"
    where = str(case.file) + (f":{expected_line}" if expected_line else "")
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in case.path).lstrip(".")
    parts = [where, field, problem.message] if field else [where, problem.message]
    assert str(problem) == ": ".join(parts)


def test_spec_error_message_names_the_problem() -> None:
    file = FIXTURES / "wrong_unknown_parent.yaml"
    with pytest.raises(SpecError, match=r"unknown parent 'wether' \(did you mean 'weather'\?\)"):
        load_tree(file)


def test_duplicate_key_names_first_line() -> None:
    file = FIXTURES / "wrong_duplicate_node.yaml"
    (problem,) = problems_of(file)
    first = re.search(r"first at line (\d+)", problem.message)
    assert first is not None
    assert int(first.group(1)) == line_of(file, "  weather:")


def test_several_problems_are_all_reported() -> None:
    """Field errors (pydantic) do not stop the whole-tree checks: everything comes at once."""
    file = FIXTURES / "wrong_several.yaml"
    problems = problems_of(file)
    assert len(problems) == len(SEVERAL), problems
    for pattern, loc, anchors in SEVERAL:
        found = [p for p in problems if re.search(pattern, p.message)]
        assert len(found) == 1, (pattern, problems)
        assert found[0].path == loc
        assert found[0].line == line_of(file, *anchors)


def test_broken_node_is_not_reported_again_as_unknown() -> None:
    """A node that fails field validation still exists: references to it are not 'unknown'."""
    problems = problems_of(FIXTURES / "wrong_unknown_node_key.yaml")
    assert not [p for p in problems if "unknown parent" in p.message or "unknown node" in p.message]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("- a\n- b\n", "the file must be a mapping"),
        ("nodes: [a, b]\n", "Input should be a valid dictionary"),
    ],
)
def test_parse_tree_whole_file_problems(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        parse_tree(text, file="t.yaml")


def test_missing_file() -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_tree(FIXTURES / "does-not-exist.yaml")


# ---------------------------------------------------------------------------------------------
# unsafe YAML


def recorder(calls: list[object]) -> Callable[..., int]:
    """A stand-in for os.system that records its calls instead of running anything."""

    def record(*args: object, **kwargs: object) -> int:
        calls.append(args)
        return 0

    return record


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system",
        "!!python/object/new:os.system",
        "!!python/object/apply:subprocess.call",
    ],
)
def test_unsafe_yaml_never_runs(tag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ran"
    calls: list[object] = []
    monkeypatch.setattr(os, "system", recorder(calls))
    text = VALID.read_text().replace("title: Small test tree", f'title: {tag} ["touch {marker}"]')
    file = tmp_path / "unsafe.yaml"
    file.write_text(text)
    with pytest.raises(SpecError, match="refused") as info:
        load_tree(file)
    assert not marker.exists()
    assert calls == []
    (problem,) = info.value.problems
    assert problem.path == ("title",)
    assert problem.line == line_of(file, tag)


def test_unsafe_fixture_never_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(os, "system", recorder(calls))
    with pytest.raises(SpecError, match="refused"):
        load_tree(FIXTURES / "wrong_unsafe_tag.yaml")
    assert calls == []


# ---------------------------------------------------------------------------------------------
# command line


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.fixture)
def test_cli_validate_broken(runner: CliRunner, case: Case) -> None:
    result = runner.invoke(app, ["validate", str(case.file)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    expected = [str(p) for p in problems_of(case.file)]
    assert lines == [f"error: {p}" for p in expected]


def test_cli_validate_several(runner: CliRunner) -> None:
    file = FIXTURES / "wrong_several.yaml"
    result = runner.invoke(app, ["validate", str(file)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == len(SEVERAL)
    assert all(line.startswith(f"error: {file}:") for line in lines)
    assert {int(line.split(":")[2]) for line in lines} == {
        line_of(file, *anchors) for _, _, anchors in SEVERAL
    }


def test_cli_validate_valid(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate", str(VALID)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok: {VALID}")
    assert result.stderr == ""


def test_cli_validate_valid_and_broken(runner: CliRunner) -> None:
    """Every file is checked; one broken file makes the exit code 1."""
    broken = FIXTURES / "wrong_cycle.yaml"
    result = runner.invoke(app, ["validate", str(VALID), str(broken)])
    assert result.exit_code == 1
    assert f"ok: {VALID}" in result.stdout
    assert result.stderr.splitlines() == [f"error: {p}" for p in problems_of(broken)]


def test_cli_schema(runner: CliRunner) -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert {"nodes", "outcomes", "indicators", "sources"} <= set(schema["properties"])
    assert schema["required"] == ["nodes"]


@pytest.mark.parametrize("file", [VALID, EXAMPLE], ids=lambda p: p.name)
def test_schema_accepts_valid_files(runner: CliRunner, file: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(runner.invoke(app, ["schema"]).stdout)
    data = json.loads(json.dumps(yaml.safe_load(file.read_text()), default=str))
    jsonschema.validate(data, schema)


# ---------------------------------------------------------------------------------------------
# compilation


def test_compile_example_nodes() -> None:
    tree = load_tree(EXAMPLE)
    assert tree.id == "example-harvest"
    assert list(tree.nodes) == ["weather", "imports", "harvest", "rationing"]
    weather, harvest, rationing = (
        tree.nodes["weather"],
        tree.nodes["harvest"],
        tree.nodes["rationing"],
    )
    assert weather.states == ("good", "poor")
    assert weather.parents == ()
    np.testing.assert_allclose(weather.cpt, [0.7, 0.3])
    assert harvest.parents == ("weather", "imports")
    assert harvest.cpt.shape == (2, 2, 2)  # weather x imports x harvest
    np.testing.assert_allclose(harvest.cpt[0, 0], [0.9, 0.1])  # good, normal
    np.testing.assert_allclose(harvest.cpt[0, 1], [0.7, 0.3])  # good, low
    np.testing.assert_allclose(harvest.cpt[1, 0], [0.5, 0.5])  # poor, normal
    np.testing.assert_allclose(harvest.cpt[1, 1], [0.15, 0.85])  # poor, low
    assert rationing.states == ("none", "partial", "broad")  # file order, not sorted
    assert rationing.cpt.shape == (2, 3)
    np.testing.assert_allclose(rationing.cpt, [[0.85, 0.12, 0.03], [0.4, 0.4, 0.2]])
    assert harvest.strength == rationing.strength == 20


def test_compile_example_indicators() -> None:
    tree = load_tree(EXAMPLE)
    price = tree.indicators["rice_price"]
    assert price.scope == ("harvest",)
    np.testing.assert_allclose(price.params["mu"], [0.1, 0.6])
    np.testing.assert_allclose(price.params["sigma"], [0.25, 0.35])
    np.testing.assert_allclose(tree.indicators["distribution_report"].params["p"], [0.05, 0.5, 0.9])
    np.testing.assert_allclose(tree.indicators["crackdowns"].params["rate"], [0.5, 1.5, 3.0])


def test_compile_small_categorical() -> None:
    mood = load_tree(VALID).indicators["mood"]
    np.testing.assert_allclose(mood.params["probs"], [[0.8, 0.2], [0.3, 0.7]])


def test_states_order_follows_the_file() -> None:
    """Swap the order of weather's states (not its probabilities mapping): arrays follow."""
    text = VALID.read_text().replace("states: [good, poor]", "states: [poor, good]")
    tree = parse_tree(text, file="swapped.yaml")
    assert tree.nodes["weather"].states == ("poor", "good")
    np.testing.assert_allclose(tree.nodes["weather"].cpt, [0.3, 0.7])
    # harvest's first axis is now weather=poor
    np.testing.assert_allclose(tree.nodes["harvest"].cpt, [[0.4, 0.6], [0.9, 0.1]])
    np.testing.assert_allclose(tree.indicators["mood"].params["probs"], [[0.3, 0.7], [0.8, 0.2]])


def test_row_order_does_not_matter() -> None:
    text = VALID.read_text()
    rows = (
        "      - when: {weather: good}\n        then: {adequate: 0.9, short: 0.1}\n"
        "      - when: {weather: poor}\n        then: {adequate: 0.4, short: 0.6}\n"
    )
    swapped = (
        "      - when: {weather: poor}\n        then: {adequate: 0.4, short: 0.6}\n"
        "      - when: {weather: good}\n        then: {adequate: 0.9, short: 0.1}\n"
    )
    assert rows in text
    tree = parse_tree(text.replace(rows, swapped), file="rows.yaml")
    np.testing.assert_allclose(tree.nodes["harvest"].cpt, [[0.9, 0.1], [0.4, 0.6]])


def test_default_id_is_file_stem(tmp_path: Path) -> None:
    file = tmp_path / "my-tree.yaml"
    file.write_text(VALID.read_text().replace("id: small\n", ""))
    assert load_tree(file).id == "my-tree"


# ---------------------------------------------------------------------------------------------
# the format's documentation

DOC = Path(__file__).resolve().parent.parent / "docs" / "scenario-format.md"


def test_doc_example_is_valid() -> None:
    text = DOC.read_text()
    example = text.split("## A complete example", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", example, re.DOTALL)
    assert block is not None
    tree = parse_tree(block.group(1), file="doc-example.yaml")
    assert list(tree.nodes) == ["weather", "imports", "harvest", "rationing"]
    kinds = {i.spec.kind for i in tree.indicators.values()}
    assert kinds == {"student_t", "binary", "count", "categorical"}


@pytest.mark.parametrize(
    "model",
    [ScenarioTree, Source, Node, CptRow, Outcome, Indicator, ReadAs, Combine, ParamRow, Threshold],
    ids=lambda m: m.__name__,
)
def test_doc_names_every_key(model: type[BaseModel]) -> None:
    text = DOC.read_text()
    missing = [name for name in model.model_fields if f"`{name}`" not in text]
    assert missing == []


def test_doc_names_every_kind_and_parameter() -> None:
    text = DOC.read_text()
    names = [*INDICATOR_KINDS, *(p for ps in KIND_PARAMS.values() for p in ps)]
    names += ["identity", "log", "log_change", "pct_change", "all", "latest"]
    assert [n for n in names if f"`{n}`" not in text] == []


def test_unquoted_yes_as_a_state_name_gets_a_hint() -> None:
    from scenariocast.spec.load import parse_tree

    text = "nodes:\n  a:\n    states: [yes, no]\n    probabilities: {x: 0.5, y: 0.5}\n"
    with pytest.raises(SpecError, match="quote it"):
        parse_tree(text, file="t.yaml")


def test_several_problems_come_in_the_order_of_their_lines() -> None:
    with pytest.raises(SpecError) as info:
        load_tree(FIXTURES / "wrong_several.yaml")
    lines = [p.line or 0 for p in info.value.problems]
    assert len(lines) == 7
    assert lines == sorted(lines)
