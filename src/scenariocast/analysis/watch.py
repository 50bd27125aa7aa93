"""What to watch next: the value of a reading not yet taken, for every indicator and outcome.

Given the evidence so far, a reading of an indicator is worth what it is expected to tell about
each outcome (docs/watch-and-sensitivity.md):

- the **expected information gain**: the mutual information between the outcome and the
  reading, in bits, ``H(now) - E[H(after the reading)]``, and that as a share of the outcome's
  entropy now;
- the **expected change** of the outcome's probability, ``E|P(after) - P(now)|``;
- the **largest change** one reading could make.

The reading is one report from one source (``--source``, else the indicator's usual source: its
``source`` in the tree, else the source of most of its readings in the ledger up to the as-of
date, else the tree's most reliable source), so that its value accounts for the source's
reliability ``r`` exactly as the forecast will count it: ``L(x | s) = r p(x | s) + (1 - r)
q(x)``. The reading's distribution, given the evidence, is then a finite mixture over the
states ``s`` of the indicator's nodes with weights
``r P(s | evidence) + (1 - r) P_prior(s)``. A report of several readings of one indicator is
worth less than as many separate reports (they share the report's reliability and, for
continuous indicators, an error): the value of a report of ``n`` readings is computed exactly as
the engine would count it.

**When.** In a tree with dynamic nodes the reading is observed in the step after the as-of
date's (the next month, say): evidence about the state then, which informs every outcome
through the chain. ``ever`` and ``at_least`` outcomes are the outcome probabilities the engine
computes over the whole horizon; the value is about those. In a tree without a horizon, or for
an indicator on static nodes only, the reading is about the nodes' single state; if the
indicator's ``combine`` rule is ``latest`` and a reading of the same source (and location) is
counted, the new reading replaces it, and its value is net of what the old one said (it can be
negative).

**How accurately.** Discrete readings (yes/no, categories, counts) are enumerated exactly
(counts up to where the remaining probability is below 1e-15). A continuous reading is
integrated per mixture component with the double-exponential (sinh-sinh) rule, its step halved
until two steps agree to 1e-10 in every quantity; several normal or lognormal readings in one
report reduce exactly to their mean and their spread around it (two dimensions); several
Student-t readings in one report, joined by a Gaussian copula, have no such reduction and are
averaged by Monte Carlo (a fixed seed, with the standard error given).

**Nodes.** Evidence enters only through indicators (a node's state is a judgement that a report
can only approximate), so a node cannot be observed; its value is shown as a ceiling: what
knowing its state at that step exactly would be worth, which no indicator of it can exceed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scenariocast.analysis.indicators import reported
from scenariocast.analysis.joint import OutcomeJoints
from scenariocast.analysis.quadrature import sinh_sinh, t_scores
from scenariocast.engines.exact.junction import FloatArray
from scenariocast.engines.exact.model import ExactModel, Query
from scenariocast.engines.exact.network import check_outcome
from scenariocast.errors import QueryError, did_you_mean
from scenariocast.evidence.readings import Reading
from scenariocast.evidence.select import (
    Evidence,
    Observation,
    group_reports,
    select_evidence,
)
from scenariocast.evidence.special import log_norm_cdf
from scenariocast.spec.model import CONTINUOUS_KINDS
from scenariocast.spec.tree import CompiledIndicator, Tree

#: The low and high readings described in words: each has this chance of being reached.
TAIL = 0.1
#: The report compared with one reading: this many readings of the indicator in one report.
REPORT_SIZE = 3
#: Monte Carlo draws per state for several Student-t readings in one report.
MC_DRAWS = 500
#: Quadrature: the first and the finest step level of the sinh-sinh rule, and the agreement
#: two levels must reach.
_LEVEL_START, _LEVEL_MAX, _TOLERANCE = 4, 8, 1e-10
#: Counts are enumerated until the probability left is below this.
_COUNT_TAIL = 1e-15
_LOG_2PI = math.log(2.0 * math.pi)
_lgamma = np.vectorize(math.lgamma, otypes=[float])


def entropy_bits(p: Any) -> Any:
    """The entropy of a yes/no question answered yes with probability ``p``, in bits."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    q = 1.0 - p
    out = -(p * np.log2(np.where(p > 0, p, 1.0)) + q * np.log2(np.where(q > 0, q, 1.0)))
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class OutcomeNow:
    """An outcome's probability given the evidence so far, and its entropy in bits."""

    id: str
    probability: float
    entropy: float


@dataclass(frozen=True)
class Value:
    """What a reading is expected to do to one outcome.

    ``gain`` is the expected information gain in bits and ``share`` that as a share of the
    outcome's entropy now (0 when the outcome is already certain); ``expected_change`` the
    expected absolute change of its probability; ``largest_change`` the largest change one
    reading could make, to ``largest_to``. ``se`` is the Monte Carlo standard error of ``gain``
    (None when it is computed by enumeration or quadrature).
    """

    gain: float
    share: float
    expected_change: float
    largest_change: float
    largest_to: float
    se: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "gain_bits": self.gain,
            "gain_share": self.share,
            "expected_change": self.expected_change,
            "largest_change": self.largest_change,
            "largest_change_to": self.largest_to,
            **({"gain_se": self.se} if self.se is not None else {}),
        }


@dataclass(frozen=True)
class Move:
    """A reading (or a range of them) and the outcome's probability after it.

    ``relation`` is ``at_least`` or ``at_most`` (a reading of ``value`` or beyond, in the units
    readings are entered in, with probability ``chance``) or ``is`` (exactly the answer
    ``reading``, or a node in that state); with ``bound`` every reading beyond it moves the
    outcome at least as far (``probability`` is then a bound).
    """

    outcome: str
    reading: str
    relation: str
    chance: float
    probability: float
    bound: bool
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "outcome": self.outcome,
            "reading": self.value if self.value is not None else self.reading,
            "relation": self.relation,
            "chance": self.chance,
            "probability_after": self.probability,
            "bound": self.bound,
        }


