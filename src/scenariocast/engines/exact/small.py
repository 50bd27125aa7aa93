"""Forecasts of a small static tree from its full joint distribution, kept.

A tree of a handful of nodes (cancer, earthquake, asia) has a joint state space of a few dozen
to a few thousand entries; there a junction tree's fixed cost (building the cliques, slicing
the tables, two passes, the messages) is many times the arithmetic. For such a tree
(:func:`small_joint`: every node static, at most :data:`JOINT_SIZE` joint entries, and no entry
that could underflow) the model keeps the joint, the product of every node's table, and a
forecast given hard evidence (``given``) and nothing else slices it at the observed states:
``P(x | e) = P(x, e) / P(e)``, each marginal a sum over the other variables' axes. That is the
definition of the posterior, with no approximation: the joint is exact to a few units in the
last place of each entry (a product of one entry of each table) and every marginal to the
rounding of its sums.

A static tree whose whole joint is larger but whose joint given the assumptions is within
:data:`JOINT_SIZE` (11 nodes of 3 states, 4 of them observed) gets that joint per forecast, one
product of the tables sliced at the observed states. Readings, virtual and soft evidence,
dynamic trees and larger joints go through the junction tree as before
(:class:`~.model.ExactModel`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

import numpy as np

from scenariocast.engines.exact.junction import FloatArray, _product
from scenariocast.engines.exact.network import parse_assumptions
from scenariocast.engines.result import ForecastResult, OutcomeForecast, Scenario
from scenariocast.errors import EvidenceConflictError
from scenariocast.evidence.select import no_evidence
from scenariocast.spec.tree import CompiledNode, Tree

#: The most entries the joint answered from may have (64 KiB of floats): the whole joint kept
#: by a model, or the joint of the unobserved nodes given the assumptions. Above it the passes
#: over the joint cost more than the junction tree's fixed cost.
JOINT_SIZE = 8192
#: The joint is used only if no product of one entry per table can come below this: every
#: entry is then a normal float, with full relative precision (no underflow).
SMALLEST_PRODUCT = 1e-280
#: How many distinct ``given`` a model keeps the slicing of (cleared beyond).
KEPT_GIVEN = 1024


#: The fields of a result that default to a new empty mapping, and how to make one.
_FACTORIES = tuple(
    (f.name, f.default_factory) for f in fields(ForecastResult) if f.default_factory is not MISSING
)


def _result(**values: Any) -> ForecastResult:
    """``ForecastResult(**values)`` with every field given but those made by a factory.

    Its fields are set at once in its ``__dict__``: a frozen dataclass's ``__init__`` sets them
    one by one through ``object.__setattr__``, a quarter of a small tree's whole forecast.
    """
    result = object.__new__(ForecastResult)
    d = result.__dict__
    for name, factory in _FACTORIES:
        d[name] = factory()
    d.update(values)
    return result


@dataclass(frozen=True)
class _Sliced:
    """One ``given`` read against the tree: where to slice the joint, and what is fixed."""

    given: dict[str, str]  # as the result shows it (key as given -> state name)
    index: tuple[int | slice, ...]  # into the joint: the state of each observed node
    # without the whole joint: each table sliced at the observed states, laid over the axes of
    # the unobserved nodes, and the shape of their product (None: larger than JOINT_SIZE)
    operands: tuple[list[FloatArray], tuple[int, ...]] | None
    observed: dict[int, int]  # node position -> its state (-1: two states at once)
    conflict: bool  # a node assumed in two states at once
    # each node in the tree's order: its name, and the axes of the sliced joint summed out for
    # its marginal (an unobserved node's) or its marginal by state (an observed node's, one-hot);
    # empty where the junction tree answers
    plan: tuple[tuple[str, tuple[str, ...], tuple[int, ...] | None, dict[str, float]], ...]


def small_joint(tree: Tree) -> SmallJoint | None:
    """The tree's :class:`SmallJoint`, or ``None`` if it has a node that is not static.

    ``None`` too if a product of one entry per table could underflow; whether a forecast's joint
    is small enough is :meth:`SmallJoint.fits`.
    """
    nodes = list(tree.nodes.values())
    if not nodes or any(n.kind != "static" for n in nodes):
        return None
    # no entry of the joint (a product of one entry per table) can underflow if the smallest
    # positive entry of every table, to the power of the number of tables, stays above the floor
    every = np.concatenate([n.cpt.reshape(-1) for n in nodes])
    smallest = float(np.min(every, where=every > 0, initial=1.0))
    if not smallest ** len(nodes) >= SMALLEST_PRODUCT:
        return None
    return SmallJoint(tree, nodes)


class SmallJoint:
    """The joint distribution of a small static tree, and forecasts given hard evidence from it.

    Built by :func:`small_joint` (which checks that the tree qualifies). The joint has one axis
    per node, in the tree's order.
    """

    def __init__(self, tree: Tree, nodes: list[CompiledNode]) -> None:
        self.tree = tree
        self._position = position = {n.name: i for i, n in enumerate(nodes)}
        self._nodes = nodes
        self._sizes = [len(n.states) for n in nodes]
        # the whole joint when it is small (one einsum, the fastest for a new model), else the
        # joint of each forecast's unobserved nodes when that is
        self.joint: FloatArray | None = None
        if math.prod(self._sizes) <= JOINT_SIZE:
            operands: list[Any] = []
            for n in nodes:
                operands += [n.cpt, [*[position[p] for p in n.parents], position[n.name]]]
            operands.append(list(range(len(nodes))))  # every node's axis, in the tree's order
            self.joint = np.ascontiguousarray(np.einsum(*operands), dtype=np.float64)
        self._states = [n.states for n in nodes]
        self._names = list(position)
        # each outcome: its node's position and which of its states count
        self._outcomes = [
            (oid, o, position[o.node], np.array([s in o.states for s in tree.nodes[o.node].states]))
            for oid, o in tree.outcomes.items()
        ]
        self._sliced: dict[tuple[tuple[str, str], ...], _Sliced] = {}
        self._prior: (
            tuple[dict[str, dict[str, float]], list[FloatArray | None], FloatArray, float] | None
        ) = None

    def _read(self, given: Mapping[str, str]) -> tuple[dict[str, str], dict[int, int]]:
        """The assumptions as the result shows them, and each observed node's state.

        A node named by its id in one of its states is read here; anything else (a date, a
        name to strip, an unknown node or state) by :func:`parse_assumptions`, with its checks
        and messages.
        """
        nodes = self.tree.nodes
        position = self._position
        observed: dict[int, int] = {}
        for key, state in given.items():
            node = nodes.get(key)
            if node is None or state not in node.states:
                break
            i = position[key]
            k = node.states.index(state)
            observed[i] = k if observed.get(i, k) == k else -1
        else:
            return dict(given), observed
        assumptions = parse_assumptions(self.tree, given)
        observed = {}
        for a in assumptions:
            i = position[a.node]
            observed[i] = a.state if observed.get(i, a.state) == a.state else -1
        return {a.key: nodes[a.node].states[a.state] for a in assumptions}, observed

    def _slice(self, given: Mapping[str, str]) -> _Sliced:
        key = tuple(given.items())
        sliced = self._sliced.get(key)
        if sliced is not None:
            return sliced
        shown, observed = self._read(given)
        conflict = any(state < 0 for state in observed.values())
        operands: tuple[list[FloatArray], tuple[int, ...]] | None = None
        plan: list[tuple[str, tuple[str, ...], tuple[int, ...] | None, dict[str, float]]] = []
        if self.joint is None and not conflict:
            size = math.prod(c for i, c in enumerate(self._sizes) if i not in observed)
            if size <= JOINT_SIZE:
                operands = self._sliced_tables(observed)
        if self.joint is not None or operands is not None:  # answered here: how to read it
            axes = list(range(len(self._names) - len(observed)))
            k = 0
            for i, (name, states) in enumerate(zip(self._names, self._states, strict=True)):
                state = observed.get(i)
                if state is None:
                    plan.append((name, states, (*axes[:k], *axes[k + 1 :]), {}))
                    k += 1
                else:
                    one = dict.fromkeys(states, 0.0)
                    if state >= 0:
                        one[states[state]] = 1.0
                    plan.append((name, states, None, one))
        every = slice(None)
        index = tuple([observed.get(i, every) for i in range(len(self._names))])
        sliced = _Sliced(shown, index, operands, observed, conflict, tuple(plan))
        if len(self._sliced) >= KEPT_GIVEN:
            self._sliced.clear()
        self._sliced[key] = sliced
        return sliced

    def _sliced_tables(
        self, observed: Mapping[int, int]
    ) -> tuple[list[FloatArray], tuple[int, ...]]:
        """Each table sliced at the observed states and laid over the unobserved nodes' axes.

        Each array has one axis per unobserved node (of length 1 where the table does not span
        it; a table of observed nodes alone is a number), so that their product, broadcast, is
        the joint of the unobserved nodes and the evidence, of the shape returned.
        """
        position = self._position
        hidden = [i for i in range(len(self._nodes)) if i not in observed]
        shape = tuple(self._sizes[i] for i in hidden)
        terms: list[FloatArray] = []
        for n in self._nodes:
            over = [position[p] for p in n.parents] + [position[n.name]]
            table = n.cpt[tuple(observed.get(i, slice(None)) for i in over)]
            kept = [i for i in over if i not in observed]  # the sliced table's axes
            table = np.transpose(table, sorted(range(len(kept)), key=kept.__getitem__))
            terms.append(table.reshape([self._sizes[i] if i in kept else 1 for i in hidden]))
        if not hidden:  # every node observed: one entry, on one axis (NumPy keeps no 0-d array)
            return [t.reshape(1) for t in terms], (1,)
        return terms, shape

    def fits(self, given: Mapping[str, str]) -> bool:
        """Whether the joint of the unobserved nodes given ``given`` is small enough."""
        if self.joint is not None:
            return True
        sliced = self._slice(given)
        return sliced.operands is not None or sliced.conflict

    def _marginals(
        self, sliced: _Sliced
    ) -> tuple[dict[str, dict[str, float]], list[FloatArray | None], FloatArray, float]:
        """Every node's marginal, the joint of the unobserved nodes and the evidence, its total.

        Each marginal by state name and as an array (``None`` for an observed node).
        """
        if sliced.conflict:
            raise self._impossible(sliced)
        if self.joint is not None:
            sub = self.joint[sliced.index]
        else:
            assert sliced.operands is not None
            sub = _product(*sliced.operands)  # the small tables multiplied together first
        total = float(sub.sum())
        if not total > 0:
            raise self._impossible(sliced)
        nodes: dict[str, dict[str, float]] = {}
        arrays: list[FloatArray | None] = []
        for name, states, axes, one in sliced.plan:
            if axes is None:
                nodes[name] = dict(one)
                arrays.append(None)
            else:
                m = (sub.sum(axis=axes) if axes else sub) / total
                nodes[name] = dict(zip(states, m.tolist(), strict=True))
                arrays.append(m)
        return nodes, arrays, sub, total

    def _impossible(self, sliced: _Sliced) -> EvidenceConflictError:
        shown = ", ".join(f"{k}={v}" for k, v in sliced.given.items())
        return EvidenceConflictError(
            f"the assumptions {shown} have zero probability in tree '{self.tree.id}'"
        )

    def _outcome_probabilities(
        self, sliced: _Sliced, arrays: list[FloatArray | None]
    ) -> list[float]:
        """Each outcome's probability: its states' share of its node's marginal."""
        out = []
        for _, _, i, in_set in self._outcomes:
            m = arrays[i]
            if m is None:  # an observed node: in the outcome's states or not
                out.append(1.0 if in_set[sliced.observed[i]] else 0.0)
            else:
                out.append(float(np.clip(m[in_set].sum(), 0.0, 1.0)))
        return out

    def _scenarios(
        self, sliced: _Sliced, sub: FloatArray, total: float, top: int
    ) -> list[Scenario]:
        """The ``top`` most probable complete scenarios (ties: in the order of the states)."""
        flat = sub.reshape(-1)
        n = min(top, int(np.count_nonzero(flat)))
        if n <= 0:
            return []
        # every entry at least the n-th largest, in the order of the states, then the largest
        # first (a stable sort: equally probable ones stay in the order of the states)
        nth = np.partition(flat, flat.size - n)[flat.size - n]
        candidates = np.flatnonzero(flat >= nth)
        best = candidates[np.argsort(-flat[candidates], kind="stable")][:n]
        hidden = [i for i in range(len(self._names)) if i not in sliced.observed]
        out: list[Scenario] = []
        for at in best.tolist():
            values = dict(sliced.observed)
            if hidden:
                values.update(zip(hidden, np.unravel_index(at, sub.shape), strict=True))
            states = {name: self._states[i][int(values[i])] for i, name in enumerate(self._names)}
            out.append(Scenario(states=states, probability=float(flat[at]) / total))
        return out

    def forecast(
        self,
        given: Mapping[str, str] | None,
        as_of: dt.date,
        *,
        top: int,
        readings_hash: str,
    ) -> ForecastResult:
        """What :meth:`ExactModel.forecast <.model.ExactModel.forecast>` gives with no reading."""
        sliced = self._slice(given or {})
        if not sliced.observed:  # the prior: computed once, as the junction tree keeps it
            if self._prior is None:
                self._prior = self._marginals(sliced)
            nodes, arrays, sub, total = self._prior
        else:
            nodes, arrays, sub, total = self._marginals(sliced)
        probabilities = self._outcome_probabilities(sliced, arrays)
        outcomes = {
            oid: OutcomeForecast(
                id=oid,
                question=o.question,
                probability=p,
                prior=p,
                resolve_by=o.resolve_by,
                timing=o.timing,
                k=o.k,
            )
            for (oid, o, _, _), p in zip(self._outcomes, probabilities, strict=True)
        }
        scenarios: tuple[Scenario, ...] = ()
        if top > 0:
            scenarios = tuple(self._scenarios(sliced, sub, total, top))
        return _result(
            tree_id=self.tree.id,
            tree_hash=self.tree.file_hash,
            engine="exact",
            as_of=as_of,
            given=dict(sliced.given),
            evidence=no_evidence(as_of),
            log_evidence=0.0,
            outcomes=outcomes,
            nodes=nodes,
            prior_nodes=nodes,
            top_scenarios=scenarios,
            readings_hash=readings_hash,
            steps={},
            now_step=None,
        )
