"""Which readings count as evidence for a tree, and how repeated readings combine.

Rules, in order (each documented in docs/evidence.md):

1. Retracted readings, readings observed after the as-of date, readings of indicators the tree
   does not define, and readings from sources the tree does not define do not count; each is
   reported with its reason.
2. An identical row entered again (same indicator, value, date, location, source and unit) is a
   re-entry, not a new observation: it counts once.
3. Readings linked to each other (``links``) report one event: they count once, as the reading of
   the most reliable source among them.
4. The indicator's ``combine`` rule: ``all`` keeps every remaining reading; ``latest`` keeps only
   the latest reading of each group (by source and location by default, and by step of the
   horizon for an indicator on nodes that change over time); ``max_age_days`` and
   ``window_days`` keep only readings observed within that many days of the as-of date.

What counts is then grouped into **reports**: the readings of one source on one observed date,
or with one report id (``Reading.report``). A report is genuine or not as a whole. And each
indicator whose newest usable reading is older than its staleness threshold is listed as stale.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scenariocast.errors import ScenariocastError
from scenariocast.evidence.likelihood import transform
from scenariocast.evidence.nodes import Finding
from scenariocast.evidence.readings import Reading
from scenariocast.evidence.values import parse_value
from scenariocast.spec.tree import Tree


@dataclass(frozen=True)
class Observation:
    """One piece of evidence: a reading that counts, with any readings folded into it.

    ``step`` is the step of the tree's horizon that holds the reading's observed date (its last
    day, for a period) when the indicator depends on a node that changes over time, else None.
    """

    reading: Reading
    indicator: str
    value: float  # after parsing and the indicator's read_as transform
    reliability: float
    folded: tuple[int, ...] = ()  # ids of linked or repeated readings counted with this one
    step: int | None = None

    @property
    def ids(self) -> tuple[int, ...]:
        """Every reading id this observation stands for."""
        return (self.reading.id, *self.folded)


@dataclass(frozen=True)
class Report:
    """Readings of one source reported together: genuine or not as a whole.

    ``key`` is the report id the readings give, or else their observed date.
    """

    source: str
    key: str
    reliability: float
    observations: tuple[Observation, ...]

    @property
    def ids(self) -> tuple[int, ...]:
        """Every reading id the report stands for."""
        return tuple(i for o in self.observations for i in o.ids)

    @property
    def last_day(self) -> dt.date:
        """The last day any of its readings was observed."""
        return max(o.reading.observed.end for o in self.observations)

    @property
    def label(self) -> str:
        """``source, key`` for messages."""
        return f"{self.source}, {self.key}"


@dataclass(frozen=True)
class Stale:
    """An indicator whose newest usable reading is older than its staleness threshold."""

    indicator: str
    newest: dt.date
    age_days: int
    threshold_days: int
    counted: bool  # whether any reading of the indicator still counts

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dictionary (an entry of ``forecast --json``'s ``stale`` list)."""
        return {
            "indicator": self.indicator,
            "newest": self.newest.isoformat(),
            "age_days": self.age_days,
            "stale_after_days": self.threshold_days,
            "still_counted": self.counted,
        }


@dataclass(frozen=True)
class Excluded:
    """A reading that does not count for this tree, and why.

    ``kind`` is one of ``retracted``, ``after_as_of``, ``unknown_indicator``,
    ``unknown_source``, ``unreadable``, ``repeated``, ``linked``, ``too_old``, ``outside_window``
    and ``superseded``; ``reason`` says it in words, naming the readings involved.
    """

    reading: Reading
    reason: str
    kind: str


