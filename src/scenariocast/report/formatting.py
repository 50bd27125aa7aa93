"""How numbers read in a report: probabilities as percentages, changes in points, values.

Shared by the templates (as filters) and the figures, so that a probability reads the same in
the table, on the chart and in every format.
"""

from __future__ import annotations

import math

MINUS = "\u2212"


def pct(p: float | None, decimals: int = 1) -> str:
    """A probability as a percentage: ``0.4213`` -> ``42.1%``; ``<0.1%`` and ``>99.9%`` at the ends.

    Exactly 0 and 1 read ``0%`` and ``100%``: a probability so close to them that it would
    round there reads as ``<0.1%`` or ``>99.9%``, so that a reader never sees a certainty that
    the model does not claim.
    """
    if p is None or not math.isfinite(p):
        return "–"
    if p <= 0.0:
        return "0%"
    if p >= 1.0:
        return "100%"
    floor = 0.5 * 10.0 ** (-decimals) / 100.0
    if p < floor:
        return f"<{10.0 ** (-decimals):.{decimals}f}%"
    if p > 1.0 - floor:
        return f">{100 - 10.0 ** (-decimals):.{decimals}f}%"
    return f"{100 * p:.{decimals}f}%"


def points(change: float | None) -> str:
    """A change in probability in percentage points, signed: ``+4.2 pp``, ``−0.3 pp``."""
    if change is None or not math.isfinite(change):
        return "–"
    value = 100 * change
    if abs(value) < 0.05:
        return "±0.0 pp"
    sign = "+" if value > 0 else MINUS
    return f"{sign}{abs(value):.1f} pp"


def number(x: float | None) -> str:
    """A value to three significant figures with thousands separators: ``16,200``, ``5.71``."""
    if x is None:
        return "–"
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    magnitude = math.floor(math.log10(abs(x)))
    decimals = max(0, 2 - magnitude)
    rounded = round(x, 2 - magnitude)
    text = f"{abs(rounded):,.{decimals}f}"
    return (MINUS if rounded < 0 else "") + text


def signed(x: float | None, decimals: int = 2) -> str:
    """A signed number such as a change in log-odds: ``+0.42``, ``−1.10``."""
    if x is None or not math.isfinite(x):
        return "–"
    sign = "+" if x > 0 else (MINUS if x < 0 else "±")
    return f"{sign}{abs(x):.{decimals}f}"
