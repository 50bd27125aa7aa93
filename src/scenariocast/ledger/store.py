"""The evidence ledger: an append-only store of readings, retractions and forecast snapshots.

Any SQLAlchemy database URL works; the default is a SQLite file in the user's data folder.

Opening a ledger starts no write transaction: a command that only reads takes a read snapshot
and never waits for a writer (SQLite in WAL mode; PostgreSQL's MVCC). Writers take the write
lock at the start of their transaction (SQLite ``BEGIN IMMEDIATE``; a transaction-scoped
advisory lock on PostgreSQL), so that entries are chained one after another, and wait for it at
most ``lock_timeout`` seconds. The tables are created, or upgraded, separately and only when
needed: see :mod:`scenariocast.ledger.migrate`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from scenariocast.bulk import bulk
from scenariocast.errors import (
    LedgerBusyError,
    LedgerError,
    LedgerIntegrityError,
    LedgerNotFoundError,
    LedgerVersionError,
    ReadingError,
    escape_controls,
)
from scenariocast.evidence.readings import (
    EARLIEST,
    ObservedDate,
    Reading,
    check_entry_date,
    parse_day,
)
from scenariocast.ledger.chain import GENESIS, content_hash, entry_hash
from scenariocast.ledger.migrate import REVISIONS, read_revision
from scenariocast.ledger.reads import (
    ENV_VAR,
    LOCK_TIMEOUT_S,
    MAX_ID,
    Filters,
    LedgerCounts,
    Listing,
    build_readings,
    configure,
    default_path,
    is_read_only,
    readings_query,
    sqlite_uri,
    target,
    to_date,
    to_datetime,
)
from scenariocast.ledger.reads import lock_timeout as _lock_timeout
from scenariocast.ledger.reads import one_line as _one_line
from scenariocast.ledger.records import OutcomeResolution, Snapshot
from scenariocast.ledger.schema import (
    SCHEMA_REVISION,
    readings,
    resolution_retractions,
    resolutions,
    retractions,
    snapshots,
)

if TYPE_CHECKING:
    from scenariocast.evidence.catalog import Catalog
    from scenariocast.ledger.importing import ImportReport
    from scenariocast.ledger.transfer import ExportReport, Verification

__all__ = ["ENV_VAR", "LOCK_TIMEOUT_S", "Ledger", "LedgerCounts", "StoredReadings", "default_path"]

#: Who records entries when ``--by`` is not given; then the operating system's user.
USER_ENV_VAR = "SCENARIOCAST_USER"
#: Key of the PostgreSQL advisory lock that serialises the ledger's writers.
_PG_LOCK_KEY = 0x5C_CA57_1ED6E5


def current_user() -> str:
    """Who is recording: ``$SCENARIOCAST_USER``, else the operating system's user name.

    ``"unknown"`` when neither is known. A team sharing one ledger (where every member may run
    as the same service account) sets ``SCENARIOCAST_USER`` in each member's profile.
    """
    named = os.environ.get(USER_ENV_VAR, "").strip()
    if named:
        return named
    try:
        return getpass.getuser() or "unknown"
    except Exception:
        return "unknown"


def utc_now() -> dt.datetime:
    """The current time in UTC, without a time zone (as stored)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def today() -> dt.date:
    """Today's date where the command runs (readings observed later than this are refused)."""
    return dt.date.today()


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")  # \t, \n allowed


def _clean(text: str | None, field: str = "", *, multiline: bool = False) -> str | None:
    """``text`` stripped (``None`` if empty); control characters refused, naming the field.

    A note may run over several lines; every other field is one line of printable text.
    """
    if text is None:
        return None
    out = str(text).strip()
    pattern = _CONTROL_IN_TEXT if multiline else _CONTROL
    if field and pattern.search(out):
        raise ReadingError(
            f"{field}: '{escape_controls(out)}' holds a control character (such as a line "
            "break); names and values are one line of text"
        )
    return out or None


def _strip(text: str | None, field: str = "", *, multiline: bool = False) -> str | None:
    """:func:`_clean` of text known to hold no control character: stripped, or ``None``."""
    return None if text is None else (str(text).strip() or None)


def _to_url(target: str | os.PathLike[str]) -> URL:
    text = os.fspath(target)
    if "://" in text:
        try:
            return make_url(text)
        except SQLAlchemyError as exc:
            raise LedgerError(f"cannot open the ledger at {text}: {_one_line(exc)}") from None
    path = Path(text).expanduser().absolute()
    return URL.create("sqlite", database=str(path))


def _check_id(reading_id: int) -> None:
    if not 0 < reading_id <= MAX_ID:
        raise LedgerError(f"no reading with id {reading_id}")


#: The columns of a reading in the order :meth:`Ledger._append_readings` gives their values.
INSERT_ORDER = (
    "id",
    "indicator",
    "value",
    "unit",
    "observed",
    "observed_start",
    "observed_end",
    "location",
    "source",
    "note",
    "source_url",
    "links",
    "entered_at",
    "entered_by",
    "report",
    "entry",
    "hash",
    "kind",
)


