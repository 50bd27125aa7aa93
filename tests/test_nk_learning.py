"""The stored learning-from-history run (notebooks/data/nk-2026-learning.json) still fits the tree.

``scripts/nk_learning.py --write`` samples the North Korea tree with some per-state means held
with uncertainty and stores what the walkthrough notebook shows; the notebook only reads the
file (sampling takes many minutes). These checks catch a stale file: the means it names must be
the ones the script holds with uncertainty, with the priors the variant tree writes; the run
must have converged; and its exact-engine probabilities must be what the exact engine says
today on the same tree and readings, so a change to the tree, its evidence or the engine shows.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from scenariocast.engines.exact import forecast_exact
from scenariocast.spec.load import parse_tree
from scenariocast.spec.model import Uncertain

ROOT = Path(__file__).resolve().parent.parent
STORED = ROOT / "notebooks" / "data" / "nk-2026-learning.json"


@pytest.fixture(scope="module")
def stored() -> Any:
    return json.loads(STORED.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "nk_learning", ROOT / "scripts" / "nk_learning.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _variant(script: ModuleType) -> Any:
    text = script.learning_text((ROOT / "scenarios" / "nk-2026.yaml").read_text(encoding="utf-8"))
    return parse_tree(text, file="nk-2026-learning.yaml")


def test_the_learnt_means_are_the_variant_trees_uncertain_ones(
    stored: Any, script: ModuleType
) -> None:
    tree = _variant(script)
    uncertain = {
        (name, row): params.then["mu"]
        for name, ind in tree.indicators.items()
        for row, params in enumerate(ind.spec.params)
        if isinstance(params.then.get("mu"), Uncertain)
    }
    named = {(m["indicator"], m["row"]): m for m in stored["means"]}
    assert set(named) == set(uncertain)
    assert {name for name, _ in named} == set(script.LEARNT)
    for key, mean in named.items():
        assert mean["prior_mean"] == pytest.approx(uncertain[key].mean), key
        assert mean["prior_sd"] == pytest.approx(uncertain[key].sd), key
        assert mean["when"] == dict(tree.indicators[key[0]].spec.params[key[1]].when), key
        assert mean["posterior_low"] <= mean["posterior_mean"] <= mean["posterior_high"], key


def test_the_stored_run_converged(stored: Any) -> None:
    diag = stored["diagnostics"]
    assert diag["converged"] is True, diag["reasons"]
    assert diag["chains"] >= 2
    assert diag["rhat_max"] <= 1.01
    assert diag["ess_bulk_min"] >= 400
    assert diag["divergences"] == 0
    for mean in stored["means"]:  # the learnt means themselves, not only the probabilities
        assert mean["rhat"] <= 1.01, mean
        assert mean["ess_bulk"] >= 400, mean


def test_the_stored_exact_probabilities_are_todays(
    stored: Any, script: ModuleType, tmp_path: Path
) -> None:
    tree = _variant(script)
    readings = script._readings(tmp_path)
    if stored["since"] is not None:
        since = dt.date.fromisoformat(stored["since"])
        readings = [r for r in readings if r.observed.start >= since]
    assert stored["n_readings"] == len(readings)
    exact = forecast_exact(tree, readings, as_of=dt.date.fromisoformat(stored["as_of"]))
    assert set(stored["outcomes"]) == set(exact.outcomes)
    for oid, row in stored["outcomes"].items():
        assert row["exact"] == pytest.approx(exact.outcomes[oid].probability, abs=1e-9), oid
        assert row["low"] <= row["pymc"] <= row["high"], oid
