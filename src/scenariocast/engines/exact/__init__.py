"""The exact engine: junction-tree inference on the tree unrolled over its horizon, NumPy only."""

from scenariocast.engines.exact.model import (
    ExactModel,
    Posterior,
    Query,
    conflict_error,
    forecast_exact,
    merge_factors,
    outcome_probability,
)

__all__ = [
    "ExactModel",
    "Posterior",
    "Query",
    "conflict_error",
    "forecast_exact",
    "merge_factors",
    "outcome_probability",
]
