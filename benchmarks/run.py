"""Speed of scenariocast, as ratios against baselines measured in the same run.

Run with ``make bench``. Six measurements:

1. In-process update on 40-node trees (up to 3 states and 3 parents per node, 20 indicators,
   300 readings): the median time of a forecast on a prepared model ("warm") and of loading the
   model plus forecasting ("cold"), against a fixed NumPy workload timed in the same run (so the
   ratio says how the engine fares on this machine today). Target: under 50 ms.
2. Trees that evolve over time: 10 nodes, 5 of them dynamic, over 12, 24, 48 and 96 monthly
   steps, with 300 readings in reports of 1 to 5, outcomes on dynamic nodes of every timing
   (ever, at least k steps, at the end): a forecast on a prepared model and model build plus
   forecast, against the same NumPy workload. Target: under 200 ms at 24 steps, growing
   linearly with the steps.
3. Wall time of ``scenariocast forecast --json`` on the demo tree and its imported evidence,
   against ``python -c "import pandas"`` in the same environment, runs interleaved.
   Target: at most 2x.
4. The ledger at 100,000 readings (``--ledger``, or ``python benchmarks/run.py ledger``):
   importing them (rows a second, against a bare ``sqlite3`` executemany of the same rows in
   the same run), ``evidence`` and ``info`` (against ``scenariocast --version``, the start-up
   floor), and the forecast with 100,000 readings against the same forecast with 200, and
   ``explain`` with 100,000 readings (one run) against that same forecast with 200.
   The first section alone: ``python benchmarks/run.py exact``.
5. Wall time of ``scenariocast report`` (report.html, report.md, forecast.json and figures) on
   the main North Korea tree with the shipped evidence, exact engine, after set-up (the
   evidence imported into a fresh ledger), against ``scenariocast forecast --json`` on the same
   tree and ledger in the same run, runs interleaved. Target: under 10 s.
6. ``explain`` on a tree that evolves over time (the 12-step tree of section 2, 300 readings),
   in process, against a forecast of the same readings on the same prepared model: the default
   ``explain`` (the influences only), with the sequential contributions too (``--json``), and
   the parts: adding the reports in the order observed (sequential), leaving each out by
   division of the joints given every report, and leaving each out by recalibration (the
   reference the division falls back to). ``python benchmarks/run.py explain`` alone.

These are figures to read, not assertions: the machines are shared and noisy.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from scenariocast.engines.exact import ExactModel
from scenariocast.evidence.likelihood import logsumexp
from scenariocast.evidence.select import select_evidence
from scenariocast.testing import (
    random_dynamic_tree_spec,
    random_readings,
    random_reports,
    random_tree,
    tree_from_dict,
)

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FAR = dt.date(2100, 1, 1)


def median_time(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn`` in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def numpy_baseline() -> None:
    """A fixed NumPy workload of about the engine's kind: 300 log-sum-exps over 3^6 tables."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3,) * 6)
    for _ in range(300):
        logsumexp(a, axis=0)


def in_process() -> list[str]:
    lines = []
    base = median_time(numpy_baseline, 30)
    warm, cold, cliques = [], [], []
    for seed in range(5):
        tree = random_tree(seed, 40, n_indicators=20, max_indicator_nodes=2)
        readings = random_readings(tree, 300, seed)
        model = ExactModel(tree)
        model.forecast(readings, as_of=FAR)
        warm.append(median_time(lambda m=model, r=readings: m.forecast(r, as_of=FAR), 10))
        cold.append(median_time(lambda t=tree, r=readings: ExactModel(t).forecast(r, as_of=FAR), 5))
        jt = model.query(select_evidence(tree, readings, FAR)).structure.jt
        cliques.append(max(len(c) for c in jt.cliques))
    w, c = statistics.median(warm), statistics.median(cold)
    lines.append(
        f"in-process, 40-node trees (5 seeds, largest clique {min(cliques)}-{max(cliques)} nodes):"
    )
    lines.append(f"  NumPy baseline workload      {1000 * base:7.1f} ms")
    lines.append(
        f"  forecast, prepared model     {1000 * w:7.1f} ms  = {w / base:5.1f}x baseline"
        "  (target < 50 ms)"
    )
    lines.append(f"  model build + forecast       {1000 * c:7.1f} ms  = {c / base:5.1f}x baseline")
    return lines


