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

import bisect
import datetime as dt
import functools
import itertools
import math
import operator
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from scenariocast.bulk import bulk
from scenariocast.errors import QueryError, ScenariocastError
from scenariocast.evidence.likelihood import transform
from scenariocast.evidence.nodes import Finding
from scenariocast.evidence.readings import Reading
from scenariocast.evidence.values import parse_value
from scenariocast.spec.tree import NODE_PREFIX, Tree


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

    ``kind`` is one of ``retracted``, ``after_as_of``, ``unknown_indicator``, ``unknown_node``,
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

    @functools.cached_property
    def reading_ids(self) -> tuple[int, ...]:
        """Ids of every reading that counts, including folded ones."""
        observations = self.observations
        if not any(map(_folded, observations)):
            return tuple(map(_observation_id, observations))
        out: list[int] = []
        for o in observations:
            out.append(o.reading.id)
            if o.folded:
                out.extend(o.folded)
        return tuple(out)


def _find(parent: dict[int, int], i: int) -> int:
    """Union-find root of ``i`` (with path halving)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _order_key(r: Reading) -> tuple[dt.date, dt.date, int]:
    return (r.observed.end, r.observed.start, r.id)


_by_id = operator.attrgetter("id")
_of_node = operator.attrgetter("of_node")


def _key(r: Reading) -> str:
    """What a reading is of, as the tree reads it: the indicator, or ``node:NAME``."""
    return NODE_PREFIX + r.indicator if r.kind == "node" else r.indicator


_end = operator.attrgetter("observed.end")


def _id_then_order(r: Reading) -> tuple[int, dt.date, dt.date]:
    return (r.id, r.observed.end, r.observed.start)


_Candidate = tuple[Reading, tuple[str, str]]


def _read(
    tree: Tree, readings: Sequence[Reading], as_of: dt.date
) -> tuple[list[Excluded], dict[str, list[Reading]], dict[int, float]]:
    """Rule 1: what does not count, and the value of every reading that may.

    Each distinct (indicator, text) is parsed and transformed once (``read_as``, on a
    one-element array as before, so that each value is the very same number whatever SIMD
    path NumPy would take for a longer array). Exclusions come in the order of ``readings``.
    """
    indicators = tree.readable
    raws: dict[tuple[str, str], float | str] = {}  # (indicator, text) -> raw value or problem
    excluded: list[Excluded] = []
    candidates: list[_Candidate] = []
    _classify(tree, readings, as_of, raws, excluded.append, candidates.append)

    # each distinct text's value through its indicator's read_as transform
    values: dict[tuple[str, str], float] = {}
    for key, raw in raws.items():
        if isinstance(raw, str):
            continue
        read_as = indicators[key[0]].spec.read_as
        if read_as is None or read_as.transform == "identity":
            values[key] = raw
        else:
            values[key] = float(transform(read_as, np.array([raw]))[0])

    by_indicator: dict[str, list[Reading]] = defaultdict(list)
    parsed: dict[int, float] = {}
    if all(map(math.isfinite, values.values())):
        for r, key in candidates:
            parsed[r.id] = values[key]
            by_indicator[key[0]].append(r)
        return excluded, by_indicator, parsed

    # a transform left some value without a number (the log of 0): those readings are
    # excluded too, in their place among the others
    trail: list[Excluded | _Candidate] = []
    _classify(tree, readings, as_of, raws, trail.append, trail.append)
    excluded = []
    for item in trail:
        if isinstance(item, Excluded):
            excluded.append(item)
            continue
        r, key = item
        value = values[key]
        if not math.isfinite(value):
            excluded.append(
                Excluded(r, "value not readable after the read_as transform", "unreadable")
            )
            continue
        parsed[r.id] = value
        by_indicator[key[0]].append(r)
    return excluded, by_indicator, parsed


def _classify(
    tree: Tree,
    readings: Sequence[Reading],
    as_of: dt.date,
    raws: dict[tuple[str, str], float | str],
    exclude: Callable[[Excluded], None],
    take: Callable[[_Candidate], None],
) -> None:
    """Pass each reading, in order, to ``exclude`` (with why) or to ``take``.

    A reading taken comes with its key in ``raws``, which gains the parsed value (or the
    problem) of each distinct (indicator, text).
    """
    indicators = tree.readable
    sources = tree.sources
    for r in readings:
        if r.retracted:
            exclude(
                Excluded(r, f"retracted: {r.retraction_reason or 'no reason given'}", "retracted")
            )
            continue
        if r.observed.end > as_of:
            exclude(Excluded(r, f"observed after the as-of date {as_of}", "after_as_of"))
            continue
        name = _key(r)
        ind = indicators.get(name)
        if ind is None:
            if r.kind == "node":
                exclude(
                    Excluded(r, f"tree '{tree.id}' has no node '{r.indicator}'", "unknown_node")
                )
            else:
                exclude(
                    Excluded(r, f"tree '{tree.id}' has no indicator '{name}'", "unknown_indicator")
                )
        elif r.source not in sources:
            exclude(
                Excluded(
                    r, f"tree '{tree.id}' does not define source '{r.source}'", "unknown_source"
                )
            )
        else:
            key = (name, r.value)
            raw = raws.get(key)
            if raw is None:
                try:
                    raw = parse_value(ind.spec.kind, r.value, ind.spec.categories)
                except ScenariocastError as exc:
                    raw = f"value not readable: {exc}"
                raws[key] = raw
            if isinstance(raw, str):
                exclude(Excluded(r, raw, "unreadable"))
            else:
                take((r, key))


@bulk
def select_evidence_reference(tree: Tree, readings: Sequence[Reading], as_of: dt.date) -> Evidence:
    """:func:`select_evidence` one reading at a time, rule by rule, as the rules read.

    The reference the faster :func:`select_evidence` is tested against (they give equal
    evidence for any readings).
    """
    excluded, by_indicator, parsed = _read(tree, readings, as_of)

    observations: list[Observation] = []
    folds = False  # whether any reading is folded into another (rules 2 and 3)
    new = object.__new__
    steps = tree.steps
    reliability = {name: src.mean_reliability for name, src in tree.sources.items()}
    for name, rows in by_indicator.items():
        spec = tree.readable[name].spec
        rule = spec.combine_rule()
        timed = steps is not None and tree.varies(tree.readable[name].scope)
        step_at: dict[dt.date, int] = {}

        def step_of(
            r: Reading, timed: bool = timed, step_at: dict[dt.date, int] = step_at
        ) -> int | None:
            if not timed or steps is None:
                return None
            end = r.observed.end
            step = step_at.get(end)
            if step is None:
                step = step_at[end] = steps.index(end)
            return step

        # 2. identical re-entries count once (the first entered stands); readings in the order
        # entered, and readings given twice with one id in the order observed
        firsts: dict[tuple[object, ...], Reading] = {}
        folded: dict[int, list[int]] = defaultdict(list)
        kept: list[Reading] = []
        unique = len({r.id for r in rows}) == len(rows)
        for r in sorted(rows, key=_by_id if unique else _id_then_order):
            key = (parsed[r.id], r.observed.text, r.location, r.source, r.unit)
            first = firsts.get(key)
            if first is not None:
                folded[first.id].append(r.id)
                excluded.append(
                    Excluded(r, f"same reading as #{first.id}: counted once", "repeated")
                )
            else:
                firsts[key] = r
                kept.append(r)

        # 3. linked readings report one event: keep the most reliable, fold the others
        if any(r.links is not None for r in kept):
            representatives = _linked(kept, folded, reliability, excluded)
        else:  # no links: each reading is its own event
            representatives = kept
        folds = folds or any(folded.values())

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
        append = observations.append
        for r in counted:
            also = folded.get(r.id) if folded else None
            # the fields set at once in its __dict__: a frozen dataclass's __init__ sets them
            # one by one through object.__setattr__, at twice the cost over many readings
            o = new(Observation)
            o.__dict__.update(
                reading=r,
                indicator=name,
                value=parsed[r.id],
                reliability=reliability[r.source],
                folded=tuple(sorted(also)) if also else (),
                step=step_of(r) if timed else None,
            )
            append(o)
    if len(by_indicator) > 1:  # each indicator's observations are in order already
        keys = [_order_key(o.reading) for o in observations]
        order = sorted(range(len(observations)), key=keys.__getitem__)
        observations = [observations[i] for i in order]
    excluded.sort(key=lambda e: e.reading.id)
    return Evidence(
        observations=tuple(observations),
        excluded=tuple(excluded),
        as_of=as_of,
        reports=_group_reports(tree, observations, in_order=True, folds=folds),
        stale=_stale(tree, by_indicator, observations, as_of),
    )


_retracted = operator.attrgetter("retracted")
_indicator = operator.attrgetter("indicator")
_source = operator.attrgetter("source")
_value = operator.attrgetter("value")
_links = operator.attrgetter("links")
_location = operator.attrgetter("location")
_unit = operator.attrgetter("unit")
_report = operator.attrgetter("report")
_observed = operator.attrgetter("observed")
_start = operator.attrgetter("start")
_text = operator.attrgetter("text")
_day_end = operator.attrgetter("end")


def _pick[T](column: Sequence[T], index: Sequence[int]) -> list[T]:
    """``[column[i] for i in index]``, in C."""
    if not index:
        return []
    if len(index) == 1:
        return [column[index[0]]]
    return list(operator.itemgetter(*index)(column))


def _observed_sort(
    index: Sequence[int], ends: Sequence[int], starts: Sequence[int], ids: Sequence[int]
) -> list[int]:
    """``index`` in observed order: by last day, first day, then id (days as ordinals)."""
    if len(index) < 2:
        return list(index)
    at = np.asarray(index, dtype=np.int64)
    order = np.lexsort(
        (
            np.asarray(_pick(ids, index), dtype=np.int64),
            np.asarray(_pick(starts, index), dtype=np.int64),
            np.asarray(_pick(ends, index), dtype=np.int64),
        )
    )
    out: list[int] = at[order].tolist()
    return out


def no_evidence(as_of: dt.date) -> Evidence:
    """What :func:`select_evidence` gives for no reading (nothing counts, nothing is stale)."""
    empty = Evidence(observations=(), excluded=(), as_of=as_of)
    empty.__dict__["reading_ids"] = ()
    return empty


@bulk
def select_evidence(tree: Tree, readings: Sequence[Reading], as_of: dt.date) -> Evidence:
    """Apply the rules above to ``readings`` for ``tree`` as of ``as_of``.

    The rules are applied a column at a time (every reading's indicator, source, dates and
    value, read once in the order given, which is the order the readings lie in memory), and
    the one-reading-at-a-time steps (repeats, links, ``latest``) run only when there is
    something for them to do. The observations are made in their final order, so that what
    follows walks them in the order they lie in memory. The evidence is equal to what
    :func:`select_evidence_reference` gives: readings that give one id twice, and values that
    cannot be read, are left to it.
    """
    readings = list(readings)
    if not readings:
        return no_evidence(as_of)
    indicators = tree.readable
    sources = tree.sources
    inds = list(map(_indicator, readings))
    if any(map(_of_node, readings)):  # readings of nodes are read as node:NAME
        inds = [_key(r) for r in readings]
    srcs = list(map(_source, readings))
    dates = list(map(_observed, readings))
    ends_d = list(map(_day_end, dates))
    excluded: list[Excluded] = []
    if (
        not any(map(_retracted, readings))
        and (not ends_d or max(ends_d) <= as_of)
        and all(map(indicators.__contains__, set(inds)))
        and all(map(sources.__contains__, set(srcs)))
    ):
        cands, names = readings, inds
    else:
        ok = [
            not r.retracted and e <= as_of and i in indicators and s in sources
            for r, e, i, s in zip(readings, ends_d, inds, srcs, strict=True)
        ]
        _classify(
            tree,
            list(itertools.compress(readings, [not k for k in ok])),
            as_of,
            {},
            excluded.append,
            _never,
        )
        cands = list(itertools.compress(readings, ok))
        names = list(itertools.compress(inds, ok))
        srcs = list(itertools.compress(srcs, ok))
        dates = list(itertools.compress(dates, ok))
        ends_d = list(itertools.compress(ends_d, ok))
    n = len(cands)
    ids = list(map(_by_id, cands))
    if len(set(ids)) != n:
        return select_evidence_reference(tree, readings, as_of)

    # each distinct (indicator, text) parsed and transformed once, as _read does
    keys = list(zip(names, map(_value, cands), strict=True))
    values: dict[tuple[str, str], float] = {}
    for key in dict.fromkeys(keys):
        spec = indicators[key[0]].spec
        try:
            raw = parse_value(spec.kind, key[1], spec.categories)
        except ScenariocastError:
            return select_evidence_reference(tree, readings, as_of)
        read_as = spec.read_as
        if read_as is None or read_as.transform == "identity":
            values[key] = raw
        else:
            values[key] = float(transform(read_as, np.array([raw]))[0])
    if not all(map(math.isfinite, values.values())):
        return select_evidence_reference(tree, readings, as_of)
    parsed = list(map(values.__getitem__, keys))
    del keys

    # the days as numbers, for sorting
    distinct = dict(zip(map(id, dates), dates, strict=True))  # readings share their dates
    ordinal = {d: d.toordinal() for d in {*ends_d, *map(_start, distinct.values())}}
    ends = list(map(ordinal.__getitem__, ends_d))
    first_day = {key: ordinal[d.start] for key, d in distinct.items()}
    starts = list(map(first_day.__getitem__, map(id, dates)))
    texts = list(map(_text, dates))
    position = {rid: k for k, rid in enumerate(ids)}

    order = list(dict.fromkeys(names))
    by_indicator: dict[str, list[int]] = {}
    if len(order) == 1:
        by_indicator[order[0]] = list(range(n))
    else:
        for name in order:
            by_indicator[name] = [k for k, i in enumerate(names) if i == name]

    counted_all: list[int] = []
    folded_of: dict[int, tuple[int, ...]] = {}
    steps_of: dict[int, int | None] = {}
    steps = tree.steps
    reliability = {name: src.mean_reliability for name, src in sources.items()}
    locations: list[str | None] | None = None
    for name, index in by_indicator.items():
        spec = indicators[name].spec
        rule = spec.combine_rule()
        timed = steps is not None and tree.varies(indicators[name].scope)
        step_at: dict[dt.date, int] = {}

        def step_of(
            r: Reading, timed: bool = timed, step_at: dict[dt.date, int] = step_at
        ) -> int | None:
            if not timed or steps is None:
                return None
            end = r.observed.end
            step = step_at.get(end)
            if step is None:
                step = step_at[end] = steps.index(end)
            return step

        # 2. identical re-entries count once (the first entered stands), in the order entered
        row_ids = _pick(ids, index)
        if not all(map(operator.lt, row_ids, itertools.islice(row_ids, 1, None))):
            index = sorted(index, key=ids.__getitem__)
        if locations is None:
            locations = list(map(_location, cands))
        folded: dict[int, list[int]] = defaultdict(list)
        kept = index
        if len(set(_pick(locations, index))) != len(index):  # else no two rows are the same
            rows = _pick(cands, index)
            same = list(
                zip(
                    _pick(parsed, index),
                    _pick(texts, index),
                    _pick(locations, index),
                    _pick(srcs, index),
                    map(_unit, rows),
                    strict=True,
                )
            )
            if len(set(same)) != len(same):
                firsts: dict[tuple[object, ...], Reading] = {}
                kept = []
                for k, r, twin in zip(index, rows, same, strict=True):
                    first = firsts.get(twin)
                    if first is not None:
                        folded[first.id].append(r.id)
                        excluded.append(
                            Excluded(r, f"same reading as #{first.id}: counted once", "repeated")
                        )
                    else:
                        firsts[twin] = r
                        kept.append(k)

        # 3. linked readings report one event: keep the most reliable, fold the others
        kept_rows = _pick(cands, kept)
        if any(link is not None for link in map(_links, kept_rows)):
            chosen = _linked(kept_rows, folded, reliability, excluded)
            kept = [position[r.id] for r in chosen]

        # 4. the combine rule
        counted = _observed_sort(kept, ends, starts, ids)
        for days, kind in ((rule.max_age_days, "too_old"), (rule.window_days, "outside_window")):
            if days is None or not counted:
                continue
            oldest = (as_of - dt.timedelta(days=days)).toordinal()
            cut = bisect.bisect_left(_pick(ends, counted), oldest)
            for k in counted[:cut]:
                excluded.append(
                    Excluded(
                        cands[k], f"older than {days} days before the as-of date ({as_of})", kind
                    )
                )
            counted = counted[cut:]
        if rule.rule == "latest":
            winners = {
                r.id for r in _latest(_pick(cands, counted), rule.per, step_of, steps, excluded)
            }
            counted = [k for k in counted if ids[k] in winners]
        if any(folded.values()):
            for k in counted:
                if also := folded.get(ids[k]):
                    folded_of[k] = tuple(sorted(also))
        if timed:
            for k in counted:
                steps_of[k] = step_of(cands[k])
        counted_all += counted

    if len(by_indicator) > 1:
        counted_all = _observed_sort(counted_all, ends, starts, ids)
    excluded.sort(key=_excluded_id)
    rows = _pick(cands, counted_all)
    obs_sources = _pick(srcs, counted_all)
    observations: list[Observation] = []
    append = observations.append
    new = object.__new__
    no_fold = () if not folded_of else None
    # each field set in the observation's own __dict__ (a frozen dataclass's __init__ sets
    # them one by one through object.__setattr__, at four times the cost)
    for k, r, name, value, source in zip(
        counted_all,
        rows,
        _pick(names, counted_all),
        _pick(parsed, counted_all),
        obs_sources,
        strict=True,
    ):
        o = new(Observation)
        d = o.__dict__
        d["reading"] = r
        d["indicator"] = name
        d["value"] = value
        d["reliability"] = reliability[source]
        d["folded"] = no_fold if no_fold is not None else folded_of.get(k, ())
        d["step"] = steps_of.get(k) if steps_of else None
        append(o)
    reports = _reports_of_columns(
        reliability,
        observations,
        obs_sources,
        _pick(texts, counted_all),
        _pick(list(map(_report, cands)), counted_all),
        _pick(ends_d, counted_all),
        _pick(ids, counted_all),
        [folded_of.get(k, ()) for k in counted_all] if folded_of else None,
    )
    usable = {name: _pick(cands, index) for name, index in by_indicator.items()}
    evidence = Evidence(
        observations=tuple(observations),
        excluded=tuple(excluded),
        as_of=as_of,
        reports=reports,
        stale=_stale(tree, usable, observations, as_of),
    )
    if not folded_of:  # the ids of the readings that count, known already (a cached property)
        evidence.__dict__["reading_ids"] = tuple(_pick(ids, counted_all))
    return evidence


def _reports_of_columns(
    reliability: Mapping[str, float],
    observations: Sequence[Observation],
    sources: Sequence[str],
    texts: Sequence[str],
    report_ids: Sequence[str | None],
    ends: Sequence[dt.date],
    ids: Sequence[int],
    folded: Sequence[tuple[int, ...]] | None,
) -> tuple[Report, ...]:
    """:func:`_group_reports` of observations in observed order, given their columns."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    if any(report_ids):
        for k, (source, text, rep) in enumerate(zip(sources, texts, report_ids, strict=True)):
            group = (source, "id", rep) if rep else (source, "date", text)
            members = groups.get(group)
            if members is None:
                groups[group] = [k]
            else:
                members.append(k)
    else:
        by_date: dict[tuple[str, str], list[int]] = defaultdict(list)
        for k, pair in enumerate(zip(sources, texts, strict=True)):
            by_date[pair].append(k)
        groups = {(source, "date", text): members for (source, text), members in by_date.items()}
    keyed = []
    for (source, kind, key), members in groups.items():
        report = Report(
            source=source,
            key=key,
            reliability=reliability[source],
            observations=tuple(_pick(observations, members)),
        )
        last = ends[members[-1]]
        first = ids[members[0]] if kind == "date" else min(_pick(ids, members))
        if folded is not None:
            extra = [i for k in members for i in folded[k]]
            if extra:
                first = min(first, *extra)
        keyed.append(((last, first), report))
    keyed.sort(key=operator.itemgetter(0))
    return tuple(report for _, report in keyed)


