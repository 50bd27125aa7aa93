"""The forecast as it would have stood on each day a reading was observed.

For each date, the tree is updated on the readings observed up to that date, with the combine
rules applied as of that date (so a price reading counts until a later one supersedes it).

The dates' forecasts are independent calibrations of one junction tree (the dates whose readings
span the same steps share one), so they run together, along a last, batch axis, as
:func:`scenariocast.analysis.explain.explain` runs its steps; a date whose evidence holds
findings on nodes, or a query with assumptions, is forecast on its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from scenariocast.engines.exact import ExactModel, conflict_error
from scenariocast.engines.exact.junction import Factor, FloatArray
from scenariocast.engines.exact.model import Query, merge_factors
from scenariocast.evidence.readings import Reading
from scenariocast.evidence.select import select_evidence
from scenariocast.spec.tree import Tree

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Timeline:
    """Outcome probabilities by date; the first row is the prior (no reading yet)."""

    tree_id: str
    dates: tuple[dt.date | None, ...]
    outcomes: Mapping[str, tuple[float, ...]]
    n_observations: tuple[int, ...]

    def to_frame(self) -> pd.DataFrame:
        """One row per date (the first, the prior, with date NaT), one column per outcome."""
        import pandas as pd

        frame = pd.DataFrame(dict(self.outcomes), index=pd.Index(self.dates, name="as_of"))
        frame["n_observations"] = self.n_observations
        return frame


def outcome_timeline(
    tree: Tree,
    readings: Sequence[Reading],
    *,
    given: Mapping[str, str] | None = None,
    dates: Sequence[dt.date] | None = None,
    model: ExactModel | None = None,
) -> Timeline:
    """Forecast ``tree`` as of each date (default: every day a reading of it was observed)."""
    model = model or ExactModel(tree)
    if dates is None:
        readable = tree.readable  # its indicators, and its nodes as node:NAME
        dates = sorted(
            {
                r.observed.end
                for r in readings
                if (f"node:{r.indicator}" if r.of_node else r.indicator) in readable
                and not r.retracted
            }
        )
    prior = model.forecast([], given=given, top=0)
    probabilities: list[dict[str, float]] = [{o: f.prior for o, f in prior.outcomes.items()}]
    counts = [prior.n_observations]
    if given:
        for d in dates:
            r = model.forecast(readings, given=given, as_of=d, top=0)
            probabilities.append({o: f.probability for o, f in r.outcomes.items()})
            counts.append(r.n_observations)
    else:
        queries = [model.query(select_evidence(tree, readings, d)) for d in dates]
        probabilities += _batched(model, readings, list(dates), queries)
        counts += [len(q.evidence.observations) for q in queries]
    return Timeline(
        tree_id=tree.id,
        dates=(None, *dates),
        outcomes={oid: tuple(p[oid] for p in probabilities) for oid in tree.outcomes},
        n_observations=tuple(counts),
    )


#: At most this many numbers in one batch of calibrations (about 32 MB of beliefs).
_BATCH_CELLS = 4_000_000


def _batched(
    model: ExactModel, readings: Sequence[Reading], dates: list[dt.date], queries: list[Query]
) -> list[dict[str, float]]:
    """Each date's outcome probabilities, the dates of one structure calibrated at once."""
    out: list[dict[str, float] | None] = [None] * len(dates)
    groups: dict[int, list[int]] = {}
    for i, q in enumerate(queries):
        if q.evidence.findings or not q.report_factors:
            r = model.forecast(readings, as_of=dates[i], top=0)
            out[i] = {o: f.probability for o, f in r.outcomes.items()}
        else:
            groups.setdefault(id(q.structure), []).append(i)
    for members in groups.values():
        jt = queries[members[0]].structure.jt  # the one upward pass's beliefs bound a batch
        merged = {i: dict(merge_factors(queries[i].report_factors)) for i in members}
        shapes = {scope: t.shape for i in members for scope, t in merged[i].items()}
        cells = sum(int(np.prod(s)) for s in jt.shapes) + sum(
            int(np.prod(s)) for s in shapes.values()
        )
        size = max(1, _BATCH_CELLS // max(cells, 1))
        for first in range(0, len(members), size):
            chunk = members[first : first + size]
            query = queries[chunk[0]]
            factors: list[Factor] = list(query.base)
            for scope, shape in shapes.items():
                stacked: FloatArray = np.zeros((*shape, len(chunk)))
                for b, i in enumerate(chunk):
                    table = merged[i].get(scope)
                    if table is not None:
                        stacked[..., b] = table
                factors.append((scope, stacked))
            every, log_z = model.outcome_totals(query, factors, len(chunk))
            finite = np.isfinite(log_z)
            if not finite.all():
                raise conflict_error(model.tree, queries[chunk[int(np.argmin(finite))]])
            for b, i in enumerate(chunk):
                out[i] = {o: float(p[b]) for o, p in every.items()}
    return [p for p in out if p is not None]
