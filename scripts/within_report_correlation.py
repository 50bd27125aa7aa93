#!/usr/bin/env python
"""How closely the cities of one survey move together, and the within-report correlation it gives.

    python scripts/within_report_correlation.py

For each price indicator of the North Korea trees: the pooled spread of the readings of one
report (one source, one observed date) around their own mean, from the 2023-2025 readings; the
indicator's narrowest scale in the tree; the implied rho = 1 - (spread / scale)^2, rounded down
(scenariocast.analysis.correlation); and the value the tree uses. A second table shows how
closely each pair of cities moves from one survey to the next (the correlation of their log
changes between surveys that report both), the plain reading of "moving together".
"""

from __future__ import annotations

import math
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from scenariocast import Catalog, Ledger, load_tree
from scenariocast.analysis.correlation import report_spread
from scenariocast.report.text import table

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
CSV = SCENARIOS / "evidence" / "nk-indicators-2023-2025.csv"
PRICES = (
    "rice_price_market",
    "corn_price_market",
    "usd_kpw_market",
    "cny_kpw_market",
    "gasoline_price_market",
    "diesel_price_market",
)


def main() -> int:
    """Print both tables."""
    tree = load_tree(SCENARIOS / "nk-2026.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "ledger.db")
        ledger.import_csv(CSV, catalog=Catalog.from_dir(SCENARIOS))
        readings = ledger.readings()
    rows = []
    for name in PRICES:
        est = report_spread(tree, readings, name)
        used = tree.indicators[name].spec.correlation()
        rows.append(
            [
                name,
                est.n_reports,
                est.df,
                "-" if est.within_sd is None else f"{est.within_sd:.4f}",
                f"{est.scale:.4f}",
                "-" if est.correlation is None else f"{est.correlation:.2f}",
                f"{used:.2f}",
            ]
        )
    print("Within-report spread (log scale) and the correlation it implies (nk-2026.yaml)")
    print(table(["indicator", "reports", "df", "within sd", "scale", "rho", "in tree"], rows))
    print()
    print("Co-movement: correlation of survey-to-survey log changes, Daily NK city pairs")
    pairs = []
    for name in PRICES[:4]:
        series: dict[str, dict[str, float]] = defaultdict(dict)
        for r in readings:
            if r.indicator == name and r.source == "daily_nk" and r.location:
                series[r.location][r.observed.text] = math.log(float(r.value))
        cities = sorted(c for c in series if "average" not in c)
        for i, a in enumerate(cities):
            for b in cities[i + 1 :]:
                common = sorted(set(series[a]) & set(series[b]))
                if len(common) < 4:
                    continue
                da = np.diff([series[a][d] for d in common])
                db = np.diff([series[b][d] for d in common])
                corr = float(np.corrcoef(da, db)[0, 1])
                pairs.append([name, f"{a} / {b}", len(common), f"{corr:.3f}"])
    print(table(["indicator", "cities", "surveys", "correlation"], pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
