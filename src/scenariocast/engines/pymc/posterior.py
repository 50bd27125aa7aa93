"""From posterior draws to scenario probabilities, diagnostics, a DataTree and the result type.

Every scenario probability (an outcome, a node's state now, a dynamic node's state at each
step) is a deterministic function of the parameters. Rather than compile them into the sampled
graph, the draws' tables go through the exact engine's own junction tree, all draws at once
(a batched calibration), so both engines answer with one piece of code.

The DataTree holds:

- ``posterior``: the free parameters (as PyMC names them), ``outcome_probability`` (chain, draw,
  outcome),
  ``state:NODE`` (chain, draw, state: at the as-of date's step), ``step:NODE`` (chain, draw,
  step, state) for dynamic nodes, and ``log_evidence``;
- ``sample_stats`` from the sampler (``diverging`` among them);
- ``log_likelihood``: per report, with the states summed out, ``report`` = log p(report |
  every other report, parameters), the pointwise terms for PSIS-LOO (``az.loo(dt,
  var_name="report")``), and ``report_in_order`` = log p(report | the reports before it,
  parameters), which add up to the log-likelihood, for power-scaling sensitivity
  (``az.psense_summary(dt, likelihood_var_names=["report_in_order"])``);
- ``log_prior``: each parameter's log prior density (``pymc.stats.compute_log_prior``);
- ``posterior_predictive``: for each indicator, a reading at the as-of date's step as the
  posterior predicts it (in the units the indicator reads, after ``read_as``);
- attributes: the tree's id and hash, the readings' hash, the as-of date, the assumptions, the
  sampler, the seed and the scenariocast version. :func:`load_posterior` refuses a posterior saved
  for another tree or other readings.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from scenariocast import __version__
from scenariocast.engines.exact.junction import Factor
from scenariocast.engines.exact.model import Draws, ExactModel, Query, merge_factors
from scenariocast.engines.pymc import sampling
from scenariocast.engines.result import ForecastResult, Predictive
from scenariocast.errors import PosteriorMismatchError, QueryError
from scenariocast.evidence.likelihood import untransform
from scenariocast.evidence.readings import Reading
from scenariocast.evidence.select import refuse_node_readings

#: The credible interval: equal-tailed, 90%.
INTERVAL = (0.05, 0.95)
#: Convergence thresholds (docs/pymc.md).
RHAT_MAX = 1.01
ESS_MIN = 400
#: Above this many reports the log_likelihood group is left out (it costs two passes each).
LOG_LIKELIHOOD_MAX_REPORTS = 1000


@dataclass(frozen=True)
class PosteriorRun:
    """A PyMC forecast: the one result type, and the posterior as an ArviZ DataTree."""

    result: ForecastResult
    datatree: Any

    def save(self, path: str | Path) -> Path:
        """Write the DataTree to a netCDF file (with its provenance); return the path."""
        out = Path(path)
        self.datatree.to_netcdf(out)
        return out


def forecast_pymc(
    tree: Any,
    readings: Sequence[Reading],
    *,
    given: Mapping[str, str] | None = None,
    as_of: dt.date | None = None,
    draws: int = 1000,
    tune: int | None = None,
    chains: int = 2,
    seed: int = 0,
    sampler: str = "nutpie",
    progress: bool = False,
    readings_hash: str = "",
    exact: ExactModel | None = None,
) -> PosteriorRun:
    """Sample the tree's parameters given the readings; every probability with an interval.

    Raises
    ------
    QueryError
        For bad settings (fewer than 2 chains, no draws, an unknown sampler).
    EvidenceConflictError
        If the readings are impossible under the tree's numbers (as the exact engine says).
    """
    if draws < 1:
        raise QueryError(f"--draws must be at least 1, got {draws}")
    exact = exact or ExactModel(tree)
    as_of = as_of or dt.date.today()
    point = exact.forecast(readings, given=given, as_of=as_of, readings_hash=readings_hash)
    refuse_node_readings(point.evidence)
    query = exact.query(point.evidence, given)
    compiled = sampling.compile_model(exact, query)
    raw = sampling.sample(
        compiled,
        draws=draws,
        tune=tune if tune is not None else draws,
        chains=chains,
        seed=seed,
        progress=progress,
        sampler=sampler,
    )
    posterior = raw["posterior"].to_dataset()
    n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    batch = n_chains * n_draws
    tables, batches, params = _derived(compiled, posterior, batch)
    reports = _report_factors(query, compiled, batches, batch)
    draws_out = exact.evaluate(query, tables, batch, reports)
    datatree = _datatree(
        raw, exact, query, compiled, draws_out, tables, reports, params, n_chains, n_draws
    )
    datatree.attrs.update(
        {
            "tree": exact.tree.id,
            "tree_hash": exact.tree.file_hash,
            "readings_hash": readings_hash,
            "as_of": as_of.isoformat(),
            "given": json.dumps(dict(point.given), sort_keys=True),
            "sampler": sampler,
            "seed": seed,
            "draws": draws,
            "chains": chains,
            "scenariocast_version": __version__,
        }
    )
    diagnostics = diagnose(datatree)
    result = _result(point, draws_out, diagnostics, n_chains, n_draws)
    result = replace(result, predictive=predictive_summary(tree, datatree["posterior_predictive"]))
    return PosteriorRun(result, datatree)


def load_posterior(path: str | Path, tree: Any, readings_hash: str) -> Any:
    """Read a posterior saved by :meth:`PosteriorRun.save` for this tree and these readings.

    Raises
    ------
    PosteriorMismatchError
        If it was saved for another tree (or another version of the file) or other readings.
    """
    from xarray import open_datatree

    file = Path(path)
    try:
        data = open_datatree(file).load()
    except (OSError, ValueError) as exc:
        raise PosteriorMismatchError(f"{file}: not a saved posterior ({exc})") from None
    attrs = data.attrs
    if attrs.get("tree_hash") != tree.file_hash:
        raise PosteriorMismatchError(
            f"{file} is a posterior of tree '{attrs.get('tree', '?')}' "
            f"(hash {str(attrs.get('tree_hash', ''))[:10]}), not of {tree.id} as it is now "
            f"(hash {tree.file_hash[:10]}): forecast again"
        )
    if attrs.get("readings_hash") != readings_hash:
        raise PosteriorMismatchError(
            f"{file} was sampled on other readings (hash "
            f"{str(attrs.get('readings_hash', ''))[:10]}, now {readings_hash[:10]}): the ledger "
            "has changed since; forecast again"
        )
    return data


# ---------------------------------------------------------------------------------------------
# derived quantities


def _derived(
    compiled: sampling.CompiledModel, posterior: Any, batch: int
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray | None]], list[np.ndarray], dict[str, Any]]:
    """The tables, uncertain reports' log-likelihoods and parameters of every draw.

    Arrays carry the draw as their last axis (batch = chains x draws).
    """
    values = [
        np.asarray(posterior[name].values).reshape((batch, *shape))
        for name, shape in zip(compiled.free_names, compiled.free_shapes, strict=True)
    ]
    outs: list[list[np.ndarray]] = [[] for _ in compiled.derived_names]
    for b in range(batch):
        for k, arr in enumerate(compiled.derived(*(v[b] for v in values))):
            outs[k].append(np.asarray(arr))
    stacked = [np.moveaxis(np.stack(o), 0, -1) for o in outs]  # the draw last
    tables: dict[str, list[Any]] = {}
    batches: list[np.ndarray] = []
    params: dict[str, dict[str, np.ndarray]] = {}
    for (kind, name, part), arr in zip(compiled.derived_names, stacked, strict=True):
        if kind == "table":
            tables.setdefault(name, [None, None])[0 if part == "cpt" else 1] = arr
        elif kind == "batch":
            batches.append(arr)
        else:
            params.setdefault(name, {})[part] = arr
    return {n: (t[0], t[1]) for n, t in tables.items()}, batches, params


def _report_factors(
    query: Query, compiled: sampling.CompiledModel, batches: list[np.ndarray], batch: int
) -> list[Factor]:
    """Every report's factor, in observed order.

    Constant ones as in the exact engine, uncertain ones per draw (the draw last).
    """
    factors: list[Factor] = list(query.report_factors)
    for b, arr in zip(compiled.built.plan.batches, batches, strict=True):
        for j, position in enumerate(b.reports):
            factors[position] = (b.scopes[j], arr[j])  # (*scope, draws), at the report's step
    del batch
    return factors


def _datatree(
    raw: Any,
    exact: ExactModel,
    query: Query,
    compiled: sampling.CompiledModel,
    d: Draws,
    tables: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    reports: list[Factor],
    params: Mapping[str, Mapping[str, np.ndarray]],
    n_chains: int,
    n_draws: int,
) -> Any:
    import xarray as xr

    tree = exact.tree
    steps = tree.steps

    def cd(arr: np.ndarray) -> np.ndarray:
        """(..., batch) -> (chain, draw, ...)."""
        moved = np.moveaxis(arr, -1, 0)
        return moved.reshape((n_chains, n_draws, *moved.shape[1:]))

    outcome_ids = list(tree.outcomes)
    post = raw["posterior"].to_dataset()
    variables: dict[str, Any] = {}
    if outcome_ids:
        variables["outcome_probability"] = (
            ("chain", "draw", "outcome"),
            np.stack([cd(d.outcomes[o]) for o in outcome_ids], axis=-1),
        )
    coords: dict[str, Any] = {"outcome": outcome_ids}
    for name, arr in d.nodes.items():
        dim = f"{name}:state"
        variables[f"state:{name}"] = (("chain", "draw", dim), cd(arr))
        coords[dim] = list(tree.nodes[name].states)
    for name, arr in d.steps.items():
        assert steps is not None
        variables[f"step:{name}"] = (("chain", "draw", "step", f"{name}:state"), cd(arr))
        coords["step"] = [steps.label(t) for t in range(steps.n)]
    variables["log_evidence"] = (("chain", "draw"), cd(d.log_evidence))
    derived = xr.Dataset(variables, coords={**coords, "chain": post.chain, "draw": post.draw})
    groups: dict[str, Any] = {
        "posterior": xr.merge([post, derived]),
        "sample_stats": raw["sample_stats"].to_dataset(),
    }
    n_reports = len(reports)
    if 0 < n_reports <= LOG_LIKELIHOOD_MAX_REPORTS:
        batch = n_chains * n_draws
        in_order, left_out = exact.report_log_likelihoods(query, tables, batch, reports)
        groups["log_likelihood"] = xr.Dataset(
            {
                "report": (("chain", "draw", "reports"), cd(left_out)),
                "report_in_order": (("chain", "draw", "reports"), cd(in_order)),
            },
            coords={
                "chain": post.chain,
                "draw": post.draw,
                "reports": [rep.label for rep in query.evidence.reports],
            },
        )
    groups["posterior_predictive"] = _predictive(exact, query, d, tables, reports, params, cd)
    from xarray import DataTree

    tree_out = DataTree.from_dict(groups)
    import pymc as pm

    pm.stats.compute_log_prior(
        tree_out, model=compiled.built.model, extend_inferencedata=True, progressbar=False
    )
    return tree_out


def _predictive(
    exact: ExactModel,
    query: Query,
    d: Draws,
    tables: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    reports: list[Factor],
    params: Mapping[str, Mapping[str, np.ndarray]],
    cd: Any,
) -> Any:
    """A genuine reading of each indicator at the as-of step, drawn from the posterior."""
    import xarray as xr

    tree = exact.tree
    net = query.network
    batch = d.log_evidence.shape[-1]
    assumptions = list(query.base[len(net.factors) :])
    cal = query.structure.jt.calibrate(
        [*net.prior_factors(tables), *assumptions, *merge_factors(reports)], batch
    )
    now = exact._now_step(query.evidence.as_of)
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    for name, ind in tree.indicators.items():
        step = now if tree.varies(ind.scope) else None
        scope_vars = net.scope_at(ind.scope, step)
        joint = cal.joint(scope_vars) if scope_vars else None  # (*cards, batch)
        cards = [tree.nodes[n].card for n in ind.scope if tree.nodes[n].kind != "calendar"]
        flat = joint.reshape(-1, batch) if joint is not None else np.ones((1, batch))
        picks = np.array(
            [rng.choice(flat.shape[0], p=flat[:, b] / flat[:, b].sum()) for b in range(batch)]
        )
        combo = np.unravel_index(picks, cards) if cards else ()
        index: list[Any] = []
        k = 0
        for n in ind.scope:
            if tree.nodes[n].kind == "calendar":
                index.append(np.full(batch, net.calendar_state(n, step or 0)))
            else:
                index.append(combo[k])
                k += 1
        values = _draw_reading(ind, tuple(index), params.get(name, {}), rng, batch)
        out[name] = (("chain", "draw"), cd(values))
    return xr.Dataset(out)


def predictive_summary(tree: Any, predictive: Any) -> dict[str, Predictive]:
    """Each indicator's posterior predictive reading, summarised in the units it is entered in."""
    out: dict[str, Predictive] = {}
    for name, ind in tree.indicators.items():
        if name not in predictive:
            continue
        values = np.asarray(predictive[name]).ravel()
        spec = ind.spec
        if spec.kind == "binary":
            out[name] = Predictive(probabilities={"yes": float(np.mean(values))})
        elif spec.kind == "categorical":
            cats = list(spec.categories or [])
            counts = np.bincount(values.astype(int), minlength=len(cats))[: len(cats)]
            shares = counts / max(len(values), 1)
            out[name] = Predictive(
                probabilities={c: float(x) for c, x in zip(cats, shares, strict=True)}
            )
        else:
            levels = (INTERVAL[0], 0.5, INTERVAL[1])
            if spec.kind == "count":  # counts stay whole
                quantiles = np.quantile(values, levels, method="inverted_cdf")
            else:
                quantiles = np.quantile(values, levels)
            if spec.kind in ("normal", "student_t"):  # a lognormal draw is already as reported
                quantiles = untransform(spec.read_as, quantiles)
            out[name] = Predictive(
                median=float(quantiles[1]), low=float(quantiles[0]), high=float(quantiles[2])
            )
    return out


