"""Compiling the model once per structure, and sampling it.

**Sampler.** nutpie's NUTS (written in Rust) by default, driven through its Python-function
interface by the model's log-density and gradient compiled by PyTensor (its default backend);
PyMC's own NUTS when nutpie is not installed or is not wanted (``sampler="pymc"``). At least
two chains.

**Cache.** A compiled model is kept in memory for each structure (the tree as written, the steps
and reports' scopes, the assumptions, and the readings whose numbers are uncertain): a second
forecast in the same session after a new reading only passes the new evidence as data. Across
sessions, PyTensor keeps the C code it generates in its compilation directory
(``~/.pytensor`` by default; ``PYTENSOR_FLAGS=base_compiledir=...`` moves it), so a new session
compiles nothing that an earlier one already did and only rebuilds the graph. Any change to a
tree file changes its hash and so its key; PyTensor invalidates its own entries when PyTensor,
NumPy or the compiler change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.blocking import DictToArrayBijection
from pymc.pytensorf import join_nonshared_inputs
from pytensor.compile.maker import function
from pytensor.graph.replace import clone_replace

from scenariocast.engines.exact.model import ExactModel, Query
from scenariocast.engines.pymc.model import BuiltModel, build, constant_values
from scenariocast.errors import QueryError

SAMPLERS = ("nutpie", "pymc")


@dataclass
class CompiledModel:
    """A built model with its compiled log-density, gradient and derived quantities."""

    key: str
    built: BuiltModel
    ndim: int
    logp_dlogp: Any  # a compiled function: unconstrained point -> (log density, gradient)
    free_fn: Any  # a compiled function: unconstrained point -> the free RVs, flattened
    derived: Callable[..., list[np.ndarray]]  # free RV values -> tables, batches, parameters
    derived_names: list[tuple[str, str, str]]  # (kind, name, part) of each derived output
    free_names: list[str]
    free_shapes: list[tuple[int, ...]]
    x0: np.ndarray


_COMPILED: dict[str, CompiledModel] = {}


def structure_key(exact: ExactModel, query: Query, plan_values: object) -> str:
    """What a compiled model depends on, hashed."""
    s = query.structure
    blob = json.dumps(
        [
            exact.tree.file_hash or exact.tree.spec.model_dump_json(),
            s.network.lo,
            s.network.hi,
            sorted(map(list, s.scopes)),
            sorted(query.given.items()),
            repr(plan_values),
        ],
        default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def compile_model(exact: ExactModel, query: Query, *, scan: bool = True) -> CompiledModel:
    """The compiled model for ``query``, from the in-memory cache when its structure is known.

    The constant evidence is set as data on every call, so a cached model serves new readings.
    ``scan=False`` unrolls the past in the junction tree instead of scanning it (to compare).
    """
    from scenariocast.engines.pymc import evidence, priors

    plan = evidence.plan(exact, query, priors.uncertain_indicators(exact.tree))
    key = structure_key(exact, query, (plan.key, scan))
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = _compile(key, build(exact, query, scan=scan))
        _COMPILED[key] = compiled
    potentials = constant_values(query, plan, compiled.built.chain)
    for var, value in zip(compiled.built.constant, potentials, strict=True):
        var.set_value(np.asarray(value, dtype=np.float64))
    return compiled


def _compile(key: str, built: BuiltModel) -> CompiledModel:
    model = built.model
    point = model.initial_point()
    vg = model.logp_dlogp_function(ravel_inputs=True)
    vg.set_extra_values({})
    raw_fn = vg._pytensor_function

    x0 = DictToArrayBijection.map(point).data
    free = list(model.free_RVs)
    constrained = model.replace_rvs_by_values(free)
    [joined], x = join_nonshared_inputs(
        point, [pt.concatenate([c.flatten() for c in constrained])], model.value_vars, {}
    )
    free_fn = function([x], joined)
    shapes = [tuple(int(d) for d in rv.shape.eval()) for rv in free]

    outputs: list[Any] = []
    names: list[tuple[str, str, str]] = []
    for node, (cpt, transition) in built.tables.items():
        outputs.append(cpt)
        names.append(("table", node, "cpt"))
        if transition is not None:
            outputs.append(transition)
            names.append(("table", node, "transition"))
    for i, table in enumerate(built.batches):
        outputs.append(table)
        names.append(("batch", str(i), ""))
    for ind, params in built.params.items():
        for pname, value in params.items():
            outputs.append(value)
            names.append(("param", ind, pname))
    inputs = [rv.type() for rv in free]
    replaced = clone_replace(outputs, dict(zip(free, inputs, strict=True)))
    derived = function(inputs, replaced, on_unused_input="ignore")
    return CompiledModel(
        key=key,
        built=built,
        ndim=len(x0),
        logp_dlogp=raw_fn,
        free_fn=free_fn,
        derived=derived,
        derived_names=names,
        free_names=[rv.name for rv in free],
        free_shapes=shapes,
        x0=x0,
    )


def sample(
    compiled: CompiledModel,
    *,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    progress: bool,
    sampler: str = "nutpie",
) -> Any:
    """Posterior draws of the free variables (constrained) and sampler statistics.

    A DataTree with ``posterior`` and ``sample_stats`` groups.
    """
    if sampler not in SAMPLERS:
        raise QueryError(f"unknown sampler '{sampler}'; samplers: {', '.join(SAMPLERS)}")
    if chains < 2:
        raise QueryError(f"at least 2 chains are needed to check convergence, got {chains}")
    if sampler == "nutpie":
        try:
            import nutpie  # noqa: F401
        except ImportError:
            sampler = "pymc"
    if compiled.ndim == 0:
        raise QueryError("the tree holds no uncertain number: use the exact engine")
    if sampler == "nutpie":
        return _sample_nutpie(compiled, draws, tune, chains, seed, progress)
    return pm.sample(
        draws=draws,
        tune=tune,
        chains=chains,
        cores=1,
        random_seed=seed,
        progressbar=progress,
        model=compiled.built.model,
        compute_convergence_checks=False,
    )


def _sample_nutpie(
    compiled: CompiledModel, draws: int, tune: int, chains: int, seed: int, progress: bool
) -> Any:
    import nutpie
    from nutpie import compiled_pyfunc

    sizes = [int(np.prod(s)) for s in compiled.free_shapes]

    # nutpie runs each chain in its own thread and a compiled PyTensor function is not
    # thread-safe: every chain gets its own copy (sharing the compiled code)
    def make_logp() -> Callable[..., tuple[float, np.ndarray]]:
        fn = compiled.logp_dlogp.copy()

        def logp(x: np.ndarray, **_: Any) -> tuple[float, np.ndarray]:
            value, grad = fn(np.asarray(x, dtype=np.float64))
            return float(value), np.asarray(grad, dtype=np.float64)

        return logp

    def make_expand(_seed1: int, _seed2: int, _chain: int) -> Callable[..., dict[str, Any]]:
        fn = compiled.free_fn.copy()

        def expand(x: np.ndarray, **_: Any) -> dict[str, Any]:
            flat = np.asarray(fn(np.asarray(x, dtype=np.float64)))
            out, at = {}, 0
            for name, size, shape in zip(
                compiled.free_names, sizes, compiled.free_shapes, strict=True
            ):
                out[name] = flat[at : at + size].reshape(shape)
                at += size
            return out

        return expand

    def initial_point(point_seed: int) -> np.ndarray:
        rng = np.random.default_rng(point_seed)
        return compiled.x0 + rng.uniform(-1.0, 1.0, size=compiled.ndim)

    model = compiled_pyfunc.from_pyfunc(
        compiled.ndim,
        make_logp,
        make_expand,
        [np.dtype("float64")] * len(compiled.free_names),
        compiled.free_shapes,
        compiled.free_names,
        make_initial_point_fn=initial_point,
    )
    return nutpie.sample(
        model,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        progress_bar=progress,
        save_warmup=False,
    )
