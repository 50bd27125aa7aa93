"""A back-test: what a tree would have forecast at given dates, against what happened.

A tree written for a year that has resolved is forecast as of each date (by default the first
day of each quarter of its horizon) on the readings observed up to that date, and each outcome's
forecasts are scored against its resolution by the Brier score, the mean of
``(probability - outcome)^2`` over the dates (0 is perfect; always saying 50% scores 0.25). The
prior (no reading at all) is scored the same way, so that a reader sees whether the readings
helped.

A resolution says what happened and on what basis: ``settled`` (the record cited settles it),
``inferred`` (the record does not report it; the resolution is inferred, and says from what) or
``unsettled`` (the record cannot settle it: the outcome is shown but not scored). Resolutions are
kept in a YAML file (``load_resolutions``) so that each cites its record.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scenariocast.analysis.timeline import outcome_timeline
from scenariocast.engines.exact import ExactModel
from scenariocast.errors import QueryError, ResolutionError
from scenariocast.evidence.readings import Reading
from scenariocast.spec.tree import Tree
from scenariocast.validation import load_yaml_mapping, problem_at, read_text, translate_errors

Basis = Literal["settled", "inferred", "unsettled"]


class Resolution(BaseModel):
    """What happened to one outcome in one year, and on what record."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    happened: bool | None = Field(
        description="yes or no; null when the record cannot settle it (basis unsettled)."
    )
    basis: Basis = Field(description="settled, inferred or unsettled.")
    record: str = Field(min_length=1, description="What the record says, with its sources.")

    @model_validator(mode="after")
    def _settled_or_not(self) -> Resolution:
        if (self.happened is None) != (self.basis == "unsettled"):
            raise ValueError("`happened` is null exactly when the basis is unsettled")
        return self


class _ResolutionsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    years: dict[Annotated[str, Field(pattern=r"^[0-9]{4}$")], dict[str, Resolution]]


def load_resolutions(path: str | Path) -> dict[int, dict[str, Resolution]]:
    """Read a resolutions file: ``years: {YEAR: {OUTCOME: {happened, basis, record}}}``.

    Raises
    ------
    ResolutionError
        With every problem found, each naming the file, the field and the line.
    """
    p = Path(path)
    text = read_text(p, ResolutionError)
    data, lines, problems = load_yaml_mapping(text, str(p), ResolutionError)
    if isinstance(data.get("years"), dict):  # YAML reads 2024 as a number; lines know it as text
        data["years"] = {str(year): v for year, v in data["years"].items()}
    try:
        parsed = _ResolutionsFile.model_validate(data)
    except ValidationError as exc:
        problems.extend(
            problem_at(str(p), lines, loc, msg, line_loc)
            for loc, msg, line_loc in translate_errors(exc, _ResolutionsFile)
        )
        raise ResolutionError(problems) from None
    if problems:
        raise ResolutionError(problems)
    return {int(year): dict(outcomes) for year, outcomes in parsed.years.items()}