def dynamic_tree(seed: int, n_steps: int) -> object:
    """10 nodes (5 dynamic), outcomes on dynamic nodes: ever, at least 3 steps, at the end."""
    spec = random_dynamic_tree_spec(
        seed, 10, n_dynamic=5, n_steps=n_steps, n_indicators=10, max_parents=2
    )
    end = spec["horizon"]["end"]
    timings = [{"timing": "ever"}, {"timing": "at_least", "k": 3}, {"timing": "end"}]
    for j, node in enumerate(["n5", "n7", "n9"]):
        spec["outcomes"][f"o_{node}"] = {
            "question": f"Is {node} in s0?",
            "node": node,
            "states": ["s0"],
            "resolve_by": end,
            "resolution": "By construction.",
            **timings[j],
        }
    return tree_from_dict(spec)


def in_process_dynamic() -> list[str]:
    base = median_time(numpy_baseline, 30)
    lines = [
        "in-process, dynamic trees (10 nodes, 5 dynamic; 300 readings in reports of 1-5; "
        "3 seeds, medians):",
        f"  NumPy baseline workload      {1000 * base:7.1f} ms",
    ]
    first = None
    for n_steps in (12, 24, 48, 96):
        warm, cold = [], []
        for seed in range(3):
            tree = dynamic_tree(seed, n_steps)
            readings = random_reports(tree, 300, seed)  # type: ignore[arg-type]
            model = ExactModel(tree)  # type: ignore[arg-type]
            model.forecast(readings, as_of=FAR)
            warm.append(median_time(lambda m=model, r=readings: m.forecast(r, as_of=FAR), 5))
            cold.append(
                median_time(lambda t=tree, r=readings: ExactModel(t).forecast(r, as_of=FAR), 3)  # type: ignore[arg-type]
            )
        w, c = statistics.median(warm), statistics.median(cold)
        first = first or w
        target = "  (target < 200 ms)" if n_steps == 24 else ""
        lines.append(
            f"  {n_steps:3d} steps: prepared {1000 * w:6.1f} ms = {w / base:5.1f}x baseline, "
            f"{w / first:4.1f}x the 12-step time{target}; build + forecast {1000 * c:7.1f} ms"
        )
    return lines


def cli() -> list[str]:
    tree = ROOT / "scenarios" / "nk-2026.yaml"
    csv = ROOT / "scenarios" / "evidence" / "nk-indicators-2023-2025.csv"
    if not tree.exists():
        tree, csv = ROOT / "examples" / "example-harvest.yaml", None
    sc = str(BIN / "scenariocast")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SCENARIOCAST_DB": str(Path(tmp) / "bench.db")}
        if csv is not None:
            subprocess.run(
                [sc, "import", str(csv)], cwd=ROOT, env=env, check=True, capture_output=True
            )
        # as of mid-January 2026, when the imported 2023-2025 readings count
        forecast_cmd = [sc, "forecast", str(tree), "--json", "--as-of", "2026-01-15"]
        pandas_cmd = [sys.executable, "-c", "import pandas"]
        for cmd in (forecast_cmd, pandas_cmd):  # warm the file cache
            subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
        f_times, p_times = [], []
        for _ in range(9):
            for cmd, out in ((forecast_cmd, f_times), (pandas_cmd, p_times)):
                t0 = time.perf_counter()
                subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
                out.append(time.perf_counter() - t0)
    f, p = statistics.median(f_times), statistics.median(p_times)
    return [
        f"command line, {tree.name} with its evidence as of 2026-01-15 (9 interleaved runs, "
        "medians):",
        f"  python -c 'import pandas'    {1000 * p:7.0f} ms",
        f"  scenariocast forecast --json {1000 * f:7.0f} ms  = {f / p:4.2f}x the pandas floor"
        "  (target <= 2x)",
    ]


