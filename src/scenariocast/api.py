"""The Python API: what the command line calls, for notebooks and scripts.

>>> from scenariocast import load_tree, Ledger, forecast
>>> tree = load_tree("scenarios/nk-2026.yaml")
>>> result = forecast(tree, Ledger("evidence.db"), given={"food_shock": "severe"})
>>> result.to_frame()
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from scenariocast.bulk import collector_paused
from scenariocast.engines.exact import ExactModel
from scenariocast.engines.exact.model import TOP_SCENARIOS
from scenariocast.engines.result import ForecastResult
from scenariocast.errors import QueryError
from scenariocast.evidence.readings import Reading
from scenariocast.spec.load import load_tree
from scenariocast.spec.tree import Tree

if TYPE_CHECKING:
    import os

    from scenariocast.analysis.backtest import BacktestResult
    from scenariocast.analysis.compare import Comparison
    from scenariocast.analysis.explain import Explanation
    from scenariocast.analysis.pool import Pool
    from scenariocast.analysis.score import Scores
    from scenariocast.analysis.sensitivity import SensitivityResult
    from scenariocast.analysis.watch import WatchResult
    from scenariocast.engines.pymc import PosteriorRun
    from scenariocast.ledger import Ledger
    from scenariocast.ledger.records import OutcomeResolution, Snapshot
    from scenariocast.report.document import ProbabilityReport, ReportFiles

ENGINES = ("exact", "pymc")


@functools.cache
def _no_readings_hash() -> str:
    """The hash of no reading (that of a forecast on none)."""
    from scenariocast.ledger import readings_hash

    return readings_hash([])


#: The value of virtual or soft evidence on a node: ``{state: number}`` or ``"a=0.2,b=0.8"``.
NodeValue = str | Mapping[str, float]


def _tree(tree: Tree | str | Path) -> Tree:
    return tree if isinstance(tree, Tree) else load_tree(tree)


def _readings(evidence: Ledger | Sequence[Reading] | None) -> list[Reading]:
    if evidence is None:
        return []
    if isinstance(evidence, Sequence):
        return list(evidence)
    return evidence.readings()


def parse_node_evidence(items: Sequence[str], option: str) -> dict[str, str]:
    """Turn ``["node=a:0.2,b:0.8", "node@2026-06=a=2,b=1", ...]`` into node -> value text.

    The node is what comes before the first ``=``; the value is checked against the tree by
    the engine (states joined to numbers by ``:`` or ``=``, separated by commas).
    """
    out: dict[str, str] = {}
    for item in items:
        node, sep, value = item.partition("=")
        if not sep or not node.strip() or not value.strip():
            raise QueryError(f"{option} takes NODE=STATE:NUMBER,STATE:NUMBER,..., got '{item}'")
        key = "@".join(part.strip() for part in node.split("@", 1))
        if key in out:
            raise QueryError(f"{option} names '{key}' twice")
        out[key] = value.strip()
    return out


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
    virtual: Mapping[str, NodeValue] | None = None,
    soft: Mapping[str, NodeValue] | None = None,
    as_of: dt.date | None = None,
    engine: str = "exact",
    record: bool | None = None,
    draws: int = 1000,
    chains: int = 2,
    seed: int | None = None,
    progress: bool = False,
    save: str | Path | None = None,
    by: str | None = None,
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
        Assumptions (hard evidence, a what-if): node -> state; ``node@date`` for a dynamic
        node at one step.
    virtual
        Virtual (likelihood) evidence: node -> likelihood ratio per state, as a mapping or
        ``"a=2,b=1"`` (exact engine; see :mod:`scenariocast.evidence.nodes`).
    soft
        Soft evidence (Jeffrey's rule): node -> the distribution its marginal must have
        (exact engine).
    as_of
        Only readings observed on or before this day count (default: today).
    engine
        ``"exact"`` (the default), or ``"pymc"``: every number held with uncertainty, each
        probability with a 90% interval and sampler diagnostics (see :func:`sample`, whose
        ``draws``, ``chains``, ``seed``, ``progress`` and ``save`` it takes).
    record
        Whether a snapshot of the forecast is written to the ledger's history. ``None`` (the
        default): a forecast is recorded, a what-if (with ``given``, ``virtual`` or ``soft``)
        is not, and neither is a forecast on a ledger this user cannot write to. ``True``:
        record it, what-if or not (a :class:`~scenariocast.errors.LedgerError` if the ledger
        cannot be written). ``False``: never.
    by
        Who made the forecast, recorded with the snapshot (default: ``$SCENARIOCAST_USER``,
        else the operating system's user).
    """
    # the exact engine builds many objects and no cycles: the cyclic garbage collector waits
    # (it would walk every reading again and again); PyMC's graphs need it
    with collector_paused() if engine == "exact" else nullcontext():
        return _forecast(
            _tree(tree),
            _readings(evidence),
            evidence,
            given=given,
            virtual=virtual,
            soft=soft,
            as_of=as_of,
            engine=engine,
            record=record,
            model=None,
            draws=draws,
            chains=chains,
            seed=seed,
            progress=progress,
            save=save,
            by=by,
        )