def _draw_reading(
    ind: Any, index: tuple[np.ndarray, ...], drawn: Mapping[str, np.ndarray], rng: Any, batch: int
) -> np.ndarray:
    cols = np.arange(batch)

    def param(name: str) -> np.ndarray:
        if name in drawn:
            return np.asarray(drawn[name][(*index, cols)])
        return np.asarray(ind.params[name][index])

    kind = ind.spec.kind
    out: Any
    if kind == "binary":
        out = rng.random(batch) < param("p")
    elif kind == "categorical":
        probs = ind.params["probs"][index]  # (batch, categories)
        out = [rng.choice(probs.shape[-1], p=p) for p in probs]
    elif kind == "count":
        out = rng.poisson(param("rate"))
    elif kind == "student_t":
        out = param("mu") + param("sigma") * rng.standard_t(param("nu"))
    else:
        out = rng.normal(param("mu"), param("sigma"))
        if kind == "lognormal":
            out = np.exp(out)
    return np.asarray(out, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# diagnostics and the result


def diagnose(datatree: Any) -> dict[str, Any]:
    """R-hat, bulk and tail ESS of every scenario probability, divergences, and a verdict.

    Not converged when any R-hat exceeds 1.01, any bulk ESS is below 400, or any transition
    diverged; ``reasons`` says which, in words.
    """
    import arviz as az

    names = [
        v
        for v in datatree["posterior"].data_vars
        if v == "outcome_probability" or v.startswith("state:")
    ]
    rhat = az.rhat(datatree, var_names=names)
    ess_bulk = az.ess(datatree, var_names=names, method="bulk")
    ess_tail = az.ess(datatree, var_names=names, method="tail")

    def values(ds: Any) -> np.ndarray:
        # a probability that is the same in every draw (a certain state) has no R-hat or ESS
        arrays = [np.asarray(ds[v], dtype=float).ravel() for v in ds.data_vars]
        flat = np.concatenate(arrays) if arrays else np.array([])
        return flat[np.isfinite(flat)]

    rhat_max = float(np.max(values(rhat), initial=1.0))
    bulk_min = float(np.min(values(ess_bulk), initial=np.inf))
    tail_min = float(np.min(values(ess_tail), initial=np.inf))
    diverging = int(np.asarray(datatree["sample_stats"]["diverging"]).sum())
    reasons = []
    if rhat_max > RHAT_MAX:
        reasons.append(f"the chains disagree (largest R-hat {rhat_max:.3f}, above {RHAT_MAX})")
    if bulk_min < ESS_MIN:
        reasons.append(
            f"too few effective draws (smallest bulk ESS {bulk_min:.0f}, below {ESS_MIN})"
        )
    if diverging:
        reasons.append(f"{diverging} divergent transitions (the posterior was not fully explored)")
    return {
        "sampler": datatree.attrs.get("sampler"),
        "chains": int(datatree["posterior"].sizes["chain"]),
        "draws": int(datatree["posterior"].sizes["draw"]),
        "rhat_max": rhat_max,
        "ess_bulk_min": bulk_min,
        "ess_tail_min": tail_min,
        "divergences": diverging,
        "converged": not reasons,
        "reasons": reasons,
        "interval": "90% equal-tailed",
    }


def _interval(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.quantile(values, INTERVAL)
    return float(lo), float(hi)


def _result(
    point: ForecastResult,
    d: Draws,
    diagnostics: Mapping[str, Any],
    n_chains: int,
    n_draws: int,
) -> ForecastResult:
    """The result type: posterior means, with 90% intervals, of the exact engine's quantities.

    Priors, top scenarios and the log evidence are as the exact engine gives them at the tree's
    numbers.
    """
    outcomes = {
        oid: replace(
            o,
            probability=float(np.mean(d.outcomes[oid])),
            interval=_interval(d.outcomes[oid]),
        )
        for oid, o in point.outcomes.items()
    }
    nodes = {
        n: dict(zip(point.nodes[n], np.mean(arr, axis=-1).tolist(), strict=True))
        for n, arr in d.nodes.items()
    }
    node_intervals = {
        n: {s: _interval(arr[k]) for k, s in enumerate(point.nodes[n])}
        for n, arr in d.nodes.items()
    }
    steps = {
        n: tuple(
            replace(
                x,
                probabilities={
                    s: float(np.mean(d.steps[n][t, k])) for k, s in enumerate(x.probabilities)
                },
                intervals={s: _interval(d.steps[n][t, k]) for k, s in enumerate(x.probabilities)},
            )
            for t, x in enumerate(path)
        )
        for n, path in point.steps.items()
    }
    del n_chains, n_draws
    return replace(
        point,
        engine="pymc",
        outcomes=outcomes,
        nodes=nodes,
        node_intervals=node_intervals,
        steps=steps,
        diagnostics=dict(diagnostics),
    )
