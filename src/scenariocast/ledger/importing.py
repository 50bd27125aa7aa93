"""Importing a CSV file of readings into the ledger: all rows or none.

Two shapes of CSV are read:

- native: columns ``date, indicator, value, source`` and optionally ``location, unit, note,
  source_url, links, report``;
- without a ``source`` column (such as ``date, indicator, location, value, unit, source_url,
  note``): a mapping file (:mod:`scenariocast.ledger.mapping`) then assigns each row a source.

A mapping file, when one is used, also maps the CSV's indicator names and units to the trees'
indicators (with a scale for unit conversions) and marks rows that are not used. When no mapping
file is given, ``mapping.yaml`` next to the CSV is used if there is one. A mapping file without
an ``indicators`` section keeps the CSV's indicator names; a non-empty ``source`` cell wins over
the mapping's source rules.

Every bad row is reported at once with its line in the file (the header is line 1) and nothing
is written. Rows identical to a reading already in the ledger, or to an earlier row, are skipped
and reported, so importing the same file twice adds nothing the second time.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa

from scenariocast.bulk import bulk
from scenariocast.errors import (
    ImportProblemsError,
    MappingError,
    Problem,
    ReadingError,
    did_you_mean,
    escape_controls,
)
from scenariocast.evidence.readings import ObservedDate, Reading, check_entry_date
from scenariocast.ledger.mapping import (
    COLUMNS,
    ImportMapping,
    IndicatorRule,
    PartKeys,
    load_mapping,
    part_key,
)
from scenariocast.ledger.schema import readings as readings_table
from scenariocast.ledger.store import _CONTROL as CONTROL
from scenariocast.ledger.store import Ledger, today

if TYPE_CHECKING:
    from scenariocast.evidence.catalog import Catalog

REQUIRED = ("date", "indicator", "value", "source")
#: What a row's ``kind`` cell may say: empty or ``indicator`` (the default), or ``node``.
KINDS = ("indicator", "node")
#: CONTROL without the line breaks that end the rows of a file
_CONTROL_BUT_LINE_BREAKS = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
MAPPING_NAME = "mapping.yaml"

#: (line in the CSV, the CSV's indicator, why the row was skipped)
Skipped = tuple[int, str, str]
_Key = tuple[str, str, str, str, str, str, str]


@dataclass(frozen=True)
class ImportReport:
    """What an import did.

    Attributes
    ----------
    imported
        The readings written, as stored (with their ids).
    skipped_unused
        Rows a mapping rule marks ``unused``: (line, CSV indicator, the rule's reason).
    skipped_duplicates
        Rows identical to a reading already in the ledger or to an earlier row of the file:
        (line, CSV indicator, what they repeat).
    mapping_path
        The mapping file used, if any.
    """

    imported: Sequence[Reading] = field(default_factory=list)
    skipped_unused: list[Skipped] = field(default_factory=list)
    skipped_duplicates: list[Skipped] = field(default_factory=list)
    mapping_path: Path | None = None


class _Row(NamedTuple):
    line: int
    cells: dict[str, str]
    #: known to hold no control character (checked once for the whole file)
    plain: bool = False


@dataclass
class _Pending:
    line: int
    values: dict[str, Any]
    links: int | None


@bulk
def import_csv(
    ledger: Ledger,
    path: str | Path,
    *,
    catalog: Catalog,
    mapping_path: str | Path | None = None,
    entered_by: str | None = None,
) -> ImportReport:
    """Import the readings in the CSV file at ``path`` into ``ledger``, all or none.

    Raises
    ------
    ImportProblemsError
        With one problem per bad row (or bad header), each with its line; nothing is written.
    MappingError
        If the mapping file does not validate or names indicators or sources the trees do
        not define.
    LedgerError
        If the ledger cannot be opened or written.
    """
    csv_path = Path(path)
    if mapping_path is None and (csv_path.parent / MAPPING_NAME).is_file():
        mapping_path = csv_path.parent / MAPPING_NAME
    mapping = load_mapping(mapping_path) if mapping_path is not None else None
    if mapping is not None:
        _check_mapping(mapping, catalog)
    header, rows = _read_csv(csv_path)
    file = str(csv_path)
    _check_header(header, mapping, file)
    parts = _imported_parts(mapping, rows) if mapping is not None else frozenset()

    with ledger._write() as conn:
        existing: dict[_Key, int] = {}
        indicator_of: dict[int, str] = {}
        canon = _Canonical(catalog)
        checks = _Checks(catalog)
        query = sa.select(
            readings_table.c.id,
            readings_table.c.indicator,
            readings_table.c.value,
            readings_table.c.observed,
            readings_table.c.location,
            readings_table.c.source,
            readings_table.c.unit,
            readings_table.c.kind,
        ).order_by(readings_table.c.id)
        for rid, indicator, value, observed, location, source, unit, kind in conn.execute(query):
            # what a link to it must be of (a reading of a node: no indicator's)
            indicator_of[int(rid)] = indicator if kind is None else f"node '{indicator}'"
            key = _key(indicator, canon(indicator, value), observed, location, source, unit, kind)
            existing.setdefault(key, int(rid))

        problems: list[Problem] = []
        pending: list[_Pending] = []
        unused: list[Skipped] = []
        duplicates: list[Skipped] = []
        seen: dict[_Key, int] = {}
        for row in rows:
            errors, result = _convert(row, mapping, checks, indicator_of, parts)
            if errors:
                problems.extend(
                    Problem(escape_controls(msg), file=file, line=row.line) for msg in errors
                )
                continue
            if result is None:
                continue
            if isinstance(result, str):
                unused.append((row.line, row.cells.get("indicator", ""), result))
                continue
            v = result.values
            indicator = v["indicator"]
            key = (
                indicator,
                canon(indicator, v["value"]),
                v["observed"],
                v["location"] or "",
                v["source"],
                v["unit"] or "",
                v.get("kind") or "",
            )
            if key not in existing and key not in seen:
                seen[key] = row.line
                pending.append(result)
                continue
            csv_indicator = row.cells.get("indicator", "")
            if key in existing:
                duplicates.append(
                    (row.line, csv_indicator, f"same as reading {existing[key]} in the ledger")
                )
            elif key in seen:
                duplicates.append((row.line, csv_indicator, f"same as line {seen[key]}"))
            else:
                seen[key] = row.line
                pending.append(result)
        if problems:
            raise ImportProblemsError(problems, subject=file)
        imported = ledger._append_readings(conn, [p.values for p in pending], entered_by=entered_by)
    return ImportReport(
        imported=imported,
        skipped_unused=unused,
        skipped_duplicates=duplicates,
        mapping_path=mapping.path if mapping is not None else None,
    )


class _Canonical:
    """The value as its indicator reads it, remembered per (indicator, text)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._seen: dict[tuple[str, str], str] = {}

    def __call__(self, indicator: str, value: str) -> str:
        key = (indicator, value)
        out = self._seen.get(key)
        if out is None:
            out = self._seen[key] = self._catalog.canonical(indicator, value)
        return out


class _Checks:
    """The checks of a row's value and date, each remembered per distinct text.

    An import repeats its indicators, sources, values and dates many times over; each
    distinct one is checked once (the same checks, the same messages, as one by one).
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.today = today()
        self._values: dict[tuple[str, str, str], str | None] = {}
        self._nodes: dict[tuple[str, str, str], str | None] = {}
        self._dates: dict[str, str | None] = {}
        self._entry_dates: dict[str, ObservedDate | str] = {}

    def value(self, indicator: str, value: str, source: str) -> str | None:
        """Why the catalog refuses the reading's value (``None``: it takes it)."""
        key = (indicator, value, source)
        try:
            return self._values[key]
        except KeyError:
            return _refusal(self._values, key, self.catalog.check, *key)

    def node(self, node: str, state: str, source: str) -> str | None:
        """Why the catalog refuses a reading of ``node`` in ``state`` (``None``: it takes it)."""
        key = (node, state, source)
        try:
            return self._nodes[key]
        except KeyError:
            return _refusal(self._nodes, key, self.catalog.check_node, *key)

    def date(self, text: str) -> str | None:
        """Why the observed date cannot be read (``None``: it can)."""
        try:
            return self._dates[text]
        except KeyError:
            return _refusal(self._dates, text, ObservedDate.parse, text)

    def entry_date(self, text: str) -> ObservedDate | str:
        """The observed date of readable ``text``, or why a reading cannot have it.

        As :meth:`Ledger._validate` refuses it: before 1900, or in the future.
        """
        try:
            return self._entry_dates[text]
        except KeyError:
            pass
        when = ObservedDate.parse(text)
        try:
            check_entry_date(when, self.today)
        except ReadingError as exc:
            out: ObservedDate | str = str(exc)
        else:
            out = when
        self._entry_dates[text] = out
        return out


def _refusal[K](
    remembered: dict[K, str | None], key: K, check: Callable[..., object], *args: str
) -> str | None:
    """Why ``check(*args)`` refuses (its ReadingError's message; ``None``: it passes), kept."""
    try:
        check(*args)
    except ReadingError as exc:
        out: str | None = str(exc)
    else:
        out = None
    remembered[key] = out
    return out


def has_control(cells: dict[str, str]) -> bool:
    """Whether any cell holds a control character (a line break, a tab, ...)."""
    return CONTROL.search("".join(cells.values())) is not None


def _key(
    indicator: str,
    value: str,
    observed: str,
    location: str | None,
    source: str,
    unit: str | None,
    kind: str | None,
) -> _Key:
    return (indicator, value, observed, location or "", source, unit or "", kind or "")


def _check_mapping(mapping: ImportMapping, catalog: Catalog) -> None:
    file = str(mapping.path)
    problems: list[Problem] = []

    def add(loc: tuple[str | int, ...], message: str) -> None:
        problems.append(Problem(message, file=file, path=loc, line=mapping.line(loc)))

    for i, src in enumerate(mapping.spec.sources):
        if src.source not in catalog.sources:
            hint = did_you_mean(src.source, catalog.sources)
            add(("sources", i, "source"), f"no scenario tree defines source '{src.source}'{hint}")
    for name, rules in mapping.spec.indicators.items():
        for i, rule in enumerate(rules):
            if rule.indicator is not None and rule.indicator not in catalog.indicators:
                hint = did_you_mean(rule.indicator, catalog.indicators)
                add(
                    ("indicators", name, i, "indicator"),
                    f"no scenario tree defines indicator '{rule.indicator}'{hint}",
                )
    if problems:
        raise MappingError(problems)


def _read_csv(path: Path) -> tuple[list[str], list[_Row]]:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ImportProblemsError([Problem("no such file", file=file)]) from None
    except UnicodeDecodeError as exc:
        raise ImportProblemsError(
            [Problem(f"not UTF-8 text (byte {exc.start})", file=file)]
        ) from None
    except OSError as exc:
        raise ImportProblemsError([Problem(f"cannot read: {exc.strerror}", file=file)]) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    strip = str.strip
    # a file with no control character but its line breaks has none in a row on one line
    plain_file = _CONTROL_BUT_LINE_BREAKS.search(text) is None
    width = 0
    header: list[str] | None = None
    rows: list[_Row] = []
    problems: list[Problem] = []
    end = 0
    while True:
        start = end + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                message = (
                    f"a quote opened on line {start} is never closed: the rest of the file "
                    "would be one field"
                )
                problems.append(Problem(message, file=file, line=start))
            else:
                problems.append(Problem(f"not valid CSV: {exc}", file=file, line=reader.line_num))
            break
        end = reader.line_num
        if header is None:
            header = [escape_controls(c.strip().lower()) for c in record]
            width = len(header)
            continue
        cells = list(map(strip, record))
        if not any(cells):
            continue  # a blank line
        if len(record) != width:
            problems.append(
                Problem(f"has {len(record)} fields, the header has {width}", file=file, line=start)
            )
            continue
        if start != end:
            spill = _spilled(header, record, start, end)
            if spill is not None:
                problems.append(Problem(spill, file=file, line=start))
                continue
            rows.append(_Row(start, dict(zip(header, cells, strict=True))))
            continue
        rows.append(_Row(start, dict(zip(header, cells, strict=True)), plain_file))
    if header is None:
        raise ImportProblemsError([Problem("the file is empty", file=file)])
    if problems:
        raise ImportProblemsError(problems, subject=file)
    return header, rows


def _spilled(header: list[str], record: list[str], start: int, end: int) -> str | None:
    """Why a row that runs over several lines looks like an unclosed quote, if it does.

    Only a note may hold line breaks; a note whose later lines look like rows of the file (as
    many commas as a row) has swallowed them.
    """
    if start == end:
        return None
    for name, cell in zip(header, record, strict=True):
        if "\n" not in cell and "\r" not in cell:
            continue
        if name != "note":
            return (
                f"the {name} field runs over lines {start}-{end}: a quote left open? "
                "(only a note may hold line breaks)"
            )
        if any(line.count(",") >= len(header) - 1 for line in cell.splitlines()[1:]):
            return (
                f"the note runs over lines {start}-{end} and holds what look like rows of the "
                "file: a quote left open?"
            )
    return None


def _check_header(header: list[str], mapping: ImportMapping | None, file: str) -> None:
    problems: list[str] = []
    for i, name in enumerate(header):
        if name not in COLUMNS:
            problems.append(f"unknown column '{name}'{did_you_mean(name, COLUMNS)}")
        elif name in header[:i]:
            problems.append(f"column '{name}' appears twice")
    required = [c for c in REQUIRED if c != "source" or mapping is None]
    missing = [c for c in required if c not in header]
    if missing:
        message = (
            f"missing column {', '.join(missing)}; a CSV of readings needs date, indicator, "
            "value and source"
        )
        if "source" in missing:
            message += (
                f", or a mapping file that assigns sources: none was given and there is no "
                f"{MAPPING_NAME} beside the CSV in {Path(file).parent} (give one with --mapping)"
            )
        problems.append(message)
    if mapping is not None and "source" not in header and not mapping.spec.sources:
        problems.append(
            f"the CSV has no source column and the mapping file {mapping.path} has no source rules"
        )
    if problems:
        raise ImportProblemsError([Problem(m, file=file, line=1) for m in problems], subject=file)


def _date_form(text: str) -> str:
    text = text.strip()
    if "/" in text:
        return "period"
    return {10: "day", 7: "month", 4: "year"}.get(len(text), "other")


def _imported_parts(mapping: ImportMapping, rows: list[_Row]) -> PartKeys:
    """The part keys of the rows a rule without ``parts`` imports (for rules with ``parts``)."""
    columns: dict[str, set[str]] = {}
    for name, rules in mapping.spec.indicators.items():
        for rule in rules:
            columns.setdefault(name, set()).update(rule.parts or {})
    keys = set()
    for row in rows:
        name = row.cells.get("indicator", "")
        if not columns.get(name):
            continue
        picked = _pick_rule(mapping.spec.indicators[name], row.cells)
        if picked is None or picked.indicator is None:
            continue
        source = row.cells.get("source", "") or _match_source(mapping, row.cells) or ""
        date = row.cells.get("date", "")
        for column in columns[name]:
            keys.add(part_key(name, date, source, column, row.cells.get(column, "")))
    return frozenset(keys)


def _pick_rule(
    rules: list[IndicatorRule],
    cells: dict[str, str],
    has_parts: Callable[[IndicatorRule], bool] | None = None,
) -> IndicatorRule | None:
    """The first rule whose unit, date form and column texts all fit the row.

    A rule with ``parts`` fits only if ``has_parts`` says the row's parts are imported (never,
    when ``has_parts`` is None).
    """
    unit = cells.get("unit", "")
    form = _date_form(cells.get("date", ""))
    for rule in rules:
        if rule.parts is not None and (has_parts is None or not has_parts(rule)):
            continue
        if rule.unit is not None and rule.unit.casefold() != unit.casefold():
            continue
        if rule.date_form is not None and form not in rule.date_form:
            continue
        if all(
            want.casefold() in cells.get(col, "").casefold() for col, want in rule.match.items()
        ):
            return rule
    return None


def _scaled(value: str, scale: float) -> str:
    number = float(value.replace(",", ""))
    out = number * scale
    if not math.isfinite(out):
        raise ValueError(value)
    return f"{out:.12g}"


def _convert(
    row: _Row,
    mapping: ImportMapping | None,
    checks: _Checks,
    indicator_of: dict[int, str],
    parts: PartKeys = frozenset(),
) -> tuple[list[str], _Pending | str | None]:
    """Turn a row into a reading to insert, the reason it is unused, or its problems."""
    catalog = checks.catalog
    cells = row.cells
    errors: list[str] = []
    csv_indicator = cells.get("indicator", "")
    csv_unit = cells.get("unit", "")
    value = cells.get("value", "")
    indicator = csv_indicator
    unit: str | None = csv_unit or None
    note = cells.get("note") or None
    if not csv_indicator:
        return ["no indicator"], None
    kind = cells.get("kind", "").lower()
    if kind == "node":
        return _convert_node(row, mapping, checks)
    if kind not in ("", "indicator"):
        hint = did_you_mean(kind, KINDS)
        return [
            f"kind: '{cells['kind']}' is not a kind of reading{hint}; it is indicator or node"
        ], None
    if not value:
        errors.append(f"{csv_indicator}: no value")

    if mapping is not None and mapping.spec.indicators:
        rules = mapping.spec.indicators.get(csv_indicator)
        if rules is None:
            hint = did_you_mean(csv_indicator, mapping.spec.indicators)
            return [f"indicator '{csv_indicator}' is not in the mapping file{hint}"], None
        source_of_row = cells.get("source", "") or _match_source(mapping, cells) or ""
        rule = _pick_rule(rules, cells, lambda r: mapping.has_parts(r, cells, source_of_row, parts))
        if rule is None:
            units = ", ".join(f"'{r.unit}'" for r in rules if r.unit is not None)
            takes = f" (its rules take units {units})" if units else ""
            return [
                f"no rule for indicator '{csv_indicator}' in the mapping file fits this row "
                f"(unit '{csv_unit}', date '{cells.get('date', '')}'){takes}"
            ], None
        if rule.unused is not None:
            return [], rule.unused
        assert rule.indicator is not None
        indicator = rule.indicator
        info = catalog.indicators.get(indicator)
        unit = rule.to_unit or (info.unit if info is not None else None) or unit
        if rule.scale != 1.0 and value:
            try:
                scaled = _scaled(value, rule.scale)
            except ValueError:
                errors.append(
                    f"{csv_indicator}: value '{value}' is not a number (the mapping scales it "
                    f"by {rule.scale:g})"
                )
                value = ""  # reported here; not checked again below
            else:
                shown = f"{value} {csv_unit}".strip()
                extra = f"reported as {shown}; scaled by {rule.scale:g}"
                note = f"{note} [{extra}]" if note else f"[{extra}]"
                value = scaled

    source = cells.get("source", "")
    if not source and mapping is not None:
        source = _match_source(mapping, cells) or ""
        if not source:
            errors.append("no source rule in the mapping file matches this row")
    elif not source:
        errors.append(f"{csv_indicator}: no source")

    links: int | None = None
    link_text = cells.get("links", "")
    if link_text:
        try:
            links = int(link_text)
        except ValueError:
            errors.append(f"links: '{link_text}' is not a reading id")
        else:
            if links not in indicator_of:
                errors.append(f"links: no reading with id {links} to link to")
            elif indicator_of[links] != indicator:
                of = indicator_of[links]
                of = of if of.startswith("node ") else f"indicator '{of}'"
                errors.append(f"links: reading {links} is of {of}, not of indicator '{indicator}'")
    if value and source:
        refused = checks.value(indicator, value, source)
        if refused is not None:
            errors.append(refused)
    date = cells.get("date", "")
    bad_date = checks.date(date)
    if bad_date is not None:
        errors.append(bad_date)
    if errors:
        return errors, None
    if mapping is None and (row.plain or not has_control(cells)):
        # the common case, checked as Ledger._validate checks it: cells are stripped
        # already and hold no control character; only the date is left to check
        when = checks.entry_date(date)
        if isinstance(when, str):
            return [when], None
        values = {
            "indicator": indicator,
            "value": value,
            "observed": when.text,
            "observed_start": when.start,
            "observed_end": when.end,
            "source": source,
            "unit": unit,
            "location": cells.get("location") or None,
            "note": note,
            "source_url": cells.get("source_url") or None,
            "report": cells.get("report") or None,
            "links": links,
        }
        return [], _Pending(row.line, values, links)
    try:
        values = Ledger._validate(
            indicator=indicator,
            value=value,
            observed=date,
            source=source,
            unit=unit,
            location=cells.get("location"),
            note=note,
            source_url=cells.get("source_url"),
            report=cells.get("report"),
            catalog=None,
            on=checks.today,
        )
    except ReadingError as exc:
        return [str(exc)], None
    values["links"] = links
    return [], _Pending(row.line, values, links)


def _convert_node(
    row: _Row, mapping: ImportMapping | None, checks: _Checks
) -> tuple[list[str], _Pending | None]:
    """A row of ``kind`` ``node``: the node in ``indicator``, the state reported in ``value``.

    Checked as :meth:`Ledger.observe_node` checks it; a mapping's indicator rules do not apply
    to it (they map indicators), its source rules do.
    """
    cells = row.cells
    node, state = cells.get("indicator", ""), cells.get("value", "")
    errors: list[str] = []
    if not state:
        errors.append(f"node {node}: no state")
    source = cells.get("source", "") or (
        _match_source(mapping, cells) or "" if mapping is not None else ""
    )
    if not source:
        errors.append(
            "no source rule in the mapping file matches this row"
            if mapping is not None
            else f"node {node}: no source"
        )
    if cells.get("unit"):
        errors.append(f"node {node}: a reading of a node has no unit (unit '{cells['unit']}')")
    if cells.get("links"):
        errors.append(f"links: a reading of a node links to no other reading (node {node})")
    if state and source:
        refused = checks.node(node, state, source)
        if refused is not None:
            errors.append(refused)
    date = cells.get("date", "")
    bad_date = checks.date(date)
    if bad_date is not None:
        errors.append(bad_date)
    if errors:
        return errors, None
    try:
        values = Ledger._validate(
            indicator=node,
            value=state,
            observed=date,
            source=source,
            unit=None,
            location=cells.get("location"),
            note=cells.get("note") or None,
            source_url=cells.get("source_url"),
            report=cells.get("report"),
            catalog=None,
            on=checks.today,
        )
    except ReadingError as exc:
        return [str(exc)], None
    values["links"] = None
    values["kind"] = "node"
    return [], _Pending(row.line, values, None)


def _match_source(mapping: ImportMapping, cells: dict[str, str]) -> str | None:
    for rule in mapping.spec.sources:
        if all(
            want.casefold() in cells.get(col, "").casefold() for col, want in rule.match.items()
        ):
            return rule.source
    return None
