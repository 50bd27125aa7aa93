"""What the forecast hinges on: derivatives and ranges against forecasts of changed trees.

The reference for every number is the forecast of a copy of the tree with that number changed
(and its row's other entries in proportion), made by the exact engine from scratch.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace

import numpy as np
import pytest

from scenariocast.analysis.sensitivity import (
    Parameter,
    SensitivityResult,
    _exact,
    _moved_indicator,
    _moved_tables,
    _report_parts,
    parameters,
    sensitivity,
)
from scenariocast.engines.exact import ExactModel
from scenariocast.errors import QueryError
from scenariocast.evidence.readings import Reading
from scenariocast.evidence.select import select_evidence
from scenariocast.spec.model import Source
from scenariocast.spec.tree import Tree
from scenariocast.testing import (
    random_dynamic_tree,
    random_readings,
    random_reports,
    random_tree,
)
from tests.conftest import EXAMPLE

FAR = dt.date(2100, 1, 1)


def changed(tree: Tree, par: Parameter, value: float) -> Tree:
    """A copy of ``tree`` with ``par`` at ``value`` (its row's other entries in proportion)."""
    if par.kind in ("probability", "transition", "persistence") and par.owner in tree.nodes:
        cpt, transition = _moved_tables(tree, par, value)
        nodes = dict(tree.nodes)
        nodes[par.owner] = replace(tree.nodes[par.owner], cpt=cpt, transition=transition)
        return replace(tree, nodes=nodes)
    if par.kind == "indicator":
        indicators = dict(tree.indicators)
        indicators[par.owner] = _moved_indicator(tree.indicators[par.owner], par, value)
        return replace(tree, indicators=indicators)
    sources = dict(tree.spec.sources)
    sources[par.owner] = Source(reliability=value)
    return replace(tree, spec=tree.spec.model_copy(update={"sources": sources}))


def outcome_at(
    tree: Tree, readings: list[Reading], as_of: dt.date, par: Parameter, value: float
) -> dict[str, float]:
    result = ExactModel(changed(tree, par, value)).forecast(readings, as_of=as_of, top=0)
    return {o: f.probability for o, f in result.outcomes.items()}


def _trees() -> list[tuple[str, Tree, list[Reading], dt.date]]:
    out = []
    for seed in range(2):
        tree = random_tree(seed, 4, n_indicators=6, max_indicator_nodes=2)
        out.append((f"static-{seed}", tree, random_readings(tree, 8, seed), FAR))
    for seed in range(2):
        tree = random_dynamic_tree(seed, 3, n_steps=3, n_indicators=6)
        out.append((f"dynamic-{seed}", tree, random_reports(tree, 10, seed, max_size=3), FAR))
    tree = random_dynamic_tree(7, 3, n_steps=3, calendar=True, n_indicators=6, max_states=2)
    out.append(("calendar", tree, random_readings(tree, 10, 7), FAR))
    return out


@pytest.mark.parametrize("case", _trees(), ids=lambda c: c[0])
def test_every_derivative_agrees_with_finite_differences(
    case: tuple[str, Tree, list[Reading], dt.date],
) -> None:
    _, tree, readings, as_of = case
    result = sensitivity(ExactModel(tree), readings, as_of=as_of, exact=0)
    kinds = {p.kind for p in result.parameters}
    assert {"probability", "indicator", "reliability"} <= kinds
    for i, par in enumerate(result.parameters):
        if par.kind != "indicator" and not 0.0 < par.value < 1.0:
            continue  # no interior to step into
        h = 1e-6 * max(1.0, abs(par.value))
        if par.name in ("sigma", "nu", "rate"):
            h = 1e-6 * par.value
        up = outcome_at(tree, readings, as_of, par, par.value + h)
        down = outcome_at(tree, readings, as_of, par, par.value - h)
        for o, effects in result.effects.items():
            fd = (up[o] - down[o]) / (2 * h)
            assert effects[i].derivative == pytest.approx(fd, abs=1e-6), (par.label, o)


def test_dynamic_trees_have_every_kind_of_table_number() -> None:
    kinds = set()
    for seed in range(4):
        kinds |= {p.kind for p in parameters(random_dynamic_tree(seed, 3, n_steps=3))}
    assert {"probability", "transition", "persistence", "indicator", "reliability"} <= kinds


@pytest.mark.parametrize("seed", range(3))
def test_a_one_way_sweep_is_a_ratio_of_linear_functions(seed: int) -> None:
    """P(theta) = (c1 theta + c2) / (c3 theta + c4) for a static node's entry, fully reliable
    sources: the c's derived from the derivatives, and also fitted from three points."""
    tree = random_tree(seed, 4, n_indicators=5, reliabilities=(1.0,))
    readings = random_readings(tree, 6, seed)
    model = ExactModel(tree)
    result = sensitivity(model, readings, as_of=FAR, exact=0)
    d_evidence = result.evidence
    fd_evidence = _evidence_derivatives(result, model, readings)
    checked = 0
    for i, par in enumerate(result.parameters):
        if par.kind != "probability" or par.owner not in tree.nodes or not 0 < par.value < 1:
            continue
        assert d_evidence[i] == pytest.approx(fd_evidence[i], abs=1e-6)
        grid = np.linspace(0.02, 0.98, 7)
        swept = [outcome_at(tree, readings, FAR, par, float(v)) for v in grid]
        for o, p0 in result.probabilities.items():
            d = result.effects[o][i].derivative
            de = d_evidence[i]
            for v, after in zip(grid, swept, strict=True):
                delta = v - par.value
                closed = (p0 + delta * (d + p0 * de)) / (1 + delta * de)
                assert after[o] == pytest.approx(closed, abs=1e-9), (par.label, o, v)
            # fitted: c2 + c1 t - P c4 - P c3 t = 0 with c4 = 1, from three points
            a = np.array([[t, 1.0, -s[o] * t] for t, s in zip(grid[:3], swept[:3], strict=True)])
            b = np.array([s[o] for s in swept[:3]])
            if abs(np.linalg.det(a)) < 1e-9:
                continue
            c1, c2, c3 = np.linalg.solve(a, b)
            for t, s in zip(grid[3:], swept[3:], strict=True):
                assert s[o] == pytest.approx((c1 * t + c2) / (c3 * t + 1.0), abs=1e-7)
        assert result.effects[next(iter(result.probabilities))][i].exact
        checked += 1
    assert checked >= 4


def _evidence_derivatives(
    result: SensitivityResult, model: ExactModel, readings: list[Reading]
) -> list[float]:
    """d log P(evidence) / d theta for each parameter, from forecasts of changed trees."""
    tree = model.tree
    out = []
    for par in result.parameters:
        if not 0 < par.value < 1:
            out.append(math.nan)
            continue
        h = 1e-6
        up = ExactModel(changed(tree, par, par.value + h)).forecast(readings, as_of=FAR, top=0)
        down = ExactModel(changed(tree, par, par.value - h)).forecast(readings, as_of=FAR, top=0)
        out.append((up.log_evidence - down.log_evidence) / (2 * h))
    return out


@pytest.mark.parametrize("seed", range(2))
def test_exact_ranges_are_the_forecasts_at_the_ends_of_each_interval(seed: int) -> None:
    tree = random_dynamic_tree(seed + 3, 3, n_steps=3, n_indicators=6)
    readings = random_reports(tree, 10, seed, max_size=3)
    result = sensitivity(ExactModel(tree), readings, as_of=FAR, exact=6)
    recomputed = 0
    for i, par in enumerate(result.parameters):
        effects = {o: result.effects[o][i] for o in result.probabilities}
        if not all(e.exact for e in effects.values()):
            continue
        low = outcome_at(tree, readings, FAR, par, par.low)
        high = outcome_at(tree, readings, FAR, par, par.high)
        for o, e in effects.items():
            assert e.at_low == pytest.approx(low[o], abs=1e-9), (par.label, o)
            assert e.at_high == pytest.approx(high[o], abs=1e-9), (par.label, o)
        recomputed += 1
    assert recomputed >= 6
    for o in result.probabilities:
        bars = result.tornado(o)
        assert bars and all(e.exact for _, e in bars[:6])
        swings = [e.swing for _, e in bars]
        assert swings == sorted(swings, reverse=True)


def test_exact_ranges_move_the_prior_the_backward_chain_averages_with() -> None:
    """Readings before the horizon meet a backward chain that averages a dynamic node's static
    parents with their prior: a static table moved moves that prior too, as in a changed tree."""
    tree = random_dynamic_tree(7, 3, n_steps=3, calendar=True, n_indicators=6, max_states=2)
    readings = random_readings(tree, 10, 7)
    model = ExactModel(tree)
    query = model.query(select_evidence(tree, readings, FAR))
    averaged = {
        p
        for node in tree.nodes.values()
        if node.kind == "dynamic"
        for p in node.parents
        if tree.nodes[p].kind == "static"
    }
    assert query.network.lo < 0 and averaged, "the case this test is about"
    pars = [p for p in parameters(tree) if p.kind == "probability" and p.owner in averaged]
    assert pars
    moves = [(p, v) for p in pars for v in (p.low, p.high)]
    values = _exact(model, query, moves, list(tree.outcomes), _report_parts(model, query))
    for k, (par, value) in enumerate(moves):
        want = outcome_at(tree, readings, FAR, par, value)
        for n, o in enumerate(tree.outcomes):
            assert values[n, k] == pytest.approx(want[o], abs=1e-9), (par.label, value, o)


def test_intervals_follow_the_stated_uncertainty() -> None:
    import yaml

    from scenariocast.testing import tree_from_dict

    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["sources"]["wire"]["reliability"] = {"mean": 0.9, "sd": 0.05}
    spec["indicators"]["crackdowns"]["params"][0]["then"]["rate"] = {"mean": 0.5, "sd": 0.2}
    tree = tree_from_dict(spec)
    pars = {p.label: p for p in parameters(tree)}
    wire = pars["reliability of wire"]
    assert (wire.low, wire.high, wire.basis) == (
        pytest.approx(0.85),
        pytest.approx(0.95),
        "± its sd",
    )
    rate = next(
        p
        for p in pars.values()
        if p.owner == "crackdowns" and p.column == "rate" and p.when == {"rationing": "none"}
    )
    assert (rate.low, rate.high) == (pytest.approx(0.3), pytest.approx(0.7))
    weather = pars["P(weather = good)"]
    assert (weather.low, weather.high, weather.basis) == (
        pytest.approx(0.6),
        pytest.approx(0.8),
        "±0.1",
    )
    mu = next(p for p in pars.values() if p.owner == "rice_price" and p.column == "mu")
    sigma = float(tree.indicators["rice_price"].params["sigma"][0])
    assert mu.high - mu.value == pytest.approx(0.25 * sigma)


def test_rationales_come_from_the_tree() -> None:
    from scenariocast.spec.load import load_tree

    tree = load_tree(EXAMPLE)
    pars = parameters(tree)
    row = next(
        p for p in pars if p.owner == "harvest" and p.when == {"weather": "poor", "imports": "low"}
    )
    assert row.rationale == "Judgement; low imports matter most when the harvest is poor."
    rice = next(p for p in pars if p.owner == "rice_price")
    assert rice.rationale == "A short harvest raises prices against the baseline."
    wire = next(p for p in pars if p.kind == "reliability" and p.owner == "wire")
    assert wire.rationale == " ".join(tree.sources["wire"].description.split())


def test_unknown_outcome_is_refused() -> None:
    from scenariocast.spec.load import load_tree

    with pytest.raises(
        QueryError, match=r"no outcome 'rationing' \(did you mean 'rationing_returns'\?\)"
    ):
        sensitivity(ExactModel(load_tree(EXAMPLE)), [], as_of=FAR, outcomes=["rationing"])
