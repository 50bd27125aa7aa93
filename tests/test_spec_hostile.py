"""Scenario files written to break the loader: impossible dates, alias bombs, huge, deep, long.

Each broken input is a file under tests/fixtures/spec/hostile/ (the huge file is written by the
test); each must give one problem, with its line, and never a traceback or a hang.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scenariocast.cli import app
from scenariocast.errors import SpecError
from scenariocast.spec.load import load_tree
from scenariocast.validation import MAX_ALIASED_NODES, MAX_DEPTH, MAX_YAML_BYTES

HOSTILE = Path(__file__).resolve().parent / "fixtures" / "spec" / "hostile"

#: fixture -> (line of the problem, regular expression its message must match)
BROKEN: dict[str, tuple[int, str]] = {
    "date_feb30.yaml": (
        28,
        r"^outcomes\.shortage\.resolve_by: .*day value is outside expected range, "
        r"got '2026-02-30'$",
    ),
    "date_month13.yaml": (
        28,
        r"^outcomes\.shortage\.resolve_by: .*month value is outside expected range.*"
        r"got '2026-13-01'$",
    ),
    "billion_laughs.yaml": (
        2,
        rf"^refused: aliases \(\*name\) repeat more than {MAX_ALIASED_NODES:,} nodes$",
    ),
    "self_alias.yaml": (2, r"^refused: an alias refers to a node that contains it$"),
    "deep.yaml": (2, rf"^refused: nested more than {MAX_DEPTH} levels deep$"),
    "cycle_1200.yaml": (
        4,
        r"^nodes\.n1\.parents: cycle: n0 <- n1199 <- .* <- n1 <- n0 \(1200 nodes\)$",
    ),
}


def _only_problem(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_tree(path)
    (problem,) = info.value.problems
    assert problem.file == str(path)
    return str(problem)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_hostile_file_gives_one_problem_with_its_line(name: str) -> None:
    line, pattern = BROKEN[name]
    text = _only_problem(HOSTILE / name)
    prefix = f"{HOSTILE / name}:{line}: "
    assert text.startswith(prefix), text
    assert re.search(pattern, text.removeprefix(prefix)), text
    assert "\n" not in text


def test_every_hostile_fixture_has_a_case() -> None:
    on_disk = {p.name for p in HOSTILE.glob("*.yaml")}
    assert on_disk == set(BROKEN) | {"long_chain_1100.yaml"}


@pytest.mark.parametrize("command", ["validate", "show", "forecast"])
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_hostile_file_at_the_command_line(name: str, command: str, tmp_path: Path) -> None:
    env = {"SCENARIOCAST_DB": str(tmp_path / "ledger.db")}
    result = CliRunner().invoke(app, [command, str(HOSTILE / name)], env=env)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert f"{HOSTILE / name}:{BROKEN[name][0]}: " in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "ledger.db").exists()


def test_a_file_past_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    # a 50 MB unclosed flow sequence once took minutes and gigabytes before its error
    huge = tmp_path / "huge.yaml"
    with huge.open("w") as fh:
        fh.write("nodes: [")
        chunk = "1, " * 100_000
        while fh.tell() < 50 * 1024 * 1024:
            fh.write(chunk)
    text = _only_problem(huge)
    assert text == f"{huge}: refused: larger than {MAX_YAML_BYTES // 1024:,} KiB, the most read"


def test_a_file_just_under_the_limit_is_read(tmp_path: Path) -> None:
    valid = (HOSTILE.parent / "valid_small.yaml").read_text()
    padded = tmp_path / "padded.yaml"
    filler = "#" + "x" * 98 + "\n"
    room = MAX_YAML_BYTES - len(valid.encode())
    padded.write_text(valid + filler * (room // len(filler)))
    assert padded.stat().st_size <= MAX_YAML_BYTES
    assert load_tree(padded).id == "small"


def test_a_chain_of_1100_nodes_listed_child_first_loads() -> None:
    tree = load_tree(HOSTILE / "long_chain_1100.yaml")
    assert len(tree.nodes) == 1100
    order = list(tree.nodes)
    assert order[0] == "n0" and order[-1] == "n1099"  # parents before children
    position = {n: i for i, n in enumerate(order)}
    assert all(position[p] < position[n] for n in order for p in tree.nodes[n].parents)


def test_unquoted_dates_still_read_as_dates(tmp_path: Path) -> None:
    tree = load_tree(HOSTILE.parent / "valid_small.yaml")
    assert str(tree.outcomes["shortage"].resolve_by) == "2026-12-31"
    text = (HOSTILE.parent / "valid_small.yaml").read_text()
    dated = tmp_path / "dated.yaml"
    dated.write_text(text.replace("baseline: 100}", "baseline: 100, baseline_date: 2025-01-15}"))
    spec = load_tree(dated).indicators["price"].spec
    assert spec.read_as is not None and spec.read_as.baseline_date == "2025-01-15"


def test_aliases_within_the_bound_are_read(tmp_path: Path) -> None:
    text = (HOSTILE.parent / "valid_small.yaml").read_text()
    shared = tmp_path / "shared.yaml"
    shared.write_text(
        text.replace("title: Small test tree", "title: &d Shared text").replace(
            "reliability: 0.9", "reliability: 0.9\n    description: *d"
        )
    )
    assert load_tree(shared).spec.sources["wire"].description == "Shared text"
