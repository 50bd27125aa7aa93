"""A validated scenario tree in the numeric form the engines use."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from scenariocast.errors import Problem, QueryError, did_you_mean
from scenariocast.spec.model import Combine, Indicator, Outcome, ScenarioTree, Source
from scenariocast.spec.time import Steps

FloatArray = NDArray[np.float64]

#: How the evidence names a reading of a node among the indicators: ``node:rationing``.
NODE_PREFIX = "node:"


@dataclass(frozen=True)
class CompiledNode:
    """A node with its conditional probability table as an array.

    ``cpt`` has one axis per parent (in ``parents`` order) and a last axis for the node's states;
    for a dynamic node it is the distribution at the horizon's first step. ``transition`` (dynamic
    nodes) has axes ``(state at t, *parents at t+1, state at t+1)``. ``calendar`` (calendar
    nodes) holds the state index of each month, January first; their ``cpt`` is the state of the
    horizon's first step.
    """

    name: str
    states: tuple[str, ...]
    parents: tuple[str, ...]
    cpt: FloatArray
    strength: float
    kind: str = "static"  # static, dynamic or calendar
    transition: FloatArray | None = None
    calendar: tuple[int, ...] | None = None

    @property
    def card(self) -> int:
        """Number of states."""
        return len(self.states)

    @property
    def varies(self) -> bool:
        """Whether the node's state can differ from one step to the next (dynamic or calendar)."""
        return self.kind != "static"


@dataclass(frozen=True)
class CompiledIndicator:
    """An indicator with its likelihood parameters as arrays over its nodes' states.

    Each array in ``params`` has one axis per node in ``scope``; for a categorical indicator the
    array ``probs`` has a last axis over ``spec.categories``.
    """

    name: str
    spec: Indicator
    scope: tuple[str, ...]
    params: Mapping[str, FloatArray]


@dataclass(frozen=True)
class Tree:
    """A scenario tree that passed validation, ready for the engines."""

    id: str
    path: Path | None
    file_hash: str
    spec: ScenarioTree
    nodes: Mapping[str, CompiledNode]  # in topological order: parents before children
    indicators: Mapping[str, CompiledIndicator]
    outcomes: Mapping[str, Outcome] = field(default_factory=dict)
    steps: Steps | None = None  # the horizon's steps, when the tree declares a horizon
    #: what loading changed without refusing the file (rows renormalised), one note each
    notes: tuple[Problem, ...] = ()

    @functools.cached_property
    def readable(self) -> Mapping[str, CompiledIndicator]:
        """What readings can be of: the indicators, and each node as ``node:NAME``.

        Calendar nodes are set by the calendar and take no readings.
        A reading of a node is read as a categorical indicator of the node whose category is
        the state reported, with probability 1 where the node is in that state and 0 where it
        is not; its source's reliability then makes it a report like any other
        (docs/evidence.md, "Readings of a node").
        """
        out: dict[str, CompiledIndicator] = dict(self.indicators)
        for name, node in self.nodes.items():
            if node.kind == "calendar":
                continue
            spec = Indicator.model_construct(
                description=f"A report of the state of node {name}.",
                kind="categorical",
                depends_on=[name],
                categories=list(node.states),
                combine=Combine(rule="all"),
                params=[],
            )
            probs = np.eye(node.card, dtype=np.float64)
            out[NODE_PREFIX + name] = CompiledIndicator(
                NODE_PREFIX + name, spec, (name,), {"probs": probs}
            )
        return out

    def label(self, node: str) -> str:
        """The node's label, or its id."""
        return self.spec.nodes[node].label or node

    def state_label(self, node: str, state: str) -> str:
        """The state's label, or its id."""
        labels = self.spec.nodes[node].state_labels
        return (labels or {}).get(state, state)

    @property
    def is_dynamic(self) -> bool:
        """Whether any node changes from step to step (a dynamic or calendar node)."""
        return any(n.varies for n in self.nodes.values())

    def varies(self, names: Sequence[str]) -> bool:
        """Whether any of the nodes ``names`` changes from step to step."""
        return any(self.nodes[n].varies for n in names)

    @property
    def sources(self) -> Mapping[str, Source]:
        """The tree's sources by name."""
        return self.spec.sources

    def node(self, name: str) -> CompiledNode:
        """The node called ``name``; a :class:`QueryError` with a hint if there is none."""
        try:
            return self.nodes[name]
        except KeyError:
            raise QueryError(
                f"tree '{self.id}' has no node '{name}'{did_you_mean(name, self.nodes)}"
            ) from None

    def state_index(self, node: str, state: str) -> int:
        """Index of ``state`` within ``node``'s states."""
        n = self.node(node)
        try:
            return n.states.index(state)
        except ValueError:
            raise QueryError(
                f"node '{node}' has no state '{state}'{did_you_mean(state, n.states)}; "
                f"its states are {', '.join(n.states)}"
            ) from None


def combos(names: Sequence[str], states: Mapping[str, Sequence[str]]) -> Iterator[dict[str, str]]:
    """Every combination of states of ``names``, the last name varying fastest."""
    for values in itertools.product(*(states[n] for n in names)):
        yield dict(zip(names, values, strict=True))
