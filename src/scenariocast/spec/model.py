"""The scenario file format as pydantic models.

These models check the shape of each field (types, ranges, unknown keys). Checks that need the
whole tree (rows summing to one, parent combinations, cycles, names that refer to other parts
of the file) live in :func:`scenariocast.spec.load.check_tree`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
)

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_\-]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=80)]
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
#: Default within-report correlation of continuous readings (several cities of one survey).
DEFAULT_REPORT_CORRELATION = 0.5
#: Default staleness thresholds, in days: levels such as prices, and events.
STALE_DAYS_CONTINUOUS = 60
STALE_DAYS_EVENTS = 90


def _table_form(value: Any) -> str:
    return "rows" if isinstance(value, list) else "mapping"


def _number_or_map(value: Any) -> str:
    return "per_state" if isinstance(value, dict) else "number"


def _number_or_uncertain(value: Any) -> str:
    return "uncertain" if isinstance(value, dict) else "number"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Uncertain(_Strict):
    """A number the forecaster holds with uncertainty, as a mean and a standard deviation.

    The exact engine uses the mean; the PyMC engine gives the number a prior with this mean and
    standard deviation (a Beta for probabilities, a Gamma for positive parameters, a normal
    otherwise) and learns it from the readings.
    """

    mean: float = Field(allow_inf_nan=False)
    sd: float = Field(gt=0, allow_inf_nan=False)


#: A number, or a number held with uncertainty (``{mean: ..., sd: ...}``).
Number = Annotated[
    Annotated[float, Tag("number")] | Annotated[Uncertain, Tag("uncertain")],
    Discriminator(_number_or_uncertain),
]


def mean_of(value: float | Uncertain) -> float:
    """The number itself, or the mean of an uncertain one."""
    return value.mean if isinstance(value, Uncertain) else float(value)


class Source(_Strict):
    """A named source of readings and how far its reports are trusted."""

    reliability: Annotated[
        Annotated[Probability, Tag("number")] | Annotated[Uncertain, Tag("uncertain")],
        Discriminator(_number_or_uncertain),
    ] = Field(
        description="Probability that a report from this source is genuine (1 = full weight, "
        "0 = ignored), or {mean, sd} when it is itself uncertain (a Beta prior in the PyMC "
        "engine). A report that is not genuine carries no information."
    )
    description: str = ""
    url: str | None = None

    @property
    def mean_reliability(self) -> float:
        """The reliability, or its mean when it is uncertain."""
        return mean_of(self.reliability)


class CptRow(_Strict):
    """One row of a conditional probability table: the distribution of a node given parents."""

    when: dict[Name, Name] = Field(description="A state for every parent of the node.")
    then: dict[Name, Probability] = Field(description="A probability for every state of the node.")
    rationale: str = ""


class Dynamic(_Strict):
    """How a node's state changes from one step of the horizon to the next.

    Give either ``persistence`` or ``transitions``. With ``persistence`` the node keeps its
    state with that probability and is otherwise drawn afresh from its ``probabilities`` (given
    its parents at the new step). ``transitions`` gives the whole table instead: rows whose
    ``when`` names the node itself (its state at the previous step) and every parent (their
    states at the new step).
    """

    persistence: (
        Annotated[
            Annotated[Probability, Tag("number")]
            | Annotated[dict[Name, Probability], Tag("per_state")],
            Discriminator(_number_or_map),
        ]
        | None
    ) = Field(
        default=None,
        description="Probability of keeping the same state from one step to the next: one number, "
        "or one per state. Otherwise the state is drawn from the node's probabilities.",
    )
    transitions: list[CptRow] | None = Field(
        default=None,
        description="P(state at t+1 | state at t, parents at t+1): rows whose `when` names the "
        "node itself (its previous state) and each parent, one row for every combination.",
    )
    rationale: str = ""


class Threshold(_Strict):
    """What a state's definition says about one indicator, as a quantile of its readings.

    Under the state, ``threshold`` (a value as reported, before ``read_as``) is the
    ``quantile`` quantile of a reading's distribution: a state defined as "rice below 15,000
    KPW/kg" might say that 15,000 is the 0.9 quantile of a rice reading in that state. The claim
    must hold, within ``tolerance``, in every ``params`` row of the indicator where the node is
    in the state.
    """

    indicator: Name = Field(description="A continuous indicator that depends on the node.")
    threshold: float = Field(
        allow_inf_nan=False, description="A value as reported (in the indicator's unit)."
    )
    quantile: float = Field(
        gt=0.0, lt=1.0, description="The probability that a reading in the state is below it."
    )
    tolerance: float = Field(
        default=0.05,
        gt=0.0,
        lt=0.5,
        description="How far the indicator's quantile may be from `quantile` in any row.",
    )


class Node(_Strict):
    """A scenario variable with named states."""

    label: str | None = Field(
        default=None,
        min_length=1,
        description="What tables, reports and conversions show for the node: any text (the "
        "node's name stays its id).",
    )
    description: str = ""
    states: list[Name] = Field(min_length=2, description="The node's states, at least two.")
    state_labels: dict[Name, Annotated[str, Field(min_length=1)]] | None = Field(
        default=None,
        description="What tables, reports and conversions show for states: state -> any text "
        "(such as '<5' or '12+' for states named lt5 and s12plus).",
    )
    parents: list[Name] = Field(default_factory=list)
    probabilities: (
        Annotated[
            Annotated[dict[Name, Probability], Tag("mapping")]
            | Annotated[list[CptRow], Tag("rows")],
            Discriminator(_table_form),
        ]
        | None
    ) = Field(
        default=None,
        description="For a node without parents: state -> probability. For a node with parents: "
        "a list of rows, each `when` (a state for every parent) and `then` (state -> probability). "
        "For a dynamic node, the distribution at the horizon's first step. Required, except for a "
        "calendar node.",
    )
    table: str | None = Field(
        default=None,
        description="The probability table as text instead of `probabilities` (for large "
        "tables): one line per combination of the parents' states, the states in `parents` "
        "order, then ':' and one probability per state in `states` order; a node without "
        "parents has one line of numbers.",
    )
    dynamic: Dynamic | None = Field(
        default=None,
        description="Makes the node change from step to step over the tree's horizon.",
    )
    calendar: dict[Name, list[Annotated[int, Field(ge=1, le=12)]]] | None = Field(
        default=None,
        description="A node set by the calendar: state -> the months (1-12) in which it holds, "
        "every month in exactly one state (for example a lean season). It takes no parents and "
        "no probabilities.",
    )
    thresholds: dict[Name, list[Threshold]] | None = Field(
        default=None,
        description="The states' definitions in numbers: state -> claims that a value of a "
        "continuous indicator is a stated quantile of its readings in that state. Validation "
        "checks every claim against the indicator's params.",
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
    states: Annotated[
        list[Name],
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "pattern": NAME_PATTERN, "maxLength": 80},
                    {
                        "type": "array",
                        "items": {"type": "string", "pattern": NAME_PATTERN, "maxLength": 80},
                        "minItems": 1,
                    },
                ]
            }
        ),
    ] = Field(
        min_length=1,
        description="The node state, or set of states, that resolves this as yes (one name or a "
        "list).",
    )
    resolve_by: dt.date
    resolution: str = Field(
        min_length=1, description="Criteria a third party can apply to resolve the question."
    )
    timing: Literal["end", "ever", "at_least"] | None = Field(
        default=None,
        description="For an outcome on a dynamic node (required there): end: the node is in "
        "`states` at the horizon's last step; ever: in at least one step of the horizon; "
        "at_least: in at least `k` steps.",
    )
    k: int | None = Field(
        default=None, ge=1, description="With timing at_least: the number of steps."
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
        description="Only readings observed within this many days before the as-of date count "
        "(the same rule as max_age_days; with both, the shorter applies).",
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
    then: dict[str, Number] = Field(
        description="Parameter -> a number, or {mean, sd} for a parameter held with "
        "uncertainty (learnt from the readings by the PyMC engine)."
    )
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
    within_report_correlation: float | None = Field(
        default=None,
        ge=0.0,
        lt=1.0,
        description="Continuous kinds: the correlation of the errors of several readings of this "
        "indicator in one report (several cities of one survey), in [0, 1). n readings carry "
        "the information of n / (1 + (n - 1) rho) independent ones. Default 0.5.",
    )
    stale_after_days: int | None = Field(
        default=None,
        gt=0,
        description="The newest reading is stale when older than this many days before the "
        "as-of date (default 60 for continuous kinds, 90 for the others).",
    )
    source: Name | None = Field(
        default=None,
        description="The source a reading of this indicator usually comes from (one of the "
        "tree's sources); `scenariocast watch` assumes it for a reading not yet taken.",
    )
    cost: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="What one more reading costs to get, in any unit the forecaster budgets in "
        "(hours of research, say), > 0; `scenariocast watch` ranks indicators by information "
        "gained per unit of cost.",
    )
    rationale: str = ""

    def correlation(self) -> float:
        """The within-report correlation in force (0 for kinds without one)."""
        if self.kind not in CONTINUOUS_KINDS:
            return 0.0
        if self.within_report_correlation is None:
            return DEFAULT_REPORT_CORRELATION
        return self.within_report_correlation

    def stale_days(self) -> int:
        """The staleness threshold in force, in days."""
        if self.stale_after_days is not None:
            return self.stale_after_days
        return STALE_DAYS_CONTINUOUS if self.kind in CONTINUOUS_KINDS else STALE_DAYS_EVENTS

    def combine_rule(self) -> Combine:
        """The combination rule in force, with the kind's default filled in."""
        if self.combine is not None:
            return self.combine
        if self.kind in CONTINUOUS_KINDS:
            return Combine(rule="latest")
        return Combine(rule="all")


class Horizon(_Strict):
    """The period a tree's dynamic nodes evolve over, in steps of a week, a month or a quarter."""

    start: dt.date = Field(description="The first day of the horizon (the first day of a step).")
    end: dt.date = Field(description="The last day of the horizon (the last day of a step).")
    step: Literal["week", "month", "quarter"] = Field(
        default="month", description="Calendar months (default), ISO weeks or calendar quarters."
    )


class ScenarioTree(_Strict):
    """A scenario tree: nodes, outcomes, indicators and sources."""

    id: Name | None = Field(default=None, description="Defaults to the file name without .yaml.")
    title: str = ""
    description: str = ""
    author: str = ""
    strength: float = Field(
        default=20.0, gt=0, description="Default Dirichlet concentration of every node's rows."
    )
    horizon: Horizon | None = Field(
        default=None, description="Required when a node is dynamic or set by the calendar."
    )
    sources: dict[Name, Source] = Field(default_factory=dict)
    nodes: dict[Name, Node] = Field(min_length=1)
    outcomes: dict[Name, Outcome] = Field(default_factory=dict)
    indicators: dict[Name, Indicator] = Field(default_factory=dict)