_excluded_id = operator.attrgetter("reading.id")


def _never(_: object) -> None:  # pragma: no cover - only readings excluded are passed
    raise AssertionError("a reading excluded by rule 1 was taken")


def _latest(
    counted: list[Reading],
    per: Sequence[str],
    step_of: Callable[[Reading], int | None],
    steps: object,
    excluded: list[Excluded],
) -> list[Reading]:
    """Rule 4, ``latest``: the latest reading of each group (``per`` and step) stands."""

    def group(r: Reading) -> tuple[object, ...]:
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
                f" in the same step ({steps.label(step)})"  # type: ignore[attr-defined]
                if step is not None and steps is not None
                else ""
            )
            excluded.append(
                Excluded(
                    r,
                    f"superseded by #{w.id} ({w.observed}), the latest reading "
                    f"of the same {' and '.join(per)}{within}",
                    "superseded",
                )
            )
    return [r for r in counted if r.id in winners]


def _linked(
    kept: list[Reading],
    folded: dict[int, list[int]],
    reliability: Mapping[str, float],
    excluded: list[Excluded],
) -> list[Reading]:
    """Rule 3: one reading per cluster of linked readings, the most reliable; fold the rest."""
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
        best = max(members, key=lambda r: (reliability[r.source], -r.id))
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
    return representatives


