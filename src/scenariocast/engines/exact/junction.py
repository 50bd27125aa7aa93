"""Exact inference on a product of factors by a junction tree, in log space.

Variables are integers ``0..n-1`` with given cardinalities; a factor is a scope (tuple of
variables) and an array of log values with one axis per scope variable. The tree is built once
per structure from the elimination order (greedy min-fill), so it never enumerates the joint
state space: the cost grows with the size of the largest clique, not with the number of
complete scenarios.

Clique ``i`` is formed when variable ``order[i]`` is eliminated; its axes are
``(order[i], *separator)`` and its separator with its parent is everything but ``order[i]``.
Children are always eliminated before their parent, so one pass over the cliques in order is the
upward (collect) pass and the reverse order is the downward (distribute) pass.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scenariocast.evidence.likelihood import logsumexp

FloatArray = NDArray[np.float64]
Factor = tuple[tuple[int, ...], FloatArray]


#: Above this many neighbours a variable's fill is scored by its upper bound, d (d - 1) / 2:
#: counting it exactly costs d^2 and such hubs (a static node tied to every step of a long
#: horizon) are eliminated last whatever their exact fill.
FILL_DEGREE_CAP = 40


def _fill(adj: list[set[int]], v: int) -> int:
    """The number of edges eliminating ``v`` would add between its neighbours."""
    nb = list(adj[v])
    d = len(nb)
    if d > FILL_DEGREE_CAP:
        return d * (d - 1) // 2
    return sum(1 for i, a in enumerate(nb) for b in nb[i + 1 :] if b not in adj[a])


def _elimination_order(
    n: int,
    adj: list[set[int]],
    cards: Sequence[int],
    last: Set[int] = frozenset(),
    rank: Sequence[int] | None = None,
) -> list[int]:
    """Greedy min-fill order (ties: smallest clique table, then lowest index).

    Variables in ``last`` are eliminated after every other one; within that, variables of a
    lower ``rank`` before those of a higher one (for a network unrolled over time, the step:
    eliminating the past first keeps every clique within one step's reach, so their size does
    not grow with the number of steps). Scores are kept in a heap and recomputed only for the
    variables an elimination touches (the eliminated variable's neighbours, and the common
    neighbours of each edge it adds), and for a variable of a later group (phase and rank) only
    once its group comes up: an entry found stale when it reaches the top is scored again and
    put back, so the order is exactly min-fill within each group.
    """
    adj = [set(a) for a in adj]
    log_cards = [float(np.log(c)) for c in cards]
    ranks = list(rank) if rank is not None else [0] * n

    def group(v: int) -> tuple[int, int]:
        return (1 if v in last else 0, ranks[v])

    def key(v: int) -> tuple[int, int, int, float, int]:
        weight = log_cards[v] + sum(log_cards[u] for u in adj[v])
        return (*group(v), _fill(adj, v), round(weight, 9), v)

    heap = [key(v) for v in range(n)]
    heapq.heapify(heap)
    current = {k[-1]: k for k in heap}
    stale: set[int] = set()
    order: list[int] = []
    done: set[int] = set()
    while heap:
        k = heapq.heappop(heap)
        v = k[-1]
        if v in done or current[v] != k:
            continue
        if v in stale:  # touched while its group waited: score it now
            stale.discard(v)
            current[v] = key(v)
            heapq.heappush(heap, current[v])
            continue
        nb = adj[v]
        touched = set(nb)
        for a, b in itertools.combinations(nb, 2):
            if b not in adj[a]:
                adj[a].add(b)
                adj[b].add(a)
                touched.update(adj[a] & adj[b])
        for u in nb:
            adj[u].discard(v)
        adj[v] = set()
        done.add(v)
        order.append(v)
        now = group(v)
        for u in touched - done:
            if group(u) == now:
                stale.discard(u)
                current[u] = key(u)
                heapq.heappush(heap, current[u])
            else:
                stale.add(u)
    return order


@dataclass(frozen=True)
class Calibrated:
    """Clique beliefs (unnormalised log joint over each clique) after sum-product.

    In a batched calibration every belief has a last axis of ``batch`` (one calibration per
    set of tables, such as posterior draws of the tables), and so have ``log_z`` and every
    marginal.
    """

    jt: JunctionTree
    beliefs: tuple[FloatArray, ...]
    log_z: Any  # float, or an array of the batch
    batch: int | None = None
    own: tuple[FloatArray, ...] = ()  # each clique's own potential, before any message
    up: tuple[FloatArray, ...] = ()  # the upward messages

    def log_z_with(self, extra: Sequence[Factor]) -> Any:
        """The log normaliser with ``extra`` factors added, reusing the upward pass below them.

        Cliques eliminated before the first clique ``extra`` touches send the same messages as
        in this calibration, so the pass starts there (for a tree unrolled over time, the years
        before the horizon are not recomputed for a question about the horizon).
        """
        jt = self.jt
        if not extra:
            return self.log_z
        homes = [jt.home(scope) for scope, _ in extra]
        start = min(homes)
        psi = list(self.own)
        for (scope, values), i in zip(extra, homes, strict=True):
            psi[i] = psi[i] + jt._place(values, scope, i, self.batch)
        total: Any = 0.0 if self.batch is None else np.zeros(self.batch)
        for c in range(start):
            parent = jt.parent[c]
            if parent is None:
                total = total + (float(self.up[c]) if self.batch is None else self.up[c])
            elif parent >= start:
                placement = jt._sep_in_parent[c]
                assert placement is not None
                psi[parent] = psi[parent] + jt._move(
                    self.up[c], placement[0], placement[1], self.batch
                )
        for i in range(start, len(jt.cliques)):
            m = logsumexp(psi[i], axis=0)
            parent = jt.parent[i]
            if parent is None:
                total = total + (float(m) if self.batch is None else m)
            else:
                placement = jt._sep_in_parent[i]
                assert placement is not None
                psi[parent] = psi[parent] + jt._move(m, placement[0], placement[1], self.batch)
        return total

    def marginal(self, var: int) -> FloatArray:
        """Normalised marginal distribution of ``var`` (from the smallest clique holding it)."""
        i = self.jt.smallest[var]
        b = self.beliefs[i]
        clique = self.jt.cliques[i]
        axis = clique.index(var)
        others = tuple(k for k in range(len(clique)) if k != axis)
        lm = logsumexp(b, axis=others) if others else b
        return self._full(np.exp(lm - logsumexp(lm, axis=0)))

    def _full(self, values: FloatArray) -> FloatArray:
        """``values`` with its batch axis at full length (a clique the batch shares has one)."""
        if self.batch is None or values.shape[-1] == self.batch:
            return values
        return np.broadcast_to(values, (*values.shape[:-1], self.batch))

    def joint(self, scope: Sequence[int]) -> FloatArray:
        """Normalised joint distribution of ``scope`` (which must lie within one clique)."""
        i = self.jt.home(scope)
        axes = self.jt.cliques[i]
        b = self.beliefs[i]
        drop = tuple(k for k, v in enumerate(axes) if v not in scope)
        lm = logsumexp(b, axis=drop) if drop else b
        kept = [v for v in axes if v in scope]
        order = [kept.index(v) for v in scope]
        lm = np.transpose(lm, order if self.batch is None else [*order, len(order)])
        return self._full(np.exp(lm - logsumexp(lm, axis=tuple(range(len(scope))))))

    def joints(self, scopes: Sequence[Sequence[int]]) -> list[FloatArray]:
        """:meth:`joint` of each of many scopes: each clique's belief is normalised once."""
        return _joints_of(self, scopes)