@dataclass(frozen=True)
class Candidate:
    """An indicator to read (or a node, as a ceiling) and what a reading would be worth.

    ``readings`` readings in one report from ``source``; ``step`` is the step of the horizon
    the reading would be observed in (None for a static tree or an indicator on static nodes).
    ``larger`` holds the values of a report of ``larger_size`` readings, for comparison, when
    computed; ``effective`` the number of independent readings a report of ``larger_size``
    continuous readings is worth (``n / (1 + (n - 1) rho)``). ``replaces`` names the counted
    readings the new one would supersede.
    """

    kind: str  # indicator or node
    name: str
    step: int | None
    step_label: str | None
    source: str | None
    reliability: float
    source_rule: str
    readings: int
    cost: float | None
    values: Mapping[str, Value]
    method: str
    moves: Mapping[str, tuple[Move, ...]] = field(default_factory=dict)
    replaces: tuple[int, ...] = ()
    larger: Mapping[str, Value] = field(default_factory=dict)
    larger_size: int | None = None
    effective: float | None = None
    unit: str | None = None

    def gain_per_cost(self, outcome: str) -> float | None:
        """Bits per unit of cost, when the indicator has a cost."""
        if self.cost is None:
            return None
        return self.values[outcome].gain / self.cost

    def mean_share(self) -> float:
        """The mean over the outcomes of the share of their entropy removed."""
        shares = [v.share for v in self.values.values()]
        return math.fsum(shares) / len(shares) if shares else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "step": self.step_label,
            "source": self.source,
            "reliability": self.reliability,
            "source_rule": self.source_rule,
            "readings_per_report": self.readings,
            "cost": self.cost,
            "method": self.method,
            "outcomes": {
                o: {**v.to_dict(), "gain_per_cost": self.gain_per_cost(o)}
                for o, v in self.values.items()
            },
        }
        if self.unit:
            out["unit"] = self.unit
        if self.replaces:
            out["replaces_readings"] = list(self.replaces)
        if self.moves:
            out["moves"] = {o: [m.to_dict() for m in ms] for o, ms in self.moves.items()}
        if self.larger:
            out["report_of"] = {
                "readings": self.larger_size,
                "effective_readings": self.effective,
                "outcomes": {o: v.to_dict() for o, v in self.larger.items()},
            }
        return out


