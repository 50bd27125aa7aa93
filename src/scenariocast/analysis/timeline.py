"""The forecast as it would have stood on each day a reading was observed.

For each date, the tree is updated on the readings observed up to that date, with the combine
rules applied as of that date (so a price reading counts until a later one supersedes it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scenariocast.engines.exact import ExactModel
from scenariocast.evidence.readings import Reading
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
        dates = sorted(
            {r.observed.end for r in readings if r.indicator in tree.indicators and not r.retracted}
        )
    prior = model.forecast([], given=given, top=0)
    rows = [prior]
    rows += [model.forecast(readings, given=given, as_of=d, top=0) for d in dates]
    return Timeline(
        tree_id=tree.id,
        dates=(None, *dates),
        outcomes={
            oid: (prior.outcomes[oid].prior, *(r.outcomes[oid].probability for r in rows[1:]))
            for oid in tree.outcomes
        },
        n_observations=tuple(r.n_observations for r in rows),
    )
