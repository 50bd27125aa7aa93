"""Shared fixtures: the example tree and readings built with scenariocast.testing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from scenariocast.evidence.readings import ObservedDate, Reading
from scenariocast.spec.load import load_tree
from scenariocast.spec.tree import Tree

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "scenarios" / "example-harvest.yaml"
FAR_FUTURE = dt.date(2100, 1, 1)


@pytest.fixture(scope="session")
def example_tree() -> Tree:
    return load_tree(EXAMPLE)


def reading(
    rid: int,
    indicator: str,
    value: str,
    on: str = "2026-03-01",
    source: str = "wire",
    location: str | None = None,
    links: int | None = None,
    retracted: bool = False,
) -> Reading:
    """A reading for tests, with only the fields that matter given."""
    return Reading(
        id=rid,
        indicator=indicator,
        value=value,
        observed=ObservedDate.parse(on),
        source=source,
        location=location,
        links=links,
        retracted=retracted,
        retraction_reason="test" if retracted else None,
    )
