"""The exact engine: Bayes' rule on the whole tree, by junction tree, NumPy only.

What a reading means (docs/evidence.md): a reading from a source of reliability ``r`` is genuine
with probability ``r`` and otherwise carries no information, so its likelihood is
``r * p(x | states) + (1 - r) * q(x)`` where ``q`` is the indicator's prior predictive (under the
tree's prior, before assumptions and evidence). Every product is a sum of logs.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from scenariocast.engines.junction import Calibrated, Factor, FloatArray, JunctionTree
from scenariocast.engines.result import ForecastResult, OutcomeForecast, Scenario
from scenariocast.errors import EvidenceConflictError
from scenariocast.evidence.likelihood import log_likelihood, logsumexp
from scenariocast.evidence.readings import Reading
from scenariocast.evidence.select import Evidence, Observation, select_evidence
from scenariocast.spec.tree import Tree

TOP_SCENARIOS = 5


@dataclass(frozen=True)
class Posterior:
    """Node marginals and log normalising constant of one calibration."""

    calibrated: Calibrated
    nodes: dict[str, dict[str, float]]

    @property
    def log_z(self) -> float:
        """Log of the total (unnormalised) probability."""
        return self.calibrated.log_z


class ExactModel:
    """A tree prepared for exact inference; reuse it for many forecasts of the same tree."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.names = list(tree.nodes)
        self.var = {n: i for i, n in enumerate(self.names)}
        cards = [tree.nodes[n].card for n in self.names]
        self.cpt_factors: list[Factor] = []
        scopes: list[tuple[int, ...]] = []
        for n in self.names:
            node = tree.nodes[n]
            scope = (*(self.var[p] for p in node.parents), self.var[n])
            with np.errstate(divide="ignore"):
                self.cpt_factors.append((scope, np.log(node.cpt)))
            scopes.append(scope)
        self.indicator_scope = {
            name: tuple(self.var[n] for n in ind.scope) for name, ind in tree.indicators.items()
        }
        scopes.extend(self.indicator_scope.values())
        self.jt = JunctionTree(cards, scopes)

    # -- building blocks ---------------------------------------------------------------------

    @cached_property
    def prior(self) -> Posterior:
        """The tree's prior, with no assumption and no evidence."""
        return self.posterior(self.cpt_factors)

    def posterior(self, factors: Sequence[Factor]) -> Posterior:
        """Calibrate on ``factors`` and read off every node's marginal."""
        cal = self.jt.calibrate(factors)
        nodes: dict[str, dict[str, float]] = {}
        if np.isfinite(cal.log_z):
            for n in self.names:
                m = cal.marginal(self.var[n])
                nodes[n] = {s: float(p) for s, p in zip(self.tree.nodes[n].states, m, strict=True)}
        return Posterior(cal, nodes)

    def given_factors(self, given: Mapping[str, str]) -> list[Factor]:
        """Unit factors that fix each assumed node to its state."""
        out: list[Factor] = []
        for node, state in given.items():
            idx = self.tree.state_index(node, state)
            values = np.full(self.tree.nodes[node].card, -np.inf)
            values[idx] = 0.0
            out.append(((self.var[node],), values))
        return out

    def observation_factors(self, observations: Sequence[Observation]) -> list[Factor]:
        """One log-likelihood factor per observation, over its indicator's nodes."""
        by_ind: dict[str, list[int]] = defaultdict(list)
        for k, o in enumerate(observations):
            by_ind[o.indicator].append(k)
        out: list[Factor | None] = [None] * len(observations)
        for name, idx in by_ind.items():
            ind = self.tree.indicators[name]
            scope = self.indicator_scope[name]
            x = np.array([observations[k].value for k in idx])
            r = np.array([observations[k].reliability for k in idx])
            logp = log_likelihood(ind, x)  # (n, *cards)
            with np.errstate(divide="ignore"):
                log_prior = np.log(self.prior.calibrated.joint(scope))
                axes = tuple(range(1, logp.ndim))
                log_q = logsumexp(logp + log_prior[None, ...], axis=axes)  # (n,)
                extra = (slice(None),) + (None,) * len(scope)
                lik = np.logaddexp(
                    np.log(r)[extra] + logp, (np.log1p(-r) + log_q)[extra] + np.zeros_like(logp)
                )
            for j, k in enumerate(idx):
                out[k] = (scope, lik[j])
        return [f for f in out if f is not None]

    # -- the forecast ------------------------------------------------------------------------

    def forecast(
        self,
        readings: Sequence[Reading],
        *,
        given: Mapping[str, str] | None = None,
        as_of: dt.date | None = None,
        readings_hash: str = "",
        top: int = TOP_SCENARIOS,
    ) -> ForecastResult:
        """Posterior of every node and outcome given the readings and assumptions."""
        given = dict(given or {})
        as_of = as_of or dt.date.today()
        evidence = select_evidence(self.tree, readings, as_of)
        obs_factors = self.observation_factors(evidence.observations)
        base = [*self.cpt_factors, *self.given_factors(given)]
        prior = self.posterior(base) if given else self.prior
        if not math.isfinite(prior.log_z):
            shown = ", ".join(f"{k}={v}" for k, v in given.items())
            raise EvidenceConflictError(
                f"the assumptions {shown} have zero probability in tree '{self.tree.id}'"
            )
        factors = [*base, *merge_factors(obs_factors)]
        post = self.posterior(factors)
        if not math.isfinite(post.log_z):
            raise conflict_error(self.tree, evidence, obs_factors, given)
        scored = self.jt.top_k(factors, top)
        scenarios = tuple(
            Scenario(
                states={
                    n: self.tree.nodes[n].states[v] for n, v in zip(self.names, values, strict=True)
                },
                probability=float(math.exp(score - post.log_z)),
            )
            for values, score in scored
        )
        outcomes = {
            oid: OutcomeForecast(
                id=oid,
                question=o.question,
                probability=outcome_probability(post.nodes, o.node, o.states),
                prior=outcome_probability(prior.nodes, o.node, o.states),
                resolve_by=o.resolve_by,
            )
            for oid, o in self.tree.outcomes.items()
        }
        return ForecastResult(
            tree_id=self.tree.id,
            tree_hash=self.tree.file_hash,
            engine="exact",
            as_of=as_of,
            given=given,
            evidence=evidence,
            log_evidence=post.log_z - prior.log_z,
            outcomes=outcomes,
            nodes=post.nodes,
            prior_nodes=prior.nodes,
            top_scenarios=scenarios,
            readings_hash=readings_hash,
        )


