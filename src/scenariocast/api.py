"""The Python API: what the command line calls, for notebooks and scripts.

>>> from scenariocast import load_tree, Ledger, forecast
>>> tree = load_tree("scenarios/nk-2026.yaml")
>>> result = forecast(tree, Ledger("evidence.db"), given={"food_shock": "severe"})
>>> result.to_frame()
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from scenariocast.bulk import collector_paused
from scenariocast.engines.exact import ExactModel
from scenariocast.engines.result import ForecastResult
from scenariocast.errors import QueryError
from scenariocast.evidence.readings import Reading
from scenariocast.spec.load import load_tree
from scenariocast.spec.tree import Tree

if TYPE_CHECKING:
    import os

    from scenariocast.analysis.explain import Explanation
    from scenariocast.engines.pymc import PosteriorRun
    from scenariocast.ledger import Ledger
    from scenariocast.report.document import ProbabilityReport, ReportFiles

ENGINES = ("exact", "pymc")


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
    draws: int = 1000,
    chains: int = 2,
    seed: int | None = None,
    progress: bool = False,
    save: str | Path | None = None,
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
        ``"exact"`` (the default), or ``"pymc"``: every number held with uncertainty, each
        probability with a 90% interval and sampler diagnostics (see :func:`sample`, whose
        ``draws``, ``chains``, ``seed``, ``progress`` and ``save`` it takes).
    record
        Whether a snapshot of the forecast is written to the ledger's history. ``None`` (the
        default): a forecast is recorded, a what-if (with ``given``) is not, and neither is a
        forecast on a ledger this user cannot write to. ``True``: record it, what-if or not
        (a :class:`~scenariocast.errors.LedgerError` if the ledger cannot be written).
        ``False``: never.
    """
    # the exact engine builds many objects and no cycles: the cyclic garbage collector waits
    # (it would walk every reading again and again); PyMC's graphs need it
    with collector_paused() if engine == "exact" else nullcontext():
        return _forecast(
            _tree(tree),
            _readings(evidence),
            evidence,
            given=given,
            as_of=as_of,
            engine=engine,
            record=record,
            model=None,
            draws=draws,
            chains=chains,
            seed=seed,
            progress=progress,
            save=save,
        )


def _forecast(
    t: Tree,
    readings: Sequence[Reading],
    evidence: Ledger | Sequence[Reading] | None,
    *,
    given: Mapping[str, str] | None,
    as_of: dt.date | None,
    engine: str,
    record: bool | None,
    model: ExactModel | None,
    draws: int = 1000,
    chains: int = 2,
    seed: int | None = None,
    progress: bool = False,
    save: str | Path | None = None,
) -> ForecastResult:
    from scenariocast.ledger import Ledger, readings_hash

    if engine not in ENGINES:
        raise QueryError(f"unknown engine '{engine}'; engines: {', '.join(ENGINES)}")
    if engine == "pymc":
        run = sample(
            t,
            readings,
            given=given,
            as_of=as_of,
            draws=draws,
            chains=chains,
            seed=seed,
            progress=progress,
            model=model,
        )
        if save is not None:
            run.save(save)
        result = run.result
    else:
        result = (model or ExactModel(t)).forecast(readings, given=given, as_of=as_of)
        used = set(result.evidence.reading_ids)
        digest = readings_hash([r for r in readings if r.id in used])
        result = replace(result, readings_hash=digest)
    if record is None:
        record = not given and isinstance(evidence, Ledger) and evidence.accepts_writes
    if record and isinstance(evidence, Ledger):
        record_forecast(t, evidence, result)
    return result