def _joints_of(cal: Calibrated, scopes: Sequence[Sequence[int]]) -> list[FloatArray]:
    """:meth:`Calibrated.joints`: each clique's belief normalised once, then summed."""
    jt = cal.jt
    homes = [jt.home(scope) for scope in scopes]
    linear: dict[int, FloatArray] = {}
    out: list[FloatArray] = []
    for scope, i in zip(scopes, homes, strict=True):
        if i not in linear:
            b = cal.beliefs[i]
            axes_i = tuple(range(len(jt.cliques[i])))
            top = np.max(b, axis=axes_i, keepdims=True)
            with np.errstate(under="ignore", invalid="ignore"):
                lin = np.exp(b - np.where(np.isfinite(top), top, 0.0))
            linear[i] = lin / lin.sum(axis=axes_i, keepdims=True)
        axes = jt.cliques[i]
        lin = linear[i]
        drop = tuple(k for k, v in enumerate(axes) if v not in scope)
        m = lin.sum(axis=drop) if drop else lin
        kept = [v for v in axes if v in scope]
        order = [kept.index(v) for v in scope]
        m = np.transpose(m, order if cal.batch is None else [*order, len(order)])
        out.append(cal._full(np.asarray(m, dtype=np.float64)))
    return out


class JunctionTree:
    """A junction tree for factors over the given scopes.

    With ``last``, those variables are eliminated after all others, so that the cliques from
    ``n_sum`` on hold only them: a sum over the others followed by a maximum over them gives the
    most probable assignments of ``last`` alone (see :meth:`top_k`). ``rank`` orders the
    elimination coarsely (lower ranks first), min-fill deciding within a rank.
    """

    def __init__(
        self,
        cards: Sequence[int],
        scopes: Iterable[Sequence[int]],
        *,
        last: Set[int] = frozenset(),
        rank: Sequence[int] | None = None,
    ) -> None:
        self.cards = tuple(int(c) for c in cards)
        n = len(self.cards)
        adj: list[set[int]] = [set() for _ in range(n)]
        for scope in scopes:
            for a, b in itertools.combinations(set(scope), 2):
                adj[a].add(b)
                adj[b].add(a)
        self.order = _elimination_order(n, adj, self.cards, last, rank)
        # top_k sums over the variables not in ``last`` (none without ``last``) and maximises
        # over the rest
        self.n_sum = n - len(last) if last else 0
        self.position = {v: i for i, v in enumerate(self.order)}
        # replay the elimination to get each clique
        work = [set(a) for a in adj]
        cliques: list[tuple[int, ...]] = []
        for v in self.order:
            sep = sorted(work[v], key=lambda u: self.position[u])
            cliques.append((v, *sep))
            for a, b in itertools.combinations(work[v], 2):
                work[a].add(b)
                work[b].add(a)
            for u in work[v]:
                work[u].discard(v)
        self.cliques = tuple(cliques)
        self.parent: tuple[int | None, ...] = tuple(
            self.position[c[1]] if len(c) > 1 else None for c in cliques
        )
        children: list[list[int]] = [[] for _ in range(n)]
        for i, p in enumerate(self.parent):
            if p is not None:
                children[p].append(i)
        self.children = tuple(tuple(c) for c in children)
        self.clique_of = {v: i for i, v in enumerate(self.order)}
        sizes = [int(np.prod(s)) for s in (tuple(self.cards[v] for v in c) for c in cliques)]
        smallest: dict[int, int] = {}
        for i, c in enumerate(cliques):
            for v in c:
                if v not in smallest or sizes[i] < sizes[smallest[v]]:
                    smallest[v] = i
        self.smallest = smallest
        self.shapes = tuple(tuple(self.cards[v] for v in c) for c in cliques)
        # how a separator message (axes c[1:]) broadcasts into the parent clique
        self._sep_in_parent: list[tuple[tuple[int, ...], tuple[int, ...]] | None] = []
        for i, p in enumerate(self.parent):
            if p is None:
                self._sep_in_parent.append(None)
            else:
                self._sep_in_parent.append(self._placement(self.cliques[i][1:], p))

    def home(self, scope: Sequence[int]) -> int:
        """The clique that holds every variable of ``scope``."""
        if not scope:
            raise ValueError("empty scope")
        i = min(self.position[v] for v in scope)
        if not set(scope) <= set(self.cliques[i]):
            raise ValueError(f"scope {tuple(scope)} is not within one clique")
        return i

    def _placement(
        self, scope: Sequence[int], clique: int
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Transpose and reshape that broadcast an array over ``scope`` into ``clique``."""
        axes = self.cliques[clique]
        present = sorted(scope, key=axes.index)
        perm = tuple(list(scope).index(v) for v in present)
        shape = tuple(self.cards[v] if v in scope else 1 for v in axes)
        return perm, shape

    @staticmethod
    def _move(
        values: FloatArray,
        perm: Sequence[int],
        shape: tuple[int, ...],
        batch: int | None,
    ) -> FloatArray:
        """Transpose and reshape ``values``; in a batch, carry (or add) its last, batch axis."""
        if batch is None:
            return np.transpose(values, perm).reshape(shape)
        if values.ndim == len(perm):  # the same for the whole batch
            return np.transpose(values, perm).reshape((*shape, 1))
        return np.transpose(values, (*perm, len(perm))).reshape((*shape, values.shape[-1]))

    def _place(
        self, values: FloatArray, scope: Sequence[int], clique: int, batch: int | None = None
    ) -> FloatArray:
        perm, shape = self._placement(scope, clique)
        return self._move(values, perm, shape, batch)

    def potentials(self, factors: Iterable[Factor], batch: int | None = None) -> list[FloatArray]:
        """Sum the log factors into clique potentials.

        With ``batch``, factors may carry a last axis of that length (one table per member of
        the batch); factors without it are the same for every member. A clique no such factor
        reaches keeps a batch axis of length one, and so does every message it sends, until a
        message meets a clique that differs along the batch: what the members share (a horizon
        no reading reaches, eliminated first) is computed once.
        """
        extra = () if batch is None else (1,)
        psi = [np.zeros((*s, *extra)) for s in self.shapes]
        for scope, values in factors:
            i = self.home(scope)
            psi[i] = psi[i] + self._place(values, scope, i, batch)
        return psi

    def _up(
        self, psi: list[FloatArray], n_sum: int, batch: int | None = None
    ) -> tuple[list[FloatArray], Any]:
        """Upward pass: sum over the first ``n_sum`` cliques' variables, maximum over the rest.

        Returns each clique's outgoing message and the total (log Z, or the best score; an
        array over the batch in a batched pass).
        """
        msgs: list[FloatArray] = []
        total: Any = 0.0 if batch is None else np.zeros(batch)
        for i in range(len(self.cliques)):
            m = logsumexp(psi[i], axis=0) if i < n_sum else np.max(psi[i], axis=0)
            msgs.append(m)
            p = self.parent[i]
            if p is None:
                total = total + (float(m) if batch is None else m)
            else:
                placement = self._sep_in_parent[i]
                assert placement is not None
                psi[p] = psi[p] + self._move(m, placement[0], placement[1], batch)
        return msgs, total

    def log_z(self, factors: Iterable[Factor], batch: int | None = None) -> Any:
        """The log normalising constant alone (the upward pass only; an array in a batch)."""
        return self._up(self.potentials(factors, batch), len(self.cliques), batch)[1]

    def upward(self, factors: Iterable[Factor], batch: int | None = None) -> Calibrated:
        """The upward pass alone, its messages kept, for :meth:`Calibrated.log_z_with`.

        The result has ``log_z`` but no beliefs: no marginal or joint can be read off it.
        """
        psi = self.potentials(factors, batch)
        own = tuple(psi)  # _up replaces the list's entries, never the arrays themselves
        msgs, log_z = self._up(psi, len(self.cliques), batch)
        return Calibrated(self, (), log_z, batch, own, tuple(msgs))

    def calibrate(self, factors: Iterable[Factor], batch: int | None = None) -> Calibrated:
        """Sum-product: clique beliefs and the log normalising constant.

        With ``batch``, one calibration per member of the batch at once (see
        :meth:`potentials`).
        """
        psi = self.potentials(factors, batch)
        own = tuple(psi)  # _up replaces the list's entries, never the arrays themselves
        msgs, log_z = self._up(psi, len(self.cliques), batch)
        beliefs = list(psi)
        with np.errstate(invalid="ignore"):
            for i in reversed(range(len(self.cliques))):
                for c in self.children[i]:
                    placement = self._sep_in_parent[c]
                    assert placement is not None
                    up = self._move(msgs[c], placement[0], placement[1], batch)
                    # where the child's message is 0 the cavity is 0 too: subtracting +inf there
                    # (on the message, the smaller array) gives -inf without a pass over the clique
                    cavity = beliefs[i] - np.where(np.isneginf(up), np.inf, up)
                    keep = set(self.cliques[c][1:])
                    drop = tuple(k for k, v in enumerate(self.cliques[i]) if v not in keep)
                    down = logsumexp(cavity, axis=drop) if drop else cavity
                    # down has the parent's order of the separator; put it in the child's order
                    sep_parent_order = [v for v in self.cliques[i] if v in keep]
                    child_sep = self.cliques[c][1:]
                    order = [sep_parent_order.index(v) for v in child_sep]
                    if batch is not None:
                        order.append(len(order))
                    down = np.transpose(down, order)
                    beliefs[c] = psi[c] + down.reshape((1, *down.shape))
        return Calibrated(self, tuple(beliefs), log_z, batch, own, tuple(msgs))

    def top_k(self, factors: Iterable[Factor], k: int) -> list[tuple[tuple[int, ...], float]]:
        """The ``k`` most probable assignments and their unnormalised log scores.

        Best-first search over assignments in reverse elimination order. The max-product
        upward messages give, for any partial assignment, the exact score of its best
        completion, so assignments come off the queue in order of score. With ``last`` given
        at construction, the other variables are summed out first and only the ``last``
        variables are assigned (their entries in the returned tuples; the others are 0).
        """
        own = self.potentials(factors)  # each clique's own factors, without messages
        psi = [a.copy() for a in own]
        msgs, best_total = self._up(psi, self.n_sum)
        if not np.isfinite(best_total):
            return []
        n = len(self.cliques)
        roots = [i for i in range(n) if self.parent[i] is None]
        # a partial assignment is (values by var, frontier score); the frontier is the set of
        # unassigned cliques whose parent is assigned (or roots)
        counter = itertools.count()
        start_value = sum(float(msgs[r]) for r in roots)
        heap: list[tuple[float, int, int, tuple[int, ...]]] = [
            (-start_value, next(counter), n - 1, ())
        ]
        # assignment tuple holds values of order[n-1], order[n-2], ... (reverse elimination)
        results: list[tuple[tuple[int, ...], float]] = []
        while heap and len(results) < k:
            neg, _, nxt, assigned = heapq.heappop(heap)
            score = -neg
            if nxt < self.n_sum:
                values = [0] * n
                for j, val in enumerate(assigned):
                    values[self.order[n - 1 - j]] = val
                results.append((tuple(values), score))
                continue
            clique = self.cliques[nxt]
            sep_vals = tuple(assigned[n - 1 - self.position[v]] for v in clique[1:])
            m_here = float(msgs[nxt][sep_vals]) if sep_vals else float(msgs[nxt])
            for val in range(self.cards[clique[0]]):
                full = (val, *sep_vals)
                gain = float(own[nxt][full])
                if not np.isfinite(gain):
                    continue
                for c in self.children[nxt]:
                    cv = tuple(
                        val if v == clique[0] else assigned[n - 1 - self.position[v]]
                        for v in self.cliques[c][1:]
                    )
                    gain += float(msgs[c][cv])
                new = score - m_here + gain
                if np.isfinite(new):
                    heapq.heappush(heap, (-new, next(counter), nxt - 1, (*assigned, val)))
        return results


@dataclass(frozen=True)
class Reduction:
    """Variables observed in one state (hard evidence), taken out of the factors.

    Each factor over an observed variable is sliced at its state and loses that axis; a factor
    left with no variable is a constant, added to the log normaliser. An observed variable keeps
    its number but has one state (cardinality 1) and no factor, so the junction tree of the
    reduced factors has smaller cliques and no edge through it.
    """

    observed: tuple[tuple[int, int], ...] = ()  # (variable, state), sorted

    @property
    def states(self) -> dict[int, int]:
        """Variable -> its observed state."""
        return dict(self.observed)

    @property
    def variables(self) -> frozenset[int]:
        """The observed variables."""
        return frozenset(v for v, _ in self.observed)

    def cards(self, cards: Sequence[int]) -> tuple[int, ...]:
        """The cardinalities with every observed variable at 1."""
        states = self.states
        return tuple(1 if v in states else int(c) for v, c in enumerate(cards))

    def scope(self, scope: Sequence[int]) -> tuple[int, ...]:
        """``scope`` without the observed variables."""
        states = self.states
        return tuple(v for v in scope if v not in states)

    def apply(self, factors: Iterable[Factor]) -> tuple[list[Factor], float]:
        """The factors sliced at the observed states, and the sum of those left constant."""
        states = self.states
        out: list[Factor] = []
        const = 0.0
        for scope, values in factors:
            if not any(v in states for v in scope):
                out.append((scope, values))
                continue
            index = tuple(states[v] if v in states else slice(None) for v in scope)
            kept = tuple(v for v in scope if v not in states)
            sliced = np.asarray(values[index], dtype=np.float64)
            if kept:
                out.append((kept, sliced))
            else:
                const += float(sliced)
        return out, const

    def expand(self, var: int, marginal: FloatArray, card: int) -> FloatArray:
        """A variable's marginal over all its states (one-hot for an observed variable)."""
        state = self.states.get(var)
        if state is None:
            return marginal
        out = np.zeros(card)
        out[state] = 1.0
        return out
