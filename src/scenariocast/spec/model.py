"""The scenario file format as pydantic models.

These models check the shape of each field (types, ranges, unknown keys). Checks that need the
whole tree (rows summing to one, parent combinations, cycles, names that refer to other parts
of the file) live in :func:`scenariocast.spec.load.check_tree`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$", max_length=80)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]

INDICATOR_KINDS = ("binary", "categorical", "count", "normal", "lognormal", "student_t")
#: Parameters each indicator kind takes in ``then`` (categorical takes its categories instead).
KIND_PARAMS: dict[str, tuple[str, ...]] = {
    "binary": ("p",),
    "count": ("rate",),
    "normal": ("mu", "sigma"),
    "lognormal": ("mu", "sigma"),
    "student_t": ("mu", "sigma", "nu"),
}
CONTINUOUS_KINDS = ("normal", "lognormal", "student_t")


def _table_form(value: Any) -> str:
    return "rows" if isinstance(value, list) else "mapping"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Source(_Strict):
    """A named source of readings and how far its reports are trusted."""

    reliability: Probability = Field(
        description="Probability that a reading from this source is genuine (1 = full weight, "
        "0 = ignored). A reading that is not genuine carries no information."
    )
    description: str = ""
    url: str | None = None


class CptRow(_Strict):
    """One row of a conditional probability table: the distribution of a node given parents."""

    when: dict[Name, Name] = Field(description="A state for every parent of the node.")
    then: dict[Name, Probability] = Field(description="A probability for every state of the node.")
    rationale: str = ""


class Node(_Strict):
    """A scenario variable with named states."""

    description: str = ""
    states: list[Name] = Field(min_length=2, description="The node's states, at least two.")
    parents: list[Name] = Field(default_factory=list)
    probabilities: Annotated[
        Annotated[dict[Name, Probability], Tag("mapping")] | Annotated[list[CptRow], Tag("rows")],
        Discriminator(_table_form),
    ] = Field(
        description="For a node without parents: state -> probability. For a node with parents: "
        "a list of rows, each `when` (a state for every parent) and `then` (state -> probability)."
    )
    strength: float | None = Field(
        default=None,
        gt=0,
        description="How firmly these numbers are held, as a Dirichlet concentration (the sum of "
        "pseudo-counts behind each row); used by the PyMC engine. Default: the tree's strength.",
    )
    rationale: str = ""


class Outcome(_Strict):
    """A resolvable question a forecaster is scored on."""

    question: str = Field(min_length=1)
    node: Name
    states: list[Name] = Field(
        min_length=1, description="The node state, or set of states, that resolves this as yes."
    )
    resolve_by: dt.date
    resolution: str = Field(
        min_length=1, description="Criteria a third party can apply to resolve the question."
    )

    @field_validator("states", mode="before")
    @classmethod
    def _one_state(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class ReadAs(_Strict):
    """How a continuous reading is turned into the quantity the likelihood describes."""

    transform: Literal["identity", "log", "log_change", "pct_change"] = Field(
        default="identity",
        description="identity: the value as reported; log: ln(value); log_change: "
        "ln(value / baseline); pct_change: 100 * (value / baseline - 1).",
    )
    baseline: float | None = Field(default=None, gt=0)
    baseline_date: str | None = Field(
        default=None, description="When the baseline value was observed (documentation)."
    )
    baseline_source: str | None = None


class Combine(_Strict):
    """How repeated readings of one indicator combine into evidence."""

    rule: Literal["all", "latest"] = Field(
        description="all: every distinct reading counts (events, independent measurements); "
        "latest: only the latest reading of each group counts (a level series such as a price)."
    )
    per: list[Literal["source", "location"]] = Field(
        default_factory=lambda: ["source", "location"],  # type: ignore[arg-type]
        description="With rule latest: the groups within which only the latest reading counts.",
    )
    window_days: int | None = Field(
        default=None,
        gt=0,
        description="Only readings observed within this many days before the indicator's newest "
        "reading (up to the as-of date) count.",
    )
    max_age_days: int | None = Field(
        default=None,
        gt=0,
        description="Only readings observed within this many days before the as-of date count "
        "(older readings say too little about the forecast period).",
    )


class ParamRow(_Strict):
    """The likelihood parameters of an indicator for one combination of its nodes' states."""

    when: dict[Name, Name]
    then: dict[str, float]
    rationale: str = ""


class Indicator(_Strict):
    """An observable quantity and how it depends on scenario nodes."""

    description: str = ""
    kind: Literal["binary", "categorical", "count", "normal", "lognormal", "student_t"]
    unit: str | None = None
    depends_on: list[Name] = Field(min_length=1)
    categories: list[Name] | None = Field(default=None, description="For kind categorical.")
    read_as: ReadAs | None = None
    combine: Combine | None = Field(
        default=None,
        description="Default: latest per source and location for continuous kinds, all otherwise.",
    )
    params: list[ParamRow] = Field(min_length=1)
    rationale: str = ""

    def combine_rule(self) -> Combine:
        """The combination rule in force, with the kind's default filled in."""
        if self.combine is not None:
            return self.combine
        if self.kind in CONTINUOUS_KINDS:
            return Combine(rule="latest")
        return Combine(rule="all")


class ScenarioTree(_Strict):
    """A scenario tree: nodes, outcomes, indicators and sources."""

    id: Name | None = Field(default=None, description="Defaults to the file name without .yaml.")
    title: str = ""
    description: str = ""
    author: str = ""
    strength: float = Field(
        default=20.0, gt=0, description="Default Dirichlet concentration of every node's rows."
    )
    sources: dict[Name, Source] = Field(default_factory=dict)
    nodes: dict[Name, Node] = Field(min_length=1)
    outcomes: dict[Name, Outcome] = Field(default_factory=dict)
    indicators: dict[Name, Indicator] = Field(default_factory=dict)
