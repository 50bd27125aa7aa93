"""Listing the ledger: the queries' filters against a plain-Python reference, and the sqlite3
reader (used by `info` and `evidence`, no SQLAlchemy) against the Ledger, on the same file."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scenariocast.evidence.readings import Reading
from scenariocast.ledger import Ledger
from scenariocast.ledger.reads import SCHEMA_REVISION, SqliteReader, open_reader
from tests.ledger_support import FIXTURES

FILTERS: list[dict[str, Any]] = [
    {},
    {"indicator": "crackdowns"},
    {"indicator": "rice_price", "source": "daily_nk"},
    {"source": "wire"},
    {"location": "Hyesan"},
    {"location": "nowhere"},
    {"since": dt.date(2025, 6, 1)},
    {"since": dt.date(2025, 3, 31)},  # a period, taken by its last day
    {"before": 5},
    {"before": 2**70},  # beyond 64 bits: every reading
    {"include_retracted": False},
    {"include_retracted": False, "indicator": "crackdowns", "since": dt.date(2025, 2, 1)},
]


def _fill(ledger: Ledger) -> None:
    rows = [
        ("crackdowns", "2", "2025-01", "wire", "Hyesan"),
        ("crackdowns", "0", "2025-02", "wire", None),
        ("rice_price", "5200", "2025-03-14", "daily_nk", "Pyongyang"),
        ("crackdowns", "3", "2025-01/2025-03", "wire", "Hyesan"),
        ("rice_price", "6100", "2025-07-02", "daily_nk", "Hyesan"),
        ("crackdowns", "1", "2025-06", "wire", None),
        ("rice_price", "5900", "2025-06-30", "asia_press", "Sinuiju"),
    ]
    for indicator, value, on, source, where in rows:
        ledger.observe(indicator, value, observed=on, source=source, location=where)
    ledger.retract(2, reason="misread")
    ledger.retract(6, reason="duplicate")


def _reference(every: list[Reading], f: dict[str, Any]) -> list[Reading]:
    """The filters spelled out on the whole ledger, in Python."""

    def keep(r: Reading) -> bool:
        return (
            all(getattr(r, k) == f[k] for k in ("indicator", "source", "location") if k in f)
            and ("since" not in f or r.observed.end >= f["since"])
            and ("before" not in f or r.id < f["before"])
            and (f.get("include_retracted", True) or not r.retracted)
        )

    return [r for r in every if keep(r)]


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    file = tmp_path_factory.mktemp("reads") / "l.db"
    _fill(Ledger(file))
    return file


@pytest.mark.parametrize("limit", [None, 2, 0])
@pytest.mark.parametrize("f", FILTERS, ids=lambda f: ",".join(f) or "all")
def test_the_reader_and_the_ledger_list_what_the_filters_say(
    filled: Path, f: dict[str, Any], limit: int | None
) -> None:
    ledger = Ledger(filled)
    reader = open_reader(filled)
    assert isinstance(reader, SqliteReader)
    every = ledger.readings()
    assert [r.id for r in every] == list(range(1, 8))
    expected = _reference(every, f)
    if limit is not None:
        expected = expected[len(expected) - limit :] if limit else []
    assert ledger.readings(**f, limit=limit) == expected
    assert reader.readings(**f, limit=limit) == expected
    counted = {k: v for k, v in f.items() if k != "before"}
    assert ledger.count(**counted) == reader.count(**counted) == len(_reference(every, counted))


def test_the_filters_mean_the_same_on_every_database(ledger_url: str) -> None:
    """The one set of queries, run by the Ledger on SQLite and PostgreSQL (days are text on
    one and dates on the other), against the filters spelled out in Python."""
    ledger = Ledger(ledger_url)
    _fill(ledger)
    every = ledger.readings()
    assert len(every) == 7 and sum(r.retracted for r in every) == 2
    for f in FILTERS:
        for limit in (None, 2):
            expected = _reference(every, f)
            if limit is not None:
                expected = expected[len(expected) - limit :]
            assert ledger.readings(**f, limit=limit) == expected, (f, limit)
        counted = {k: v for k, v in f.items() if k != "before"}
        assert ledger.count(**counted) == len(_reference(every, counted)), f
    assert ledger.reading(4).observed.end == dt.date(2025, 3, 31)
    assert ledger.counts().retracted == 2


def test_the_reader_builds_readings_as_written(filled: Path) -> None:
    """Dates, periods, times, retractions and reasons come back as the ledger gives them."""
    reader = open_reader(filled)
    assert reader is not None
    got = {r.id: r for r in reader.readings()}
    assert got[4].observed.start == dt.date(2025, 1, 1)
    assert got[4].observed.end == dt.date(2025, 3, 31)
    assert got[4].observed.text == "2025-01/2025-03"
    assert got[2].retracted and got[2].retraction_reason == "misread"
    assert not got[3].retracted and got[3].retraction_reason is None
    assert got[3].entered_at is not None and got[3].entered_at.tzinfo == dt.UTC
    assert got == {r.id: r for r in Ledger(filled).readings()}
    counts = reader.counts()
    assert counts == Ledger(filled).counts()
    assert (counts.readings, counts.retracted, counts.snapshots) == (7, 2, 0)


def test_a_reading_of_a_node_reads_back_as_one(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    ledger.observe_node("harvest", "poor", observed="2025-04", source="wire")
    reader = open_reader(tmp_path / "l.db")
    assert reader is not None
    (read,) = reader.readings()
    assert read.of_node and read.indicator == "harvest" and read.value == "poor"
    assert [read] == ledger.readings()


def test_ledgers_the_reader_leaves_to_the_ledger(tmp_path: Path) -> None:
    """A missing file, a URL, or a file at an earlier revision: a Ledger reads, upgrades or
    says what is wrong."""
    assert open_reader(tmp_path / "none.db") is None
    _fill(Ledger(tmp_path / "l.db"))
    assert open_reader(f"sqlite:///{tmp_path / 'l.db'}") is None
    old = tmp_path / "old.db"
    con = sqlite3.connect(old)
    con.executescript((FIXTURES / "ledger-rev0003.sql").read_text(encoding="utf-8"))
    con.close()
    assert open_reader(old) is None
    assert Ledger(old).schema_revision() == "0003"
    Ledger(old).readings()  # upgraded on first use
    assert Ledger(old).schema_revision() == SCHEMA_REVISION
    assert open_reader(old) is not None
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not a database at all" * 100)
    assert open_reader(broken) is None


def test_the_default_ledger_is_found_as_the_ledger_finds_it(
    filled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCENARIOCAST_DB", str(filled))
    reader = open_reader(None)
    assert reader is not None and reader.location == Ledger().location == str(filled)
    monkeypatch.setenv("SCENARIOCAST_DB", "  ")
    monkeypatch.setenv("XDG_DATA_HOME", str(filled.parent / "data"))
    assert open_reader("") is None  # no ledger at the default place yet
    assert Ledger().location == str(filled.parent / "data" / "scenariocast" / "ledger.db")


def _cli(args: list[str], db: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCENARIOCAST_DB": str(db), "SCENARIOCAST_SCENARIOS": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "scenariocast.cli", *args], env=env, capture_output=True, text=True
    )


def test_info_and_evidence_on_an_earlier_revision_upgrade_it_and_list(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    con = sqlite3.connect(old)
    con.executescript((FIXTURES / "ledger-rev0003.sql").read_text(encoding="utf-8"))
    con.close()
    listed = _cli(["evidence", "--limit", "0", "--json"], old, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert Ledger(old).schema_revision() == SCHEMA_REVISION
    assert len(json.loads(listed.stdout)) == Ledger(old).count()
    info = _cli(["info"], old, tmp_path)
    assert info.returncode == 0, info.stderr
    assert f"readings: {Ledger(old).count()}" in info.stdout


def test_evidence_on_a_damaged_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not a database at all" * 100)
    for args in (["evidence"], ["info"]):
        done = _cli(args, broken, tmp_path)
        assert done.returncode == 1, done.stdout
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert str(broken) in done.stderr
