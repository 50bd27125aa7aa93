"""The figures of a probability report, drawn with matplotlib as SVG. No inference here.

Each function takes a section of :class:`~scenariocast.report.content.ReportContent` (or the
forecast's steps) and returns a :class:`FigureFile`: the SVG and the alternative text that goes
with it. Figures are drawn on ``matplotlib.figure.Figure`` objects, never through ``pyplot``, so
nothing global changes and no window opens; matplotlib is imported only when a report is drawn.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
import warnings
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from scenariocast.engines.result import StepForecast
from scenariocast.report.content import Hinge, IndicatorView, NodeView, Trajectory
from scenariocast.report.formatting import number, pct

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The width of every figure, in inches: the page's column at about 96 pixels an inch.
WIDTH = 10.4
#: Okabe and Ito's palette, distinguishable with the common kinds of colour blindness.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
INK = "#1f2933"
MUTED = "#6b7785"
GRID = "#e3e7ec"
DYNAMIC = "#7a4fa0"
_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.edgecolor": "#9aa5b1",
    "axes.labelcolor": INK,
    "axes.titlesize": 9.5,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "scenariocast-report",  # the same figure gives the same file
    "svg.fonttype": "path",  # text as outlines: the page needs no font
}


@dataclass(frozen=True)
class FigureFile:
    """A drawn figure: its file name, SVG bytes and the text that describes it."""

    name: str
    svg: bytes
    alt: str

    @property
    def filename(self) -> str:
        """The figure's file name beside the Markdown report."""
        return f"{self.name}.svg"

    @property
    def data_uri(self) -> str:
        """The figure as a ``data:`` address, for the self-contained HTML page."""
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg).decode("ascii")


def _style() -> AbstractContextManager[Any]:
    import matplotlib

    style: Any = _STYLE
    return matplotlib.rc_context(style)


def _svg(fig: Figure, name: str, alt: str) -> FigureFile:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # for some date ranges matplotlib's date locator falls back to a default interval of
        # ticks and says so; the ticks it then draws are fine
        warnings.filterwarnings("ignore", "AutoDateLocator was unable", UserWarning)
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return FigureFile(name, buf.getvalue(), alt)


def _grid(
    height: float,
    *,
    left: float,
    right: float,
    top: float,
    bottom: float,
    hspace: float = 0.0,
    wspace: float = 0.0,
    rows: int = 1,
    cols: int = 1,
) -> dict[str, float]:
    """Subplot margins and gaps given in inches, as matplotlib's fractions.

    Fixed margins instead of a layout engine: a constrained layout doubles the time a figure
    takes to draw, and the report's figures have predictable labels.
    """
    cell_w = (WIDTH - left - right - wspace * (cols - 1)) / cols
    cell_h = (height - top - bottom - hspace * (rows - 1)) / rows
    return {
        "left": left / WIDTH,
        "right": 1 - right / WIDTH,
        "top": 1 - top / height,
        "bottom": bottom / height,
        "hspace": hspace / cell_h,
        "wspace": wspace / cell_w,
    }


def _percent_axis(ax: Axes) -> None:
    from matplotlib.ticker import FixedLocator, PercentFormatter

    ax.set_ylim(0, 1)
    ax.yaxis.set_major_locator(FixedLocator([0, 0.25, 0.5, 0.75, 1.0]))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.grid(axis="y", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)


def _wrap(text: str, width: int, lines: int = 2) -> str:
    parts = textwrap.wrap(text, width) or [""]
    if len(parts) > lines:
        parts = parts[:lines]
        parts[-1] = parts[-1][: width - 1].rstrip() + "…"
    return "\n".join(parts)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def pct_text(p: float) -> str:
    """A probability as a whole percentage, for a figure's labels."""
    return pct(p, 0)


