"""The exact engine's junction tree in PyTensor: the states summed out of the likelihood.

NUTS then sees a smooth function of the parameters.

The same cliques, the same elimination order and the same placements as
:class:`scenariocast.engines.exact.junction.JunctionTree` (so a dynamic tree is summed out
along its steps, the unrolled forward algorithm), with the upward pass written in PyTensor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.scan.basic import scan

from scenariocast.engines.exact.junction import JunctionTree

Tensor = Any


def _logsumexp0(x: Tensor) -> Tensor:
    """log(sum(exp(x))) over the first axis, exact where every entry is -inf."""
    m = pt.max(x, axis=0, keepdims=True)
    m = pt.switch(pt.isinf(m), 0.0, m)
    return pt.log(pt.sum(pt.exp(x - m), axis=0)) + m[0]


def log_z(
    jt: JunctionTree,
    factors: Sequence[tuple[tuple[int, ...], Tensor]],
    potentials: Sequence[Tensor | None] = (),
) -> Tensor:
    """Log of the sum over every scenario of the product of ``factors``.

    ``factors`` are (scope, log-table) pairs; ``potentials``, if given, one log-potential per
    clique added as it is (the constant evidence).
    """
    n = len(jt.cliques)
    psi: list[Tensor | None] = list(potentials) if potentials else [None] * n
    for scope, values in factors:
        i = jt.home(scope)
        perm, shape = jt._placement(scope, i)
        placed = values.transpose(perm).reshape(shape)
        psi[i] = placed if psi[i] is None else psi[i] + placed
    total: Tensor = pt.as_tensor(0.0)
    for i in range(n):
        here = psi[i]
        # the clique's full shape: a factor placed in it may leave axes of length one
        here = pt.zeros(jt.shapes[i]) if here is None else here + pt.zeros(jt.shapes[i])
        msg = _logsumexp0(here)
        parent = jt.parent[i]
        if parent is None:
            total = total + msg
            continue
        placement = jt._sep_in_parent[i]
        assert placement is not None
        moved = msg.transpose(placement[0]).reshape(placement[1])
        psi[parent] = moved if psi[parent] is None else psi[parent] + moved
    return total


# -- the past as one repeated step --------------------------------------------------------------


@dataclass
class Chain:
    """How the past of a dynamic tree (its steps before the horizon) is summed out by a scan.

    Before the horizon every dynamic node's prior is the backward kernel
    ``P(x_t | x_{t+1}, moving parents at t+1)`` (docs/evidence.md), the same table at every step
    (sliced by the calendar), and static parents are averaged out of it. So when every other
    factor that touches the past lies within one step (and static nodes), the past is a chain
    over the joint state of the dynamic nodes at a step: one expression, repeated by
    ``pytensor.scan`` from the oldest step to the horizon's first, carries a belief over that
    joint state (and over the static nodes some past reading depends on). Its graph does not
    grow with the number of steps; the junction tree keeps the static nodes and the horizon,
    with the chain's message on the first step as one more factor.

    Layout of a step: ``(*static, *dynamic)``, one axis per static variable read in the past
    (``static``) and one per dynamic node (``nodes``, the tree's order).
    """

    steps: tuple[int, ...]  # the past's steps, oldest first (lo .. -1)
    nodes: tuple[str, ...]  # the dynamic nodes
    static: tuple[int, ...]  # static variables some past factor depends on
    shape: tuple[int, ...]  # (*static cards, *dynamic cards)
    kernels: dict[str, list[int]]  # node -> positions in prior_terms of its backward factors
    kinds: tuple[int, ...]  # per step, which distinct transition it takes (calendar states)
    first_of_kind: tuple[int, ...]  # per distinct transition, the first step that takes it
    past: frozenset[int]  # the past's variables
    later: frozenset[int]  # the horizon's variables after the last step any factor but a
    # transition reaches: summed out latest first, their transitions add up to one, so they
    # and their transitions are left out
    step_of: dict[int, int]  # past variable -> its step's position in ``steps``
    axis_of: dict[int, int]  # past or static variable -> its axis in a step's layout
    keep: tuple[int, ...]  # the variables left to the junction tree, in their order
    renumber: dict[int, int]  # kept variable -> its number in ``jt``
    message: tuple[int, ...]  # the message's scope (kept variables, old numbers)
    jt: JunctionTree  # the junction tree of the kept variables' factors and the message

    def is_past(self, scope: Sequence[int]) -> bool:
        """Whether a factor over ``scope`` belongs to the chain."""
        return any(v in self.past for v in scope)

    def is_later(self, scope: Sequence[int]) -> bool:
        """Whether a factor over ``scope`` is a transition after the last step read."""
        return any(v in self.later for v in scope)

    def step(self, scope: Sequence[int]) -> int:
        """The step (its position in ``steps``) of a past factor over ``scope``."""
        return next(self.step_of[v] for v in scope if v in self.past)

    def layout(self, scope: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Transpose and reshape that broadcast a table over ``scope`` into a step's layout."""
        axes = [self.axis_of[v] for v in scope]
        perm = tuple(sorted(range(len(scope)), key=lambda i: axes[i]))
        shape = tuple(c if k in axes else 1 for k, c in enumerate(self.shape))
        return perm, shape

    def kept(self, scope: Sequence[int]) -> tuple[int, ...]:
        """``scope`` in the junction tree's numbering."""
        return tuple(self.renumber[v] for v in scope)


def plan_chain(query: Any) -> Chain | None:
    """The chain of ``query``'s past, or ``None`` (no past, or a factor spanning steps)."""
    net = query.network
    tree = net.tree
    if not net.timed or net.lo >= 0:
        return None
    steps = tuple(range(net.lo, 0))
    nodes = tuple(n for n, node in tree.nodes.items() if node.kind == "dynamic")
    past = {v for v, (_, t) in enumerate(net.names) if t is not None and t < 0}
    step_of = {v: steps.index(t) for v, (_, t) in enumerate(net.names) if v in past}
    terms = net.prior_terms()
    kernels: dict[str, list[int]] = {n: [] for n in nodes}
    scopes: list[tuple[int, ...]] = []  # every factor's scope but the backward kernels'
    transitions: list[tuple[int, ...]] = []
    for k, (term, (scope, _)) in enumerate(zip(terms, net.factors, strict=True)):
        if term.kind == "backward":
            kernels[term.node].append(k)
        elif term.kind == "transition":
            transitions.append(tuple(scope))
        else:
            scopes.append(tuple(scope))
    scopes += [tuple(scope) for scope, _ in query.base[len(net.factors) :]]
    scopes += [tuple(scope) for scope, _ in query.report_factors]
    read = max((net.names[v][1] or 0 for s in scopes for v in s), default=0)
    later = {v for v, (_, t) in enumerate(net.names) if t is not None and t > read}
    scopes += [s for s in transitions if not any(v in later for v in s)]
    if any(len(ks) != len(steps) for ks in kernels.values()):
        return None
    static: set[int] = set()
    for scope in scopes:
        inside = [v for v in scope if v in past]
        if not inside:
            continue
        dynamic = [v for v in scope if net.names[v][1] is not None]
        if len(inside) != len(dynamic) or len({step_of[v] for v in inside}) != 1:
            return None  # a factor over the past and the horizon, or over two past steps
        static.update(v for v in scope if net.names[v][1] is None)
    # steps whose kernels are sliced at the same calendar states share their transition
    kinds: list[int] = []
    first_of_kind: list[int] = []
    seen: dict[tuple[object, ...], int] = {}
    for i in range(len(steps)):
        key = tuple(
            tuple(a if isinstance(a, int) else None for a in net.placement(terms[ks[i]].axes)[0])
            for ks in kernels.values()
        )
        if key not in seen:
            seen[key] = len(first_of_kind)
            first_of_kind.append(i)
        kinds.append(seen[key])
    static_vars = tuple(sorted(static))
    shape = (*(net.cards[v] for v in static_vars), *(tree.nodes[n].card for n in nodes))
    axis_of = {v: i for i, v in enumerate(static_vars)}
    for v in past:
        axis_of[v] = len(static_vars) + nodes.index(net.names[v][0])
    keep = tuple(v for v in range(len(net.names)) if v not in past and v not in later)
    renumber = {v: i for i, v in enumerate(keep)}
    message = (*static_vars, *(net.var_of[(n, 0)] for n in nodes))
    kept_scopes = [s for s in scopes if not any(v in past or v in later for v in s)]
    kept_scopes.append(message)
    jt = JunctionTree(
        [net.cards[v] for v in keep],
        [tuple(renumber[v] for v in s) for s in kept_scopes],
        rank=[net.ranks[v] for v in keep],
    )
    return Chain(
        steps, nodes, static_vars, shape, kernels, tuple(kinds), tuple(first_of_kind),
        frozenset(past), frozenset(later), step_of, axis_of, keep,
        renumber, message, jt,
    )  # fmt: skip


def chain_message(
    chain: Chain,
    net: Any,
    prior: Sequence[tuple[tuple[int, ...], Tensor]],
    evidence: Tensor,
) -> Tensor:
    """The log-message of the past on the horizon's first step, over ``chain.message``.

    ``prior`` is the network's prior factors (log-tables, in ``prior_terms`` order);
    ``evidence`` the past's log-potentials, a tensor ``(steps, *chain.shape)``.

    Each distinct step of the chain (its kernels sliced at the calendar's states) is one
    matrix over the joint states of the dynamic nodes, from a step to the next, built once;
    the scan then does one matrix product a step. It runs in probabilities, each step's belief
    rescaled to sum to one and the scales kept in logs.
    """
    n_static, k = len(chain.static), len(chain.nodes)
    n_s = math.prod(chain.shape[:n_static])
    n_d = math.prod(chain.shape[n_static:])
    # one transition's layout: (*nodes at t, *nodes at t + 1)
    matrices = []
    for first in chain.first_of_kind:
        joint: Tensor = pt.as_tensor(1.0)
        for j, node in enumerate(chain.nodes):
            scope, values = prior[chain.kernels[node][first]]
            # the kernel's axes: (x_t, *moving parents at t+1, x_{t+1}); where each goes
            axes = [j] + [k + chain.nodes.index(net.names[v][0]) for v in scope[1:]]
            perm = tuple(sorted(range(len(axes)), key=lambda i: axes[i]))
            shape = [1] * (2 * k)
            for i, a in enumerate(axes):
                shape[a] = net.cards[scope[i]]
            joint = joint * pt.exp(values).transpose(perm).reshape(shape)
        matrices.append(joint.reshape((n_d, n_d)))
    moves = pt.stack(matrices)[np.asarray(chain.kinds, dtype=np.int64)]  # (steps, n_d, n_d)
    # each step's evidence in probabilities, scaled by its largest entry
    flat = evidence.reshape((evidence.shape[0], -1))
    top = pt.max(flat, axis=1)
    top = pt.switch(pt.isinf(top), 0.0, top)
    weights = pt.exp(flat - top[:, None]).reshape((evidence.shape[0], n_s, n_d))
    start = weights[0]
    scale0 = pt.sum(start)
    # the evidence of the step each transition leads to (none on the horizon's first step: it
    # stays in the junction tree)
    after = pt.concatenate([weights[1:], pt.ones((1, n_s, n_d))], axis=0)

    def step(move: Tensor, w: Tensor, belief: Tensor, log_scale: Tensor) -> tuple[Tensor, Tensor]:
        here = pt.dot(belief, move) * w
        total = pt.sum(here)
        return here / total, log_scale + pt.log(total)

    (beliefs, scales) = scan(
        step,
        sequences=[moves, after],
        outputs_info=[start / scale0, pt.log(scale0) + pt.sum(top)],
        return_updates=False,
    )
    return pt.log(beliefs[-1].reshape(chain.shape) + 1e-300) + scales[-1]
