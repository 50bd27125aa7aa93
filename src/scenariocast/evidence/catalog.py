"""Which readings the ledger accepts: the indicators and sources of the scenario trees.

Readings belong to indicators, not to trees: an indicator defined in several trees is one
indicator, and the trees must agree on what it is (its kind and categories).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from scenariocast.errors import Problem, QueryError, ReadingError, SpecError, did_you_mean
from scenariocast.evidence.values import canonical_value, parse_value
from scenariocast.spec.load import load_tree
from scenariocast.spec.tree import Tree

_LOG_TRANSFORMS = ("log", "log_change")


@dataclass(frozen=True)
class IndicatorInfo:
    """What a reading of an indicator must look like, and the trees that define it."""

    name: str
    kind: str
    categories: tuple[str, ...] | None
    unit: str | None
    trees: tuple[str, ...]
    #: (tree id, transform) for each tree that reads the value through a logarithm
    log_reads: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Question:
    """An outcome as one tree asks it: open from ``opens`` (``None``: always) to ``resolve_by``.

    A tree with a horizon opens its questions on the horizon's first day; a tree without one
    has no opening day.
    """

    outcome: str
    tree: str
    opens: dt.date | None
    resolve_by: dt.date

    def holds(self, day: dt.date) -> bool:
        """Whether a resolution on ``day`` answers this question."""
        return (self.opens is None or self.opens <= day) and day <= self.resolve_by

    @property
    def period(self) -> str:
        """``2026-01-01 to 2026-12-31`` or ``by 2026-12-31``, for messages."""
        if self.opens is None:
            return f"by {self.resolve_by}"
        return f"from {self.opens} to {self.resolve_by}"


def question_of(tree: Tree, outcome: str) -> Question:
    """The question ``tree`` asks with ``outcome`` (which it must have)."""
    o = tree.outcomes[outcome]
    opens = tree.steps.start if tree.steps is not None else None
    return Question(outcome, tree.id, opens, o.resolve_by)


class Catalog:
    """The indicators and sources that readings may name, and the outcomes resolutions may.

    Parameters
    ----------
    indicators
        Indicator name -> :class:`IndicatorInfo`.
    sources
        Source name -> the ids of the trees that define it.
    questions
        Outcome id -> the question each tree that has it asks.
    nodes
        Node name -> tree id -> the node's states in that tree (nodes a reading may name:
        every node but calendar ones).
    """

    def __init__(
        self,
        indicators: Mapping[str, IndicatorInfo],
        sources: Mapping[str, tuple[str, ...]],
        questions: Mapping[str, tuple[Question, ...]] | None = None,
        nodes: Mapping[str, Mapping[str, tuple[str, ...]]] | None = None,
    ) -> None:
        self._indicators = MappingProxyType(dict(indicators))
        self._sources = MappingProxyType(dict(sources))
        self._questions = MappingProxyType(dict(questions or {}))
        self._nodes = MappingProxyType({k: dict(v) for k, v in (nodes or {}).items()})

    @property
    def nodes(self) -> Mapping[str, Mapping[str, tuple[str, ...]]]:
        """Node name -> tree id -> its states there (the nodes a reading may name)."""
        return self._nodes

    def check_node(self, node: str, state: str, source: str) -> None:
        """Check that a reading of a node names a known node, one of its states, a known source.

        Raises
        ------
        ReadingError
            For an unknown node, state or source, with the closest known name.
        """
        trees = self._nodes.get(node)
        if trees is None:
            raise ReadingError(
                f"unknown node '{node}'{did_you_mean(node, self._nodes)}"
                + _known("nodes", self._nodes)
            )
        states = list(dict.fromkeys(s for states in trees.values() for s in states))
        if state not in states:
            raise ReadingError(
                f"node '{node}' has no state '{state}'{did_you_mean(state, states)}; "
                f"its states are {', '.join(states)}"
            )
        if source not in self._sources:
            raise ReadingError(
                f"unknown source '{source}'{did_you_mean(source, self._sources)}"
                + _known("sources", self._sources)
            )

    def trees_reading_node(self, node: str, state: str, source: str) -> tuple[str, ...]:
        """The ids of the trees with ``node`` (holding ``state``) that define ``source``."""
        with_source = set(self._sources.get(source, ()))
        trees = self._nodes.get(node, {})
        return tuple(t for t, states in trees.items() if state in states and t in with_source)

    @property
    def questions(self) -> Mapping[str, tuple[Question, ...]]:
        """Outcome id -> the question each tree that has it asks."""
        return self._questions

    def resolution_window(self, outcome: str, day: dt.date) -> tuple[dt.date | None, dt.date]:
        """The period of the questions that a resolution of ``outcome`` on ``day`` answers.

        Two resolutions of one outcome in this period would answer the same question twice.

        Raises
        ------
        QueryError
            If no tree has the outcome (with the closest known id), or none asks it over a
            period holding ``day``.
        """
        asked = self._questions.get(outcome)
        if not asked:
            raise QueryError(
                f"unknown outcome '{outcome}'{did_you_mean(outcome, self._questions)}"
                + _known("outcomes", self._questions)
            )
        holding = [q for q in asked if q.holds(day)]
        if not holding:
            shown = "; ".join(f"tree '{q.tree}' asks it {q.period}" for q in asked[:4])
            raise QueryError(
                f"no tree asks '{outcome}' over a period holding {day} ({shown}): a resolution "
                "names the day the question was settled, within its period"
            )
        starts = [q.opens for q in holding]
        lo = None if any(d is None for d in starts) else min(d for d in starts if d is not None)
        return lo, max(q.resolve_by for q in holding)

    @property
    def indicators(self) -> Mapping[str, IndicatorInfo]:
        """Indicator name -> :class:`IndicatorInfo`."""
        return self._indicators

    @property
    def sources(self) -> Mapping[str, tuple[str, ...]]:
        """Source name -> the ids of the trees that define it."""
        return self._sources

    @classmethod
    def from_trees(cls, trees: Iterable[Tree]) -> Catalog:
        """The union of the trees' indicators and sources.

        Raises
        ------
        SpecError
            If two trees define one indicator with a different kind or different categories
            (one problem per disagreement, naming both trees).
        """
        indicators: dict[str, IndicatorInfo] = {}
        sources: dict[str, tuple[str, ...]] = {}
        questions: dict[str, tuple[Question, ...]] = {}
        nodes: dict[str, dict[str, tuple[str, ...]]] = {}
        problems: list[Problem] = []
        for tree in trees:
            for name, node in tree.nodes.items():
                if node.kind != "calendar":
                    nodes.setdefault(name, {})[tree.id] = tuple(node.states)
            for oid in tree.outcomes:
                questions[oid] = (*questions.get(oid, ()), question_of(tree, oid))
            where = str(tree.path) if tree.path is not None else None
            for name, ind in tree.spec.indicators.items():
                cats = tuple(ind.categories) if ind.categories is not None else None
                transform = ind.read_as.transform if ind.read_as is not None else "identity"
                logs = ((tree.id, transform),) if transform in _LOG_TRANSFORMS else ()
                known = indicators.get(name)
                if known is None:
                    indicators[name] = IndicatorInfo(
                        name, ind.kind, cats, ind.unit, (tree.id,), logs
                    )
                    continue
                if known.kind != ind.kind or known.categories != cats:
                    theirs = _describe(known.kind, known.categories)
                    ours = _describe(ind.kind, cats)
                    problems.append(
                        Problem(
                            f"indicator '{name}' is {ours} in tree '{tree.id}' but {theirs} "
                            f"in tree '{known.trees[0]}'; one indicator must mean one thing",
                            file=where,
                            path=("indicators", name),
                        )
                    )
                    continue
                indicators[name] = IndicatorInfo(
                    name,
                    known.kind,
                    known.categories,
                    known.unit or ind.unit,
                    (*known.trees, tree.id),
                    (*known.log_reads, *logs),
                )
            for src in tree.sources:
                sources[src] = (*sources.get(src, ()), tree.id)
        if problems:
            raise SpecError(problems, subject="scenario trees disagree")
        return cls(indicators, sources, questions, nodes)

    @classmethod
    def from_dir(cls, path: str | Path) -> Catalog:
        """Load every ``*.yaml`` directly in the folder ``path`` (not its subfolders).

        Raises
        ------
        ReadingError
            If the folder holds no scenario tree.
        SpecError
            If a tree does not validate, or two trees disagree on an indicator.
        """
        folder = Path(path)
        files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
        files = [f for f in files if f.is_file()]
        if not files:
            raise ReadingError(f"no scenario trees in {folder} to check readings against")
        return cls.from_trees(load_tree(f) for f in files)

    def check(self, indicator: str, value: str, source: str) -> None:
        """Check that a reading names a known indicator and source and has a valid value.

        A valid value is one every tree that defines the indicator can read: of its kind, at
        most 1e15 in size, and > 0 where a tree reads it through a logarithm (``log``,
        ``log_change``).

        Raises
        ------
        ReadingError
            For an unknown indicator or source (with the closest known name), or a value that
            the indicator cannot read (prefixed with the indicator's name).
        """
        info = self._indicators.get(indicator)
        if info is None:
            raise ReadingError(
                f"unknown indicator '{indicator}'{did_you_mean(indicator, self._indicators)}"
                + _known("indicators", self._indicators)
            )
        if source not in self._sources:
            raise ReadingError(
                f"unknown source '{source}'{did_you_mean(source, self._sources)}"
                + _known("sources", self._sources)
            )
        try:
            number = parse_value(info.kind, value, info.categories)
        except ReadingError as exc:
            raise ReadingError(f"{indicator}: {exc}") from None
        if number <= 0 and info.log_reads:
            tree_id, transform = info.log_reads[0]
            raise ReadingError(
                f"{indicator}: value '{value.strip()}' cannot be read: tree '{tree_id}' reads "
                f"{indicator} as {transform} (a logarithm of the value), which needs a value > 0"
            )

    def canonical(self, indicator: str, value: str) -> str:
        """The value as the indicator reads it (:func:`canonical_value`).

        The text stripped when the indicator is unknown or cannot read it.
        """
        info = self._indicators.get(indicator)
        if info is None:
            return value.strip()
        try:
            return canonical_value(info.kind, value, info.categories)
        except ReadingError:
            return value.strip()

    def trees_reading(self, indicator: str, source: str) -> tuple[str, ...]:
        """The ids of the trees that define both ``indicator`` and ``source``.

        A reading whose indicator and source no single tree defines counts in no forecast.
        """
        info = self._indicators.get(indicator)
        if info is None:
            return ()
        with_source = set(self._sources.get(source, ()))
        return tuple(t for t in info.trees if t in with_source)


def _describe(kind: str, categories: tuple[str, ...] | None) -> str:
    if categories is None:
        return kind
    return f"{kind} ({', '.join(categories)})"


def _known(what: str, names: Iterable[str]) -> str:
    listed = sorted(names)
    if not listed:
        return f"; the scenario trees define no {what}"
    if len(listed) > 12:
        return ""
    return f"; known {what}: {', '.join(listed)}"
