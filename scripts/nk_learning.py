#!/usr/bin/env python
"""Learning from history on the North Korea tree: the PyMC engine on the 2023-2025 ledger.

    python scripts/nk_learning.py                 # run and print the summary (JSON)
    python scripts/nk_learning.py --write         # and store it for the walkthrough notebook
    python scripts/nk_learning.py --tree out.yaml # only write the learning variant of the tree
    python scripts/nk_learning.py --graph         # only count the model's operations
    python scripts/nk_learning.py --profile       # only compile it and time one evaluation

The variant is scenarios/nk-2026.yaml with corn's four means held with sd 0.25 and the dollar's
serious and severe means (six rows, one per state of market controls) with sd 0.2, as
docs/pymc.md ("Learning from history") describes; everything else is the shipped tree, and the
exact engine reads the same means. The readings are scenarios/evidence/nk-indicators-2023-2025.csv
imported into a fresh ledger. The run times building the model, compiling it (the log density
and its gradient, in a fresh PyTensor compilation directory unless ``--warm``) and sampling
(nutpie, 2 chains), and stores the engine's diagnostics, the prior and posterior of each learnt
mean, and each outcome's probability with its 90% interval next to the exact engine's.
``--write`` puts the summary in notebooks/data/nk-2026-learning.json. ``--graph`` builds the
model of the variant and of the shipped tree (every mean fixed, the baseline) and counts the
operations of each log-density, with and without its gradient, and the evidence plan (how many
reports are expressions, in how many stacked expressions and report tensors).

``--profile`` builds and compiles the model (``--unrolled``: with the past unrolled in the
junction tree rather than scanned; ``--mode``: another PyTensor backend) and times evaluations of
its log density and gradient; ``--graph`` also counts the unrolled model's operations.

docs/pymc.md ("What it costs") has what runs measured: with the past scanned, the model
compiles in minutes; on a shared two-core machine the readings from 2025 on sample to
convergence in about half an hour (the stored run), the whole ledger had not finished in 53.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
CSV = SCENARIOS / "evidence" / "nk-indicators-2023-2025.csv"
OUT = ROOT / "notebooks" / "data" / "nk-2026-learning.json"
AS_OF = dt.date(2026, 11, 28)  # the walkthrough's session day

#: The means held with uncertainty: indicator -> (the rows' stated means, their prior sd).
LEARNT = {
    "corn_price_market": (("0.2852", "0.627", "0.8606", "1.0837"), 0.25),
    "usd_kpw_market": (("1.5213", "1.5413", "1.5813", "1.7124", "1.7324", "1.7724"), 0.2),
}


def learning_text(text: str) -> str:
    """The shipped tree's YAML with the learnt means written ``{mean, sd}``."""
    out, section, done = [], None, 0
    for line in text.splitlines(keepends=True):
        head = re.match(r"^  (\w+):\s*$", line)
        if head:
            section = head.group(1)
        found = re.search(r"\bmu: ([0-9.]+),", line)
        if found and section in LEARNT and found.group(1) in LEARNT[section][0]:
            sd = LEARNT[section][1]
            line = line.replace(
                f"mu: {found.group(1)},", f"mu: {{mean: {found.group(1)}, sd: {sd}}},"
            )
            done += 1
        out.append(line)
    want = sum(len(means) for means, _ in LEARNT.values())
    if done != want:
        raise ValueError(f"expected {want} means to hold with uncertainty, found {done}")
    text = "".join(out)
    return text.replace("\nid: nk-2026\n", "\nid: nk-2026-learning\n", 1)


