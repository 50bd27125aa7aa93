"""What each state of a tree predicts for an indicator, in the units readings are entered in.

For every combination of the states an indicator depends on, the tree gives the distribution of
a reading (``docs/scenario-format.md``). This module summarises it the way a forecaster compares
it with the latest readings: the median and the central 90% range of a reading, back in the
units it is reported in (a price in KPW/kg, not its log change against a baseline), or the
probability of each answer for yes/no and categorical indicators. NumPy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np

from scenariocast.evidence.likelihood import untransform
from scenariocast.evidence.special import log_t_lower_tail, norm_ppf_from_log
from scenariocast.spec.model import ReadAs
from scenariocast.spec.tree import Tree, combos

#: The central range reported for continuous and count indicators.
LEVEL = 0.9
_Z90 = 1.6448536269514722  # the standard normal's 95% quantile


@dataclass(frozen=True)
class StatePrediction:
    """What one combination of states predicts for a reading of an indicator.

    For continuous and count indicators ``median``, ``low`` and ``high`` are the median and the
    central 90% range of a reading, in the units it is entered in. For binary indicators
    ``probabilities`` holds the probability of ``yes``; for categorical ones, of each category.
    """

    states: Mapping[str, str]
    median: float | None = None
    low: float | None = None
    high: float | None = None
    probabilities: Mapping[str, float] | None = None


@cache
def t_quantile(q: float, nu: float) -> float:
    """The ``q`` quantile (1/2 < q < 1) of a standard Student-t variable with ``nu`` degrees.

    Newton's method on the log of the upper tail (``evidence.special``), from the normal quantile
    with the first two Cornish-Fisher corrections; a few steps reach machine precision.
    """
    target = math.log1p(-q)
    z = -float(norm_ppf_from_log(np.array([target]))[0])
    t = z + (z**3 + z) / (4 * nu) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * nu**2)
    log_c = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)
    for _ in range(60):
        log_sf = float(log_t_lower_tail(np.array([t]), np.array([nu]))[0])
        log_pdf = log_c - (nu + 1) / 2 * math.log1p(t * t / nu)
        step = (log_sf - target) * math.exp(log_sf - log_pdf)
        t = max(t + step, t / 2)  # never past zero
        if abs(step) < 1e-13 * max(1.0, t):
            break
    return t


def _poisson_quantile(q: float, rate: float) -> int:
    """The smallest count whose cumulative Poisson probability reaches ``q``."""
    total, k = 0.0, 0
    while True:
        total += math.exp(k * math.log(rate) - rate - math.lgamma(k + 1.0))
        if total >= q or k > 10_000:
            return k
        k += 1


def reported(read_as: ReadAs | None, quantity: float) -> float:
    """Turn a quantity the indicator describes back into the units a reading is entered in.

    The inverse of the ``read_as`` transform: ``log_change`` 0.5 against a baseline of 4,800 is
    a reading of 4,800 * e^0.5.
    """
    return float(untransform(read_as, np.array([quantity]))[0])


def predictions(tree: Tree, indicator: str) -> tuple[StatePrediction, ...]:
    """What every combination of the states ``indicator`` depends on predicts for a reading."""
    ind = tree.indicators[indicator]
    spec = ind.spec
    states = {n: tree.nodes[n].states for n in ind.scope}
    out: list[StatePrediction] = []
    for combo in combos(ind.scope, states):
        idx = tuple(states[n].index(combo[n]) for n in ind.scope)
        p = {k: float(v[idx]) for k, v in ind.params.items() if k != "probs"}
        if spec.kind == "binary":
            out.append(StatePrediction(combo, probabilities={"yes": p["p"]}))
        elif spec.kind == "categorical":
            cats = spec.categories or []
            probs = ind.params["probs"][idx]
            out.append(
                StatePrediction(
                    combo, probabilities={c: float(x) for c, x in zip(cats, probs, strict=True)}
                )
            )
        elif spec.kind == "count":
            rate = p["rate"]
            tail = (1.0 - LEVEL) / 2.0
            out.append(
                StatePrediction(
                    combo,
                    median=float(_poisson_quantile(0.5, rate)),
                    low=float(_poisson_quantile(tail, rate)),
                    high=float(_poisson_quantile(1.0 - tail, rate)),
                )
            )
        else:
            mu, sigma = p["mu"], p["sigma"]
            z = t_quantile(0.95, p["nu"]) if spec.kind == "student_t" else _Z90
            if spec.kind == "lognormal":  # mu and sigma on the log scale, values as reported
                lo, med, hi = math.exp(mu - z * sigma), math.exp(mu), math.exp(mu + z * sigma)
            else:
                lo, med, hi = (
                    reported(spec.read_as, x) for x in (mu - z * sigma, mu, mu + z * sigma)
                )
            out.append(StatePrediction(combo, median=med, low=lo, high=hi))
    return tuple(out)
