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
import importlib
import itertools
import math
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
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


def _fill(adj: list[set[int]], v: int, bits: Sequence[int] | None = None) -> int:
    """The number of edges eliminating ``v`` would add between its neighbours.

    ``bits`` (each variable's neighbours as the bits of an integer, the same graph as ``adj``)
    counts the edges between them by a bitwise and per neighbour, without a set made for each.
    """
    nb = adj[v]
    d = len(nb)
    if d > FILL_DEGREE_CAP:
        return d * (d - 1) // 2
    # each edge between two neighbours is seen from both ends: the pairs less those edges
    if bits is None:
        linked = sum(len(adj[a] & nb) for a in nb)
    else:
        mask = bits[v]
        linked = sum((bits[a] & mask).bit_count() for a in nb)
    return (d * (d - 1) - linked) // 2


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
    bits = [sum(1 << u for u in a) for a in adj]  # the same graph, for _fill
    log_cards = [math.log(c) for c in cards]
    ranks = list(rank) if rank is not None else [0] * n

    def group(v: int) -> tuple[int, int]:
        return (1 if v in last else 0, ranks[v])

    def key(v: int) -> tuple[int, int, int, float, int]:
        weight = log_cards[v] + sum(map(log_cards.__getitem__, adj[v]))
        return (*group(v), _fill(adj, v, bits), round(weight, 9), v)

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
                bits[a] |= 1 << b
                bits[b] |= 1 << a
                touched.update(adj[a] & adj[b])
        gone = ~(1 << v)
        for u in nb:
            adj[u].discard(v)
            bits[u] &= gone
        adj[v] = set()
        bits[v] = 0
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


#: Clusters of at least this many entries are summed by einsum and their arrays reused.
EINSUM_SIZE = 4096
#: Clusters of at least this many entries are never formed: their messages and marginals are
#: contractions of their factors and incoming messages (see JunctionTree.calibrate_linear).
CONTRACT_SIZE = 100_000
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: NumPy's pairwise contractions (its path, and which operands and subscripts each step
#: takes), by subscripts and the operands' shapes (steps ``None``: ``np.einsum`` with the path).
_PATHS: dict[tuple[object, ...], tuple[list[Any], list[tuple[tuple[int, ...], str]] | None]] = {}


def _numpy_pairwise() -> Callable[..., Any] | None:
    """The pairwise step ``np.einsum`` takes along a path (NumPy 2.5), if this NumPy has it."""
    try:
        module = importlib.import_module("numpy._core.einsumfunc")
    except ImportError:  # pragma: no cover - another NumPy: np.einsum with the path
        return None
    found: Callable[..., Any] | None = getattr(module, "bmm_einsum", None)
    return found


_pairwise = _numpy_pairwise()


def _einsum_steps(
    subs: str, arrays: Sequence[FloatArray], path: list[Any]
) -> list[tuple[tuple[int, ...], str]] | None:
    """The steps ``np.einsum(subs, *arrays, optimize=path)`` takes, or ``None``.

    NumPy works them out again on every call (parsing the subscripts and sizing every
    intermediate); kept, a call only runs them, the same steps on the same arrays.
    """
    if _pairwise is None:
        return None
    einsum_path: Any = np.einsum_path
    _, contractions = einsum_path(subs, *arrays, optimize=path, einsum_call=True)
    steps: list[tuple[tuple[int, ...], str]] = []
    for step in contractions:
        if len(step) != 3:  # pragma: no cover - not the layout this was written for
            return None
        steps.append((tuple(int(i) for i in step[0]), str(step[1])))
    return steps


def _run_einsum(
    subs: str,
    arrays: Sequence[FloatArray],
    path: list[Any],
    steps: list[tuple[tuple[int, ...], str]] | None,
) -> FloatArray:
    """``np.einsum(subs, *arrays, optimize=path)``, by its kept ``steps`` where there are."""
    if steps is None or _pairwise is None:
        return np.asarray(np.einsum(subs, *arrays, optimize=path), dtype=np.float64)
    operands = list(arrays)
    for inds, how in steps:
        terms = [operands.pop(x) for x in inds]
        operands.append(_pairwise(how, *terms) if len(terms) == 2 else np.einsum(how, *terms))
    return np.asarray(operands[0], dtype=np.float64)


#: A linear calibration falls back to log space when a clique's largest entry, every factor and
#: message scaled to at most 1, comes below this: whatever underflowed is then no longer
#: negligible against what is left.
LINEAR_FLOOR = 1e-200


