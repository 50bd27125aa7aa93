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
   the latest reading of each group (by source and location by default); ``max_age_days``
   keeps only readings observed within that many days of the as-of date, and ``window_days``
   only those within that many days of the indicator's newest reading.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scenariocast.errors import ScenariocastError
from scenariocast.evidence.likelihood import transform
from scenariocast.evidence.readings import Reading
from scenariocast.evidence.values import parse_value
from scenariocast.spec.tree import Tree


@dataclass(frozen=True)
class Observation:
    """One piece of evidence: a reading that counts, with any readings folded into it."""

    reading: Reading
    indicator: str
    value: float  # after parsing and the indicator's read_as transform
    reliability: float
    folded: tuple[int, ...] = ()  # ids of linked or repeated readings counted with this one

    @property
    def ids(self) -> tuple[int, ...]:
        """Every reading id this observation stands for."""
        return (self.reading.id, *self.folded)


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
    """The evidence a tree uses, in the order the readings were observed."""

    observations: tuple[Observation, ...]
    excluded: tuple[Excluded, ...]
    as_of: dt.date

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
    for name, rows in by_indicator.items():
        spec = tree.indicators[name].spec
        rule = spec.combine_rule()
        rel = {r.id: tree.sources[r.source].reliability for r in rows}
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
        if rule.max_age_days is not None:
            oldest = as_of - dt.timedelta(days=rule.max_age_days)
            for r in counted:
                if r.observed.end < oldest:
                    excluded.append(
                        Excluded(
                            r,
                            f"older than {rule.max_age_days} days before the as-of date ({as_of})",
                            "too_old",
                        )
                    )
            counted = [r for r in counted if r.observed.end >= oldest]
        if rule.window_days is not None and counted:
            newest = max(r.observed.end for r in counted)
            start = newest - dt.timedelta(days=rule.window_days)
            for r in counted:
                if r.observed.end < start:
                    excluded.append(
                        Excluded(
                            r,
                            f"older than {rule.window_days} days before the newest "
                            f"{name} reading ({newest})",
                            "outside_window",
                        )
                    )
            counted = [r for r in counted if r.observed.end >= start]
        if rule.rule == "latest":
            latest: dict[tuple[object, ...], Reading] = {}
            for r in counted:  # sorted by observed date, so the last one wins
                latest[tuple(getattr(r, k) for k in rule.per)] = r
            winners = {r.id for r in latest.values()}
            for r in counted:
                if r.id not in winners:
                    group = tuple(getattr(r, k) for k in rule.per)
                    w = latest[group]
                    excluded.append(
                        Excluded(
                            r,
                            f"superseded by #{w.id} ({w.observed}), the latest reading "
                            f"of the same {' and '.join(rule.per)}",
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
                )
            )
    observations.sort(key=lambda o: _order_key(o.reading))
    excluded.sort(key=lambda e: e.reading.id)
    return Evidence(observations=tuple(observations), excluded=tuple(excluded), as_of=as_of)
