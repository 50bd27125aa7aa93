"""A scenario tree as factors over integer variables, unrolled over the steps of its horizon.

A static node is one variable. A dynamic node is one variable per step, from step ``lo`` to
step ``hi`` (step 0 is the horizon's first step; ``lo`` is negative when readings were observed
before the horizon, ``hi`` beyond its end when they were observed after it). A calendar node is
no variable at all: its state at each step is known, so every table that involves it is sliced
at that state.

The prior of a dynamic node (docs/evidence.md):

- at step 0, its ``probabilities`` given its parents at step 0;
- at step ``t + 1``, its transition given its own state at ``t`` and its parents at ``t + 1``;
- before the horizon (``t < 0``), the same chain read backwards: ``P(x_t = h | x_{t+1} = i, pa)
  = p0(h | pa) T(i | h, pa) / sum_h' p0(h' | pa) T(i | h', pa)`` with ``pa`` the dynamic and
  calendar parents at ``t + 1`` and ``p0`` the node's ``probabilities``; static parents, which
  describe the horizon, are averaged out of both sums, weighted by their prior as written, so
  that old readings reach them only through the state at the horizon's start. The prior at the
  horizon's start is always the table the forecaster wrote, however far back the readings go;
  for a node whose parents are all static and whose ``p0`` does not depend on them (as with one
  ``persistence`` for every state) this is exactly the chain run forwards from the past.

Nothing here enumerates paths: every factor spans at most one node, its parents and one step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scenariocast.engines.exact.junction import Factor, FloatArray, JunctionTree
from scenariocast.errors import QueryError, did_you_mean
from scenariocast.evidence.readings import ObservedDate
from scenariocast.spec.tree import Tree

#: A node at a step: (name, step) for a dynamic node, (name, None) for a static one.
NodeAt = tuple[str, int | None]


def _log(a: Any, xp: Any = np) -> Any:
    with np.errstate(divide="ignore"):
        return xp.log(a)


def reverse_kernel(
    cpt: Any,
    transition: Any,
    *,
    batched: bool = False,
    xp: Any = np,
    averaged: Sequence[int] = (),
    weights: FloatArray | None = None,
) -> Any:
    """``P(x_t | x_{t+1}, parents)`` with axes ``(x_t, *parents, x_{t+1})``.

    ``cpt`` has axes ``(*parents, x)`` and ``transition`` ``(x_t, *parents, x_{t+1})``, each with
    a last batch axis if ``batched``. The parents at positions ``averaged`` are averaged out with
    ``weights`` (their joint distribution, one axis each, and a last batch axis if batched too)
    and their axes dropped. Where no state
    leads to ``x_{t+1}`` (a zero denominator) the kernel falls back to ``cpt``: those
    combinations have prior probability zero. ``xp`` is the array module (NumPy, or
    ``pytensor.tensor`` for the PyMC engine's graph).
    """
    n_parents = cpt.ndim - 1 - int(batched)
    start = xp.moveaxis(cpt, n_parents, 0)  # (h, *parents[, batch])
    start = start[(slice(None),) * (1 + n_parents) + (None,)]  # (h, *parents, 1[, batch])
    joint = start * transition  # (h, *parents, i[, batch])
    if averaged:
        assert weights is not None
        shape = [1] * (joint.ndim)
        for k, j in enumerate(averaged):
            shape[1 + j] = weights.shape[k]
        if np.ndim(weights) > len(averaged):  # a batch of weights, on the last axis
            shape[-1] = weights.shape[-1]
        w = np.asarray(weights).reshape(shape)
        axes = tuple(1 + j for j in averaged)
        joint = (joint * w).sum(axis=axes)
        start = (start * w).sum(axis=axes)
    total = joint.sum(axis=0, keepdims=True)
    fallback = start + xp.zeros_like(joint)
    with np.errstate(invalid="ignore", divide="ignore"):
        return xp.where(total > 0, joint / xp.where(total > 0, total, 1.0), fallback)


@dataclass(frozen=True)
class Network:
    """The variables and prior factors of ``tree`` over steps ``lo`` to ``hi``."""

    tree: Tree
    lo: int = 0
    hi: int = 0
    var_of: dict[NodeAt, int] = field(default_factory=dict)
    names: tuple[NodeAt, ...] = ()
    cards: tuple[int, ...] = ()
    factors: tuple[Factor, ...] = ()
    _static_priors: dict[tuple[str, ...], FloatArray] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def build(cls, tree: Tree, lo: int = 0, hi: int | None = None) -> Network:
        """Unroll ``tree`` over steps ``lo..hi`` (default: the horizon; a static tree: none)."""
        steps = tree.steps
        if not tree.is_dynamic or steps is None:
            lo, hi = 0, 0
        else:
            lo = min(lo, 0)
            hi = max(steps.n - 1 if hi is None else hi, steps.n - 1)
        names: list[NodeAt] = []
        for name, node in tree.nodes.items():
            if node.kind == "static":
                names.append((name, None))
        for t in range(lo, hi + 1):
            for name, node in tree.nodes.items():
                if node.kind == "dynamic":
                    names.append((name, t))
        var_of = {nt: i for i, nt in enumerate(names)}
        cards = tuple(tree.nodes[n].card for n, _ in names)
        net = cls(tree, lo, hi, var_of, tuple(names), cards)
        object.__setattr__(net, "factors", tuple(net.prior_factors()))
        return net

    @property
    def timed(self) -> bool:
        """Whether the tree has nodes that change from step to step."""
        return self.tree.is_dynamic and self.tree.steps is not None

    def at(self, node: str, step: int | None) -> NodeAt:
        """The (node, step) key of ``node`` at ``step`` (static nodes have no step)."""
        return (node, step if self.tree.nodes[node].kind == "dynamic" else None)

    def place(self, axes: Sequence[NodeAt], table: Any) -> Factor | None:
        """A log-table with one axis per (node, step) in ``axes`` as a factor on variables.

        Axes of calendar nodes are sliced at the calendar's state for their step (any further
        axes of ``table`` are kept). ``None`` when no variable is left.
        """
        index, kept = self.placement(axes)
        if not kept:
            return None
        return (kept, table[index])

    @property
    def ranks(self) -> list[int]:
        """An elimination rank per variable (lower ranks are eliminated first).

        The steps are eliminated from both ends of the chain towards the horizon's first step:
        the past (read backward from the horizon) oldest first, then the horizon latest first,
        then the first step and the static nodes. Each end of the chain is where its leaves are
        (the oldest step of the past, the last step of the horizon), so a clique holds one
        step's variables and the few they are linked to; eliminating the horizon first to last
        instead makes every one of its cliques hold two whole steps (the North Korea tree's
        junction tree is 3.7 times larger that way). The two ends meet only at the first step,
        so no message of the past reaches the horizon's cliques: a batch of calibrations that
        differ only in readings of the past shares the horizon's messages, and a question about
        the horizon (an outcome's states masked at its steps) reuses the past's.
        """
        return [self.step_rank(step) for _, step in self.names]

    def step_rank(self, step: int | None) -> int:
        """The elimination rank of the variables of ``step`` (``None``: the static nodes)."""
        if step is None:
            return self.hi + 1
        if step < 0:
            return step  # the past, oldest first
        return self.hi if step == 0 else self.hi - step  # the horizon, last first

    @property
    def forward_ranks(self) -> list[int]:
        """Ranks eliminating the steps first to last, the static nodes after every step.

        For the most probable scenarios, whose end states are eliminated after every other
        variable: held to the end, they would join every clique of a horizon eliminated latest
        first.
        """
        return [self.hi + 1 if step is None else step for _, step in self.names]

    def static_prior(
        self, names: Sequence[str], tables: Mapping[str, tuple[Any, Any]] | None = None
    ) -> FloatArray:
        """The joint prior of static nodes ``names`` under the tree's numbers, one axis each.

        With ``tables`` (NumPy; node -> its table and transition, a table with a last batch
        axis making the result a batch too), the static nodes it names have those numbers.
        """
        static = [n for n, node in self.tree.nodes.items() if node.kind == "static"]
        changed = [n for n in static if tables and n in tables]
        if not changed:
            key = tuple(names)
            if key not in self._static_priors:
                self._static_priors[key] = self._static_joint(names, {})
            return self._static_priors[key]
        assert tables is not None
        return self._static_joint(names, {n: tables[n][0] for n in changed})

    def _static_joint(self, names: Sequence[str], cpts: Mapping[str, FloatArray]) -> FloatArray:
        """The joint of static nodes ``names`` (distinct), with ``cpts`` in place of the tree's."""
        static = [n for n, node in self.tree.nodes.items() if node.kind == "static"]
        index = {n: i for i, n in enumerate(static)}
        factors = []
        batch = None
        for n in static:
            node = self.tree.nodes[n]
            scope = (*(index[p] for p in node.parents), index[n])
            cpt = cpts.get(n, node.cpt)
            if cpt.ndim > len(scope):
                batch = cpt.shape[-1]
            factors.append((scope, _log(cpt)))
        wanted = tuple(index[n] for n in names)
        cards = [self.tree.nodes[n].card for n in static]
        jt = JunctionTree(cards, [*(f[0] for f in factors), wanted])
        return jt.calibrate(factors, batch).joint(wanted)

    def static_joint(self, names: Sequence[str]) -> FloatArray:
        """The joint prior of distinct static nodes ``names`` (one axis each), cached."""
        key = ("joint", *names)
        if key not in self._static_priors:
            self._static_priors[key] = self._static_joint(names, {})
        return self._static_priors[key]

    def calendar_state(self, node: str, step: int) -> int:
        """The state index a calendar node has at ``step``."""
        calendar = self.tree.nodes[node].calendar
        steps = self.tree.steps
        assert calendar is not None and steps is not None
        return calendar[steps.month(step) - 1]

    def scope_at(self, nodes: Sequence[str], step: int | None) -> tuple[int, ...]:
        """The variables of ``nodes`` at ``step`` (calendar nodes have none)."""
        return tuple(
            self.var_of[self.at(n, step)] for n in nodes if self.tree.nodes[n].kind != "calendar"
        )

    def prior_terms(self) -> list[PriorTerm]:
        """Where each of :meth:`prior_factors`'s factors comes from, in the same order.

        A term is one node's table at one step: its ``probabilities`` (``start``: a static
        node, or a dynamic one at step 0), its transition (``transition``, steps 1 on) or the
        backward chain (``backward``, steps before 0), placed on the (node, step) ``axes``.
        """
        out: list[PriorTerm] = []
        for name, node in self.tree.nodes.items():
            if node.kind == "static":
                axes: list[NodeAt] = [*[(p, None) for p in node.parents], (name, None)]
                out.append(PriorTerm(name, "start", tuple(axes)))
            elif node.kind == "dynamic":
                axes = [*[(p, 0) for p in node.parents], (name, 0)]
                out.append(PriorTerm(name, "start", tuple(axes)))
                for t in range(1, self.hi + 1):
                    axes = [(name, t - 1), *[(p, t) for p in node.parents], (name, t)]
                    out.append(PriorTerm(name, "transition", tuple(axes)))
                # before the horizon the static parents (which describe the horizon) are
                # averaged out, weighted by their prior as written: only the state at the
                # horizon's start links the past to them (see backward_averaging)
                moving = [p for p in node.parents if self.tree.nodes[p].kind != "static"]
                for t in range(self.lo, 0):
                    axes = [(name, t), *[(p, t + 1) for p in moving], (name, t + 1)]
                    out.append(PriorTerm(name, "backward", tuple(axes)))
        return [term for term in out if self.placement(term.axes)[1]]

    def backward_averaging(
        self, name: str, tables: Mapping[str, tuple[Any, Any]] | None = None
    ) -> tuple[list[int], FloatArray | None]:
        """The positions of a dynamic node's static parents, and their joint prior.

        The backward chain before the horizon averages those parents out with these weights
        (the tree's numbers as written, or under ``tables``: see :meth:`static_prior`), so its
        factors have only the moving parents' axes.
        """
        node = self.tree.nodes[name]
        averaged = [j for j, p in enumerate(node.parents) if self.tree.nodes[p].kind == "static"]
        if not averaged:
            return [], None
        return averaged, self.static_prior([node.parents[j] for j in averaged], tables)

    def placement(self, axes: Sequence[NodeAt]) -> tuple[tuple[int | slice, ...], tuple[int, ...]]:
        """How :meth:`place` puts a table on ``axes``: the index into it and the variables kept."""
        index: list[int | slice] = []
        kept: list[int] = []
        for node, step in axes:
            if self.tree.nodes[node].kind == "calendar":
                index.append(self.calendar_state(node, step or 0))
            else:
                index.append(slice(None))
                kept.append(self.var_of[self.at(node, step)])
        return tuple(index), tuple(kept)

    def prior_factors(
        self,
        tables: Mapping[str, tuple[Any, Any]] | None = None,
        xp: Any = np,
        *,
        weigh_by_tables: bool = False,
    ) -> list[Factor]:
        """The prior's factors: each node's table, transitions and backward chain.

        ``tables`` (node -> its table and transition) replaces the tree's numbers, for
        instance by posterior draws with a last batch axis, or by PyTensor variables (with
        ``xp`` the ``pytensor.tensor`` module); nodes it does not name keep the tree's. The
        backward chain averages static parents with their prior as the tree writes it, unless
        ``weigh_by_tables`` (NumPy tables only): then with their prior under ``tables``, as a
        tree with those numbers written would (the sensitivity analysis's changed trees).
        """
        out: list[Factor] = []
        logs: dict[tuple[str, str], Any] = {}
        for term in self.prior_terms():
            key = (term.node, term.kind)
            if key not in logs:
                node = self.tree.nodes[term.node]
                cpt, transition = (tables or {}).get(term.node, (node.cpt, node.transition))
                if term.kind == "start":
                    logs[key] = _log(cpt, xp)
                elif term.kind == "transition":
                    logs[key] = _log(transition, xp)
                else:
                    batched = cpt.ndim > len(node.parents) + 1
                    averaged, weights = self.backward_averaging(
                        term.node, tables if weigh_by_tables else None
                    )
                    if weights is not None and weights.ndim > len(averaged) and not batched:
                        cpt, transition, batched = cpt[..., None], transition[..., None], True
                    kernel = reverse_kernel(
                        cpt, transition, batched=batched, xp=xp, averaged=averaged, weights=weights
                    )
                    logs[key] = _log(kernel, xp)
            f = self.place(term.axes, logs[key])
            assert f is not None
            out.append(f)
        return out


@dataclass(frozen=True)
class PriorTerm:
    """One prior factor's origin: ``node``'s ``start``, ``transition`` or ``backward`` table."""

    node: str
    kind: str
    axes: tuple[NodeAt, ...]


@dataclass(frozen=True)
class Assumption:
    """One assumption of a what-if: a node in a state, at one step or at every step."""

    key: str  # as given: "node" or "node@date"
    node: str
    state: int
    steps: tuple[int | None, ...]  # the steps it holds at (None: a static node)


def parse_assumptions(tree: Tree, given: Mapping[str, str]) -> list[Assumption]:
    """Read ``given`` (``node`` or ``node@date`` -> state) against ``tree``.

    An assumption on a dynamic node without a date holds at every step of the horizon; with a
    date (``2026-06`` or ``2026-06-15``) it holds at the step that holds that date's first day.

    Raises
    ------
    QueryError
        For an unknown node or state, a date on a static node, a calendar node, or a date
        that cannot be read.
    """
    out: list[Assumption] = []
    for key, state in given.items():
        node, sep, when = key.partition("@")
        node = node.strip()
        compiled = tree.node(node)
        idx = tree.state_index(node, state)
        if compiled.kind == "calendar":
            raise QueryError(f"node '{node}' is set by the calendar; it cannot be assumed")
        if compiled.kind == "static":
            if sep:
                raise QueryError(
                    f"node '{node}' does not change over time: assume it without a date "
                    f"(--given {node}={state})"
                )
            out.append(Assumption(key, node, idx, (None,)))
            continue
        steps = tree.steps
        assert steps is not None
        if not sep:
            out.append(Assumption(key, node, idx, tuple(range(steps.n))))
            continue
        try:
            day = ObservedDate.parse(when.strip()).start
        except Exception:
            raise QueryError(
                f"'{key}': the date after @ is not a day (2026-06-15) or a month (2026-06)"
            ) from None
        out.append(Assumption(key, node, idx, (steps.index(day),)))
    return out


def check_outcome(tree: Tree, outcome: str) -> None:
    """A :class:`QueryError` with a hint if ``tree`` has no outcome ``outcome``."""
    if outcome not in tree.outcomes:
        raise QueryError(
            f"tree '{tree.id}' has no outcome '{outcome}'{did_you_mean(outcome, tree.outcomes)}"
        )
