"""The junction tree's linear-space calibration against brute-force enumeration of the joint.

Forecasts calibrate in linear space on merged cliques (``JunctionTree.calibrate_linear``); the
log-space calibration stays for batches and as the fallback near underflow. Both must give the
marginals, joints and log normaliser of the product of the factors, enumerated here over every
assignment of small random networks.
"""

from __future__ import annotations

import numpy as np
import pytest

from scenariocast.engines.exact.junction import (
    _POOL,
    Calibrated,
    Factor,
    JunctionTree,
    LinearCalibrated,
    Reduction,
)
from scenariocast.evidence.likelihood import logsumexp


def _random_factors(seed: int, n: int, extra: int = 3) -> tuple[list[int], list[Factor]]:
    """A random network's conditional tables (logs) and a few non-negative factors."""
    rng = np.random.default_rng(seed)
    cards = [int(c) for c in rng.integers(2, 4, size=n)]
    factors: list[Factor] = []
    for v in range(n):
        parents = (
            sorted(
                int(p) for p in rng.choice(v, size=min(v, int(rng.integers(0, 4))), replace=False)
            )
            if v
            else []
        )
        shape = (*(cards[p] for p in parents), cards[v])
        table = rng.dirichlet(np.ones(cards[v]), size=int(np.prod(shape[:-1]))).reshape(shape)
        factors.append(((*parents, v), np.log(table)))
    for _ in range(extra):
        scope = tuple(
            sorted(int(x) for x in rng.choice(n, size=int(rng.integers(1, 3)), replace=False))
        )
        values = rng.normal(0.0, 2.0, size=tuple(cards[v] for v in scope))
        values[rng.random(values.shape) < 0.2] = -np.inf  # some impossible combinations
        values[(0,) * len(scope)] = 0.0  # but never every assignment
        factors.append((scope, values))
    return cards, factors


def _brute(cards: list[int], factors: list[Factor]) -> tuple[np.ndarray, float]:
    """The normalised joint over every variable, and the log normaliser."""
    log_joint = np.zeros(cards)
    n = len(cards)
    for scope, values in factors:
        order = sorted(range(len(scope)), key=lambda i: scope[i])
        shape = [cards[v] if v in scope else 1 for v in range(n)]
        log_joint = log_joint + np.transpose(values, order).reshape(shape)
    log_z = float(logsumexp(log_joint))
    return np.exp(log_joint - log_z), log_z


def _marginal(joint: np.ndarray, var: int) -> np.ndarray:
    return joint.sum(axis=tuple(k for k in range(joint.ndim) if k != var))


