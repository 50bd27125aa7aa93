"""Plots draw what the results hold (matplotlib with the Agg backend)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import matplotlib
import pytest

from scenariocast.engines.exact import ExactModel
from scenariocast.report.plots import plot_steps
from scenariocast.spec.load import parse_tree

matplotlib.use("Agg")

DOC = Path(__file__).resolve().parent.parent / "docs" / "scenario-format.md"


def test_plot_steps_stacks_the_states_of_a_dynamic_node() -> None:
    block = re.search(
        r"```yaml\n(.*?)```", DOC.read_text().split("## A dynamic example", 1)[1], re.DOTALL
    )
    assert block is not None
    tree = parse_tree(block.group(1), file="lean-year.yaml")
    result = ExactModel(tree).forecast([], as_of=dt.date(2026, 4, 15), top=0)
    ax = plot_steps(result, "shock")
    assert len(ax.collections) == 3  # one band per state
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["2026-01", "2026-02"]
    assert [line.get_xdata()[0] for line in ax.get_lines()] == [3.5]  # after April, predicted
    with pytest.raises(ValueError, match="not a dynamic node"):
        plot_steps(result, "imports")
