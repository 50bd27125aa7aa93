"""The evidence ledger: an append-only store of readings, retractions and forecast snapshots.

Any SQLAlchemy database URL works; the default is a SQLite file in the user's data folder.
SQLite runs in WAL mode with a busy timeout and takes its write lock at the start of each
write transaction, so that many processes can record readings at the same time.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, Row, make_url
from sqlalchemy.exc import SQLAlchemyError

from scenariocast.errors import LedgerError, ReadingError
from scenariocast.evidence.readings import ObservedDate, Reading
from scenariocast.ledger.records import Snapshot
from scenariocast.ledger.schema import metadata, readings, retractions, snapshots, upgrade

if TYPE_CHECKING:
    from scenariocast.evidence.catalog import Catalog
    from scenariocast.ledger.importing import ImportReport

ENV_VAR = "SCENARIOCAST_DB"
BUSY_TIMEOUT_S = 30.0


def default_path() -> Path:
    """``$XDG_DATA_HOME/scenariocast/ledger.db``, with ``~/.local/share`` as the default."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "scenariocast" / "ledger.db"


def current_user() -> str:
    """The operating system's user name, or ``"unknown"``."""
    try:
        return getpass.getuser() or "unknown"
    except Exception:
        return "unknown"


def utc_now() -> dt.datetime:
    """The current time in UTC, without a time zone (as stored)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    out = str(text).strip()
    return out or None


def _to_url(target: str | os.PathLike[str]) -> URL:
    text = os.fspath(target)
    if "://" in text:
        try:
            return make_url(text)
        except SQLAlchemyError as exc:
            raise LedgerError(f"cannot open the ledger at {text}: {_one_line(exc)}") from None
    path = Path(text).expanduser().absolute()
    return URL.create("sqlite", database=str(path))


class Ledger:
    """The evidence ledger.

    Parameters
    ----------
    url
        A SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://...``) or a file path for
        a SQLite ledger. Default: the environment variable ``SCENARIOCAST_DB``, else
        ``$XDG_DATA_HOME/scenariocast/ledger.db``. The database and its tables are created on
        first use.
    """

    def __init__(self, url: str | os.PathLike[str] | None = None) -> None:
        if url is None or not os.fspath(url).strip():
            url = os.environ.get(ENV_VAR, "").strip() or default_path()
        self._url = _to_url(url)
        self._engine: Engine | None = None

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

    # -----------------------------------------------------------------------------------------
    # connections

    def _open(self) -> Engine:
        if self._engine is not None:
            return self._engine
        where = self.location
        try:
            if self.is_sqlite and self._url.database not in (None, "", ":memory:"):
                Path(where).parent.mkdir(parents=True, exist_ok=True)
            engine = self._create_engine()
            with self._transaction(engine) as conn:
                metadata.create_all(conn)
                upgrade(conn)
        except OSError as exc:
            raise LedgerError(f"cannot open the ledger at {where}: {exc.strerror or exc}") from None
        except (SQLAlchemyError, ImportError) as exc:
            raise LedgerError(f"cannot open the ledger at {where}: {_one_line(exc)}") from None
        self._engine = engine
        return engine

    def _create_engine(self) -> Engine:
        if not self.is_sqlite:
            return sa.create_engine(self._url, pool_pre_ping=True)
        engine = sa.create_engine(self._url, connect_args={"timeout": BUSY_TIMEOUT_S})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, start transactions, so that writes can take the
            # lock up front (BEGIN IMMEDIATE) instead of failing to upgrade a read lock.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "")
            conn.exec_driver_sql(f"BEGIN {mode}".strip())

        return engine

    @contextmanager
    def _transaction(self, engine: Engine, *, write: bool = True) -> Iterator[Connection]:
        with engine.connect() as conn:
            if write and self.is_sqlite:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction; database errors become :class:`LedgerError`."""
        engine = self._open()
        try:
            with self._transaction(engine) as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise LedgerError(
                f"cannot write to the ledger at {self.location}: {_one_line(exc)}"
            ) from None

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """One read transaction; database errors become :class:`LedgerError`."""
        engine = self._open()
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
            For an unknown indicator or source or a bad value (when ``catalog`` is given), a
            bad observed date, or ``links`` that names no earlier reading of this indicator.
            Nothing is written then.
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
        with self._write() as conn:
            if links is not None:
                self._check_links(conn, links, values["indicator"])
            new_id = self._insert(conn, values, links=links, entered_by=entered_by)
            return self._get(conn, new_id)

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
    ) -> dict[str, Any]:
        ind, val, src = _clean(indicator), _clean(value), _clean(source)
        if ind is None:
            raise ReadingError("a reading needs an indicator")
        if val is None:
            raise ReadingError(f"{ind}: a reading needs a value")
        if src is None:
            raise ReadingError(f"{ind}: a reading needs a source")
        if catalog is not None:
            catalog.check(ind, val, src)
        when = ObservedDate.parse(observed)
        return {
            "indicator": ind,
            "value": val,
            "unit": _clean(unit),
            "observed": when.text,
            "observed_start": when.start,
            "observed_end": when.end,
            "location": _clean(location),
            "source": src,
            "note": _clean(note),
            "source_url": _clean(source_url),
            "report": _clean(report),
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

    @staticmethod
    def _insert(
        conn: Connection, values: Mapping[str, Any], *, links: int | None, entered_by: str | None
    ) -> int:
        result = conn.execute(
            readings.insert().values(
                **values,
                links=links,
                entered_at=utc_now(),
                entered_by=_clean(entered_by) or current_user(),
            )
        )
        key = result.inserted_primary_key
        if key is None:  # pragma: no cover - every supported database returns the key
            raise LedgerError("the database did not return the new reading's id")
        return int(key[0])

    @staticmethod
    def _select() -> sa.Select[Any]:
        return sa.select(
            readings,
            retractions.c.reading_id.label("retracted_id"),
            retractions.c.reason.label("retraction_reason"),
        ).select_from(readings.outerjoin(retractions, retractions.c.reading_id == readings.c.id))

    @staticmethod
    def _reading(row: Row[Any]) -> Reading:
        return Reading(
            id=int(row.id),
            indicator=row.indicator,
            value=row.value,
            observed=ObservedDate(
                end=row.observed_end, start=row.observed_start, text=row.observed
            ),
            source=row.source,
            unit=row.unit,
            location=row.location,
            note=row.note,
            source_url=row.source_url,
            links=row.links,
            report=row.report,
            entered_at=_aware(row.entered_at),
            entered_by=row.entered_by,
            retracted=row.retracted_id is not None,
            retraction_reason=row.retraction_reason,
        )

    def _get(self, conn: Connection, reading_id: int) -> Reading:
        row = conn.execute(self._select().where(readings.c.id == reading_id)).one_or_none()
        if row is None:
            raise LedgerError(f"no reading with id {reading_id}")
        return self._reading(row)

    def reading(self, reading_id: int) -> Reading:
        """The reading with id ``reading_id``; a :class:`LedgerError` if there is none."""
        with self._read() as conn:
            return self._get(conn, reading_id)

    def readings(
        self, *, indicator: str | None = None, include_retracted: bool = True
    ) -> list[Reading]:
        """The readings in the ledger (of one indicator if given), in the order entered."""
        query = self._select().order_by(readings.c.id)
        if indicator is not None:
            query = query.where(readings.c.indicator == indicator)
        if not include_retracted:
            query = query.where(retractions.c.reading_id.is_(None))
        with self._read() as conn:
            return [self._reading(row) for row in conn.execute(query)]

    def retract(self, reading_id: int, *, reason: str, by: str | None = None) -> Reading:
        """Mark a reading as retracted, keeping it and the reason in the ledger.

        Raises
        ------
        ReadingError
            If ``reason`` is empty.
        LedgerError
            If there is no reading ``reading_id`` or it is already retracted.
        """
        why = _clean(reason)
        if why is None:
            raise ReadingError("a retraction needs a reason")
        with self._write() as conn:
            current = self._get(conn, reading_id)
            if current.retracted:
                raise LedgerError(
                    f"reading {reading_id} is already retracted ({current.retraction_reason})"
                )
            conn.execute(
                retractions.insert().values(
                    reading_id=reading_id,
                    reason=why,
                    retracted_at=utc_now(),
                    retracted_by=_clean(by) or current_user(),
                )
            )
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
        with self._write() as conn:
            result = conn.execute(
                snapshots.insert().values(
                    created_at=utc_now(),
                    tree_id=tree_id,
                    tree_hash=tree_hash,
                    engine=engine,
                    as_of=as_of,
                    given=given_json,
                    n_readings=n_readings,
                    readings_hash=readings_hash,
                    payload=payload_json,
                )
            )
            key = result.inserted_primary_key
            if key is None:  # pragma: no cover
                raise LedgerError("the database did not return the new snapshot's id")
            return int(key[0])

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
                )
            )
        return out
