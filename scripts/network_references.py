#!/usr/bin/env python
"""Reference marginals of the 12 bnlearn networks in tests/data/networks, computed by pgmpy.

    pip install pgmpy            # a dev dependency; this script is its only use
    python scripts/network_references.py

writes tests/data/networks/references.json, which tests/test_networks.py checks the exact
engine against (every marginal, to 1e-9). The reference is independent of scenariocast: pgmpy
reads each BIF file with its own parser and answers each evidence case with its own variable
elimination. Each network has three cases: no evidence, then 3 and 4 observed variables whose
states come from one forward sample of the network (so that the evidence is possible), with a
fixed seed. Where a published table's rows sum to 1 only within a tolerance, the rows are
renormalised here as scenariocast renormalises them, so that both compute on the same numbers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = ROOT / "tests" / "data" / "networks"
OUT = NETWORKS / "references.json"
NAMES = (
    *("asia", "cancer", "earthquake", "survey", "sachs", "child", "insurance", "water"),
    *("alarm", "hailfinder", "hepar2", "win95pts"),
)
SEED = 20261128


def _references(name: str, rng: np.random.Generator) -> list[dict[str, object]]:
    from pgmpy.factors.discrete import TabularCPD
    from pgmpy.inference import VariableElimination
    from pgmpy.readwrite import BIFReader

    model = BIFReader(str(NETWORKS / f"{name}.bif")).get_model()
    for cpd in model.get_cpds():
        values = cpd.get_values()
        rows = values / values.sum(axis=0, keepdims=True)
        evidence = cpd.variables[1:]
        model.add_cpds(
            TabularCPD(
                cpd.variable,
                cpd.variable_card,
                rows,
                evidence=evidence or None,
                evidence_card=list(cpd.cardinality[1:]) or None,
                state_names=cpd.state_names,
            )
        )
    model.check_model()
    order = list(model.nodes)
    # one forward sample, in topological order, drawn with numpy from the tables themselves
    sample: dict[str, str] = {}
    for var in _topological(model):
        cpd = model.get_cpds(var)
        column = tuple(cpd.state_names[p].index(sample[p]) for p in cpd.variables[1:])
        p = cpd.get_values()[:, _column_index(cpd, column)]
        sample[var] = cpd.state_names[var][int(rng.choice(len(p), p=p / p.sum()))]
    ve = VariableElimination(model)
    cases: list[dict[str, object]] = []
    for k in (0, 3, 4):
        observed = sorted(rng.choice(order, size=k, replace=False).tolist()) if k else []
        evidence = {v: sample[v] for v in observed}
        marginals: dict[str, dict[str, float]] = {}
        for var in order:
            if var in evidence:
                continue
            f = ve.query([var], evidence=evidence or None, show_progress=False)
            marginals[var] = {
                s: float(x) for s, x in zip(f.state_names[var], f.values, strict=True)
            }
        cases.append({"evidence": evidence, "marginals": marginals})
    return cases


def _topological(model: object) -> list[str]:
    import networkx as nx

    return list(nx.topological_sort(model))  # type: ignore[call-overload]


def _column_index(cpd: object, column: tuple[int, ...]) -> int:
    cards = list(cpd.cardinality[1:])  # type: ignore[attr-defined]
    index = 0
    for c, i in zip(cards, column, strict=True):
        index = index * int(c) + i
    return index


def main() -> int:
    """Write the references."""
    import pgmpy

    rng = np.random.default_rng(SEED)
    out = {
        "about": f"pgmpy {pgmpy.__version__} variable elimination; scripts/network_references.py",
        "networks": {name: _references(name, rng) for name in NAMES},
    }
    OUT.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