def sample(
    tree: Tree | str | Path,
    evidence: Ledger | Sequence[Reading] | None = None,
    *,
    given: Mapping[str, str] | None = None,
    as_of: dt.date | None = None,
    draws: int = 1000,
    chains: int = 2,
    seed: int | None = None,
    progress: bool = False,
    sampler: str = "nutpie",
    model: ExactModel | None = None,
) -> PosteriorRun:
    """The PyMC engine: the posterior of the tree's numbers, its result and its DataTree.

    Every probability in the tree is a Dirichlet row (or a Beta persistence) around the number
    written, with the node's ``strength``; numbers written ``{mean, sd}`` get priors too.
    ``seed`` defaults to one derived from the tree and the readings, so the same ledger gives
    the same numbers; ``draws`` per chain after as many tuning steps. See docs/pymc.md.
    """
    from scenariocast.engines.pymc import forecast_pymc
    from scenariocast.ledger import readings_hash

    t = _tree(tree)
    readings = _readings(evidence)
    exact = model or ExactModel(t)
    point = exact.forecast(readings, given=given, as_of=as_of)
    used = set(point.evidence.reading_ids)
    digest = readings_hash([r for r in readings if r.id in used])
    if seed is None:
        seed = int(hashlib.sha256(f"{t.file_hash}:{digest}".encode()).hexdigest()[:8], 16)
    return forecast_pymc(
        t,
        readings,
        given=given,
        as_of=point.as_of,
        draws=draws,
        chains=chains,
        seed=seed,
        sampler=sampler,
        progress=progress,
        readings_hash=digest,
        exact=exact,
    )


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
            **(
                {
                    "intervals": {
                        o.id: list(o.interval) for o in result.outcomes.values() if o.interval
                    },
                    "converged": bool(result.diagnostics.get("converged")),
                }
                if result.engine == "pymc"
                else {}
            ),
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

    with collector_paused():  # as in forecast
        return _explain(
            _tree(tree), _readings(evidence), given=given, as_of=as_of, outcomes=outcomes
        )


def report(
    tree: Tree | str | Path,
    evidence: Ledger | Sequence[Reading] | None = None,
    *,
    engine: str = "exact",
    as_of: dt.date | None = None,
    record: bool = True,
    draws: int = 1000,
    chains: int = 2,
    seed: int | None = None,
) -> ProbabilityReport:
    """A probability report of ``tree`` on the evidence: forecast, explanation and timeline.

    The forecast is made with ``engine`` and, when ``evidence`` is a ledger and ``record`` is
    true, recorded there as a snapshot, so that the next report can say what changed since this
    one. The change column compares with the newest earlier snapshot of the same tree that
    assumed nothing (a what-if is not a report), as of a day no later than this one, that is
    not this very forecast again. Which reports moved the forecast (:func:`explain`) and the
    probabilities by observed date (:func:`~scenariocast.analysis.timeline.outcome_timeline`)
    are computed exactly, whatever the engine. Write the files with
    :meth:`~scenariocast.report.document.ProbabilityReport.write`.

    Parameters
    ----------
    tree
        A loaded tree or the path of a scenario file.
    evidence
        A :class:`~scenariocast.ledger.Ledger` or a list of readings.
    engine
        ``"exact"`` or ``"pymc"`` (its intervals and diagnostics then appear in the report;
        ``draws``, ``chains`` and ``seed`` as for :func:`sample`).
    as_of
        Only readings observed on or before this day count (default: today).
    record
        Record the forecast in the ledger as a snapshot.
    """
    from scenariocast.analysis.explain import explain as _explain
    from scenariocast.analysis.timeline import outcome_timeline
    from scenariocast.ledger import Ledger
    from scenariocast.report.content import previous_report
    from scenariocast.report.document import build_report

    t = _tree(tree)
    readings = _readings(evidence)
    history = evidence.history(t.id) if isinstance(evidence, Ledger) else []
    day = as_of or dt.date.today()
    model = ExactModel(t)
    result = _forecast(
        t,
        readings,
        evidence,
        given=None,
        as_of=day,
        engine=engine,
        record=record,
        model=model,
        draws=draws,
        chains=chains,
        seed=seed,
    )
    explanation = _explain(t, readings, as_of=day, model=model)
    dates = sorted(
        {
            r.observed.end
            for r in readings
            if r.indicator in t.indicators and not r.retracted and r.observed.end <= day
        }
    )
    timeline = outcome_timeline(t, readings, dates=dates, model=model)
    return build_report(
        t,
        result,
        explanation,
        timeline,
        readings=readings,
        previous=previous_report(history, result),
    )


def write_report(
    tree: Tree | str | Path,
    evidence: Ledger | Sequence[Reading] | None,
    out: str | os.PathLike[str],
    *,
    engine: str = "exact",
    as_of: dt.date | None = None,
    record: bool = True,
    draws: int = 1000,
    chains: int = 2,
    seed: int | None = None,
) -> ReportFiles:
    """Make the report of :func:`report` and write it into the folder ``out``.

    ``out`` is checked before anything is computed or recorded: a folder that cannot be written
    raises :class:`~scenariocast.errors.ReportError` with the ledger unchanged. The files are
    written all or none (``report.html``, ``report.md``, ``forecast.json``, ``figures/``).
    """
    from scenariocast.report.output import check_output

    t = _tree(tree)
    check_output(out)
    made = report(
        t,
        evidence,
        engine=engine,
        as_of=as_of,
        record=record,
        draws=draws,
        chains=chains,
        seed=seed,
    )
    return made.write(out)
