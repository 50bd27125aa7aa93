"""A ledger of 100,000 readings: kill -9 during an import, readers during an import, and a
PostgreSQL role that reads and forecasts but cannot write. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scenariocast.ledger import Ledger
from tests.conftest import _admin
from tests.ledger_support import EXAMPLE_TREE, state

N = 100_000


def _big_csv(path: Path, n: int = N) -> Path:
    with path.open("w") as fh:
        fh.write("date,indicator,value,source,location\n")
        for i in range(n):
            fh.write(f"2025-{1 + i % 12:02d},crackdowns,{i % 7},wire,site-{i}\n")
    return path


def _env(url: str, scen: Path) -> dict[str, str]:
    return {**os.environ, "SCENARIOCAST_DB": url, "SCENARIOCAST_SCENARIOS": str(scen)}


def _scenarios(tmp: Path) -> Path:
    scen = tmp / "scenarios"
    scen.mkdir()
    shutil.copy(EXAMPLE_TREE, scen / EXAMPLE_TREE.name)
    return scen


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "scenariocast.cli", *args]


def _holds_write_lock(ledger: Ledger) -> bool:
    if ledger.is_sqlite:
        con = sqlite3.connect(ledger.location, timeout=0, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return True
        else:
            con.execute("ROLLBACK")
            return False
        finally:
            con.close()
    with _admin(ledger.url) as con:
        row = con.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        ).fetchone()
        return bool(row and row[0])


@pytest.mark.slow
@pytest.mark.parametrize("after", [0.0, 0.4, 0.7, 0.9])
def test_kill_9_during_a_100k_import_leaves_the_ledger_whole(
    ledger_url: str, tmp_path: Path, after: float
) -> None:
    """Killed at a point of the import (a share of the time a whole import takes)."""
    scen = _scenarios(tmp_path)
    csv = _big_csv(tmp_path / "big.csv")
    ledger = Ledger(ledger_url)
    ledger.observe("crackdowns", "1", observed="2025-01", source="wire", location="seed")
    env = _env(ledger_url, scen)
    t0 = time.perf_counter()
    whole = subprocess.run(
        _cli("import", str(csv), "--db", str(tmp_path / "timing.db")), env=env, capture_output=True
    )
    assert whole.returncode == 0, whole.stderr
    duration = time.perf_counter() - t0
    before = state(ledger_url)
    proc = subprocess.Popen(
        _cli("import", str(csv)), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    time.sleep(after * duration)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    after_kill = Ledger(ledger_url)
    n = after_kill.counts().readings
    assert n in (1, N + 1)  # all or nothing
    if n == 1:
        assert state(ledger_url)["rows"] == before["rows"]
    report = after_kill.verify()
    assert report.ok, report.problems()
    # the ledger still takes writes, and a whole import goes through
    after_kill.observe("crackdowns", "2", observed="2025-02", source="wire", location="after")
    done = subprocess.run(_cli("import", str(csv)), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert Ledger(ledger_url).counts().readings == N + 2
    assert Ledger(ledger_url).verify().ok


@pytest.mark.slow
def test_readers_are_not_blocked_by_a_long_import(ledger_url: str, tmp_path: Path) -> None:
    scen = _scenarios(tmp_path)
    csv = _big_csv(tmp_path / "big.csv", 2 * N)
    ledger = Ledger(ledger_url)
    ledger.observe("crackdowns", "1", observed="2025-01", source="wire", location="seed")
    env = {**_env(ledger_url, scen), "SCENARIOCAST_LOCK_TIMEOUT": "1"}
    proc = subprocess.Popen(
        _cli("import", str(csv)), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while not _holds_write_lock(ledger):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # the readers and a writer at once (one after the other, they could outlast the import
        # on a busy machine, now that it is fast)
        commands = [
            ["evidence", "--limit", "5"],
            ["info"],
            ["forecast", str(EXAMPLE_TREE), "--json"],
            ["observe", "crackdowns", "3", "--on", "2025-03", "--source", "wire"],
        ]
        started = [
            subprocess.Popen(
                _cli(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for args in commands
        ]
        results = [(p.wait(timeout=300), p.communicate()[1]) for p in started]
        assert _holds_write_lock(ledger) and proc.poll() is None  # all of that during the import
        for args, (code, err) in zip(commands[:3], results, strict=False):
            assert code == 0, (args, err)
        code, err = results[3]
        assert code == 1 and "is busy" in err, err
    finally:
        proc.wait(timeout=600)
    assert proc.returncode == 0


def test_a_reader_role_reads_and_forecasts_but_cannot_write(
    pg_admin_url: str, tmp_path: Path
) -> None:
    from sqlalchemy.engine import make_url

    from tests.conftest import fresh_pg_database

    scen = _scenarios(tmp_path)
    with fresh_pg_database(pg_admin_url) as url:
        owner = Ledger(url)
        owner.observe("crackdowns", "2", observed="2025-10", source="wire")
        role = f"reader_{make_url(url).database}"
        with _admin(url) as con:
            con.execute(f'CREATE ROLE "{role}" LOGIN')
            con.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
        try:
            reader_url = make_url(url).set(username=role).render_as_string(hide_password=False)
            before = state(url)
            env = _env(reader_url, scen)
            for args in (["evidence"], ["history"], ["info"], ["ledger", "verify"]):
                done = subprocess.run(_cli(*args), env=env, capture_output=True, text=True)
                assert done.returncode == 0, (args, done.stderr)
            done = subprocess.run(
                _cli("forecast", str(EXAMPLE_TREE)), env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr
            assert "not recorded in the history" in done.stderr
            done = subprocess.run(
                _cli("observe", "crackdowns", "1", "--on", "2025-11", "--source", "wire"),
                env=env,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 1
            assert "permission denied" in done.stderr and "cannot write" in done.stderr
            assert len(done.stderr.strip().splitlines()) == 1
            assert state(url) == before
        finally:
            with _admin(url) as con:
                con.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"')
            with _admin(pg_admin_url) as con:
                con.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
                con.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.mark.parametrize("command", [["info"], ["evidence", "--limit", "5"]])
def test_commands_that_only_list_load_neither_trees_nor_engines(
    command: list[str], tmp_path: Path
) -> None:
    """`info` and `evidence` answer in about the start-up time: no spec, engine, NumPy or
    SQLAlchemy (a SQLite ledger at the current schema is read with sqlite3 alone)."""
    scen = tmp_path / "scenarios"
    scen.mkdir()
    shutil.copy(EXAMPLE_TREE, scen / EXAMPLE_TREE.name)
    env = {
        **os.environ,
        "SCENARIOCAST_DB": str(tmp_path / "l.db"),
        "SCENARIOCAST_SCENARIOS": str(scen),
    }
    Ledger(tmp_path / "l.db").observe("crackdowns", "2", observed="2025-10", source="wire")
    exe = [sys.executable, "-X", "importtime", "-m", "scenariocast.cli"]
    proc = subprocess.run([*exe, *command], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    imported = {
        line.split("|")[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "scenariocast.ledger.reads" in imported  # the trace is there
    heavy = {
        "scenariocast.spec.model",
        "scenariocast.engines",
        "numpy",
        "pandas",
        "alembic",
        "sqlalchemy",
        "scenariocast.ledger.store",
    }
    assert not imported & heavy
    assert "crackdowns" in proc.stdout if command[0] == "evidence" else "readings: 1" in proc.stdout
