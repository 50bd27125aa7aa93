#!/usr/bin/env bash
# The main job, start to finish: validate the shipped trees, import the shipped evidence into a
# fresh ledger, forecast the main tree month by month (as of today, and as it stood in January),
# ask a what-if about one month, show which readings moved each outcome, the back-test, and
# write the report a forecaster sends.
set -euo pipefail
cd "$(dirname "$0")/.."
sc=.venv/bin/scenariocast
tree=scenarios/nk-2026.yaml
rival=scenarios/nk-2026-china-first.yaml
evidence=scenarios/evidence/nk-indicators-2023-2025.csv

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
export SCENARIOCAST_DB="$workdir/demo-ledger.db"

echo "== scenariocast validate"
$sc validate
echo
echo "== scenariocast import $evidence   (fresh ledger: $SCENARIOCAST_DB)"
$sc import "$evidence"
echo
echo "== scenariocast forecast $tree   (as of today: the readings end in December 2025)"
$sc forecast "$tree"
echo
echo "== scenariocast forecast $rival --as-of 2026-01-15   (the rival view, outcomes only)"
$sc forecast "$rival" --as-of 2026-01-15 | sed -n '/^outcome/,/^$/p'
echo "== scenariocast forecast $tree --given food_shock@2026-06=severe   (a severe June: outcomes only)"
$sc forecast "$tree" --given food_shock@2026-06=severe | sed -n '/^outcome/,/^$/p'
echo "== scenariocast explain $tree --top 3   (the reports today's forecast rests on most: each left out in turn)"
$sc explain "$tree" --top 3
echo
echo "== python scripts/backtest.py   (2024 and 2025: forecasts at each quarter's start, Brier scores)"
.venv/bin/python scripts/backtest.py
echo "== scenariocast report $tree --out build/demo-report   (the page a forecaster sends)"
$sc report "$tree" --out build/demo-report