@dataclass(frozen=True)
class WatchResult:
    """The value of a reading of every indicator (and of knowing every node) for every outcome."""

    tree_id: str
    as_of: dt.date
    step: int | None
    step_label: str | None
    outcomes: Mapping[str, OutcomeNow]
    candidates: tuple[Candidate, ...]
    n_reports: int
    notes: tuple[str, ...] = ()

    @property
    def indicators(self) -> list[Candidate]:
        """The indicators, in the tree's order."""
        return [c for c in self.candidates if c.kind == "indicator"]

    @property
    def nodes(self) -> list[Candidate]:
        """The nodes (ceilings), in the tree's order."""
        return [c for c in self.candidates if c.kind == "node"]

    def ranked(self, outcome: str) -> list[Candidate]:
        """The indicators by expected information gain about ``outcome``, largest first."""
        return sorted(self.indicators, key=lambda c: (-c.values[outcome].gain, c.name))

    def ceilings(self, outcome: str) -> list[Candidate]:
        """The nodes by the value of knowing them exactly for ``outcome``, largest first."""
        return sorted(self.nodes, key=lambda c: (-c.values[outcome].gain, c.name))

    def overall(self) -> list[Candidate]:
        """The indicators by the mean share of the outcomes' entropy removed, largest first."""
        return sorted(self.indicators, key=lambda c: (-c.mean_share(), c.name))

    def by_cost(self, outcome: str) -> list[Candidate]:
        """The indicators with a cost by bits per unit of cost for ``outcome``, largest first."""
        costed = [c for c in self.indicators if c.cost is not None]
        return sorted(costed, key=lambda c: (-(c.gain_per_cost(outcome) or 0.0), c.name))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (``scenariocast watch --json``)."""
        return {
            "tree": self.tree_id,
            "as_of": self.as_of.isoformat(),
            "reading_step": self.step_label,
            "reports_counted": self.n_reports,
            "outcomes": {
                o.id: {"probability": o.probability, "entropy_bits": o.entropy}
                for o in self.outcomes.values()
            },
            "ranking": {o: [c.name for c in self.ranked(o)] for o in self.outcomes},
            "ranking_by_cost": {o: [c.name for c in self.by_cost(o)] for o in self.outcomes},
            "overall": [c.name for c in self.overall()],
            "indicators": [c.to_dict() for c in self.indicators],
            "nodes": [c.to_dict() for c in self.nodes],
            "notes": list(self.notes),
        }


# -- the reading's points --------------------------------------------------------------------


@dataclass(frozen=True)
class _Points:
    """Where a reading can fall: its possible values (or quadrature nodes, or draws).

    ``log_lik[s, j]`` is ``log p(point j | state s)`` up to a constant per point;
    ``mass[s, j]`` the weight of point ``j`` in the expectation under state ``s`` (its
    probability, or its quadrature or Monte Carlo weight), each row summing to 1 (to within
    the count's tail). ``quantity`` is each point's value as the indicator reads it, for
    single readings; ``labels`` names discrete points.
    """

    log_lik: FloatArray
    mass: FloatArray
    method: str
    quantity: FloatArray | None = None
    labels: tuple[str, ...] | None = None
    draws: int | None = None  # Monte Carlo draws per state


def _component_params(ind: CompiledIndicator, index: tuple[int | slice, ...]) -> dict[str, Any]:
    """Each parameter as a flat array over the indicator's states at one step."""
    out: dict[str, Any] = {}
    for name, arr in ind.params.items():
        sliced = np.asarray(arr[index], dtype=np.float64)
        if name == "probs":
            out[name] = sliced.reshape(-1, sliced.shape[-1])
        else:
            out[name] = sliced.reshape(-1)
    return out


def _log_density(kind: str, p: Mapping[str, FloatArray], x: FloatArray) -> FloatArray:
    """``log p(x | s)`` of one continuous reading (read as the indicator reads it): (K, P)."""
    mu, sigma = p["mu"][:, None], p["sigma"][:, None]
    z = (x[None, :] - mu) / sigma
    if kind == "student_t":
        nu = p["nu"]
        const = _lgamma((nu + 1.0) / 2.0) - _lgamma(nu / 2.0) - 0.5 * np.log(nu * math.pi)
        tail = (nu[:, None] + 1.0) / 2.0 * np.log1p(z * z / nu[:, None])
        return np.asarray(const[:, None] - np.log(sigma) - tail, dtype=np.float64)
    return np.asarray(-0.5 * z * z - np.log(sigma) - 0.5 * _LOG_2PI, dtype=np.float64)


def _t_score(z: FloatArray, nu: FloatArray) -> FloatArray:
    """``Phi^-1(F_t(z))`` by the tables of :func:`t_scores`, ``nu`` broadcast against ``z``."""
    nu = np.broadcast_to(nu, z.shape)
    out = np.empty(z.shape)
    for value in np.unique(nu):
        at = nu == value
        out[at] = t_scores(float(value)).score(z[at])
    return out


def _cdf(kind: str, p: Mapping[str, FloatArray], x: float) -> FloatArray:
    """``P(reading <= x | s)`` for every state s (the reading as the indicator reads it)."""
    z = (x - p["mu"]) / p["sigma"]
    if kind == "student_t":
        z = _t_score(z, p["nu"])
    with np.errstate(divide="ignore"):
        return np.asarray(np.exp(log_norm_cdf(z)), dtype=np.float64)


def _standard_log_density(kind: str, nu: float, u: FloatArray) -> FloatArray:
    if kind == "student_t":
        return np.asarray(
            math.lgamma((nu + 1) / 2)
            - math.lgamma(nu / 2)
            - 0.5 * math.log(nu * math.pi)
            - (nu + 1) / 2 * np.log1p(u * u / nu),
            dtype=np.float64,
        )
    return np.asarray(-0.5 * u * u - 0.5 * _LOG_2PI, dtype=np.float64)


def _continuous_one(kind: str, p: Mapping[str, FloatArray], level: int) -> _Points:
    """One continuous reading: the sinh-sinh rule around each state's centre and scale."""
    u, w = sinh_sinh(level)
    k = len(p["mu"])
    xs, masses = [], []
    for s in range(k):
        nu = float(p["nu"][s]) if kind == "student_t" else math.inf
        logw = np.log(w) + _standard_log_density(kind, nu, u)
        weight = np.exp(logw - logw.max())
        xs.append(p["mu"][s] + p["sigma"][s] * u)
        masses.append(weight / weight.sum())
    x = np.concatenate(xs)
    mass = np.zeros((k, len(x)))
    for s in range(k):
        mass[s, s * len(u) : (s + 1) * len(u)] = masses[s]
    return _Points(_log_density(kind, p, x), mass, "quadrature", quantity=x)


def _normal_report(p: Mapping[str, FloatArray], n: int, rho: float, level: int) -> _Points:
    """``n`` normal readings in one report: their mean and their spread around it.

    With equicorrelated errors the mean is normal with variance ``sigma^2 (1 + (n-1) rho) / n``
    and the sum of squares around it ``sigma^2 (1 - rho)`` times a chi-square with ``n - 1``
    degrees of freedom, independent of the mean: the two carry everything the readings say.
    The spread matters only when the states' sigmas differ.
    """
    mu, sigma = p["mu"], p["sigma"]
    k = len(mu)
    c1 = (1.0 + (n - 1) * rho) / n
    u, w = sinh_sinh(level)
    base = np.log(w) + _standard_log_density("normal", math.inf, u)
    wm = np.exp(base - base.max())
    wm /= wm.sum()
    same = bool(np.allclose(sigma, sigma[0], rtol=1e-12, atol=0.0))
    if same:
        ys: FloatArray = np.zeros(1)
        wy: FloatArray = np.ones(1)
    else:  # log of a chi-square with n - 1 degrees of freedom, by the same rule (coarser: smooth)
        df = n - 1.0
        centre, scale = math.log(df), math.sqrt(2.0 / df) + 0.5
        uy, w = sinh_sinh(min(level, 4))
        ys = centre + scale * uy
        keep = ys < 700.0  # beyond, the chi-square has no mass left
        ys, wl = ys[keep], w[keep]
        logf = 0.5 * df * ys - 0.5 * np.exp(ys) + np.log(wl)
        wy = np.exp(logf - logf.max())
        wy /= wy.sum()
    means, sss, masses = [], [], []
    for s in range(k):
        mbar = mu[s] + sigma[s] * math.sqrt(c1) * u
        ss = sigma[s] ** 2 * (1.0 - rho) * np.exp(ys)
        means.append(np.repeat(mbar, len(ys)))
        sss.append(np.tile(ss, len(u)))
        masses.append(np.outer(wm, wy).ravel())
    xbar, ss_all = np.concatenate(means), np.concatenate(sss)
    z = (xbar[None, :] - mu[:, None]) / (sigma[:, None] * math.sqrt(c1))
    log_lik = -0.5 * z * z - np.log(sigma[:, None])
    if not same:
        var = sigma[:, None] ** 2 * (1.0 - rho)
        log_lik = log_lik - 0.5 * (n - 1) * np.log(var) - ss_all[None, :] / (2.0 * var)
    size = len(u) * len(ys)
    mass = np.zeros((k, k * size))
    for s in range(k):
        mass[s, s * size : (s + 1) * size] = masses[s]
    return _Points(np.asarray(log_lik, dtype=np.float64), mass, "quadrature")


def t_report_log_density(
    x: FloatArray, mu: FloatArray, sigma: FloatArray, nu: FloatArray, rho: float
) -> FloatArray:
    """Log density of reports of ``n`` Student-t readings joined by a Gaussian copula.

    ``x`` has shape ``(P, n)`` (P reports); ``mu``, ``sigma`` and ``nu`` have shape ``(K,)``.
    Returns ``(K, P)``: the density of
    :func:`~scenariocast.evidence.likelihood.report_log_likelihood`, for many reports at once
    (the normal scores read from a table, :class:`~.quadrature.TScores`).
    """
    n = x.shape[1]
    z = (x[None, :, :] - mu[:, None, None]) / sigma[:, None, None]
    nu3 = nu[:, None, None]
    const = (
        _lgamma((nu + 1.0) / 2.0) - _lgamma(nu / 2.0) - 0.5 * np.log(nu * math.pi) - np.log(sigma)
    )
    margins = n * const[:, None] - ((nu3 + 1.0) / 2.0 * np.log1p(z * z / nu3)).sum(axis=2)
    if n == 1 or rho == 0.0:
        return np.asarray(margins, dtype=np.float64)
    g = _t_score(z, nu3)
    c = rho / (1.0 + (n - 1) * rho)
    log_det = (n - 1) * math.log1p(-rho) + math.log1p((n - 1) * rho)
    s1, s2 = g.sum(axis=2), (g * g).sum(axis=2)
    quad = (s2 - c * s1 * s1) / (1.0 - rho)
    return np.asarray(margins - 0.5 * log_det - 0.5 * (quad - s2), dtype=np.float64)


def _t_report(
    p: Mapping[str, FloatArray], n: int, rho: float, rng: np.random.Generator, draws: int
) -> _Points:
    """``n`` Student-t readings in one report: Monte Carlo draws from each state's copula."""
    mu, sigma, nu = p["mu"], p["sigma"], p["nu"]
    k = len(mu)
    z0 = rng.standard_normal((k, draws, 1))
    eps = rng.standard_normal((k, draws, n))
    g = math.sqrt(rho) * z0 + math.sqrt(1.0 - rho) * eps
    t = np.stack([t_scores(float(nu[s])).value(g[s]) for s in range(k)])
    x = (mu[:, None, None] + sigma[:, None, None] * t).reshape(k * draws, n)
    log_lik = t_report_log_density(x, mu, sigma, nu, rho)
    mass = np.zeros((k, k * draws))
    for s in range(k):
        mass[s, s * draws : (s + 1) * draws] = 1.0 / draws
    return _Points(log_lik, mass, "monte_carlo", draws=draws)


def _discrete(kind: str, p: Mapping[str, FloatArray], n: int, categories: Sequence[str]) -> _Points:
    """Every possible report of ``n`` discrete readings, by what it says about the states."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "binary":
            prob = p["p"][:, None]
            yes = np.arange(n + 1, dtype=np.float64)[None, :]
            log_yes, log_no = np.log(prob), np.log1p(-prob)
            log_lik = np.where(yes > 0, yes * log_yes, 0.0) + np.where(
                n - yes > 0, (n - yes) * log_no, 0.0
            )
            coef = np.array(
                [
                    math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1)
                    for j in range(n + 1)
                ]
            )
            mass = np.exp(log_lik + coef[None, :])
            labels: tuple[str, ...] = (
                ("yes", "no") if n == 1 else tuple(f"{j} of {n} yes" for j in range(n + 1))
            )
            order = [1, 0] if n == 1 else list(range(n + 1))
            return _Points(log_lik[:, order], mass[:, order], "exact", labels=labels)
        if kind == "categorical":
            probs = p["probs"]
            c = probs.shape[1]
            counts = [comp for comp in itertools.product(range(n + 1), repeat=c) if sum(comp) == n]
            cnt = np.array(counts, dtype=np.float64)  # (P, C)
            logp = np.log(probs)  # (K, C)
            log_lik = np.where(cnt[None, :, :] > 0, cnt[None, :, :] * logp[:, None, :], 0.0).sum(
                axis=2
            )
            coef = np.array(
                [math.lgamma(n + 1) - sum(math.lgamma(m + 1) for m in comp) for comp in counts]
            )
            mass = np.exp(log_lik + coef[None, :])
            if n == 1:
                labels = tuple(categories[comp.index(1)] for comp in counts)
            else:
                labels = tuple(
                    ", ".join(f"{m} {cat}" for m, cat in zip(comp, categories, strict=True) if m)
                    for comp in counts
                )
            return _Points(log_lik, mass, "exact", labels=labels)
        rate = n * p["rate"]
        top = float(rate.max())
        t_max = int(top + 12.0 * math.sqrt(top) + 40.0)
        while True:
            t = np.arange(t_max + 1, dtype=np.float64)
            log_lik = t[None, :] * np.log(rate)[:, None] - rate[:, None]
            mass = np.exp(log_lik - _lgamma(t + 1.0)[None, :])
            if (1.0 - mass.sum(axis=1)).max() < _COUNT_TAIL or t_max > 1_000_000:
                break
            t_max *= 2
        names = tuple(str(int(v)) for v in t) if n == 1 else None
        return _Points(log_lik, mass, "exact", quantity=t, labels=names)


# -- values ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Beliefs:
    """What is known about one variable set: now, and as the update would start from.

    ``now`` and ``joint`` (``P(s | E)``, ``P(o, s | E)`` per outcome) give the reading's
    distribution and the probabilities now; ``base`` and ``base_joint`` are the same without the
    readings the new one would replace (equal to ``now`` and ``joint`` when none is).
    """

    now: FloatArray
    joint: FloatArray  # (outcomes, K)
    base: FloatArray
    base_joint: FloatArray
    prior: FloatArray
    replaces: bool


def _posteriors(beliefs: _Beliefs, r: float, pts: _Points) -> tuple[FloatArray, FloatArray]:
    """Each outcome's probability after each point (outcomes, P), and each point's chance (P,)."""
    ll = pts.log_lik
    top = np.max(np.where(np.isfinite(ll), ll, -np.inf), axis=0)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(under="ignore"):
        lik = np.exp(ll - top[None, :])
    q = beliefs.prior @ lik
    L = r * lik + (1.0 - r) * q[None, :]
    den = beliefs.base @ L
    num = beliefs.base_joint @ L
    weights = r * beliefs.now + (1.0 - r) * beliefs.prior
    chance = weights @ pts.mass
    with np.errstate(invalid="ignore", divide="ignore"):
        post = np.where(den[None, :] > 0, num / np.where(den > 0, den, 1.0)[None, :], np.nan)
    chance = np.where(den > 0, chance, 0.0)
    post = np.clip(np.where(np.isnan(post), 0.0, post), 0.0, 1.0)
    return post, chance


def _values(
    beliefs: _Beliefs, r: float, pts: _Points, outcomes: Sequence[str]
) -> tuple[dict[str, Value], FloatArray, FloatArray]:
    post, chance = _posteriors(beliefs, r, pts)
    now = np.clip(beliefs.joint.sum(axis=1), 0.0, 1.0)
    if r == 0.0:  # a source never genuine: every reading leaves every outcome where it is
        nothing = {o: Value(0.0, 0.0, 0.0, 0.0, float(now[i])) for i, o in enumerate(outcomes)}
        return nothing, post, chance
    total = chance.sum()
    weights = chance / total if total > 0 else chance
    h0 = entropy_bits(now)
    hj = entropy_bits(post)  # (outcomes, P)
    mean_h = hj @ weights
    if beliefs.replaces:
        gain = h0 - mean_h
    else:  # h(mean) - mean h: never negative, never above the entropy of the mean
        pbar = np.clip(post @ weights, 0.0, 1.0)
        gain = np.maximum(0.0, entropy_bits(pbar) - mean_h)
    change = np.abs(post - now[:, None])
    seen = chance > 0
    masked = np.where(seen[None, :], change, -1.0)
    j = np.argmax(masked, axis=1)
    expected = change @ weights
    out: dict[str, Value] = {}
    for i, oid in enumerate(outcomes):
        se = _mc_se(hj[i], pts, beliefs, r) if pts.draws is not None else None
        out[oid] = Value(
            gain=float(gain[i]),
            share=min(1.0, max(-1.0, float(gain[i] / h0[i]))) if h0[i] > 0 else 0.0,
            expected_change=float(expected[i]),
            largest_change=float(change[i, j[i]]) if seen.any() else 0.0,
            largest_to=float(post[i, j[i]]) if seen.any() else float(now[i]),
            se=se,
        )
    return out, post, chance


def _mc_se(h: FloatArray, pts: _Points, beliefs: _Beliefs, r: float) -> float:
    """The standard error of a Monte Carlo average of ``h`` over the states' draws."""
    weights = r * beliefs.now + (1.0 - r) * beliefs.prior
    draws = pts.draws or 1
    total = 0.0
    for s, w in enumerate(weights):
        part = h[s * draws : (s + 1) * draws]
        total += w * w * float(np.var(part, ddof=1)) / draws
    return math.sqrt(total)


def _converged_values(
    beliefs: _Beliefs,
    r: float,
    make: Any,
    outcomes: Sequence[str],
) -> tuple[dict[str, Value], _Points, FloatArray, FloatArray, str]:
    """Values by a quadrature whose step is halved until two steps agree."""
    level = _LEVEL_START
    pts = make(level)
    values, post, chance = _values(beliefs, r, pts, outcomes)
    error = math.inf
    while level < _LEVEL_MAX:
        finer = make(level + 1)
        v2, post2, chance2 = _values(beliefs, r, finer, outcomes)
        error = max((abs(v2[o].gain - values[o].gain) for o in outcomes), default=0.0)
        level, pts, values, post, chance = level + 1, finer, v2, post2, chance2
        if error < _TOLERANCE:
            break
    per_state = pts.log_lik.shape[1] // max(1, len(beliefs.now))
    method = (
        f"sinh-sinh quadrature, {per_state} nodes per state; "
        f"the last halving of the step changed the gain by {error:.1e} bits"
    )
    return values, pts, post, chance, method


# -- moves: the readings the words describe --------------------------------------------------


def _quantile(kind: str, p: Mapping[str, FloatArray], weights: FloatArray, q: float) -> float:
    """The ``q`` quantile of the reading's mixture distribution (as the indicator reads it)."""
    w = weights / weights.sum()
    lo = float(np.min(p["mu"] - 200.0 * p["sigma"]))
    hi = float(np.max(p["mu"] + 200.0 * p["sigma"]))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if float(w @ _cdf(kind, p, mid)) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, abs(mid)):
            break
    return 0.5 * (lo + hi)