def group_reports(tree: Tree, observations: Sequence[Observation]) -> tuple[Report, ...]:
    """The observations grouped into reports, ordered by last observed day (then first id).

    A report is the observations of one source with the same report id or, for readings that
    give none, the same observed date.
    """
    return _group_reports(tree, observations, in_order=False, folds=True)


def _group_reports(
    tree: Tree, observations: Sequence[Observation], *, in_order: bool, folds: bool
) -> tuple[Report, ...]:
    """:func:`group_reports`, told what is known of the observations.

    ``in_order``: they come in observed order (by last day, first day, id); ``folds``: some
    may have readings folded into them.
    """
    groups: dict[tuple[str, str, str], list[Observation]] = defaultdict(list)
    if any(map(_report_id, observations)):
        for o in observations:
            r = o.reading
            group = (r.source, "id", r.report) if r.report else (r.source, "date", r.observed.text)
            groups[group].append(o)
    else:  # by source and date alone (the keys made in C, which is faster by half)
        by_date: dict[tuple[str, str], list[Observation]] = defaultdict(list)
        for pair, o in zip(map(_source_and_date, observations), observations, strict=True):
            by_date[pair].append(o)
        groups = {(source, "date", text): members for (source, text), members in by_date.items()}
    reliability = {name: src.mean_reliability for name, src in tree.sources.items()}
    keyed = []
    for (source, kind, key), members in groups.items():
        report = Report(
            source=source,
            key=key,
            reliability=reliability[source],
            observations=tuple(members),
        )
        if in_order:
            # the last observation has the latest last day; the readings of one date come
            # in the order of their ids
            last = members[-1].reading.observed.end
            first = members[0].reading.id if kind == "date" else min(map(_observation_id, members))
        else:
            last = max(map(_observation_end, members))
            first = min(map(_observation_id, members))
        if folds and any(map(_folded, members)):  # the report stands for readings folded in
            first = min(first, *(i for o in members for i in o.folded))
        keyed.append(((last, first), report))
    keyed.sort(key=operator.itemgetter(0))
    return tuple(report for _, report in keyed)


_report_id = operator.attrgetter("reading.report")
_source_and_date = operator.attrgetter("reading.source", "reading.observed.text")
_observation_end = operator.attrgetter("reading.observed.end")
_observation_id = operator.attrgetter("reading.id")
_folded = operator.attrgetter("folded")


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
        newest = max(map(_end, rows))
        age = (as_of - newest).days
        threshold = tree.indicators[name].spec.stale_days()
        if age > threshold:
            out.append(Stale(name, newest, age, threshold, name in counting))
    return tuple(out)


def refuse_node_readings(evidence: Evidence) -> None:
    """A :class:`QueryError` if readings of nodes count: the PyMC engine does not take them.

    Its model learns the tree's numbers from readings of indicators; a reading of a node would
    need the node's state in the sampled model, which it does not hold.
    """
    nodes = sorted({o.reading.indicator for o in evidence.observations if o.reading.of_node})
    if nodes:
        n = sum(1 for o in evidence.observations if o.reading.of_node)
        raise QueryError(
            f"the PyMC engine does not take readings of nodes ({n} of {', '.join(nodes)} count "
            "in this forecast): forecast with --engine exact, or as of a day before them"
        )