def quarter_starts(tree: Tree) -> tuple[dt.date, ...]:
    """The first day of each calendar quarter that starts within the tree's horizon."""
    if tree.steps is None:
        raise QueryError(f"tree '{tree.id}' has no horizon to back-test over")
    start, end = tree.steps.start, tree.steps.end
    out: list[dt.date] = []
    year, month = start.year, 3 * ((start.month - 1) // 3) + 1
    while True:
        day = dt.date(year, month, 1)
        if day > end:
            break
        if day >= start:
            out.append(day)
        year, month = (year + 1, 1) if month == 10 else (year, month + 3)
    return tuple(out)


def brier_score(probabilities: Sequence[float], happened: bool) -> float:
    """The mean of ``(p - outcome)^2`` over the forecasts ``probabilities`` of one outcome."""
    if not probabilities:
        raise ValueError("no forecast to score")
    y = 1.0 if happened else 0.0
    return math.fsum((p - y) ** 2 for p in probabilities) / len(probabilities)


@dataclass(frozen=True)
class BacktestResult:
    """A tree's forecast of each outcome at each date, with the prior and the resolutions."""

    tree_id: str
    dates: tuple[dt.date, ...]
    probabilities: Mapping[str, tuple[float, ...]]  # outcome -> the forecast at each date
    priors: Mapping[str, float]  # outcome -> the forecast with no reading
    resolutions: Mapping[str, Resolution]
    #: outcome -> the day it resolved, when known: only forecasts as of earlier days are scored
    resolved_on: Mapping[str, dt.date] = field(default_factory=dict)
    n_observations: tuple[int, ...] = ()  # readings that count at each date

    def scored(self, outcome: str) -> tuple[float, ...]:
        """The forecasts of ``outcome`` that are scored: those made before it resolved."""
        day = self.resolved_on.get(outcome)
        probs = self.probabilities[outcome]
        if day is None:
            return tuple(probs)
        return tuple(p for d, p in zip(self.dates, probs, strict=True) if d < day)

    def brier(self, outcome: str) -> float | None:
        """The mean Brier score of the forecasts of ``outcome`` made before it resolved.

        None if it is not resolved, or no forecast was made before it resolved.
        """
        res = self.resolutions.get(outcome)
        if res is None or res.happened is None:
            return None
        scored = self.scored(outcome)
        return brier_score(scored, res.happened) if scored else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the ``backtest --json`` output)."""
        return {
            "tree": self.tree_id,
            "trajectory": [
                {
                    "as_of": d.isoformat(),
                    "n_observations": self.n_observations[k] if self.n_observations else None,
                    "outcomes": {o: p[k] for o, p in self.probabilities.items()},
                }
                for k, d in enumerate(self.dates)
            ],
            "prior": dict(self.priors),
            "scores": {
                oid: {
                    "happened": res.happened,
                    "basis": res.basis,
                    "record": res.record,
                    "resolved_on": (
                        self.resolved_on[oid].isoformat() if oid in self.resolved_on else None
                    ),
                    "forecasts_scored": len(self.scored(oid)),
                    "brier": self.brier(oid),
                    "prior_brier": self.prior_brier(oid),
                }
                for oid, res in self.resolutions.items()
            },
        }

    def prior_brier(self, outcome: str) -> float | None:
        """The Brier score of the prior, as if it had been forecast at every date."""
        res = self.resolutions.get(outcome)
        if res is None or res.happened is None:
            return None
        return brier_score([self.priors[outcome]], res.happened)


def backtest(
    tree: Tree,
    readings: Sequence[Reading],
    resolutions: Mapping[str, Resolution],
    *,
    dates: Sequence[dt.date] | None = None,
    model: ExactModel | None = None,
    resolved_on: Mapping[str, dt.date] | None = None,
) -> BacktestResult:
    """Forecast ``tree`` as of each date (default: each quarter's first day) and keep the scores.

    Only readings observed on or before a date count for the forecast as of that date (their
    observed date, not the day they were published: a survey republished weeks later counts from
    the day it describes). ``resolved_on`` gives the day an outcome resolved, when known: only
    the forecasts made before it are scored.
    """
    unknown = sorted(set(resolutions) - set(tree.outcomes))
    if unknown:
        raise QueryError(f"tree '{tree.id}' has no outcome {', '.join(map(repr, unknown))}")
    when = tuple(dates) if dates is not None else quarter_starts(tree)
    timeline = outcome_timeline(tree, readings, dates=when, model=model)
    return BacktestResult(
        tree_id=tree.id,
        dates=when,
        probabilities={o: tuple(p[1:]) for o, p in timeline.outcomes.items()},
        priors={o: p[0] for o, p in timeline.outcomes.items()},
        resolutions=dict(resolutions),
        resolved_on=dict(resolved_on or {}),
        n_observations=tuple(timeline.n_observations[1:]),
    )


def replay_dates(
    tree: Tree, readings: Sequence[Reading], *, as_of: dt.date, every: str = "reading"
) -> tuple[dt.date, ...]:
    """The dates a back-test replays the ledger at, up to ``as_of``.

    ``reading``: every day a reading of the tree's indicators was observed, in observed order;
    ``month`` and ``quarter``: the first day of each month or quarter of the tree's horizon
    (a tree without a horizon: of the span of its readings).
    """
    if every not in ("reading", "month", "quarter"):
        raise QueryError(f"--every takes reading, month or quarter, got '{every}'")
    observed = sorted(
        {
            r.observed.end
            for r in readings
            if r.indicator in tree.indicators and not r.retracted and r.observed.end <= as_of
        }
    )
    if every == "reading":
        return tuple(observed)
    if tree.steps is not None:
        start, end = tree.steps.start, tree.steps.end
    elif observed:
        start, end = observed[0], observed[-1]
    else:
        return ()
    step = 1 if every == "month" else 3
    month = start.month if every == "month" else 3 * ((start.month - 1) // 3) + 1
    year = start.year
    out: list[dt.date] = []
    while True:
        day = dt.date(year, month, 1)
        if day > min(end, as_of):
            break
        if day >= start:
            out.append(day)
        month += step
        if month > 12:
            year, month = year + 1, month - 12
    return tuple(out)