def _bound(post: FloatArray, beyond: NDArray[np.bool_], at: float, raises: bool) -> bool:
    """Whether every point beyond the reading moves the outcome at least as far."""
    if not beyond.any():
        return True
    if raises:
        return bool(np.all(post[beyond] >= at - 1e-9))
    return bool(np.all(post[beyond] <= at + 1e-9))


def _continuous_moves(
    kind: str,
    ind: CompiledIndicator,
    p: Mapping[str, FloatArray],
    beliefs: _Beliefs,
    r: float,
    pts: _Points,
    post: FloatArray,
    chance: FloatArray,
    outcomes: Sequence[str],
) -> dict[str, tuple[Move, ...]]:
    weights = r * beliefs.now + (1.0 - r) * beliefs.prior
    lo = _quantile(kind, p, weights, TAIL)
    hi = _quantile(kind, p, weights, 1.0 - TAIL)
    at = np.array([lo, hi])
    log_lik = _log_density(kind, p, at)
    after, _ = _posteriors(beliefs, r, _Points(log_lik, np.zeros_like(log_lik), "points"))
    now = np.clip(beliefs.joint.sum(axis=1), 0.0, 1.0)
    assert pts.quantity is not None
    x = pts.quantity
    seen = chance > 0
    out: dict[str, tuple[Move, ...]] = {}
    for i, oid in enumerate(outcomes):
        moves = []
        for j, (value, relation, beyond) in enumerate(
            ((lo, "at_most", seen & (x <= lo)), (hi, "at_least", seen & (x >= hi)))
        ):
            prob = float(after[i, j])
            shown = math.exp(value) if kind == "lognormal" else reported(ind.spec.read_as, value)
            moves.append(
                Move(
                    outcome=oid,
                    reading=f"{shown:.6g}",
                    relation=relation,
                    chance=TAIL,
                    probability=prob,
                    bound=_bound(post[i], beyond, prob, prob >= now[i]),
                    value=float(shown),
                )
            )
        out[oid] = tuple(moves)
    return out