def _plan(
    shapes: Sequence[tuple[int, ...]],
) -> tuple[tuple[int, int, tuple[int, ...]], ...]:
    """An order to multiply arrays of ``shapes``: pairs of positions in a growing list.

    Each step multiplies the two arrays whose product is smallest and appends that product, so
    that small factors (a root variable's table) are multiplied together before they are
    broadcast over a large clique: one pass over the clique per large array instead of one per
    factor. Above 12 arrays, smallest first.
    """
    sizes = [math.prod(s) for s in shapes]
    live = list(range(len(shapes)))
    work = list(shapes)
    steps: list[tuple[int, int, tuple[int, ...]]] = []
    while len(live) > 1:
        if len(live) > 12:
            live.sort(key=lambda i: sizes[i])
            a, b = live[0], live[1]
        else:
            best: tuple[int, int, int] | None = None
            for x, y in itertools.combinations(live, 2):
                size = math.prod(np.broadcast_shapes(work[x], work[y]))
                if best is None or size < best[0]:
                    best = (size, x, y)
            assert best is not None
            a, b = best[1], best[2]
        work.append(np.broadcast_shapes(work[a], work[b]))
        sizes.append(math.prod(work[-1]))
        live = [i for i in live if i not in (a, b)] + [len(work) - 1]
        steps.append((a, b, work[-1]))
    return tuple(steps)


_PLANS: dict[tuple[tuple[int, ...], ...], tuple[tuple[int, int, tuple[int, ...]], ...]] = {}


def _product(
    terms: list[FloatArray], shape: tuple[int, ...], out: FloatArray | None = None
) -> FloatArray:
    """The product of arrays broadcast to ``shape``: ``out`` (of that shape) if given."""
    if not terms:
        if out is None:
            return np.ones(shape)
        out.fill(1.0)
        return out
    result = terms[0]
    if len(terms) > 1:
        key = tuple(t.shape for t in terms)
        plan = _PLANS.get(key)
        if plan is None:
            if len(_PLANS) > 10_000:
                _PLANS.clear()
            plan = _PLANS[key] = _plan(key)
        n = len(terms)
        work = list(terms)
        for a, b, both in plan:
            x, y = work[a], work[b]
            if b >= n and y.shape == both:
                work.append(np.multiply(y, x, out=y))  # y is a product made here
            elif a >= n and x.shape == both:
                work.append(np.multiply(x, y, out=x))
            elif out is not None and both == shape:
                work.append(np.multiply(x, y, out=out))
            else:
                work.append(np.multiply(x, y))
        result = work[-1]
    if result.shape != shape or (out is not None and result is terms[0]):
        if out is None:
            return np.broadcast_to(result, shape).copy()
        out[...] = result
        return out
    return result


_ONES: dict[tuple[int, ...], FloatArray] = {}


def _ones(shape: tuple[int, ...]) -> FloatArray:
    """A read-only array of ones of ``shape``, kept."""
    a = np.ones(shape)
    a.flags.writeable = False
    _ONES[shape] = a
    return a


class _Pool:
    """Arrays of large clusters that no calibration holds any more, by shape, for the next.

    A new array of megabytes costs more than a pass over it (the memory comes fresh from the
    system each time), so each calibration takes its large arrays from here and gives them back
    once nothing holds it, also across junction trees of the same shapes (the same network
    compiled again). At most :data:`POOL_BYTES` are kept.
    """

    def __init__(self) -> None:
        self.free: dict[tuple[int, ...], list[FloatArray]] = {}
        self.bytes = 0
        self.lock = threading.Lock()  # models may be used from several threads

    def take(self, shape: tuple[int, ...]) -> FloatArray:
        """A free array of ``shape`` (its content is whatever it held)."""
        with self.lock:
            free = self.free.get(shape)
            if free:
                a = free.pop()
                self.bytes -= a.nbytes
                return a
        return np.empty(shape)

    def give(self, arrays: Iterable[FloatArray]) -> None:
        """Keep ``arrays`` for later calibrations (as many as fit)."""
        with self.lock:
            for a in arrays:
                if self.bytes + a.nbytes <= POOL_BYTES:
                    self.free.setdefault(a.shape, []).append(a)
                    self.bytes += a.nbytes


_POOL = _Pool()
#: The most memory the pool of free arrays keeps.
POOL_BYTES = 256 * 2**20