def main() -> None:
    """Run (or write the tree) as the command line says."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--write", action="store_true", help=f"store the summary in {OUT}")
    parser.add_argument("--tree", type=Path, help="only write the variant tree there")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warm", action="store_true", help="keep PyTensor's compilation dir")
    parser.add_argument("--graph", action="store_true", help="only count the model's operations")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only build and compile the model, and time its log density and gradient",
    )
    parser.add_argument(
        "--mode",
        help="PyTensor's compilation mode (default: its own, Numba; CVM: the C backend)",
    )
    parser.add_argument(
        "--unrolled",
        action="store_true",
        help="with --profile: unroll the past in the junction tree instead of scanning it",
    )
    parser.add_argument(
        "--since",
        type=dt.date.fromisoformat,
        help="only the readings observed on or after this day (a shorter history to unroll)",
    )
    args = parser.parse_args()
    shipped = (SCENARIOS / "nk-2026.yaml").read_text(encoding="utf-8")
    text = learning_text(shipped)
    if args.tree is not None:
        args.tree.write_text(text, encoding="utf-8")
        return
    if args.graph:
        print(json.dumps(graph_sizes({"learning": text, "shipped": shipped}), indent=1))
        return
    tmp = Path(tempfile.mkdtemp(prefix="nk-learning-"))
    flags = [] if args.warm else [f"base_compiledir={tmp / 'pytensor'}"]
    if args.mode:
        flags.append(f"mode={args.mode}")
    if flags:  # before PyTensor is imported
        os.environ["PYTENSOR_FLAGS"] = ",".join(flags)
    if args.profile:
        print(json.dumps(profile(text, tmp, args), indent=1))
        return
    summary = run(text, tmp, args)
    blob = json.dumps(summary, indent=1)
    print(blob)
    if args.write:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(blob + "\n", encoding="utf-8")
        print(f"wrote {OUT}", file=sys.stderr)


def _readings(tmp: Path) -> list[object]:
    from scenariocast import Catalog, Ledger

    ledger = Ledger(tmp / "ledger.db")
    ledger.import_csv(CSV, catalog=Catalog.from_dir(SCENARIOS))
    return list(ledger.readings())


def graph_sizes(texts: dict[str, str]) -> dict[str, dict[str, int]]:
    """For each tree text, the evidence plan and the operations of the model's log-density."""
    import pytensor.tensor as pt
    from pytensor.graph.traversal import applys_between

    from scenariocast.engines.exact.model import ExactModel
    from scenariocast.engines.pymc import model as pymc_model
    from scenariocast.spec.load import parse_tree

    readings = _readings(Path(tempfile.mkdtemp(prefix="nk-learning-")))
    out = {}
    runs = [(name, text, True) for name, text in texts.items()]
    runs += [(f"{name}, past unrolled", text, False) for name, text in texts.items()]
    for name, text, scan in runs:
        exact = ExactModel(parse_tree(text, file=f"{name}.yaml"))
        query = exact.query(exact.forecast(readings, as_of=AS_OF).evidence, None)  # type: ignore[arg-type]
        built = pymc_model.build(exact, query, scan=scan)
        jt = built.chain.jt if built.chain is not None else query.structure.jt
        model = built.model
        logp = model.logp()
        grad = pt.grad(logp, model.value_vars)
        out[name] = {
            "reports": len(query.evidence.reports),
            "uncertain_reports": built.plan.n_uncertain,
            "stacked_expressions": len(built.plan.stacks),
            "report_tensors": len(built.plan.batches),
            "steps": query.network.hi - query.network.lo + 1,
            "scanned_steps": len(built.chain.steps) if built.chain is not None else 0,
            "cliques": len(jt.cliques),
            "logp_operations": len(list(applys_between(model.value_vars, [logp]))),
            "logp_and_gradient_operations": len(
                list(applys_between(model.value_vars, [logp, *grad]))
            ),
        }
    return out


def profile(text: str, tmp: Path, args: argparse.Namespace) -> dict[str, object]:
    """Build and compile the variant's model; time its log density and gradient."""
    import numpy as np

    from scenariocast.engines.exact.model import ExactModel
    from scenariocast.engines.pymc import sampling
    from scenariocast.spec.load import parse_tree

    tree = parse_tree(text, file="nk-2026-learning.yaml")
    readings = _readings(tmp)
    if args.since is not None:
        readings = [r for r in readings if r.observed.start >= args.since]  # type: ignore[attr-defined]
    exact_model = ExactModel(tree)
    query = exact_model.query(exact_model.forecast(readings, as_of=AS_OF).evidence, None)
    t0 = time.perf_counter()
    compiled = sampling.compile_model(exact_model, query, scan=not args.unrolled)
    rng = np.random.default_rng(0)
    points = [compiled.x0 + rng.uniform(-1.0, 1.0, compiled.ndim) for _ in range(5)]
    compiled.logp_dlogp(points[0])  # Numba compiles on the first call
    t1 = time.perf_counter()
    n = 0
    t2 = time.perf_counter()
    while time.perf_counter() - t2 < 10.0 and n < 2000:
        compiled.logp_dlogp(points[n % len(points)])
        n += 1
    t3 = time.perf_counter()
    return {
        "since": args.since.isoformat() if args.since else None,
        "steps": [query.network.lo, query.network.hi],
        "reports": len(query.evidence.reports),
        "dimensions": compiled.ndim,
        "compile_seconds": round(t1 - t0, 1),
        "logp_and_gradient_ms": round(1000 * (t3 - t2) / n, 3),
        "compile_dir": "warm" if args.warm else "fresh",
        "past": "unrolled" if args.unrolled else "scan",
        "mode": args.mode or "default (Numba)",
    }


