"""The column-wise evidence selection gives the same evidence as the rule-by-rule reference.

``select_evidence`` (what every forecast uses) takes shortcuts when a rule has nothing to do;
``select_evidence_reference`` applies each rule to one reading at a time. They must agree on
any readings: retracted ones, repeats, links, as-of cut-offs, several sources and indicators,
``latest`` and window rules, dynamic trees, unreadable values, ids given twice. The readings
come from a ledger (SQLite and PostgreSQL) and from lists built here.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from scenariocast.evidence import select as select_module
from scenariocast.evidence.readings import Reading
from scenariocast.evidence.select import select_evidence, select_evidence_reference
from scenariocast.ledger import Ledger, readings_hash
from scenariocast.spec.tree import Tree
from scenariocast.testing import random_dynamic_tree_spec, random_readings, tree_from_dict
from tests.conftest import reading

SOURCES = ("wire", "market_survey", "rumour", "no_such_source")
CUTS = (dt.date(2024, 6, 30), dt.date(2025, 3, 15), dt.date(2100, 1, 1))


def _assert_same(
    tree: Tree, readings: list[Reading], as_of: dt.date, *, deferred: bool = False
) -> None:
    """Equal evidence; ``deferred``: whether the fast path hands these readings to the
    reference (an unreadable value, an id given twice), else it must not."""
    calls: list[int] = []

    def counted(*args: object) -> object:
        calls.append(1)
        return select_evidence_reference(*args)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(select_module, "select_evidence_reference", counted)
        fast = select_evidence(tree, readings, as_of)
    assert bool(calls) == deferred
    ref = select_evidence_reference(tree, readings, as_of)
    assert fast.observations == ref.observations
    assert fast.excluded == ref.excluded
    assert fast.reports == ref.reports
    assert fast.stale == ref.stale
    assert fast.reading_ids == ref.reading_ids
    assert fast == ref


def _messy(seed: int, n: int = 400, *, unreadable: bool = False) -> list[Reading]:
    """Readings of the example tree with every complication, ids in entry order."""
    rng = random.Random(seed)
    out: list[Reading] = []
    for rid in range(1, n + 1):
        indicator = rng.choice(
            ["crackdowns", "crackdowns", "rice_price", "distribution_report", "unknown_thing"]
        )
        value = {
            "crackdowns": str(rng.randrange(0, 5)),
            "rice_price": str(rng.choice([4000, 5200, 6100, 8000])),
            "distribution_report": rng.choice(["yes", "no"]),
            "unknown_thing": "1",
        }[indicator]
        if unreadable and rng.random() < 0.03:
            value = "not a number"
        month = rng.randrange(1, 13)
        on = rng.choice(
            [f"2024-{month:02d}", f"2025-{month:02d}-{rng.randrange(1, 28):02d}", "2024-01/2024-03"]
        )
        repeat = out and rng.random() < 0.15
        if repeat:  # an identical row entered again
            twin = rng.choice(out)
            indicator, value, on = twin.indicator, twin.value, twin.observed.text
        out.append(
            reading(
                rid,
                indicator,
                value,
                on=on,
                source=twin.source if repeat else rng.choice(SOURCES),
                location=(twin.location if repeat else rng.choice([None, "north", "south"])),
                links=(rng.randrange(1, rid) if rid > 1 and rng.random() < 0.05 else None),
                retracted=rng.random() < 0.05,
            )
        )
    return out


@pytest.mark.parametrize("seed", range(6))
def test_the_same_evidence_on_messy_readings(example_tree: Tree, seed: int) -> None:
    readings = _messy(seed)
    for as_of in CUTS:
        _assert_same(example_tree, readings, as_of)
    # the order given does not matter to either
    shuffled = readings[:]
    random.Random(seed).shuffle(shuffled)
    _assert_same(example_tree, shuffled, CUTS[1])


def test_unreadable_values_are_left_to_the_reference(example_tree: Tree) -> None:
    readings = _messy(3, unreadable=True)
    assert any(r.value == "not a number" for r in readings)
    _assert_same(example_tree, readings, CUTS[-1], deferred=True)


def test_the_same_evidence_with_no_complication(example_tree: Tree) -> None:
    readings = [
        reading(i, "crackdowns", str(i % 7), on=f"2025-{1 + i % 12:02d}", location=f"s{i}")
        for i in range(1, 3001)
    ]
    _assert_same(example_tree, readings, CUTS[-1])
    assert len(select_evidence(example_tree, readings, CUTS[-1]).observations) == 3000


def test_the_same_evidence_when_an_id_is_given_twice(example_tree: Tree) -> None:
    readings = _messy(7, 60)
    twice = [*readings, *readings[:10]]
    _assert_same(example_tree, twice, CUTS[-1], deferred=True)


@pytest.mark.parametrize("seed", range(4))
def test_the_same_evidence_on_dynamic_trees(seed: int) -> None:
    spec = random_dynamic_tree_spec(seed, 6, n_dynamic=3, n_steps=12, n_indicators=4)
    for k, indicator in enumerate(spec["indicators"].values()):
        if k % 2:  # latest per source (and step, on dynamic nodes), within a window
            indicator["combine"] = {"rule": "latest", "per": ["source"], "window_days": 200}
    tree = tree_from_dict(spec)
    readings = random_readings(tree, 300, seed)
    assert tree.steps is not None
    for as_of in (tree.steps.first_day(5), tree.steps.last_day(tree.steps.n - 1)):
        _assert_same(tree, readings, as_of)


def test_the_same_evidence_from_a_ledger(example_tree: Tree, ledger_url: str) -> None:
    """Readings as the ledger gives them back (SQLite and PostgreSQL), with retractions."""
    ledger = Ledger(ledger_url)
    made = _messy(11, 150)
    for r in made:
        if r.indicator == "unknown_thing" or r.source == "no_such_source":
            continue
        stored = ledger.observe(
            r.indicator,
            r.value,
            observed=r.observed.text,
            source=r.source,
            location=r.location,
            entered_by="test",
        )
        if r.retracted:
            ledger.retract(stored.id, reason="wrong", by="test")
    readings = ledger.readings()
    ledger.close()
    assert any(r.retracted for r in readings)
    for as_of in CUTS:
        _assert_same(example_tree, readings, as_of)
    used = set(select_evidence(example_tree, readings, CUTS[-1]).reading_ids)
    digest = readings_hash([r for r in readings if r.id in used])
    assert digest == readings_hash(reversed([r for r in readings if r.id in used]))


def test_the_readings_hash_is_as_it_was(tmp_path: Path) -> None:
    """The hash recorded with snapshots keeps its definition: sorted (id, value, retracted)."""
    import hashlib
    import json

    readings = [reading(3, "crackdowns", "2"), reading(1, "crackdowns", "é", retracted=True)]
    blob = json.dumps([[1, "é", True], [3, "2", False]], separators=(",", ":"), ensure_ascii=False)
    assert readings_hash(readings) == hashlib.sha256(blob.encode()).hexdigest()