def _count_moves(
    post: FloatArray, chance: FloatArray, now: FloatArray, outcomes: Sequence[str]
) -> dict[str, tuple[Move, ...]]:
    total = chance / chance.sum()
    upper = np.cumsum(total[::-1])[::-1]  # P(T >= k)
    lower = np.cumsum(total)  # P(T <= k)
    k_hi = int(np.max(np.nonzero(upper >= TAIL)[0]))
    k_lo = int(np.min(np.nonzero(lower >= TAIL)[0]))
    ks = np.arange(len(total))
    seen = chance > 0
    out: dict[str, tuple[Move, ...]] = {}
    for i, oid in enumerate(outcomes):
        moves = [
            Move(
                oid,
                str(k_lo),
                "at_most",
                float(lower[k_lo]),
                float(post[i, k_lo]),
                _bound(post[i], seen & (ks <= k_lo), float(post[i, k_lo]), post[i, k_lo] >= now[i]),
                value=float(k_lo),
            ),
            Move(
                oid,
                str(k_hi),
                "at_least",
                float(upper[k_hi]),
                float(post[i, k_hi]),
                _bound(post[i], seen & (ks >= k_hi), float(post[i, k_hi]), post[i, k_hi] >= now[i]),
                value=float(k_hi),
            ),
        ]
        out[oid] = tuple(moves)
    return out