class Clusters:
    """The junction tree's cliques merged into the cliques that hold them.

    Clique ``i`` (eliminating ``order[i]``) holds exactly the separator of a child whose
    clique is one variable larger when eliminating ``order[i]`` adds no variable: its table is
    a sum of the child's, so a calibration that keeps both passes over the larger one twice
    more. A cluster is a chain of such cliques with the axes of the lowest (the largest); its
    parent is the cluster of the chain's top clique's parent, and its separator with the parent
    is the top clique's. Clusters are numbered in elimination order of their tops, so children
    come before their parent.
    """

    def __init__(self, jt: JunctionTree) -> None:
        n = len(jt.cliques)
        into: list[int | None] = [None] * n  # the child a clique is merged into
        for i in range(n):
            for c in jt.children[i]:
                if len(jt.cliques[c]) == len(jt.cliques[i]) + 1:
                    into[i] = c
                    break
        bottom = list(range(n))
        for i in range(n):  # a child is numbered before its parent: its bottom is known
            below = into[i]
            if below is not None:
                bottom[i] = bottom[below]
        tops = []
        for i in range(n):
            p = jt.parent[i]
            if p is None or into[p] != i:
                tops.append(i)
        index = {bottom[t]: j for j, t in enumerate(tops)}
        #: the cluster of each clique
        self.of = tuple(index[bottom[i]] for i in range(n))
        self.axes = tuple(jt.cliques[bottom[t]] for t in tops)
        self.shapes = tuple(tuple(jt.cards[v] for v in a) for a in self.axes)
        self.cards = jt.cards
        parent: list[int | None] = []
        for t in tops:
            p = jt.parent[t]
            parent.append(None if p is None else self.of[p])
        self.parent = tuple(parent)
        children: list[list[int]] = [[] for _ in tops]
        for j, p in enumerate(parent):
            if p is not None:
                children[p].append(j)
        self.children = tuple(tuple(c) for c in children)
        # the separator of each cluster with its parent, in the cluster's order of axes
        seps = [
            tuple(v for v in self.axes[j] if v in jt.cliques[t][1:]) for j, t in enumerate(tops)
        ]
        #: each cluster's separator with its parent, in the cluster's order of axes
        self.seps = tuple(seps)
        self.up_drop = tuple(
            tuple(k for k, v in enumerate(self.axes[j]) if v not in seps[j])
            for j in range(len(tops))
        )
        up_placement: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        down_drop: list[tuple[int, ...]] = []
        down_placement: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        for j, p in enumerate(parent):
            if p is None:
                up_placement.append(((), ()))
                down_drop.append(())
                down_placement.append(((), ()))
                continue
            up_placement.append(self.placement(seps[j], p))
            down_drop.append(tuple(k for k, v in enumerate(self.axes[p]) if v not in seps[j]))
            # the parent's sum has the separator in the parent's order: to the child's message
            in_parent = [v for v in self.axes[p] if v in seps[j]]
            perm = tuple(in_parent.index(v) for v in seps[j])
            down_placement.append((perm, self.placement(seps[j], j)[1]))
        self.up_placement = tuple(up_placement)
        self.down_drop = tuple(down_drop)
        self.down_placement = tuple(down_placement)
        sizes = [math.prod(s) for s in self.shapes]
        self.sizes = tuple(sizes)
        smallest: dict[int, int] = {}
        for j, a in enumerate(self.axes):
            for v in a:
                if v not in smallest or sizes[j] < sizes[smallest[v]]:
                    smallest[v] = j
        self.smallest = smallest
        holding: dict[int, list[int]] = {}
        for j, a in enumerate(self.axes):
            for v in a:
                holding.setdefault(v, []).append(j)
        #: the clusters holding each variable, smallest first
        self.holding = {v: sorted(js, key=lambda j: sizes[j]) for v, js in holding.items()}
        letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

        def subscripts(cluster: int, drop: tuple[int, ...]) -> str | None:
            rank = len(self.axes[cluster])
            if not drop or rank > len(letters) or sizes[cluster] < EINSUM_SIZE:
                return None
            kept = "".join(letters[k] for k in range(rank) if k not in drop)
            return f"{letters[:rank]}->{kept}"

        # how large clusters are summed: einsum, several times faster than ndarray.sum over
        # some sets of axes (see calibrate_linear)
        self.up_sum = tuple(subscripts(j, d) for j, d in enumerate(self.up_drop))
        self.down_sum = tuple(
            None if p is None else subscripts(p, self.down_drop[c])
            for c, p in enumerate(self.parent)
        )
        #: whether a cluster's arrays come from the pool of free arrays (:class:`_Pool`)
        self.pooled = tuple(size >= EINSUM_SIZE for size in sizes)
        #: a factor's scope -> its cluster, and the transpose and reshape placing it there
        self.factor_placements: dict[
            tuple[int, ...], tuple[int, tuple[int, ...], tuple[int, ...], tuple[int, ...]]
        ] = {}

    def contract(
        self, cluster: int, terms: Sequence[tuple[tuple[int, ...], FloatArray]], out: Sequence[int]
    ) -> FloatArray:
        """The sum over the product of ``terms`` (variables, array), to the variables ``out``.

        The order of the pairwise contractions is found once per subscripts and shapes, and kept
        (for every junction tree: a network compiled again finds it).
        """
        axes = self.axes[cluster]
        present = {v for vs, _ in terms for v in vs}
        missing = [v for v in out if v not in present]
        if missing:  # variables of no term: a factor of 1 over each
            terms = [*terms, *(((v,), np.ones(self.cards[v])) for v in missing)]
        letters = _LETTERS
        subs = ",".join("".join(letters[axes.index(v)] for v in vs) for vs, _ in terms)
        subs += "->" + "".join(letters[axes.index(v)] for v in out)
        arrays = [a for _, a in terms]
        key = (subs, *(a.shape for a in arrays))
        kept = _PATHS.get(key)
        if kept is None:
            if len(_PATHS) > 10_000:
                _PATHS.clear()
            how = "optimal" if len(arrays) <= 6 else "greedy"
            path = np.einsum_path(subs, *arrays, optimize=how)[0]
            kept = _PATHS[key] = (path, _einsum_steps(subs, arrays, path))
        return _run_einsum(subs, arrays, *kept)

    def placement(
        self, scope: Sequence[int], cluster: int
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Transpose and reshape that broadcast an array over ``scope`` into ``cluster``."""
        axes = self.axes[cluster]
        present = sorted(scope, key=axes.index)
        perm = tuple(list(scope).index(v) for v in present)
        shape = tuple(self.cards[v] if v in scope else 1 for v in axes)
        return perm, shape

    def home(self, scope: Sequence[int]) -> int:
        """The smallest cluster holding every variable of ``scope``, or ValueError."""
        want = set(scope)
        best: int | None = None
        for j, a in enumerate(self.axes):
            if want <= set(a) and (
                best is None or math.prod(self.shapes[j]) < math.prod(self.shapes[best])
            ):
                best = j
        if best is None:
            raise ValueError(f"scope {tuple(scope)} is not within one clique")
        return best


@dataclass(frozen=True)
class _Contracted:
    """A cluster of a linear calibration never formed: its factors and incoming messages."""

    cluster: int
    terms: tuple[tuple[tuple[int, ...], FloatArray], ...]


@dataclass(frozen=True)
class LinearCalibrated:
    """Clique beliefs of a calibration in linear space (each up to a constant factor).

    Reads like :class:`Calibrated` (``marginal``, ``joint``, ``joints``, ``log_z``,
    ``log_z_with``) for one set of tables (no batch). Every factor and message is scaled by its
    largest entry, the scales kept in ``log_z``, so nothing overflows, and a calibration where a
    clique's mass would come near underflow is done in log space instead (see
    :meth:`JunctionTree.calibrate_linear`).
    """

    jt: JunctionTree
    linear: tuple[FloatArray | _Contracted, ...]
    log_z: float
    factors: tuple[Factor, ...]  # the factors calibrated, for log_z_with
    batch = None
    _upward: list[Calibrated] = field(default_factory=list, repr=False, compare=False)

    def marginal(self, var: int) -> FloatArray:
        """Normalised marginal distribution of ``var`` (from the smallest clique holding it)."""
        cl = self.jt.clusters
        i = cl.smallest[var]
        b = self.linear[i]
        if isinstance(b, _Contracted):  # a formed cluster holding it, if any, sums faster
            for j in cl.holding[var]:
                if not isinstance(self.linear[j], _Contracted):
                    i, b = j, self.linear[j]
                    break
        if isinstance(b, _Contracted):
            m = cl.contract(i, b.terms, (var,))
            return np.asarray(m / m.sum(), dtype=np.float64)
        axis = cl.axes[i].index(var)
        if b.ndim > 1:
            others = tuple(k for k in range(b.ndim) if k != axis)
            b = b.sum(axis=others)
        out: FloatArray = b / b.sum()
        return out

    def joint(self, scope: Sequence[int]) -> FloatArray:
        """Normalised joint distribution of ``scope`` (which must lie within one clique)."""
        return self.joints([scope])[0]

    def joints(self, scopes: Sequence[Sequence[int]]) -> list[FloatArray]:
        """:meth:`joint` of each of many scopes."""
        cl = self.jt.clusters
        out: list[FloatArray] = []
        for scope in scopes:
            i = cl.home(scope)
            axes = cl.axes[i]
            b = self.linear[i]
            if isinstance(b, _Contracted):
                m = cl.contract(i, b.terms, tuple(scope))
                out.append(np.asarray(m / m.sum(), dtype=np.float64))
                continue
            drop = tuple(k for k, v in enumerate(axes) if v not in scope)
            m = b.sum(axis=drop) if drop else b
            kept = [v for v in axes if v in scope]
            m = np.transpose(m, [kept.index(v) for v in scope])
            out.append(np.asarray(m / m.sum(), dtype=np.float64))
        return out

    def log_z_with(self, extra: Sequence[Factor]) -> Any:
        """The log normaliser with ``extra`` factors added (see :meth:`Calibrated.log_z_with`).

        The log-space upward pass it reuses is computed on the first call and kept.
        """
        if not extra:
            return self.log_z
        if not self._upward:
            self._upward.append(self.jt.upward(self.factors))
        return self._upward[0].log_z_with(extra)


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
    most probable assignments of ``last`` alone (see :meth:`top_k`); an empty ``last`` sums over
    every variable (the one assignment of nothing). ``rank`` orders the elimination coarsely
    (lower ranks first), min-fill deciding within a rank.
    """

    def __init__(
        self,
        cards: Sequence[int],
        scopes: Iterable[Sequence[int]],
        *,
        last: Set[int] | None = None,
        rank: Sequence[int] | None = None,
    ) -> None:
        self.cards = tuple(int(c) for c in cards)
        self._clusters: Clusters | None = None
        n = len(self.cards)
        adj: list[set[int]] = [set() for _ in range(n)]
        for scope in scopes:
            for a, b in itertools.combinations(set(scope), 2):
                adj[a].add(b)
                adj[b].add(a)
        self.order = _elimination_order(n, adj, self.cards, last or frozenset(), rank)
        # top_k sums over the variables not in ``last`` (none without ``last``) and maximises
        # over the rest
        self.n_sum = n - len(last) if last is not None else 0
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
        sizes = [math.prod(s) for s in (tuple(self.cards[v] for v in c) for c in cliques)]
        smallest: dict[int, int] = {}
        for i, c in enumerate(cliques):
            for v in c:
                if v not in smallest or sizes[i] < sizes[smallest[v]]:
                    smallest[v] = i
        self.smallest = smallest
        self.shapes = tuple(tuple(self.cards[v] for v in c) for c in cliques)
        self._seps: list[tuple[tuple[int, ...], tuple[int, ...]] | None] | None = None

    @property
    def _sep_in_parent(self) -> list[tuple[tuple[int, ...], tuple[int, ...]] | None]:
        """How each clique's separator message (axes ``c[1:]``) broadcasts into its parent.

        Built on first use: the log-space passes need it, a linear calibration does not.
        """
        if self._seps is None:
            self._seps = [
                None if p is None else self._placement(self.cliques[i][1:], p)
                for i, p in enumerate(self.parent)
            ]
        return self._seps

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
        psi: list[FloatArray | None] = [None] * len(self.shapes)
        for scope, values in factors:
            i = self.home(scope)
            placed = self._place(values, scope, i, batch)
            current = psi[i]
            if current is None:  # the first factor: a new array of the clique's shape
                shape = np.broadcast_shapes((*self.shapes[i], *extra), placed.shape)
                psi[i] = np.array(np.broadcast_to(placed, shape), dtype=np.float64)
            elif np.broadcast_shapes(current.shape, placed.shape) == current.shape:
                np.add(current, placed, out=current)  # made here: added to in place
            else:  # a batch axis longer than the clique's so far
                psi[i] = current + placed
        return [
            np.zeros((*s, *extra)) if a is None else a
            for s, a in zip(self.shapes, psi, strict=True)
        ]

    def _up(
        self, psi: list[FloatArray], n_sum: int, batch: int | None = None
    ) -> tuple[list[FloatArray], Any]:
        """Upward pass: sum over the first ``n_sum`` cliques' variables, maximum over the rest.

        Returns each clique's outgoing message and the total (log Z, or the best score; an
        array over the batch in a batched pass).
        """
        msgs: list[FloatArray] = []
        total: Any = 0.0 if batch is None else np.zeros(batch)
        made: set[int] = set()  # the entries of psi replaced here, added to in place after
        for i in range(len(self.cliques)):
            m = logsumexp(psi[i], axis=0) if i < n_sum else np.max(psi[i], axis=0)
            msgs.append(m)
            p = self.parent[i]
            if p is None:
                total = total + (float(m) if batch is None else m)
            else:
                placement = self._sep_in_parent[i]
                assert placement is not None
                moved = self._move(m, placement[0], placement[1], batch)
                target = psi[p]
                if p in made and np.broadcast_shapes(target.shape, moved.shape) == target.shape:
                    np.add(target, moved, out=target)
                else:  # the arrays passed in are never changed
                    psi[p] = target + moved
                    made.add(p)
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

    @property
    def clusters(self) -> Clusters:
        """The cliques that are not within another one (:class:`Clusters`), built once."""
        if self._clusters is None:
            self._clusters = Clusters(self)
        return self._clusters

    def calibrate_linear(self, factors: Sequence[Factor]) -> LinearCalibrated | Calibrated:
        """Sum-product in linear space on :attr:`clusters`: what :meth:`calibrate` gives, faster.

        Every log factor and every upward message is scaled by its largest entry (the logs of
        the scales add up to ``log_z``), so that each cluster's product has entries of at most
        1; messages are multiplied into their cluster in place. Where a cluster's largest entry
        comes below :data:`LINEAR_FLOOR` (or nothing is possible) the calibration is done in
        log space by :meth:`calibrate` instead: entries lost to underflow are then at most
        ``1e-100`` of what remains, far below any marginal's precision.
        """
        cl = self.clusters
        k = len(cl.axes)
        placed: list[list[tuple[tuple[int, ...], FloatArray, tuple[int, ...]]]] = [
            [] for _ in range(k)
        ]
        log_scale = 0.0
        where = cl.factor_placements
        for scope, values in factors:
            place = where.get(scope)
            if place is None:
                j = cl.of[self.home(scope)]
                perm, shape = cl.placement(scope, j)
                place = where[scope] = (j, perm, shape, tuple(scope[k] for k in perm))
            top = float(values.max())
            if not top > -np.inf:
                return self.calibrate(factors)
            log_scale += top
            lin = np.exp(values - top) if top != 0.0 else np.exp(values)
            placed[place[0]].append((place[3], lin.transpose(place[1]), place[2]))
        psi: list[FloatArray] = [np.empty(0)] * k
        msgs: list[FloatArray] = [np.empty(0)] * k
        leased: list[FloatArray] = []
        result: LinearCalibrated | Calibrated | None = None
        try:
            result = self._linear(factors, cl, placed, psi, msgs, leased, log_scale)
            return result
        finally:
            # arrays from the pool go back to it once nothing holds the calibration any more
            held = {id(b) for b in result.linear} if isinstance(result, LinearCalibrated) else set()
            # (a contracted cluster holds no array of the pool)
            _POOL.give(buf for buf in leased if id(buf) not in held)
            mine = [buf for buf in leased if id(buf) in held]
            if mine:
                weakref.finalize(result, _POOL.give, mine)

    def _linear(
        self,
        factors: Sequence[Factor],
        cl: Clusters,
        placed: list[list[tuple[tuple[int, ...], FloatArray, tuple[int, ...]]]],
        psi: list[FloatArray],
        msgs: list[FloatArray],
        leased: list[FloatArray],
        log_scale: float,
    ) -> LinearCalibrated | Calibrated:
        """The passes of :meth:`calibrate_linear` on the placed factors."""
        k = len(cl.axes)
        contracted = [
            size >= CONTRACT_SIZE and len(a) <= len(_LETTERS)
            for size, a in zip(cl.sizes, cl.axes, strict=True)
        ]
        # a contracted cluster's factors and incoming messages, as (variables, array)
        held: list[list[tuple[tuple[int, ...], FloatArray]]] = [[] for _ in range(k)]
        for j in range(k):  # children before parents
            shape = cl.shapes[j]
            own = placed[j]
            if not own and not cl.children[j] and cl.parent[j] is None:
                # alone, without a factor (an observed variable): never changed, so shared
                one = _ONES.get(shape)
                psi[j] = _ones(shape) if one is None else one
                log_scale += math.log(math.prod(shape))
                continue
            if contracted[j]:
                terms = held[j] = [
                    *((vs, a) for vs, a, _ in own),
                    *((cl.seps[c], msgs[c]) for c in cl.children[j]),
                ]
                present = {v for vs, _ in terms for v in vs}
                terms += [((v,), np.ones(cl.cards[v])) for v in cl.axes[j] if v not in present]
                if cl.parent[j] is None and cl.children[j]:
                    continue  # its total is that of its first child's separator, below
                m = cl.contract(j, terms, cl.seps[j])
            else:
                arrays = [a.reshape(shape_f) for _, a, shape_f in own]
                for c in cl.children[j]:
                    perm, shape_c = cl.up_placement[c]
                    arrays.append(np.transpose(msgs[c], perm).reshape(shape_c))
                buf = None
                if cl.pooled[j]:
                    buf = _POOL.take(shape)
                    leased.append(buf)
                p = _product(arrays, shape, buf)
                psi[j] = p
                if cl.parent[j] is None and cl.children[j]:
                    continue  # its total is that of its first child's separator, below
                drop = cl.up_drop[j]
                how = cl.up_sum[j]
                m = np.einsum(how, p) if how else p.sum(axis=drop) if drop else p
            top = float(m.max())
            if not top >= LINEAR_FLOOR:
                return self.calibrate(factors)
            if cl.parent[j] is None:
                log_scale += math.log(float(m.sum()))
            else:
                log_scale += math.log(top)
                msgs[j] = m / top
        beliefs: list[FloatArray | _Contracted] = list(psi)
        for j in reversed(range(k)):  # parents before children
            if contracted[j]:  # Shafer-Shenoy: each child gets the product of the others
                terms = held[j]
                beliefs[j] = _Contracted(j, tuple(terms))
                for c in cl.children[j]:
                    others = [t for t in terms if t[1] is not msgs[c]]
                    sep = cl.contract(j, others, cl.seps[c])
                    if cl.parent[j] is None and c == cl.children[j][0]:
                        total = float(np.vdot(sep, msgs[c]))
                        if not total >= LINEAR_FLOOR:
                            return self.calibrate(factors)
                        log_scale += math.log(total)
                    self._down(cl, c, sep, psi, held, contracted)
                continue
            b = psi[j]
            for c in cl.children[j]:
                drop = cl.down_drop[c]
                how = cl.down_sum[c]
                sep = np.einsum(how, b) if how else b.sum(axis=drop) if drop else b
                perm, _ = cl.down_placement[c]
                sep = np.transpose(sep, perm)
                if cl.parent[j] is None and c == cl.children[j][0]:
                    total = float(sep.sum())
                    if not total >= LINEAR_FLOOR:
                        return self.calibrate(factors)
                    log_scale += math.log(total)
                up = msgs[c]
                sep = np.divide(sep, up, out=np.zeros_like(sep), where=up > 0)
                self._down(cl, c, sep, psi, held, contracted)
        for j in range(k):
            if not contracted[j]:
                beliefs[j] = psi[j]
        return LinearCalibrated(self, tuple(beliefs), log_scale, tuple(factors))

    @staticmethod
    def _down(
        cl: Clusters,
        c: int,
        sep: FloatArray,
        psi: list[FloatArray],
        held: list[list[tuple[tuple[int, ...], FloatArray]]],
        contracted: list[bool],
    ) -> None:
        """Take the message ``sep`` (over the child's separator, in its order) into ``c``."""
        top = float(sep.max())
        if top > 0:
            sep = sep / top
        if contracted[c]:
            held[c].append((cl.seps[c], sep))
            return
        if psi[c].base is not None or not psi[c].flags.writeable:
            psi[c] = psi[c].copy()
        np.multiply(psi[c], sep.reshape(cl.down_placement[c][1]), out=psi[c])

    def top_k(self, factors: Iterable[Factor], k: int) -> list[tuple[tuple[int, ...], float]]:
        """The ``k`` most probable assignments and their unnormalised log scores.

        Best-first search over assignments in reverse elimination order. The max-product
        upward messages give, for any partial assignment, the exact score of its best
        completion, so assignments come off the queue in order of score. With ``last`` given
        at construction, the other variables are summed out first and only the ``last``
        variables are assigned (their entries in the returned tuples; the others are 0).
        """
        own = self.potentials(factors)  # each clique's own factors, without messages
        msgs, best_total = self._up(list(own), self.n_sum)  # (which leaves own unchanged)
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

    ``kept`` narrows other variables to some of their states (variable -> the states kept, in
    order, sorted by variable): states of probability 0 (see :mod:`.support`), sliced out of
    every factor, so that the variable's cardinality is the number kept and index ``i`` of its
    axis is state ``kept[i]``.
    """

    observed: tuple[tuple[int, int], ...] = ()  # (variable, state), sorted
    kept: tuple[tuple[int, tuple[int, ...]], ...] = ()  # (variable, states kept), sorted
    _states: dict[int, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    _kept: dict[int, tuple[int, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # per factor scope: how apply slices it (see _slicing)
    _index: dict[
        tuple[int, ...],
        tuple[tuple[int | slice, ...], tuple[tuple[int, NDArray[np.intp]], ...], tuple[int, ...]],
    ] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._states.update(self.observed)
        self._kept.update(self.kept)

    @property
    def states(self) -> dict[int, int]:
        """Variable -> its observed state."""
        return dict(self._states)

    @property
    def observed_states(self) -> Mapping[int, int]:
        """Variable -> its observed state (read only, not a copy)."""
        return self._states

    @property
    def kept_states(self) -> Mapping[int, tuple[int, ...]]:
        """Variable -> the states kept, for the variables narrowed to some (read only)."""
        return self._kept

    @property
    def variables(self) -> frozenset[int]:
        """The observed variables."""
        return frozenset(v for v, _ in self.observed)

    @property
    def key(self) -> tuple[frozenset[int], tuple[tuple[int, int], ...]]:
        """What the junction tree of the reduced factors depends on.

        The observed variables, and how many states each narrowed variable keeps.
        """
        return self.variables, tuple((v, len(s)) for v, s in self.kept)

    def cards(self, cards: Sequence[int]) -> tuple[int, ...]:
        """The cardinalities with every observed variable at 1, each narrowed one at its count."""
        states = self._states
        kept = self._kept
        return tuple(
            1 if v in states else len(kept[v]) if v in kept else int(c) for v, c in enumerate(cards)
        )

    def scope(self, scope: Sequence[int]) -> tuple[int, ...]:
        """``scope`` without the observed variables."""
        states = self._states
        return tuple(v for v in scope if v not in states)

    def state(self, var: int, index: int) -> int:
        """The state of ``var`` at ``index`` of its reduced axis (an observed one's state)."""
        observed = self._states.get(var)
        if observed is not None:
            return observed
        kept = self._kept.get(var)
        return index if kept is None else kept[index]

    def apply(self, factors: Iterable[Factor]) -> tuple[list[Factor], float]:
        """The factors sliced at the observed (and kept) states, and the sum of those constant."""
        states = self._states
        kept = self._kept
        if not states and not kept:
            return list(factors), 0.0
        out: list[Factor] = []
        const = 0.0
        observed = states.keys()
        narrowed = kept.keys()
        plans = self._index
        for factor in factors:
            scope, values = factor
            if observed.isdisjoint(scope) and narrowed.isdisjoint(scope):
                out.append(factor)
                continue
            plan = plans.get(scope)
            if plan is None:
                plan = self._slicing(scope)
            basic, takes, left = plan
            sliced = np.asarray(values[basic], dtype=np.float64)
            for axis, states_kept in takes:
                sliced = np.take(sliced, states_kept, axis=axis)
            if left:
                out.append((left, sliced))
            else:
                const += float(sliced)
        return out, const

    def _slicing(
        self, scope: tuple[int, ...]
    ) -> tuple[tuple[int | slice, ...], tuple[tuple[int, NDArray[np.intp]], ...], tuple[int, ...]]:
        """How :meth:`apply` slices a factor over ``scope`` (kept per scope).

        The observed states (a basic index), then the states kept along each axis left, and
        the variables left.
        """
        states = self._states
        kept = self._kept
        basic = tuple(states[v] if v in states else slice(None) for v in scope)
        left = tuple(v for v in scope if v not in states)
        takes = tuple(
            (k, np.array(kept[v], dtype=np.intp)) for k, v in enumerate(left) if v in kept
        )
        plan = self._index[scope] = (basic, takes, left)
        return plan

    def expand(self, var: int, marginal: FloatArray, card: int) -> FloatArray:
        """A variable's marginal over all its states (one-hot for an observed variable)."""
        state = self._states.get(var)
        if state is None:
            kept = self._kept.get(var)
            if kept is None:
                return marginal
            out = np.zeros((card, *marginal.shape[1:]))
            out[list(kept)] = marginal
            return out
        out = np.zeros(card)
        out[state] = 1.0
        return out