def _forecast(
    t: Tree,
    readings: Sequence[Reading],
    evidence: Ledger | Sequence[Reading] | None,
    *,
    given: Mapping[str, str] | None,
    as_of: dt.date | None,
    engine: str,
    virtual: Mapping[str, NodeValue] | None = None,
    soft: Mapping[str, NodeValue] | None = None,
    record: bool | None,
    model: ExactModel | None,
    top: int = TOP_SCENARIOS,
    draws: int = 1000,
    chains: int = 2,
    seed: int | None = None,
    progress: bool = False,
    save: str | Path | None = None,
    by: str | None = None,
) -> ForecastResult:
    from scenariocast.ledger import Ledger, readings_hash

    if engine not in ENGINES:
        raise QueryError(f"unknown engine '{engine}'; engines: {', '.join(ENGINES)}")
    if engine == "pymc":
        if virtual or soft:
            raise QueryError(
                "virtual and soft evidence on nodes are for the exact engine; "
                "the PyMC engine takes readings and --given"
            )
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
        if readings:
            result = (model or ExactModel(t)).forecast(
                readings, given=given, as_of=as_of, top=top, virtual=virtual, soft=soft
            )
            used = set(result.evidence.reading_ids)
            digest = readings_hash([r for r in readings if r.id in used])
            result = replace(result, readings_hash=digest)
        else:  # no reading: the hash of none
            result = (model or ExactModel(t)).forecast(
                readings,
                given=given,
                as_of=as_of,
                top=top,
                virtual=virtual,
                soft=soft,
                readings_hash=_no_readings_hash(),
            )
    if record is None:
        what_if = bool(given or virtual or soft)
        record = not what_if and isinstance(evidence, Ledger) and evidence.accepts_writes
    if record and isinstance(evidence, Ledger):
        record_forecast(t, evidence, result, by=by)
    return result


class Model:
    """A tree compiled once for many forecasts with the exact engine.

    :func:`forecast` compiles the tree (the network over its horizon, the junction trees, the
    prior) on every call; a model keeps what it compiled, so that a notebook, a sweep of
    what-ifs or an analysis reuses it::

        >>> from scenariocast import Model
        >>> model = Model("scenarios/nk-2026.yaml")
        >>> for state in ("mild", "severe"):
        ...     print(model.forecast(ledger, given={"food_shock": state}).outcomes)

    A model is tied to the tree it was built from; load the tree again (and build a new model)
    after editing the file.
    """

    def __init__(self, tree: Tree | str | Path) -> None:
        self.tree = _tree(tree)
        self._exact = ExactModel(self.tree)

    def forecast(
        self,
        evidence: Ledger | Sequence[Reading] | None = None,
        *,
        given: Mapping[str, str] | None = None,
        virtual: Mapping[str, NodeValue] | None = None,
        soft: Mapping[str, NodeValue] | None = None,
        as_of: dt.date | None = None,
        top: int = TOP_SCENARIOS,
        record: bool | None = False,
    ) -> ForecastResult:
        """Posterior probabilities of the nodes and outcomes, as :func:`forecast` gives them.

        ``top`` is the number of most probable scenarios listed (0 skips their search, which
        is the fastest when only the marginals are wanted). ``record`` is ``False`` by
        default (a model is for many queries); ``None`` records as :func:`forecast` does.
        """
        return _forecast(
            self.tree,
            _readings(evidence),
            evidence,
            given=given,
            virtual=virtual,
            soft=soft,
            as_of=as_of,
            engine="exact",
            record=record,
            model=self._exact,
            top=top,
        )


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
    from scenariocast.evidence.select import refuse_node_readings
    from scenariocast.ledger import readings_hash

    t = _tree(tree)
    readings = _readings(evidence)
    exact = model or ExactModel(t)
    point = exact.forecast(readings, given=given, as_of=as_of)
    refuse_node_readings(point.evidence)  # before PyMC is imported: it does not take them
    used = set(point.evidence.reading_ids)
    digest = readings_hash([r for r in readings if r.id in used])
    if seed is None:
        seed = int(hashlib.sha256(f"{t.file_hash}:{digest}".encode()).hexdigest()[:8], 16)
    from scenariocast.engines.pymc import forecast_pymc

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


