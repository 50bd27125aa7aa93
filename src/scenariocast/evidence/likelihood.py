"""Log-likelihoods of readings under every combination of an indicator's node states.

NumPy only (no SciPy): the exact engine runs in the command line, where start-up time counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

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


def untransform(read_as: ReadAs | None, quantities: FloatArray) -> FloatArray:
    """The inverse of :func:`transform`: quantities the indicator describes, as reported values.

    ``log_change`` 0.5 against a baseline of 4,800 is a reading of 4,800 * e^0.5.
    """
    if read_as is None or read_as.transform == "identity":
        return quantities
    if read_as.transform == "log":
        return np.exp(quantities)
    baseline = float(read_as.baseline or 1.0)
    if read_as.transform == "log_change":
        return baseline * np.exp(quantities)
    return baseline * (1.0 + quantities / 100.0)


def reading_cdf(
    kind: str, params: Mapping[str, float], read_as: ReadAs | None, value: float
) -> float:
    """P(a reading <= ``value``) for a continuous indicator with parameters ``params``.

    ``value`` is as reported; it is read as the indicator reads its readings (``read_as``, or
    the log for a lognormal indicator) before the distribution function is applied. Every
    transform is increasing, so this is the distribution function of the reported value.
    """
    from scenariocast.evidence.special import log_norm_cdf, log_t_lower_tail

    if kind not in ("normal", "lognormal", "student_t"):
        raise ValueError(f"a {kind} indicator has no distribution function of a number")
    x = float(transform(read_as, np.array([value], dtype=np.float64))[0])
    if kind == "lognormal":
        x = math.log(value) if value > 0 else -math.inf
    if math.isnan(x):
        return math.nan
    if math.isinf(x):
        return 0.0 if x < 0 else 1.0
    z = (x - params["mu"]) / params["sigma"]
    if kind in ("normal", "lognormal"):
        return float(np.exp(log_norm_cdf(np.array([z]))[0]))
    lower = float(np.exp(log_t_lower_tail(np.array([z]), np.array([params["nu"]]))[0]))
    return lower if z <= 0 else 1.0 - lower


def logsumexp(a: FloatArray, axis: int | tuple[int, ...] | None = None) -> FloatArray:
    """log(sum(exp(a))) over ``axis``, exact for entries of -inf and without overflow.

    The summed axes are brought to the front of one contiguous block first: NumPy's reductions
    over middle axes of a large table stride through memory and were most of a forecast's time.
    Terms more than e^-700 below their column's largest are taken at e^-700 (at most 1e-304 of
    it, far below a double's precision); ``exp`` of numbers near and past its underflow, common
    in tables of log-likelihoods, is ten times slower than of any other.
    """
    a = np.asarray(a, dtype=np.float64)
    if axis is None:
        axes: tuple[int, ...] = tuple(range(a.ndim))
    else:
        axes = tuple(sorted({x % a.ndim for x in ((axis,) if isinstance(axis, int) else axis)}))
    if a.size == 0 or not axes:
        return _logsumexp_plain(a, axis)
    keep = tuple(i for i in range(a.ndim) if i not in axes)
    rows = math.prod(a.shape[i] for i in axes)
    block = np.ascontiguousarray(np.transpose(a, axes + keep)).reshape(rows, -1)
    m = block.max(axis=0)
    finite = np.isfinite(m)
    if not finite.all():
        m = np.where(finite, m, 0.0)
    t = block - m
    np.maximum(t, -700.0, out=t)
    np.exp(t, out=t)
    out = np.log(t.sum(axis=0))  # at least 1: every column holds its largest term, e^0
    out += m
    if not finite.all():
        out = np.where(finite, out, block.max(axis=0))  # columns of -inf only stay -inf
    return np.asarray(out.reshape(tuple(a.shape[i] for i in keep)), dtype=np.float64)


def _logsumexp_plain(a: FloatArray, axis: int | tuple[int, ...] | None) -> FloatArray:
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


def report_log_likelihood(ind: CompiledIndicator, x: FloatArray, rho: float) -> FloatArray:
    """Joint log p(x_1..x_n | states) of ``n`` readings of one indicator in one report.

    The readings share an error with correlation ``rho`` (docs/evidence.md): for a normal
    indicator the joint is the multivariate normal with equicorrelated errors; for a lognormal
    one, the same on the log scale; for a Student-t one, a Gaussian copula with the same
    equicorrelation joins the readings' Student-t margins. Readings of discrete kinds, and
    any readings with ``rho = 0``, count as independent given the states. Returns an array with
    one axis per node in ``ind.scope``.
    """
    kind = ind.spec.kind
    n = len(x)
    if n == 1 or rho == 0.0 or kind not in ("normal", "lognormal", "student_t"):
        return np.asarray(log_likelihood(ind, x).sum(axis=0), dtype=np.float64)
    p = ind.params
    extra = (slice(None),) + (None,) * p["mu"].ndim
    c = rho / (1.0 + (n - 1) * rho)
    log_det = (n - 1) * math.log1p(-rho) + math.log1p((n - 1) * rho)

    def quad(g: FloatArray) -> FloatArray:
        """G' R^-1 g for the equicorrelated R, along axis 0."""
        s1, s2 = g.sum(axis=0), (g * g).sum(axis=0)
        return np.asarray((s2 - c * s1 * s1) / (1.0 - rho), dtype=np.float64)

    with np.errstate(divide="ignore", invalid="ignore"):
        if kind in ("normal", "lognormal"):
            lx = np.log(x) if kind == "lognormal" else x
            z = (lx[extra] - p["mu"][None, ...]) / p["sigma"][None, ...]
            out = (
                -n * np.log(p["sigma"])
                - 0.5 * n * _LOG_2PI
                - 0.5 * log_det
                - 0.5 * quad(z)
                - (float(np.sum(lx)) if kind == "lognormal" else 0.0)
            )
        else:
            from scenariocast.evidence.special import t_normal_scores

            margins = log_likelihood(ind, x)  # (n, *cards)
            z = (x[extra] - p["mu"][None, ...]) / p["sigma"][None, ...]
            nu = np.broadcast_to(p["nu"][None, ...], z.shape)
            g = t_normal_scores(z, nu)
            # Gaussian copula density: |R|^-1/2 exp(-(g' R^-1 g - g'g) / 2)
            out = margins.sum(axis=0) - 0.5 * log_det - 0.5 * (quad(g) - (g * g).sum(axis=0))
    out = np.asarray(out, dtype=np.float64)
    return np.where(np.isnan(out), -np.inf, out)
