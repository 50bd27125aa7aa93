"""The exact engine on the 12 bnlearn networks against pgmpy's variable elimination, one run.

Run with ``make bench-networks`` (installs pgmpy, the `bench` extra). For each network and each of
its two evidence cases of tests/data/networks/references.json (3 and 4 observed variables), the
median time of all the marginals:

- **build + forecast**: ``scenariocast.Model(tree)`` then ``forecast(given=...)``, from the
  loaded tree;
- **prepared**: ``forecast(given=...)`` on a model built once;
- **pgmpy VE**: ``VariableElimination.query`` once per unobserved variable, on a model built
  once (pgmpy's tables are the same numbers, built from the same parsed network, so that its
  slow BIF reader is not timed).

Ratios are pgmpy's time over ours (targets: at least 5x for build + forecast, 10x prepared).
Then the time to load water's scenario tree (target under 0.2 s) against ``yaml.safe_load`` of
the same text in pure Python, and the wall time of ``scenariocast forecast --json`` on water given
3 observed variables against ``python -c "import pandas"`` (target: at most 2x), runs interleaved.
Figures to read, not assertions. ``--networks water,alarm`` times only those networks, and
``--no-loading`` leaves out the loading and command-line section (``python benchmarks/networks.py
--networks water --no-loading``, with pgmpy installed, times water alone).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = ROOT / "tests" / "data" / "networks"


def median_time(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn`` in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _pgmpy_model(net: object) -> object:
    from pgmpy.factors.discrete import TabularCPD
    from pgmpy.models import DiscreteBayesianNetwork

    variables = net.variables  # type: ignore[attr-defined]
    model = DiscreteBayesianNetwork()
    model.add_nodes_from(variables)
    model.add_edges_from((p, v) for v, var in variables.items() for p in var.parents)
    for v, var in variables.items():
        card = len(var.states)
        values = var.table.reshape(-1, card).T  # pgmpy: child's states by rows
        model.add_cpds(
            TabularCPD(
                v,
                card,
                values,
                evidence=var.parents or None,
                evidence_card=[len(variables[p].states) for p in var.parents] or None,
                state_names={u: variables[u].states for u in [v, *var.parents]},
            )
        )
    return model


def networks(only: Sequence[str] = ()) -> list[str]:
    """One line per network and case (``only`` those networks, if given), then the totals."""
    from pgmpy.inference import VariableElimination

    from scenariocast import Model
    from scenariocast.interop import read_network
    from scenariocast.interop.scenario import to_yaml
    from scenariocast.spec.load import parse_tree

    references = json.loads((NETWORKS / "references.json").read_text(encoding="utf-8"))
    lines = [
        "all marginals given 3-4 observed variables (median ms; ratio = pgmpy / scenariocast):",
        f"  {'network':<11}{'nodes':>6}{'obs':>4}{'build+fc':>10}{'prepared':>10}{'pgmpy VE':>10}"
        f"{'ratio':>8}{'prep. ratio':>12}",
    ]
    ratios: list[tuple[float, float]] = []
    unknown = sorted(set(only) - set(references["networks"]))
    if unknown:
        raise SystemExit(f"no network {', '.join(unknown)} in {NETWORKS / 'references.json'}")
    for name, cases in references["networks"].items():
        if only and name not in only:
            continue
        net = read_network(NETWORKS / f"{name}.bif")
        tree = parse_tree(to_yaml(net, tree_id=name), file=f"{name}.yaml")
        ids = {(v.label or v.id): v for v in net.variables.values()}
        pg = _pgmpy_model(net)
        ve = VariableElimination(pg)
        prepared = Model(tree)
        for case in cases[1:]:
            given = {
                ids[v].id: ids[v].states[ids[v].shown_states().index(s)]
                for v, s in case["evidence"].items()
            }
            hidden = [v for v in net.variables if v not in given]
            repeat = 3 if name == "water" else 7

            def ours_cold(given: dict[str, str] = given, tree: object = tree) -> object:
                return Model(tree).forecast(given=given, top=0)  # type: ignore[arg-type]

            def ours_warm(given: dict[str, str] = given, model: Model = prepared) -> object:
                return model.forecast(given=given, top=0)

            def theirs(
                given: dict[str, str] = given, hidden: list[str] = hidden, ve: object = ve
            ) -> object:
                return [ve.query([v], evidence=given, show_progress=False) for v in hidden]  # type: ignore[attr-defined]

            ours_warm()
            theirs()
            cold = median_time(ours_cold, repeat)
            warm = median_time(ours_warm, repeat)
            ref = median_time(theirs, repeat)
            ratios.append((ref / cold, ref / warm))
            lines.append(
                f"  {name:<11}{len(net.variables):>6}{len(given):>4}{1000 * cold:>10.3f}"
                f"{1000 * warm:>10.3f}{1000 * ref:>10.2f}{ref / cold:>7.1f}x{ref / warm:>11.1f}x"
            )
    lines.append(
        f"  lowest ratio: build + forecast {min(r for r, _ in ratios):.1f}x (target >= 5x), "
        f"prepared {min(r for _, r in ratios):.1f}x (target >= 10x)"
    )
    return lines


def loading() -> list[str]:
    """Loading water's tree, and the command-line forecast of water against ``import pandas``."""
    import yaml

    from scenariocast.interop import convert
    from scenariocast.spec.load import load_tree

    references = json.loads((NETWORKS / "references.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "water.yaml"
        convert(NETWORKS / "water.bif", path)
        text = path.read_text(encoding="utf-8")
        load = median_time(lambda: load_tree(path), 5)
        pure = median_time(lambda: yaml.load(text, Loader=yaml.SafeLoader), 3)
        # the command line: a forecast of water given the 3 observed variables of its first case
        tree = load_tree(path)
        ids = {tree.label(n): n for n in tree.nodes}
        given = []
        for v, s in references["networks"]["water"][1]["evidence"].items():
            node = ids[v]
            state = next(x for x in tree.nodes[node].states if tree.state_label(node, x) == s)
            given += ["--given", f"{node}={state}"]
        env = {**os.environ, "SCENARIOCAST_DB": str(Path(tmp) / "bench.db")}
        sc = str(Path(sys.executable).parent / "scenariocast")
        subprocess.run([sc, "ledger", "init"], env=env, check=True, capture_output=True)
        forecast_cmd = [sc, "forecast", str(path), "--json", *given]
        pandas_cmd = [sys.executable, "-c", "import pandas"]
        f_times, p_times = [], []
        for i in range(6):
            for cmd, out in ((forecast_cmd, f_times), (pandas_cmd, p_times)):
                t0 = time.perf_counter()
                subprocess.run(cmd, env=env, check=True, capture_output=True)
                if i:  # the first round warms the file cache
                    out.append(time.perf_counter() - t0)
    f, p = statistics.median(f_times), statistics.median(p_times)
    return [
        f"loading water's tree ({len(text) / 1e6:.1f} MB of YAML):",
        f"  load_tree                    {1000 * load:7.1f} ms  (target < 200 ms)",
        f"  yaml.SafeLoader (pure Python) {1000 * pure:6.1f} ms  = {pure / load:4.1f}x load_tree",
        "command line, water given 3 observed variables (5 interleaved runs, medians):",
        f"  python -c 'import pandas'    {1000 * p:7.0f} ms",
        f"  scenariocast forecast --json {1000 * f:7.0f} ms  = {f / p:4.2f}x the pandas floor"
        "  (target <= 2x)",
    ]


def main() -> None:
    """Print every section (or those the options ask for)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", default="", help="comma-separated networks (default: all)")
    parser.add_argument(
        "--no-loading", action="store_true", help="skip loading water and the command line"
    )
    args = parser.parse_args()
    only = [n.strip() for n in args.networks.split(",") if n.strip()]
    warnings.simplefilter("ignore")
    lines = networks(only)
    if not args.no_loading:
        lines += ["", *loading()]
    for line in lines:
        print(line)


if __name__ == "__main__":
    sys.exit(main())
