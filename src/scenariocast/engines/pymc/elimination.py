"""The exact engine's junction tree in PyTensor: the states summed out of the likelihood.

NUTS then sees a smooth function of the parameters.

The same cliques, the same elimination order and the same placements as
:class:`scenariocast.engines.exact.junction.JunctionTree` (so a dynamic tree is summed out
along its steps, the unrolled forward algorithm), with the upward pass written in PyTensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytensor.tensor as pt

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
