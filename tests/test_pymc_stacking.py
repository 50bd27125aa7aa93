"""Reports whose likelihood depends on uncertain parameters are stacked across steps.

The PyMC engine computes every group of readings of one shape (indicator, number of readings,
calendar states) as one expression, whatever the step, and every report over one local shape of
variables (the same nodes at the same steps relative to its first) as one tensor whose rows are
placed each at its own step. These checks hold the model at fixed parameter values and compare
it with the exact engine on a tree that writes those values as fixed numbers: the log evidence
and each report's factor (its variables, so its step, and its values) must agree to 1e-9, so a
row placed at another step, a calendar state read at the wrong month or a report's readings
swapped with another's fails them.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from scenariocast.engines.exact.model import ExactModel
from scenariocast.evidence.readings import ObservedDate, Reading
from scenariocast.spec.load import parse_tree

pymc_engine = pytest.importorskip("scenariocast.engines.pymc")

AS_OF = dt.date(2026, 6, 30)
STATED = {"price": (0.0, 0.3, 1.0, 1.4), "rate": (2.0, 2.5, 3.0, 3.2)}
SD = {"price": 0.3, "rate": 0.4}
UNCERTAIN_RATE_ROWS = (2, 3)  # the rate's high rows; its calm rows stay fixed

TREE = """
id: stacking
strength: 20
horizon: {{start: 2026-01-01, end: 2026-06-30, step: month}}
sources:
  survey:
    reliability: {survey}
  wire:
    reliability: {wire}
nodes:
  season:
    states: [lean, other]
    calendar: {{lean: [5, 6, 7, 8], other: [1, 2, 3, 4, 9, 10, 11, 12]}}
  regime:
    states: [soft, hard]
    probabilities: {{soft: 0.6, hard: 0.4}}
  shock:
    states: [calm, high]
    parents: [season]
    probabilities:
      - when: {{season: lean}}
        then: {{calm: 0.5, high: 0.5}}
      - when: {{season: other}}
        then: {{calm: 0.7, high: 0.3}}
    dynamic:
      persistence: 0.8
outcomes:
  high_in_june:
    question: Is the shock high at the end of June 2026?
    node: shock
    states: [high]
    timing: end
    resolve_by: 2026-06-30
    resolution: By construction.
indicators:
  price:
    kind: normal
    depends_on: [shock, season]
    params:
      - when: {{shock: calm, season: lean}}
        then: {{mu: {price0}, sigma: 0.4}}
      - when: {{shock: calm, season: other}}
        then: {{mu: {price1}, sigma: 0.4}}
      - when: {{shock: high, season: lean}}
        then: {{mu: {price2}, sigma: 0.4}}
      - when: {{shock: high, season: other}}
        then: {{mu: {price3}, sigma: 0.4}}
  rate:
    kind: student_t
    depends_on: [shock, regime]
    within_report_correlation: 0.6
    params:
      - when: {{shock: calm, regime: soft}}
        then: {{mu: {rate0}, sigma: 0.3, nu: 4}}
      - when: {{shock: calm, regime: hard}}
        then: {{mu: {rate1}, sigma: 0.3, nu: 4}}
      - when: {{shock: high, regime: soft}}
        then: {{mu: {rate2}, sigma: 0.3, nu: 4}}
      - when: {{shock: high, regime: hard}}
        then: {{mu: {rate3}, sigma: 0.3, nu: 4}}
  flag:
    kind: binary
    depends_on: [shock]
    params:
      - when: {{shock: calm}}
        then: {{p: 0.2}}
      - when: {{shock: high}}
        then: {{p: 0.7}}
