"""What a probability report says, as plain data: no inference, no HTML, no figures.

:func:`build_content` reads a forecast, its explanation, the timeline replayed from the ledger
and the previous report of the tree, and returns a :class:`ReportContent`: every number and
sentence of the report, each section a value the HTML and Markdown templates lay out. Text from
users (notes, sources, rationales, descriptions) is kept as it is; the templates escape it.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scenariocast.analysis.explain import Contribution, Explanation
from scenariocast.analysis.indicators import StatePrediction, predictions
from scenariocast.analysis.timeline import Timeline

if TYPE_CHECKING:
    from scenariocast.analysis.sensitivity import SensitivityResult
    from scenariocast.analysis.watch import WatchResult
from scenariocast.engines.result import ForecastResult, Scenario
from scenariocast.evidence.readings import Reading
from scenariocast.evidence.values import parse_value
from scenariocast.ledger.records import Snapshot
from scenariocast.report import formatting
from scenariocast.spec.model import CONTINUOUS_KINDS
from scenariocast.spec.tree import Tree

#: How many reports "what moved the forecast" shows, and how many are marked on each curve.
TOP_MOVERS = 8
MARKS_PER_OUTCOME = 3
#: The row of an indicator's table that holds the posterior predictive (PyMC engine).
POSTERIOR_PREDICTIVE = "posterior predictive (states and parameters as now believed)"

#: Readings of one indicator shown against its predictions.
LATEST_READINGS = 8
#: Numbers in each tornado chart of the report (the command gives 15).
REPORT_TORNADO = 6

_EXCLUSION_WORDS = {
    "retracted": "retracted",
    "after_as_of": "dated after the as-of date",
    "unknown_indicator": "of an indicator the tree does not define",
    "unknown_source": "from a source the tree does not define",
    "unreadable": "with a value the indicator cannot read",
    "repeated": "the same reading entered again",
    "linked": "linked to another report of the same event",
    "too_old": "older than the indicator's max_age_days",
    "outside_window": "older than the indicator's window_days",
    "superseded": "superseded by a later reading of the same source and location",
}


def web_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http or https address, else None.

    Only such addresses become links in a report: ``javascript:``, ``data:``, relative and
    protocol-relative addresses, and anything with spaces or control characters stay text.
    """
    if not url:
        return None
    text = url.strip()
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return text


def link_text(url: str) -> str:
    """A short label for a link: the host without ``www.``."""
    host = urlsplit(url).hostname or url
    return host.removeprefix("www.")


def label(name: str) -> str:
    """A node, state or outcome id as words: ``food_shock`` -> ``food shock``."""
    return name.replace("_", " ").replace("-", " ")


@dataclass(frozen=True)
class Link:
    """Text with an address; ``url`` is set only for http and https addresses."""

    text: str
    url: str | None = None


@dataclass(frozen=True)
class Notice:
    """A warning or note shown before anything else: ``level`` is danger, warning or info."""

    level: str
    title: str
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class Headline:
    """One outcome's row in the headline table."""

    id: str
    question: str
    probability: float
    prior: float
    change: float | None  # since the previous report, in probability (not percentage points)
    previous: float | None
    interval: tuple[float, float] | None
    resolve_by: dt.date
    resolution: str
    settles: str  # "rationing is partial or broad, in any step of the horizon"


@dataclass(frozen=True)
class Previous:
    """The previous report of the tree that the change column is measured against."""

    id: int
    created_at: dt.datetime
    as_of: dt.date
    engine: str
    n_readings: int
    tree_changed: bool


@dataclass(frozen=True)
class ReadingView:
    """A reading as a report shows it."""

    id: int
    indicator: str
    value: str
    unit: str | None
    observed: str
    location: str | None
    source: str
    note: str | None
    link: Link | None


@dataclass(frozen=True)
class Mover:
    """A report that moves today's forecast: its readings and what it does to each outcome.

    ``changes`` is its effect on each outcome's probability today: the forecast with every report
    minus the forecast without this one (leave one out); ``log_odds`` the same in log-odds (its
    influence, see :mod:`scenariocast.analysis.explain`).
    """

    mark: str
    observed: dt.date
    source: str
    reliability: float
    readings: tuple[ReadingView, ...]
    changes: Mapping[str, float]
    log_odds: Mapping[str, float]
    note: str | None = None  # the note every reading of the report gives, shown once
    link: Link | None = None  # the address every reading of the report gives, shown once


@dataclass(frozen=True)
class Mark:
    """A mover marked on an outcome's curve."""

    mark: str
    day: dt.date
    probability: float


@dataclass(frozen=True)
class Trajectory:
    """Each outcome's probability by observed date, replayed from the ledger."""

    dates: tuple[dt.date, ...]
    series: Mapping[str, tuple[float, ...]]
    priors: Mapping[str, float]
    titles: Mapping[str, str]
    as_of: dt.date
    marks: Mapping[str, tuple[Mark, ...]]


@dataclass(frozen=True)
class Narrative:
    """A most probable scenario in words: states in the tree's order, and what it resolves."""

    rank: int
    probability: float
    states: tuple[tuple[str, str], ...]  # (node, state)
    outcomes: tuple[tuple[str, bool], ...]  # (outcome id, resolves yes)