def _label_moves(
    pts: _Points, post: FloatArray, chance: FloatArray, outcomes: Sequence[str]
) -> dict[str, tuple[Move, ...]]:
    assert pts.labels is not None
    total = chance / chance.sum()
    return {
        oid: tuple(
            Move(oid, label, "is", float(total[j]), float(post[i, j]), False)
            for j, label in enumerate(pts.labels)
            if total[j] > 0
        )
        for i, oid in enumerate(outcomes)
    }


# -- sources and replaced readings ---------------------------------------------------------------


def usual_source(
    tree: Tree, readings: Sequence[Reading], indicator: str, as_of: dt.date
) -> tuple[str, str]:
    """The source a reading of ``indicator`` would usually come from, and why.

    The indicator's ``source`` in the tree, if it names one; else the source of most of its
    readings in the ledger (not retracted, observed by the as-of date, from a source the tree
    defines; ties go to the more reliable source, then the name); else the tree's most reliable
    source.

    Raises
    ------
    QueryError
        If the tree defines no source.
    """
    if not tree.sources:
        raise QueryError(
            f"tree '{tree.id}' defines no sources: a reading counts only from a source the tree "
            "defines"
        )
    declared = tree.indicators[indicator].spec.source
    if declared is not None:
        return declared, "the indicator's source in the tree"
    counts = Counter(
        r.source
        for r in readings
        if r.indicator == indicator
        and not r.retracted
        and r.source in tree.sources
        and r.observed.end <= as_of
    )

    def rel(s: str) -> float:
        return tree.sources[s].mean_reliability

    if counts:
        best = min(counts, key=lambda s: (-counts[s], -rel(s), s))
        total = sum(counts.values())
        return best, f"the source of {counts[best]} of its {total} readings"
    best = min(tree.sources, key=lambda s: (-rel(s), s))
    return best, "no readings yet: the tree's most reliable source"


def _replaced(
    evidence: Evidence, ind: CompiledIndicator, step: int | None, source: str
) -> Observation | None:
    """The counted reading a new one (from ``source``, no location) would supersede, if any."""
    rule = ind.spec.combine_rule()
    if rule.rule != "latest":
        return None
    for o in evidence.observations:
        if o.indicator != ind.name or o.step != step:
            continue
        if "source" in rule.per and o.reading.source != source:
            continue
        if "location" in rule.per and o.reading.location is not None:
            continue
        return o
    return None


def _without(tree: Tree, evidence: Evidence, gone: Observation) -> Evidence:
    observations = tuple(o for o in evidence.observations if o is not gone)
    return replace(evidence, observations=observations, reports=group_reports(tree, observations))


