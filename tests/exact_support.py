"""The exact engine's forecast checked against brute-force enumeration, for the tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from scenariocast.engines.exact import ExactModel
from scenariocast.evidence.readings import Reading
from scenariocast.spec.tree import Tree
from scenariocast.testing import brute_force
from tests.conftest import FAR_FUTURE


def close(a: Mapping[str, Mapping[str, float]], b: Mapping[str, Mapping[str, float]]) -> None:
    """Two node -> state -> probability tables agree to 1e-9, on the same nodes."""
    assert a.keys() == b.keys()
    for n in a:
        for s in a[n]:
            assert a[n][s] == pytest.approx(b[n][s], abs=1e-9), (n, s)


def check_against_brute_force(tree: Tree, readings: Sequence[Reading], **kw: Any) -> ExactModel:
    """Nodes, steps, outcomes, priors, log evidence and top scenarios, all to 1e-9.

    ``kw`` goes to both forecasts (``given``, ``as_of``: by default far in the future).
    """
    kw.setdefault("as_of", FAR_FUTURE)
    model = ExactModel(tree)
    result = model.forecast(list(readings), **kw)
    ref = brute_force(tree, list(readings), **kw)
    close(result.nodes, ref.nodes)
    for node, path in result.steps.items():
        assert len(path) == len(ref.steps[node])
        for got, want in zip(path, ref.steps[node], strict=True):
            close({node: got.probabilities}, {node: want})
    for oid, out in result.outcomes.items():
        assert out.probability == pytest.approx(ref.outcomes[oid], abs=1e-9), oid
        assert out.prior == pytest.approx(ref.prior_outcomes[oid], abs=1e-9), oid
    assert result.log_evidence == pytest.approx(ref.log_evidence, abs=1e-9)
    k = len(result.top_scenarios)
    assert k == min(5, len([p for _, p in ref.scenarios if p > 0]))
    lookup = {tuple(s.items()): p for s, p in ref.scenarios}
    for got, (_, p) in zip(result.top_scenarios, ref.scenarios[:k], strict=True):
        assert got.probability == pytest.approx(p, abs=1e-9)
        assert lookup[tuple(got.states.items())] == pytest.approx(got.probability, abs=1e-9)
    return model
