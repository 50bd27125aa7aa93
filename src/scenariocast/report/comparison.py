"""The comparison page: trees side by side in one self-contained HTML page, and its JSON.

``compare --out DIR`` writes ``compare.html`` (styles and its figure inside it, no script,
nothing fetched: the probability report's template rules, its CSS and its escaping) and
``compare.json`` (the numbers, as ``compare --json`` prints them), all or none
(:func:`scenariocast.report.output.write_files`). Nothing here infers: the numbers come in with
the :class:`~scenariocast.analysis.compare.Comparison`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenariocast.analysis.compare import Comparison
from scenariocast.report.content import Link, Notice, link_text, web_url
from scenariocast.report.figures import FigureFile

HTML = "compare.html"
JSON = "compare.json"


@dataclass(frozen=True)
class ReadingLine:
    """A reading as the page shows it (user text kept as it is; the template escapes it)."""

    id: int
    indicator: str
    value: str
    observed: str
    source: str
    location: str | None
    note: str | None
    link: Link | None


def _line(r: Any) -> ReadingLine:
    url = web_url(r.source_url)
    return ReadingLine(
        id=r.id,
        indicator=r.indicator,
        value=r.value,
        observed=str(r.observed),
        source=r.source,
        location=r.location,
        note=r.note,
        link=Link(link_text(url), url) if url else None,
    )


def notices(c: Comparison) -> list[Notice]:
    """What a reader must know before the numbers."""
    out: list[Notice] = []
    if c.n_common == 0:
        out.append(
            Notice(
                "warning",
                "The trees count no reading in common: the evidence cannot tell them apart yet, "
                "so the weights are the prior weights.",
            )
        )
    redefined = [
        f"{d.name}: {d.detail}"
        for s in c.structure
        for d in s.differences
        if d.what == "outcome" and d.detail.startswith("defined differently")
    ]
    if redefined:
        out.append(
            Notice(
                "danger",
                "An outcome id the trees share is defined differently: they do not ask the same "
                "question under that name.",
                tuple(redefined),
            )
        )
    if c.common.left_out:
        out.append(
            Notice(
                "info",
                f"{len(c.common.left_out)} reading"
                f"{'s' if len(c.common.left_out) != 1 else ''} that only some trees count "
                "are left out of the Bayes factor (listed below).",
            )
        )
    return out


def evidence_figure(c: Comparison) -> FigureFile | None:
    """The log Bayes factor of each tree against the first, as the common reports came in."""
    if len(c.reports) == 0:
        return None
    from matplotlib.figure import Figure

    from scenariocast.report.figures import INK, MUTED, PALETTE, WIDTH, _style, _svg

    ref = c.trees[0]
    with _style():
        fig = Figure(figsize=(WIDTH, 3.6))
        ax = fig.subplots()
        xs: Any = [r.last_day for r in c.reports]
        for k, tid in enumerate(c.trees[1:]):
            total = 0.0
            ys = []
            for r in c.reports:
                total += r.scores[tid] - r.scores[ref]
                ys.append(total)
            ax.step(xs, ys, where="post", color=PALETTE[k % len(PALETTE)], label=tid)
        ax.axhline(0.0, color=MUTED, linewidth=0.8, linestyle=":")
        ax.set_ylabel(f"log Bayes factor against {ref}", color=INK)
        ax.set_title("Evidence for each tree against the first, report by report")
        ax.legend(loc="best", frameon=False)
        fig.subplots_adjust(left=0.08, right=0.98, top=0.88, bottom=0.12)
        alt = (
            f"The log Bayes factor of {', '.join(c.trees[1:])} against {ref} after each of the "
            f"{len(c.reports)} common reports, in observed order: above zero favours the other "
            f"tree, below zero favours {ref}."
        )
        return _svg(fig, "compare-evidence", alt)


def render_comparison_html(
    c: Comparison, *, created_at: dt.datetime | None = None, top: int = 12
) -> str:
    """The comparison page, from ``templates/compare.html.j2`` (autoescaped)."""
    from scenariocast import __version__
    from scenariocast.report.render import _environment

    fig = evidence_figure(c)
    deciding = c.deciding(top)
    template = _environment("html").get_template("compare.html.j2")
    return template.render(
        c=c,
        fig=fig,
        notices=notices(c),
        deciding=[(r, [_line(x) for x in r.readings]) for r in deciding],
        left_out=[(x, _line(x.reading)) for x in c.common.left_out],
        version=__version__,
        created_at=created_at or dt.datetime.now(dt.UTC).replace(tzinfo=None),
    )


def comparison_json(c: Comparison) -> str:
    """The numbers, as ``compare --json`` prints them."""
    return json.dumps(c.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"


def write_comparison(c: Comparison, out: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``compare.html`` and ``compare.json`` into the folder ``out``, both or neither.

    Raises
    ------
    ReportError
        If the folder cannot be created or written.
    """
    from scenariocast.report.output import write_files

    files = {
        JSON: comparison_json(c).encode("utf-8"),
        HTML: render_comparison_html(c).encode("utf-8"),
    }
    return write_files(out, files)
