#!/usr/bin/env bash
# The main job, start to finish: validate the shipped trees, import the shipped evidence into a
# fresh ledger, forecast the main tree, show which readings moved it, and write the report.
set -euo pipefail
cd "$(dirname "$0")/.."
sc=.venv/bin/scenariocast
tree=scenarios/nk-2026.yaml
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
echo "== scenariocast forecast $tree"
$sc forecast "$tree"
echo
echo "== scenariocast explain $tree   (the readings that moved each outcome most)"
$sc explain "$tree" --top 3
echo
echo "== scenariocast report $tree --out build/demo-report   (the page a forecaster sends)"
$sc report "$tree" --out build/demo-report
