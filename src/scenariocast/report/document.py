"""A probability report: the content of a forecast a forecaster sends, in three files.

:class:`ProbabilityReport` holds what :func:`scenariocast.api.report` computed (the forecast,
its explanation, the timeline and the previous report of the tree) and turns it into
``report.html`` (one self-contained page), ``report.md`` (the same, with its figures as files)
and ``forecast.json`` (the numbers, as ``forecast --json`` prints them). Nothing here infers:
the numbers come in with the report.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from scenariocast.analysis.explain import Explanation
from scenariocast.analysis.sensitivity import SensitivityResult
from scenariocast.analysis.timeline import Timeline
from scenariocast.analysis.watch import WatchResult
from scenariocast.engines.result import ForecastResult
from scenariocast.evidence.readings import Reading
from scenariocast.ledger.records import Snapshot
from scenariocast.report.content import ReportContent, build_content
from scenariocast.report.figures import FigureFile
from scenariocast.spec.tree import Tree

FIGURES = "figures"


def forecast_json(result: ForecastResult) -> str:
    """The forecast as ``scenariocast forecast --json`` prints it."""
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"


@dataclass(frozen=True)
class ReportFiles:
    """Where a report's files were written."""

    folder: Path
    html: Path
    markdown: Path
    json: Path
    figures: tuple[Path, ...]


@dataclass(frozen=True)
class ProbabilityReport:
    """A forecast with everything that explains it, ready to be written as a report."""

    tree: Tree
    result: ForecastResult
    explanation: Explanation
    timeline: Timeline
    content: ReportContent

    @cached_property
    def figures(self) -> dict[str, FigureFile]:
        """The report's figures by name (drawn once, on first use)."""
        from scenariocast.report import figures as draw

        c = self.content
        out: dict[str, FigureFile] = {}
        if c.trajectory is not None:
            out["trajectory"] = draw.trajectory_figure(c.trajectory)
        if self.result.steps:
            out["paths"] = draw.path_figure(self.result.steps, self.result.now_step)
        out["tree"] = draw.tree_figure(c.nodes, self.result.now_step)
        for view in c.indicators:
            fig = draw.indicator_figure(view)
            if fig is not None:
                out[f"indicator-{view.id}"] = fig
        for hinge in c.hinges:
            if hinge.bars:
                out[f"tornado-{hinge.outcome}"] = draw.tornado_figure(hinge)
        return out

    def html(self) -> str:
        """The self-contained HTML page."""
        from scenariocast.report.render import render_html

        return render_html(self.content, self.figures)

    def markdown(self, folder: str = FIGURES) -> str:
        """The Markdown report; its figures are expected in ``folder`` beside it."""
        from scenariocast.report.render import render_markdown

        return render_markdown(self.content, self.figures, folder)

    def forecast_json(self) -> str:
        """The numbers behind the report, as ``forecast --json`` prints them."""
        return forecast_json(self.result)

    def files(self) -> dict[str, bytes]:
        """Every file of the report by its path relative to the report's folder."""
        out = {f"{FIGURES}/{f.filename}": f.svg for f in self.figures.values()}
        out["report.md"] = self.markdown().encode("utf-8")
        out["forecast.json"] = self.forecast_json().encode("utf-8")
        out["report.html"] = self.html().encode("utf-8")
        return out

    def write(self, out: str | os.PathLike[str]) -> ReportFiles:
        """Write the report into the folder ``out``: every file, or none.

        Raises
        ------
        ReportError
            If the folder cannot be created or written.
        """
        from scenariocast.report.output import write_files

        written = write_files(out, self.files())
        folder = written["report.html"].parent
        return ReportFiles(
            folder=folder,
            html=written["report.html"],
            markdown=written["report.md"],
            json=written["forecast.json"],
            figures=tuple(p for rel, p in written.items() if rel.startswith(FIGURES + "/")),
        )


def build_report(
    tree: Tree,
    result: ForecastResult,
    explanation: Explanation,
    timeline: Timeline,
    *,
    readings: Sequence[Reading],
    previous: Snapshot | None,
    created_at: dt.datetime | None = None,
    watch: WatchResult | None = None,
    sensitivity: SensitivityResult | None = None,
) -> ProbabilityReport:
    """A report from a forecast, its explanation, the timeline and the previous report.

    With ``watch`` and ``sensitivity``, the report says what to watch next and what the
    forecast hinges on.
    """
    from scenariocast import __version__

    created = created_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    content = build_content(
        tree,
        result,
        explanation,
        timeline,
        readings=readings,
        previous=previous,
        created_at=created,
        version=__version__,
        watch=watch,
        sensitivity=sensitivity,
    )
    return ProbabilityReport(tree, result, explanation, timeline, content)


def sensitivity_files(result: SensitivityResult, *, top: int = 15) -> dict[str, bytes]:
    """The files of ``scenariocast sensitivity --out``.

    A tornado chart (PNG) per outcome and ``sensitivity.json`` (as ``--json`` prints it).
    """
    from scenariocast.report.content import hinges
    from scenariocast.report.figures import tornado_png

    out = {f"tornado-{h.outcome}.png": tornado_png(h) for h in hinges(result, top=top)}
    text = json.dumps(result.to_dict(top=top), indent=2, ensure_ascii=False, default=str)
    out["sensitivity.json"] = (text + "\n").encode("utf-8")
    return out