def _wall(cmd: list[str], env: dict[str, str], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _rows(n: int) -> list[tuple[str, str, str, str, str]]:
    return [
        (f"2025-{1 + i % 12:02d}", "crackdowns", str(i % 7), "wire", f"site-{i}") for i in range(n)
    ]


def ledger(n: int = 100_000) -> list[str]:
    import sqlite3

    sc = str(BIN / "scenariocast")
    tree = ROOT / "examples" / "example-harvest.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        scen = base / "scenarios"
        scen.mkdir()
        (scen / tree.name).write_text(tree.read_text())
        rows = _rows(n)
        csv_path = base / "big.csv"
        csv_path.write_text(
            "date,indicator,value,source,location\n" + "".join(",".join(r) + "\n" for r in rows)
        )
        small_path = base / "small.csv"
        small_path.write_text(
            "date,indicator,value,source,location\n"
            + "".join(",".join(r) + "\n" for r in rows[:200])
        )
        env = {**os.environ, "SCENARIOCAST_SCENARIOS": str(scen)}
        big = {**env, "SCENARIOCAST_DB": str(base / "big.db")}
        small = {**env, "SCENARIOCAST_DB": str(base / "small.db")}

        # floor: the same rows through bare sqlite3, one executemany in one transaction; runs
        # interleaved with the imports (each into a fresh ledger), medians of 3
        floors, imports = [], []
        for k in range(3):
            t0 = time.perf_counter()
            con = sqlite3.connect(base / f"floor{k}.db")
            con.execute("CREATE TABLE r (d TEXT, i TEXT, v TEXT, s TEXT, l TEXT)")
            with con:
                con.executemany("INSERT INTO r VALUES (?, ?, ?, ?, ?)", rows)
            con.close()
            floors.append(time.perf_counter() - t0)
            target = big if k == 0 else {**env, "SCENARIOCAST_DB": str(base / f"big{k}.db")}
            t0 = time.perf_counter()
            subprocess.run(
                [sc, "import", str(csv_path)], cwd=ROOT, env=target, check=True, capture_output=True
            )
            imports.append(time.perf_counter() - t0)
        floor, imported = statistics.median(floors), statistics.median(imports)
        subprocess.run(
            [sc, "import", str(small_path)], cwd=ROOT, env=small, check=True, capture_output=True
        )

        start = _wall([sc, "--version"], env)
        evidence = _wall([sc, "evidence", "--limit", "50"], big)
        info = _wall([sc, "info"], big)
        info_small = _wall([sc, "info"], small)
        # the two forecasts interleaved, so that both see the same load on a shared machine
        smalls, bigs = [], []
        for _ in range(3):
            smalls.append(_wall([sc, "forecast", str(tree), "--json"], small, repeat=1))
            bigs.append(_wall([sc, "forecast", str(tree), "--json"], big, repeat=1))
        f_small, f_big = statistics.median(smalls), statistics.median(bigs)
        explain = _wall([sc, "explain", str(tree)], big, repeat=1)
    return [
        f"the ledger at {n:,} readings (medians of 3 runs):",
        f"  import {n:,} rows            {imported:6.2f} s  = {n / imported:8,.0f} rows/s"
        f"  ({imported / floor:4.1f}x a bare sqlite3 insert of the same rows, {floor:.2f} s)"
        "  (target >= 20,000 rows/s)",
        f"  scenariocast --version        {start:6.2f} s  (start-up floor)",
        f"  evidence --limit 50           {evidence:6.2f} s  = {evidence / start:4.1f}x the floor"
        "  (target < 1 s)",
        f"  info                          {info:6.2f} s  = {info / start:4.1f}x the floor"
        f", {info / info_small:4.2f}x info at 200 readings  (target < 1 s)",
        f"  forecast, 200 readings        {f_small:6.2f} s",
        f"  forecast, {n:,} readings    {f_big:6.2f} s  = {f_big / f_small:4.1f}x the forecast"
        " with 200 (target <= 3x)",
        f"  explain, {n:,} readings     {explain:6.2f} s  = {explain / f_small:4.1f}x the forecast"
        " with 200 (target < 10 s; one run)",
    ]


def report() -> list[str]:
    tree = ROOT / "scenarios" / "nk-2026.yaml"
    csv = ROOT / "scenarios" / "evidence" / "nk-indicators-2023-2025.csv"
    sc = str(BIN / "scenariocast")
    runs = 3
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SCENARIOCAST_DB": str(Path(tmp) / "bench.db")}
        # set-up, not timed: the shipped evidence in a fresh ledger
        subprocess.run([sc, "import", str(csv)], cwd=ROOT, env=env, check=True, capture_output=True)
        as_of = ["--as-of", "2026-01-15"]
        report_cmd = [sc, "report", str(tree), *as_of, "--out", str(Path(tmp) / "report")]
        forecast_cmd = [sc, "forecast", str(tree), "--json", *as_of]
        for cmd in (report_cmd, forecast_cmd):  # warm the file and font caches
            subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
        r_times, f_times = [], []
        for _ in range(runs):
            for cmd, out in ((report_cmd, r_times), (forecast_cmd, f_times)):
                t0 = time.perf_counter()
                subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
                out.append(time.perf_counter() - t0)
        size = (Path(tmp) / "report" / "report.html").stat().st_size
    r, f = statistics.median(r_times), statistics.median(f_times)
    return [
        f"report, {tree.name} with the shipped evidence as of 2026-01-15, exact engine "
        f"({runs} interleaved runs, medians):",
        f"  scenariocast forecast --json {1000 * f:7.0f} ms",
        f"  scenariocast report          {1000 * r:7.0f} ms  = {r / f:4.1f}x the forecast"
        "  (target < 10 s)",
        f"  report.html                  {size / 1024:7.0f} KiB, self-contained",
    ]


def explain_dynamic() -> list[str]:
    from scenariocast.analysis.explain import (
        _leave_one_out,
        _leave_one_out_by_division,
        _stepwise,
        explain,
    )
    from scenariocast.analysis.joint import OutcomeJoints

    tree = dynamic_tree(0, 12)
    readings = random_reports(tree, 300, 0)  # type: ignore[arg-type]
    model = ExactModel(tree)  # type: ignore[arg-type]
    model.forecast(readings, as_of=FAR)
    f = median_time(lambda: model.forecast(readings, as_of=FAR), 5)
    e = median_time(lambda: explain(tree, readings, as_of=FAR, model=model), 1)  # type: ignore[arg-type]

    def with_sequential() -> None:
        expl = explain(tree, readings, as_of=FAR, model=model)  # type: ignore[arg-type]
        expl.to_dict()

    es = median_time(with_sequential, 1)
    query = model.query(select_evidence(tree, readings, FAR))  # type: ignore[arg-type]
    ids = list(tree.outcomes)  # type: ignore[attr-defined]
    s = median_time(lambda: _stepwise(model, query, ids), 1)
    loo = median_time(lambda: _leave_one_out(model, query, ids), 1)
    div = median_time(
        lambda: _leave_one_out_by_division(model, query, ids, OutcomeJoints(model, query, ids)), 3
    )
    n = len(query.report_factors)
    return [
        f"explain on a dynamic tree (12 steps, 300 readings in {n} reports; in process):",
        f"  forecast, prepared model     {1000 * f:7.1f} ms",
        f"  explain (influences)         {e:7.2f} s  = {e / f:5.1f}x the forecast",
        f"  explain --json (and as added){es:7.2f} s  = {es / f:5.1f}x the forecast",
        f"    as added (sequential)      {s:7.2f} s  = {s / f:5.1f}x the forecast",
        f"    left out, by division      {div:7.2f} s  = {div / f:5.1f}x the forecast",
        f"    left out, recalibrated     {loo:7.2f} s  = {loo / f:5.1f}x the forecast"
        "  (the reference, and the fallback)",
    ]


def main() -> None:
    if sys.argv[1:] == ["explain"]:
        for line in explain_dynamic():
            print(line)
        return
    if sys.argv[1:] == ["ledger"]:
        for line in ledger():
            print(line)
        return
    if sys.argv[1:] == ["exact"]:  # the first section alone
        for line in in_process():
            print(line)
        return
    sections = [in_process(), in_process_dynamic(), cli(), report(), ledger(), explain_dynamic()]
    for line in [line for section in sections for line in [*section, ""]]:
        print(line)


if __name__ == "__main__":
    main()
