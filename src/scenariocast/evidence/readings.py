"""A reading of an indicator as it was reported, and its observed date.

An observed date is a day (``2025-10-26``), a month (``2025-11``), a year (``2023``) or a period
between two of those (``2023-01/2023-06``). It is kept as written, with the first and last day
it covers.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
from dataclasses import dataclass

from scenariocast.errors import ReadingError

#: The earliest day a reading or an as-of date may name: older dates are typing slips
#: (``0001-01-01``) that would overflow the date arithmetic of the combine rules.
EARLIEST = dt.date(1900, 1, 1)

_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")


@functools.lru_cache(maxsize=65_536)
def _bounds(text: str) -> tuple[dt.date, dt.date]:
    if m := _DAY.match(text):
        d = dt.date(int(m[1]), int(m[2]), int(m[3]))
        return d, d
    if m := _MONTH.match(text):
        y, mo = int(m[1]), int(m[2])
        return dt.date(y, mo, 1), dt.date(y, mo, calendar.monthrange(y, mo)[1])
    if m := _YEAR.match(text):
        y = int(m[1])
        return dt.date(y, 1, 1), dt.date(y, 12, 31)
    raise ValueError(text)


@dataclass(frozen=True, order=True)
class ObservedDate:
    """When a reading was observed: a day, a month, a year or a period."""

    end: dt.date
    start: dt.date
    text: str

    @classmethod
    def parse(cls, text: str) -> ObservedDate:
        """Parse ``YYYY-MM-DD``, ``YYYY-MM``, ``YYYY`` or ``A/B`` with A and B of those forms."""
        return _parse_observed(str(text).strip())

    def __str__(self) -> str:
        return self.text


@functools.lru_cache(maxsize=65_536)
def _parse_observed(raw: str) -> ObservedDate:
    """:meth:`ObservedDate.parse` of stripped text, remembered (an import repeats its dates)."""
    try:
        if "/" in raw:
            a, b = raw.split("/", 1)
            start, _ = _bounds(a.strip())
            _, end = _bounds(b.strip())
        else:
            start, end = _bounds(raw)
    except ValueError:
        raise ReadingError(
            f"date '{raw}' is not a day (2025-10-26), a month (2025-10), a year (2025) "
            "or a period (2025-01/2025-06)"
        ) from None
    if end < start:
        raise ReadingError(f"period '{raw}' ends before it starts")
    return ObservedDate(end=end, start=start, text=raw)


def parse_day(text: str) -> dt.date:
    """Parse a single day ``YYYY-MM-DD`` (for --as-of and similar options), from 1900 on."""
    try:
        day = dt.date.fromisoformat(str(text).strip())
    except ValueError:
        raise ReadingError(f"'{text}' is not a date of the form YYYY-MM-DD") from None
    if day < EARLIEST:
        raise ReadingError(f"'{text}' is before {EARLIEST.year}: no reading is that old")
    return day


def check_entry_date(when: ObservedDate, today: dt.date) -> None:
    """Refuse an observed date no reading can have: before 1900, or wholly in the future.

    A period that has begun but not ended (this month, this year) is accepted: it counts in
    forecasts as of its last day. One day of slack allows for time zones.

    Raises
    ------
    ReadingError
        Naming the date and why.
    """
    if when.start < EARLIEST:
        raise ReadingError(f"date '{when.text}' is before {EARLIEST.year}: no reading is that old")
    if when.start > today + dt.timedelta(days=1):
        raise ReadingError(
            f"date '{when.text}' is in the future (today is {today}); a reading reports what "
            "was observed"
        )


@dataclass(frozen=True)
class Reading:
    """One reported reading of an indicator, as stored in the ledger.

    ``value`` is kept as reported (text): a number for continuous and count indicators,
    ``yes``/``no`` (or ``1``/``0``, ``true``/``false``) for binary ones, a category name for
    categorical ones. ``links`` names an earlier reading of the same event (the two count once).
    ``report`` names the report the reading belongs to; without it, the readings of one source
    on one observed date are one report. A reading of a node (``kind="node"``) says which state a
    node was reported in: ``indicator`` is the node's name and ``value`` the state.
    """

    id: int
    indicator: str
    value: str
    observed: ObservedDate
    source: str
    unit: str | None = None
    location: str | None = None
    note: str | None = None
    source_url: str | None = None
    links: int | None = None
    report: str | None = None
    entered_at: dt.datetime | None = None
    entered_by: str | None = None
    retracted: bool = False
    retraction_reason: str | None = None
    #: ``indicator``, or ``node`` for a reading of a node itself: ``indicator`` then names the
    #: node and ``value`` the state it was reported in (docs/evidence.md, "Readings of a node")
    kind: str = "indicator"

    @property
    def of_node(self) -> bool:
        """Whether this is a reading of a node (its state), not of an indicator."""
        return self.kind == "node"
