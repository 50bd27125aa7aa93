"""scenariocast convert: round trips through every format, notes, and broken files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from scenariocast.cli import app
from scenariocast.errors import NetworkFileError
from scenariocast.interop import convert, read_network
from scenariocast.spec.load import load_tree

ROOT = Path(__file__).resolve().parent
NETWORKS = ROOT / "data" / "networks"
BROKEN = ROOT / "fixtures" / "networks"
FORMATS = ("bif", "xmlbif", "net", "xdsl", "yaml")

#: each broken file and what its one line must say
EXPECTED = {
    "truncated.bif": (32, "the file ends too early"),
    "truncated.xmlbif": (47, "the file ends too early"),
    "truncated.net": (41, "the file ends too early"),
    "truncated.xdsl": (33, "the file ends too early"),
    "arity.bif": (31, "row (True) of 'Xray' has 1 number for 2 states"),
    "arity.xmlbif": (47, "the table of 'Xray' has 3 numbers; 2 states x 2 parent combinations"),
    "arity.net": (43, "the table of 'Xray' has 3 numbers; 2 states x 2 parent combinations"),
    "arity.xdsl": (24, "the table of 'Xray' has 3 numbers; 2 states x 2 parent combinations"),
    "sum.bif": (21, "the probabilities of 'Smoker' sum to 0.9, not 1"),
    "sum.xmlbif": (36, "the probabilities of 'Smoker' sum to 0.9, not 1"),
    "sum.net": (35, "the probabilities of 'Smoker' sum to 0.9, not 1"),
    "sum.xdsl": (12, "the probabilities of 'Smoker' sum to 0.9, not 1"),
    "unknown.bif": (34, "'Dyspnoea' has an unknown parent 'Cancr' (did you mean 'Cancer'?)"),
    "unknown.xmlbif": (51, "'Dyspnoea' has an unknown parent 'Cancr' (did you mean 'Cancer'?)"),
    "unknown.net": (45, "'Dyspnoea' has an unknown parent 'Cancr' (did you mean 'Cancer'?)"),
    "unknown.xdsl": (29, "'Dyspnoea' has an unknown parent 'Cancr' (did you mean 'Cancer'?)"),
    "undeclared.bif": (30, "unknown variable 'XRay' (did you mean 'Xray'?)"),
    "undeclared.xmlbif": (44, "unknown variable 'XRay' (did you mean 'Xray'?)"),
    "undeclared.net": (41, "unknown node 'XRay' (did you mean 'Xray'?)"),
}


def test_every_broken_file_is_listed() -> None:
    assert sorted(p.name for p in BROKEN.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_broken_file_is_one_line_with_its_line_exit_1(name: str, tmp_path: Path) -> None:
    line, text = EXPECTED[name]
    out = tmp_path / "out.yaml"
    result = CliRunner().invoke(app, ["convert", str(BROKEN / name), str(out)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"{name}:{line}: " in lines[0]
    assert text in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("name", ["asia", "child", "insurance"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_round_trip_keeps_every_table(name: str, fmt: str, tmp_path: Path) -> None:
    source = read_network(NETWORKS / f"{name}.bif")
    there = tmp_path / f"{name}.{fmt}"
    notes = convert(NETWORKS / f"{name}.bif", there).notes
    back = tmp_path / f"{name}-back.bif"
    convert(there, back)
    again = read_network(back)
    assert sorted(again.variables) == sorted(source.variables)  # written parents first
    for vid, var in source.variables.items():
        other = again.variables[vid]
        if other.states != var.states:  # a format whose names cannot hold the ids: noted
            assert any("state ids change" in n for n in notes)
            assert len(other.states) == len(var.states)
        assert other.parents == var.parents
        np.testing.assert_allclose(other.table, var.table, rtol=0, atol=1e-12)


def test_names_that_are_not_ids_become_labels(tmp_path: Path) -> None:
    done = convert(NETWORKS / "child.bif", tmp_path / "child.yaml")
    assert any("state names are not valid ids" in n for n in done.notes)
    tree = load_tree(tmp_path / "child.yaml")
    labels = {
        tree.state_label(n, s): s
        for n, node in tree.nodes.items()
        for s in node.states
        if tree.state_label(n, s) != s
    }
    assert labels["<5"] == "lt5"
    assert labels["12+"] == "s12plus"
    assert labels["Asy/Patch"] == "Asy_Patch"
    for s in labels.values():
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", s)
    # and back to BIF, the labels are the names again
    convert(tmp_path / "child.yaml", tmp_path / "child.bif")
    assert "{ lt5" not in (tmp_path / "child.bif").read_text()
    assert "<5" in (tmp_path / "child.bif").read_text()


def test_rows_renormalised_are_noted_with_the_largest_deviation(tmp_path: Path) -> None:
    done = convert(NETWORKS / "hepar2.bif", tmp_path / "hepar2.net")
    notes = [n for n in done.notes if "renormalised" in n]
    assert notes
    assert any(
        re.search(r"'alt': 21 rows sum to 1 only within 1e-07 .* at line 730", n) for n in notes
    )


def test_a_tighter_tolerance_makes_such_rows_an_error(tmp_path: Path) -> None:
    with pytest.raises(NetworkFileError, match=r"hepar2.bif:\d+: the probabilities of"):
        convert(NETWORKS / "hepar2.bif", tmp_path / "x.yaml", tolerance=1e-9)
    assert not (tmp_path / "x.yaml").exists()


def test_what_a_network_format_cannot_hold_is_reported(tmp_path: Path) -> None:
    example = ROOT.parent / "examples" / "example-harvest.yaml"
    done = convert(example, tmp_path / "harvest.xdsl")
    lost = [n for n in done.notes if "cannot hold" in n]
    assert lost
    assert "rationing_returns" in " ".join(lost)  # an outcome
    assert "distribution_report" in " ".join(lost)  # an indicator
