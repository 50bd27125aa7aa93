#!/usr/bin/env python
"""The back-test of the North Korea trees on 2024 and 2025: trees, forecasts, Brier scores.

    python scripts/backtest.py            # print the table (Markdown)
    python scripts/backtest.py --write    # put the table into scenarios/backtest/README.md
    python scripts/backtest.py --trees    # write scenarios/backtest/*.yaml from the 2026 trees

The back-test trees are the 2026 trees with the horizon and the outcomes moved to an earlier
year: every node, table, indicator and source is unchanged, so the back-test judges the trees as
written, not a version re-estimated with hindsight. Each tree is forecast as of the first day of
each quarter on the readings of nk-indicators-2023-2025.csv observed by then, and scored against
scenarios/backtest/resolutions.yaml. The computation is scenariocast.analysis.backtest; this
script only loads, runs and writes.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from scenariocast import Catalog, Ledger, load_tree
from scenariocast.analysis.backtest import backtest, load_resolutions
from scenariocast.report.text import render_backtest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
BACKTEST = SCENARIOS / "backtest"
CSV = SCENARIOS / "evidence" / "nk-indicators-2023-2025.csv"
README = BACKTEST / "README.md"
START, END = "<!-- backtest-table:start -->", "<!-- backtest-table:end -->"

#: The year of the 2026 trees, and for each back-test year the previous year's China-DPRK trade
#: total (USD million, CSV) that the outcome china_realignment (c) is set against.
YEAR = 2026
TRADE_TOTAL = {2023: 2300, 2024: 2180, 2025: 2730}
SOURCES = {"nk-2026": "nk-{year}", "nk-2026-china-first": "nk-{year}-china-first"}


def _money(x: float) -> str:
    return f"{round(x, -1):,.0f}"


def shifted_text(text: str, source: str, year: int) -> str:
    """The 2026 tree's YAML with its id, title, horizon and outcomes moved to ``year``."""
    shift = {str(YEAR): str(year), str(YEAR - 1): str(year - 1)}
    bar_2026 = _money(TRADE_TOTAL[YEAR - 1] * 11 / 12 * 1.1)
    bar = _money(TRADE_TOTAL[year - 1] * 11 / 12 * 1.1)
    total_2026, total = f"{TRADE_TOTAL[YEAR - 1]:,}", f"{TRADE_TOTAL[year - 1]:,}"
    body = text[text.index("\nid: ") + 1 :]
    head, rest = body.split("\noutcomes:\n", 1)
    outcomes, indicators = rest.split("\nindicators:\n", 1)
    for old, new in ((bar_2026, bar), (total_2026, total)):
        if old not in outcomes:
            raise ValueError(f"{source}: the outcomes no longer name {old}")
        outcomes = outcomes.replace(old, new)
    outcomes = re.sub(r"\b(2026|2025)\b", lambda m: shift[m.group(1)], outcomes)
    tree_id = SOURCES[source].format(year=year)
    head = head.replace(f"id: {source}\n", f"id: {tree_id}\n", 1)
    title = re.search(r"^title: (.*)$", head, flags=re.M)
    if title is not None:
        moved = title.group(1).replace(str(YEAR), str(year))
        head = head[: title.start(1)] + moved + head[title.end(1) :]
    head = head.replace(
        f"horizon: {{start: {YEAR}-01-01, end: {YEAR}-12-31, step: month}}",
        f"horizon: {{start: {year}-01-01, end: {year}-12-31, step: month}}",
    )
    banner = (
        f"# Back-test copy of scenarios/{source}.yaml for {year}, written by scripts/backtest.py\n"
        "# --trees: do not edit by hand. Every node, table, indicator and source is the 2026\n"
        "# tree's, with its rationales (which cite what was known in December 2025); only the id,\n"
        f"# the title, the horizon ({year}) and the outcomes' dates are moved, "
        "and the trade leg of\n"
        f"# china_realignment is set against {year - 1}'s total (USD {total} million, CSV) as the\n"
        f"# 2026 tree sets it against 2025's. Resolutions: resolutions.yaml in this folder.\n"
    )
    return banner + head + "\noutcomes:\n" + outcomes + "\nindicators:\n" + indicators


def write_trees() -> list[Path]:
    """Write the back-test trees; return their paths."""
    out = []
    for source in SOURCES:
        text = (SCENARIOS / f"{source}.yaml").read_text(encoding="utf-8")
        for year in (2024, 2025):
            path = BACKTEST / f"{SOURCES[source].format(year=year)}.yaml"
            path.write_text(shifted_text(text, source, year), encoding="utf-8")
            out.append(path)
    return out


def table() -> str:
    """The back-test table: every tree, every outcome, at the start of each quarter."""
    resolutions = load_resolutions(BACKTEST / "resolutions.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "ledger.db")
        ledger.import_csv(CSV, catalog=Catalog.from_dir(SCENARIOS))
        readings = ledger.readings()
    results = []
    for year in (2024, 2025):
        for source in SOURCES:
            tree = load_tree(BACKTEST / f"{SOURCES[source].format(year=year)}.yaml")
            results.append(backtest(tree, readings, resolutions[year]))
    return render_backtest(results)


def main() -> int:
    """Print, write the table into the README, or write the trees."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--write", action="store_true", help="update the table in the README")
    parser.add_argument("--trees", action="store_true", help="write the back-test trees")
    args = parser.parse_args()
    if args.trees:
        for path in write_trees():
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    text = table()
    if args.write:
        readme = README.read_text(encoding="utf-8")
        before, _, after = readme.partition(START)
        _, _, after = after.partition(END)
        README.write_text(f"{before}{START}\n{text}\n{END}{after}", encoding="utf-8")
        print(f"wrote the table into {README.relative_to(ROOT)}")
        return 0
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
