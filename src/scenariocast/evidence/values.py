"""Turning a reported value into the number an indicator's likelihood reads.

:func:`parse_value` reads a value as its indicator does; :func:`canonical_value` is the one
spelling of that reading (``yes``, ``Yes``, ``y``, ``1`` and ``true`` are one binary value;
``3``, ``3.0``, ``03`` and ``3e0`` one number), by which the ledger decides whether two rows
are the same reading.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scenariocast.errors import ReadingError, did_you_mean

_TRUE = {"1", "yes", "true", "y"}
_FALSE = {"0", "no", "false", "n"}

#: The largest size of a number a reading may have: larger ones are typing slips (``1e308``)
#: that would overflow the likelihoods, and no indicator reads quantities that large.
MAX_MAGNITUDE = 1e15


def parse_value(kind: str, text: str, categories: Sequence[str] | None = None) -> float:
    """Parse ``text`` for an indicator of ``kind``.

    Binary readings become 1.0 or 0.0, categorical ones the index of their category, counts a
    whole number >= 0, continuous readings a finite number (> 0 for lognormal); every number
    is at most :data:`MAX_MAGNITUDE` in size.
    """
    raw = str(text).strip()
    if kind == "binary":
        low = raw.lower()
        if low in _TRUE:
            return 1.0
        if low in _FALSE:
            return 0.0
        raise ReadingError(f"value '{raw}' is not yes/no (or 1/0, true/false)")
    if kind == "categorical":
        cats = list(categories or [])
        if raw in cats:
            return float(cats.index(raw))
        raise ReadingError(
            f"value '{raw}' is not one of {', '.join(cats)}{did_you_mean(raw, cats)}"
        )
    try:
        number = float(raw.replace(",", ""))
    except ValueError:
        raise ReadingError(f"value '{raw}' is not a number") from None
    if not math.isfinite(number):
        raise ReadingError(f"value '{raw}' is not a finite number")
    if abs(number) > MAX_MAGNITUDE:
        raise ReadingError(
            f"value '{raw}' is too large: a reading is at most {MAX_MAGNITUDE:.0e} in size"
        )
    if kind == "count":
        if number < 0 or number != int(number):
            raise ReadingError(f"value '{raw}' is not a count (a whole number >= 0)")
    elif kind == "lognormal" and number <= 0:
        raise ReadingError(f"value '{raw}' must be > 0 for a lognormal indicator")
    return number


def canonical_value(kind: str, text: str, categories: Sequence[str] | None = None) -> str:
    """The one spelling of ``text`` as an indicator of ``kind`` reads it.

    ``yes``/``no`` for binary readings, the category for categorical ones, the whole number for
    counts, and Python's shortest round-trip form of the number otherwise (``3.0``,
    ``12500.0``). Two values are the same reading exactly when their canonical values are equal.

    Raises
    ------
    ReadingError
        If the indicator cannot read ``text`` (see :func:`parse_value`).
    """
    number = parse_value(kind, text, categories)
    if kind == "binary":
        return "yes" if number else "no"
    if kind == "categorical":
        return list(categories or [])[int(number)]
    if kind == "count":
        return str(int(number))
    return repr(number + 0.0)  # + 0.0 turns -0.0 into 0.0
