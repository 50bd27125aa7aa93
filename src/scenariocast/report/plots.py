"""Plots of results (matplotlib, imported only when a plot is drawn). No inference here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scenariocast.analysis.explain import Explanation

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def plot_outcome_paths(explanation: Explanation, *, ax: Axes | None = None) -> Axes:
    """Probability of each outcome as the readings arrive, by observed date.

    The first point of each line is the prior; each later point is the probability once the
    readings observed up to that date are counted (several readings on one date make one step).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4.5))
    contributions = explanation.contributions
    for oid, prior in explanation.prior.items():
        dates: list[Any] = []
        probs: list[float] = []
        for c in contributions:
            day = c.reading.observed.end
            if dates and dates[-1] == day:
                probs[-1] = c.probability_after[oid]
            else:
                dates.append(day)
                probs.append(c.probability_after[oid])
        if dates:
            ax.step([dates[0], *dates], [prior, *probs], where="post", label=oid, marker=".")
        else:
            ax.axhline(prior, label=oid)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_xlabel("observed")
    ax.set_title(f"{explanation.tree_id}: outcomes as the readings arrive")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return ax