def _insert_sql(conn: Connection) -> str | None:
    """``INSERT INTO readings (...) VALUES (?, ...)`` in the driver's own parameter style.

    ``None`` for a driver whose style is not positional (then SQLAlchemy inserts the rows).
    """
    style = conn.dialect.paramstyle
    if style not in ("qmark", "format", "pyformat"):  # pragma: no cover - sqlite3, psycopg
        return None
    mark = "?" if style == "qmark" else "%s"
    columns = ", ".join(INSERT_ORDER)
    return f"INSERT INTO readings ({columns}) VALUES ({', '.join([mark] * len(INSERT_ORDER))})"


class StoredReadings(Sequence[Reading]):
    """Readings just written, as stored, built from the rows inserted when first looked at.

    An import of 100,000 readings reports how many it wrote; most callers never look at the
    readings themselves, so they are not built until one is asked for. Equal to any sequence
    of the same readings (a list from :meth:`Ledger.readings`, say).
    """

    __slots__ = ("_at", "_built", "_rows")

    def __init__(self, rows: list[tuple[Any, ...]], *, entered_at: dt.datetime) -> None:
        self._rows = rows  # in the order of INSERT_ORDER
        self._at = entered_at
        self._built: list[Reading] | None = None

    def _readings(self) -> list[Reading]:
        if self._built is None:
            self._built = self._build()
        return self._built

    @bulk
    def _build(self) -> list[Reading]:
        out: list[Reading] = []
        keep = out.append
        new = object.__new__
        dates: dict[tuple[Any, Any, str], ObservedDate] = {}  # one per distinct date
        for row in self._rows:
            rid, indicator, value, unit, observed, start, end, location, source = row[:9]
            note, url, links, _, who, report, _, _, kind = row[9:]
            when = dates.get((start, end, observed))
            if when is None:
                when = dates[(start, end, observed)] = ObservedDate(
                    end=to_date(end), start=to_date(start), text=observed
                )
            reading = new(Reading)  # as in reads.build_readings
            reading.__dict__.update(
                id=rid,
                indicator=indicator,
                value=value,
                observed=when,
                source=source,
                unit=unit,
                location=location,
                note=note,
                source_url=url,
                links=links,
                report=report,
                entered_at=self._at,
                entered_by=who,
                retracted=False,
                retraction_reason=None,
                kind=kind or "indicator",
            )
            keep(reading)
        return out

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> Reading: ...
    @overload
    def __getitem__(self, index: slice) -> list[Reading]: ...
    def __getitem__(self, index: int | slice) -> Reading | list[Reading]:
        return self._readings()[index]

    def __iter__(self) -> Iterator[Reading]:
        return iter(self._readings())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StoredReadings | list | tuple):
            return len(self) == len(other) and self._readings() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # as a list: equal to lists, so not hashable

    def __repr__(self) -> str:
        return repr(self._readings())


