"""Pooling several forecasters' trees into one probability per shared outcome.

Four methods, each a function of the trees' probabilities ``p_i`` of an outcome and weights
``w_i`` that add up to one:

- ``linear``: the weighted average, ``sum w_i p_i``;
- ``log``: the weighted average of the log-odds, ``logit p = sum w_i logit p_i`` (the
  normalised weighted geometric mean of the probabilities of yes and of no): a pool that, unlike
  the linear one, keeps a forecast as confident as forecasters who agree;
- ``extremized``: the log pool pushed away from 50%, ``logit p = a sum w_i logit p_i``. The
  factor ``a`` is :data:`DEFAULT_EXTREMIZE` unless given, and is fitted on the questions the
  ledger has resolved when there are enough of them (:func:`fit_extremizing`). Extremizing
  helps when forecasters hold partly different information; trees that read the same ledger
  share most of theirs, which is why the default is moderate;
- ``evidence``: the weighted average with each tree's posterior weight given the readings
  every tree counts (:mod:`scenariocast.analysis.compare`): Bayesian model averaging, in which
  the trees that predicted the evidence better count for more.

A probability of exactly 0 or 1 has an infinite log-odds: in the log and extremized pools one
tree saying 0 (or 1) decides the pool, and two trees saying 0 and 1 leave it undefined (an
error naming them).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scenariocast.engines.result import logit
from scenariocast.errors import QueryError

if TYPE_CHECKING:
    from scenariocast.analysis.compare import Comparison
    from scenariocast.engines.exact import ExactModel
    from scenariocast.evidence.readings import Reading
    from scenariocast.ledger.records import OutcomeResolution
    from scenariocast.spec.tree import Tree

METHODS = ("linear", "log", "extremized", "evidence")
#: The extremizing factor used when none is given and too few questions are resolved to fit one.
DEFAULT_EXTREMIZE = 1.5
#: Fitting the factor needs this many resolved questions, with at least MIN_EACH of each answer.
MIN_FIT_QUESTIONS = 20
MIN_EACH = 5
#: The fitted factor is kept within these bounds (below 1 pulls the pool towards 50%).
EXTREMIZE_BOUNDS = (0.25, 4.0)


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def check_method(method: str) -> str:
    """``method`` if it is one of :data:`METHODS`; a :class:`QueryError` listing them if not."""
    if method not in METHODS:
        raise QueryError(f"unknown pooling method '{method}'; methods: {', '.join(METHODS)}")
    return method


def log_odds_average(
    probabilities: Sequence[float], weights: Sequence[float], names: Sequence[str] | None = None
) -> float:
    """``sum w_i logit p_i`` over the trees with a positive weight (may be infinite).

    Raises
    ------
    QueryError
        When one tree says 0 and another 1: the average is undefined.
    """
    terms = [(w, logit(p)) for p, w in zip(probabilities, weights, strict=True) if w > 0]
    infinite = {math.copysign(1.0, z) for _, z in terms if math.isinf(z)}
    if len(infinite) > 1:
        labels = list(names) if names is not None else [str(i) for i in range(len(weights))]
        zero = [n for n, p in zip(labels, probabilities, strict=True) if p <= 0.0]
        one = [n for n, p in zip(labels, probabilities, strict=True) if p >= 1.0]
        raise QueryError(
            f"'{zero[0]}' says 0% and '{one[0]}' says 100%: their log-odds cannot be averaged "
            "(use the linear or evidence pool)"
        )
    if infinite:
        return math.inf if infinite == {1.0} else -math.inf
    return math.fsum(w * z for w, z in terms)


def pool_probability(
    method: str,
    probabilities: Sequence[float],
    weights: Sequence[float],
    *,
    extremize: float = DEFAULT_EXTREMIZE,
    names: Sequence[str] | None = None,
) -> float:
    """The pooled probability of one outcome (``weights`` add up to one).

    For ``evidence``, ``weights`` are the trees' posterior weights.
    """
    check_method(method)
    if method in ("linear", "evidence"):
        return min(
            1.0, max(0.0, math.fsum(w * p for p, w in zip(probabilities, weights, strict=True)))
        )
    z = log_odds_average(probabilities, weights, names)
    a = extremize if method == "extremized" else 1.0
    if math.isinf(z):
        return 1.0 if z > 0 else 0.0
    return _sigmoid(a * z)


def fit_extremizing(z: Sequence[float], happened: Sequence[bool]) -> float | None:
    """The extremizing factor that best predicts what happened, or None with too few questions.

    ``z`` is each resolved question's pooled log-odds (the weighted average of the trees'
    log-odds), ``happened`` its answer. The factor ``a`` maximises the likelihood of the answers
    under ``P(yes) = sigmoid(a z)`` (a logistic regression through the origin on ``z``); that
    likelihood is concave in ``a``, and its derivative ``sum z (y - sigmoid(a z))`` falls as
    ``a`` grows, so bisection on the derivative finds the maximum, within
    :data:`EXTREMIZE_BOUNDS`. Questions with an infinite ``z`` (a tree said 0 or 1) say nothing
    about ``a`` and are left out. Needs :data:`MIN_FIT_QUESTIONS` questions with at least
    :data:`MIN_EACH` of each answer.
    """
    pairs = [(x, y) for x, y in zip(z, happened, strict=True) if math.isfinite(x)]
    yes = sum(1 for _, y in pairs if y)
    if len(pairs) < MIN_FIT_QUESTIONS or yes < MIN_EACH or len(pairs) - yes < MIN_EACH:
        return None

    def slope(a: float) -> float:
        return math.fsum(x * ((1.0 if y else 0.0) - _sigmoid(a * x)) for x, y in pairs)

    lo, hi = EXTREMIZE_BOUNDS
    if slope(lo) <= 0:
        return lo
    if slope(hi) >= 0:
        return hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if slope(mid) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Extremizing:
    """The extremizing factor used, and where it came from.

    ``how`` is ``given`` (``--extremize``), ``fitted`` (on ``n_questions`` resolved questions)
    or ``default`` (too few resolved questions: ``n_questions`` of the
    :data:`MIN_FIT_QUESTIONS` needed).
    """

    value: float
    how: str
    n_questions: int

    def describe(self) -> str:
        """One sentence for the terminal and the page."""
        if self.how == "given":
            return f"extremizing factor {self.value:.3g}, as given"
        if self.how == "fitted":
            return (
                f"extremizing factor {self.value:.3g}, fitted on {self.n_questions} resolved "
                "questions"
            )
        return (
            f"extremizing factor {self.value:.3g} (the default: {self.n_questions} resolved "
            f"questions, {MIN_FIT_QUESTIONS} with at least {MIN_EACH} of each answer are needed "
            "to fit one)"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {"value": self.value, "how": self.how, "n_questions": self.n_questions}


def choose_extremizing(
    given: float | None, z: Sequence[float], happened: Sequence[bool]
) -> Extremizing:
    """The factor given, else one fitted on ``z`` and ``happened``, else the default.

    Raises
    ------
    QueryError
        For a given factor that is not a positive number.
    """
    if given is not None:
        if not math.isfinite(given) or given <= 0:
            raise QueryError(f"--extremize must be a number > 0, got {given}")
        return Extremizing(float(given), "given", len(z))
    fitted = fit_extremizing(z, happened)
    if fitted is None:
        return Extremizing(DEFAULT_EXTREMIZE, "default", len(z))
    return Extremizing(fitted, "fitted", len(z))


@dataclass(frozen=True)
class PooledOutcome:
    """One shared outcome: each tree's probability and the pool's."""

    id: str
    question: str
    probabilities: Mapping[str, float]
    pooled: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "question": self.question,
            "trees": dict(self.probabilities),
            "pooled": self.pooled,
        }


@dataclass(frozen=True)
class Pool:
    """The pooled forecast of every outcome the trees share."""

    method: str
    as_of: dt.date
    weights: Mapping[str, float]  # tree id -> the weight it had in the pool
    outcomes: tuple[PooledOutcome, ...]
    extremizing: Extremizing | None = None  # for the extremized pool
    log_evidence: Mapping[str, float] | None = None  # for the evidence pool
    n_common: int | None = None  # for the evidence pool: readings every tree counts

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the ``pool --json`` output)."""
        out: dict[str, Any] = {
            "method": self.method,
            "as_of": self.as_of.isoformat(),
            "weights": dict(self.weights),
            "outcomes": {o.id: o.to_dict() for o in self.outcomes},
        }
        if self.extremizing is not None:
            out["extremizing"] = self.extremizing.to_dict()
        if self.log_evidence is not None:
            out["log_marginal_likelihood"] = dict(self.log_evidence)
            out["common_readings"] = self.n_common
        return out


