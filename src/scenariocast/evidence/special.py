"""The Student-t distribution function and the normal quantile, in NumPy, in log space.

Readings of a Student-t indicator in one report are joined by a Gaussian copula, which needs
``Phi^-1(F_t(z))`` for every reading. SciPy has both functions, but importing ``scipy.special``
costs about 0.35 s, more than the whole budget of a command-line forecast; these are the two
textbook algorithms, checked against SciPy in the tests to 1e-12:

- the Student-t lower tail through the regularized incomplete beta function, evaluated by its
  continued fraction (modified Lentz), kept in logs so that tails far beyond 1e-300 stay finite;
- the normal quantile by Acklam's rational approximation, refined by Newton steps on
  ``log Phi``, with an asymptotic series for ``log Phi`` where ``erfc`` underflows.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

_LENTZ_TINY = 1e-300
_LENTZ_EPS = 1e-16
_LENTZ_MAX = 500

_lgamma = np.frompyfunc(math.lgamma, 1, 1)
_erfc = np.frompyfunc(math.erfc, 1, 1)


def _lg(x: FloatArray) -> FloatArray:
    return np.asarray(_lgamma(x), dtype=np.float64)


def _log_betacf(a: FloatArray, b: FloatArray, x: FloatArray) -> FloatArray:
    """Log of the continued fraction of the incomplete beta function (x < (a+1)/(a+b+2))."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones_like(x)
    d = 1.0 - qab * x / qap
    d = np.where(np.abs(d) < _LENTZ_TINY, _LENTZ_TINY, d)
    d = 1.0 / d
    log_h = np.log(np.abs(d))
    sign = np.sign(d)
    done = np.zeros(x.shape, dtype=bool)
    for m in range(1, _LENTZ_MAX + 1):
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = np.where(np.abs(d) < _LENTZ_TINY, _LENTZ_TINY, d)
        c = 1.0 + aa / c
        c = np.where(np.abs(c) < _LENTZ_TINY, _LENTZ_TINY, c)
        d = 1.0 / d
        step = d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = np.where(np.abs(d) < _LENTZ_TINY, _LENTZ_TINY, d)
        c = 1.0 + aa / c
        c = np.where(np.abs(c) < _LENTZ_TINY, _LENTZ_TINY, c)
        d = 1.0 / d
        delta = d * c
        factor = np.where(done, 1.0, step * delta)
        log_h = log_h + np.log(np.abs(factor))
        sign = sign * np.sign(factor)
        done = done | (np.abs(delta - 1.0) < _LENTZ_EPS)
        if done.all():
            break
    return np.asarray(log_h, dtype=np.float64)


def log_t_lower_tail(z: FloatArray, nu: FloatArray) -> FloatArray:
    """``log P(T <= -|z|)`` for a Student-t variable with ``nu`` degrees of freedom.

    With ``x = nu / (nu + z^2)`` this is ``log(I_x(nu/2, 1/2) / 2)``. Where ``x`` is close to 1
    (``|z|`` small) the symmetry ``I_x(a, b) = 1 - I_{1-x}(b, a)`` is used, with ``1 - x``
    computed as ``z^2 / (nu + z^2)`` so that nothing cancels.
    """
    t = np.abs(np.asarray(z, dtype=np.float64))
    nu = np.broadcast_to(np.asarray(nu, dtype=np.float64), t.shape)
    a, b = nu / 2.0, np.full(t.shape, 0.5)
    # x = nu / (nu + z^2) and y = 1 - x = z^2 / (nu + z^2), in logs so that z^2 never overflows
    with np.errstate(divide="ignore", over="ignore"):
        big = t > 1.0
        safe = np.where(big, t, 1.0)
        log_r = np.log(nu) - 2.0 * np.log(safe)  # log(nu / z^2) where |z| > 1
        log_x = np.where(big, log_r - np.log1p(np.exp(log_r)), np.log(nu) - np.log(nu + t * t))
        log_y = np.where(big, -np.log1p(np.exp(log_r)), 2.0 * np.log(t) - np.log(nu + t * t))
    x, y = np.exp(log_x), np.exp(log_y)
    direct = x < (a + 1.0) / (a + b + 2.0)
    log_beta = _lg(a) + _lg(b) - _lg(a + b)
    out = np.empty(t.shape)
    if direct.any():
        aa, bb, xx = a[direct], b[direct], x[direct]
        log_i = (
            aa * log_x[direct]
            + bb * log_y[direct]
            - np.log(aa)
            - log_beta[direct]
            + _log_betacf(aa, bb, xx)
        )
        out[direct] = log_i - math.log(2.0)
    other = ~direct
    if other.any():
        aa, bb, yy = a[other], b[other], y[other]
        # I_x(a, b) = 1 - I_y(b, a)
        log_j = (
            bb * log_y[other]
            + aa * log_x[other]
            - np.log(bb)
            - log_beta[other]
            + _log_betacf(bb, aa, yy)
        )
        out[other] = np.log1p(-np.exp(log_j)) - math.log(2.0)
    return out