"""


def _tree(means: dict[str, tuple[float, ...]], *, uncertain: bool, survey: str, wire: str) -> Any:
    fields: dict[str, str] = {"survey": survey, "wire": wire}
    for name, values in means.items():
        for row, value in enumerate(values):
            held = uncertain and (name == "price" or row in UNCERTAIN_RATE_ROWS)
            fields[f"{name}{row}"] = f"{{mean: {value}, sd: {SD[name]}}}" if held else str(value)
    return parse_tree(TREE.format(**fields), file="stacking.yaml")


def _readings(seed: int = 0, *, span: bool = True) -> list[Reading]:
    """Monthly surveys from March 2025 to May 2026 (15 steps, both seasons), one to three
    cities each, the shock high from the autumn of 2025; a wire report most months; and, with
    ``span``, one survey whose readings (one report id) span two months."""
    rng = np.random.default_rng(seed)
    out: list[Reading] = []

    def add(indicator: str, value: str, day: str, source: str, **kw: Any) -> None:
        out.append(Reading(len(out) + 1, indicator, value, ObservedDate.parse(day), source, **kw))

    months = [(2025, m) for m in range(3, 13)] + [(2026, m) for m in range(1, 6)]
    for k, (year, month) in enumerate(months):
        high = (year, month) >= (2025, 9)
        lean = 5 <= month <= 8
        day = f"{year}-{month:02d}-{10 + k % 9:02d}"
        for city in range(1 + k % 3):  # 1, 2 or 3 cities: stacks of each size
            mu = STATED["price"][2 * int(high) + int(not lean)] + 0.2
            add("price", f"{rng.normal(mu, 0.4):.4f}", day, "survey", location=f"city {city}")
        if k % 2 == 0:
            for city in range(1 + k % 4 // 2):
                mu = STATED["rate"][2 * int(high)] + 0.3
                add(
                    "rate",
                    f"{mu + 0.3 * rng.standard_t(4):.4f}",
                    day,
                    "survey",
                    location=f"c{city}",
                )
        if k % 3 != 1:
            add("flag", "yes" if high else "no", f"{year}-{month:02d}-20", "wire")
            add("rate", f"{STATED['rate'][2 * int(high)]:.4f}", f"{year}-{month:02d}-20", "wire")
    if not span:
        return out
    # one report over two months
    add("price", "1.3", "2025-11-28", "survey", location="north", report="r-span")
    add("price", "1.5", "2025-12-03", "survey", location="north", report="r-span")
    return out


def _at(built: Any, point: dict[str, Any]) -> tuple[dict[str, Any], list[np.ndarray], float]:
    """The model's tables, stacked report tables and log evidence at ``point``."""
    model = built.model
    outputs = [t for pair in built.tables.values() for t in pair if t is not None]
    outputs += [*built.batches, model["log_evidence"]]
    fn = model.compile_fn(
        model.replace_rvs_by_values(outputs),
        inputs=model.value_vars,
        mode="FAST_COMPILE",
        point_fn=True,
    )
    values = iter(fn(point))
    tables = {}
    for node, (_, transition) in built.tables.items():
        cpt = np.asarray(next(values))[..., None]  # a batch of one draw, last
        tables[node] = (cpt, None if transition is None else np.asarray(next(values))[..., None])
    batches = [np.asarray(next(values))[..., None] for _ in built.batches]
    return tables, batches, float(next(values))


def _check(
    theta: dict[str, tuple[float, ...]], survey: str, wire: str, *, span: bool = True
) -> None:
    from scenariocast.engines.pymc import model as pymc_model
    from scenariocast.engines.pymc.posterior import _report_factors

    readings = _readings(span=span)
    uncertain = _tree(STATED, uncertain=True, survey=survey, wire=wire)
    exact_model = ExactModel(uncertain)
    evidence = exact_model.forecast(readings, as_of=AS_OF).evidence
    query = exact_model.query(evidence, None)
    built = pymc_model.build(exact_model, query)
    plan = built.plan

    # stacked: the expressions follow the shapes, not the 15 steps of readings
    steps = {query.network.names[v][1] for b in plan.batches for s in b.scopes for v in s}
    assert len(steps) >= 15
    # three local shapes: the shock alone (price), the shock and the regime (rate), and the
    # shock at two consecutive steps (the report over two months)
    spanning = [(("shock", 0), ("shock", 1))] if span else []
    assert sorted(b.local for b in plan.batches) == [
        (("regime", None), ("shock", 0)),
        (("shock", 0),),
        *spanning,
    ]
    # the past (March to December 2025) is summed out by a scan unless a report spans two
    # months; the regime, read in the past by the rate, rides along in the scan's belief
    assert (built.chain is None) == span
    if built.chain is not None:
        assert len(built.chain.steps) == 10
        assert [query.network.names[v] for v in built.chain.static] == [("regime", None)]
    # price: one to three cities in lean and in other months (6 shapes); rate: one or two
    # cities (2 shapes, no calendar node)
    assert len(plan.stacks) == 8
    assert plan.n_uncertain > 3 * len(plan.batches)

    point = built.model.initial_point()
    for name, values in theta.items():
        for row, value in enumerate(values):
            if f"mu:{name}[{row}]" in point:
                point[f"mu:{name}[{row}]"] = np.asarray(value)
    tables, batches, log_evidence = _at(built, point)

    fixed = ExactModel(_tree(theta, uncertain=False, survey=survey, wire=wire))
    want = fixed.query(fixed.forecast(readings, as_of=AS_OF).evidence, None)
    assert log_evidence == pytest.approx(float(want.structure.jt.log_z(want.factors())), abs=1e-9)
    reports = _report_factors(query, SimpleNamespace(built=built), batches, 1)  # type: ignore[arg-type]
    for i, ((scope, values), (want_scope, want_values)) in enumerate(
        zip(reports, want.report_factors, strict=True)
    ):
        label = query.evidence.reports[i].label
        assert scope == want_scope, label  # the report's variables: its own step
        got = np.asarray(values)
        got = got[..., 0] if got.ndim > len(scope) else got
        np.testing.assert_allclose(got, want_values, rtol=0, atol=1e-9, err_msg=label)
    draws = exact_model.evaluate(query, tables, 1, reports)
    for node, path in fixed.forecast(readings, as_of=AS_OF).steps.items():
        for t, step in enumerate(path):
            for k, p in enumerate(step.probabilities.values()):
                assert float(draws.steps[node][t, k, 0]) == pytest.approx(p, abs=1e-9)


