"""Speed of ``watch`` and ``sensitivity``, as ratios against one exact forecast in the same run.

Run with ``make bench-watch`` (or ``python benchmarks/watch_sensitivity.py``). In process, on a
model prepared once (as the commands do), with the evidence as it stood on 2026-01-15:

1. The main North Korea tree (``scenarios/nk-2026.yaml``) with the shipped evidence
   (``scenarios/evidence/``, imported into a fresh ledger, not timed). Baseline: one exact
   forecast on the prepared model. ``watch``: every indicator and every node for every outcome
   (target under 1 s). ``sensitivity``: the derivative of every outcome with respect to every
   number in the tree and its first-order range (``exact=0``; target under 2 s); then as
   ``scenariocast sensitivity`` runs it, with the 15 numbers of each outcome's tornado
   recomputed exactly, and as the report runs it (6 per outcome).
2. How both grow with the tree: random static trees of 10, 20 and 40 nodes (20 indicators at
   most, 300 readings), the same three medians, as ratios to the forecast of the same tree.

These are figures to read, not assertions: the machines are shared and noisy.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scenariocast.analysis.sensitivity import sensitivity
from scenariocast.analysis.watch import watch
from scenariocast.engines.exact import ExactModel
from scenariocast.evidence.catalog import Catalog
from scenariocast.evidence.readings import Reading
from scenariocast.ledger import Ledger
from scenariocast.report.content import REPORT_TORNADO
from scenariocast.spec.load import load_tree
from scenariocast.testing import random_readings, random_tree

ROOT = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 1, 15)
FAR = dt.date(2100, 1, 1)


def median_time(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn`` in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(
    fn: Callable[[], object], base: Callable[[], object], repeat: int
) -> tuple[float, float]:
    """``fn``'s median wall time, and the median of its ratios to ``base`` timed just before.

    On a shared machine the load changes from minute to minute: each run of ``fn`` is set
    against a run of the baseline (the median of three) right before it.
    """
    times, ratios = [], []
    for _ in range(repeat):
        b = median_time(base, 3)
        t = median_time(fn, 1)
        times.append(t)
        ratios.append(t / b)
    return statistics.median(times), statistics.median(ratios)


def north_korea() -> list[str]:
    tree = load_tree(ROOT / "scenarios" / "nk-2026.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "bench.db")
        ledger.import_csv(
            ROOT / "scenarios" / "evidence" / "nk-indicators-2023-2025.csv",
            catalog=Catalog.from_dir(ROOT / "scenarios"),
        )
        readings = ledger.readings()
    model = ExactModel(tree)
    model.forecast(readings, as_of=AS_OF)  # warm the prepared structures

    def forecast() -> object:
        return model.forecast(readings, as_of=AS_OF)

    base = median_time(forecast, 5)
    watched = watch(model, readings, as_of=AS_OF)
    first = sensitivity(model, readings, as_of=AS_OF, exact=0)
    w = interleaved(lambda: watch(model, readings, as_of=AS_OF), forecast, 3)
    s0 = interleaved(lambda: sensitivity(model, readings, as_of=AS_OF, exact=0), forecast, 3)
    s15 = interleaved(lambda: sensitivity(model, readings, as_of=AS_OF, exact=15), forecast, 1)
    s6 = interleaved(
        lambda: sensitivity(model, readings, as_of=AS_OF, exact=REPORT_TORNADO), forecast, 1
    )
    n_out = len(tree.outcomes)
    pad = " " * 33

    def line(tr: tuple[float, float], target: str = "") -> str:
        return f"{pad}{1000 * tr[0]:7.0f} ms  = {tr[1]:5.1f}x the forecast{target}"

    return [
        f"watch and sensitivity, {tree.id} with the shipped evidence as of {AS_OF}, exact engine "
        "(medians; each ratio against forecasts timed just before):",
        f"  forecast, prepared model       {1000 * base:7.0f} ms  (baseline)",
        f"  watch: {len(watched.indicators)} indicators, {len(watched.nodes)} nodes,"
        f" {n_out} outcomes",
        line(w, "  (target < 1 s)"),
        f"  sensitivity: {len(first.parameters)} numbers x {n_out} outcomes, first order",
        line(s0, "  (target < 2 s)"),
        "  sensitivity, 15 per outcome recomputed (the command)",
        line(s15),
        f"  sensitivity, {REPORT_TORNADO} per outcome recomputed (the report)",
        line(s6),
    ]


def growth() -> list[str]:
    lines = [
        "growth with the tree: random static trees, 300 readings, ratios to their forecast "
        "(3 seeds, medians):",
        "  nodes  forecast     watch            sensitivity (first order)",
    ]
    for n in (10, 20, 40):
        fc, wt, st = [], [], []
        for seed in range(3):
            tree = random_tree(seed, n, n_indicators=min(20, n), max_indicator_nodes=2)
            readings = random_readings(tree, 300, seed)
            model = ExactModel(tree)
            model.forecast(readings, as_of=FAR)

            def forecast(m: ExactModel = model, r: list[Reading] = readings) -> object:
                return m.forecast(r, as_of=FAR)

            def watched(m: ExactModel = model, r: list[Reading] = readings) -> object:
                return watch(m, r, as_of=FAR)

            def hinged(m: ExactModel = model, r: list[Reading] = readings) -> object:
                return sensitivity(m, r, as_of=FAR, exact=0)

            fc.append(median_time(forecast, 5))
            wt.append(interleaved(watched, forecast, 3))
            st.append(interleaved(hinged, forecast, 3))
        f = statistics.median(fc)
        w = statistics.median(t for t, _ in wt), statistics.median(r for _, r in wt)
        s_ = statistics.median(t for t, _ in st), statistics.median(r for _, r in st)
        lines.append(
            f"  {n:5d}  {1000 * f:6.1f} ms  {1000 * w[0]:7.1f} ms = {w[1]:5.1f}x"
            f"  {1000 * s_[0]:7.1f} ms = {s_[1]:5.1f}x"
        )
    return lines


def main() -> None:
    parts = {"nk": north_korea, "growth": growth}
    wanted = sys.argv[1:] or list(parts)
    for k, name in enumerate(wanted):
        if k:
            print()
        for line in parts[name]():
            print(line, flush=True)


if __name__ == "__main__":
    main()
