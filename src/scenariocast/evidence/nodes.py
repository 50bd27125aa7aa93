"""Evidence on a node itself, as other Bayesian-network tools take it: virtual or soft.

Hard evidence (the node is in one state) is an assumption, ``given``. Two kinds of uncertain
evidence on a node join it:

- **virtual** (likelihood evidence, as Hugin, Netica and pgmpy take it): a likelihood ratio per
  state, ``P(report | state)`` up to a constant. It is multiplied in like any reading: what the
  node's marginal becomes depends on its prior and on the other evidence. ``a=2,b=1`` says "the
  report is twice as likely if the node is in ``a``", not "``a`` has probability 2/3";
- **soft** (Jeffrey's rule): the node's marginal after all the evidence *is* the distribution
  given; every other node moves as if the node had been observed with those weights,
  ``P'(x) = sum_s q(s) P(x | s, other evidence)``. Several soft findings are fitted together
  (iterative proportional fitting), so that each holds.

Both come from the API (``virtual=``, ``soft=``) and the command line (``--virtual``,
``--soft``) as what-ifs. A value is ``state=number`` pairs separated by commas (a state not
named has ratio or probability 0), or a mapping of state to number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scenariocast.errors import QueryError, ReadingError, did_you_mean
from scenariocast.evidence.readings import ObservedDate
from scenariocast.spec.tree import Tree

KINDS = ("virtual", "soft")


@dataclass(frozen=True)
class Finding:
    """Evidence on one node (at one step of a dynamic node, or at every step).

    ``values`` has one number per state: likelihood ratios for virtual evidence, the target
    marginal (summing to 1) for soft evidence.
    """

    key: str  # as given: "node" or "node@date"
    node: str
    kind: str
    values: tuple[float, ...]
    steps: tuple[int | None, ...]  # (None,) for a static node
    states: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """``{"node": key, "kind": kind, "values": {state: number}}``."""
        values = dict(zip(self.states, self.values, strict=True))
        return {"node": self.key, "kind": self.kind, "values": values}

    def describe(self) -> str:
        """``node ~ a 0.2, b 0.8`` (soft) or ``node likelihoods a 2, b 1`` (virtual)."""
        states = self.states
        sign = "~" if self.kind == "soft" else "likelihoods"
        pairs = ", ".join(f"{s} {v:g}" for s, v in zip(states, self.values, strict=True))
        return f"{self.key} {sign} {pairs}"


def parse_values(kind: str, text: str, states: Sequence[str], node: str) -> tuple[float, ...]:
    """The numbers of a finding's value, one per state.

    Raises
    ------
    ReadingError
        For an unknown kind or state, a number that is not finite or is negative, ratios that are
        all 0, or soft probabilities that do not sum to 1 (within 1e-6).
    """
    if kind not in KINDS:
        raise ReadingError(f"evidence on a node is virtual or soft, not '{kind}'")
    raw = str(text).strip()
    values = dict.fromkeys(states, 0.0)
    seen: set[str] = set()
    for part in raw.split(","):
        name, eq, number = part.partition("=")
        if not eq:
            name, eq, number = part.partition(":")
        name = name.strip()
        if not eq or not name:
            raise ReadingError(
                f"{kind} evidence on '{node}' is state=number pairs separated by commas "
                f"(a=0.2,b=0.8), got '{raw}'"
            )
        if name not in values:
            hint = did_you_mean(name, states)
            raise ReadingError(f"node '{node}' has no state '{name}'{hint}")
        if name in seen:
            raise ReadingError(f"{kind} evidence on '{node}' names state '{name}' twice")
        seen.add(name)
        try:
            x = float(number)
        except ValueError:
            raise ReadingError(f"'{number.strip()}' is not a number ({node}, {name})") from None
        if not math.isfinite(x) or x < 0:
            raise ReadingError(f"{kind} evidence on '{node}': {name}={number.strip()} must be >= 0")
        values[name] = x
    out = tuple(values[s] for s in states)
    if kind == "virtual" and not any(out):
        raise ReadingError(f"virtual evidence on '{node}' gives every state a ratio of 0")
    if kind == "soft":
        total = math.fsum(out)
        if abs(total - 1.0) > 1e-6:
            raise ReadingError(
                f"soft evidence on '{node}' is the node's distribution: it sums to {total:g}, not 1"
            )
        out = tuple(x / total for x in out)
    return out


def _number_text(value: object) -> str:
    """A number as text that reads back exactly (NumPy numbers too)."""
    try:
        return repr(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)


def findings_from(
    tree: Tree,
    kind: str,
    items: Mapping[str, str | Mapping[str, float]],
) -> list[Finding]:
    """Findings of one kind from the API or the command line: ``node`` or ``node@date`` -> value.

    A value is a mapping or a text of ``state=number`` pairs. Without a date, a finding on a
    dynamic node holds at every step of the horizon, as an assumption does.

    Raises
    ------
    QueryError
        For an unknown node, a calendar node, a bad date or value.
    """
    out: list[Finding] = []
    for key, value in items.items():
        name, sep, when = key.partition("@")
        name = name.strip()
        compiled = tree.node(name)
        if compiled.kind == "calendar":
            raise QueryError(f"node '{name}' is set by the calendar; it takes no evidence")
        text = (
            ",".join(f"{s}={_number_text(v)}" for s, v in value.items())
            if isinstance(value, Mapping)
            else str(value)
        )
        try:
            values = parse_values(kind, text, compiled.states, name)
        except ReadingError as exc:
            raise QueryError(str(exc)) from None
        if compiled.kind == "static":
            if sep:
                raise QueryError(f"node '{name}' does not change over time: give it without a date")
            steps: tuple[int | None, ...] = (None,)
        else:
            assert tree.steps is not None
            if not sep:
                steps = tuple(range(tree.steps.n))
            else:
                try:
                    day = ObservedDate.parse(when.strip()).start
                except ReadingError:
                    raise QueryError(
                        f"'{key}': the date after @ is not a day (2026-06-15) or a month (2026-06)"
                    ) from None
                steps = (tree.steps.index(day),)
        out.append(Finding(key.strip(), name, kind, values, steps, tuple(compiled.states)))
    return out
