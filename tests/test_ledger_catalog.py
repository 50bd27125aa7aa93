"""The catalog: which indicators, values and sources a reading may name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scenariocast.errors import ReadingError, SpecError
from scenariocast.evidence.catalog import Catalog
from scenariocast.spec.load import load_tree
from tests.ledger_support import EXAMPLE_TREE, FIXTURES, example_catalog


def test_catalog_of_the_example_tree() -> None:
    cat = example_catalog()
    assert set(cat.indicators) == {"rice_price", "distribution_report", "crackdowns"}
    assert cat.indicators["rice_price"].kind == "normal"
    assert cat.indicators["rice_price"].unit == "KPW/kg"
    assert cat.indicators["distribution_report"].kind == "binary"
    assert cat.indicators["crackdowns"].kind == "count"
    assert set(cat.sources) == {"market_survey", "wire", "rumour"}


def test_check_accepts_a_valid_reading() -> None:
    cat = example_catalog()
    cat.check("rice_price", "5200", "market_survey")
    cat.check("distribution_report", "yes", "wire")
    cat.check("crackdowns", "3", "rumour")


def test_unknown_indicator_has_a_hint() -> None:
    with pytest.raises(
        ReadingError, match=r"unknown indicator 'rice_prise' \(did you mean 'rice_price'\?\)"
    ):
        example_catalog().check("rice_prise", "5200", "market_survey")


def test_unknown_source_has_a_hint() -> None:
    with pytest.raises(ReadingError, match=r"unknown source 'wir' \(did you mean 'wire'\?\)"):
        example_catalog().check("rice_price", "5200", "wir")


@pytest.mark.parametrize(
    ("indicator", "value", "message"),
    [
        ("rice_price", "cheap", "rice_price: value 'cheap' is not a number"),
        ("distribution_report", "maybe", "distribution_report: value 'maybe' is not yes/no"),
        ("crackdowns", "2.5", "crackdowns: value '2.5' is not a count"),
        ("crackdowns", "-1", "crackdowns: value '-1' is not a count"),
    ],
)
def test_bad_value_is_prefixed_with_the_indicator(indicator: str, value: str, message: str) -> None:
    with pytest.raises(ReadingError) as err:
        example_catalog().check(indicator, value, "wire")
    assert str(err.value).startswith(message)


def test_trees_that_agree_are_merged(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE_TREE, tmp_path)
    shutil.copy(FIXTURES / "conflict" / "compatible-tree.yaml", tmp_path)
    cat = Catalog.from_dir(tmp_path)
    assert cat.indicators["rice_price"].trees == ("compatible-tree", "example-harvest")
    assert set(cat.sources) == {"market_survey", "wire", "rumour", "press"}
    cat.check("rice_price", "1", "press")


def test_trees_that_disagree_name_both_trees() -> None:
    trees = [load_tree(EXAMPLE_TREE), load_tree(FIXTURES / "conflict" / "other-tree.yaml")]
    with pytest.raises(SpecError) as err:
        Catalog.from_trees(trees)
    message = str(err.value)
    assert "crackdowns" in message
    assert "'other-tree'" in message
    assert "'example-harvest'" in message
    assert "binary" in message
    assert "count" in message


def test_from_dir_reads_only_yaml_directly_in_the_folder(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE_TREE, tmp_path)
    sub = tmp_path / "drafts"
    sub.mkdir()
    # a conflicting tree in a subfolder is not read
    shutil.copy(FIXTURES / "conflict" / "other-tree.yaml", sub)
    (tmp_path / "notes.txt").write_text("not a tree")
    cat = Catalog.from_dir(tmp_path)
    assert cat.indicators["crackdowns"].kind == "count"
    assert "protest_report" not in cat.indicators


def test_from_dir_without_trees(tmp_path: Path) -> None:
    with pytest.raises(ReadingError, match=r"no scenario trees in .* to check readings against"):
        Catalog.from_dir(tmp_path)
    with pytest.raises(ReadingError, match="no scenario trees in"):
        Catalog.from_dir(tmp_path / "missing")


def test_from_dir_reports_a_broken_tree(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE_TREE, tmp_path)
    (tmp_path / "broken.yaml").write_text("nodes: {}\n")
    with pytest.raises(SpecError, match=r"broken\.yaml"):
        Catalog.from_dir(tmp_path)
