"""Verifying a ledger, exporting it to CSV or Parquet files, and restoring an export.

An export is a folder with ``readings.csv``, ``retractions.csv``, ``snapshots.csv``,
``resolutions.csv`` and ``resolution_retractions.csv`` (or the same files as ``.parquet``, with
typed columns, if pyarrow is installed: ``pip install scenariocast[parquet]``): every column of
every row, including each entry's place in the hash chain and its hash. Restoring it into an
empty ledger (SQLite or PostgreSQL, whichever it came from) re-creates the ledger exactly: the
same ids, the same chain, the same forecasts. An export that was edited does not verify and is
refused.
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
from scenariocast.ledger.chain import FIELDS, GENESIS, OPTIONAL, Entry, first_break
from scenariocast.ledger.schema import TABLES, metadata

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from scenariocast.ledger.store import Ledger

#: The formats of an export: each table is ``<table>.<format>``.
FORMATS = ("csv", "parquet")

_INTS = {"id", "links", "reading_id", "resolution_id", "n_readings", "entry"}
_DATES = {"observed_start", "observed_end", "as_of", "resolved_on"}
#: Tables added after the first exports were written: an export without their files (made
#: before revision 0004) restores with none of their rows.
_LATER = ("resolutions", "resolution_retractions")
_TIMES = {"entered_at", "retracted_at", "created_at"}


def _columns(table: str) -> tuple[str, ...]:
    return (*FIELDS[table], *OPTIONAL.get(table, ()), "entry", "hash")


def _earlier_columns(table: str) -> tuple[str, ...]:
    """The columns of an export made before the optional columns existed (revision < 0005)."""
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


def _pyarrow() -> Any:
    """The ``pyarrow`` module and its ``parquet`` module, or a one-line error saying how."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise LedgerError(
            "Parquet needs pyarrow, which is not installed: pip install 'scenariocast[parquet]' "
            "(or export to CSV, the default)"
        ) from None
    return pa, pq


def _arrow_schema(pa: Any, table: str) -> Any:
    """The Parquet columns of ``table``: its columns in export order, typed as in the ledger."""
    fields = []
    for name in _columns(table):
        if name in _INTS:
            kind = pa.int64()
        elif name in _DATES:
            kind = pa.date32()
        elif name in _TIMES:
            kind = pa.timestamp("us")  # UTC, without a time zone, as stored
        else:
            kind = pa.string()
        fields.append(pa.field(name, kind, nullable=metadata.tables[table].c[name].nullable))
    return pa.schema(fields)


def _naive(value: Any) -> Any:
    """A time as stored (UTC, without a time zone); anything else as it is."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def export(ledger: Ledger, folder: str | Path, *, format: str = "csv") -> ExportReport:
    """Write every reading, retraction and snapshot of ``ledger`` to files in ``folder``.

    ``format`` is ``csv`` (``readings.csv``, ...) or ``parquet`` (``readings.parquet``, ...,
    with typed columns; it needs pyarrow). One consistent snapshot of the ledger is written,
    whatever is being added meanwhile.

    Raises
    ------
    LedgerError
        If the folder already holds an export, or cannot be written, or ``format`` is
        ``parquet`` and pyarrow is not installed.
    """
    if format not in FORMATS:
        raise LedgerError(f"no export format '{format}': use one of {', '.join(FORMATS)}")
    arrow = _pyarrow() if format == "parquet" else None
    out = Path(folder)
    taken = [p.name for t in TABLES for f in FORMATS if (p := out / f"{t}.{f}").exists()]
    if taken:
        raise LedgerError(
            f"{out} already holds {', '.join(taken)}: export into an empty or new folder"
        )
    names = [out / f"{table}.{format}" for table in TABLES]
    with ledger._read() as conn:
        rows = {table: _rows(conn, table) for table in TABLES}
    check = first_break(_entries(rows))
    try:
        out.mkdir(parents=True, exist_ok=True)
        for table, path in zip(TABLES, names, strict=True):
            if arrow is not None:
                pa, pq = arrow
                columns = _columns(table)
                data = {c: [_naive(row[c]) for row in rows[table]] for c in columns}
                pq.write_table(pa.table(data, schema=_arrow_schema(pa, table)), path)
                continue
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


def _parse_parquet(table: str, path: Path) -> list[dict[str, Any]]:
    """The rows of a Parquet export of ``table``, with the values as a CSV export gives them."""
    pa, pq = _pyarrow()
    file = str(path)
    try:
        data = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        message = escape_controls(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        raise ImportProblemsError(
            [Problem(f"not a Parquet file: {message}", file=file)], subject=file
        ) from None
    expected = list(_columns(table))
    if OPTIONAL.get(table) and data.column_names == list(_earlier_columns(table)):
        for name in OPTIONAL[table]:  # an export made before revision 0005: none set
            data = data.append_column(
                pa.field(name, pa.string()), pa.nulls(data.num_rows, pa.string())
            )
        data = data.select(expected)
    if data.column_names != expected:
        raise ImportProblemsError(
            [
                Problem(
                    f"not an export of {table}: the columns must be {','.join(expected)}", file=file
                )
            ],
            subject=file,
        )
    try:
        data = data.cast(_arrow_schema(pa, table).remove_metadata(), safe=True)
    except (pa.ArrowException, ValueError) as exc:
        raise ImportProblemsError(
            [Problem(f"columns of the wrong type: {escape_controls(str(exc))}", file=file)],
            subject=file,
        ) from None
    problems: list[Problem] = []
    nullable = {c.name for c in metadata.tables[table].columns if c.nullable}
    rows: list[dict[str, Any]] = data.to_pylist()
    for i, row in enumerate(rows, start=1):
        for name in expected:
            if row[name] is None and name not in nullable:
                problems.append(Problem(f"{name}: empty", file=file, line=i))
    if problems:
        raise ImportProblemsError(problems, subject=file)
    return rows


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
            if header == list(_earlier_columns(table)):  # an export made before revision 0005
                expected = list(header)
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
    if name == "kind" and cell != "node":  # a reading's kind: empty (an indicator) or node
        raise ValueError(cell)
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
    # the format of the export: the one its readings file is in
    found = [f for f in FORMATS if (src / f"readings.{f}").is_file()]
    format = found[0] if len(found) == 1 else "csv"
    missing = [
        f"{t}.{format}" for t in TABLES if t not in _LATER and not (src / f"{t}.{format}").is_file()
    ]
    if len(found) > 1:
        raise ImportProblemsError(
            [Problem("holds both readings.csv and readings.parquet: which export?", file=str(src))],
            subject=str(src),
        )
    if missing:
        raise ImportProblemsError(
            [
                Problem(
                    f"no {name} (an export has readings.csv, retractions.csv and snapshots.csv, "
                    "or the same as .parquet)",
                    file=str(src),
                )
                for name in missing
            ],
            subject=str(src),
        )
    parse = _parse_parquet if format == "parquet" else _parse
    rows = {
        table: parse(table, src / f"{table}.{format}")
        if (src / f"{table}.{format}").is_file()
        else []
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
