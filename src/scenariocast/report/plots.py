"""Plots of results (matplotlib, imported only when a plot is drawn). No inference here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scenariocast.analysis.timeline import Timeline

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def plot_timeline(timeline: Timeline, *, ax: Axes | None = None) -> Axes:
    """Probability of each outcome as the readings arrived, by observed date.

    Each step is the forecast as it would have stood that day; the dashed line on the left is
    the prior, before any reading.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4.5))
    dates: Any = list(timeline.dates[1:])  # datetime.date values; matplotlib converts them
    for k, (oid, probs) in enumerate(timeline.outcomes.items()):
        color = f"C{k}"
        if dates:
            ax.step(dates, probs[1:], where="post", label=oid, color=color)
        ax.axhline(probs[0], color=color, linestyle=":", linewidth=1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_xlabel("observed (dotted: prior)")
    ax.set_title(f"{timeline.tree_id}: outcomes as the readings arrived")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    return ax
