"""The mapping file that says how the rows of a CSV become readings.

A CSV without a ``source`` column, or whose indicator names and units are not the trees',
comes with a mapping file::

    sources:            # first matching rule wins; case-insensitive substring match
      - source: daily_nk
        match: {source_url: "dailynk.com"}
      - source: press
        match: {}       # matches every row
    indicators:         # the CSV's indicator -> rules, the first that matches the row wins
      rice_price_market:
        - match: {location: "average"}      # optional: columns that must contain these texts
          parts: {location: [Pyongyang, Sinuiju, Hyesan]}   # only when these rows are read
          unused: "an average of cities already read one by one"
        - unit: KPW/kg                       # optional: the CSV unit
          indicator: rice_price_market
          scale: 1.0
      china_exports_to_dprk:
        - date_form: [month]                 # optional: day, month, year, period
          indicator: china_exports_to_dprk
        - unused: "yearly totals and year-to-date periods are not monthly figures"
      usd_kpw_pct_change_vs_2025-02-16:
        - unused: "a percentage derived from two readings already in the file"
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scenariocast.errors import MappingError, Problem, did_you_mean
from scenariocast.validation import (
    line_of,
    load_yaml_mapping,
    problem_at,
    read_text,
    translate_errors,
)

#: The columns a CSV of readings may have.
COLUMNS = (
    "date",
    "indicator",
    "value",
    "source",
    "location",
    "unit",
    "note",
    "source_url",
    "links",
    "report",
    "kind",
)

Loc = tuple[str | int, ...]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class SourceRule(_Strict):
    """Rows whose named columns contain the given texts (any case) come from ``source``."""

    source: str = Field(min_length=1)
    match: dict[str, str] = Field(
        description="Column -> text the column must contain; {} matches every row."
    )


class IndicatorRule(_Strict):
    """What rows of one CSV indicator with a given unit become."""

    unit: str | None = Field(default=None, description="The CSV unit; omitted = any unit.")
    date_form: list[Literal["day", "month", "year", "period"]] | None = Field(
        default=None, description="Only rows whose date is of one of these forms; omitted = any."
    )
    match: dict[str, str] = Field(
        default_factory=dict,
        description="Column -> text the column must contain (any case); {} matches every row.",
    )
    indicator: str | None = Field(default=None, description="The trees' indicator.")
    scale: float = Field(default=1.0, description="The value is multiplied by this.")
    to_unit: str | None = Field(
        default=None,
        description="The unit after scaling; default: the trees' unit for the indicator, "
        "else the CSV's unit.",
    )
    unused: str | None = Field(default=None, description="Why these rows are not imported.")
    parts: dict[str, list[str]] | None = Field(
        default=None,
        description="With `unused`, for a row that summarises other rows (an average of "
        "cities): one column -> the values its parts have there. The rule fits a row only when, "
        "for every value, the file holds a row of the same CSV indicator, date and source with "
        "that value in the column (any case) that a rule without `parts` imports as a reading; "
        "otherwise the next rule applies.",
    )

    @model_validator(mode="after")
    def _one_target(self) -> IndicatorRule:
        if (self.indicator is None) == (self.unused is None):
            raise ValueError("a rule takes either `indicator` (what the rows become) or `unused`")
        if self.parts is not None:
            if self.unused is None:
                raise ValueError("`parts` goes with `unused`: it drops a row whose parts are read")
            if len(self.parts) != 1:
                raise ValueError("`parts` names one column (its values tell the parts apart)")
            if len(next(iter(self.parts.values()))) < 2:
                raise ValueError("`parts` needs at least two values: a summary of several rows")
        if self.unused is not None and not self.unused.strip():
            raise ValueError("`unused` needs a reason")
        if self.unused is not None and ("scale" in self.model_fields_set or self.to_unit):
            raise ValueError("an `unused` rule takes no scale or to_unit")
        if not math.isfinite(self.scale) or self.scale == 0:
            raise ValueError(f"scale must be a finite number other than 0, got {self.scale}")
        return self


class MappingFile(_Strict):
    """A whole mapping file."""

    description: str = ""
    sources: list[SourceRule] = Field(default_factory=list)
    indicators: dict[str, list[IndicatorRule]] = Field(default_factory=dict)


@dataclass(frozen=True)
class ImportMapping:
    """A validated mapping file, with the line of every field for later messages."""

    path: Path
    spec: MappingFile
    lines: Mapping[Loc, int]

    def line(self, loc: Loc) -> int | None:
        """The line of the field at ``loc`` (or of its nearest ancestor)."""
        return line_of(dict(self.lines), loc)

    def has_parts(
        self, rule: IndicatorRule, cells: Mapping[str, str], source: str, imported: PartKeys
    ) -> bool:
        """Whether every part of the summary row ``cells`` (from ``source``) is in ``imported``.

        ``imported`` holds the :func:`part_key` of every row of the file that a rule without
        ``parts`` imports as a reading (the importer collects them before it converts a row).
        """
        if rule.parts is None:
            return True
        column, values = next(iter(rule.parts.items()))
        indicator, date = cells.get("indicator", ""), cells.get("date", "")
        return all(part_key(indicator, date, source, column, value) in imported for value in values)


#: (CSV indicator, date, source, column, value) of rows imported as readings, casefolded.
PartKeys = frozenset[tuple[str, str, str, str, str]]


def part_key(
    indicator: str, date: str, source: str, column: str, value: str
) -> tuple[str, str, str, str, str]:
    """How a row is found as a part of a summary row: the same indicator, date and source."""
    return (
        indicator.strip().casefold(),
        date.strip(),
        source,
        column,
        value.strip().casefold(),
    )


def load_mapping(path: str | Path) -> ImportMapping:
    """Read and validate a mapping file.

    Raises
    ------
    MappingError
        With every problem found, each with the file, the field and the line.
    """
    p = Path(path)
    file = str(p)
    text = read_text(p, MappingError)
    data, lines, problems = load_yaml_mapping(text, file, MappingError)

    def at(loc: Loc, message: str, line_loc: Loc | None = None) -> Problem:
        return problem_at(file, lines, loc, message, line_loc)

    try:
        spec = MappingFile.model_validate(data)
    except ValidationError as exc:
        problems.extend(
            at(loc, msg, line_loc) for loc, msg, line_loc in translate_errors(exc, MappingFile)
        )
        raise MappingError(problems) from None
    for i, rule in enumerate(spec.sources):
        for col in rule.match:
            if col not in COLUMNS:
                hint = did_you_mean(col, COLUMNS)
                problems.append(at(("sources", i, "match", col), f"unknown column '{col}'{hint}"))
    for name, rules in spec.indicators.items():
        if not rules:
            problems.append(at(("indicators", name), "needs at least one rule"))
        for i, irule in enumerate(rules):
            for key in ("match", "parts"):
                for col in getattr(irule, key) or {}:
                    if col not in COLUMNS:
                        hint = did_you_mean(col, COLUMNS)
                        problems.append(
                            at(("indicators", name, i, key, col), f"unknown column '{col}'{hint}")
                        )
    if problems:
        raise MappingError(problems)
    return ImportMapping(path=p, spec=spec, lines=lines)
