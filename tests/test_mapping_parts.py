"""A mapping rule that drops a summary row (an average of cities) only when its parts are read.

``tests/fixtures/ledger/parts/readings.csv`` holds five survey rounds, each with a "city
average" row; the mapping drops the average only when the Pyongyang and Hyesan rows of the same
round (same date, same source) are imported as readings. Each ``wrong_*.yaml`` there is a
broken mapping that must give one problem naming the rule.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scenariocast.errors import MappingError
from scenariocast.ledger import ImportReport, Ledger
from scenariocast.ledger.mapping import load_mapping
from tests.ledger_support import FIXTURES, example_catalog

PARTS = FIXTURES / "parts"
REASON = "the mean of the Pyongyang and Hyesan readings of the same survey, imported one by one"


@pytest.fixture
def report(tmp_path: Path) -> ImportReport:
    ledger = Ledger(tmp_path / "ledger.db")
    return ledger.import_csv(PARTS / "readings.csv", catalog=example_catalog())


def test_an_average_is_dropped_only_when_its_parts_are_read(report: ImportReport) -> None:
    imported = [(r.observed.text, r.location, r.value) for r in report.imported]
    averages = [(date, value) for date, where, value in imported if "average" in (where or "")]
    assert averages == [
        # 2025-11-09: no Hyesan row in the round
        ("2025-11-09", "20700"),
        # 2025-11-23: the Hyesan row comes from another network (another source)
        ("2025-11-23", "20050"),
        # 2025-12-07: the Hyesan row is in thousands, which the mapping does not read
        ("2025-12-07", "20050"),
    ]
    # 2025-10-26 and 2025-12-21 (parts matched in any case): both parts read, average dropped
    assert [(line, reason) for line, _, reason in report.skipped_unused] == [
        (4, REASON),
        (11, "thousands of won, not read in this test"),
        (15, REASON),
    ]


def test_the_reason_is_true_of_every_row_it_is_given_for(report: ImportReport) -> None:
    """Each dropped average has both parts among the readings: same date, same source."""
    readings = report.imported
    lines = (PARTS / "readings.csv").read_text().splitlines()
    for line, _, reason in report.skipped_unused:
        if reason != REASON:
            continue
        date = lines[line - 1].split(",")[0]
        parts = {
            (r.location or "").casefold()
            for r in readings
            if r.observed.text == date and r.source == "market_survey"
        }
        assert {"pyongyang", "hyesan"} <= parts, (line, date)


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("without_unused", r":7: indicators\.rice_price_market\[0\]: `parts` goes with `unused`"),
        ("two_columns", r":7: indicators\.rice_price_market\[0\]: `parts` names one column"),
        ("one_value", r":7: indicators\.rice_price_market\[0\]: `parts` needs at least two"),
        (
            "unknown_column",
            r":8: indicators\.rice_price_market\[0\]\.parts\.locaton: unknown column 'locaton' "
            r"\(did you mean 'location'\?\)",
        ),
    ],
)
def test_broken_parts_rules(name: str, pattern: str) -> None:
    with pytest.raises(MappingError) as err:
        load_mapping(PARTS / f"wrong_{name}.yaml")
    assert len(err.value.problems) == 1
    assert re.search(pattern, str(err.value.problems[0])), str(err.value.problems[0])
