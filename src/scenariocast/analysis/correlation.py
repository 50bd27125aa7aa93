"""How closely the readings of one report agree: the within-report correlation, from the data.

An indicator's ``within_report_correlation`` says how much of a reading's error (its distance
from the mean its state predicts) is shared by the other readings of the same report: three
cities of one survey share the week, the network and the market, and differ only by what is
particular to each city. If ``s`` is the spread of the readings of one report around their own
mean (the city part, pooled over every report with two or more readings) and ``sigma`` the
indicator's scale in a state (the whole error), the shared part is ``sigma^2 - s^2`` and

    rho = 1 - s^2 / sigma^2.

The smallest scale among the indicator's params rows gives the smallest ``rho``: the estimate
never makes a report count for less than the data say. It is rounded down to two decimals and
kept below 1, as the format requires.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scenariocast.errors import QueryError
from scenariocast.evidence.likelihood import transform
from scenariocast.evidence.readings import Reading
from scenariocast.spec.model import CONTINUOUS_KINDS
from scenariocast.spec.tree import Tree

#: The largest correlation the estimate gives (the format requires rho < 1).
MAX_CORRELATION = 0.99


@dataclass(frozen=True)
class ReportSpread:
    """The spread of one indicator's readings within reports, and the correlation it implies.

    ``within_sd`` is the pooled standard deviation of the readings (as the indicator reads them,
    after ``read_as``) around the mean of their report, on ``df`` degrees of freedom from
    ``n_reports`` reports of two or more readings; ``scale`` the smallest ``sigma`` among the
    indicator's params rows; ``correlation`` the implied ``rho`` (None without such reports).
    """

    indicator: str
    n_reports: int
    n_readings: int
    df: int
    within_sd: float | None
    scale: float
    correlation: float | None


def report_spread(tree: Tree, readings: Sequence[Reading], indicator: str) -> ReportSpread:
    """The within-report spread of ``indicator``'s readings and the correlation it implies.

    A report is the readings of one source on one observed date, or with one report id (as the
    engine groups them); retracted readings and readings the indicator cannot read are left out.

    Raises
    ------
    QueryError
        If the tree has no such indicator, or it is not continuous.
    """
    ind = tree.indicators.get(indicator)
    if ind is None:
        raise QueryError(f"tree '{tree.id}' has no indicator '{indicator}'")
    if ind.spec.kind not in CONTINUOUS_KINDS:
        kind = ind.spec.kind
        raise QueryError(f"'{indicator}' is {kind}: only continuous readings share an error")
    groups: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for r in readings:
        if r.indicator != indicator or r.retracted:
            continue
        try:
            raw = float(r.value.replace(",", ""))
        except ValueError:
            continue
        x = transform(ind.spec.read_as, np.array([raw]))[0]
        if ind.spec.kind == "lognormal":
            x = math.log(raw) if raw > 0 else math.nan
        if math.isfinite(x):
            key = (r.source, "id", r.report) if r.report else (r.source, "date", r.observed.text)
            groups[key].append(float(x))
    sums = 0.0
    df = n_reports = n_readings = 0
    for values in groups.values():
        if len(values) < 2:
            continue
        arr = np.array(values)
        sums += float(((arr - arr.mean()) ** 2).sum())
        df += len(values) - 1
        n_reports += 1
        n_readings += len(values)
    scale = float(np.min(ind.params["sigma"]))
    if df == 0:
        return ReportSpread(indicator, 0, 0, 0, None, scale, None)
    sd = math.sqrt(sums / df)
    rho = math.floor(100.0 * (1.0 - (sd / scale) ** 2)) / 100.0
    return ReportSpread(
        indicator, n_reports, n_readings, df, sd, scale, min(max(rho, 0.0), MAX_CORRELATION)
    )
