"""The PyMC engine against a plain PyMC model of the same tree, and how it grows with readings.

Run with ``make bench-pymc`` (or ``python benchmarks/pymc_engine.py``). Every figure is wall time
to a converged posterior: a run whose smallest bulk effective sample size over every outcome
probability is at least 1,000 (draws are raised until it is).

- **scenariocast**: the PyMC engine (nutpie, the exact engine's junction tree in PyTensor, the
  readings as one constant log-potential per clique). *Cold*: a new process with an empty
  PyTensor compilation directory. *Warm*: the same forecast again in the session after a new
  reading (the compiled model is kept; the readings are data).
- **plain PyMC**: the model written the obvious way: the same Dirichlet priors, one likelihood
  term per reading (the same reliability mixture), the scenario states summed by enumerating
  all 729 of them, PyMC's default NUTS, nothing kept between runs. Timed in a new process,
  with PyTensor's compilation directory as the cold scenariocast run left it (its best case).
- **growth**: the scenariocast warm time with 100, 1,000, 10,000 and 100,000 readings.

The tree is the first edition of the North Korea tree (benchmarks/data), static, so that the
plain model can enumerate its states; readings are simulated from it (binary monthly reports
from several sources, each reading its own report). Targets: warm at least 3x faster than the
plain model; 100,000 readings at most 1.5x the time of 100.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "benchmarks" / "data" / "nk-2026-first-edition.yaml"
AS_OF = dt.date(2026, 6, 30)
ESS_TARGET = 1000
INDICATORS = (
    "grain_distribution_report",
    "market_crackdown_report",
    "unpaid_wages_report",
    "china_high_level_visit",
    "russia_high_level_visit",
)
SOURCES = ("wire", "daily_nk", "press", "state_media")


def readings(tree: Any, n: int, seed: int = 0) -> list[Any]:
    """``n`` binary readings drawn from one scenario of the tree, each its own report."""
    from scenariocast.evidence.readings import ObservedDate, Reading
    from scenariocast.testing import sample_scenario, sample_value

    rng = np.random.default_rng(seed)
    truth = sample_scenario(tree, rng)
    out = []
    for k in range(n):
        name = INDICATORS[k % len(INDICATORS)]
        source = SOURCES[k % len(SOURCES)]
        genuine = rng.random() < tree.sources[source].mean_reliability
        scenario = truth if genuine else sample_scenario(tree, rng)
        day = dt.date(2026, 1, 1) + dt.timedelta(days=int(rng.integers(0, 180)))
        out.append(
            Reading(
                id=k + 1,
                indicator=name,
                value=sample_value(tree, name, scenario, rng),
                observed=ObservedDate.parse(day.isoformat()),
                source=source,
                report=f"r{k + 1}",
            )
        )
    return out


def _ess(values: np.ndarray) -> float:
    import arviz as az

    return float(np.min(np.asarray(az.ess(values, method="bulk"))))


def converged_run(fn: Any, draws: int = 1000) -> tuple[float, int, float]:
    """Time ``fn(draws)``; raise draws until the smallest bulk ESS reaches the target.

    ``fn`` returns an array (chain, draw, outcome) of outcome probabilities. Returns the wall
    time of the run that reached it, its draws per chain and its smallest ESS.
    """
    for _ in range(5):
        t0 = time.perf_counter()
        probs = fn(draws)
        took = time.perf_counter() - t0
        ess = min(_ess(probs[..., j]) for j in range(probs.shape[-1]))
        if ess >= ESS_TARGET:
            return took, draws, ess
        draws = int(draws * 1.3 * ESS_TARGET / max(ess, 50.0))
    return took, draws, ess


def ours(n: int) -> tuple[float, int, float]:
    """scenariocast's PyMC engine, warm: the model compiled by a first forecast, then timed."""
    from scenariocast.engines.exact import ExactModel
    from scenariocast.engines.pymc import forecast_pymc
    from scenariocast.spec.load import load_tree

    tree = load_tree(TREE)
    exact = ExactModel(tree)
    data = readings(tree, n)
    forecast_pymc(tree, data[:-1], as_of=AS_OF, draws=50, seed=1, exact=exact)  # compiles

    def run(draws: int) -> np.ndarray:
        out = forecast_pymc(tree, data, as_of=AS_OF, draws=draws, seed=2, exact=exact)
        return np.asarray(out.datatree["posterior"]["outcome_probability"])

    return converged_run(run)


def ours_cold(n: int) -> float:
    """A first forecast in a new process with an empty compilation directory."""
    code = (
        "import sys, time; sys.path.insert(0, 'benchmarks'); import pymc_engine as b\n"
        "from scenariocast.spec.load import load_tree\n"
        "from scenariocast.engines.pymc import forecast_pymc\n"
        "t0 = time.perf_counter(); tree = load_tree(b.TREE)\n"
        f"forecast_pymc(tree, b.readings(tree, {n}), as_of=b.AS_OF, draws=1000, seed=2)\n"
        "print(time.perf_counter() - t0)\n"
    )
    return _subprocess_time(code)