def outcome_probability(
    nodes: Mapping[str, Mapping[str, float]], node: str, states: Sequence[str]
) -> float:
    """Probability that ``node`` is in one of ``states``."""
    return min(1.0, math.fsum(nodes[node][s] for s in states))


def merge_factors(factors: Sequence[Factor]) -> list[Factor]:
    """Add factors that share a scope (one clique update per indicator instead of per reading)."""
    merged: dict[tuple[int, ...], FloatArray] = {}
    for scope, values in factors:
        merged[scope] = merged[scope] + values if scope in merged else values
    return list(merged.items())


def _describe(r: Reading) -> str:
    where = f", {r.location}" if r.location else ""
    return f"#{r.id} ({r.indicator}={r.value}, {r.observed}{where}, {r.source})"


def conflict_error(
    tree: Tree, evidence: Evidence, obs_factors: Sequence[Factor], given: Mapping[str, str]
) -> EvidenceConflictError:
    """An error naming the readings that rule scenarios out entirely."""
    culprits = [
        o.reading
        for o, (_, values) in zip(evidence.observations, obs_factors, strict=True)
        if np.isneginf(values).any()
    ]
    alone = [
        o.reading
        for o, (_, values) in zip(evidence.observations, obs_factors, strict=True)
        if np.isneginf(values).all()
    ]
    assumed = (
        " under the assumptions " + ", ".join(f"{k}={v}" for k, v in given.items()) if given else ""
    )
    if alone:
        return EvidenceConflictError(
            f"reading {_describe(alone[0])} has zero probability under every scenario of tree "
            f"'{tree.id}'; retract it or give its source a reliability below 1"
        )
    shown = ", ".join(_describe(r) for r in culprits[:6])
    return EvidenceConflictError(
        f"the evidence has zero probability under every scenario of tree '{tree.id}'{assumed}: "
        f"readings {shown} cannot all hold; retract one or give a source a reliability below 1"
    )


def forecast_exact(
    tree: Tree,
    readings: Sequence[Reading],
    *,
    given: Mapping[str, str] | None = None,
    as_of: dt.date | None = None,
    readings_hash: str = "",
) -> ForecastResult:
    """Exact posterior of ``tree`` given ``readings`` (see :class:`ExactModel`)."""
    return ExactModel(tree).forecast(
        readings, given=given, as_of=as_of, readings_hash=readings_hash
    )
