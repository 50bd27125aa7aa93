"""The Python API: what the command line calls, for notebooks and scripts.

>>> from scenariocast import load_tree, Ledger, forecast
>>> tree = load_tree("scenarios/nk-2026.yaml")
>>> result = forecast(tree, Ledger("evidence.db"), given={"food_shock": "severe"})
>>> result.to_frame()
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from scenariocast.engines.exact import ExactModel
from scenariocast.engines.result import ForecastResult
from scenariocast.errors import QueryError
from scenariocast.evidence.readings import Reading
from scenariocast.spec.load import load_tree
from scenariocast.spec.tree import Tree

if TYPE_CHECKING:
    from scenariocast.analysis.explain import Explanation
    from scenariocast.ledger import Ledger

ENGINES = ("exact",)


def _tree(tree: Tree | str | Path) -> Tree:
    return tree if isinstance(tree, Tree) else load_tree(tree)


def _readings(evidence: Ledger | Sequence[Reading] | None) -> list[Reading]:
    if evidence is None:
        return []
    if isinstance(evidence, Sequence):
        return list(evidence)
    return evidence.readings()


def parse_given(items: Sequence[str]) -> dict[str, str]:
    """Turn ``["node=state", "node@2026-06=state", ...]`` into a mapping.

    ``node@date`` assumes a dynamic node's state at the step holding that date only; a dynamic
    node named without a date is assumed in that state at every step of the horizon.
    """
    out: dict[str, str] = {}
    for item in items:
        node, sep, state = item.partition("=")
        if not sep or not node.strip() or not state.strip():
            raise QueryError(f"--given takes NODE=STATE or NODE@DATE=STATE, got '{item}'")
        key = "@".join(part.strip() for part in node.split("@", 1))
        if key in out:
            raise QueryError(f"--given names '{key}' twice")
        out[key] = state.strip()
    return out


def forecast(
    tree: Tree | str | Path,
    evidence: Ledger | Sequence[Reading] | None = None,
    *,
    given: Mapping[str, str] | None = None,
    as_of: dt.date | None = None,
    engine: str = "exact",
    record: bool | None = None,
) -> ForecastResult:
    """Posterior probabilities of ``tree``'s nodes and outcomes given the evidence.

    Parameters
    ----------
    tree
        A loaded tree or the path of a scenario file.
    evidence
        A :class:`~scenariocast.ledger.Ledger` (its readings are used and, if ``record``, a
        snapshot of the forecast is written to it) or a list of readings.
    given
        Assumptions: node -> state.
    as_of
        Only readings observed on or before this day count (default: today).
    engine
        ``"exact"``.
    record
        Whether a snapshot of the forecast is written to the ledger's history. ``None`` (the
        default): a forecast is recorded, a what-if (with ``given``) is not, and neither is a
        forecast on a ledger this user cannot write to. ``True``: record it, what-if or not
        (a :class:`~scenariocast.errors.LedgerError` if the ledger cannot be written).
        ``False``: never.
    """
    from scenariocast.ledger import Ledger, readings_hash

    if engine not in ENGINES:
        raise QueryError(f"unknown engine '{engine}'; engines: {', '.join(ENGINES)}")
    t = _tree(tree)
    readings = _readings(evidence)
    result = ExactModel(t).forecast(readings, given=given, as_of=as_of)
    used = set(result.evidence.reading_ids)
    digest = readings_hash([r for r in readings if r.id in used])
    result = replace(result, readings_hash=digest)
    if record is None:
        record = not given and isinstance(evidence, Ledger) and evidence.accepts_writes
    if record and isinstance(evidence, Ledger):
        record_forecast(t, evidence, result)
    return result


def record_forecast(tree: Tree, ledger: Ledger, result: ForecastResult) -> int:
    """Record ``result``, a forecast of ``tree``, in ``ledger``'s history; return its id.

    Raises
    ------
    LedgerError
        If the ledger cannot be written (:class:`~scenariocast.errors.LedgerBusyError` when
        another process held the write lock for longer than the lock timeout).
    """
    return ledger.record_snapshot(
        tree_id=tree.id,
        tree_hash=tree.file_hash,
        engine=result.engine,
        as_of=result.as_of,
        given=dict(result.given),
        n_readings=len(set(result.evidence.reading_ids)),
        readings_hash=result.readings_hash,
        payload={
            "outcomes": {o.id: o.probability for o in result.outcomes.values()},
            "nodes": {n: dict(s) for n, s in result.nodes.items()},
            "log_evidence": result.log_evidence,
        },
    )


def explain(
    tree: Tree | str | Path,
    evidence: Ledger | Sequence[Reading] | None = None,
    *,
    given: Mapping[str, str] | None = None,
    as_of: dt.date | None = None,
    outcomes: Sequence[str] | None = None,
) -> Explanation:
    """Each counted reading's contribution to each outcome, in log-odds, in observed order."""
    from scenariocast.analysis.explain import explain as _explain

    return _explain(_tree(tree), _readings(evidence), given=given, as_of=as_of, outcomes=outcomes)
