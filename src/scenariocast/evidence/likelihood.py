"""Log-likelihoods of readings under every combination of an indicator's node states.

NumPy only (no SciPy): the exact engine runs in the command line, where start-up time counts.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from scenariocast.spec.model import ReadAs
from scenariocast.spec.tree import CompiledIndicator

FloatArray = NDArray[np.float64]
_LOG_2PI = math.log(2.0 * math.pi)


def transform(read_as: ReadAs | None, values: FloatArray) -> FloatArray:
    """Apply an indicator's ``read_as`` transform to reported values."""
    if read_as is None or read_as.transform == "identity":
        return values
    with np.errstate(divide="ignore", invalid="ignore"):
        if read_as.transform == "log":
            return np.log(values)
        baseline = float(read_as.baseline or 1.0)
        if read_as.transform == "log_change":
            return np.log(values / baseline)
        return 100.0 * (values / baseline - 1.0)


def logsumexp(a: FloatArray, axis: int | tuple[int, ...] | None = None) -> FloatArray:
    """log(sum(exp(a))) over ``axis``, exact for entries of -inf and without overflow."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    if axis is None:
        return np.asarray(out.reshape(()), dtype=np.float64)
    return np.asarray(np.squeeze(out, axis=axis), dtype=np.float64)


def _lgamma(x: FloatArray) -> FloatArray:
    return np.asarray(np.vectorize(math.lgamma, otypes=[float])(x), dtype=np.float64)


def log_likelihood(ind: CompiledIndicator, x: FloatArray) -> FloatArray:
    """Log p(x | states) for readings ``x`` (already parsed and transformed).

    Returns an array of shape ``(len(x), *cards)`` with one axis per node in ``ind.scope``.
    """
    kind = ind.spec.kind
    p = ind.params
    extra = (slice(None),) + (None,) * (
        p["probs"].ndim - 1 if kind == "categorical" else next(iter(p.values())).ndim
    )
    xs = x[extra]
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "binary":
            prob = p["p"][None, ...]
            out = np.where(xs > 0.5, np.log(prob), np.log1p(-prob))
        elif kind == "categorical":
            logp = np.log(p["probs"])
            out = np.moveaxis(logp[..., x.astype(int)], -1, 0)
        elif kind == "count":
            rate = p["rate"][None, ...]
            out = xs * np.log(rate) - rate - _lgamma(xs + 1.0)
        elif kind == "normal":
            z = (xs - p["mu"][None, ...]) / p["sigma"][None, ...]
            out = -0.5 * z * z - np.log(p["sigma"][None, ...]) - 0.5 * _LOG_2PI
        elif kind == "lognormal":
            lx = np.log(xs)
            z = (lx - p["mu"][None, ...]) / p["sigma"][None, ...]
            out = -0.5 * z * z - np.log(p["sigma"][None, ...]) - 0.5 * _LOG_2PI - lx
        elif kind == "student_t":
            nu = p["nu"][None, ...]
            sigma = p["sigma"][None, ...]
            z = (xs - p["mu"][None, ...]) / sigma
            out = (
                _lgamma((nu + 1.0) / 2.0)
                - _lgamma(nu / 2.0)
                - 0.5 * np.log(nu * math.pi)
                - np.log(sigma)
                - (nu + 1.0) / 2.0 * np.log1p(z * z / nu)
            )
        else:  # pragma: no cover - the spec only allows the kinds above
            raise ValueError(kind)
    out = np.asarray(out, dtype=float)
    return np.where(np.isnan(out), -np.inf, out)
