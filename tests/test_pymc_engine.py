"""The PyMC engine: agreement with the exact engine, calibration of the sampled posterior,
what the DataTree holds, provenance, diagnostics, and the command line.

Sampling is slow next to the rest of the suite: fits are shared through module-scoped
fixtures, and the longest checks are marked ``slow`` (``make test`` runs them).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from scenariocast.cli import app
from scenariocast.engines.exact import forecast_exact
from scenariocast.engines.exact.model import ExactModel
from scenariocast.errors import PosteriorMismatchError, SpecError
from scenariocast.evidence.readings import ObservedDate, Reading
from scenariocast.spec.load import load_tree, parse_tree
from scenariocast.testing import (
    random_dynamic_tree_spec,
    random_readings,
    random_tree_spec,
    tree_from_dict,
)
from tests.conftest import FAR_FUTURE

pymc_engine = pytest.importorskip("scenariocast.engines.pymc")

ROOT = Path(__file__).resolve().parent.parent
UNCERTAIN = ROOT / "tests" / "fixtures" / "spec" / "uncertain"
AS_OF = dt.date(2026, 6, 30)


def _reading(rid: int, indicator: str, value: str, on: str, source: str = "survey") -> Reading:
    return Reading(rid, indicator, value, ObservedDate.parse(on), source, location=f"c{rid}")


# ---------------------------------------------------------------------------------------------
# agreement with the exact engine


def _firm(spec: dict[str, Any]) -> dict[str, Any]:
    """The same tree with every table held very firmly (a huge Dirichlet concentration)."""
    return {**spec, "strength": 1e6}


@pytest.mark.slow
@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(lambda: random_tree_spec(3, 4, n_indicators=5), id="static-4-nodes"),
        pytest.param(
            lambda: random_dynamic_tree_spec(5, 3, n_steps=4, max_states=2), id="dynamic-3-nodes"
        ),
        pytest.param(
            lambda: random_dynamic_tree_spec(8, 2, n_steps=3, calendar=True), id="dynamic-calendar"
        ),
    ],
)
def test_firm_numbers_give_the_exact_engines_probabilities(spec: Any) -> None:
    tree = tree_from_dict(_firm(spec()))
    readings = random_readings(tree, 12, 1, n_dates=6)
    exact = forecast_exact(tree, readings, as_of=FAR_FUTURE)
    run = pymc_engine.forecast_pymc(tree, readings, as_of=FAR_FUTURE, draws=300, seed=3)
    for oid, out in exact.outcomes.items():
        assert run.result.outcomes[oid].probability == pytest.approx(out.probability, abs=0.005)
    for node, states in exact.nodes.items():
        for s, p in states.items():
            assert run.result.nodes[node][s] == pytest.approx(p, abs=0.005), (node, s)
    for node, path in exact.steps.items():
        for got, want in zip(run.result.steps[node], path, strict=True):
            for s, p in want.probabilities.items():
                assert got.probabilities[s] == pytest.approx(p, abs=0.005)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["nk-2026.yaml", "nk-2026-china-first.yaml"])
def test_the_shipped_trees_at_the_stated_numbers_give_the_exact_engines_probabilities(
    name: str,
) -> None:
    """The shipped (dynamic) trees through the PyMC engine's model at the numbers in the file.

    Every prior's support point is the stated number (a Dirichlet row's mean, a Beta's mean, an
    uncertain mean's centre): a posterior held there is the limit of every ``strength`` made
    very large. There the model's evidence potential must be the exact engine's log Z of the same
    query (a factor dropped, a step missed or a report counted twice changes it), and the
    posterior's outcome and node probabilities, computed from the model's tables and report
    factors as a sampled draw's are, the exact engine's. Sampling strength-10^6 posteriors of
    these trees took NUTS over twenty minutes; the sampled agreement runs on the small random
    trees above.
    """
    from types import SimpleNamespace

    from scenariocast.engines.pymc import model as pymc_model
    from scenariocast.engines.pymc.posterior import _report_factors

    tree = load_tree(ROOT / "scenarios" / name)
    readings = [
        _reading(1, "rice_price_market", "26000", "2026-03-10", "daily_nk"),
        _reading(2, "rice_price_market", "27500", "2026-03-10", "daily_nk"),
        _reading(3, "grain_distribution_report", "yes", "2026-04", "wire")
        if "grain_distribution_report" in tree.indicators
        else _reading(3, "rice_price_market", "25000", "2026-04-10", "daily_nk"),
        _reading(4, "rice_price_market", "21000", "2025-10-10", "daily_nk"),
    ]
    exact = ExactModel(tree)
    point = exact.forecast(readings, as_of=AS_OF)
    query = exact.query(point.evidence, None)
    assert len(query.report_factors) >= 3
    built = pymc_model.build(exact, query)
    model = built.model
    outputs = [t for pair in built.tables.values() for t in pair if t is not None]
    outputs += [*built.batches, model["log_evidence"]]
    at = model.compile_fn(
        model.replace_rvs_by_values(outputs),
        inputs=model.value_vars,
        mode="FAST_COMPILE",
        point_fn=True,
    )
    values = iter(at(model.initial_point()))
    tables = {}
    for node, (_, transition) in built.tables.items():
        cpt = np.asarray(next(values))[..., None]  # a batch of one draw, last
        tables[node] = (cpt, None if transition is None else np.asarray(next(values))[..., None])
    batches = [np.asarray(next(values))[..., None] for _ in built.batches]
    log_evidence = float(next(values))

    assert log_evidence == pytest.approx(float(query.structure.jt.log_z(query.factors())), abs=1e-9)
    assert log_evidence < -0.5  # the readings are informative: a prior-only potential would be 0
    reports = _report_factors(query, SimpleNamespace(built=built), batches, 1)  # type: ignore[arg-type]
    draws = exact.evaluate(query, tables, 1, reports)
    for oid, out in point.outcomes.items():
        assert float(draws.outcomes[oid][0]) == pytest.approx(out.probability, abs=1e-9), oid
    for node, states in point.nodes.items():
        got = np.asarray(draws.nodes[node])[:, 0]
        assert got == pytest.approx(list(states.values()), abs=1e-9), node


# ---------------------------------------------------------------------------------------------
# one fit of a tree with uncertain numbers, shared by the checks below


@pytest.fixture(scope="module")
def uncertain_run() -> Any:
    tree = load_tree(UNCERTAIN / "valid_uncertain.yaml")
    rng = np.random.default_rng(0)
    readings = []
    for k in range(8):  # a severe shock: prices around 1.0, two cities per survey
        day = f"2026-0{1 + k % 6}-{10 + k:02d}"
        for _city in range(2):
            readings.append(
                _reading(len(readings) + 1, "price", f"{rng.normal(1.1, 0.4):.4f}", day)
            )
    readings.append(_reading(len(readings) + 1, "report", "yes", "2026-06", "wire"))
    run = pymc_engine.forecast_pymc(
        tree, readings, as_of=AS_OF, draws=500, seed=11, readings_hash="r1"
    )
    return tree, readings, run


def test_uncertain_numbers_are_learnt_and_intervals_contain_the_mean(uncertain_run: Any) -> None:
    tree, readings, run = uncertain_run
    post = run.datatree["posterior"]
    assert set(post.data_vars) >= {
        "table:shock",
        "reliability:survey",
        "mu:price[0]",
        "mu:price[1]",
        "sigma:price[1]",
        "p:report[0]",
        "outcome_probability",
        "state:shock",
        "log_evidence",
    }
    # the severe state's mean moved from its prior (1.0, sd 0.3) towards the readings' 1.1
    # and is held more firmly than the prior held it
    mu = np.asarray(post["mu:price[1]"]).ravel()
    assert abs(mu.mean() - 1.1) < abs(1.0 - 1.1) + 0.1
    assert mu.std() < 0.3
    out = run.result.outcomes["severe"]
    assert out.interval is not None
    assert out.interval[0] < out.probability < out.interval[1]
    exact = forecast_exact(tree, readings, as_of=AS_OF).outcomes["severe"]
    assert out.probability == pytest.approx(exact.probability, abs=0.1)
    assert out.prior == pytest.approx(exact.prior)


def test_log_likelihood_and_log_prior_groups_are_there_and_finite(uncertain_run: Any) -> None:
    import arviz as az

    _, _, run = uncertain_run
    dt_ = run.datatree
    ll = dt_["log_likelihood"]
    assert set(ll.data_vars) == {"report", "report_in_order"}
    n_reports = ll.sizes["reports"]
    assert n_reports == 9  # eight surveys of two cities, and one wire report
    for var in ("report", "report_in_order"):
        assert np.isfinite(np.asarray(ll[var])).all()
    # in order, the reports' terms add up to the log-likelihood of every draw
    total = np.asarray(ll["report_in_order"]).sum(axis=-1)
    np.testing.assert_allclose(total, np.asarray(dt_["posterior"]["log_evidence"]), atol=1e-8)
    lp = dt_["log_prior"]
    assert set(lp.data_vars) >= {"table:shock", "reliability:survey", "mu:price[0]"}
    assert all(np.isfinite(np.asarray(lp[v])).all() for v in lp.data_vars)
    loo = az.loo(dt_, var_name="report")
    assert np.isfinite(float(loo.elpd))
    sense = az.psense_summary(dt_, likelihood_var_names=["report_in_order"])
    assert len(sense) > 0
    assert set(dt_["posterior_predictive"].data_vars) == {"price", "report"}


def test_diagnostics_say_whether_it_converged(uncertain_run: Any) -> None:
    _, _, run = uncertain_run
    d = run.result.diagnostics
    assert d["converged"] is True and d["reasons"] == []
    assert d["rhat_max"] < 1.01 and d["ess_bulk_min"] >= 400 and d["divergences"] == 0
    data = run.result.to_dict()
    severe = data["outcomes"]["severe"]
    assert severe["mean"] == severe["probability"]
    assert severe["ci_low"] < severe["mean"] < severe["ci_high"]
    assert data["diagnostics"]["interval"] == "90% equal-tailed"
    assert set(data["node_intervals"]["shock"]) == {"calm", "severe"}


def test_the_posterior_predictive_is_summarised_for_each_indicator(uncertain_run: Any) -> None:
    tree, readings, run = uncertain_run
    post = run.datatree["posterior"]
    shock = np.asarray(post["state:shock"]).reshape(-1, 2)  # (draw, [calm, severe])
    p_calm = np.asarray(post["p:report[0]"]).ravel()
    # P(yes) is the posterior mean of P(calm) p_calm + P(severe) 0.7, up to Monte Carlo error
    expected = float(np.mean(shock[:, 0] * p_calm + shock[:, 1] * 0.7))
    predictive = run.result.predictive
    assert predictive["report"].probabilities is not None
    assert predictive["report"].probabilities["yes"] == pytest.approx(expected, abs=0.05)
    # the price: the readings' own range, mostly severe (mu near 1)
    price = predictive["price"]
    assert price.low is not None and price.median is not None and price.high is not None
    values = [float(r.value) for r in readings if r.indicator == "price"]
    inside = sum(price.low <= v <= price.high for v in values)
    assert inside >= 12, (inside, len(values))  # a 90% range holds most of 16 readings
    assert price.low < price.median < price.high and 0.6 < price.median < 1.4
    assert run.result.to_dict()["predictive"]["report"] == {
        "probabilities": {"yes": predictive["report"].probabilities["yes"]}
    }
    # the report shows it as a row of each indicator's table
    from scenariocast.report.content import POSTERIOR_PREDICTIVE, _indicators

    shown, _ = _indicators(tree, run.result, readings)
    rows = {v.id: v.rows[-1] for v in shown}
    assert rows["price"].states == POSTERIOR_PREDICTIVE
    assert rows["price"].prediction.median == price.median


def test_a_saved_posterior_is_refused_for_other_readings_or_another_tree(
    uncertain_run: Any, tmp_path: Path
) -> None:
    tree, _, run = uncertain_run
    path = run.save(tmp_path / "posterior.nc")
    loaded = pymc_engine.load_posterior(path, tree, "r1")
    assert loaded.attrs["seed"] == 11 and loaded.attrs["tree"] == "small-uncertain"
    np.testing.assert_allclose(
        np.asarray(loaded["posterior"]["outcome_probability"]),
        np.asarray(run.datatree["posterior"]["outcome_probability"]),
    )
    with pytest.raises(PosteriorMismatchError, match="sampled on other readings"):
        pymc_engine.load_posterior(path, tree, "r2")
    other = parse_tree(
        (UNCERTAIN / "valid_uncertain.yaml").read_text().replace("strength: 30", "strength: 31"),
        file="other.yaml",
    )
    with pytest.raises(PosteriorMismatchError, match="not of small-uncertain as it is now"):
        pymc_engine.load_posterior(path, other, "r1")


def test_the_same_seed_gives_the_same_numbers(uncertain_run: Any) -> None:
    tree, readings, run = uncertain_run
    again = pymc_engine.forecast_pymc(
        tree, readings, as_of=AS_OF, draws=500, seed=11, readings_hash="r1"
    )
    assert again.result.outcomes == run.result.outcomes


def test_too_few_draws_is_not_converged_and_says_so() -> None:
    tree = load_tree(UNCERTAIN / "valid_uncertain.yaml")
    run = pymc_engine.forecast_pymc(tree, [], as_of=AS_OF, draws=8, seed=1)
    d = run.result.diagnostics
    assert d["converged"] is False
    assert any("too few effective draws" in r for r in d["reasons"])
    from scenariocast.report.text import render_forecast

    assert render_forecast(run.result).startswith("WARNING: the sampler did not converge")


# ---------------------------------------------------------------------------------------------
# bad input and the command line


@pytest.mark.parametrize(
    ("fixture", "field", "message"),
    [
        ("negative_sd", "indicators.price.params.0.then.mu.sd", "greater than 0"),
        ("reliability_mean", "sources.survey.reliability.mean", "strictly between 0 and 1"),
        ("reliability_sd", "sources.survey.reliability.sd", "cannot have sd 0.45"),
        ("sigma_mean", "indicators.price.params.1.then.sigma.mean", "the mean must be > 0"),
        ("p_mean", "indicators.report.params.0.then.p.mean", "strictly between 0 and 1"),
        ("uncertain_key", "indicators.price.params.0.then.mu", "unknown key 'sdev'"),
    ],
)
def test_invalid_uncertain_numbers_fail_validation_before_any_compiling(
    fixture: str, field: str, message: str
) -> None:
    with pytest.raises(SpecError) as info:
        load_tree(UNCERTAIN / f"wrong_{fixture}.yaml")
    found = [p for p in info.value.problems if message in p.message]
    assert found, [str(p) for p in info.value.problems]
    assert ".".join(str(x) for x in found[0].path) == field
    assert found[0].line is not None


def test_the_exact_engine_uses_the_means_of_uncertain_numbers() -> None:
    tree = load_tree(UNCERTAIN / "valid_uncertain.yaml")
    plain = parse_tree(
        re.sub(
            r"\{mean: ([0-9.]+), sd: [0-9.]+\}",
            r"\1",
            (UNCERTAIN / "valid_uncertain.yaml").read_text(),
        ),
        file="plain.yaml",
    )
    readings = [_reading(1, "price", "0.9", "2026-03-01"), _reading(2, "report", "yes", "2026-03")]
    a = forecast_exact(tree, readings, as_of=AS_OF)
    b = forecast_exact(plain, readings, as_of=AS_OF)
    assert a.outcomes["severe"].probability == pytest.approx(b.outcomes["severe"].probability)


def test_forecast_with_the_exact_engine_imports_neither_pymc_nor_arviz(tmp_path: Path) -> None:
    scen = tmp_path / "scenarios"
    scen.mkdir()
    tree = scen / "t.yaml"
    tree.write_text((UNCERTAIN / "valid_uncertain.yaml").read_text())
    env = {"SCENARIOCAST_DB": str(tmp_path / "l.db"), "SCENARIOCAST_SCENARIOS": str(scen)}
    exe = [sys.executable, "-X", "importtime", "-m", "scenariocast.cli"]
    subprocess.run([*exe, "ledger", "init"], env=env, check=True, capture_output=True)
    proc = subprocess.run(
        [*exe, "forecast", str(tree), "--json"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "scenariocast" in imported  # the trace is there
    assert not imported & {"pymc", "arviz", "pytensor", "nutpie", "arviz_stats", "arviz_base"}


def test_the_command_line_forecasts_with_pymc_and_strict_fails_unconverged(
    tmp_path: Path,
) -> None:
    scen = tmp_path / "scenarios"
    scen.mkdir()
    tree = scen / "t.yaml"
    tree.write_text((UNCERTAIN / "valid_uncertain.yaml").read_text())
    env = {"SCENARIOCAST_DB": str(tmp_path / "l.db"), "SCENARIOCAST_SCENARIOS": str(scen)}
    runner = CliRunner()
    result = runner.invoke(
        app, ["observe", "price", "1.2", "--on", "2026-03-01", "--source", "survey"], env=env
    )
    assert result.exit_code == 0, result.output
    args = ["forecast", str(tree), "--engine", "pymc", "--as-of", "2026-06-30", "--seed", "2"]
    result = runner.invoke(app, [*args, "--draws", "8", "--strict"], env=env)
    assert result.exit_code == 3, result.output
    assert "WARNING: the sampler did not converge" in result.stdout
    result = runner.invoke(
        app, [*args, "--draws", "400", "--json", "--save", str(tmp_path / "p.nc")], env=env
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["engine"] == "pymc" and data["diagnostics"]["converged"] is True
    assert {"mean", "ci_low", "ci_high"} <= set(data["outcomes"]["severe"])
    assert (tmp_path / "p.nc").exists()
    result = runner.invoke(app, ["forecast", str(tree), "--engine", "stan"], env=env)
    assert result.exit_code == 2 and "'stan' is not one of 'exact', 'pymc'" in result.stderr


# ---------------------------------------------------------------------------------------------
# simulation-based calibration


SBC_TREE = """
id: sbc
strength: 5
sources:
  survey: {reliability: 1.0}