@pytest.mark.parametrize("seed", range(12))
def test_linear_calibration_equals_enumeration(seed: int) -> None:
    cards, factors = _random_factors(seed, n=7)
    joint, log_z = _brute(cards, factors)
    jt = JunctionTree(cards, [s for s, _ in factors])
    cal = jt.calibrate_linear(factors)
    assert isinstance(cal, LinearCalibrated)  # ordinary tables need no fallback
    assert cal.log_z == pytest.approx(log_z, abs=1e-10)
    for v in range(len(cards)):
        np.testing.assert_allclose(cal.marginal(v), _marginal(joint, v), atol=1e-12)
    # a joint within one clique, in the scope's order
    scope = tuple(reversed(jt.cliques[-2][:2])) if len(jt.cliques[-2]) > 1 else (jt.order[-1],)
    drop = tuple(k for k in range(len(cards)) if k not in scope)
    want = joint.sum(axis=drop)
    want = np.transpose(want, [sorted(scope).index(v) for v in scope])
    np.testing.assert_allclose(cal.joint(scope), want, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_linear_calibration_after_hard_evidence_equals_enumeration(seed: int) -> None:
    cards, factors = _random_factors(seed + 100, n=8, extra=1)
    observed = {1: 0, 5: 1}
    evidence = [
        ((v,), np.where(np.arange(cards[v]) == s, 0.0, -np.inf)) for v, s in observed.items()
    ]
    joint, log_z = _brute(cards, [*factors, *evidence])
    reduction = Reduction(tuple(sorted(observed.items())))
    reduced, const = reduction.apply(factors)
    jt = JunctionTree(reduction.cards(cards), [s for s, _ in reduced])
    cal = jt.calibrate_linear(reduced)
    assert isinstance(cal, LinearCalibrated)
    assert cal.log_z + const == pytest.approx(log_z, abs=1e-10)
    for v in range(len(cards)):
        got = reduction.expand(v, cal.marginal(v), cards[v])
        np.testing.assert_allclose(got, _marginal(joint, v), atol=1e-12)


def test_tables_near_underflow_fall_back_to_log_space_and_stay_exact() -> None:
    # two reports that each rule out, up to e^-900, what the other allows: every product is
    # about e^-900, below what a double holds; the log-space calibration still gets it right
    cards, factors = _random_factors(3, n=5, extra=0)
    a = np.array([0.0, -900.0, -900.0][: cards[0]])
    b = np.array([-900.0, 0.0, 0.0][: cards[0]])
    factors = [*factors, ((0,), a), ((0,), b)]
    joint, log_z = _brute(cards, factors)
    jt = JunctionTree(cards, [s for s, _ in factors])
    cal = jt.calibrate_linear(factors)
    assert isinstance(cal, Calibrated)  # the fallback
    assert cal.log_z == pytest.approx(log_z, abs=1e-9)
    for v in range(len(cards)):
        np.testing.assert_allclose(cal.marginal(v), _marginal(joint, v), atol=1e-12)


def test_large_log_factors_do_not_overflow() -> None:
    # densities of precise readings: logs far above 0 (e^800 overflows a double)
    cards, factors = _random_factors(4, n=5, extra=0)
    big = np.array([800.0, 795.0, 790.0][: cards[2]])
    factors = [*factors, ((2,), big)]
    joint, log_z = _brute(cards, factors)
    cal = JunctionTree(cards, [s for s, _ in factors]).calibrate_linear(factors)
    assert isinstance(cal, LinearCalibrated)
    assert cal.log_z == pytest.approx(log_z, rel=1e-13)
    for v in range(len(cards)):
        np.testing.assert_allclose(cal.marginal(v), _marginal(joint, v), atol=1e-12)


def test_impossible_evidence_gives_minus_infinity() -> None:
    cards, factors = _random_factors(5, n=4, extra=0)
    factors = [*factors, ((0,), np.full(cards[0], -np.inf))]
    cal = JunctionTree(cards, [s for s, _ in factors]).calibrate_linear(factors)
    assert cal.log_z == -np.inf


@pytest.mark.parametrize("seed", range(4))
def test_log_z_with_extra_factors_matches_log_space(seed: int) -> None:
    cards, factors = _random_factors(seed + 200, n=6)
    jt = JunctionTree(cards, [s for s, _ in factors])
    linear = jt.calibrate_linear(factors)
    extra: list[Factor] = [((2,), np.array([0.0] + [-np.inf] * (cards[2] - 1)))]
    _, want = _brute(cards, [*factors, *extra])
    assert float(linear.log_z_with(extra)) == pytest.approx(want, abs=1e-10)
    assert linear.log_z_with([]) == linear.log_z


@pytest.mark.parametrize("seed", range(8))
def test_merged_cliques_cover_every_clique(seed: int) -> None:
    cards, factors = _random_factors(seed + 300, n=12, extra=4)
    jt = JunctionTree(cards, [s for s, _ in factors])
    cl = jt.clusters
    # every clique lies in its cluster, and no cluster lies in its parent
    for i, clique in enumerate(jt.cliques):
        assert set(clique) <= set(cl.axes[cl.of[i]])
    for j, p in enumerate(cl.parent):
        if p is not None:
            assert p > j
            assert not set(cl.axes[j]) <= set(cl.axes[p])
    # none lies within one of its children either: those are merged
    for j, children in enumerate(cl.children):
        for c in children:
            assert not set(cl.axes[j]) <= set(cl.axes[c])


def test_reused_arrays_never_change_a_calibration_still_held() -> None:
    # a clique of 3^9 entries: its array goes back to a pool when no calibration holds it
    cards = [3] * 9
    rng = np.random.default_rng(7)
    scope = tuple(range(9))

    def factors() -> list[Factor]:
        return [(scope, rng.normal(size=cards)), ((0,), rng.normal(size=3))]

    jt = JunctionTree(cards, [scope])
    first_factors = factors()
    first = jt.calibrate_linear(first_factors)
    assert isinstance(first, LinearCalibrated)
    before = [first.marginal(v) for v in range(9)]
    for _ in range(3):  # later calibrations, each dropped at once
        jt.calibrate_linear(factors())
    assert _POOL.free[tuple(cards)]  # their arrays were given back
    for v in range(9):
        np.testing.assert_array_equal(first.marginal(v), before[v])
    joint, _ = _brute(cards, first_factors)
    np.testing.assert_allclose(first.marginal(4), _marginal(joint, 4), atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_contracted_clusters_give_the_same_calibration(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # large clusters are never formed: messages and marginals are contractions of their
    # factors and incoming messages; here every cluster is contracted
    import scenariocast.engines.exact.junction as junction

    monkeypatch.setattr(junction, "CONTRACT_SIZE", 1)
    cards, factors = _random_factors(seed + 400, n=9, extra=3)
    observed = {2: 1}
    evidence = [((2,), np.where(np.arange(cards[2]) == 1, 0.0, -np.inf))]
    joint, log_z = _brute(cards, [*factors, *evidence])
    reduction = Reduction(tuple(sorted(observed.items())))
    reduced, const = reduction.apply(factors)
    jt = JunctionTree(reduction.cards(cards), [s for s, _ in reduced])
    cal = jt.calibrate_linear(reduced)
    assert isinstance(cal, LinearCalibrated)
    assert any(isinstance(b, junction._Contracted) for b in cal.linear)
    assert cal.log_z + const == pytest.approx(log_z, abs=1e-10)
    for v in range(len(cards)):
        got = reduction.expand(v, cal.marginal(v), cards[v])
        np.testing.assert_allclose(got, _marginal(joint, v), atol=1e-12)
    scope = jt.cliques[-1][:2]
    drop = tuple(k for k in range(len(cards)) if k not in scope)
    want = np.transpose(joint.sum(axis=drop), [sorted(scope).index(v) for v in scope])
    np.testing.assert_allclose(cal.joint(scope), want, atol=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_fill_counted_on_bits_is_the_fill_of_the_graph(seed: int) -> None:
    """The elimination order counts each variable's fill on bit masks of its neighbours: the
    same count as pairs of neighbours not yet linked, enumerated, after every elimination."""
    import itertools

    from scenariocast.engines.exact.junction import _elimination_order, _fill

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    adj: list[set[int]] = [set() for _ in range(n)]
    for a, b in itertools.combinations(range(n), 2):
        if rng.random() < 0.15:
            adj[a].add(b)
            adj[b].add(a)
    bits = [sum(1 << u for u in a) for a in adj]
    for v in range(n):
        pairs = sum(1 for a, b in itertools.combinations(adj[v], 2) if b not in adj[a])
        assert _fill(adj, v, bits) == _fill(adj, v) == pairs
    # the greedy order is min-fill: each variable eliminated has the least fill left
    order = _elimination_order(n, adj, [2] * n)
    assert sorted(order) == list(range(n))
    work = [set(a) for a in adj]
    for v in order:
        left = [u for u in range(n) if work[u] or u == v]
        fills = {u: _fill(work, u) for u in left if u not in order[: order.index(v)]}
        assert fills[v] == min(fills.values())
        for a, b in itertools.combinations(work[v], 2):
            work[a].add(b)
            work[b].add(a)
        for u in work[v]:
            work[u].discard(v)
        work[v] = set()