def run(text: str, tmp: Path, args: argparse.Namespace) -> dict[str, object]:
    """Forecast the variant with both engines; the timings, diagnostics and numbers."""
    import arviz as az
    import numpy as np

    from scenariocast.engines.exact import forecast_exact
    from scenariocast.engines.exact.model import ExactModel
    from scenariocast.spec.load import parse_tree

    tree = parse_tree(text, file="nk-2026-learning.yaml")
    readings = _readings(tmp)
    if args.since is not None:
        readings = [r for r in readings if r.observed.start >= args.since]  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    from scenariocast.engines.pymc import evidence, posterior, priors, sampling

    exact_model = ExactModel(tree)
    point = exact_model.forecast(readings, as_of=AS_OF)
    query = exact_model.query(point.evidence, None)
    plan = evidence.plan(exact_model, query, priors.uncertain_indicators(tree))
    t1 = time.perf_counter()
    compiled = sampling.compile_model(exact_model, query)  # built and compiled, then cached
    compiled.logp_dlogp(compiled.x0)  # Numba compiles on the first call
    t2 = time.perf_counter()
    run_ = posterior.forecast_pymc(
        tree,
        readings,
        as_of=AS_OF,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        seed=args.seed,
        exact=exact_model,
    )
    t3 = time.perf_counter()
    exact = forecast_exact(tree, readings, as_of=AS_OF)
    post = run_.datatree["posterior"]
    means = []
    for name, (_, sd) in LEARNT.items():
        spec = tree.indicators[name].spec
        for row, params in enumerate(spec.params):
            var = f"mu:{name}[{row}]"
            if var not in post:
                continue
            draws = np.asarray(post[var]).ravel()
            lo, hi = np.quantile(draws, (0.05, 0.95))
            rhat = float(az.rhat(run_.datatree, var_names=[var])[var])
            ess = float(az.ess(run_.datatree, var_names=[var], method="bulk")[var])
            means.append(
                {
                    "indicator": name,
                    "row": row,
                    "when": dict(params.when),
                    "prior_mean": float(params.then["mu"].mean),  # type: ignore[union-attr]
                    "prior_sd": sd,
                    "posterior_mean": float(draws.mean()),
                    "posterior_sd": float(draws.std()),
                    "posterior_low": float(lo),
                    "posterior_high": float(hi),
                    "rhat": rhat,
                    "ess_bulk": ess,
                }
            )
    outcomes = {
        oid: {
            "exact": exact.outcomes[oid].probability,
            "pymc": out.probability,
            "low": out.interval[0] if out.interval else None,
            "high": out.interval[1] if out.interval else None,
        }
        for oid, out in run_.result.outcomes.items()
    }
    diag = run_.result.diagnostics
    return {
        "tree": "scenarios/nk-2026.yaml with the means of scripts/nk_learning.py LEARNT uncertain",
        "readings": str(CSV.relative_to(ROOT)),
        "since": args.since.isoformat() if args.since else None,
        "n_readings": len(readings),
        "steps": [query.network.lo, query.network.hi],
        "scanned_steps": len(compiled.built.chain.steps) if compiled.built.chain else 0,
        "dimensions": compiled.ndim,
        "as_of": AS_OF.isoformat(),
        "reports": len(query.evidence.reports),
        "uncertain_reports": plan.n_uncertain,
        "batches": len(plan.batches),
        "stacks": len(plan.stacks),
        "seconds": {
            "plan": round(t1 - t0, 1),
            "build_and_compile": round(t2 - t1, 1),
            "sample_and_summarise": round(t3 - t2, 1),
        },
        "compile_dir": "warm" if args.warm else "fresh",
        "sampler": {"draws": args.draws, "tune": args.tune, "chains": args.chains},
        "diagnostics": {k: v for k, v in diag.items() if k != "interval"},
        "means": means,
        "outcomes": outcomes,
    }


if __name__ == "__main__":
    main()
