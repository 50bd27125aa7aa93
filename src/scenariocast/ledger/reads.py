"""Reading the ledger: where it is, the SQL of its read queries, and readings built from rows.

Everything here uses the standard library alone, so that the commands that only list what the
ledger holds (``scenariocast info``, ``scenariocast evidence``) answer in about Python's
start-up time: on a SQLite file at the current schema they read through :class:`SqliteReader`
and never import SQLAlchemy (a quarter of a second or more). :class:`~scenariocast.ledger.Ledger`
runs the very same queries through SQLAlchemy, on SQLite and on PostgreSQL alike (the SQL is
portable and its parameters are named, ``:name``, which both sqlite3 and SQLAlchemy's ``text``
take), so there is one definition of what a filter means.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from scenariocast.bulk import bulk
from scenariocast.errors import LedgerError, escape_controls
from scenariocast.evidence.readings import ObservedDate, Reading

ENV_VAR = "SCENARIOCAST_DB"
TIMEOUT_ENV_VAR = "SCENARIOCAST_LOCK_TIMEOUT"
#: How long a writer waits for another writer to finish, in seconds.
LOCK_TIMEOUT_S = 30.0
#: The largest id a reading can have (SQL's 64-bit integers).
MAX_ID = 2**63 - 1
#: The most a SQLite connection keeps of the ledger's pages in memory, in KiB.
CACHE_KIB = 65_536

#: The Alembic revision of the current schema: the head of ``ledger/migrations/versions``.
SCHEMA_REVISION = "0005"
#: The tables of a ledger (every one in the hash chain), and the table Alembic keeps the
#: revision in.
TABLES = ("readings", "retractions", "snapshots", "resolutions", "resolution_retractions")
VERSION_TABLE = "alembic_version"


def default_path() -> Path:
    """``$XDG_DATA_HOME/scenariocast/ledger.db``, with ``~/.local/share`` as the default."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "scenariocast" / "ledger.db"


def target(url: str | os.PathLike[str] | None) -> str:
    """Where the ledger is: ``url``, else ``$SCENARIOCAST_DB``, else :func:`default_path`."""
    if url is None or not os.fspath(url).strip():
        return os.environ.get(ENV_VAR, "").strip() or str(default_path())
    return os.fspath(url)


def lock_timeout(seconds: float | None) -> float:
    """``seconds``, else ``$SCENARIOCAST_LOCK_TIMEOUT``, else 30; never below 0."""
    if seconds is None:
        try:
            seconds = float(os.environ.get(TIMEOUT_ENV_VAR, "") or LOCK_TIMEOUT_S)
        except ValueError:
            raise LedgerError(
                f"{TIMEOUT_ENV_VAR} must be a number of seconds, "
                f"got '{os.environ.get(TIMEOUT_ENV_VAR)}'"
            ) from None
    return max(0.0, seconds)


def one_line(exc: BaseException) -> str:
    """The first line of a database error (the driver's own, when wrapped), for a message."""
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    name = getattr(orig or exc, "sqlite_errorname", None)  # SQLite's extended code
    if name and name not in first:
        first = f"{first} ({name})"
    return escape_controls(first)


# ---------------------------------------------------------------------------------------------
# SQLite files


def sqlite_uri(file: Path, *, read_only: bool) -> str:
    """The ``file:`` URI sqlite3 opens ``file`` with.

    A file that this user cannot write is opened read-only; in a folder that cannot be written
    (which cannot hold the WAL index) and with no index there, as immutable.
    """
    uri = f"file:{quote(str(file))}"
    if not read_only:
        return uri
    immutable = not os.access(file.parent, os.W_OK) and not Path(f"{file}-shm").exists()
    return f"{uri}?mode=ro" + ("&immutable=1" if immutable else "")


def is_read_only(file: Path) -> bool:
    """Whether this user cannot write to the SQLite ledger ``file`` (or to its folder)."""
    return not ((not file.exists() or os.access(file, os.W_OK)) and os.access(file.parent, os.W_OK))


