"""Turning a reported value into the number an indicator's likelihood reads."""

from __future__ import annotations

import math
from collections.abc import Sequence

from scenariocast.errors import ReadingError, did_you_mean

_TRUE = {"1", "yes", "true", "y"}
_FALSE = {"0", "no", "false", "n"}


def parse_value(kind: str, text: str, categories: Sequence[str] | None = None) -> float:
    """Parse ``text`` for an indicator of ``kind``.

    Binary readings become 1.0 or 0.0, categorical ones the index of their category, counts a
    whole number >= 0, continuous readings a finite number (> 0 for lognormal).
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
    if kind == "count":
        if number < 0 or number != int(number):
            raise ReadingError(f"value '{raw}' is not a count (a whole number >= 0)")
    elif kind == "lognormal" and number <= 0:
        raise ReadingError(f"value '{raw}' must be > 0 for a lognormal indicator")
    return number