def _broadcast(scope: Sequence[int], values: FloatArray, onto: Sequence[int]) -> FloatArray:
    """A table over ``scope`` (a subset of ``onto``) as an array over ``onto``."""
    order = sorted(range(len(scope)), key=lambda i: list(onto).index(scope[i]))
    shape = tuple(values.shape[list(scope).index(v)] if v in scope else 1 for v in onto)
    return np.asarray(np.transpose(values, order).reshape(shape), dtype=np.float64)


@dataclass
class _Context:
    """What every candidate of one call shares."""

    model: ExactModel
    query: Query
    joints: OutcomeJoints
    outcomes: list[str]
    evidence: Evidence
    steps: list[int]


def _beliefs_for(
    ctx: _Context,
    scope: tuple[int, ...],
    gone: Observation | None,
    ind_scope: Sequence[str],
    step: int | None,
) -> _Beliefs:
    joints = ctx.joints
    now = joints.joint(scope).ravel()
    joint = np.stack([joints.outcome_joint(o, scope).ravel() for o in ctx.outcomes])
    prior = ctx.query.structure.prior.joint(scope).ravel()
    if gone is None:
        return _Beliefs(now, joint, now, joint, prior, False)
    evidence = ctx.evidence
    i = next(k for k, rep in enumerate(evidence.reports) if gone in rep.observations)
    rep = evidence.reports[i]
    old_scope, old = ctx.query.report_factors[i]
    if set(old_scope) <= set(scope):
        rest = tuple(o for o in rep.observations if o is not gone)
        delta = -_broadcast(old_scope, old, scope)
        if rest:
            kept = replace(rep, observations=rest)
            new_scope, new = ctx.model.report_factor(ctx.query.structure, kept)
            delta = delta + _broadcast(new_scope, new, scope)
        delta = np.broadcast_to(delta, tuple(ctx.query.network.cards[v] for v in scope)).ravel()
        ratio = np.exp(delta - delta.max())
        base = now * ratio
        total = base.sum()
        return _Beliefs(now, joint, base / total, joint * ratio[None, :] / total, prior, True)
    reduced = _without(ctx.model.tree, evidence, gone)
    query = ctx.model.query(reduced, steps=ctx.steps)
    other = OutcomeJoints(ctx.model, query, ctx.outcomes)
    vars2 = query.network.scope_at(ind_scope, step)
    base = other.joint(vars2).ravel()
    base_joint = np.stack([other.outcome_joint(o, vars2).ravel() for o in ctx.outcomes])
    return _Beliefs(now, joint, base, base_joint, prior, True)


# -- the value of every reading --------------------------------------------------------------------


def reading_step(tree: Tree, as_of: dt.date) -> int | None:
    """The step a reading not yet taken would be observed in: the one after the as-of date's.

    None for a tree without dynamic nodes.
    """
    steps = tree.steps
    if steps is None or not tree.is_dynamic:
        return None
    return steps.index(as_of) + 1


def _indicator_values(
    ind: CompiledIndicator,
    p: Mapping[str, FloatArray],
    beliefs: _Beliefs,
    r: float,
    n: int,
    outcomes: Sequence[str],
    rng: np.random.Generator,
) -> tuple[dict[str, Value], _Points, FloatArray, FloatArray, str]:
    kind = ind.spec.kind
    rho = ind.spec.correlation()
    if kind not in CONTINUOUS_KINDS:
        pts = _discrete(kind, p, n, ind.spec.categories or ())
        values, post, chance = _values(beliefs, r, pts, outcomes)
        return values, pts, post, chance, "exact: every possible report"
    if kind == "student_t" and n > 1 and rho > 0:
        pts = _t_report(p, n, rho, rng, MC_DRAWS)
        values, post, chance = _values(beliefs, r, pts, outcomes)
        method = f"Monte Carlo, {MC_DRAWS} draws per state (the gain's standard error is given)"
        return values, pts, post, chance, method
    base = "student_t" if kind == "student_t" else "normal"
    if n == 1 or (kind == "student_t" and rho == 0):
        if n == 1:
            return _converged_values(beliefs, r, lambda lv: _continuous_one(base, p, lv), outcomes)
        pts = _t_report(p, n, rho, rng, MC_DRAWS)
        values, post, chance = _values(beliefs, r, pts, outcomes)
        return values, pts, post, chance, f"Monte Carlo, {MC_DRAWS} draws per state"
    return _converged_values(beliefs, r, lambda lv: _normal_report(p, n, rho, lv), outcomes)