def configure(conn: sqlite3.Connection, timeout: float) -> None:
    """Set up a new connection to a SQLite ledger.

    Transactions are begun explicitly (so that writers can take the lock up front with
    ``BEGIN IMMEDIATE`` instead of failing to upgrade a read lock); a busy ledger is waited for
    at most ``timeout`` seconds; foreign keys are enforced; up to 64 MiB of pages are held in
    memory (SQLite's default is 2 MiB: an import of 100,000 readings updates three B-trees, and
    with the small cache spends a fifth of its time moving their pages in and out; memory is
    taken only as pages are read).
    """
    conn.isolation_level = None
    cur = conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute(f"PRAGMA cache_size = {-CACHE_KIB}")
    cur.close()


# ---------------------------------------------------------------------------------------------
# the queries


@dataclass(frozen=True)
class Filters:
    """Which readings a listing or a count takes (every one by default)."""

    indicator: str | None = None
    source: str | None = None
    location: str | None = None
    since: dt.date | None = None  # observed on or after (a period by its last day)
    before: int | None = None  # ids below this
    include_retracted: bool = True
    reading_id: int | None = None

    def where(self, date: Callable[[dt.date], Any]) -> tuple[str, dict[str, Any]]:
        """The ``WHERE`` clause (empty when nothing is filtered) and its named parameters.

        ``date`` gives a day as the driver takes it (text on SQLite, a date elsewhere).
        """
        clauses: list[str] = []
        params: dict[str, Any] = {}
        for name in ("indicator", "source", "location"):
            value = getattr(self, name)
            if value is not None:
                clauses.append(f"r.{name} = :{name}")
                params[name] = value
        if self.since is not None:
            clauses.append("r.observed_end >= :since")
            params["since"] = date(self.since)
        if self.before is not None:
            clauses.append("r.id < :before")
            params["before"] = min(max(self.before, 0), MAX_ID)
        if self.reading_id is not None:
            clauses.append("r.id = :reading_id")
            params["reading_id"] = self.reading_id
        if not self.include_retracted:
            clauses.append("x.reading_id IS NULL")
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


_FROM = " FROM readings AS r LEFT OUTER JOIN retractions AS x ON x.reading_id = r.id"
#: A reading's columns, in the order :func:`build_readings` takes them.
_COLUMNS = (
    "r.id, r.indicator, r.value, r.observed, r.observed_start, r.observed_end, r.source, "
    "r.unit, r.location, r.note, r.source_url, r.links, r.report, r.entered_at, "
    "r.entered_by, x.reading_id, x.reason, r.kind"
)


def readings_query(
    filters: Filters, limit: int | None, date: Callable[[dt.date], Any]
) -> tuple[str, dict[str, Any]]:
    """The readings that match, by id: the last ``limit`` of them newest first, if given."""
    where, params = filters.where(date)
    sql = f"SELECT {_COLUMNS}{_FROM}{where}"
    if limit is None:
        return f"{sql} ORDER BY r.id", params
    return f"{sql} ORDER BY r.id DESC LIMIT :limit", {**params, "limit": max(limit, 0)}


def count_query(filters: Filters, date: Callable[[dt.date], Any]) -> tuple[str, dict[str, Any]]:
    """How many readings match."""
    where, params = filters.where(date)
    return f"SELECT count(*){_FROM}{where}", params


def table_count_query(table: str) -> str:
    """How many rows a table of the ledger holds."""
    if table not in TABLES:  # pragma: no cover - a programming error
        raise ValueError(f"not a table of the ledger: {table}")
    return f"SELECT count(*) FROM {table}"


# ---------------------------------------------------------------------------------------------
# rows to readings