class Ledger(Listing):
    """The evidence ledger.

    Parameters
    ----------
    url
        A SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://...``) or a file path for
        a SQLite ledger. Default: the environment variable ``SCENARIOCAST_DB``, else
        ``$XDG_DATA_HOME/scenariocast/ledger.db``. Commands that write create the ledger if it
        does not exist; commands that only read refuse one that does not.
    lock_timeout
        Seconds a writer waits for another writer to finish (default: the environment
        variable ``SCENARIOCAST_LOCK_TIMEOUT``, else 30).
    """

    def __init__(
        self, url: str | os.PathLike[str] | None = None, *, lock_timeout: float | None = None
    ) -> None:
        self._url = _to_url(target(url))
        self._lock_timeout = _lock_timeout(lock_timeout)
        self._engine: Engine | None = None
        self._read_only = False
        self._checked = False  # integrity checked before the first write

    # -----------------------------------------------------------------------------------------
    # where the ledger is

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ledger (with its password, if it has one)."""
        return self._url.render_as_string(hide_password=False)

    @property
    def is_sqlite(self) -> bool:
        """Whether the ledger is a SQLite database."""
        return self._url.get_backend_name() == "sqlite"

    @property
    def location(self) -> str:
        """The file path of a SQLite ledger, else the URL with its password masked."""
        if self.is_sqlite:
            return self._url.database or ":memory:"
        return self._url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Ledger({self.location!r})"

    def _file(self) -> Path | None:
        """The SQLite file, or ``None`` for a server or an in-memory database."""
        if not self.is_sqlite or self._url.database in (None, "", ":memory:"):
            return None
        return Path(str(self._url.database))

    def exists(self) -> bool:
        """Whether there is a ledger at this location (a file or database with its tables)."""
        try:
            self._open(write=False)
        except LedgerNotFoundError:
            return False
        return True

    @property
    def accepts_writes(self) -> bool:
        """Whether this user can write to the ledger (file permissions, database privileges).

        ``False`` for a ledger that does not exist yet in a folder that cannot be written.
        """
        file = self._file()
        if file is not None:
            if not file.exists():
                folder = next((p for p in file.parents if p.exists()), None)
                return folder is not None and os.access(folder, os.W_OK)
            return os.access(file, os.W_OK) and os.access(file.parent, os.W_OK)
        if self._url.get_backend_name() != "postgresql":
            return True
        try:
            with self._read() as conn:
                return bool(
                    conn.exec_driver_sql(
                        "SELECT has_table_privilege('readings', 'INSERT') "
                        "AND has_table_privilege('snapshots', 'INSERT')"
                    ).scalar()
                )
        except LedgerError:
            return False

    # -----------------------------------------------------------------------------------------
    # connections

    def _not_found(self) -> LedgerNotFoundError:
        return LedgerNotFoundError(
            f"no ledger at {self.location}: record a reading (scenariocast observe or import) "
            "or run `scenariocast ledger init` to create one, or point --db or SCENARIOCAST_DB "
            "at an existing ledger"
        )

    def _open(self, *, write: bool, create: bool = False, upgrade: bool = False) -> Engine:
        """The engine, with the ledger's schema checked once (and created or upgraded).

        Reading never creates anything. A SQLite ledger made by an earlier version is upgraded
        on first use; a ledger on a server only by :meth:`upgrade` (``upgrade=True``).
        """
        if self._engine is not None:
            if write and self._read_only:
                raise self._read_only_error()
            return self._engine
        file = self._file()
        where = self.location
        if file is not None:
            if not file.exists():
                if not create:
                    raise self._not_found()
                self._create_file(file)
            self._read_only = is_read_only(file)
            if write and self._read_only:
                raise self._read_only_error()
        try:
            engine = self._create_engine()
            with engine.connect() as conn:
                revision = read_revision(conn)
                conn.rollback()
        except (SQLAlchemyError, ImportError, sqlite3.Error) as exc:
            raise LedgerError(f"cannot open the ledger at {where}: {_one_line(exc)}") from None
        if revision is None and not create:
            engine.dispose()
            raise self._not_found()
        if revision is not None and revision not in REVISIONS:
            engine.dispose()
            raise LedgerVersionError(
                f"the ledger at {where} has schema revision {revision}, made by a newer version "
                f"of scenariocast (this one reads up to {SCHEMA_REVISION}): upgrade scenariocast"
            )
        if revision != SCHEMA_REVISION:
            if revision is not None and not (upgrade or file is not None):
                engine.dispose()
                raise LedgerVersionError(
                    f"the ledger at {where} has schema revision {revision}; this version of "
                    f"scenariocast needs {SCHEMA_REVISION}: its owner runs `scenariocast ledger "
                    "upgrade` (every reading, retraction and snapshot is kept)"
                )
            if self._read_only:
                engine.dispose()
                raise LedgerVersionError(
                    f"the ledger at {where} was made by an earlier version of scenariocast and "
                    "must be upgraded, which needs write access: run `scenariocast ledger "
                    "upgrade` where it can be written"
                )
            self._migrate(engine)
        self._engine = engine
        return engine

    def _create_file(self, file: Path) -> None:
        """Make a new SQLite ledger at ``file``, whole or not at all.

        The ledger is built in a temporary file beside it (tables, WAL mode) and then linked
        into place, so that no process ever sees a half-made ledger, and when several create
        one at once, the first to finish wins and the others use it.
        """
        where = str(file)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"cannot open the ledger at {where}: {exc.strerror or exc}") from None
        tmp = file.with_name(f".{file.name}.{os.getpid()}.{id(self):x}.new")
        maker = Ledger(tmp, lock_timeout=self._lock_timeout)
        try:
            engine = maker._create_engine()
            try:
                maker._migrate(engine, new=True)
            finally:
                engine.dispose()
            try:
                os.link(tmp, file)
            except FileExistsError:
                pass  # another process made it first
            except OSError as exc:
                raise LedgerError(
                    f"cannot open the ledger at {where}: {exc.strerror or exc}"
                ) from None
        finally:
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                leftover.unlink(missing_ok=True)

    def _read_only_error(self) -> LedgerError:
        return LedgerError(
            f"cannot write to the ledger at {self.location}: the file or its folder is "
            "read-only for you (reading works)"
        )

    def _migrate(self, engine: Engine, *, new: bool = False) -> tuple[str | None, str]:
        """Bring the ledger to the current schema; ``new``: make it there (a new SQLite file)."""
        from scenariocast.ledger import migrate

        try:
            if self.is_sqlite:  # outside any transaction; the mode stays with the file
                raw = engine.raw_connection()
                try:
                    raw.cursor().execute("PRAGMA journal_mode = WAL")
                finally:
                    raw.close()
            with self._transaction(engine, write=True) as conn:
                if new and self.is_sqlite:
                    migrate.create_current(conn)
                    return None, SCHEMA_REVISION
                return migrate.upgrade(conn)
        except SQLAlchemyError as exc:
            raise self._write_error(exc) from None

    def _create_engine(self) -> Engine:
        if not self.is_sqlite:
            return sa.create_engine(self._url, pool_pre_ping=True)
        file = self._file()
        timeout = self._lock_timeout
        read_only = self._read_only
        if file is None:
            engine = sa.create_engine(self._url)
        else:
            uri = sqlite_uri(file, read_only=read_only)

            def connect() -> sqlite3.Connection:
                return sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)

            # No connection is kept between calls. An open SQLite connection announces itself
            # to other processes with a POSIX lock on the file, and the operating system drops
            # every such lock of a process when the process closes any descriptor of the file
            # (a program that copies or hashes the file while holding a Ledger). Another
            # process would then take itself for the file's last user and delete the WAL under
            # the kept connection, whose later writes would be lost. Connecting costs well
            # under a millisecond.
            engine = sa.create_engine("sqlite://", creator=connect, poolclass=NullPool)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # SQLAlchemy, not the driver, starts transactions (see _on_begin)
            configure(dbapi_conn, timeout)

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "")
            conn.exec_driver_sql(f"BEGIN {mode}".strip())

        return engine

    @contextmanager
    def _transaction(self, engine: Engine, *, write: bool) -> Iterator[Connection]:
        with engine.connect() as conn:
            if self.is_sqlite:
                if write:
                    conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            elif engine.dialect.name == "postgresql" and not write:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                if write and engine.dialect.name == "postgresql":
                    conn.exec_driver_sql(
                        f"SET LOCAL lock_timeout = {int(self._lock_timeout * 1000)}"
                    )
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
                yield conn

    def _write_error(self, exc: SQLAlchemyError) -> LedgerError:
        text = _one_line(exc)
        orig = getattr(exc, "orig", None)
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if "database is locked" in text or code == "55P03":
            return LedgerBusyError(
                f"the ledger at {self.location} is busy: another process has been writing to "
                f"it for more than {self._lock_timeout:g} s (a long import?); nothing was "
                "written, try again when it has finished"
            )
        if "readonly database" in text or code == "42501":
            return LedgerError(
                f"cannot write to the ledger at {self.location}: {text} (this user or role can "
                "read the ledger but not write to it)"
            )
        if "malformed" in text or "not a database" in text:
            return LedgerIntegrityError(
                f"the ledger at {self.location} is damaged ({text}); nothing was written: "
                "restore it from a backup, or save what can still be read with `scenariocast "
                "ledger export`"
            )
        return LedgerError(f"cannot write to the ledger at {self.location}: {text}")

    def _integrity_check(self, conn: Connection) -> None:
        """``PRAGMA quick_check`` of a SQLite file, once per Ledger, before its first write."""
        if self._checked or not self.is_sqlite:
            return
        rows = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA quick_check(5)")]
        if rows != ["ok"]:
            raise LedgerIntegrityError(
                f"the ledger at {self.location} fails its integrity check "
                f"({escape_controls(rows[0])}); nothing was written: restore it from a "
                "backup, or save what can still be read with `scenariocast ledger export`"
            )
        self._checked = True

    @contextmanager
    def _write(self, *, create: bool = True) -> Iterator[Connection]:
        """One write transaction on a checked file; database errors become LedgerErrors.

        ``create``: make the ledger if there is none (recording readings does; retracting and
        recording snapshots need one that exists).
        """
        engine = self._open(write=True, create=create)
        try:
            with self._transaction(engine, write=True) as conn:
                self._integrity_check(conn)
                yield conn
        except SQLAlchemyError as exc:
            raise self._write_error(exc) from None

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """One read transaction (a consistent snapshot); database errors become LedgerErrors."""
        engine = self._open(write=False)
        try:
            with self._transaction(engine, write=False) as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise LedgerError(
                f"cannot read the ledger at {self.location}: {_one_line(exc)}"
            ) from None

    def close(self) -> None:
        """Close the connections to the database (the ledger opens again when next used)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -----------------------------------------------------------------------------------------
    # the schema

    def create(self) -> bool:
        """Create an empty ledger here if there is none; return whether one was created."""
        if self.exists():
            return False
        self.close()
        self._open(write=True, create=True)
        return True

    def schema_revision(self) -> str | None:
        """The schema revision of the ledger as it is now (``None``: no ledger here)."""
        file = self._file()
        if file is not None and not file.exists():
            return None
        engine = self._create_engine()
        try:
            with engine.connect() as conn:
                return read_revision(conn)
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise LedgerError(
                f"cannot open the ledger at {self.location}: {_one_line(exc)}"
            ) from None
        finally:
            engine.dispose()

    def upgrade(self) -> tuple[str | None, str]:
        """Bring the ledger to this version's schema; return the revisions before and after.

        Every reading, retraction and snapshot is kept. A ledger already at the current
        revision is left as it is.

        Raises
        ------
        LedgerNotFoundError
            If there is no ledger here.
        LedgerVersionError
            If the ledger was made by a newer version of scenariocast.
        """
        before = self.schema_revision()
        if before is None:
            raise self._not_found()
        self.close()
        self._open(write=True, upgrade=True)
        return before, SCHEMA_REVISION

    # -----------------------------------------------------------------------------------------
    # the chain

    @staticmethod
    def _chain_head(conn: Connection) -> tuple[int, str]:
        """The last entry's number and hash (0 and the genesis hash for an empty ledger)."""
        best = (0, GENESIS)
        for table in (readings, retractions, snapshots, resolutions, resolution_retractions):
            row = conn.execute(
                sa.select(table.c.entry, table.c.hash)
                .where(table.c.entry.is_not(None))
                .order_by(table.c.entry.desc())
                .limit(1)
            ).first()
            if row is not None and int(row.entry) > best[0]:
                best = (int(row.entry), str(row.hash))
        return best

    def _append_readings(
        self, conn: Connection, values: Sequence[Mapping[str, Any]], *, entered_by: str | None
    ) -> StoredReadings:
        """Insert readings (validated values) in one statement; return them as stored.

        Each row is hashed and turned into the driver's parameters in one pass, with the dates
        as ISO text once for both (the text SQLAlchemy's types store on SQLite), and inserted
        by one driver-level executemany.
        """
        if not values:
            return StoredReadings([], entered_at=utc_now())
        entry, previous = self._chain_head(conn)
        next_id = int(conn.execute(sa.select(sa.func.max(readings.c.id))).scalar() or 0) + 1
        now = utc_now()
        who = _clean(entered_by, "entered_by") or current_user()
        sqlite = conn.dialect.name == "sqlite"
        at_hashed = now.isoformat()  # as the chain hashes a time: ISO, without a time zone
        at_stored: Any = now.isoformat(sep=" ", timespec="microseconds") if sqlite else now
        days: dict[dt.date, str] = {}
        params: list[tuple[Any, ...]] = []
        add = params.append
        for rid, v in enumerate(values, start=next_id):
            start, end = v["observed_start"], v["observed_end"]
            start_text = days.get(start) or days.setdefault(start, start.isoformat())
            end_text = days.get(end) or days.setdefault(end, end.isoformat())
            indicator, value, unit, observed = v["indicator"], v["value"], v["unit"], v["observed"]
            location, source, note, url = v["location"], v["source"], v["note"], v["source_url"]
            links, report, kind = v.get("links"), v.get("report"), v.get("kind")
            entry += 1
            content = [
                rid,
                indicator,
                value,
                unit,
                observed,
                start_text,
                end_text,
                location,
                source,
                note,
                url,
                links,
                report,
                at_hashed,
                who,
            ]
            if kind is not None:  # hashed only when set (chain.OPTIONAL)
                content.append(kind)
            previous = content_hash(previous, "readings", content)
            # in the order of INSERT_ORDER
            add(
                (
                    rid,
                    indicator,
                    value,
                    unit,
                    observed,
                    start_text if sqlite else start,
                    end_text if sqlite else end,
                    location,
                    source,
                    note,
                    url,
                    links,
                    at_stored,
                    who,
                    report,
                    entry,
                    previous,
                    kind,
                )
            )
        sql = _insert_sql(conn)
        if sql is None:  # pragma: no cover - every driver scenariocast supports is positional
            rows = [dict(zip(INSERT_ORDER, p, strict=True)) for p in params]
            conn.execute(readings.insert(), rows)
        else:
            conn.exec_driver_sql(sql, params)
        return StoredReadings(params, entered_at=now.replace(tzinfo=dt.UTC))

    # -----------------------------------------------------------------------------------------
    # readings

    def observe(
        self,
        indicator: str,
        value: str,
        *,
        observed: str,
        source: str,
        unit: str | None = None,
        location: str | None = None,
        note: str | None = None,
        source_url: str | None = None,
        links: int | None = None,
        report: str | None = None,
        entered_by: str | None = None,
        catalog: Catalog | None = None,
    ) -> Reading:
        """Record one reading and return it as stored, with its id.

        ``report`` names the report the reading belongs to (readings of one source with the
        same report id are one report, genuine or not as a whole); without it, a report is the
        readings of one source on one observed date.

        Raises
        ------
        ReadingError
            For an unknown indicator or source or a value the indicator cannot read (when
            ``catalog`` is given), a bad or impossible observed date (before 1900, or in the
            future), a control character in a name, or ``links`` that names no earlier reading
            of this indicator. Nothing is written then.
        LedgerError
            If the ledger cannot be opened or written.
        """
        values = self._validate(
            indicator=indicator,
            value=value,
            observed=observed,
            source=source,
            unit=unit,
            location=location,
            note=note,
            source_url=source_url,
            report=report,
            catalog=catalog,
        )
        if links is not None:
            _check_id(links)
        with self._write() as conn:
            if links is not None:
                self._check_links(conn, links, values["indicator"])
            (reading,) = self._append_readings(
                conn, [{**values, "links": links}], entered_by=entered_by
            )
            return reading

    def observe_node(
        self,
        node: str,
        state: str,
        *,
        observed: str,
        source: str,
        location: str | None = None,
        note: str | None = None,
        source_url: str | None = None,
        report: str | None = None,
        entered_by: str | None = None,
        catalog: Catalog | None = None,
    ) -> Reading:
        """Record a reading of a node (the source reports it in ``state``); return it as stored.

        It is a reading like any other (retracted, exported and chained the same way), with
        ``kind`` ``node``: the node's name in ``indicator``, the state in ``value``. A forecast
        counts it as a report of its source whose likelihood is ``r`` where the node is in
        ``state`` and ``(1 - r) q`` everywhere (docs/evidence.md, "Readings of a node").

        Raises
        ------
        ReadingError
            For an unknown node, state or source (when ``catalog`` is given, with the closest
            known name), a bad or future date, a control character in a name. Nothing is
            written then.
        LedgerError
            If the ledger cannot be opened or written.
        """
        if _clean(node, "node") is None:
            raise ReadingError("a reading of a node needs the node's name")
        if _clean(state, "state") is None:
            raise ReadingError(f"{node.strip()}: a reading of a node needs a state")
        values = self._validate(
            indicator=node,
            value=state,
            observed=observed,
            source=source,
            unit=None,
            location=location,
            note=note,
            source_url=source_url,
            report=report,
            catalog=None,
        )
        if catalog is not None:
            catalog.check_node(values["indicator"], values["value"], values["source"])
        with self._write() as conn:
            (reading,) = self._append_readings(
                conn, [{**values, "links": None, "kind": "node"}], entered_by=entered_by
            )
            return reading

    @staticmethod
    def _validate(
        *,
        indicator: str,
        value: str,
        observed: str,
        source: str,
        unit: str | None,
        location: str | None,
        note: str | None,
        source_url: str | None,
        report: str | None,
        catalog: Catalog | None,
        on: dt.date | None = None,
    ) -> dict[str, Any]:
        """The values of a reading to store, checked; ``on`` is today (by default, today).

        Raises
        ------
        ReadingError
            Naming the first problem found.
        """
        one_line = (indicator, value, source, unit, location, source_url, report, observed)
        clean = (
            _clean
            if _CONTROL.search("".join([str(t) for t in one_line if t is not None]))
            or (note is not None and _CONTROL_IN_TEXT.search(str(note)))
            else _strip  # nothing to refuse (the common case): strip only
        )
        ind = clean(indicator, "indicator")
        val = clean(value, "value")
        src = clean(source, "source")
        if ind is None:
            raise ReadingError("a reading needs an indicator")
        if val is None:
            raise ReadingError(f"{ind}: a reading needs a value")
        if src is None:
            raise ReadingError(f"{ind}: a reading needs a source")
        fields = {
            "unit": clean(unit, "unit"),
            "location": clean(location, "location"),
            "note": clean(note, "note", multiline=True),
            "source_url": clean(source_url, "source_url"),
            "report": clean(report, "report"),
        }
        if catalog is not None:
            catalog.check(ind, val, src)
        when = ObservedDate.parse(clean(observed, "date") or "")
        check_entry_date(when, today() if on is None else on)
        return {
            "indicator": ind,
            "value": val,
            "observed": when.text,
            "observed_start": when.start,
            "observed_end": when.end,
            "source": src,
            **fields,
        }

    @staticmethod
    def _check_links(conn: Connection, links: int, indicator: str) -> None:
        row = conn.execute(
            sa.select(readings.c.indicator).where(readings.c.id == links)
        ).one_or_none()
        if row is None:
            raise ReadingError(f"links: no reading with id {links} to link to")
        if row.indicator != indicator:
            raise ReadingError(
                f"links: reading {links} is of indicator '{row.indicator}', not '{indicator}'; "
                "a link names an earlier reading of the same event"
            )

    def _date_param(self, day: dt.date) -> Any:
        """A day as the driver takes it in a query: text on SQLite (as stored), else a date."""
        return day.isoformat() if self.is_sqlite else day

    def _fetch(self, *queries: tuple[str, Mapping[str, Any]]) -> list[list[Sequence[Any]]]:
        with self._read() as conn:
            return [list(conn.execute(sa.text(sql), dict(params)).all()) for sql, params in queries]

    def _get(self, conn: Connection, reading_id: int) -> Reading:
        _check_id(reading_id)
        sql, params = readings_query(Filters(reading_id=reading_id), None, self._date_param)
        rows = build_readings(conn.execute(sa.text(sql), params).all())
        if not rows:
            raise LedgerError(f"no reading with id {reading_id}")
        return rows[0]

    def reading(self, reading_id: int) -> Reading:
        """The reading with id ``reading_id``; a :class:`LedgerError` if there is none."""
        _check_id(reading_id)
        with self._read() as conn:
            return self._get(conn, reading_id)

    def retract(self, reading_id: int, *, reason: str, by: str | None = None) -> Reading:
        """Mark a reading as retracted, keeping it and the reason in the ledger.

        Raises
        ------
        ReadingError
            If ``reason`` is empty.
        LedgerError
            If there is no reading ``reading_id`` or it is already retracted.
        """
        why = _clean(reason, "reason", multiline=True)
        if why is None:
            raise ReadingError("a retraction needs a reason")
        _check_id(reading_id)
        with self._write(create=False) as conn:
            current = self._get(conn, reading_id)
            if current.retracted:
                raise LedgerError(
                    f"reading {reading_id} is already retracted ({current.retraction_reason})"
                )
            entry, previous = self._chain_head(conn)
            row: dict[str, Any] = {
                "reading_id": reading_id,
                "reason": why,
                "retracted_at": utc_now(),
                "retracted_by": _clean(by, "by") or current_user(),
                "entry": entry + 1,
            }
            row["hash"] = entry_hash(previous, "retractions", row)
            conn.execute(retractions.insert().values(**row))
            return self._get(conn, reading_id)

    def import_csv(
        self,
        path: str | Path,
        *,
        catalog: Catalog,
        mapping_path: str | Path | None = None,
        entered_by: str | None = None,
    ) -> ImportReport:
        """Import a CSV file of readings, all rows or none.

        See :func:`scenariocast.ledger.importing.import_csv`.
        """
        from scenariocast.ledger.importing import import_csv

        return import_csv(
            self, path, catalog=catalog, mapping_path=mapping_path, entered_by=entered_by
        )

    # -----------------------------------------------------------------------------------------
    # snapshots

    def record_snapshot(
        self,
        *,
        tree_id: str,
        tree_hash: str,
        engine: str,
        as_of: dt.date,
        given: Mapping[str, str],
        n_readings: int,
        readings_hash: str,
        payload: Mapping[str, Any],
        created_by: str | None = None,
    ) -> int:
        """Record a forecast and the evidence it used; return the snapshot's id.

        Raises
        ------
        LedgerError
            If ``payload`` or ``given`` cannot be written as JSON, or the ledger cannot be
            written.
        """
        try:
            given_json = json.dumps(dict(given), sort_keys=True)
            payload_json = json.dumps(payload, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise LedgerError(f"cannot record the snapshot: not JSON data ({exc})") from None
        with self._write(create=False) as conn:
            entry, previous = self._chain_head(conn)
            next_id = int(conn.execute(sa.select(sa.func.max(snapshots.c.id))).scalar() or 0) + 1
            row: dict[str, Any] = {
                "id": next_id,
                "created_at": utc_now(),
                "created_by": _clean(created_by, "created_by") or current_user(),
                "tree_id": tree_id,
                "tree_hash": tree_hash,
                "engine": engine,
                "as_of": as_of,
                "given": given_json,
                "n_readings": n_readings,
                "readings_hash": readings_hash,
                "payload": payload_json,
                "entry": entry + 1,
            }
            row["hash"] = entry_hash(previous, "snapshots", row)
            conn.execute(snapshots.insert().values(**row))
            return next_id

    def history(self, tree_id: str | None = None) -> list[Snapshot]:
        """The recorded snapshots (of one tree if given), oldest first, newest last."""
        query = sa.select(snapshots).order_by(snapshots.c.id)
        if tree_id is not None:
            query = query.where(snapshots.c.tree_id == tree_id)
        with self._read() as conn:
            rows = conn.execute(query).all()
        out: list[Snapshot] = []
        for row in rows:
            created = _aware(row.created_at)
            assert created is not None
            out.append(
                Snapshot(
                    id=int(row.id),
                    created_at=created,
                    tree_id=row.tree_id,
                    tree_hash=row.tree_hash,
                    engine=row.engine,
                    as_of=row.as_of,
                    given=json.loads(row.given),
                    n_readings=int(row.n_readings),
                    readings_hash=row.readings_hash,
                    payload=json.loads(row.payload),
                    created_by=row.created_by,
                )
            )
        return out

    # -----------------------------------------------------------------------------------------
    # resolutions

    def resolve(
        self,
        outcome: str,
        happened: bool,
        *,
        on: dt.date | str,
        source: str,
        note: str | None = None,
        by: str | None = None,
        catalog: Catalog | None = None,
    ) -> OutcomeResolution:
        """Record how a question turned out; return the resolution as stored, with its id.

        ``on`` is the day the question was settled (the event, or the end of its period for a
        no). With ``catalog`` (the trees in ``scenarios/``) the outcome must be one a tree asks
        over a period holding ``on``. A question already resolved (a resolution of the same
        outcome, not retracted, in the period of the questions it answers; any date without
        a catalog) is refused: retract that one first.

        Raises
        ------
        QueryError
            For an outcome no tree in ``catalog`` asks, or asks over another period.
        ReadingError
            For a bad date (before 1900, in the future), an empty source, or a control
            character in a name.
        LedgerError
            If the question is already resolved, or the ledger cannot be written.
        """
        name = _clean(outcome, "outcome")
        src = _clean(source, "source")
        if name is None:
            raise ReadingError("a resolution needs an outcome id")
        if src is None:
            raise ReadingError(f"{name}: a resolution needs a source (what settles it)")
        day = on if isinstance(on, dt.date) else parse_day(on)
        if day < EARLIEST:
            raise ReadingError(f"date '{day}' is before {EARLIEST.year}")
        if day > today() + dt.timedelta(days=1):
            raise ReadingError(
                f"date '{day}' is in the future (today is {today()}); a resolution records how "
                "a question turned out"
            )
        lo: dt.date | None = None
        hi: dt.date | None = None
        if catalog is not None:
            lo, hi = catalog.resolution_window(name, day)
        row: dict[str, Any] = {
            "outcome": name,
            "answer": "yes" if happened else "no",
            "resolved_on": day,
            "source": src,
            "note": _clean(note, "note", multiline=True),
            "entered_by": _clean(by, "by") or current_user(),
        }
        with self._write() as conn:
            query = self._resolution_select().where(
                resolutions.c.outcome == name,
                resolution_retractions.c.resolution_id.is_(None),
            )
            if lo is not None:
                query = query.where(resolutions.c.resolved_on >= lo)
            if hi is not None:
                query = query.where(resolutions.c.resolved_on <= hi)
            standing = [self._resolution(dict(r)) for r in conn.execute(query).mappings()]
            if standing:
                s = standing[0]
                raise LedgerError(
                    f"'{name}' is already resolved: resolution #{s.id} says {s.answer} on "
                    f"{s.resolved_on} ({s.source}, recorded by {s.entered_by}); retract it first "
                    f"with `scenariocast retract-resolution {s.id} --reason ...`"
                )
            entry, previous = self._chain_head(conn)
            next_id = int(conn.execute(sa.select(sa.func.max(resolutions.c.id))).scalar() or 0) + 1
            row.update({"id": next_id, "entered_at": utc_now(), "entry": entry + 1})
            row["hash"] = entry_hash(previous, "resolutions", row)
            conn.execute(resolutions.insert().values(**row))
            return self._get_resolution(conn, next_id)

    def retract_resolution(
        self, resolution_id: int, *, reason: str, by: str | None = None
    ) -> OutcomeResolution:
        """Retract a resolution: it answers nothing from now on, and stays with the reason.

        Raises
        ------
        ReadingError
            If ``reason`` is empty.
        LedgerError
            If there is no such resolution or it is already retracted.
        """
        why = _clean(reason, "reason", multiline=True)
        if why is None:
            raise ReadingError("a retraction needs a reason")
        if not 0 < resolution_id <= MAX_ID:
            raise LedgerError(f"no resolution with id {resolution_id}")
        with self._write(create=False) as conn:
            current = self._get_resolution(conn, resolution_id)
            if current.retracted:
                raise LedgerError(
                    f"resolution {resolution_id} is already retracted ({current.retraction_reason})"
                )
            entry, previous = self._chain_head(conn)
            row: dict[str, Any] = {
                "resolution_id": resolution_id,
                "reason": why,
                "retracted_at": utc_now(),
                "retracted_by": _clean(by, "by") or current_user(),
                "entry": entry + 1,
            }
            row["hash"] = entry_hash(previous, "resolution_retractions", row)
            conn.execute(resolution_retractions.insert().values(**row))
            return self._get_resolution(conn, resolution_id)

    def resolutions(
        self, *, outcome: str | None = None, include_retracted: bool = True
    ) -> list[OutcomeResolution]:
        """The resolutions recorded, in the order entered (retracted ones marked)."""
        query = self._resolution_select()
        if outcome is not None:
            query = query.where(resolutions.c.outcome == outcome)
        if not include_retracted:
            query = query.where(resolution_retractions.c.resolution_id.is_(None))
        with self._read() as conn:
            rows = conn.execute(query.order_by(resolutions.c.id)).mappings().all()
        return [self._resolution(dict(r)) for r in rows]

    @staticmethod
    def _resolution_select() -> sa.Select[Any]:
        return sa.select(
            resolutions,
            resolution_retractions.c.resolution_id.label("retracted_id"),
            resolution_retractions.c.reason.label("retraction_reason"),
            resolution_retractions.c.retracted_by,
        ).select_from(
            resolutions.outerjoin(
                resolution_retractions,
                resolution_retractions.c.resolution_id == resolutions.c.id,
            )
        )

    @staticmethod
    def _resolution(row: Mapping[str, Any]) -> OutcomeResolution:
        return OutcomeResolution(
            id=int(row["id"]),
            outcome=row["outcome"],
            happened=row["answer"] == "yes",
            resolved_on=to_date(row["resolved_on"]),
            source=row["source"],
            note=row["note"],
            entered_at=_aware(to_datetime(row["entered_at"])),
            entered_by=row["entered_by"],
            retracted=row["retracted_id"] is not None,
            retraction_reason=row["retraction_reason"],
            retracted_by=row["retracted_by"],
        )

    def _get_resolution(self, conn: Connection, resolution_id: int) -> OutcomeResolution:
        row = (
            conn.execute(self._resolution_select().where(resolutions.c.id == resolution_id))
            .mappings()
            .first()
        )
        if row is None:
            raise LedgerError(f"no resolution with id {resolution_id}")
        return self._resolution(dict(row))

    # -----------------------------------------------------------------------------------------
    # verification, export and restore

    def verify(self) -> Verification:
        """Check the file, the append-only triggers and the hash chain.

        See :func:`scenariocast.ledger.transfer.verify`.
        """
        from scenariocast.ledger.transfer import verify

        return verify(self)

    def export(self, folder: str | Path, *, format: str = "csv") -> ExportReport:
        """Write every reading, retraction and snapshot to CSV (or Parquet) files in ``folder``.

        See :func:`scenariocast.ledger.transfer.export`.
        """
        from scenariocast.ledger.transfer import export

        return export(self, folder, format=format)

    def restore(self, folder: str | Path) -> ExportReport:
        """Load an export into this ledger, which must be empty.

        See :func:`scenariocast.ledger.transfer.restore`.
        """
        from scenariocast.ledger.transfer import restore

        return restore(self, folder)