def watch(
    model: ExactModel,
    readings: Sequence[Reading],
    *,
    as_of: dt.date | None = None,
    outcomes: Sequence[str] | None = None,
    source: str | None = None,
    indicators: Sequence[str] | None = None,
    readings_per_report: int = 1,
    explain: int = 2,
    report_size: int = REPORT_SIZE,
    seed: int = 0,
) -> WatchResult:
    """The value of a reading of each indicator for each outcome, given the evidence so far.

    Parameters
    ----------
    model
        The prepared model of the tree.
    readings
        The ledger's readings (those that count as of ``as_of`` are the evidence).
    as_of
        The day the evidence stands on (default: today).
    outcomes
        Only these outcomes (default: every outcome).
    source
        The source every reading would come from (default: each indicator's usual source,
        :func:`usual_source`).
    indicators
        Only these indicators (default: every indicator).
    readings_per_report
        Readings of the indicator in the one report (several cities of one survey).
    explain
        For this many indicators per outcome (the most informative), the readings that would
        move the outcome most and, for comparison, the value of a report of ``report_size``
        readings.
    seed
        The seed of the Monte Carlo draws (several Student-t readings in one report).

    Raises
    ------
    QueryError
        For an unknown outcome, source or indicator, a tree without outcomes or sources, or a
        number of readings below 1.
    EvidenceConflictError
        If the evidence has zero probability.
    """
    tree = model.tree
    if not tree.outcomes:
        raise QueryError(f"tree '{tree.id}' has no outcomes: there is nothing to watch for")
    wanted = list(outcomes) if outcomes else list(tree.outcomes)
    for oid in wanted:
        check_outcome(tree, oid)
    if source is not None and source not in tree.sources:
        known = ", ".join(tree.sources) or "none"
        raise QueryError(
            f"tree '{tree.id}' has no source '{source}'{did_you_mean(source, tree.sources)}; "
            f"its sources are {known}"
        )
    names = list(indicators) if indicators else list(tree.indicators)
    for name in names:
        if name not in tree.indicators:
            raise QueryError(
                f"tree '{tree.id}' has no indicator '{name}'{did_you_mean(name, tree.indicators)}"
            )
    if readings_per_report < 1:
        raise QueryError(f"readings per report must be at least 1, got {readings_per_report}")
    as_of = as_of or dt.date.today()
    evidence = select_evidence(tree, readings, as_of)
    t_star = reading_step(tree, as_of)
    steps = [t_star] if t_star is not None else []
    query = model.query(evidence, steps=steps)
    joints = OutcomeJoints(model, query, wanted)
    ctx = _Context(model, query, joints, wanted, evidence, steps)
    net = query.network
    tsteps = tree.steps
    now = {
        o: OutcomeNow(o, joints.probability(o), float(entropy_bits(joints.probability(o))))
        for o in wanted
    }
    rng = np.random.default_rng(seed)
    found: list[Candidate] = []
    details: dict[str, tuple[CompiledIndicator, dict[str, Any], _Beliefs, float]] = {}
    posts: dict[str, tuple[_Points, FloatArray, FloatArray]] = {}
    for name in names:
        ind = tree.indicators[name]
        step = t_star if t_star is not None and tree.varies(ind.scope) else None
        scope = net.scope_at(ind.scope, step)
        src, rule = (source, "as asked") if source else usual_source(tree, readings, name, as_of)
        r = tree.sources[src].mean_reliability
        gone = _replaced(evidence, ind, step, src)
        beliefs = _beliefs_for(ctx, scope, gone, ind.scope, step)
        index, _ = net.placement([(n, step) for n in ind.scope])
        p = _component_params(ind, index)
        values, pts, post, chance, method = _indicator_values(
            ind, p, beliefs, r, readings_per_report, wanted, rng
        )
        details[name] = (ind, p, beliefs, r)
        posts[name] = (pts, post, chance)
        found.append(
            Candidate(
                kind="indicator",
                name=name,
                step=step,
                step_label=tsteps.label(step) if step is not None and tsteps else None,
                source=src,
                reliability=r,
                source_rule=rule,
                readings=readings_per_report,
                cost=ind.spec.cost,
                values=values,
                method=method,
                replaces=gone.ids if gone is not None else (),
                unit=ind.spec.unit,
            )
        )
    # words and a larger report for the most informative indicators
    chosen: set[str] = set()
    for oid in wanted:
        ranked = sorted(found, key=lambda c: -c.values[oid].gain)
        chosen.update(c.name for c in ranked[:explain] if c.values[oid].gain > 0)
    for k, cand in enumerate(found):
        if cand.name not in chosen:
            continue
        ind, p, beliefs, r = details[cand.name]
        pts, post, chance = posts[cand.name]
        kind = ind.spec.kind
        moves: dict[str, tuple[Move, ...]] = {}
        if readings_per_report == 1:
            if kind in CONTINUOUS_KINDS:
                moves = _continuous_moves(kind, ind, p, beliefs, r, pts, post, chance, wanted)
            elif kind == "count":
                now_p = np.clip(beliefs.joint.sum(axis=1), 0.0, 1.0)
                moves = _count_moves(post, chance, now_p, wanted)
            else:
                moves = _label_moves(pts, post, chance, wanted)
        larger: dict[str, Value] = {}
        effective = None
        if report_size > readings_per_report:
            larger, *_ = _indicator_values(ind, p, beliefs, r, report_size, wanted, rng)
            if kind in CONTINUOUS_KINDS:
                rho = ind.spec.correlation()
                effective = report_size / (1.0 + (report_size - 1) * rho)
        found[k] = replace(
            cand,
            moves=moves,
            larger=larger,
            larger_size=report_size if larger else None,
            effective=effective,
        )
    # nodes, as ceilings: what knowing the state exactly would be worth
    for name, node in tree.nodes.items():
        if node.kind == "calendar":
            continue
        step = t_star if node.kind == "dynamic" else None
        var = (net.var_of[net.at(name, step)],)
        beliefs = _beliefs_for(ctx, var, None, (name,), step)
        eye = np.eye(node.card)
        with np.errstate(divide="ignore"):
            pts = _Points(np.log(eye), eye, "exact", labels=node.states)
        values, post, chance = _values(beliefs, 1.0, pts, wanted)
        found.append(
            Candidate(
                kind="node",
                name=name,
                step=step,
                step_label=tsteps.label(step) if step is not None and tsteps else None,
                source=None,
                reliability=1.0,
                source_rule="its state known exactly",
                readings=1,
                cost=None,
                values=values,
                method="exact",
                moves=_label_moves(pts, post, chance, wanted),
            )
        )
    notes: list[str] = []
    if t_star is not None and tsteps is not None and t_star >= tsteps.n:
        notes.append(
            f"the reading would be observed in {tsteps.label(t_star)}, after the horizon's end: "
            "it informs the horizon's last steps through the chain"
        )
    return WatchResult(
        tree_id=tree.id,
        as_of=as_of,
        step=t_star,
        step_label=tsteps.label(t_star) if t_star is not None and tsteps else None,
        outcomes=now,
        candidates=tuple(found),
        n_reports=len(evidence.reports),
        notes=tuple(notes),
    )