# Acklam's coefficients for the normal quantile
_A = (
    -3.969683028665376e01,
    2.209460984245205e02,
    -2.759285104469687e02,
    1.383577518672690e02,
    -3.066479806614716e01,
    2.506628277459239e00,
)
_B = (
    -5.447609879822406e01,
    1.615858368580409e02,
    -1.556989798598866e02,
    6.680131188771972e01,
    -1.328068155288572e01,
)
_C = (
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e00,
    -2.549732539343734e00,
    4.374664141464968e00,
    2.938163982698783e00,
)
_D = (
    7.784695709041462e-03,
    3.224671290700398e-01,
    2.445134137142996e00,
    3.754408661907416e00,
)
_P_LOW = 0.02425
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _poly(coefs: tuple[float, ...], x: FloatArray) -> FloatArray:
    out = np.full(x.shape, coefs[0])
    for c in coefs[1:]:
        out = out * x + c
    return out


def log_norm_cdf(x: FloatArray) -> FloatArray:
    """``log Phi(x)``, accurate far into the lower tail."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.shape)
    far = x < -30.0
    near = ~far
    if near.any():
        u = x[near]
        # Phi(u) for u <= 0; log(1 - Phi(-u)) for u > 0, where Phi(u) is close to 1
        lower = np.asarray(_erfc(np.abs(u) / math.sqrt(2.0)), dtype=np.float64) / 2.0
        out[near] = np.where(u <= 0, np.log(lower), np.log1p(-lower))
    if far.any():
        t = x[far]
        inv = 1.0 / (t * t)
        # Phi(x) = phi(x) / -x * (1 - 1/x^2 + 3/x^4 - 15/x^6 + 105/x^8 - ...), x -> -inf
        series = 1.0 + inv * (-1.0 + inv * (3.0 + inv * (-15.0 + inv * (105.0 - 945.0 * inv))))
        out[far] = -0.5 * t * t - _LOG_SQRT_2PI - np.log(-t) + np.log(series)
    return out


def norm_ppf_from_log(log_p: FloatArray) -> FloatArray:
    """``Phi^-1(p)`` given ``log p``, for ``p`` in (0, 1/2] (the result is <= 0)."""
    log_p = np.asarray(log_p, dtype=np.float64)
    p = np.exp(log_p)
    x = np.empty(log_p.shape)
    tail = p < _P_LOW
    if tail.any():
        q = np.sqrt(-2.0 * log_p[tail])
        x[tail] = _poly(_C, q) / (_poly(_D, q) * q + 1.0)
    mid = ~tail
    if mid.any():
        q = p[mid] - 0.5
        r = q * q
        x[mid] = _poly(_A, r) * q / (_poly(_B, r) * r + 1.0)
    # Newton on f(x) = log Phi(x) - log p; f'(x) = phi(x) / Phi(x)
    for _ in range(3):
        lc = log_norm_cdf(x)
        log_pdf = -0.5 * x * x - _LOG_SQRT_2PI
        x = x - (lc - log_p) / np.exp(log_pdf - lc)
    return np.minimum(x, 0.0)


def t_normal_scores(z: FloatArray, nu: FloatArray) -> FloatArray:
    """``Phi^-1(F_t(z; nu))``: the normal score of a standardised Student-t value."""
    z = np.asarray(z, dtype=np.float64)
    g = norm_ppf_from_log(log_t_lower_tail(z, nu))  # the score of -|z|
    return np.where(z > 0, -g, g)