def to_date(value: Any) -> dt.date:
    """A day as the database gives it (text on SQLite, a date elsewhere)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def to_datetime(value: Any) -> dt.datetime | None:
    """A time as the database gives it (text on SQLite, a datetime elsewhere), or ``None``."""
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


@bulk
def build_readings(rows: Iterable[Sequence[Any]]) -> list[Reading]:
    """Readings from rows of :func:`readings_query`, in the order of the rows.

    Dates and times are converted once per distinct value, and readings observed on the same
    dates, or entered at the same time (an import), share one immutable date object. Each
    reading's fields are set straight in its ``__dict__``: a frozen dataclass's ``__init__``
    sets them one by one through ``object.__setattr__``, at three times the cost over 100,000
    readings (the tests compare readings read back with readings made).
    """
    utc = dt.UTC
    observed_dates: dict[tuple[str, Any, Any], ObservedDate] = {}
    entered: dict[Any, dt.datetime] = {}
    out: list[Reading] = []
    append = out.append
    new = object.__new__
    for (
        rid,
        indicator,
        value,
        observed,
        start,
        end,
        source,
        unit,
        location,
        note,
        source_url,
        links,
        report,
        entered_at,
        entered_by,
        retracted_id,
        reason,
        kind,
    ) in rows:
        when = observed_dates.get((observed, start, end))
        if when is None:
            when = observed_dates[(observed, start, end)] = ObservedDate(
                to_date(end), to_date(start), observed
            )
        if entered_at is not None:
            at = entered.get(entered_at)
            if at is None:
                raw = to_datetime(entered_at)
                assert raw is not None
                at = entered[entered_at] = (
                    raw.replace(tzinfo=utc) if raw.tzinfo is None else raw.astimezone(utc)
                )
            entered_at = at
        reading = new(Reading)
        d = reading.__dict__
        d["id"] = rid
        d["indicator"] = indicator
        d["value"] = value
        d["observed"] = when
        d["source"] = source
        d["unit"] = unit
        d["location"] = location
        d["note"] = note
        d["source_url"] = source_url
        d["links"] = links
        d["report"] = report
        d["entered_at"] = entered_at
        d["entered_by"] = entered_by
        d["retracted"] = retracted_id is not None
        d["retraction_reason"] = reason
        d["kind"] = kind or "indicator"
        append(reading)
    return out


@dataclass(frozen=True)
class LedgerCounts:
    """How much the ledger holds: readings (of which retracted), snapshots, resolutions."""

    readings: int
    retracted: int
    snapshots: int
    resolutions: int = 0
    resolutions_retracted: int = 0


# ---------------------------------------------------------------------------------------------
# listing what a ledger holds


class Listing:
    """What a ledger holds, listed and counted with the queries above.

    A subclass says how a set of queries runs in one consistent snapshot (:meth:`_fetch`) and
    how a day goes into a query (:meth:`_date_param`): :class:`SqliteReader` with sqlite3,
    :class:`~scenariocast.ledger.Ledger` with SQLAlchemy, on any database.
    """

    def _fetch(self, *queries: tuple[str, Mapping[str, Any]]) -> list[list[Sequence[Any]]]:
        """The rows of each query, all read in one read transaction."""
        raise NotImplementedError

    def _date_param(self, day: dt.date) -> Any:
        """A day as the driver takes it in a query (text, as SQLite stores it)."""
        return day.isoformat()

    def readings(
        self,
        *,
        indicator: str | None = None,
        include_retracted: bool = True,
        source: str | None = None,
        location: str | None = None,
        since: dt.date | None = None,
        before: int | None = None,
        limit: int | None = None,
    ) -> list[Reading]:
        """The readings in the ledger, in the order entered.

        Parameters
        ----------
        indicator, source, location
            Only readings with this indicator, source, location.
        include_retracted
            Whether retracted readings are included (marked as retracted).
        since
            Only readings observed on or after this day (a period by its last day).
        before
            Only readings with an id below this (to page back through a long ledger).
        limit
            Only the last ``limit`` readings that match (the most recently entered).
        """
        filters = Filters(indicator, source, location, since, before, include_retracted)
        (rows,) = self._fetch(readings_query(filters, limit, self._date_param))
        out = build_readings(rows)
        return out if limit is None else out[::-1]

    def count(
        self,
        *,
        indicator: str | None = None,
        include_retracted: bool = True,
        source: str | None = None,
        location: str | None = None,
        since: dt.date | None = None,
    ) -> int:
        """How many readings match (the filters of :meth:`readings`)."""
        filters = Filters(indicator, source, location, since, None, include_retracted)
        ((row,),) = self._fetch(count_query(filters, self._date_param))
        return int(row[0] or 0)

    def counts(self) -> LedgerCounts:
        """How many readings, retractions, snapshots and resolutions the ledger holds."""
        every = self._fetch(*((table_count_query(t), {}) for t in TABLES))
        return LedgerCounts(*(int(rows[0][0] or 0) for rows in every))


# ---------------------------------------------------------------------------------------------
# a SQLite ledger read with sqlite3 alone


class SqliteReader(Listing):
    """A SQLite ledger file at the current schema, read with the standard library's sqlite3.

    It reads as :class:`~scenariocast.ledger.Ledger` does (the same queries, one consistent
    snapshot per call, never waiting for a writer in WAL mode) but writes nothing, migrates
    nothing and needs no SQLAlchemy. Made by :func:`open_reader`, which gives ``None`` for
    every ledger it cannot read this way (then a ``Ledger`` reads it, or says what is wrong).
    """

    def __init__(self, file: Path, *, timeout: float) -> None:
        self._file = file
        self._timeout = timeout
        self._uri = sqlite_uri(file, read_only=is_read_only(file))

    @property
    def location(self) -> str:
        """The file path of the ledger."""
        return str(self._file)

    def __repr__(self) -> str:
        return f"SqliteReader({self.location!r})"

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction (a consistent snapshot); errors become LedgerErrors."""
        try:
            conn = sqlite3.connect(self._uri, uri=True, timeout=self._timeout)
        except sqlite3.Error as exc:
            where = self.location
            raise LedgerError(f"cannot open the ledger at {where}: {one_line(exc)}") from None
        try:
            configure(conn, self._timeout)
            conn.execute("BEGIN")
            yield conn
        except sqlite3.Error as exc:
            where = self.location
            raise LedgerError(f"cannot read the ledger at {where}: {one_line(exc)}") from None
        finally:
            conn.close()

    def revision(self) -> str | None:
        """The schema revision stamped in the file (``None``: none stamped)."""
        with self._read() as conn:
            try:
                row = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
            except sqlite3.OperationalError:  # no such table: an early ledger, or none
                return None
        return None if row is None else str(row[0])

    def _fetch(self, *queries: tuple[str, Mapping[str, Any]]) -> list[list[Sequence[Any]]]:
        with self._read() as conn:
            return [conn.execute(sql, params).fetchall() for sql, params in queries]


def open_reader(url: str | os.PathLike[str] | None = None) -> SqliteReader | None:
    """A :class:`SqliteReader` of the SQLite ledger at ``url`` at the current schema, or ``None``.

    ``url`` is found as ``Ledger(url)`` finds it (else ``$SCENARIOCAST_DB``, else the default).
    ``None`` also for a database URL (``sqlite:///...`` or a server), a ledger made by another
    version (upgraded on first use by a ``Ledger``, or refused by it) and a missing file (a
    ``Ledger`` says where it looked and how to create one).
    """
    text = target(url)
    if "://" in text:
        return None
    file = Path(text).expanduser().absolute()
    if not file.is_file():
        return None
    reader = SqliteReader(file, timeout=lock_timeout(None))
    try:
        revision = reader.revision()
    except LedgerError:
        return None  # the Ledger gives the error, in its own words
    return reader if revision == SCHEMA_REVISION else None
