"""Each reading's contribution to each outcome, in log-odds, in the order observed.

The readings are added one at a time in the order they were observed; a reading's contribution
to an outcome is the change in the outcome's log-odds when it is added. The contributions
therefore add up exactly to the change from prior to posterior (a telescoping sum), and a
reading observed later is judged in the light of those before it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scenariocast.engines.exact import (
    ExactModel,
    conflict_error,
    merge_factors,
    outcome_probability,
)
from scenariocast.engines.result import logit
from scenariocast.errors import EvidenceConflictError, QueryError, did_you_mean
from scenariocast.evidence.readings import Reading
from scenariocast.evidence.select import Evidence, Observation, select_evidence
from scenariocast.spec.tree import Tree

if TYPE_CHECKING:
    import pandas as pd


def _delta(after: float, before: float) -> float:
    a, b = logit(after), logit(before)
    if a == b:  # covers the same infinity on both sides
        return 0.0
    return a - b


@dataclass(frozen=True)
class Contribution:
    """What one observation did to each outcome."""

    observation: Observation
    log_odds: Mapping[str, float]  # outcome id -> change in log-odds
    probability_after: Mapping[str, float]  # outcome id -> probability once this is added

    @property
    def reading(self) -> Reading:
        """The reading that counts for this observation."""
        return self.observation.reading


@dataclass(frozen=True)
class Explanation:
    """The contributions of every observation to every outcome of a tree."""

    tree_id: str
    as_of: dt.date
    given: Mapping[str, str]
    prior: Mapping[str, float]
    posterior: Mapping[str, float]
    contributions: tuple[Contribution, ...]
    evidence: Evidence

    def total(self, outcome: str) -> float:
        """Change in log-odds from prior to posterior (the sum of the contributions)."""
        return _delta(self.posterior[outcome], self.prior[outcome])

    def strongest(self, outcome: str, n: int = 5) -> list[Contribution]:
        """The ``n`` contributions to ``outcome`` largest in size, largest first."""
        ranked = sorted(self.contributions, key=lambda c: -abs(c.log_odds[outcome]))
        return [c for c in ranked[:n] if c.log_odds[outcome] != 0.0]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the ``explain --json`` output)."""
        return {
            "tree": self.tree_id,
            "as_of": self.as_of.isoformat(),
            "given": dict(self.given),
            "outcomes": {
                o: {
                    "prior": self.prior[o],
                    "probability": self.posterior[o],
                    "log_odds_change": _finite(self.total(o)),
                }
                for o in self.prior
            },
            "contributions": [
                {
                    "reading": c.reading.id,
                    "counted_with": list(c.observation.folded),
                    "indicator": c.reading.indicator,
                    "value": c.reading.value,
                    "observed": str(c.reading.observed),
                    "location": c.reading.location,
                    "source": c.reading.source,
                    "source_url": c.reading.source_url,
                    "log_odds": {o: _finite(v) for o, v in c.log_odds.items()},
                }
                for c in self.contributions
            ],
            "not_counted": [
                {"reading": e.reading.id, "indicator": e.reading.indicator, "reason": e.reason}
                for e in self.evidence.excluded
            ],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per observation, one column per outcome (log-odds contributions)."""
        import pandas as pd

        rows = [
            {
                "reading": c.reading.id,
                "indicator": c.reading.indicator,
                "value": c.reading.value,
                "observed": c.reading.observed.end,
                "location": c.reading.location,
                "source": c.reading.source,
                **{f"{o}": v for o, v in c.log_odds.items()},
            }
            for c in self.contributions
        ]
        return pd.DataFrame(rows)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def explain(
    tree: Tree,
    readings: Sequence[Reading],
    *,
    given: Mapping[str, str] | None = None,
    as_of: dt.date | None = None,
    outcomes: Sequence[str] | None = None,
    model: ExactModel | None = None,
) -> Explanation:
    """Contributions of each observation to each outcome (all outcomes unless named)."""
    model = model or ExactModel(tree)
    given = dict(given or {})
    as_of = as_of or dt.date.today()
    ids = list(outcomes) if outcomes else list(tree.outcomes)
    for o in ids:
        if o not in tree.outcomes:
            raise QueryError(
                f"tree '{tree.id}' has no outcome '{o}'{did_you_mean(o, tree.outcomes)}"
            )
    evidence = select_evidence(tree, readings, as_of)
    obs_factors = model.observation_factors(evidence.observations)
    base = [*model.cpt_factors, *model.given_factors(given)]

    def probs(k: int) -> dict[str, float]:
        post = model.posterior([*base, *merge_factors(obs_factors[:k])])
        if not math.isfinite(post.log_z):
            if k == 0:
                raise EvidenceConflictError(
                    f"the assumptions {given} have zero probability in tree '{tree.id}'"
                )
            raise conflict_error(tree, evidence, obs_factors, given)
        return {
            o: outcome_probability(post.nodes, tree.outcomes[o].node, tree.outcomes[o].states)
            for o in ids
        }

    prior = probs(0)
    before = prior
    contributions: list[Contribution] = []
    for k, obs in enumerate(evidence.observations, start=1):
        after = probs(k)
        contributions.append(
            Contribution(
                observation=obs,
                log_odds={o: _delta(after[o], before[o]) for o in ids},
                probability_after=after,
            )
        )
        before = after
    return Explanation(
        tree_id=tree.id,
        as_of=as_of,
        given=given,
        prior=prior,
        posterior=before,
        contributions=tuple(contributions),
        evidence=evidence,
    )
