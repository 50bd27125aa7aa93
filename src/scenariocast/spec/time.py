"""Steps of a tree's horizon: calendar weeks, months or quarters, numbered from the horizon start.

Step 0 is the step that holds the horizon's first day; steps before the horizon have negative
numbers (readings observed then inform the state at the start through the same chain) and steps
after it numbers of ``n`` and more. A day belongs to exactly one step: the calendar month or
quarter that holds it, or the ISO week (Monday to Sunday).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Literal

StepUnit = Literal["week", "month", "quarter"]
STEP_UNITS: tuple[StepUnit, ...] = ("week", "month", "quarter")


def _month_number(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def _first_of_month(number: int) -> dt.date:
    return dt.date(number // 12, number % 12 + 1, 1)


def step_start(unit: StepUnit, day: dt.date) -> dt.date:
    """The first day of the step of ``unit`` that holds ``day``."""
    if unit == "week":
        return day - dt.timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def step_end(unit: StepUnit, day: dt.date) -> dt.date:
    """The last day of the step of ``unit`` that holds ``day``."""
    start = step_start(unit, day)
    if unit == "week":
        return start + dt.timedelta(days=6)
    months = 1 if unit == "month" else 3
    last = _first_of_month(_month_number(start) + months - 1)
    return last.replace(day=calendar.monthrange(last.year, last.month)[1])


@dataclass(frozen=True)
class Steps:
    """The steps of a horizon: ``unit`` long, from the step holding ``start`` to ``end``.

    ``start`` is the first day of a step and ``end`` the last day of one (the specification
    checks both), so the horizon is exactly ``n`` whole steps.
    """

    unit: StepUnit
    start: dt.date
    end: dt.date

    def index(self, day: dt.date) -> int:
        """The number of the step that holds ``day`` (0 for the horizon's first step)."""
        if self.unit == "week":
            return (day - self.start).days // 7
        if self.unit == "month":
            return _month_number(day) - _month_number(self.start)
        return _month_number(day) // 3 - _month_number(self.start) // 3

    @property
    def n(self) -> int:
        """The number of steps in the horizon."""
        return self.index(self.end) + 1

    def first_day(self, i: int) -> dt.date:
        """The first day of step ``i``."""
        if self.unit == "week":
            return self.start + dt.timedelta(days=7 * i)
        months = 1 if self.unit == "month" else 3
        return _first_of_month(_month_number(self.start) + months * i)

    def last_day(self, i: int) -> dt.date:
        """The last day of step ``i``."""
        return step_end(self.unit, self.first_day(i))

    def month(self, i: int) -> int:
        """The calendar month (1-12) of step ``i``'s first day."""
        return self.first_day(i).month

    def label(self, i: int) -> str:
        """``2026-03`` for a month, ``2026-Q1`` for a quarter, ``2026-W10`` for an ISO week."""
        first = self.first_day(i)
        if self.unit == "month":
            return f"{first.year:04d}-{first.month:02d}"
        if self.unit == "quarter":
            return f"{first.year:04d}-Q{(first.month - 1) // 3 + 1}"
        year, week, _ = first.isocalendar()
        return f"{year:04d}-W{week:02d}"