def record_forecast(
    tree: Tree, ledger: Ledger, result: ForecastResult, *, by: str | None = None
) -> int:
    """Record ``result``, a forecast of ``tree``, in ``ledger``'s history; return its id.

    ``by`` is who made it (default: ``$SCENARIOCAST_USER``, else the operating system's user).

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
        created_by=by,
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


def watch(
    tree: Tree | str | Path,
    evidence: Ledger | Sequence[Reading] | None = None,
    *,
    as_of: dt.date | None = None,
    outcomes: Sequence[str] | None = None,
    source: str | None = None,
    indicators: Sequence[str] | None = None,
    readings_per_report: int = 1,
    model: ExactModel | None = None,
) -> WatchResult:
    """What to watch next: the value of a reading of each indicator for each outcome.

    For every indicator (and every node, as a ceiling), given the evidence as of ``as_of``: the
    expected information gain about each outcome, in bits and as a share of its entropy, the
    expected change of its probability and the largest change one reading could make; the
    most informative explained by the readings that would move the outcome most. A reading
    comes from ``source`` (default: each indicator's usual source) in a report of
    ``readings_per_report`` readings; in a tree with dynamic nodes it is observed in the step
    after the as-of date's. See docs/watch-and-sensitivity.md.
    """
    from scenariocast.analysis.watch import watch as _watch

    t = _tree(tree)
    return _watch(
        model or ExactModel(t),
        _readings(evidence),
        as_of=as_of,
        outcomes=outcomes,
        source=source,
        indicators=indicators,
        readings_per_report=readings_per_report,
    )


def sensitivity(
    tree: Tree | str | Path,
    evidence: Ledger | Sequence[Reading] | None = None,
    *,
    as_of: dt.date | None = None,
    outcomes: Sequence[str] | None = None,
    top: int = 15,
    engine: str = "exact",
    draws: int = 1000,
    chains: int = 2,
    seed: int | None = None,
    model: ExactModel | None = None,
) -> SensitivityResult:
    """What the forecast hinges on: how each outcome moves with each number in the tree.

    The derivative of every outcome's probability with respect to every table entry,
    transition, persistence, indicator parameter and reliability, and the outcome's range when
    the number moves over its interval, recomputed exactly for the ``top`` numbers of each
    outcome. With ``engine="pymc"`` the PyMC engine's posterior is also checked for power-scaling
    sensitivity to the prior and the readings (``draws``, ``chains`` and ``seed`` as for
    :func:`sample`). See docs/watch-and-sensitivity.md.
    """
    from scenariocast.analysis.sensitivity import sensitivity as _sensitivity

    if engine not in ENGINES:
        raise QueryError(f"unknown engine '{engine}'; engines: {', '.join(ENGINES)}")
    t = _tree(tree)
    readings = _readings(evidence)
    exact = model or ExactModel(t)
    result = _sensitivity(exact, readings, as_of=as_of, outcomes=outcomes, exact=top)
    if engine == "pymc":
        from scenariocast.analysis.power_scaling import power_scaling

        run = sample(
            t, readings, as_of=result.as_of, draws=draws, chains=chains, seed=seed, model=exact
        )
        result = replace(result, power_scaling=power_scaling(run.datatree))
    return result


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
    by: str | None = None,
) -> ProbabilityReport:
    """A probability report of ``tree`` on the evidence: forecast, explanation and timeline.

    The forecast is made with ``engine`` and, when ``evidence`` is a ledger and ``record`` is
    true, recorded there as a snapshot, so that the next report can say what changed since this
    one. The change column compares with the newest earlier snapshot of the same tree that
    assumed nothing (a what-if is not a report), as of a day no later than this one, that is
    not this very forecast again. Which reports moved the forecast (:func:`explain`), the
    probabilities by observed date (:func:`~scenariocast.analysis.timeline.outcome_timeline`),
    what to watch next (:func:`watch`) and what the forecast hinges on (:func:`sensitivity`)
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
    by
        Who made the report, recorded with its snapshot (default: ``$SCENARIOCAST_USER``,
        else the operating system's user).
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
        by=by,
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
    watched, hinged = None, None
    if t.outcomes:
        from scenariocast.analysis.sensitivity import sensitivity as _sensitivity
        from scenariocast.analysis.watch import watch as _watch
        from scenariocast.report.content import REPORT_TORNADO

        watched = _watch(model, readings, as_of=day)
        hinged = _sensitivity(model, readings, as_of=day, exact=REPORT_TORNADO)
    return build_report(
        t,
        result,
        explanation,
        timeline,
        readings=readings,
        previous=previous_report(history, result),
        watch=watched,
        sensitivity=hinged,
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
    by: str | None = None,
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
        by=by,
    )
    return made.write(out)


# ---------------------------------------------------------------------------------------------
# comparing, pooling, scoring


def _ledger_parts(
    evidence: Ledger | Sequence[Reading] | None,
) -> tuple[list[Reading], list[OutcomeResolution], list[Snapshot]]:
    from scenariocast.ledger import Ledger

    if isinstance(evidence, Ledger):
        return evidence.readings(), evidence.resolutions(), evidence.history()
    return _readings(evidence), [], []


def compare(
    trees: Sequence[Tree | str | Path],
    evidence: Ledger | Sequence[Reading] | None = None,
    *,
    as_of: dt.date | None = None,
    weights: Sequence[float] | Mapping[str, float] | None = None,
) -> Comparison:
    """Compare trees on one ledger: outcomes, structure, evidence fit, Bayes factors.

    See :mod:`scenariocast.analysis.compare`. ``weights`` are the trees' prior weights (equal
    by default), in order or by tree id.
    """
    from scenariocast.analysis.compare import compare as _compare

    return _compare([_tree(t) for t in trees], _readings(evidence), as_of=as_of, weights=weights)


def pool(
    trees: Sequence[Tree | str | Path],
    evidence: Ledger | Sequence[Reading] | None = None,
    *,
    method: str = "linear",
    weights: Sequence[float] | Mapping[str, float] | None = None,
    as_of: dt.date | None = None,
    extremize: float | None = None,
    resolutions: Sequence[OutcomeResolution] | None = None,
) -> Pool:
    """The pooled forecast of the outcomes the trees share (:mod:`scenariocast.analysis.pool`).

    The extremized pool fits its factor on the ledger's resolutions when there are enough (or
    on ``resolutions``, when ``evidence`` is a list of readings).
    """
    from scenariocast.analysis.pool import pool as _pool

    readings, recorded, _ = _ledger_parts(evidence)
    return _pool(
        [_tree(t) for t in trees],
        readings,
        method=method,
        weights=weights,
        as_of=as_of,
        extremize=extremize,
        resolutions=list(resolutions) if resolutions is not None else recorded,
    )


def score(
    trees: Sequence[Tree | str | Path],
    evidence: Ledger | Sequence[Reading] | None = None,
    *,
    resolutions: Sequence[OutcomeResolution] | None = None,
    weights: Sequence[float] | Mapping[str, float] | None = None,
    extremize: float | None = None,
    pools: bool = True,
    bins: int = 10,
) -> Scores:
    """Score the trees (and their pools) on the resolved outcomes.

    With a ledger, its resolutions and recorded forecasts are used; with a list of readings,
    give ``resolutions``. See :mod:`scenariocast.analysis.score`.
    """
    from scenariocast.analysis.score import score as _score

    readings, recorded, snapshots = _ledger_parts(evidence)
    return _score(
        [_tree(t) for t in trees],
        readings,
        list(resolutions) if resolutions is not None else recorded,
        snapshots=snapshots,
        weights=weights,
        extremize=extremize,
        pools=pools,
        bins=bins,
    )


def backtest(
    tree: Tree | str | Path,
    evidence: Ledger | Sequence[Reading] | None = None,
    *,
    as_of: dt.date | None = None,
    every: str = "reading",
    resolutions: str | Path | None = None,
) -> BacktestResult:
    """Replay the ledger in observed order: the tree's forecast at each date, scored.

    ``every`` is ``reading`` (each day a reading was observed), ``month`` or ``quarter``.
    The forecasts are scored against the ledger's resolutions, or against a resolutions file
    (``resolutions``: the back-test's YAML, the tree's year taken from its horizon).
    """
    from scenariocast.analysis.backtest import Resolution, load_resolutions, replay_dates
    from scenariocast.analysis.backtest import backtest as _backtest
    from scenariocast.analysis.score import resolved_questions

    t = _tree(tree)
    readings, recorded, _ = _ledger_parts(evidence)
    day = as_of or dt.date.today()
    dates = replay_dates(t, readings, as_of=day, every=every)
    resolved_on: dict[str, dt.date] = {}
    if resolutions is not None:
        by_year = load_resolutions(resolutions)
        year = t.steps.start.year if t.steps is not None else None
        if year is None or year not in by_year:
            years = ", ".join(str(y) for y in sorted(by_year)) or "none"
            raise QueryError(
                f"{resolutions} has no resolutions for the year of tree '{t.id}' "
                f"({year if year is not None else 'no horizon'}; years: {years})"
            )
        chosen = {o: r for o, r in by_year[year].items() if o in t.outcomes}
    else:
        chosen = {}
        for oid, res in resolved_questions(t, recorded).items():
            chosen[oid] = Resolution(
                happened=res.happened,
                basis="settled",
                record=f"{res.source} (resolution #{res.id})",
            )
            resolved_on[oid] = res.resolved_on
    return _backtest(t, readings, chosen, dates=dates, resolved_on=resolved_on)