@dataclass(frozen=True)
class NodeView:
    """A node of the tree with its current state probabilities (empty for calendar nodes)."""

    id: str
    kind: str  # static, dynamic or calendar
    states: tuple[str, ...]
    probabilities: Mapping[str, float]
    prior: Mapping[str, float]
    parents: tuple[str, ...]
    description: str
    rationale: str
    time: str  # how it changes over time, in words ("" for a static node)
    settles: tuple[str, ...]  # outcomes it settles
    months: Mapping[str, str] = field(default_factory=dict)  # calendar nodes: state -> months


@dataclass(frozen=True)
class PredictionRow:
    """What one combination of states predicts, with its current probability if known."""

    states: str  # "food_shock = serious"
    now: float | None
    prediction: StatePrediction


@dataclass(frozen=True)
class IndicatorView:
    """An indicator's latest readings against what each state predicts."""

    id: str
    kind: str
    unit: str | None
    description: str
    depends_on: tuple[str, ...]
    read_as: str
    rows: tuple[PredictionRow, ...]
    readings: tuple[ReadingView, ...]  # counted, newest first, at most LATEST_READINGS
    n_counted: int
    n_in_ledger: int
    tally: Mapping[str, int]  # binary and categorical: counted readings by answer
    points: tuple[float, ...]  # continuous and count: the shown readings' values as entered
    not_counted: str  # why readings in the ledger do not count, when none does


@dataclass(frozen=True)
class DiagnosticRow:
    """One sampler diagnostic with its threshold and whether it passed."""

    name: str
    value: str
    target: str
    ok: bool | None


