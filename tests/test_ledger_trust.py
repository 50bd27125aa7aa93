"""A ledger a team can trust: migrations, append-only, the hash chain, export and restore,
readers never blocked, writers that wait a bounded time, damaged and read-only files.

Every test that takes ``ledger_url`` runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from scenariocast.api import forecast
from scenariocast.cli import app
from scenariocast.errors import (
    LedgerBusyError,
    LedgerError,
    LedgerIntegrityError,
    LedgerNotFoundError,
    LedgerVersionError,
    ReadingError,
)
from scenariocast.evidence.catalog import Catalog
from scenariocast.ledger import Ledger
from scenariocast.ledger.schema import SCHEMA_REVISION, TABLES, metadata
from tests.conftest import fresh_pg_database
from tests.ledger_support import EXAMPLE_TREE, FIXTURES, dump, example_catalog, state


@pytest.fixture
def catalog() -> Catalog:
    return example_catalog()


@pytest.fixture
def ledger(ledger_url: str) -> Ledger:
    return Ledger(ledger_url)


def _fill(ledger: Ledger, catalog: Catalog) -> None:
    """A few readings of every kind, a retraction and a snapshot."""
    a = ledger.observe(
        "rice_price", "5200", observed="2025-10-26", source="market_survey", catalog=catalog
    )
    ledger.observe("crackdowns", "2", observed="2025-10", source="wire", catalog=catalog)
    ledger.observe(
        "distribution_report",
        "yes",
        observed="2025-11",
        source="rumour",
        note="line one\nline two",
        location="Hyesan",
        catalog=catalog,
    )
    ledger.retract(a.id, reason="misdated")
    ledger.observe(
        "rice_price", "5600", observed="2025-11-16", source="wire", report="s-1", catalog=catalog
    )
    forecast(EXAMPLE_TREE, ledger, as_of=dt.date(2026, 1, 1))
    wrong = ledger.resolve("rationing_returns", True, on="2026-01-02", source="a rumour", by="ana")
    ledger.retract_resolution(wrong.id, reason="the rumour was denied", by="bo")
    ledger.resolve(
        "rationing_returns", False, on="2026-01-03", source="the year's record", note="no\nsign"
    )


def _engine(ledger: Ledger) -> sa.Engine:
    return sa.create_engine(ledger.url)


# ---------------------------------------------------------------------------------------------
# migrations


def test_the_schema_module_is_where_the_migrations_end(ledger: Ledger) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", "scenariocast.ledger:migrations")
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_REVISION
    assert ledger.create()
    engine = _engine(ledger)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []
    assert ledger.schema_revision() == SCHEMA_REVISION


def _sqlite_schema(path: Path) -> dict[str, object]:
    """Everything a SQLite ledger's schema is: each table's columns, keys, indexes, triggers."""
    con = sqlite3.connect(path)
    try:
        out: dict[str, object] = {}
        for kind, name in con.execute(
            "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
        ):
            if kind == "table":
                out[name] = (
                    con.execute(f"PRAGMA table_xinfo({name})").fetchall(),
                    sorted(con.execute(f"PRAGMA foreign_key_list({name})").fetchall()),
                    sorted(row[1:] for row in con.execute(f"PRAGMA index_list({name})")),
                )
            elif kind == "index":
                out[name] = con.execute(f"PRAGMA index_xinfo({name})").fetchall()
            else:
                (sql,) = con.execute(
                    "SELECT sql FROM sqlite_master WHERE name = ?", (name,)
                ).fetchone()
                out[name] = " ".join(sql.split())
        out["revision"] = con.execute("SELECT version_num FROM alembic_version").fetchall()
        out["journal_mode"] = con.execute("PRAGMA journal_mode").fetchall()
        return out
    finally:
        con.close()


def test_a_new_sqlite_ledger_is_the_ledger_the_migrations_make(tmp_path: Path) -> None:
    """A new SQLite ledger is made at the current revision directly, without Alembic."""
    from scenariocast.ledger import migrate

    made = Ledger(tmp_path / "made.db")
    assert made.create()
    con = sqlite3.connect(tmp_path / "migrated.db")  # as a ledger's file is set up
    con.execute("PRAGMA journal_mode = WAL")
    con.close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    with engine.begin() as conn:
        assert migrate.upgrade(conn) == (None, SCHEMA_REVISION)
    engine.dispose()
    direct, migrated = (
        _sqlite_schema(tmp_path / "made.db"),
        _sqlite_schema(tmp_path / "migrated.db"),
    )
    assert set(direct) == set(migrated)
    for name in migrated:
        assert direct[name] == migrated[name], name
    assert sum(name.endswith("_append_only_delete") for name in direct) == len(TABLES)
    # and it behaves as one: append-only, at the current revision
    made.observe("crackdowns", "2", observed="2025-10", source="wire")
    con = sqlite3.connect(tmp_path / "made.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM readings")
    con.close()
    assert made.schema_revision() == SCHEMA_REVISION


def _load_0_1_0(url: str) -> None:
    sql = (FIXTURES / "ledger-0.1.0.sql").read_text(encoding="utf-8")
    if url.startswith("postgresql"):
        sql = sql.replace("DATETIME", "TIMESTAMP").replace("BEGIN TRANSACTION;", "")
        sql = sql.replace("COMMIT;", "")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            for statement in sql.split(";\n"):
                if statement.strip() and not statement.strip().startswith("--"):
                    conn.exec_driver_sql(statement)
                elif "\n" in statement.strip():
                    body = "\n".join(ln for ln in statement.splitlines() if not ln.startswith("--"))
                    if body.strip():
                        conn.exec_driver_sql(body)
        engine.dispose()
    else:
        con = sqlite3.connect(url)
        con.executescript(sql)
        con.close()


def test_a_server_ledger_from_0_1_is_upgraded_only_when_asked(pg_admin_url: str) -> None:
    """(SQLite ledgers are upgraded on first use: test_ledger_store.py.)"""
    with fresh_pg_database(pg_admin_url) as url:
        _server_upgrade(url)


def _server_upgrade(ledger_url: str) -> None:
    _load_0_1_0(ledger_url)
    old = Ledger(ledger_url)
    with pytest.raises(
        LedgerVersionError, match=r"revision 0001; .* `scenariocast ledger upgrade`"
    ):
        old.readings()
    assert old.upgrade() == ("0001", SCHEMA_REVISION)
    again = Ledger(ledger_url)
    assert [(r.id, r.value, r.retracted) for r in again.readings()] == [
        (1, "5200", False),
        (2, "2", True),
        (3, "5400", False),
    ]
    assert again.history()[0].payload == {"outcomes": {"x": 0.5}}
    assert again.verify().ok  # the old rows were placed in the chain
    assert again.upgrade() == (SCHEMA_REVISION, SCHEMA_REVISION)


def test_a_ledger_at_the_current_schema_opens_and_upgrades(tmp_path: Path) -> None:
    """The fixture was made at revision 0003; each later revision must upgrade it intact."""
    path = tmp_path / "current.db"
    con = sqlite3.connect(path)
    con.executescript((FIXTURES / "ledger-rev0003.sql").read_text(encoding="utf-8"))
    con.close()
    before = dump(str(path))
    ledger = Ledger(path)
    assert ledger.upgrade()[1] == SCHEMA_REVISION
    report = ledger.verify()
    assert report.ok, report.problems()
    assert report.entries == report.total == 6
    assert [r.value for r in ledger.readings()] == ["5200", "2", "yes", "5600"]
    assert ledger.readings()[0].retracted
    # revision 0005 adds readings.kind, empty on every earlier reading: the rest is untouched
    after = dump(str(path))["readings"]
    assert [row[:-1] for row in after] == before["readings"]
    assert [row[-1] for row in after] == [None] * len(after)
    # revision 0004: resolutions join the chain after the old entries, append-only from the start
    first = ledger.resolve("rationing_returns", False, on="2026-01-10", source="record")
    ledger.retract_resolution(first.id, reason="too early")
    report = ledger.verify()
    assert report.ok, report.problems()
    assert report.entries == report.total == 8
    con = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM resolutions")
    con.close()


def test_a_ledger_from_0_1_0_takes_resolutions_after_its_upgrade(ledger_url: str) -> None:
    """Every revision in turn, 0001 to the current one, then a resolution on top."""
    _load_0_1_0(ledger_url)
    ledger = Ledger(ledger_url)
    assert ledger.upgrade() == ("0001", SCHEMA_REVISION)
    r = ledger.resolve("x", True, on="2026-02-01", source="the record", by="ana")
    assert (r.id, r.outcome, r.happened, r.entered_by) == (1, "x", True, "ana")
    assert Ledger(ledger_url).verify().ok
    assert [x.id for x in Ledger(ledger_url).resolutions()] == [1]


def test_an_export_made_before_resolutions_restores(
    ledger: Ledger, catalog: Catalog, tmp_path: Path
) -> None:
    ledger.observe("crackdowns", "2", observed="2025-10", source="wire", catalog=catalog)
    out = tmp_path / "export"
    ledger.export(out)
    for name in ("resolutions.csv", "resolution_retractions.csv"):
        (out / name).unlink()  # as an export of revision 0003 was
    target = Ledger(tmp_path / "target.db")
    report = target.restore(out)
    assert (report.readings, report.resolutions) == (1, 0)
    assert target.verify().head == ledger.verify().head


def test_a_ledger_made_by_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Ledger(path).create()
    con = sqlite3.connect(path)
    con.execute("UPDATE alembic_version SET version_num = '0999'")
    con.commit()
    con.close()
    with pytest.raises(LedgerVersionError, match="made by a newer version of scenariocast"):
        Ledger(path).readings()


def test_ledger_init_and_upgrade_at_the_command_line(ledger_url: str) -> None:
    env = {"SCENARIOCAST_DB": ledger_url}
    result = CliRunner().invoke(app, ["ledger", "init"], env=env)
    assert result.exit_code == 0 and "created an empty ledger" in result.stdout
    result = CliRunner().invoke(app, ["ledger", "init"], env=env)
    assert result.exit_code == 0 and "already" in result.stdout
    result = CliRunner().invoke(app, ["ledger", "upgrade"], env=env)
    assert result.exit_code == 0 and f"revision {SCHEMA_REVISION} already" in result.stdout


# ---------------------------------------------------------------------------------------------
# append-only and the hash chain


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE readings SET value = '9999' WHERE id = 2",
        "DELETE FROM readings WHERE id = 2",
        "DELETE FROM retractions",
        "UPDATE snapshots SET payload = '{}'",
        "DELETE FROM snapshots",
        "UPDATE resolutions SET answer = 'yes'",
        "DELETE FROM resolutions",
        "DELETE FROM resolution_retractions",
        "UPDATE resolution_retractions SET reason = 'x'",
    ],
)
def test_the_database_refuses_updates_and_deletes(
    ledger: Ledger, catalog: Catalog, statement: str
) -> None:
    _fill(ledger, catalog)
    before = dump(ledger)
    engine = _engine(ledger)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql(statement)
    engine.dispose()
    assert dump(ledger) == before


def _behind_the_back(ledger: Ledger, *statements: str) -> None:
    """Run SQL on the ledger with the append-only triggers out of the way, as a tamperer would."""
    engine = _engine(ledger)
    with engine.begin() as conn:
        if ledger.is_sqlite:
            names = [
                r[0]
                for r in conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger'"
                )
            ]
            for name in names:
                conn.exec_driver_sql(f"DROP TRIGGER {name}")
        else:
            for table in TABLES:
                conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        for statement in statements:
            conn.exec_driver_sql(statement)
        if not ledger.is_sqlite:
            for table in TABLES:
                conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    engine.dispose()


def test_verify_holds_on_an_untouched_ledger(ledger: Ledger, catalog: Catalog) -> None:
    _fill(ledger, catalog)
    report = ledger.verify()
    assert report.ok, report.problems()
    # 4 readings, 1 retraction, 1 snapshot, 2 resolutions, the retraction of one
    assert report.entries == report.total == 9
    assert len(report.head) == 64


def test_an_entry_hash_is_the_sha256_of_its_content_as_compact_json() -> None:
    """The chain's definition, which ledgers already written depend on: however rows are
    hashed in bulk, an entry's hash stays the SHA-256 of the previous hash, the table and the
    content as compact JSON (dates in ISO form)."""
    import hashlib
    import json

    from scenariocast.ledger.chain import FIELDS, GENESIS, content_hash, entry_hash

    row = {
        "id": 7,
        "indicator": "crackdowns",
        "value": "3.5",
        "observed": "2025-10",
        "observed_start": dt.date(2025, 10, 1),
        "observed_end": dt.date(2025, 10, 31),
        "location": 'Sinŭiju "north" \\ gate',
        "source": "wire",
        "note": "two lines\nof note\u2028",
        "links": 3,
        "entered_at": dt.datetime(2025, 11, 2, 3, 4, 5, 6),
        "entered_by": "analyst",
    }
    content = [row.get(name) for name in FIELDS["readings"]]
    as_json = json.dumps(
        [v.isoformat() if isinstance(v, dt.date) else v for v in content],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    expected = hashlib.sha256(f"{GENESIS}\nreadings\n{as_json}".encode()).hexdigest()
    assert entry_hash(GENESIS, "readings", row) == expected
    assert content_hash(GENESIS, "readings", content) == expected


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (
            "UPDATE readings SET value = '9999' WHERE id = 2",
            r"^entry 2, reading #2: its hash does not follow from its content",
        ),
        (
            "UPDATE retractions SET reason = 'never mind'",
            r"^entry 4, the retraction of reading #1: its hash does not follow",
        ),
        ("DELETE FROM readings WHERE id = 3", r"^entry 3 is missing \(deleted\?\); the next is "),
        (
            "UPDATE snapshots SET payload = '{\"outcomes\": {}}'",
            r"^entry 6, snapshot #1: its hash does not follow",
        ),
        (
            "UPDATE resolutions SET answer = 'yes' WHERE id = 2",
            r"^entry 9, resolution #2: its hash does not follow",
        ),
        (
            "UPDATE resolution_retractions SET reason = 'never mind'",
            r"^entry 8, the retraction of resolution #1: its hash does not follow",
        ),
        ("DELETE FROM resolution_retractions", r"^entry 8 is missing"),
    ],
)
def test_verify_names_the_first_entry_changed_behind_its_back(
    ledger: Ledger, catalog: Catalog, statement: str, message: str
) -> None:
    _fill(ledger, catalog)
    _behind_the_back(ledger, statement)
    report = Ledger(ledger.url).verify()
    assert not report.ok
    assert report.chain_problem is not None
    assert re.search(message, report.chain_problem), report.chain_problem
    result = CliRunner().invoke(app, ["ledger", "verify", "--db", ledger.url])
    assert result.exit_code == 1
    assert "error: entry " in result.stderr and "Traceback" not in result.output


def test_verify_notices_a_row_written_without_the_chain(ledger: Ledger, catalog: Catalog) -> None:
    _fill(ledger, catalog)
    _behind_the_back(
        ledger,
        "INSERT INTO readings (id, indicator, value, observed, observed_start, observed_end, "
        "source, entered_at, entered_by) VALUES (99, 'crackdowns', '5', '2025', '2025-01-01', "
        "'2025-12-31', 'wire', '2026-01-01 00:00:00', 'mallory')",
    )
    report = Ledger(ledger.url).verify()
    assert report.chain_problem == (
        "reading #99 has no place in the chain: it was written behind scenariocast's back"
    )


def test_verify_notices_missing_triggers(tmp_path: Path, catalog: Catalog) -> None:
    ledger = Ledger(tmp_path / "l.db")
    _fill(ledger, catalog)
    con = sqlite3.connect(ledger.location)
    con.execute("DROP TRIGGER readings_append_only_delete")
    con.commit()
    con.close()
    report = Ledger(ledger.url).verify()
    assert report.missing_triggers == ("readings_append_only_delete",)
    assert not report.ok


# ---------------------------------------------------------------------------------------------
# export and restore


def _outcomes(ledger: Ledger) -> dict[str, float]:
    result = forecast(EXAMPLE_TREE, ledger, as_of=dt.date(2026, 1, 1), record=False)
    return {o.id: o.probability for o in result.outcomes.values()}


def test_export_then_restore_into_an_empty_ledger_gives_the_same_forecasts(
    ledger: Ledger, catalog: Catalog, tmp_path: Path, pg_or_sqlite_target: str
) -> None:
    _fill(ledger, catalog)
    out = tmp_path / "export"
    result = CliRunner().invoke(app, ["ledger", "export", str(out), "--db", ledger.url])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "readings.csv",
        "resolution_retractions.csv",
        "resolutions.csv",
        "retractions.csv",
        "snapshots.csv",
    ]
    target = Ledger(pg_or_sqlite_target)
    result = CliRunner().invoke(app, ["ledger", "restore", str(out), "--db", target.url])
    assert result.exit_code == 0, result.output
    assert "restored 4 readings, 1 retractions, 1 snapshots and 2 resolutions" in result.stdout
    assert _outcomes(target) == _outcomes(ledger)
    assert target.readings() == ledger.readings()
    assert target.history() == ledger.history()
    assert target.resolutions() == ledger.resolutions()
    assert target.verify().head == ledger.verify().head
    # restoring again into the now full ledger is refused, and changes nothing
    before = dump(target)
    with pytest.raises(LedgerError, match="is not empty"):
        target.restore(out)
    assert dump(target) == before


def test_an_edited_export_is_refused(ledger: Ledger, catalog: Catalog, tmp_path: Path) -> None:
    _fill(ledger, catalog)
    out = tmp_path / "export"
    ledger.export(out)
    text = (out / "readings.csv").read_text(encoding="utf-8")
    (out / "readings.csv").write_text(text.replace(",5600,", ",6600,"), encoding="utf-8")
    target = Ledger(tmp_path / "restored.db")
    with pytest.raises(
        LedgerError, match=r"does not verify, nothing restored: entry 5, reading #4"
    ):
        target.restore(out)
    assert not target.exists()


def test_export_refuses_a_folder_with_an_export(
    ledger: Ledger, catalog: Catalog, tmp_path: Path
) -> None:
    _fill(ledger, catalog)
    ledger.export(tmp_path / "e")
    with pytest.raises(LedgerError, match=r"already holds readings\.csv"):
        ledger.export(tmp_path / "e")


def test_a_parquet_export_restored_into_an_empty_ledger_gives_the_same_forecasts(
    ledger: Ledger, catalog: Catalog, tmp_path: Path, pg_or_sqlite_target: str
) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet exports need pyarrow")
    _fill(ledger, catalog)
    out = tmp_path / "export"
    cmd = ["ledger", "export", str(out), "--format", "parquet", "--db", ledger.url]
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 0, result.output
    assert "exported 4 readings, 1 retractions, 1 snapshots and 2 resolutions" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "readings.parquet",
        "resolution_retractions.parquet",
        "resolutions.parquet",
        "retractions.parquet",
        "snapshots.parquet",
    ]
    # typed columns, for whoever reads the export with other tools
    schema = pq.read_schema(out / "readings.parquet")
    assert str(schema.field("observed_start").type) == "date32[day]"
    assert str(schema.field("entered_at").type) == "timestamp[us]"
    assert str(schema.field("id").type) == "int64"
    target = Ledger(pg_or_sqlite_target)
    result = CliRunner().invoke(app, ["ledger", "restore", str(out), "--db", target.url])
    assert result.exit_code == 0, result.output
    assert "restored 4 readings, 1 retractions, 1 snapshots and 2 resolutions" in result.stdout
    assert _outcomes(target) == _outcomes(ledger)
    assert target.resolutions() == ledger.resolutions()
    assert target.readings() == ledger.readings()
    assert target.history() == ledger.history()
    assert target.verify().head == ledger.verify().head


def test_an_edited_parquet_export_is_refused(
    ledger: Ledger, catalog: Catalog, tmp_path: Path
) -> None:
    pa = pytest.importorskip("pyarrow", reason="Parquet exports need pyarrow")
    import pyarrow.parquet as pq

    _fill(ledger, catalog)
    out = tmp_path / "export"
    ledger.export(out, format="parquet")
    table = pq.read_table(out / "readings.parquet")
    values = ["6600" if v == "5600" else v for v in table.column("value").to_pylist()]
    edited = table.set_column(table.column_names.index("value"), "value", pa.array(values))
    pq.write_table(edited, out / "readings.parquet")
    target = Ledger(tmp_path / "restored.db")
    with pytest.raises(
        LedgerError, match=r"does not verify, nothing restored: entry 5, reading #4"
    ):
        target.restore(out)
    assert not target.exists()


def test_a_parquet_file_that_is_not_an_export_is_one_line_naming_it(
    ledger: Ledger, catalog: Catalog, tmp_path: Path
) -> None:
    pa = pytest.importorskip("pyarrow", reason="Parquet exports need pyarrow")
    import pyarrow.parquet as pq

    _fill(ledger, catalog)
    out = tmp_path / "export"
    ledger.export(out, format="parquet")
    pq.write_table(pa.table({"id": [1]}), out / "snapshots.parquet")
    (out / "retractions.parquet").write_bytes(b"not parquet at all")
    target = tmp_path / "restored.db"
    result = CliRunner().invoke(app, ["ledger", "restore", str(out), "--db", str(target)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert "retractions.parquet" in lines[0] and "not a Parquet file" in lines[0]
    assert "Traceback" not in result.output
    assert not target.exists()
    (out / "retractions.parquet").unlink()
    ledger.export(tmp_path / "again", format="parquet")
    (tmp_path / "again" / "retractions.parquet").rename(out / "retractions.parquet")
    result = CliRunner().invoke(app, ["ledger", "restore", str(out), "--db", str(target)])
    assert result.exit_code == 1
    assert "snapshots.parquet" in result.output
    assert "not an export of snapshots: the columns must be id,created_at," in result.output
    assert not target.exists()


def test_a_parquet_export_without_pyarrow_says_how_to_get_it(
    ledger: Ledger, catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(ledger, catalog)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    out = tmp_path / "export"
    cmd = ["ledger", "export", str(out), "--format", "parquet", "--db", ledger.url]
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "error: Parquet needs pyarrow, which is not installed: pip install "
        "'scenariocast[parquet]' (or export to CSV, the default)"
    ]
    assert not out.exists()
    result = CliRunner().invoke(app, [*cmd[:4], "--format", "xlsx", *cmd[6:]])
    assert result.exit_code == 2


# ---------------------------------------------------------------------------------------------
# readers never wait; writers wait a bounded time


class _WriteLock:
    """Hold the ledger's write lock from outside, as a long import would."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def __enter__(self) -> _WriteLock:
        if self.ledger.is_sqlite:
            self.con: object = sqlite3.connect(self.ledger.location, isolation_level=None)
            self.con.execute("BEGIN IMMEDIATE")  # type: ignore[attr-defined]
        else:
            from tests.conftest import _admin

            self.con = _admin(self.ledger.url)
            self.con.execute("BEGIN")  # type: ignore[attr-defined]
            from scenariocast.ledger.store import _PG_LOCK_KEY

            self.con.execute(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        self.con.execute("ROLLBACK")  # type: ignore[attr-defined]
        self.con.close()  # type: ignore[attr-defined]


def test_readers_never_wait_and_writers_give_up_with_a_clear_message(
    ledger: Ledger, catalog: Catalog
) -> None:
    _fill(ledger, catalog)
    before = state(ledger)
    with _WriteLock(ledger):
        reader = Ledger(ledger.url, lock_timeout=0.5)
        assert len(reader.readings()) == 4
        assert reader.counts().readings == 4
        assert len(reader.history()) == 1
        writer = Ledger(ledger.url, lock_timeout=0.5)
        with pytest.raises(
            LedgerBusyError,
            match=r"is busy: another process has been writing to it for more than 0.5 s",
        ):
            writer.observe("crackdowns", "1", observed="2025-12", source="wire", catalog=catalog)
    assert state(ledger) == before


def test_the_lock_timeout_comes_from_the_environment(
    ledger: Ledger, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(ledger, catalog)
    monkeypatch.setenv("SCENARIOCAST_LOCK_TIMEOUT", "0.3")
    with _WriteLock(ledger):
        result = CliRunner().invoke(
            app,
            [
                "observe",
                "crackdowns",
                "1",
                "--on",
                "2025-12",
                "--source",
                "wire",
                "--db",
                ledger.url,
                "--scenarios",
                str(EXAMPLE_TREE.parent),
            ],
        )
    assert result.exit_code == 1
    assert "more than 0.3 s" in result.stderr and "Traceback" not in result.output


# ---------------------------------------------------------------------------------------------
# damaged and read-only files (SQLite)


def _corrupt(path: Path) -> None:
    """Overwrite the middle of the readings table's pages, as a failing disk might."""
    con = sqlite3.connect(path)
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'readings'").fetchone()[0]
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    with path.open("r+b") as fh:
        fh.seek((root - 1) * page_size + 8)
        fh.write(b"\xff" * 64)


def test_a_damaged_file_is_not_written_to(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "damaged.db"
    ledger = Ledger(path)
    for k in range(200):
        ledger.observe("crackdowns", str(k), observed="2025-10", source="wire", note="x" * 200)
    ledger.close()
    _corrupt(path)
    before = path.read_bytes()
    with pytest.raises(
        LedgerIntegrityError, match=r"fails its integrity check .*nothing was written"
    ):
        Ledger(path).observe("crackdowns", "1", observed="2025-12", source="wire")
    with pytest.raises(LedgerIntegrityError):
        Ledger(path).retract(1, reason="x")
    assert path.read_bytes() == before
    result = CliRunner().invoke(app, ["ledger", "verify", "--db", str(path)])
    assert result.exit_code == 1 and "integrity" in result.stderr


def _on_a_read_only_file_system(folder: Path) -> list[str]:
    """A prefix that runs a command with ``folder`` mounted read-only, in its own mount
    namespace (the mount goes away with the command)."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1): cannot mount a read-only file system for the test")
    flag = "-m" if os.geteuid() == 0 else "-rm"
    script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@"'
    probe = subprocess.run(
        ["unshare", flag, "sh", "-c", script, str(folder), "true"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a read-only file system here: {probe.stderr.strip()}")
    return ["unshare", flag, "sh", "-c", script, str(folder)]


def test_read_commands_work_on_a_read_only_file_system(tmp_path: Path, catalog: Catalog) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "ledger.db"
    ledger = Ledger(path)
    _fill(ledger, catalog)
    ledger.close()
    scen = tmp_path / "scenarios"
    scen.mkdir()
    shutil.copy(EXAMPLE_TREE, scen / EXAMPLE_TREE.name)
    before = path.read_bytes()
    prefix = _on_a_read_only_file_system(folder)
    env = {**os.environ, "SCENARIOCAST_DB": str(path), "SCENARIOCAST_SCENARIOS": str(scen)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, sys.executable, "-m", "scenariocast.cli", *args],
            env=env,
            capture_output=True,
            text=True,
        )

    for args in (["evidence"], ["info"], ["history"], ["ledger", "verify"]):
        done = run(*args)
        assert done.returncode == 0, (args, done.stderr)
    assert "entries in an unbroken chain: 9 of 9" in run("ledger", "verify").stdout
    done = run("evidence", "--json")
    assert [r["value"] for r in __import__("json").loads(done.stdout)] == [
        "5200",
        "2",
        "yes",
        "5600",
    ]
    done = run("forecast", str(scen / EXAMPLE_TREE.name), "--as-of", "2026-01-01")
    assert done.returncode == 0, done.stderr
    assert "not recorded in the history" in done.stderr
    done = run("observe", "crackdowns", "1", "--on", "2025-12", "--source", "wire")
    assert done.returncode == 1
    assert "read-only for you" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert path.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["ledger.db"]


# ---------------------------------------------------------------------------------------------
# what a reading is, at entry


def test_the_same_reading_spelled_differently_is_one_reading(
    ledger: Ledger, catalog: Catalog, tmp_path: Path
) -> None:
    csv = tmp_path / "spellings.csv"
    csv.write_text(
        "date,indicator,value,source\n"
        + "".join(
            f"2025-11,distribution_report,{v},wire\n"
            for v in ["yes", "Yes", "YES", "y", "1", "true"]
        )
        + "".join(f"2025-11,crackdowns,{v},wire\n" for v in ["3", "3.0", "03", "3e0"])
    )
    report = ledger.import_csv(csv, catalog=catalog)
    assert [r.value for r in report.imported] == ["yes", "3"]
    assert [line for line, _, _ in report.skipped_duplicates] == [3, 4, 5, 6, 7, 9, 10, 11]
    # entered one by one, they are kept (the ledger is a log) but count once
    for v in ["Yes", "true", "1"]:
        ledger.observe("distribution_report", v, observed="2025-11", source="wire", catalog=catalog)
    once = forecast(EXAMPLE_TREE, [report.imported[0]], as_of=dt.date(2026, 1, 1))
    all_of_them = forecast(EXAMPLE_TREE, ledger, as_of=dt.date(2026, 1, 1), record=False)
    key = "rationing_returns"
    assert all_of_them.evidence.reading_ids.count(report.imported[0].id) == 1
    only_binary = forecast(
        EXAMPLE_TREE,
        [r for r in ledger.readings() if r.indicator == "distribution_report"],
        as_of=dt.date(2026, 1, 1),
    )
    assert only_binary.outcomes[key].probability == pytest.approx(once.outcomes[key].probability)


def test_entries_record_who_made_them(ledger: Ledger, catalog: Catalog) -> None:
    _fill(ledger, catalog)
    (snap,) = ledger.history()
    assert snap.created_by
    assert not snap.is_what_if


def test_reading_a_ledger_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledgr.db"
    for call in (
        lambda led: led.readings(),
        lambda led: led.counts(),
        lambda led: led.history(),
        lambda led: led.reading(1),
        lambda led: led.verify(),
        lambda led: led.retract(1, reason="x"),
    ):
        with pytest.raises(LedgerNotFoundError, match=rf"^no ledger at {path}: .*ledger init"):
            call(Ledger(path))
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"indicator": "rice\nprice"}, r"^indicator: 'rice\\nprice' holds a control character"),
        ({"location": "Hye\x1bsan"}, r"^location: 'Hye\\x1bsan' holds a control character"),
        ({"observed": "0001-01-01"}, r"^date '0001-01-01' is before 1900"),
        ({"observed": "2999-01-01"}, r"^date '2999-01-01' is in the future"),
        ({"value": "1e308"}, r"^crackdowns: value '1e308' is too large"),
    ],
)
def test_entry_checks(
    ledger: Ledger, catalog: Catalog, kwargs: dict[str, str], message: str
) -> None:
    args = {
        "indicator": "crackdowns",
        "value": "2",
        "observed": "2025-10",
        "source": "wire",
        **kwargs,
    }
    with pytest.raises(ReadingError, match=message):
        ledger.observe(
            args.pop("indicator"),
            args.pop("value"),
            catalog=catalog,
            **args,  # type: ignore[arg-type]
        )
    assert not ledger.exists()


def test_a_note_may_hold_line_breaks(ledger: Ledger) -> None:
    r = ledger.observe("crackdowns", "2", observed="2025-10", source="wire", note="a\nb\tc")
    assert ledger.reading(r.id).note == "a\nb\tc"


def test_ordinary_commands_do_not_import_alembic(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    Ledger(path).create()
    code = (
        "import sys\n"
        "from scenariocast.cli import app\n"
        "sys.argv = ['scenariocast', *sys.argv[1:]]\n"
        "try:\n    app()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('ALEMBIC', 'alembic' in sys.modules, file=sys.stderr)\n"
    )
    env = {
        **os.environ,
        "SCENARIOCAST_DB": str(path),
        "SCENARIOCAST_SCENARIOS": str(EXAMPLE_TREE.parent),
    }
    for args in (
        ["observe", "crackdowns", "2", "--on", "2025-10", "--source", "wire"],
        ["forecast", str(EXAMPLE_TREE), "--json"],
        ["evidence"],
        ["info"],
    ):
        proc = subprocess.run(
            [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        assert "ALEMBIC False" in proc.stderr, args


@pytest.fixture(params=["sqlite", "postgresql"])
def pg_or_sqlite_target(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    """An empty place to restore into, on either database (so SQLite -> PostgreSQL is tested)."""
    if request.param == "sqlite":
        yield str(tmp_path / "restored.db")
        return
    admin = request.getfixturevalue("pg_admin_url")
    with fresh_pg_database(admin) as url:
        yield url
