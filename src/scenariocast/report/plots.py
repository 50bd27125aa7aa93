"""Plots of results (matplotlib, imported only when a plot is drawn). No inference here."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from scenariocast.analysis.score import Scores
from scenariocast.analysis.timeline import Timeline
from scenariocast.engines.result import ForecastResult

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


def plot_steps(result: ForecastResult, node: str, *, ax: Axes | None = None) -> Axes:
    """A dynamic node's distribution at each step of the horizon, stacked by state.

    Steps up to the as-of date are estimated from the readings, later ones predicted; a vertical
    line follows the as-of step when it falls within the horizon (and before its last step).
    """
    import matplotlib.pyplot as plt

    path = result.steps.get(node)
    if not path:
        raise ValueError(f"'{node}' is not a dynamic node of tree '{result.tree_id}'")
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4))
    labels = [x.label for x in path]
    states = list(path[0].probabilities)
    values = [[x.probabilities[s] for x in path] for s in states]
    ax.stackplot(range(len(path)), values, labels=states, alpha=0.85)
    now = [i for i, x in enumerate(path) if x.first_day <= result.as_of <= x.last_day]
    if now and now[0] < len(path) - 1:
        ax.axvline(now[0] + 0.5, color="black", linewidth=1, linestyle="--")
    ax.set_xticks(range(len(path)), labels, rotation=45, ha="right", fontsize="small")
    ax.set_xlim(0, len(path) - 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(f"{result.tree_id}: {node} by step, as of {result.as_of}")
    ax.legend(loc="upper left", fontsize="small")
    return ax


def plot_calibration(scores: Scores, *, ax: Axes | None = None) -> Axes:
    """The calibration plot: each forecaster's mean forecast in each bin, against how often.

    The diagonal is perfect calibration; a point's size grows with the forecasts in its bin.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="calibrated")
    for k, (name, bins) in enumerate(scores.calibration.items()):
        pts = [(b.mean_forecast, b.observed, b.n) for b in bins if b.n]
        if not pts:
            continue
        xs = [float(x or 0.0) for x, _, _ in pts]
        ys = [float(y or 0.0) for _, y, _ in pts]
        sizes = [20 + 30 * n for _, _, n in pts]
        ax.plot(xs, ys, color=f"C{k}", linewidth=1, alpha=0.7)
        ax.scatter(xs, ys, s=sizes, color=f"C{k}", label=name, zorder=3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("forecast probability (mean in its bin)")
    ax.set_ylabel("how often it happened")
    n = len({(r.outcome, r.resolution) for r in scores.rows})
    ax.set_title(f"calibration on {n} resolved question{'s' if n != 1 else ''}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    return ax


def write_calibration_plot(scores: Scores, path: str | os.PathLike[str]) -> None:
    """Draw :func:`plot_calibration` into ``path`` (SVG or PNG, by its suffix).

    Raises
    ------
    ReportError
        If the file cannot be written.
    """
    from matplotlib.figure import Figure

    from scenariocast.errors import ReportError

    fig = Figure(figsize=(6, 6))
    plot_calibration(scores, ax=fig.subplots())
    fig.tight_layout()
    try:
        fig.savefig(
            os.fspath(path), metadata={"Date": None} if str(path).endswith(".svg") else None
        )
    except OSError as exc:
        raise ReportError(f"cannot write the plot to {path}: {exc.strerror or exc}") from None