@dataclass(frozen=True)
class Diagnostics:
    """The sampler's diagnostics and the verdict in words."""

    converged: bool | None
    verdict: str
    rows: tuple[DiagnosticRow, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class MethodPart:
    """A part of the method section: a title, paragraphs and bullet points."""

    title: str
    paragraphs: tuple[str, ...] = ()
    bullets: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()  # a table after the paragraphs, when it has rows
    rows: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class SourceView:
    """A source of the tree and how many counted reports came from it."""

    id: str
    reliability: float
    description: str
    link: Link | None
    n_reports: int


@dataclass(frozen=True)
class WatchRow:
    """One indicator in a ranking of what to watch next."""

    rank: int
    indicator: str
    source: str
    reliability: float
    gain: float  # bits
    share: float
    move: float  # expected absolute change
    largest: float
    cost: float | None
    per_cost: float | None


@dataclass(frozen=True)
class WatchView:
    """What to watch next for one outcome: the ranking, the best in words, the ceilings."""

    outcome: str
    probability: float
    entropy: float
    rows: tuple[WatchRow, ...]
    sentences: tuple[str, ...]
    ceilings: tuple[str, ...]  # "food_shock in 2026-12: 0.074 bits (7.4%)"


@dataclass(frozen=True)
class TornadoBar:
    """One number of a tornado chart: where the outcome goes when it moves over its interval."""

    label: str
    value: float
    low: float
    high: float
    basis: str
    at_low: float
    at_high: float
    derivative: float
    exact: bool
    rationale: str


@dataclass(frozen=True)
class Hinge:
    """What one outcome hinges on: its tornado chart's numbers, the first few in words."""

    outcome: str
    probability: float
    bars: tuple[TornadoBar, ...]
    sentences: tuple[str, ...]


def watch_views(result: WatchResult, *, top: int = 5, words: int = 2) -> tuple[WatchView, ...]:
    """The sections of "What to watch next", one per outcome."""
    from scenariocast.report.words import watch_sentences

    out: list[WatchView] = []
    for oid, now in result.outcomes.items():
        ranked = result.ranked(oid)
        rows = tuple(
            WatchRow(
                rank=k,
                indicator=c.name,
                source=c.source or "",
                reliability=c.reliability,
                gain=c.values[oid].gain,
                share=c.values[oid].share,
                move=c.values[oid].expected_change,
                largest=c.values[oid].largest_change,
                cost=c.cost,
                per_cost=c.gain_per_cost(oid),
            )
            for k, c in enumerate(ranked[:top], start=1)
        )
        sentences = tuple(
            s for c in ranked[:words] for s in watch_sentences(c, oid, now.probability)
        )
        ceilings = tuple(
            f"{c.name}{' in ' + c.step_label if c.step_label else ''}: "
            f"{c.values[oid].gain:.3f} bits ({formatting.pct(c.values[oid].share)})"
            for c in result.ceilings(oid)[:3]
            if c.values[oid].gain > 0
        )
        out.append(WatchView(oid, now.probability, now.entropy, rows, sentences, ceilings))
    return tuple(out)


def hinges(result: SensitivityResult, *, top: int = 15, words: int = 3) -> tuple[Hinge, ...]:
    """The sections of "What the forecast hinges on", one per outcome."""
    from scenariocast.report.words import hinge_sentence

    out: list[Hinge] = []
    for oid, now in result.probabilities.items():
        ranked = result.tornado(oid, top)
        bars = tuple(
            TornadoBar(
                label=p.label,
                value=p.value,
                low=p.low,
                high=p.high,
                basis=p.basis,
                at_low=e.at_low,
                at_high=e.at_high,
                derivative=e.derivative,
                exact=e.exact,
                rationale=p.rationale,
            )
            for p, e in ranked
        )
        sentences = tuple(hinge_sentence(p, e, oid, now) for p, e in ranked[:words])
        out.append(Hinge(oid, now, bars, sentences))
    return tuple(out)


@dataclass(frozen=True)
class ReportContent:
    """Everything a probability report says, section by section."""

    tree_id: str
    title: str
    description: str
    author: str
    created_at: dt.datetime
    as_of: dt.date
    engine: str
    version: str
    tree_hash: str
    readings_hash: str
    notices: tuple[Notice, ...]
    summary: str
    headlines: tuple[Headline, ...]
    has_intervals: bool
    previous: Previous | None
    trajectory: Trajectory | None
    dynamic: bool
    step_intervals: bool  # the dynamic nodes' steps carry credible intervals
    now_step: str | None
    horizon: str
    movers: tuple[Mover, ...]
    n_reports: int
    nodes: tuple[NodeView, ...]
    narratives: tuple[Narrative, ...]
    narrative_note: str
    narrative_share: float
    n_scenarios: int
    indicators: tuple[IndicatorView, ...]
    quiet_indicators: tuple[IndicatorView, ...]
    diagnostics: Diagnostics | None
    method: tuple[MethodPart, ...]
    sources: tuple[SourceView, ...]
    result: ForecastResult = field(repr=False)
    watch: tuple[WatchView, ...] = ()
    watch_step: str | None = None
    hinges: tuple[Hinge, ...] = ()


def previous_report(history: Sequence[Snapshot], result: ForecastResult) -> Snapshot | None:
    """The snapshot the report's change column is measured against, or None.

    The newest forecast of the same tree that assumed nothing (a what-if made with ``given`` is
    not a report), as of a day no later than this one, and not this very forecast again (the
    same tree file, evidence and as-of date give the same numbers, so a repeat is skipped).
    """
    for snap in reversed(history):
        if snap.tree_id != result.tree_id or snap.given or snap.as_of > result.as_of:
            continue
        same = (
            snap.tree_hash == result.tree_hash
            and snap.readings_hash == result.readings_hash
            and snap.as_of == result.as_of
        )
        if not same:
            return snap
    return None


def timing_words(timing: str | None, k: int | None) -> str:
    """How an outcome on a dynamic node resolves, in words."""
    if timing == "end":
        return "at the horizon's last step"
    if timing == "ever":
        return "in any step of the horizon"
    if timing == "at_least":
        return f"in at least {k} steps of the horizon"
    return ""


def _states_words(states: Sequence[str]) -> str:
    if len(states) == 1:
        return states[0]
    return ", ".join(states[:-1]) + " or " + states[-1]


def _and(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _verb(subjects: Sequence[str], one: str, many: str) -> str:
    return one if len(subjects) == 1 else many


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def _reading_view(r: Reading) -> ReadingView:
    url = web_url(r.source_url)
    link = Link(link_text(url), url) if url else (Link(r.source_url) if r.source_url else None)
    return ReadingView(
        id=r.id,
        indicator=r.indicator,
        value=r.value,
        unit=r.unit,
        observed=str(r.observed),
        location=r.location,
        source=r.source,
        note=r.note,
        link=link,
    )


def _marks() -> list[str]:
    letters = list(string.ascii_uppercase)
    return letters + [a + b for a in letters for b in letters]


def _movers(expl: Explanation, top: int) -> list[Mover]:
    """The reports with the largest effect on today's forecast of any outcome, in order observed.

    A report's effect: the forecast with every report minus the forecast without it.
    """
    rows: list[tuple[float, int, Contribution, dict[str, float]]] = []
    for k, c in enumerate(expl.contributions):
        changes = {o: expl.posterior[o] - c.probability_without[o] for o in expl.prior}
        size = max((abs(v) for v in changes.values()), default=0.0)
        if size > 0:
            rows.append((size, k, c, changes))
    chosen = sorted(rows, key=lambda x: -x[0])[:top]
    chosen.sort(key=lambda x: x[1])
    names = _marks()
    out = []
    for i, (_, _, c, changes) in enumerate(chosen):
        views = [_reading_view(r) for r in c.readings]
        notes = {v.note for v in views}
        links = {v.link for v in views}
        note = link = None
        if len(views) > 1 and len(notes) == 1:
            note = notes.pop()
            views = [replace(v, note=None) for v in views]
        if len(views) > 1 and len(links) == 1:
            link = links.pop()
            views = [replace(v, link=None) for v in views]
        out.append(
            Mover(
                mark=names[i],
                observed=c.report.last_day,
                source=c.report.source,
                reliability=c.report.reliability,
                readings=tuple(views),
                changes=changes,
                log_odds=dict(c.influence),
                note=note,
                link=link,
            )
        )
    return out


def _trajectory(
    timeline: Timeline, result: ForecastResult, movers: Sequence[Mover]
) -> Trajectory | None:
    dates = tuple(d for d in timeline.dates[1:] if d is not None)
    if not dates or not timeline.outcomes:
        return None
    series = {o: tuple(v[1:]) for o, v in timeline.outcomes.items()}
    marks: dict[str, tuple[Mark, ...]] = {}
    for oid, values in series.items():
        ranked = sorted(movers, key=lambda m: -abs(m.changes.get(oid, 0.0)))
        picked = [m for m in ranked[:MARKS_PER_OUTCOME] if abs(m.changes.get(oid, 0.0)) >= 0.005]
        out = []
        for m in sorted(picked, key=lambda m: m.observed):
            idx = max((i for i, d in enumerate(dates) if d <= m.observed), default=None)
            if idx is not None:
                out.append(Mark(m.mark, m.observed, values[idx]))
        marks[oid] = tuple(out)
    return Trajectory(
        dates=dates,
        series=series,
        priors={o: v[0] for o, v in timeline.outcomes.items()},
        titles={o: f.question for o, f in result.outcomes.items()},
        as_of=result.as_of,
        marks=marks,
    )


def _notices(tree: Tree, result: ForecastResult, readings: Sequence[Reading]) -> list[Notice]:
    out: list[Notice] = []
    diag = result.diagnostics
    if diag and diag.get("converged") is False:
        reasons = _reasons(diag)
        out.append(
            Notice(
                "danger",
                "The sampler did not converge: these probabilities are not reliable. "
                "Do not send them before it does (see Diagnostics).",
                reasons,
            )
        )
    if result.stale:
        items = tuple(
            f"{st.indicator}: newest reading {st.newest}, {st.age_days} days before the as-of "
            f"date (stale after {st.threshold_days} days); "
            + ("still counted" if st.counted else "no longer counted")
            for st in result.stale
        )
        out.append(
            Notice(
                "warning",
                f"Stale evidence: {_plural(len(items), 'indicator')} without a recent reading. "
                "Has the series stopped, or has nobody entered it?",
                items,
            )
        )
    late = [
        e.reading
        for e in result.evidence.excluded
        if e.kind == "after_as_of" and e.reading.indicator in tree.indicators
    ]
    if late:
        by_ind: dict[str, list[Reading]] = {}
        for r in late:
            by_ind.setdefault(r.indicator, []).append(r)
        items = tuple(
            f"{name}: {_plural(len(rs), 'reading')}, observed "
            + (
                f"{min(r.observed.end for r in rs)} to {max(r.observed.end for r in rs)}"
                if len(rs) > 1
                else f"{rs[0].observed}"
            )
            for name, rs in by_ind.items()
        )
        out.append(
            Notice(
                "warning",
                f"{_plural(len(late), 'reading is', 'readings are')} dated after the as-of date "
                f"{result.as_of} and not counted.",
                items,
            )
        )
    mine = [r for r in readings if r.indicator in tree.indicators]
    if result.n_observations == 0:
        if not mine:
            out.append(
                Notice(
                    "info",
                    "No readings yet: every probability here is the tree's prior.",
                )
            )
        elif all(r.retracted for r in mine):
            out.append(
                Notice(
                    "info",
                    f"All {_plural(len(mine), 'reading')} of this tree's indicators "
                    "are retracted: none counts, and every probability here is the prior.",
                )
            )
        else:
            counts = Counter(
                e.kind for e in result.evidence.excluded if e.reading.indicator in tree.indicators
            )
            out.append(
                Notice(
                    "info",
                    "No reading counts as of this date: every probability here is the prior.",
                    tuple(
                        f"{_plural(n, 'reading')} {_EXCLUSION_WORDS.get(kind, kind)}"
                        for kind, n in counts.most_common()
                    ),
                )
            )
    # what a reader must know first: a sampler that failed, then that these are priors
    rank = {"danger": 0, "info": 1, "warning": 2}
    return sorted(out, key=lambda n: rank[n.level])


def _headlines(
    tree: Tree, result: ForecastResult, previous: Snapshot | None
) -> tuple[Headline, ...]:
    before = previous.payload.get("outcomes", {}) if previous else {}
    rows = []
    for oid, o in result.outcomes.items():
        spec = tree.outcomes[oid]
        prev = before.get(oid)
        prev_p = float(prev) if isinstance(prev, int | float) else None
        when = timing_words(spec.timing, spec.k)
        settles = f"{spec.node} is {_states_words(spec.states)}" + (f", {when}" if when else "")
        rows.append(
            Headline(
                id=oid,
                question=o.question,
                probability=o.probability,
                prior=o.prior,
                change=None if prev_p is None else o.probability - prev_p,
                previous=prev_p,
                interval=o.interval,
                resolve_by=o.resolve_by,
                resolution=spec.resolution,
                settles=settles,
            )
        )
    return tuple(rows)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def month_ranges(months: Sequence[int]) -> str:
    """Months (1-12) as ranges: ``[5, 6, 7, 8]`` -> ``May–Aug``; ``[1, 2, 12]`` -> ``Dec–Feb``."""
    chosen = sorted(set(months))
    if not chosen:
        return ""
    if len(chosen) == 12:
        return "all year"
    runs: list[list[int]] = []
    for m in chosen:
        if runs and m == runs[-1][-1] + 1:
            runs[-1].append(m)
        else:
            runs.append([m])
    if len(runs) > 1 and runs[0][0] == 1 and runs[-1][-1] == 12:  # a run across the new year
        runs[0] = runs.pop() + runs[0]
    parts = [
        _MONTHS[r[0] - 1] if len(r) == 1 else f"{_MONTHS[r[0] - 1]}–{_MONTHS[r[-1] - 1]}"
        for r in runs
    ]
    return ", ".join(parts)


def _node_time(tree: Tree, name: str) -> str:
    node = tree.nodes[name]
    spec = tree.spec.nodes[name]
    unit = tree.steps.unit if tree.steps else "step"
    if node.kind == "calendar" and spec.calendar is not None:
        parts = [f"{s}: {month_ranges(ms)}" for s, ms in spec.calendar.items()]
        return "set by the calendar (" + "; ".join(parts) + ")"
    if node.kind == "dynamic" and spec.dynamic is not None:
        pers = spec.dynamic.persistence
        if pers is None:
            return f"changes from {unit} to {unit} by its transition table"
        if isinstance(pers, dict):
            shown = ", ".join(f"{s} {v:g}" for s, v in pers.items())
        else:
            shown = f"{pers:g}"
        return f"changes from {unit} to {unit}; keeps its state with probability {shown}"
    return ""


def _nodes(tree: Tree, result: ForecastResult) -> tuple[NodeView, ...]:
    settles: dict[str, list[str]] = {}
    for oid, o in tree.outcomes.items():
        settles.setdefault(o.node, []).append(oid)
    out = []
    for name, node in tree.nodes.items():
        spec = tree.spec.nodes[name]
        out.append(
            NodeView(
                id=name,
                kind=node.kind,
                states=node.states,
                probabilities=dict(result.nodes.get(name, {})),
                prior=dict(result.prior_nodes.get(name, {})),
                parents=node.parents,
                description=spec.description.strip(),
                rationale=spec.rationale.strip(),
                time=_node_time(tree, name),
                settles=tuple(settles.get(name, [])),
                months={s: month_ranges(ms) for s, ms in (spec.calendar or {}).items()},
            )
        )
    return tuple(out)


def _narratives(tree: Tree, scenarios: Sequence[Scenario]) -> tuple[Narrative, ...]:
    out = []
    for k, s in enumerate(scenarios, start=1):
        states = tuple((n, v) for n, v in s.states.items())
        resolved = []
        for oid, o in tree.outcomes.items():
            node = tree.nodes[o.node]
            if o.node in s.states and (node.kind == "static" or o.timing == "end"):
                resolved.append((oid, s.states[o.node] in o.states))
        out.append(Narrative(k, s.probability, states, tuple(resolved)))
    return tuple(out)


def _calendar_now(tree: Tree, result: ForecastResult) -> dict[str, str]:
    """The state of each calendar node at the step the forecast's node marginals describe."""
    steps = tree.steps
    if steps is None:
        return {}
    now = min(max(steps.index(result.as_of), 0), steps.n - 1)
    month = steps.month(now)
    return {
        name: node.states[node.calendar[month - 1]]
        for name, node in tree.nodes.items()
        if node.kind == "calendar" and node.calendar is not None
    }


def _read_as_words(tree: Tree, name: str) -> str:
    spec = tree.indicators[name].spec
    ra = spec.read_as
    if spec.kind == "lognormal":
        return "as reported (log-normal)"
    if ra is None or ra.transform == "identity":
        return "as reported"
    if ra.transform == "log":
        return "on the log scale"
    base = f"{ra.baseline:,g}" + (f" ({ra.baseline_date})" if ra.baseline_date else "")
    if ra.transform == "log_change":
        return f"as the log change against {base}"
    return f"as the % change against {base}"


def _indicators(
    tree: Tree, result: ForecastResult, readings: Sequence[Reading]
) -> tuple[list[IndicatorView], list[IndicatorView]]:
    counted: dict[str, list[Reading]] = {}
    for o in result.evidence.observations:
        counted.setdefault(o.indicator, []).append(o.reading)
    in_ledger = Counter(r.indicator for r in readings)
    excluded: dict[str, Counter[str]] = {}
    for e in result.evidence.excluded:
        excluded.setdefault(e.reading.indicator, Counter())[e.kind] += 1
    with_readings: list[IndicatorView] = []
    quiet: list[IndicatorView] = []
    for name, ind in tree.indicators.items():
        spec = ind.spec
        rows = []
        season = _calendar_now(tree, result)
        varying = [n for n in ind.scope if tree.nodes[n].kind != "calendar"]
        for pred in predictions(tree, name):
            now = None
            if len(varying) == 1:
                node = varying[0]
                now = result.nodes.get(node, {}).get(pred.states[node])
                if now is not None and any(
                    season.get(n) != pred.states[n] for n in ind.scope if n != node
                ):
                    now = 0.0  # a season that does not hold at the as-of step
            text = ", ".join(f"{n} = {s}" for n, s in pred.states.items())
            rows.append(PredictionRow(text, now, pred))
        drawn = result.predictive.get(name)
        if drawn is not None:  # the PyMC engine: states and parameters drawn from the posterior
            pred = StatePrediction({}, drawn.median, drawn.low, drawn.high, drawn.probabilities)
            rows.append(PredictionRow(POSTERIOR_PREDICTIVE, None, pred))
        mine = sorted(counted.get(name, []), key=lambda r: (r.observed.end, r.id), reverse=True)
        tally: Counter[str] = Counter()
        if spec.kind in ("binary", "categorical"):
            for r in mine:
                raw = parse_value(spec.kind, r.value, spec.categories)
                if spec.kind == "binary":
                    tally["yes" if raw > 0.5 else "no"] += 1
                else:
                    tally[(spec.categories or [])[int(raw)]] += 1
        shown = mine[:LATEST_READINGS]
        points: tuple[float, ...] = ()
        if spec.kind not in ("binary", "categorical"):
            points = tuple(parse_value(spec.kind, r.value, spec.categories) for r in shown)
        why = excluded.get(name, Counter())
        not_counted = ""
        if not mine and in_ledger[name]:
            not_counted = "; ".join(
                f"{_plural(n, 'reading')} {_EXCLUSION_WORDS.get(k, k)}"
                for k, n in why.most_common()
            )
        view = IndicatorView(
            id=name,
            kind=spec.kind,
            unit=spec.unit,
            description=spec.description.strip(),
            depends_on=ind.scope,
            read_as=_read_as_words(tree, name),
            rows=tuple(rows),
            readings=tuple(_reading_view(r) for r in shown),
            n_counted=len(mine),
            n_in_ledger=in_ledger[name],
            tally=dict(tally),
            points=points,
            not_counted=not_counted,
        )
        (with_readings if mine else quiet).append(view)
    return with_readings, quiet


def _diagnostics(result: ForecastResult) -> Diagnostics | None:
    d = result.diagnostics
    if not d:
        return None
    rows: list[DiagnosticRow] = []

    def num(key: str) -> float | None:
        v = d.get(key)
        return float(v) if isinstance(v, numbers.Real) and not isinstance(v, bool) else None

    if (v := num("rhat_max")) is not None:
        rows.append(DiagnosticRow("Largest R-hat", f"{v:.3f}", "below 1.01", v < 1.01))
    for key, name in (("ess_bulk_min", "Smallest bulk ESS"), ("ess_tail_min", "Smallest tail ESS")):
        if (v := num(key)) is not None:
            rows.append(DiagnosticRow(name, f"{v:,.0f}", "400 or more", v >= 400))
    if (v := num("divergences")) is not None:
        rows.append(DiagnosticRow("Divergent transitions", f"{v:,.0f}", "none", v == 0))
    known = {"converged", "reasons", "rhat_max", "ess_bulk_min", "ess_tail_min", "divergences"}
    for key, value in d.items():
        if key not in known and isinstance(value, str | numbers.Real):
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            rows.append(DiagnosticRow(label(key), shown, "", None))
    conv = d.get("converged")
    converged = conv if isinstance(conv, bool) else None
    if converged is True:
        verdict = (
            "The sampler converged: its chains agree (R-hat), it drew enough independent "
            "samples (ESS) and it had no divergent transitions, so the probabilities and "
            "intervals can be trusted to the precision shown."
        )
    elif converged is False:
        verdict = (
            "The sampler did not converge: its chains disagree, drew too few independent "
            "samples or diverged, so the probabilities may be off by more than the intervals "
            "say. Run it longer or with more chains before relying on them."
        )
    else:
        verdict = "The engine did not say whether the sampler converged."
    return Diagnostics(converged, verdict, tuple(rows), _reasons(d))


def _reasons(diagnostics: Mapping[str, Any]) -> tuple[str, ...]:
    """The sampler's reasons for its verdict: a list of sentences, or one."""
    reasons = diagnostics.get("reasons") or ()
    if isinstance(reasons, str):
        return (reasons,)
    return tuple(str(r) for r in reasons)


def _method(
    tree: Tree, result: ForecastResult, readings: Sequence[Reading], explanation: Explanation
) -> tuple[MethodPart, ...]:
    parts: list[MethodPart] = []
    n_nodes = len(tree.nodes)
    if result.engine == "exact":
        engine = MethodPart(
            "How the probabilities are computed",
            (
                f"Exactly, by Bayes' rule on the tree's {n_nodes} nodes (a junction tree; no "
                "sampling, so the numbers carry no simulation error). The prior comes from the "
                "tree's probability tables, and every reading that counts multiplies in its "
                "likelihood. The tables are taken as exact: uncertainty about the numbers in "
                "them is not part of the result, so there are no credible intervals.",
            ),
        )
    elif result.engine == "pymc":
        engine = MethodPart(
            "How the probabilities are computed",
            (
                f"By Markov chain Monte Carlo (PyMC) on the tree's {n_nodes} nodes. The "
                f"probability tables are held with a Dirichlet strength of {tree.spec.strength:g} "
                "pseudo-counts per row (nodes may override it), so the 90% credible intervals "
                "include uncertainty about the tables themselves as well as about the states.",
            ),
        )
    else:
        engine = MethodPart(
            "How the probabilities are computed", (f"By the {result.engine} engine.",)
        )
    parts.append(engine)

    ev = result.evidence
    reports_par = (
        "Readings come in reports: the readings of one source on one observed date, or those "
        "that give the same report id. A report is genuine or not as a whole: with the "
        "source's reliability r it is genuine and counts in full; otherwise it carries no "
        "information. So a report can move a probability a long way but never to certainty "
        "on its own, and a source with r = 0 changes nothing.",
        f"This forecast counts {_plural(result.n_observations, 'observation')} in "
        f"{_plural(len(ev.reports), 'report')}, from {_plural(len(ev.reading_ids), 'reading')} "
        f"of the ledger; {_plural(len(ev.excluded), 'reading')} of the ledger "
        f"{'does' if len(ev.excluded) == 1 else 'do'} not count (retracted, dated after the "
        "as-of date, superseded, outside a window, or not of this tree). The contributions in "
        "'What moved the forecast' add each report in the order observed; they add up to the "
        "change from prior to now.",
    )
    parts.append(MethodPart("Reports and the reliability of sources", reports_par))

    rows = []
    for name, ind in tree.indicators.items():
        spec = ind.spec
        rule = spec.combine_rule()
        if rule.rule == "latest":
            how = f"latest per {' and '.join(rule.per)}"
            if tree.steps is not None and tree.varies(ind.scope):
                how += f" in each {tree.steps.unit}"
        else:
            how = "every distinct reading"
        if rule.window_days:
            how += f"; within {rule.window_days} days"
        if rule.max_age_days:
            how += f"; at most {rule.max_age_days} days old"
        rho = f"{spec.correlation():g}" if spec.kind in CONTINUOUS_KINDS else "–"
        rows.append(
            (
                name,
                spec.kind,
                ", ".join(ind.scope),
                _read_as_words(tree, name),
                how,
                rho,
                f"{spec.stale_days()} days",
            )
        )
    parts.append(
        MethodPart(
            "How repeated readings combine",
            (
                "A reading entered twice counts once; readings linked as one event count once, "
                "as the most reliable source's. Readings of different indicators in one report "
                "are independent given the states. Several readings of one continuous indicator "
                "in one report (cities of one survey) share an error with correlation ρ: n of "
                "them count as n / (1 + (n − 1) ρ) independent readings (four at ρ = 0.5 count "
                "as 1.6). Then each indicator's rule says which readings count:",
            ),
            headers=(
                "Indicator",
                "Kind",
                "On",
                "Read",
                "Which readings count",
                "Correlation in a report",
                "Stale after",
            ),
            rows=tuple(rows),
        )
    )

    if tree.steps is not None and tree.is_dynamic:
        st = tree.steps
        dyn = [n for n, x in tree.nodes.items() if x.kind == "dynamic"]
        cal = [n for n, x in tree.nodes.items() if x.kind == "calendar"]
        static = [n for n, x in tree.nodes.items() if x.kind == "static"]
        paras = [
            f"The horizon runs from {st.start} to {st.end} in {_plural(st.n, st.unit)}. "
            + (
                f"{_and(dyn)} {_verb(dyn, 'changes', 'change')} from {st.unit} to {st.unit} "
                "(dynamic); "
                if dyn
                else ""
            )
            + (f"{_and(cal)} {_verb(cal, 'follows', 'follow')} the calendar; " if cal else "")
            + (
                f"{_and(static)} {_verb(static, 'holds', 'hold')} one state for the whole horizon."
                if static
                else "no node is fixed for the whole horizon."
            ),
            "A reading is evidence about the state at the step of its observed date (the last "
            "day, for a month, a year or a period), not about the whole horizon. Readings before "
            "the horizon inform its start through the same chain, their weight fading with the "
            "persistence. Up to the as-of step the path is estimated from the readings (later "
            "ones included); after it, predicted. Outcomes on dynamic nodes resolve over the "
            "horizon's steps only.",
        ]
        parts.append(
            MethodPart(
                "Time",
                tuple(paras),
                tuple(f"{n}: {_node_time(tree, n)}." for n in (*dyn, *cal)),
            )
        )
    else:
        parts.append(
            MethodPart(
                "Time",
                (
                    "The tree has no dynamic node: each node has one state for the whole period "
                    "its outcomes cover, and every reading that counts is evidence of that state, "
                    "whenever it was observed (within its indicator's window).",
                ),
            )
        )

    limits = [
        f"Anything outside the tree's {n_nodes} nodes: a development that is not one of their "
        "states reaches the forecast only through readings of the indicators.",
    ]
    if result.engine == "exact":
        limits.append(
            "Uncertainty about the probability tables and the indicators' parameters: they are "
            "the author's judgement, taken as exact."
        )
    shared = Counter(n for ind in tree.indicators.values() for n in ind.scope)
    if any(c > 1 for c in shared.values()):
        limits.append(
            "Errors that different indicators share beyond the nodes they depend on (rice and "
            "corn prices from one survey): they count as independent given the states."
        )
    limits.append(
        "A source's reliability is one number for all it reports, whatever the topic or date."
    )
    if not tree.is_dynamic:
        limits.append("Change within the period: each node has one state for all of it.")
    unknown_src = {e.reading.source for e in result.evidence.excluded if e.kind == "unknown_source"}
    if unknown_src:
        limits.append(
            f"Readings from sources the tree does not define ({_and(sorted(unknown_src))}): "
            "they are not counted."
        )
    if explanation.contributions:
        limits.append(
            "How much each report moved the forecast depends on the order reports are added "
            "(the order observed); only the total is independent of it."
        )
    parts.append(MethodPart("What the model does not capture", (), tuple(limits)))
    return tuple(parts)


def _sources(tree: Tree, result: ForecastResult) -> tuple[SourceView, ...]:
    n_reports = Counter(rep.source for rep in result.evidence.reports)
    out = []
    for name, src in tree.sources.items():
        url = web_url(src.url)
        link = Link(link_text(url), url) if url else (Link(src.url) if src.url else None)
        out.append(
            SourceView(
                id=name,
                reliability=src.mean_reliability,
                description=" ".join(src.description.split()),
                link=link,
                n_reports=n_reports[name],
            )
        )
    return tuple(out)


def _summary(result: ForecastResult, tree: Tree, readings: Sequence[Reading]) -> str:
    ev = result.evidence
    mine = sum(1 for r in readings if r.indicator in tree.indicators)
    if result.n_observations == 0:
        return f"no reading counts yet ({_plural(mine, 'reading')} of this tree in the ledger)"
    return (
        f"evidence: {_plural(len(ev.reading_ids), 'reading')} in "
        f"{_plural(len(ev.reports), 'report')} count"
    )


def build_content(
    tree: Tree,
    result: ForecastResult,
    explanation: Explanation,
    timeline: Timeline,
    *,
    readings: Sequence[Reading],
    previous: Snapshot | None,
    created_at: dt.datetime,
    version: str,
    watch: WatchResult | None = None,
    sensitivity: SensitivityResult | None = None,
) -> ReportContent:
    """Every section of the report, from a forecast and what explains it.

    ``watch`` and ``sensitivity`` (computed by the caller) fill "What to watch next" and "What
    the forecast hinges on"; without them those sections are left out.
    """
    movers = _movers(explanation, TOP_MOVERS)
    with_readings, quiet = _indicators(tree, result, readings)
    dynamic = bool(result.steps)
    horizon = ""
    if tree.steps is not None and dynamic:
        horizon = tree.steps.label(tree.steps.n - 1)
    narrative_note = (
        f"For a tree that changes over time these are states at the horizon's end ({horizon}), "
        "with the months before summed over: a statement about where things stand by then, "
        "not a month-by-month path."
        if dynamic
        else "Each is a complete scenario: one state for every node."
    )
    share = math.fsum(s.probability for s in result.top_scenarios)
    n_scenarios = math.prod(len(n.states) for n in tree.nodes.values() if n.kind != "calendar")
    prev = None
    if previous is not None:
        prev = Previous(
            id=previous.id,
            created_at=previous.created_at,
            as_of=previous.as_of,
            engine=previous.engine,
            n_readings=previous.n_readings,
            tree_changed=previous.tree_hash != result.tree_hash,
        )
    spec = tree.spec
    return ReportContent(
        tree_id=tree.id,
        title=spec.title.strip() or tree.id,
        description=" ".join(spec.description.split()),
        author=spec.author.strip(),
        created_at=created_at,
        as_of=result.as_of,
        engine=result.engine,
        version=version,
        tree_hash=result.tree_hash,
        readings_hash=result.readings_hash,
        notices=tuple(_notices(tree, result, readings)),
        summary=_summary(result, tree, readings),
        headlines=_headlines(tree, result, previous),
        has_intervals=any(o.interval is not None for o in result.outcomes.values()),
        previous=prev,
        trajectory=_trajectory(timeline, result, movers),
        dynamic=dynamic,
        step_intervals=any(x.intervals for path in result.steps.values() for x in path),
        now_step=result.now_step,
        horizon=horizon,
        movers=tuple(movers),
        n_reports=len(explanation.contributions),
        nodes=_nodes(tree, result),
        narratives=_narratives(tree, result.top_scenarios),
        narrative_note=narrative_note,
        narrative_share=share,
        n_scenarios=n_scenarios,
        indicators=tuple(with_readings),
        quiet_indicators=tuple(quiet),
        diagnostics=_diagnostics(result),
        method=_method(tree, result, readings, explanation),
        sources=_sources(tree, result),
        result=result,
        watch=watch_views(watch) if watch is not None else (),
        watch_step=watch.step_label if watch is not None else None,
        hinges=hinges(sensitivity, top=REPORT_TORNADO) if sensitivity is not None else (),
    )
