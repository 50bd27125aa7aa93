"""Shared fixtures: the example tree and readings built with scenariocast.testing."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from scenariocast.evidence.readings import ObservedDate, Reading
from scenariocast.spec.load import load_tree
from scenariocast.spec.tree import Tree

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "example-harvest.yaml"
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


# ---------------------------------------------------------------------------------------------
# ledgers on both databases: SQLite files and a PostgreSQL server

PG_ENV = "SCENARIOCAST_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The URL of the test PostgreSQL server (scripts/ci-postgres.sh starts one).

    Without one the PostgreSQL tests are skipped, except under CI, where that is a failure.
    """
    url = os.environ.get(PG_ENV, "").strip()
    reason = (
        f"no PostgreSQL server for the tests: set {PG_ENV} "
        '(eval "$(bash scripts/ci-postgres.sh start)" starts a throwaway one)'
    )
    if not url:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        message = "the PostgreSQL driver is missing: pip install 'scenariocast[postgres]'"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


def _admin(url: str) -> Any:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return psycopg.connect(
        dbname=u.database or "postgres",
        user=u.username or "postgres",
        host=u.query.get("host") or u.host,
        port=u.port,
        password=u.password,
        autocommit=True,
    )


@contextmanager
def fresh_pg_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the test server; dropped afterwards."""
    from sqlalchemy.engine import make_url

    name = f"sc_test_{uuid.uuid4().hex[:12]}"
    with _admin(admin_url) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with _admin(admin_url) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a new ledger goes: a SQLite file that does not exist yet, or an empty database."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.db")
        return
    admin = request.getfixturevalue("pg_admin_url")
    with fresh_pg_database(admin) as url:
        yield url