def pool(
    trees: Sequence[Tree],
    readings: Sequence[Reading],
    *,
    method: str = "linear",
    weights: Sequence[float] | Mapping[str, float] | None = None,
    as_of: dt.date | None = None,
    resolutions: Sequence[OutcomeResolution] = (),
    extremize: float | None = None,
    models: Mapping[str, ExactModel] | None = None,
    comparison: Comparison | None = None,
) -> Pool:
    """Pool the trees' forecasts of every outcome they share, as of ``as_of`` (default: today).

    ``weights`` are the trees' weights (equal by default; for ``evidence``, their prior
    weights). ``resolutions`` are used by the extremized pool to fit its factor (on the
    questions they resolve that every tree asks).

    Raises
    ------
    ComparisonError
        For fewer than two trees, one id twice, or no outcome in common.
    QueryError
        For an unknown method, bad weights or a bad extremizing factor, or log-odds that
        cannot be averaged.
    """
    from scenariocast.analysis.compare import check_trees, compare, prior_weights
    from scenariocast.engines.exact import ExactModel

    check_method(method)
    shared = check_trees(trees)
    w = prior_weights(trees, weights)
    day = as_of or dt.date.today()
    prepared = {t.id: (models or {}).get(t.id) or ExactModel(t) for t in trees}
    names = [t.id for t in trees]
    log_ml: dict[str, float] | None = None
    n_common: int | None = None
    if method == "evidence":
        cmp = comparison or compare(trees, readings, as_of=day, weights=w, models=prepared)
        w = {t: f.weight for t, f in cmp.fits.items()}
        log_ml = {t: f.log_evidence for t, f in cmp.fits.items()}
        n_common = cmp.n_common
        probs = {o.id: dict(o.probability) for o in cmp.outcomes}
    else:
        results = {t.id: prepared[t.id].forecast(readings, as_of=day, top=0) for t in trees}
        probs = {
            oid: {t.id: results[t.id].outcomes[oid].probability for t in trees} for oid in shared
        }
    ext: Extremizing | None = None
    if method == "extremized":
        from scenariocast.analysis.score import extremizing_data

        z, y = extremizing_data(trees, readings, resolutions, w, models=prepared)
        ext = choose_extremizing(extremize, z, y)
    ws = [w[t] for t in names]
    outcomes = tuple(
        PooledOutcome(
            id=oid,
            question=trees[0].outcomes[oid].question,
            probabilities=probs[oid],
            pooled=pool_probability(
                method,
                [probs[oid][t] for t in names],
                ws,
                extremize=ext.value if ext is not None else DEFAULT_EXTREMIZE,
                names=names,
            ),
        )
        for oid in shared
    )
    return Pool(method, day, w, outcomes, ext, log_ml, n_common)