@dataclass(frozen=True)
class Evidence:
    """The evidence a tree uses, in the order the readings were observed.

    ``reports`` holds the same observations grouped into reports, ordered by their last
    observed day.
    """

    observations: tuple[Observation, ...]
    excluded: tuple[Excluded, ...]
    as_of: dt.date
    reports: tuple[Report, ...] = ()
    stale: tuple[Stale, ...] = ()
    #: evidence on nodes (virtual, soft), given with the query (evidence/nodes.py)
    findings: tuple[Finding, ...] = ()

    @property
    def reading_ids(self) -> tuple[int, ...]:
        """Ids of every reading that counts, including folded ones."""
        return tuple(i for o in self.observations for i in o.ids)


def _find(parent: dict[int, int], i: int) -> int:
    """Union-find root of ``i`` (with path halving)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _order_key(r: Reading) -> tuple[dt.date, dt.date, int]:
    return (r.observed.end, r.observed.start, r.id)


def select_evidence(tree: Tree, readings: Sequence[Reading], as_of: dt.date) -> Evidence:
    """Apply the rules above to ``readings`` for ``tree`` as of ``as_of``."""
    excluded: list[Excluded] = []
    by_indicator: dict[str, list[Reading]] = defaultdict(list)
    parsed: dict[int, float] = {}
    for r in readings:
        ind = tree.indicators.get(r.indicator)
        if r.retracted:
            excluded.append(
                Excluded(r, f"retracted: {r.retraction_reason or 'no reason given'}", "retracted")
            )
        elif r.observed.end > as_of:
            excluded.append(Excluded(r, f"observed after the as-of date {as_of}", "after_as_of"))
        elif ind is None:
            excluded.append(
                Excluded(
                    r, f"tree '{tree.id}' has no indicator '{r.indicator}'", "unknown_indicator"
                )
            )
        elif r.source not in tree.sources:
            excluded.append(
                Excluded(
                    r, f"tree '{tree.id}' does not define source '{r.source}'", "unknown_source"
                )
            )
        else:
            try:
                raw = parse_value(ind.spec.kind, r.value, ind.spec.categories)
            except ScenariocastError as exc:
                excluded.append(Excluded(r, f"value not readable: {exc}", "unreadable"))
                continue
            value = float(transform(ind.spec.read_as, np.array([raw]))[0])
            if not np.isfinite(value):
                excluded.append(
                    Excluded(r, "value not readable after the read_as transform", "unreadable")
                )
                continue
            parsed[r.id] = value
            by_indicator[r.indicator].append(r)

    observations: list[Observation] = []
    steps = tree.steps
    for name, rows in by_indicator.items():
        spec = tree.indicators[name].spec
        rule = spec.combine_rule()
        timed = steps is not None and tree.varies(tree.indicators[name].scope)

        def step_of(r: Reading, timed: bool = timed) -> int | None:
            return steps.index(r.observed.end) if timed and steps is not None else None

        rel = {r.id: tree.sources[r.source].mean_reliability for r in rows}
        rows = sorted(rows, key=_order_key)

        # 2. identical re-entries count once (the first entered stands)
        firsts: dict[tuple[object, ...], Reading] = {}
        folded: dict[int, list[int]] = defaultdict(list)
        kept: list[Reading] = []
        for r in sorted(rows, key=lambda r: r.id):
            key = (parsed[r.id], r.observed.text, r.location, r.source, r.unit)
            if key in firsts:
                first = firsts[key]
                folded[first.id].append(r.id)
                excluded.append(
                    Excluded(r, f"same reading as #{first.id}: counted once", "repeated")
                )
            else:
                firsts[key] = r
                kept.append(r)

        # 3. linked readings report one event: keep the most reliable, fold the others
        parent = {r.id: r.id for r in kept}
        alias = {rid: first.id for first in kept for rid in folded[first.id]}

        for r in kept:
            if r.links is not None:
                target = alias.get(r.links, r.links)
                if target in parent:
                    parent[_find(parent, r.id)] = _find(parent, target)
        clusters: dict[int, list[Reading]] = defaultdict(list)
        for r in kept:
            clusters[_find(parent, r.id)].append(r)
        representatives: list[Reading] = []
        for members in clusters.values():
            best = max(members, key=lambda r: (rel[r.id], -r.id))
            representatives.append(best)
            for m in members:
                if m.id != best.id:
                    folded[best.id].extend([m.id, *folded.pop(m.id, [])])
                    excluded.append(
                        Excluded(
                            m,
                            f"linked to #{best.id} (one event): counted once, as #{best.id}",
                            "linked",
                        )
                    )

        # 4. the combine rule
        counted = sorted(representatives, key=_order_key)
        for days, kind in ((rule.max_age_days, "too_old"), (rule.window_days, "outside_window")):
            if days is None:
                continue
            oldest = as_of - dt.timedelta(days=days)
            for r in counted:
                if r.observed.end < oldest:
                    excluded.append(
                        Excluded(r, f"older than {days} days before the as-of date ({as_of})", kind)
                    )
            counted = [r for r in counted if r.observed.end >= oldest]
        if rule.rule == "latest":

            def group(r: Reading, per: Sequence[str] = rule.per) -> tuple[object, ...]:
                return (*(getattr(r, k) for k in per), step_of(r))

            latest: dict[tuple[object, ...], Reading] = {}
            for r in counted:  # sorted by observed date, so the last one wins
                latest[group(r)] = r
            winners = {r.id for r in latest.values()}
            for r in counted:
                if r.id not in winners:
                    w = latest[group(r)]
                    step = step_of(r)
                    within = (
                        f" in the same step ({steps.label(step)})"
                        if step is not None and steps is not None
                        else ""
                    )
                    excluded.append(
                        Excluded(
                            r,
                            f"superseded by #{w.id} ({w.observed}), the latest reading "
                            f"of the same {' and '.join(rule.per)}{within}",
                            "superseded",
                        )
                    )
            counted = [r for r in counted if r.id in winners]
        for r in counted:
            observations.append(
                Observation(
                    reading=r,
                    indicator=name,
                    value=parsed[r.id],
                    reliability=rel[r.id],
                    folded=tuple(sorted(folded.get(r.id, []))),
                    step=step_of(r),
                )
            )
    observations.sort(key=lambda o: _order_key(o.reading))
    excluded.sort(key=lambda e: e.reading.id)
    return Evidence(
        observations=tuple(observations),
        excluded=tuple(excluded),
        as_of=as_of,
        reports=group_reports(tree, observations),
        stale=_stale(tree, by_indicator, observations, as_of),
    )


def group_reports(tree: Tree, observations: Sequence[Observation]) -> tuple[Report, ...]:
    """The observations grouped into reports, ordered by last observed day (then first id).

    A report is the observations of one source with the same report id or, for readings that
    give none, the same observed date.
    """
    groups: dict[tuple[str, str, str], list[Observation]] = defaultdict(list)
    for o in observations:
        r = o.reading
        key = ("id", r.report) if r.report else ("date", r.observed.text)
        groups[(r.source, *key)].append(o)
    reports = [
        Report(
            source=source,
            key=key,
            reliability=tree.sources[source].mean_reliability,
            observations=tuple(members),
        )
        for (source, _, key), members in groups.items()
    ]
    reports.sort(key=lambda rep: (rep.last_day, min(rep.ids)))
    return tuple(reports)


def _stale(
    tree: Tree,
    usable: dict[str, list[Reading]],
    observations: Sequence[Observation],
    as_of: dt.date,
) -> tuple[Stale, ...]:
    """Indicators whose newest usable reading is older than their staleness threshold."""
    counting = {o.indicator for o in observations}
    out: list[Stale] = []
    for name in tree.indicators:
        rows = usable.get(name)
        if not rows:
            continue
        newest = max(r.observed.end for r in rows)
        age = (as_of - newest).days
        threshold = tree.indicators[name].spec.stale_days()
        if age > threshold:
            out.append(Stale(name, newest, age, threshold, name in counting))
    return tuple(out)