def _rows_for(positions: Sequence[float], gap: float, rows: int) -> list[int]:
    """A row for each of ``positions`` (sorted) so that no two in a row are closer than ``gap``."""
    last: list[float] = []
    out = []
    for x in positions:
        for k, seen in enumerate(last):
            if x - seen >= gap:
                last[k] = x
                out.append(k)
                break
        else:
            if len(last) < rows:
                last.append(x)
                out.append(len(last) - 1)
            else:
                k = min(range(len(last)), key=lambda i: last[i])
                last[k] = x
                out.append(k)
    return out


def trajectory_figure(t: Trajectory) -> FigureFile:
    """Each outcome's probability by observed date, one panel per outcome, movers marked.

    The lettered circles sit in rows at the top of the panel (so that reports observed days
    apart do not hide each other), each joined to its point on the curve by a thin line.
    """
    import matplotlib.dates
    from matplotlib.figure import Figure

    mdates: Any = matplotlib.dates  # partly untyped
    outcomes = list(t.series)
    cols = 1 if len(outcomes) == 1 else 2
    rows = math.ceil(len(outcomes) / cols)
    first, last = mdates.date2num(t.dates[0]), mdates.date2num(t.as_of)
    span = max(last - first, 1.0)
    lo, hi = first - 0.03 * span, last + 0.03 * span
    with _style():
        height = 2.9 * rows + 0.15
        fig = Figure(figsize=(WIDTH, height))
        grid = _grid(
            height,
            left=0.5,
            right=0.2,
            top=0.75,
            bottom=0.35,
            hspace=0.95,
            wspace=0.45,
            rows=rows,
            cols=cols,
        )
        axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True, gridspec_kw=grid)
        xs: list[Any] = [*t.dates, t.as_of]
        for k, oid in enumerate(outcomes):
            ax = axes[k // cols][k % cols]
            color = PALETTE[k % len(PALETTE)]
            ys = [*t.series[oid], t.series[oid][-1]]
            _percent_axis(ax)
            ax.set_xlim(lo, hi)
            ax.axhline(t.priors[oid], color=MUTED, linestyle=(0, (2, 2)), linewidth=1)
            ax.step(xs, ys, where="post", color=color, linewidth=1.8)
            ax.plot([xs[-1]], [ys[-1]], "o", color=color, markersize=4.5)
            marks = list(t.marks.get(oid, ()))
            where = [(mdates.date2num(m.day) - lo) / (hi - lo) for m in marks]
            for m, x, row in zip(marks, where, _rows_for(where, 0.055, 3), strict=True):
                y_circle = 0.9 - 0.16 * row
                ax.plot([m.day], [m.probability], "o", color=INK, markersize=3, zorder=5)
                ax.annotate(
                    m.mark,
                    xy=(m.day, m.probability),
                    xytext=(x, y_circle),
                    textcoords="axes fraction",
                    ha="center",
                    va="center",
                    fontsize=7.5,
                    fontweight="bold",
                    color=INK,
                    zorder=6,
                    bbox={"boxstyle": "circle,pad=0.25", "fc": "white", "ec": INK, "lw": 0.9},
                    arrowprops={"arrowstyle": "-", "color": MUTED, "lw": 0.7, "shrinkB": 1.5},
                )
            ax.set_title(_wrap(t.titles.get(oid, oid), 58), fontsize=9, loc="left", pad=16)
            ax.text(
                0.0,
                1.02,
                f"now {pct_text(ys[-1])}   prior {pct_text(t.priors[oid])} (dashed)",
                transform=ax.transAxes,
                fontsize=8,
                color=color,
                va="bottom",
            )
            locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        for k in range(len(outcomes), rows * cols):
            axes[k // cols][k % cols].set_visible(False)
        alt = "; ".join(
            f"{oid}: prior {pct_text(t.priors[oid])}, now {pct_text(t.series[oid][-1])}"
            for oid in outcomes
        )
        return _svg(fig, "trajectory", f"Probability of each outcome by observed date. {alt}.")


def path_figure(steps: Mapping[str, Sequence[StepForecast]], now: str | None) -> FigureFile:
    """Each dynamic node's states step by step: estimated up to the as-of step, then predicted."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator

    names = list(steps)
    with _style():
        height = 2.45 * len(names) + 0.2
        fig = Figure(figsize=(WIDTH, height))
        grid = _grid(
            height, left=0.5, right=1.35, top=0.35, bottom=0.4, hspace=0.75, rows=len(names)
        )
        axes = fig.subplots(len(names), 1, squeeze=False, gridspec_kw=grid)
        alt_parts = []
        for k, name in enumerate(names):
            ax = axes[k][0]
            path = list(steps[name])
            xs = list(range(len(path)))
            states = list(path[0].probabilities)
            _percent_axis(ax)
            last_est = max((i for i, x in enumerate(path) if x.estimated), default=-1)
            if last_est < len(path) - 1:
                ax.axvspan(last_est + 0.5, len(path) - 0.5, color="#f1f3f5", zorder=0)
                ax.text(
                    len(path) - 0.55,
                    0.97,
                    "predicted",
                    ha="right",
                    va="top",
                    color=MUTED,
                    fontsize=8,
                    style="italic",
                )
            if last_est >= 0:
                ax.text(
                    -0.45,
                    0.97,
                    "estimated from readings",
                    ha="left",
                    va="top",
                    color=MUTED,
                    fontsize=8,
                    style="italic",
                )
            for j, state in enumerate(states):
                color = PALETTE[j % len(PALETTE)]
                ys = [x.probabilities[state] for x in path]
                ax.plot(
                    xs,
                    [x.prior[state] for x in path],
                    color=color,
                    linewidth=0.9,
                    linestyle=(0, (1.5, 2)),
                    alpha=0.8,
                )
                bands = [x.intervals.get(state) for x in path]
                if all(b is not None for b in bands):
                    lows = [b[0] for b in bands if b is not None]
                    highs = [b[1] for b in bands if b is not None]
                    ax.fill_between(xs, lows, highs, color=color, alpha=0.18, linewidth=0)
                ax.plot(xs, ys, color=color, linewidth=1.8, marker="o", markersize=3, label=state)
            ax.set_xlim(-0.5, len(path) - 0.5)
            ax.xaxis.set_major_locator(FixedLocator(xs))
            every = max(1, math.ceil(len(path) / 14))
            ax.set_xticklabels(
                [x.label if i % every == 0 else "" for i, x in enumerate(path)], fontsize=8
            )
            ax.set_title(name + (f"  (as of step {now})" if now else ""))
            ax.legend(
                loc="upper left",
                bbox_to_anchor=(1.0, 1.0),
                frameon=False,
                title="state",
                title_fontsize=8,
                fontsize=8,
            )
            end = path[-1]
            alt_parts.append(
                f"{name} at {end.label}: "
                + ", ".join(f"{s} {pct_text(end.probabilities[s])}" for s in states)
            )
        return _svg(
            fig,
            "paths",
            "Probability of each state of the nodes that change over time, step by step "
            "(dotted: the prior). " + "; ".join(alt_parts) + ".",
        )


# -- the tree as a diagram ---------------------------------------------------------------------

_BOX_W = 2.55
_COL_GAP = 0.85
_ROW_GAP = 0.35
_BAND_GAP = 0.8
_PAD_TOP = 0.5  # room for the arcs of the first row
_HEAD = 0.48
_ROW = 0.25
_MAX_COLS = 3


def _layers(nodes: Sequence[NodeView]) -> list[list[str]]:
    depth: dict[str, int] = {}
    for n in nodes:  # nodes come parents first
        depth[n.id] = 1 + max((depth[p] for p in n.parents), default=-1)
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node in nodes:
        layers[depth[node.id]].append(node.id)
    # order each layer by the mean position of its parents (fewer crossings)
    parents = {node.id: node.parents for node in nodes}
    pos: dict[str, float] = {}

    def mean_parent(name: str) -> float:
        ps = parents[name]
        return sum(pos[p] for p in ps) / len(ps) if ps else 0.0

    for layer in layers:
        layer.sort(key=mean_parent)
        for i, name in enumerate(layer):
            pos[name] = float(i)
    return layers


def tree_figure(nodes: Sequence[NodeView], now: str | None) -> FigureFile:
    """The tree as boxes and arrows: each node's states with their current probabilities."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    by_id = {n.id: n for n in nodes}
    layers = _layers(nodes)
    cols = min(len(layers), _MAX_COLS)
    bands = [layers[i : i + cols] for i in range(0, len(layers), cols)]

    def height(n: NodeView) -> float:
        return _HEAD + _ROW * len(n.states) + 0.12

    band_h = [
        max(sum(height(by_id[i]) for i in layer) + _ROW_GAP * (len(layer) - 1) for layer in band)
        for band in bands
    ]
    width = cols * _BOX_W + (cols - 1) * _COL_GAP
    total_h = sum(band_h) + _BAND_GAP * (len(bands) - 1) + _PAD_TOP
    place: dict[str, tuple[float, float, float, int, int]] = {}  # x, y top, h, band, column
    top = total_h - _PAD_TOP
    for b, band in enumerate(bands):
        for c, layer in enumerate(band):
            used = sum(height(by_id[i]) for i in layer) + _ROW_GAP * (len(layer) - 1)
            y = top - (band_h[b] - used) / 2
            for name in layer:
                h = height(by_id[name])
                place[name] = (c * (_BOX_W + _COL_GAP), y, h, b, c)
                y -= h + _ROW_GAP
        top -= band_h[b] + _BAND_GAP

    with _style():
        fig = Figure(figsize=(width + 0.1, total_h + 0.1))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(-0.05, width + 0.05)
        ax.set_ylim(-0.05, total_h + 0.05)
        ax.axis("off")
        boxes = {}
        for n in nodes:
            x, y, h, _, _ = place[n.id]
            edge = DYNAMIC if n.kind != "static" else "#9aa5b1"
            box = FancyBboxPatch(
                (x, y - h),
                _BOX_W,
                h,
                boxstyle="round,pad=0,rounding_size=0.08",
                facecolor="#fbfcfd" if not n.settles else "#f3f8fc",
                edgecolor=edge,
                linewidth=1.6 if n.settles else 1.0,
                linestyle="-" if n.kind == "static" else (0, (4, 2)),
                zorder=2,
            )
            ax.add_patch(box)
            boxes[n.id] = box
            ax.text(
                x + 0.1,
                y - 0.2,
                _short(n.id, 24),
                fontsize=9,
                fontweight="bold",
                color=INK,
                va="center",
                zorder=3,
            )
            tag = {"dynamic": "changes over time", "calendar": "calendar"}.get(n.kind, "")
            if n.settles:
                tag = (tag + " · " if tag else "") + "outcome"
            if tag:
                ax.text(
                    x + 0.1,
                    y - 0.39,
                    tag,
                    fontsize=7,
                    color=DYNAMIC if n.kind != "static" else "#0072B2",
                    va="center",
                    zorder=3,
                )
            for i, state in enumerate(n.states):
                ry = y - _HEAD - _ROW * i - _ROW / 2
                ax.text(
                    x + 0.1, ry, _short(state, 14), fontsize=8, color=INK, va="center", zorder=3
                )
                if n.kind == "calendar":
                    ax.text(
                        x + 1.15,
                        ry,
                        _short(n.months.get(state, ""), 22),
                        fontsize=8,
                        color=MUTED,
                        va="center",
                        zorder=3,
                    )
                    continue
                p = n.probabilities.get(state, 0.0)
                bx, bw = x + 1.15, _BOX_W - 1.15 - 0.55
                ax.add_patch(
                    FancyBboxPatch(
                        (bx, ry - 0.07),
                        bw,
                        0.14,
                        boxstyle="square,pad=0",
                        facecolor=GRID,
                        linewidth=0,
                        zorder=3,
                    )
                )
                ax.add_patch(
                    FancyBboxPatch(
                        (bx, ry - 0.07),
                        bw * p,
                        0.14,
                        boxstyle="square,pad=0",
                        facecolor="#0072B2",
                        linewidth=0,
                        zorder=4,
                    )
                )
                ax.text(
                    x + _BOX_W - 0.08,
                    ry,
                    pct_text(p),
                    fontsize=8,
                    color=INK,
                    ha="right",
                    va="center",
                    zorder=3,
                )
        for n in nodes:
            _, _, _, bc, cc = place[n.id]
            for parent in n.parents:
                _, _, _, bp, cp = place[parent]
                skip = bp == bc and cc - cp > 1
                arrow = FancyArrowPatch(
                    (place[parent][0] + _BOX_W / 2, place[parent][1] - place[parent][2] / 2),
                    (place[n.id][0] + _BOX_W / 2, place[n.id][1] - place[n.id][2] / 2),
                    patchA=boxes[parent],
                    patchB=boxes[n.id],
                    arrowstyle="-|>",
                    mutation_scale=11,
                    color="#7b8794",
                    linewidth=1.0,
                    connectionstyle=f"arc3,rad={-0.28 if skip else 0.0}",
                    shrinkA=2,
                    shrinkB=2,
                    zorder=1,
                )
                ax.add_patch(arrow)
        alt = "; ".join(
            f"{n.id}"
            + (f" (from {', '.join(n.parents)})" if n.parents else "")
            + (
                ": " + ", ".join(f"{s} {pct_text(n.probabilities[s])}" for s in n.states)
                if n.probabilities
                else ""
            )
            for n in nodes
        )
        when = f" at step {now}" if now else ""
        return _svg(fig, "tree", f"The scenario tree, each node's probabilities{when}: {alt}.")


def indicator_figure(view: IndicatorView) -> FigureFile | None:
    """The 90% range each state predicts for a reading, with the latest readings on top."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    if view.kind in ("binary", "categorical") or not view.points:
        return None
    rows = list(view.rows)
    n = len(rows)
    log = view.kind == "lognormal" or view.read_as.startswith(("on the log", "as the log"))
    values = [v for r in rows for v in (r.prediction.low, r.prediction.high) if v is not None]
    values += list(view.points)
    if log and min(values) <= 0:
        log = False
    with _style():
        height = 0.75 + 0.3 * (n + 1)
        fig = Figure(figsize=(WIDTH, height))
        fig.subplots_adjust(**_grid(height, left=3.0, right=0.25, top=0.1, bottom=0.55))
        ax = fig.add_subplot()
        for i, row in enumerate(rows):
            y = n - i
            pred = row.prediction
            if pred.low is None or pred.high is None or pred.median is None:
                continue
            weight = row.now if row.now is not None else 0.5
            ax.plot(
                [pred.low, pred.high],
                [y, y],
                color="#0072B2",
                linewidth=6,
                alpha=0.25 + 0.6 * weight,
                solid_capstyle="butt",
            )
            ax.plot([pred.median], [y], "|", color=INK, markersize=10, markeredgewidth=1.5)
        for v in view.points:
            ax.axvline(v, color="#D55E00", linewidth=0.8, alpha=0.5, zorder=0)
        ax.plot(
            list(view.points),
            [n + 1] * len(view.points),
            "D",
            color="#D55E00",
            markersize=5,
            alpha=0.8,
            linestyle="none",
        )
        labels = [
            _short(r.states, 40) + (f"  (now {pct_text(r.now)})" if r.now is not None else "")
            for r in rows
        ]
        ax.set_yticks([n + 1, *range(n, 0, -1)])
        ax.set_yticklabels(["latest readings", *labels], fontsize=8)
        ax.get_yticklabels()[0].set_color("#D55E00")
        ax.set_ylim(0.4, n + 1.6)
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            ax.xaxis.set_major_locator(MaxNLocator(8))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: number(x)))
        ax.grid(axis="x", color=GRID, linewidth=0.8)
        ax.set_axisbelow(True)
        ax.set_xlabel(view.unit or "value as entered", color=MUTED)
        alt = (
            f"{view.id}: the central 90% range of a reading under each state, and the latest "
            f"readings ({', '.join(number(v) for v in view.points)}"
            f"{' ' + view.unit if view.unit else ''})."
        )
        return _svg(fig, f"indicator-{view.id}", alt)


#: The tornado's colours: the outcome when the number is at the low end, at the high end.
LOW_END, HIGH_END = "#0072B2", "#D55E00"


def _tornado(fig: Figure, hinge: Hinge) -> str:
    """Draw ``hinge``'s tornado on ``fig``; return the alternative text."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, PercentFormatter

    bars = hinge.bars
    n = len(bars)
    ax = fig.add_subplot()
    now = hinge.probability
    for i, bar in enumerate(bars):
        y = n - i
        hatch = None if bar.exact else "///"
        for end, color in ((bar.at_low, LOW_END), (bar.at_high, HIGH_END)):
            left, width = min(now, end), abs(end - now)
            ax.barh(y, width, left=left, height=0.62, color=color, alpha=0.85, hatch=hatch,
                    edgecolor="white", linewidth=0)  # fmt: skip
    ax.axvline(now, color=INK, linewidth=1.2)
    labels = [
        _wrap(f"{b.label}  (now {number(b.value)}; {number(b.low)} to {number(b.high)})", 66, 3)
        for b in bars
    ]
    ax.set_yticks(list(range(n, 0, -1)))
    ax.set_yticklabels(labels, fontsize=7.5)
    ax.set_ylim(0.4, n + 0.6)
    lo = min([now, *(min(b.at_low, b.at_high) for b in bars)])
    hi = max([now, *(max(b.at_low, b.at_high) for b in bars)])
    pad = max(0.02, 0.08 * (hi - lo))
    ax.set_xlim(max(0.0, lo - pad), min(1.0, hi + pad))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ticks = [t for t in np.linspace(0, 1, 21) if max(0.0, lo - pad) <= t <= min(1.0, hi + pad)]
    if len(ticks) >= 2:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.grid(axis="x", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    ax.set_xlabel(f"probability of {hinge.outcome} (line: {pct(now)} now)", color=MUTED)
    ax.set_title(f"{hinge.outcome}: the {n} numbers that move it most")
    handles = [
        Patch(color=LOW_END, label="number at the low end"),
        Patch(color=HIGH_END, label="number at the high end"),
    ]
    if any(not b.exact for b in bars):
        handles.append(Patch(facecolor="white", edgecolor=MUTED, hatch="///",
                             label="first-order estimate"))  # fmt: skip
    fig.legend(
        handles=handles,
        loc="lower right",
        bbox_to_anchor=(1.0 - 0.3 / WIDTH, 0.0),
        ncol=len(handles),
        fontsize=7,
        frameon=False,
    )
    return (
        f"Tornado chart of {hinge.outcome} ({pct(now)} now): "
        + "; ".join(
            f"{b.label} from {number(b.low)} to {number(b.high)} moves it from "
            f"{pct(b.at_low)} to {pct(b.at_high)}"
            for b in bars[:5]
        )
        + ("." if bars else "no number moves it.")
    )


def tornado_figure(hinge: Hinge) -> FigureFile:
    """The tornado chart of one outcome, as SVG (for the report)."""
    from matplotlib.figure import Figure

    with _style():
        height = 1.15 + 0.46 * max(1, len(hinge.bars))
        fig = Figure(figsize=(WIDTH, height))
        fig.subplots_adjust(**_grid(height, left=4.6, right=0.3, top=0.35, bottom=0.8))
        alt = _tornado(fig, hinge)
        return _svg(fig, f"tornado-{hinge.outcome}", alt)


def tornado_png(hinge: Hinge, *, dpi: int = 150) -> bytes:
    """The tornado chart of one outcome, as a PNG."""
    from matplotlib.figure import Figure

    with _style():
        height = 1.15 + 0.46 * max(1, len(hinge.bars))
        fig = Figure(figsize=(WIDTH, height))
        fig.subplots_adjust(**_grid(height, left=4.6, right=0.3, top=0.35, bottom=0.8))
        _tornado(fig, hinge)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
        return buf.getvalue()
