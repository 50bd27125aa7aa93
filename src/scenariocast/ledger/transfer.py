"""Verifying a ledger, exporting it to CSV files, and restoring an export into an empty ledger.

An export is a folder with ``readings.csv``, ``retractions.csv``, ``snapshots.csv``,
``resolutions.csv`` and ``resolution_retractions.csv``: every
column of every row, including each entry's place in the hash chain and its hash. Restoring it
into an empty ledger (SQLite or PostgreSQL, whichever it came from) re-creates the ledger
exactly: the same ids, the same chain, the same forecasts. An export that was edited does not
verify and is refused.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from scenariocast.errors import (
    ImportProblemsError,
    LedgerError,
    Problem,
    escape_controls,
)
from scenariocast.ledger.chain import FIELDS, GENESIS, Entry, first_break
from scenariocast.ledger.schema import TABLES, metadata

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from scenariocast.ledger.store import Ledger

_INTS = {"id", "links", "reading_id", "resolution_id", "n_readings", "entry"}
_DATES = {"observed_start", "observed_end", "as_of", "resolved_on"}
#: Tables added after the first exports were written: an export without their files (made
#: before revision 0004) restores with none of their rows.
_LATER = ("resolutions", "resolution_retractions")
_TIMES = {"entered_at", "retracted_at", "created_at"}


def _columns(table: str) -> tuple[str, ...]:
    return (*FIELDS[table], "entry", "hash")


def _triggers_expected(dialect: str) -> set[str]:
    if dialect == "sqlite":
        return {f"{t}_append_only_{a}" for t in TABLES for a in ("update", "delete")}
    if dialect == "postgresql":
        return {f"{t}_{k}" for t in TABLES for k in ("append_only", "no_truncate")}
    return set()


def _triggers_present(conn: Connection) -> set[str]:
    if conn.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    elif conn.dialect.name == "postgresql":
        query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    else:
        return set()
    return {str(r[0]) for r in conn.exec_driver_sql(query)}


def _rows(conn: Connection, table: str) -> list[dict[str, Any]]:
    t = metadata.tables[table]
    cols = [t.c[name] for name in _columns(table)]
    return [dict(r) for r in conn.execute(sa.select(*cols).order_by(t.c.entry)).mappings()]


def _entries(rows: Mapping[str, list[dict[str, Any]]]) -> list[Entry]:
    return [Entry(table, row["entry"], row["hash"], row) for table in TABLES for row in rows[table]]


@dataclass(frozen=True)
class Verification:
    """What ``scenariocast ledger verify`` found.

    Attributes
    ----------
    location
        Where the ledger is.
    revision
        Its schema revision.
    entries
        How many entries follow one another, unbroken, from the first.
    total
        How many rows the tables hold.
    head
        The hash of the last unbroken entry: record it to detect later removal of entries.
    integrity
        ``ok``, or the first problem SQLite's ``PRAGMA integrity_check`` found (``not
        applicable`` for a server, which checks its own storage).
    missing_triggers
        Append-only triggers that should be there and are not.
    chain_problem
        The first entry whose hash does not follow, and why; ``None`` if the chain holds.
    """

    location: str
    revision: str
    entries: int
    total: int
    head: str
    integrity: str
    missing_triggers: tuple[str, ...]
    chain_problem: str | None

    @property
    def ok(self) -> bool:
        """Whether everything checked holds."""
        return self.integrity in ("ok", "not applicable") and not self.problems()

    def problems(self) -> list[str]:
        """One line per problem found."""
        out: list[str] = []
        if self.integrity not in ("ok", "not applicable"):
            out.append(f"the file fails its integrity check: {self.integrity}")
        if self.missing_triggers:
            out.append(
                "append-only triggers missing (rows could be changed): "
                + ", ".join(self.missing_triggers)
            )
        if self.chain_problem is not None:
            out.append(self.chain_problem)
        return out


def verify(ledger: Ledger) -> Verification:
    """Check a ledger: its file, its append-only triggers and its hash chain."""
    from scenariocast.ledger.schema import SCHEMA_REVISION

    with ledger._read() as conn:
        integrity = "not applicable"
        if conn.dialect.name == "sqlite":
            found = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA integrity_check(5)")]
            integrity = "ok" if found == ["ok"] else escape_controls("; ".join(found))
        if integrity not in ("ok", "not applicable"):
            return Verification(
                ledger.location, SCHEMA_REVISION, 0, 0, GENESIS, integrity, (), None
            )
        missing = tuple(sorted(_triggers_expected(conn.dialect.name) - _triggers_present(conn)))
        rows = {table: _rows(conn, table) for table in TABLES}
    check = first_break(_entries(rows))
    return Verification(
        location=ledger.location,
        revision=SCHEMA_REVISION,
        entries=check.entries,
        total=sum(len(r) for r in rows.values()),
        head=check.head,
        integrity=integrity,
        missing_triggers=missing,
        chain_problem=check.problem,
    )


@dataclass(frozen=True)
class ExportReport:
    """What an export or a restore moved: the folder, rows per table, the chain's head."""

    folder: Path
    readings: int
    retractions: int
    snapshots: int
    head: str
    resolutions: int = 0


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def export(ledger: Ledger, folder: str | Path) -> ExportReport:
    """Write every reading, retraction and snapshot of ``ledger`` to CSV files in ``folder``.

    One consistent snapshot of the ledger is written, whatever is being added meanwhile.

    Raises
    ------
    LedgerError
        If the folder already holds an export, or cannot be written.
    """
    out = Path(folder)
    names = [out / f"{table}.csv" for table in TABLES]
    taken = [p.name for p in names if p.exists()]
    if taken:
        raise LedgerError(
            f"{out} already holds {', '.join(taken)}: export into an empty or new folder"
        )
    with ledger._read() as conn:
        rows = {table: _rows(conn, table) for table in TABLES}
    check = first_break(_entries(rows))
    try:
        out.mkdir(parents=True, exist_ok=True)
        for table, path in zip(TABLES, names, strict=True):
            with path.open("w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(_columns(table))
                for row in rows[table]:
                    writer.writerow([_text(row[c]) for c in _columns(table)])
    except OSError as exc:
        raise LedgerError(f"cannot write the export to {out}: {exc.strerror or exc}") from None
    return ExportReport(
        out,
        len(rows["readings"]),
        len(rows["retractions"]),
        len(rows["snapshots"]),
        check.head,
        len(rows["resolutions"]),
    )


def _parse(table: str, path: Path) -> list[dict[str, Any]]:
    file = str(path)
    nullable = {c.name for c in metadata.tables[table].columns if c.nullable}
    try:
        fh = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ImportProblemsError(
            [Problem(f"cannot read: {exc.strerror or exc}", file=file)], subject=file
        ) from None
    problems: list[Problem] = []
    rows: list[dict[str, Any]] = []
    with fh:
        reader = csv.reader(fh, strict=True)
        try:
            header = next(reader, None)
            expected = list(_columns(table))
            if header != expected:
                raise ImportProblemsError(
                    [
                        Problem(
                            f"not an export of {table}: the header must be {','.join(expected)}",
                            file=file,
                            line=1,
                        )
                    ],
                    subject=file,
                )
            for record in reader:
                line = reader.line_num
                if len(record) != len(expected):
                    problems.append(
                        Problem(
                            f"has {len(record)} fields, not {len(expected)}", file=file, line=line
                        )
                    )
                    continue
                row: dict[str, Any] = {}
                for name, cell in zip(expected, record, strict=True):
                    try:
                        row[name] = _value(name, cell, nullable)
                    except ValueError:
                        problems.append(
                            Problem(
                                f"{name}: '{escape_controls(cell)}' is not valid",
                                file=file,
                                line=line,
                            )
                        )
                rows.append(row)
        except csv.Error as exc:
            problems.append(Problem(f"not valid CSV: {exc}", file=file, line=reader.line_num))
        except UnicodeDecodeError:
            problems.append(Problem("not UTF-8 text", file=file))
    if problems:
        raise ImportProblemsError(problems, subject=file)
    return rows


def _value(name: str, cell: str, nullable: set[str]) -> Any:
    if cell == "" and name in nullable:
        return None
    if name in _INTS:
        return int(cell)
    if name in _DATES:
        return dt.date.fromisoformat(cell)
    if name in _TIMES:
        return dt.datetime.fromisoformat(cell)
    return cell


def restore(ledger: Ledger, folder: str | Path) -> ExportReport:
    """Load an export (see :func:`export`) into ``ledger``, which must hold nothing yet.

    The export's hash chain is checked first: an export edited after it was written is
    refused, and nothing is written.

    Raises
    ------
    ImportProblemsError
        If a file is missing, not an export, or has bad values (each with its line).
    LedgerError
        If the export does not verify, or the ledger is not empty.
    """
    src = Path(folder)
    missing = [f"{t}.csv" for t in TABLES if t not in _LATER and not (src / f"{t}.csv").is_file()]
    if missing:
        raise ImportProblemsError(
            [
                Problem(
                    f"no {name} (an export has readings.csv, retractions.csv and snapshots.csv)",
                    file=str(src),
                )
                for name in missing
            ],
            subject=str(src),
        )
    rows = {
        table: _parse(table, src / f"{table}.csv") if (src / f"{table}.csv").is_file() else []
        for table in TABLES
    }
    check = first_break(_entries(rows))
    if check.problem is not None:
        raise LedgerError(f"the export in {src} does not verify, nothing restored: {check.problem}")
    with ledger._write() as conn:
        held = sum(
            int(
                conn.execute(sa.select(sa.func.count()).select_from(metadata.tables[t])).scalar()
                or 0
            )
            for t in TABLES
        )
        if held:
            raise LedgerError(
                f"the ledger at {ledger.location} is not empty ({held} rows): restore into a new "
                "ledger"
            )
        for table in TABLES:
            _insert_all(conn, table, sorted(rows[table], key=_sort_key(table)))
    return ExportReport(
        src,
        len(rows["readings"]),
        len(rows["retractions"]),
        len(rows["snapshots"]),
        check.head,
        len(rows["resolutions"]),
    )


def _sort_key(table: str) -> Any:
    key = {"retractions": "reading_id", "resolution_retractions": "resolution_id"}.get(table, "id")
    return lambda row: row[key]


def _insert_all(conn: Connection, table: str, rows: Iterable[dict[str, Any]]) -> None:
    batch = list(rows)
    if batch:
        conn.execute(metadata.tables[table].insert(), batch)
