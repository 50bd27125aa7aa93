"""The ledger: recording, reading back and retracting readings; snapshots; where it lives."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scenariocast.errors import LedgerError, ReadingError
from scenariocast.evidence.catalog import Catalog
from scenariocast.evidence.readings import ObservedDate
from scenariocast.ledger import Ledger, Snapshot, readings_hash
from tests.ledger_support import FIXTURES, dump, example_catalog


@pytest.fixture
def catalog() -> Catalog:
    return example_catalog()


@pytest.fixture
def ledger(ledger_url: str) -> Ledger:
    """A new ledger, on SQLite and on PostgreSQL."""
    return Ledger(ledger_url)


def test_observe_round_trip_with_every_field(ledger: Ledger, catalog: Catalog) -> None:
    before = dt.datetime.now(dt.UTC)
    first = ledger.observe(
        "crackdowns", "2", observed="2025-10", source="wire", catalog=catalog, entered_by="ana"
    )
    stored = ledger.observe(
        "crackdowns",
        "2",
        observed="2025-10-26",
        source="rumour",
        unit="reports",
        location="Hyesan",
        note="same crackdown as #1",
        source_url="https://example.org/1",
        links=first.id,
        entered_by="bo",
        catalog=catalog,
    )
    assert stored.id == first.id + 1
    assert stored.indicator == "crackdowns"
    assert stored.value == "2"
    assert stored.observed == ObservedDate.parse("2025-10-26")
    assert stored.source == "rumour"
    assert stored.unit == "reports"
    assert stored.location == "Hyesan"
    assert stored.note == "same crackdown as #1"
    assert stored.source_url == "https://example.org/1"
    assert stored.links == first.id
    assert stored.entered_by == "bo"
    assert stored.entered_at is not None
    assert stored.entered_at.tzinfo is not None
    assert before <= stored.entered_at <= dt.datetime.now(dt.UTC)
    assert not stored.retracted
    assert stored.retraction_reason is None
    # what a fresh Ledger on the same file reads back is what observe returned
    again = Ledger(ledger.url).readings()
    assert again == [first, stored]


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2025-10-26", dt.date(2025, 10, 26), dt.date(2025, 10, 26)),
        ("2025-02", dt.date(2025, 2, 1), dt.date(2025, 2, 28)),
        ("2024", dt.date(2024, 1, 1), dt.date(2024, 12, 31)),
        ("2023-01/2023-06", dt.date(2023, 1, 1), dt.date(2023, 6, 30)),
    ],
)
def test_observed_date_forms_are_kept(
    ledger: Ledger, catalog: Catalog, text: str, start: dt.date, end: dt.date
) -> None:
    ledger.observe("rice_price", "5200", observed=text, source="market_survey", catalog=catalog)
    (reading,) = Ledger(ledger.url).readings()
    assert reading.observed.text == text
    assert reading.observed.start == start
    assert reading.observed.end == end


def test_observe_strips_and_defaults(ledger: Ledger) -> None:
    reading = ledger.observe(
        " rice_price ", " 5200 ", observed=" 2025 ", source=" wire ", note="  "
    )
    assert (reading.indicator, reading.value, reading.source) == ("rice_price", "5200", "wire")
    assert reading.observed.text == "2025"
    assert reading.note is None
    assert reading.entered_by  # the OS user name or "unknown"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"indicator": "rice_prise"},
            r"unknown indicator 'rice_prise' \(did you mean 'rice_price'",
        ),
        ({"source": "wir"}, r"unknown source 'wir' \(did you mean 'wire'"),
        ({"value": "cheap"}, r"rice_price: value 'cheap' is not a number"),
        ({"observed": "2025-13"}, r"date '2025-13' is not a day"),
        ({"observed": "26/10/2025"}, r"date '26/10/2025' is not a day"),
        ({"observed": "2025-06/2025-01"}, r"ends before it starts"),
        ({"links": 999}, r"no reading with id 999"),
        ({"links": 1}, r"reading 1 is of indicator 'crackdowns', not 'rice_price'"),
        ({"value": " "}, r"needs a value"),
    ],
)
def test_a_rejected_reading_leaves_the_ledger_as_it_was(
    ledger: Ledger, catalog: Catalog, kwargs: dict[str, object], message: str
) -> None:
    ledger.observe("crackdowns", "1", observed="2025-01", source="wire", catalog=catalog)
    before = dump(ledger)
    args: dict[str, object] = {
        "indicator": "rice_price",
        "value": "5200",
        "observed": "2025-10-26",
        "source": "market_survey",
        **kwargs,
    }
    with pytest.raises(ReadingError, match=message):
        ledger.observe(
            str(args.pop("indicator")),
            str(args.pop("value")),
            catalog=catalog,
            **args,  # type: ignore[arg-type]
        )
    assert dump(ledger) == before


def test_without_a_catalog_any_indicator_is_accepted(ledger: Ledger) -> None:
    reading = ledger.observe("anything_at_all", "x", observed="2025", source="nobody")
    assert reading.indicator == "anything_at_all"


def test_readings_filter_by_indicator(ledger: Ledger, catalog: Catalog) -> None:
    a = ledger.observe("crackdowns", "1", observed="2025-01", source="wire", catalog=catalog)
    b = ledger.observe("rice_price", "9", observed="2025-01", source="wire", catalog=catalog)
    c = ledger.observe("crackdowns", "2", observed="2025-02", source="wire", catalog=catalog)
    assert [r.id for r in ledger.readings()] == [a.id, b.id, c.id]
    assert [r.id for r in ledger.readings(indicator="crackdowns")] == [a.id, c.id]
    assert ledger.readings(indicator="nothing") == []
    assert ledger.reading(b.id) == b


def test_retract_keeps_the_reading_and_the_reason(ledger: Ledger, catalog: Catalog) -> None:
    a = ledger.observe("crackdowns", "1", observed="2025-01", source="wire", catalog=catalog)
    b = ledger.observe("crackdowns", "2", observed="2025-02", source="wire", catalog=catalog)
    retracted = ledger.retract(a.id, reason="  misread the date  ", by="ana")
    assert retracted.retracted
    assert retracted.retraction_reason == "misread the date"
    assert retracted.value == a.value
    every = ledger.readings()
    assert [r.id for r in every] == [a.id, b.id]
    assert every[0].retracted
    assert not every[1].retracted
    assert [r.id for r in ledger.readings(include_retracted=False)] == [b.id]
    rows = dump(ledger)
    assert rows["retractions"][0][:2] == (a.id, "misread the date")
    assert rows["retractions"][0][3] == "ana"
    assert len(rows["readings"]) == 2  # the row itself is never edited or deleted


def test_cannot_retract_twice(ledger: Ledger) -> None:
    a = ledger.observe("crackdowns", "1", observed="2025-01", source="wire")
    ledger.retract(a.id, reason="duplicate")
    before = dump(ledger)
    with pytest.raises(LedgerError, match=f"reading {a.id} is already retracted \\(duplicate\\)"):
        ledger.retract(a.id, reason="again")
    assert dump(ledger) == before
    assert ledger.reading(a.id).retraction_reason == "duplicate"


def test_retract_an_unknown_reading(ledger: Ledger) -> None:
    ledger.observe("crackdowns", "1", observed="2025-01", source="wire")
    before = dump(ledger)
    with pytest.raises(LedgerError, match=r"^no reading with id 42$"):
        ledger.retract(42, reason="typo")
    assert dump(ledger) == before


def test_retract_needs_a_reason(ledger: Ledger) -> None:
    a = ledger.observe("crackdowns", "1", observed="2025-01", source="wire")
    with pytest.raises(ReadingError, match="needs a reason"):
        ledger.retract(a.id, reason="   ")
    assert not ledger.reading(a.id).retracted


def test_snapshots_and_history(ledger: Ledger) -> None:
    a = ledger.observe("crackdowns", "1", observed="2025-01", source="wire")
    used = ledger.readings()
    first = ledger.record_snapshot(
        tree_id="example-harvest",
        tree_hash="abc",
        engine="exact",
        as_of=dt.date(2025, 11, 1),
        given={"weather": "poor"},
        n_readings=len(used),
        readings_hash=readings_hash(used),
        payload={"rationing_returns": 0.42, "nodes": {"harvest": {"short": 0.5}}},
    )
    other = ledger.record_snapshot(
        tree_id="other",
        tree_hash="def",
        engine="pymc",
        as_of=dt.date(2025, 11, 2),
        given={},
        n_readings=0,
        readings_hash=readings_hash([]),
        payload={},
    )
    ledger.retract(a.id, reason="wrong")
    second = ledger.record_snapshot(
        tree_id="example-harvest",
        tree_hash="abc",
        engine="exact",
        as_of=dt.date(2025, 11, 3),
        given={},
        n_readings=1,
        readings_hash=readings_hash(ledger.readings()),
        payload={"rationing_returns": 0.3},
    )
    assert first < other < second
    history = Ledger(ledger.url).history("example-harvest")
    assert [s.id for s in history] == [first, second]  # newest last
    snap = history[0]
    assert isinstance(snap, Snapshot)
    assert snap.tree_hash == "abc"
    assert snap.engine == "exact"
    assert snap.as_of == dt.date(2025, 11, 1)
    assert snap.given == {"weather": "poor"}
    assert snap.n_readings == 1
    assert snap.payload == {"rationing_returns": 0.42, "nodes": {"harvest": {"short": 0.5}}}
    assert snap.created_at.tzinfo is not None
    assert history[0].readings_hash != history[1].readings_hash  # the retraction shows
    assert [s.id for s in ledger.history()] == [first, other, second]
    assert ledger.history("nothing") == []


def test_snapshot_payload_must_be_json(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="not JSON data"):
        ledger.record_snapshot(
            tree_id="t",
            tree_hash="h",
            engine="exact",
            as_of=dt.date(2025, 1, 1),
            given={},
            n_readings=0,
            readings_hash="",
            payload={"p": float("nan")},
        )


def test_readings_hash(ledger: Ledger) -> None:
    a = ledger.observe("crackdowns", "1", observed="2025-01", source="wire")
    b = ledger.observe("crackdowns", "2", observed="2025-02", source="wire")
    h = readings_hash([a, b])
    assert len(h) == 64
    assert readings_hash([b, a]) == h  # order does not matter
    assert readings_hash([a]) != h
    assert readings_hash([a, ledger.retract(b.id, reason="x")]) != h
    changed = ledger.observe("crackdowns", "3", observed="2025-02", source="wire")
    assert readings_hash([a, changed]) != readings_hash([a, b])
    assert readings_hash([]) == readings_hash([])


# ---------------------------------------------------------------------------------------------
# where the ledger lives


def test_url_and_location(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "l.db"
    led = Ledger(str(path))
    assert led.location == str(path)
    assert led.url == f"sqlite:///{path}"
    assert not path.parent.exists()  # nothing is created before first use
    assert not led.exists()
    led.observe("crackdowns", "1", observed="2025", source="wire")
    assert path.is_file()
    assert Ledger(f"sqlite:///{path}").location == str(path)
    pg = Ledger("postgresql+psycopg://ana:s3cret@db.example.org/ledger")
    assert "s3cret" not in pg.location
    assert pg.location == "postgresql+psycopg://ana:***@db.example.org/ledger"
    assert "s3cret" in pg.url


def test_env_var_names_the_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "from-env.db"
    monkeypatch.setenv("SCENARIOCAST_DB", str(path))
    led = Ledger()
    assert led.location == str(path)
    led.observe("crackdowns", "1", observed="2025", source="wire")
    assert path.is_file()
    monkeypatch.setenv("SCENARIOCAST_DB", f"sqlite:///{tmp_path / 'url.db'}")
    assert Ledger().location == str(tmp_path / "url.db")
    # an explicit url wins over the environment
    assert Ledger(tmp_path / "explicit.db").location == str(tmp_path / "explicit.db")


def test_default_location_under_xdg_data_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCENARIOCAST_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    led = Ledger()
    assert led.location == str(tmp_path / "data" / "scenariocast" / "ledger.db")
    assert led.create()
    assert (tmp_path / "data" / "scenariocast" / "ledger.db").is_file()
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Ledger().location == str(
        tmp_path / "home" / ".local" / "share" / "scenariocast" / "ledger.db"
    )


def test_cannot_open_under_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(LedgerError, match=r"^cannot open the ledger at .*a-file/l\.db: "):
        Ledger(blocker / "l.db").observe("crackdowns", "1", observed="2025", source="wire")


def test_cannot_open_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "not.db"
    bad.write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(LedgerError) as err:
        Ledger(bad).observe("crackdowns", "1", observed="2025", source="wire")
    message = str(err.value)
    assert message.startswith(f"cannot open the ledger at {bad}: ")
    assert "\n" not in message


def test_unknown_database_driver(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match=r"^cannot open the ledger at nosuchdb://"):
        Ledger("nosuchdb://host/x").readings()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    import sqlite3

    ledger = Ledger(tmp_path / "ledger.db")
    ledger.create()
    con = sqlite3.connect(ledger.location)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()


def test_copying_the_file_while_a_ledger_is_open_loses_no_writes(tmp_path: Path) -> None:
    """A program that holds a Ledger and reads the file itself (a backup, a checksum) closes a
    descriptor of the file, and with it every POSIX lock the process holds on it. Another
    process that then closes its last connection must not take itself for the last user and
    delete the WAL under the Ledger: every write of both processes stays in the ledger."""
    path = tmp_path / "ledger.db"
    held = Ledger(path)
    held.observe("crackdowns", "0", observed="2025-10", source="wire")

    def elsewhere(n: int) -> None:
        subprocess.run([sys.executable, "-c", _WRITER, str(path), str(n)], check=True)

    (tmp_path / "backup.db").write_bytes(path.read_bytes())
    elsewhere(1)
    held.observe("crackdowns", "2", observed="2025-10", source="wire")
    elsewhere(3)
    held.observe("crackdowns", "4", observed="2025-10", source="wire")
    assert [r.value for r in held.readings()] == ["0", "1", "2", "3", "4"]
    assert [r.value for r in Ledger(path).readings()] == ["0", "1", "2", "3", "4"]
    seen = subprocess.run(
        [sys.executable, "-c", _READER, str(path)], check=True, capture_output=True, text=True
    )
    assert seen.stdout.split() == ["0", "1", "2", "3", "4"]
    assert Ledger(path).verify().ok


_READER = """
import sys
from scenariocast.ledger import Ledger
print(*(r.value for r in Ledger(sys.argv[1]).readings()))
"""


_WRITER = """
import sys
from scenariocast.ledger import Ledger
led = Ledger(sys.argv[1])
n = sys.argv[2]
led.observe("crackdowns", n, observed="2025-10", source="wire", note="writer " + n)
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_hundred_concurrent_observe_processes_are_each_recorded_once(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hundred `scenariocast observe` processes let go at once, on a ledger that does not
    exist yet: each is recorded exactly once, the chain holds, and a process that waited too
    long says so in the one bounded-wait line (never a raw "database is locked").

    Each process is forked from this one and runs the command line's own entry point, so the
    hundred need not each start Python and import scenariocast (a minute and more of CPU on a
    small machine): the contention on the ledger is the same.
    """
    import shutil

    from scenariocast.cli import app
    from tests.ledger_support import EXAMPLE_TREE

    scen = tmp_path / "scenarios"
    scen.mkdir()
    shutil.copy(EXAMPLE_TREE, scen / EXAMPLE_TREE.name)
    monkeypatch.setenv("SCENARIOCAST_SCENARIOS", str(scen))
    # one observe here first, on a ledger of its own, so that the children start with what
    # the command imports on first use already imported
    warm = ["observe", "crackdowns", "1", "--on", "2025-10", "--source", "wire"]
    assert CliRunner().invoke(app, [*warm, "--db", str(tmp_path / "warm.db")]).exit_code == 0
    if ledger_url.startswith("postgresql"):
        import psycopg  # noqa: F401
    monkeypatch.setenv("SCENARIOCAST_DB", ledger_url)
    n = 100
    gate_r, gate_w = os.pipe()  # every child waits on it; closing it lets them all go
    pids: dict[int, int] = {}
    for i in range(n):
        args = ["observe", "crackdowns", str(i), "--on", "2025-10", "--source", "wire"]
        args += ["--note", f"writer {i}"]
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            _run_cli_child(app, args, tmp_path / f"{i}.out", tmp_path / f"{i}.err", gate_r, gate_w)
        pids[pid] = i
    os.close(gate_r)
    os.close(gate_w)
    codes = {pids[pid]: os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids}

    out = {i: (tmp_path / f"{i}.out").read_text() for i in range(n)}
    err = {i: (tmp_path / f"{i}.err").read_text() for i in range(n)}
    done = sorted(i for i, code in codes.items() if code == 0)
    for i, code in codes.items():
        if code != 0:  # only the bounded wait may turn a writer away, in its one line
            assert code == 1 and re.fullmatch(r"error: the ledger at .* is busy: .*\n", err[i])
    assert len(done) == n, (
        f"{n - len(done)} of {n} turned away: {err[next(iter(set(range(n)) - set(done)))]}"
    )
    ids = sorted(int(out[i].split("#")[1].split(":")[0]) for i in done)
    assert ids == list(range(1, n + 1))  # each process got an id of its own
    stored = Ledger(ledger_url).readings()
    assert sorted(int(r.value) for r in stored) == done
    assert sorted(r.note or "" for r in stored) == sorted(f"writer {i}" for i in done)
    assert Ledger(ledger_url).verify().ok


def _run_cli_child(
    app: Any, args: list[str], out: Path, err: Path, gate_r: int, gate_w: int
) -> None:  # pragma: no cover - runs in a forked child
    """Wait at the gate, run ``scenariocast ARGS`` with its output in files, and exit."""
    code = 70
    try:
        os.close(gate_w)
        os.read(gate_r, 1)  # returns when the parent closes its end
        sys.stdout = out.open("w")
        sys.stderr = err.open("w")
        try:
            app(args, prog_name="scenariocast")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def test_entered_by_falls_back_to_unknown(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    def no_user() -> str:
        raise OSError("no user name")

    monkeypatch.setattr(getpass, "getuser", no_user)
    reading = ledger.observe("crackdowns", "1", observed="2025", source="wire")
    assert reading.entered_by == "unknown"
    assert ledger.retract(reading.id, reason="test").retracted
    assert dump(ledger)["retractions"][0][3] == "unknown"


def test_a_ledger_from_version_0_1_opens_with_everything_intact(tmp_path: Path) -> None:
    """A ledger written before readings had a report column gains it, empty, on first use."""
    import sqlite3

    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript((FIXTURES / "ledger-0.1.0.sql").read_text(encoding="utf-8"))
    con.close()
    ledger = Ledger(path)
    old = ledger.readings()
    assert [(r.id, r.indicator, r.value, r.retracted, r.report) for r in old] == [
        (1, "rice_price", "5200", False, None),
        (2, "crackdowns", "2", True, None),
        (3, "rice_price", "5400", False, None),
    ]
    assert old[1].retraction_reason == "misdated"
    [snap] = ledger.history()
    assert snap.payload == {"outcomes": {"x": 0.5}}
    new = ledger.observe(
        "rice_price", "5600", observed="2025-11-16", source="wire", report="survey-46"
    )
    assert new.id == 4
    assert new.report == "survey-46"
    ledger.close()
    # opening it again changes nothing more
    assert [r.report for r in Ledger(path).readings()] == [None, None, None, "survey-46"]


def test_report_id_round_trip(ledger: Ledger, catalog: Catalog) -> None:
    r = ledger.observe(
        "rice_price",
        "5200",
        observed="2025-10-26",
        source="wire",
        report="  s-12 ",
        catalog=catalog,
    )
    assert r.report == "s-12"
    assert ledger.observe("rice_price", "5300", observed="2025-10-26", source="wire").report is None