def plain(n: int) -> tuple[float, int, float]:
    """The plain model, in a new process (nothing kept between runs)."""
    code = (
        "import sys, json; sys.path.insert(0, 'benchmarks'); import pymc_engine as b\n"
        f"print(json.dumps(b.converged_run(lambda d: b._plain_once({n}, d))))\n"
    )
    out = _subprocess(code)
    took, draws, ess = json.loads(out.strip().splitlines()[-1])
    return float(took), int(draws), float(ess)


def _plain_once(n: int, draws: int) -> np.ndarray:
    import itertools

    import pymc as pm
    import pytensor.tensor as pt

    from scenariocast.engines.exact import ExactModel
    from scenariocast.evidence.likelihood import log_likelihood
    from scenariocast.evidence.select import select_evidence
    from scenariocast.spec.load import load_tree

    tree = load_tree(TREE)
    data = readings(tree, n)
    names = list(tree.nodes)
    configs = np.array(list(itertools.product(*(range(tree.nodes[m].card) for m in names))))
    col = {m: i for i, m in enumerate(names)}
    evidence = select_evidence(tree, data, AS_OF)
    exact = ExactModel(tree)
    query = exact.query(evidence)
    prior = query.structure.prior
    net = query.network
    with pm.Model():
        log_joint = pt.zeros(len(configs))
        for m in names:
            node = tree.nodes[m]
            rows = node.cpt.reshape(-1, node.card)
            theta = pm.Dirichlet(f"p_{m}", a=node.strength * rows, shape=rows.shape)
            index = np.zeros(len(configs), dtype=int)
            for p in node.parents:
                index = index * tree.nodes[p].card + configs[:, col[p]]
            log_joint = log_joint + pt.log(theta[index, configs[:, col[m]]])
        for k, o in enumerate(evidence.observations):  # one likelihood term per reading
            ind = tree.indicators[o.indicator]
            table = log_likelihood(ind, np.array([o.value]))[0]
            per_config = table[tuple(configs[:, col[m]] for m in ind.scope)]
            scope = net.scope_at(ind.scope, None)
            log_q = float(np.log(np.sum(np.exp(table) * prior.joint(scope))))
            x = pm.Data(f"reading_{k}", per_config)
            r = o.reliability
            log_joint = log_joint + pt.logaddexp(np.log(r) + x, np.log1p(-r) + log_q)
        pm.Potential("evidence", pt.logsumexp(log_joint))
        outcome_index = []
        for out in tree.outcomes.values():
            states = [tree.nodes[out.node].states.index(s) for s in out.states]
            outcome_index.append(np.isin(configs[:, col[out.node]], states))
        post = pt.exp(log_joint - pt.logsumexp(log_joint))
        pm.Deterministic("outcomes", pt.stack([pt.sum(post[i]) for i in outcome_index]))
        trace = pm.sample(
            draws=draws, tune=draws, chains=2, cores=2, random_seed=3, progressbar=False
        )
    return np.asarray(trace["posterior"]["outcomes"])


def _subprocess(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _subprocess_time(code: str, env: dict[str, str] | None = None) -> float:
    return float(_subprocess(code, env).strip().splitlines()[-1])


def main() -> None:
    lines = ["PyMC engine, North Korea tree (first edition, static), to bulk ESS >= 1000:"]
    with tempfile.TemporaryDirectory() as compiledir:
        flags = {"PYTENSOR_FLAGS": f"base_compiledir={compiledir}"}
        os.environ.update(flags)
        cold = ours_cold(100)
        warm, draws, ess = ours(100)
        base, base_draws, base_ess = plain(100)
        lines += [
            f"  scenariocast, cold (new process, empty compile cache) {cold:7.1f} s",
            f"  scenariocast, warm (after a new reading)              {warm:7.1f} s"
            f"  ({draws} draws/chain, ESS {ess:.0f})",
            f"  plain PyMC model (enumeration, default NUTS)          {base:7.1f} s"
            f"  ({base_draws} draws/chain, ESS {base_ess:.0f})",
            f"  plain / scenariocast warm = {base / warm:.1f}x  (target >= 3x);"
            f" plain / cold = {base / cold:.1f}x",
            "  growth with readings (warm):",
        ]
        first = None
        for n in (100, 1_000, 10_000, 100_000):
            took, d, e = ours(n)
            first = first or took
            lines.append(
                f"    {n:7,d} readings {took:7.1f} s = {took / first:4.2f}x the time with 100"
                f"  ({d} draws/chain, ESS {e:.0f})" + ("  (target <= 1.5x)" if n == 100_000 else "")
            )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
