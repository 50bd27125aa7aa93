"""Power-scaling sensitivity of the PyMC engine's posterior: the prior's share, the readings'.

ArviZ's ``psense_summary`` (Kallioinen et al., 2023) raises the prior, then the likelihood, to
a power a little above and below 1 and measures, by Pareto-smoothed importance sampling on the
draws already made, how far each posterior quantity moves. The likelihood here is the
``report_in_order`` group of the engine's DataTree (each report given those before it, so the
reports' log-likelihoods add up to the log evidence); the prior is its ``log_prior`` group.
Imported only with ``--engine pymc`` (ArviZ is heavy).

The diagnosis in words:

- both above the threshold: **prior-data conflict**: the tree's numbers and the readings pull
  the quantity in different directions; check the numbers behind it against the readings;
- only the prior: **the prior decides it**: the readings say little about it, so it is the
  forecaster's judgement (fine for a number no reading bears on; worth knowing for an outcome);
- otherwise: the readings inform it and the prior does not dominate.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from typing import Any

#: ArviZ's default threshold of the sensitivity diagnostic.
THRESHOLD = 0.05

_WORDS = {
    "conflict": "prior-data conflict: the tree's numbers and the readings pull it apart",
    "prior": "the prior decides it: the readings say little about it",
    "ok": "informed by the readings, the prior not dominating",
}


@dataclass(frozen=True)
class Sensitive:
    """One posterior quantity's sensitivity to the prior and to the likelihood."""

    name: str
    prior: float
    likelihood: float
    diagnosis: str  # conflict, prior or ok

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "quantity": self.name,
            "prior_sensitivity": self.prior,
            "likelihood_sensitivity": self.likelihood,
            "diagnosis": self.diagnosis,
            "in_words": _WORDS[self.diagnosis],
        }


@dataclass(frozen=True)
class PowerScaling:
    """The power-scaling sensitivity of every quantity of the PyMC posterior."""

    rows: tuple[Sensitive, ...]
    threshold: float = THRESHOLD

    def outcomes(self) -> list[Sensitive]:
        """The outcomes' probabilities."""
        return [r for r in self.rows if r.name.startswith("outcome_probability")]

    def lines(self) -> list[str]:
        """The diagnosis in words, for the terminal and the report."""
        out = [
            "Power-scaling sensitivity (PyMC engine; ArviZ's psense on the prior and on the "
            f"reports' likelihood, threshold {self.threshold}):"
        ]
        for r in self.outcomes():
            name = r.name.removeprefix("outcome_probability[").rstrip("]")
            out.append(
                f"  {name}: prior {r.prior:.3f}, likelihood {r.likelihood:.3f}: "
                f"{_WORDS[r.diagnosis]}."
            )
        tables = [r for r in self.rows if r.name.startswith("table:")]
        if tables:
            conflict = sorted({_owner(r.name) for r in tables if r.diagnosis == "conflict"})
            prior = sorted({_owner(r.name) for r in tables if r.diagnosis == "prior"})
            ok = sorted({_owner(r.name) for r in tables if r.diagnosis == "ok"})
            if conflict:
                out.append(
                    "  Tables where the readings pull against the tree's numbers: "
                    + ", ".join(conflict)
                    + ". Look at these first."
                )
            if prior:
                out.append(
                    "  Tables the readings say little about (the forecast there is your "
                    "judgement): " + ", ".join(prior) + "."
                )
            if ok:
                out.append("  Tables the readings inform: " + ", ".join(ok) + ".")
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {"threshold": self.threshold, "quantities": [r.to_dict() for r in self.rows]}


def _owner(name: str) -> str:
    return name.removeprefix("table:").split("[", 1)[0]


def _diagnosis(prior: float, likelihood: float, threshold: float) -> str:
    if prior >= threshold and likelihood >= threshold:
        return "conflict"
    if prior >= threshold:
        return "prior"
    return "ok"


def power_scaling(datatree: Any, *, threshold: float = THRESHOLD) -> PowerScaling:
    """Power-scaling sensitivity of a PyMC run's DataTree (``PosteriorRun.datatree``).

    Raises
    ------
    ValueError
        If the DataTree has no ``log_likelihood`` group (a run with very many reports leaves it
        out, see the PyMC engine).
    """
    import arviz as az

    if "log_likelihood" not in datatree.children:
        raise ValueError("the posterior has no log-likelihood group to power-scale")
    with contextlib.redirect_stdout(io.StringIO()):  # ArviZ prints a pointer to its docs
        frame = az.psense_summary(
            datatree, likelihood_var_names=["report_in_order"], threshold=threshold
        )
    rows = []
    for name, rec in frame.iterrows():
        prior, lik = float(rec["prior"]), float(rec["likelihood"])
        if not (math.isfinite(prior) and math.isfinite(lik)):
            continue
        rows.append(Sensitive(str(name), prior, lik, _diagnosis(prior, lik, threshold)))
    return PowerScaling(tuple(rows), threshold)