def test_stacked_reports_at_other_parameter_values_are_the_exact_engines() -> None:
    """Every reading fully trusted (the reliability mixture drops out), the means held away
    from the stated ones: the model equals the exact engine on a tree that writes those
    means."""
    theta = {"price": (0.4, -0.2, 1.3, 0.9), "rate": (2.0, 2.5, 2.6, 3.7)}
    _check(theta, survey="1.0", wire="1.0")


def test_stacked_reports_at_the_stated_means_with_reliabilities_are_the_exact_engines() -> None:
    """At the stated means, with a reliability below one and one held with uncertainty (at its
    mean), each report's mixture with its prior predictive is the exact engine's."""
    _check(STATED, survey="0.85", wire="{mean: 0.7, sd: 0.1}")


def test_the_past_summed_out_by_a_scan_is_the_exact_engines() -> None:
    """No report spans two months: the ten months of 2025 are one repeated step (a scan), with
    the regime read in the past carried along. Away from the stated means, and at them with an
    uncertain reliability, the log evidence, each report's factor and every step's
    probabilities are still the exact engine's."""
    theta = {"price": (0.4, -0.2, 1.3, 0.9), "rate": (2.0, 2.5, 2.6, 3.7)}
    _check(theta, survey="1.0", wire="1.0", span=False)
    _check(STATED, survey="0.85", wire="{mean: 0.7, sd: 0.1}", span=False)


@pytest.mark.slow
def test_the_scans_gradient_is_the_unrolled_junction_trees() -> None:
    """What NUTS sees: the log density and its gradient at random points (every table, mean
    and reliability away from the stated numbers) are the same whether the past is scanned or
    unrolled in the junction tree."""
    import pytensor
    import pytensor.tensor as pt

    from scenariocast.engines.pymc import model as pymc_model

    readings = _readings(span=False)
    tree = _tree(STATED, uncertain=True, survey="0.85", wire="{mean: 0.7, sd: 0.1}")
    exact_model = ExactModel(tree)
    query = exact_model.query(exact_model.forecast(readings, as_of=AS_OF).evidence, None)
    got = []
    for scan in (True, False):
        built = pymc_model.build(exact_model, query, scan=scan)
        assert (built.chain is not None) == scan
        model = built.model
        logp = model.logp()
        fn = pytensor.function(
            model.value_vars, [logp, *pt.grad(logp, model.value_vars)], mode="FAST_COMPILE"
        )
        start = model.initial_point()
        rng = np.random.default_rng(4)
        points = [
            [start[v.name] + rng.uniform(-1.0, 1.0, start[v.name].shape) for v in model.value_vars]
            for _ in range(3)
        ]
        got.append([[np.asarray(x) for x in fn(*p)] for p in points])
    for scanned, unrolled in zip(*got, strict=True):
        for a, b in zip(scanned, unrolled, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