nodes:
  x:
    states: [a, b]
    probabilities: {a: 0.4, b: 0.6}
outcomes:
  is_a:
    question: Is x a?
    node: x
    states: a
    resolve_by: 2026-12-31
    resolution: By construction.
indicators:
  signal:
    kind: binary
    depends_on: [x]
    params:
      - when: {x: a}
        then: {p: 0.2}
      - when: {x: b}
        then: {p: 0.8}
"""


@pytest.mark.slow
def test_simulation_based_calibration_ranks_are_uniform() -> None:
    """Draw the table from its prior (a Dirichlet of strength 5 around 0.4/0.6), the state
    from the table and six readings from the state; fit; the rank of the true parameter among
    the posterior draws is uniform when the engine samples the right posterior."""
    from scipy import stats

    tree = parse_tree(SBC_TREE, file="sbc.yaml")
    rng = np.random.default_rng(2026)
    n_sims, thin = 80, 10
    ranks = []
    for sim in range(n_sims):
        theta = rng.beta(5 * 0.4, 5 * 0.6)
        state = 0 if rng.random() < theta else 1
        p = (0.2, 0.8)[state]
        readings = [
            _reading(k + 1, "signal", "yes" if rng.random() < p else "no", f"2026-01-{k + 1:02d}")
            for k in range(6)
        ]
        run = pymc_engine.forecast_pymc(tree, readings, as_of=AS_OF, draws=500, seed=sim)
        draws = np.asarray(run.datatree["posterior"]["table:x"])[..., 0, 0]  # (chain, draw)
        kept = draws[:, ::thin].ravel()
        ranks.append(int((kept < theta).sum()))
    n_draws = len(kept)
    counts, _ = np.histogram(ranks, bins=5, range=(0, n_draws + 1))
    assert stats.chisquare(counts).pvalue > 0.001, counts
    # and the ranks are not piled at the edges, as an over- or under-dispersed posterior would
    edges = np.mean([(r < 0.1 * n_draws) or (r > 0.9 * n_draws) for r in ranks])
    assert edges < 0.35, edges
