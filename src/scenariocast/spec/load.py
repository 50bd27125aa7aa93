"""Load a scenario file: safe YAML, field validation, whole-tree checks, compilation.

Every problem is collected and reported at once, each with the file, the path to the field,
the line where YAML gives it and, for unknown names, the closest valid name.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence, Set
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from scenariocast.errors import Problem, SpecError, did_you_mean
from scenariocast.spec.model import (
    CONTINUOUS_KINDS,
    KIND_PARAMS,
    Horizon,
    Indicator,
    Node,
    Outcome,
    ScenarioTree,
    Uncertain,
    mean_of,
)
from scenariocast.spec.tables import parse_table
from scenariocast.spec.time import Steps, step_end, step_start
from scenariocast.spec.tree import CompiledIndicator, CompiledNode, Tree, combos
from scenariocast.validation import (
    CONTENT,
    line_of,
    load_yaml_mapping,
    problem_at,
    read_text,
    translate_errors,
)

SUM_TOLERANCE = 1e-6
#: Rows that sum to 1 within this are taken as they are; others are renormalised with a note.
EXACT_SUM = 1e-12
#: Marks a line of a ``table:`` block in a problem's location (followed by the line's index).
TABLE_LINE = "@line"
#: The most steps a horizon may have (about 20 years of weeks).
MAX_STEPS = 1040
# tags of the unions of the format (probabilities, persistence), not fields
_UNION_TAGS = frozenset({"mapping", "rows", "number", "per_state", "uncertain"})
_BROKEN_HORIZON = " horizon"  # marks a horizon that failed field validation (not a node name)
Loc = tuple[str | int, ...]


def load_tree(path: str | Path) -> Tree:
    """Read, validate and compile the scenario file at ``path``.

    Raises
    ------
    SpecError
        With every problem found, each naming the file, the field and the line.
    """
    p = Path(path)
    text = read_text(p, SpecError)
    return parse_tree(text, file=str(p), default_id=p.stem, path=p)


def parse_tree(
    text: str, *, file: str = "<string>", default_id: str = "tree", path: Path | None = None
) -> Tree:
    """Validate and compile a scenario tree from YAML text."""
    data, lines, problems = load_yaml_mapping(text, file, SpecError)

    def at(loc: Loc, message: str, line_loc: Loc | None = None) -> Problem:
        if len(loc) > 2 and loc[-2] == TABLE_LINE:  # a line of a `table:` block
            start = lines.get((*loc[:-2], CONTENT))
            where = loc[:-2]
            line = start + int(loc[-1]) if start is not None else line_of(lines, where)
            return Problem(message, file=file, path=where, line=line)
        return problem_at(file, lines, loc, message, line_loc)

    try:
        spec = ScenarioTree.model_validate(data)
    except ValidationError as exc:
        problems.extend(
            at(loc, msg, line_loc)
            for loc, msg, line_loc in translate_errors(exc, ScenarioTree, drop=_UNION_TAGS)
        )
        # Still run the whole-tree checks on the parts that validated, so that one pass reports
        # e.g. a misspelt key in one node and an unknown parent in another.
        partial = _partial_tree(data)
        if partial is not None:
            problems.extend(at(loc, msg) for loc, msg in check_tree(*partial))
        raise SpecError(_by_line(problems)) from None
    problems.extend(at(loc, msg) for loc, msg in check_tree(spec))
    if problems:
        raise SpecError(_by_line(problems))
    file_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    tree = compile_tree(spec, default_id=default_id, path=path, file_hash=file_hash)
    if not tree.notes:
        return tree
    notes = tuple(at(n.path, n.message) for n in tree.notes)
    return replace(tree, notes=notes)


def _by_line(problems: list[Problem]) -> list[Problem]:
    """Problems in the order of their lines in the file (those without a line first)."""
    return sorted(problems, key=lambda p: p.line or 0)


def _valid_items(model: type[BaseModel], value: Any) -> tuple[dict[str, Any], set[str]]:
    """The entries of a name -> model mapping that validate on their own, and the others."""
    good: dict[str, Any] = {}
    bad: set[str] = set()
    for key, item in (value if isinstance(value, dict) else {}).items():
        try:
            good[str(key)] = model.model_validate(item)
        except ValidationError:
            bad.add(str(key))
    return good, bad


def _partial_tree(data: Mapping[str, Any]) -> tuple[ScenarioTree, set[str]] | None:
    """The nodes, outcomes and indicators that validated, and the names of the broken nodes.

    ``None`` when ``nodes`` is not a mapping: there is nothing to check the rest against.
    """
    if not isinstance(data.get("nodes"), dict):
        return None
    nodes, broken = _valid_items(Node, data["nodes"])
    outcomes, _ = _valid_items(Outcome, data.get("outcomes"))
    indicators, _ = _valid_items(Indicator, data.get("indicators"))
    horizon: Horizon | None = None
    if data.get("horizon") is not None:
        try:
            horizon = Horizon.model_validate(data["horizon"])
        except ValidationError:
            broken.add(_BROKEN_HORIZON)
    partial = ScenarioTree.model_construct(
        nodes=nodes, outcomes=outcomes, indicators=indicators, horizon=horizon
    )
    return partial, broken


# ---------------------------------------------------------------------------------------------
# whole-tree checks


def check_tree(spec: ScenarioTree, broken: Set[str] = frozenset()) -> list[tuple[Loc, str]]:
    """Problems that need the whole tree: names, tables, cycles, parameters.

    ``broken`` names nodes that exist in the file but failed field validation (and so are not
    in ``spec``): references to them are not reported, and checks that need them are skipped.
    """
    problems: list[tuple[Loc, str]] = []
    states = {name: node.states for name, node in spec.nodes.items()}
    for sid, src in spec.sources.items():
        if isinstance(src.reliability, Uncertain):
            problems.extend(
                check_uncertain(
                    ("sources", sid, "reliability"), "reliability", src.reliability,
                    kind="probability",
                )
            )  # fmt: skip

    for name, node in spec.nodes.items():
        loc: Loc = ("nodes", name)
        if len(set(node.states)) != len(node.states):
            dup = sorted({s for s in node.states if node.states.count(s) > 1})
            problems.append(((*loc, "states"), f"duplicate state {', '.join(dup)}"))
        for state in node.state_labels or {}:
            if state not in node.states:
                hint = did_you_mean(state, node.states)
                problems.append(((*loc, "state_labels", state), f"unknown state '{state}'{hint}"))
        parents_ok = True
        for i, parent in enumerate(node.parents):
            if parent in broken:
                parents_ok = False
            elif parent == name:
                problems.append(((*loc, "parents", i), f"node '{name}' cannot be its own parent"))
                parents_ok = False
            elif parent not in spec.nodes:
                hint = did_you_mean(parent, spec.nodes)
                problems.append(((*loc, "parents", i), f"unknown parent '{parent}'{hint}"))
                parents_ok = False
            elif node.parents.index(parent) != i:
                problems.append(((*loc, "parents", i), f"parent '{parent}' is listed twice"))
                parents_ok = False
        if node.calendar is not None:
            problems.extend(_check_calendar(node, name))
        elif parents_ok:
            problems.extend(_check_table(node, name, states))
            if node.dynamic is not None:
                problems.extend(_check_dynamic(node, name, states))
        if parents_ok and node.dynamic is None and node.calendar is None:
            for i, parent in enumerate(node.parents):
                other = spec.nodes[parent]
                if other.dynamic is not None or other.calendar is not None:
                    problems.append(
                        (
                            (*loc, "parents", i),
                            f"node '{name}' does not change over time but its parent '{parent}' "
                            "does: make it dynamic too (give it `dynamic:`)",
                        )
                    )

    problems.extend(_check_cycles(spec))
    problems.extend(_check_horizon(spec, broken))

    for oid, out in spec.outcomes.items():
        loc = ("outcomes", oid)
        if out.node in broken:
            continue
        if out.node not in spec.nodes:
            hint = did_you_mean(out.node, spec.nodes)
            problems.append(((*loc, "node"), f"unknown node '{out.node}'{hint}"))
            continue
        for i, s in enumerate(out.states):
            if s not in states[out.node]:
                hint = did_you_mean(s, states[out.node])
                problems.append(
                    ((*loc, "states", i), f"node '{out.node}' has no state '{s}'{hint}")
                )
        if set(out.states) >= set(states[out.node]):
            problems.append(
                ((*loc, "states"), "names every state of the node: it cannot resolve no")
            )
        problems.extend(_check_timing(oid, out, spec, broken))

    sound: set[str] = set()
    for iid, ind in spec.indicators.items():
        found = _check_indicator(iid, ind, spec, states, broken)
        problems.extend(found)
        if not found:
            sound.add(iid)
    for name, node in spec.nodes.items():
        if node.thresholds and node.calendar is None:
            problems.extend(_check_thresholds(name, node, spec, sound))
    return problems


def _check_probabilities(
    loc: Loc, probs: Mapping[str, float], valid: Sequence[str], what: str
) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    for key in probs:
        if key not in valid:
            out.append(((*loc, key), f"unknown {what} '{key}'{did_you_mean(key, valid)}"))
    missing = [s for s in valid if s not in probs]
    if missing:
        out.append((loc, f"no probability for {what} {', '.join(missing)}"))
    total = math.fsum(probs.values())
    if not out and abs(total - 1.0) > SUM_TOLERANCE:
        out.append((loc, f"probabilities sum to {total:.6g}, not 1"))
    return out


def _check_when(
    loc: Loc, when: Mapping[str, str], names: Sequence[str], states: Mapping[str, Sequence[str]]
) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    for key, value in when.items():
        if key not in names:
            listed = ", ".join(names)
            out.append(((*loc, key), f"'{key}' is not one of {listed}{did_you_mean(key, names)}"))
        elif value not in states[key]:
            hint = did_you_mean(value, states[key])
            out.append(((*loc, key), f"node '{key}' has no state '{value}'{hint}"))
    missing = [n for n in names if n not in when]
    if missing:
        out.append((loc, f"no state given for {', '.join(missing)}"))
    return out


def _check_rows(
    loc: Loc,
    rows: Sequence[Any],
    names: Sequence[str],
    states: Mapping[str, Sequence[str]],
    check_then: Any,
) -> list[tuple[Loc, str]]:
    """Check `when`/`then` rows: valid keys, no duplicate, every combination present."""
    out: list[tuple[Loc, str]] = []
    seen: dict[tuple[str, ...], int] = {}
    rows_ok = True
    for i, row in enumerate(rows):
        when_problems = _check_when((*loc, i, "when"), row.when, names, states)
        out.extend(when_problems)
        rows_ok = rows_ok and not when_problems
        if not when_problems:
            key = tuple(row.when[n] for n in names)
            if key in seen:
                out.append(((*loc, i, "when"), f"repeats the combination of row {seen[key]}"))
            seen.setdefault(key, i)
        out.extend(check_then((*loc, i, "then"), row.then))
    if rows_ok:
        missing = [
            ", ".join(f"{k}={v}" for k, v in c.items())
            for c in combos(names, states)
            if tuple(c[n] for n in names) not in seen
        ]
        if missing:
            shown = "; ".join(missing[:4]) + (
                f"; and {len(missing) - 4} more" if len(missing) > 4 else ""
            )
            out.append((loc, f"no row for {shown}"))
    return out


def _check_table(
    node: Node, name: str, states: Mapping[str, Sequence[str]]
) -> list[tuple[Loc, str]]:
    loc: Loc = ("nodes", name, "probabilities")
    probs = node.probabilities
    if node.table is not None:
        if probs is not None:
            return [(("nodes", name, "table"), "give either probabilities or table, not both")]
        _, found = parse_table(
            node.table, node.parents, node.states, states, tolerance=SUM_TOLERANCE
        )
        return [
            (
                ("nodes", name, "table", TABLE_LINE, i)
                if i is not None
                else ("nodes", name, "table"),
                m,
            )
            for i, m in found
        ]
    if probs is None:
        return [(("nodes", name), "missing required key 'probabilities' (or 'table')")]
    if not node.parents:
        if isinstance(probs, list):
            return [(loc, "a node without parents takes state -> probability, not rows")]
        return _check_probabilities(loc, probs, node.states, "state")
    if isinstance(probs, dict):
        return [
            (
                loc,
                f"a node with parents takes rows of `when` and `then`, one for every "
                f"combination of {', '.join(node.parents)}",
            )
        ]

    def check_then(where: Loc, then: Mapping[str, float]) -> list[tuple[Loc, str]]:
        return _check_probabilities(where, then, node.states, "state")

    return _check_rows(loc, probs, node.parents, states, check_then)


def _check_cycles(spec: ScenarioTree) -> list[tuple[Loc, str]]:
    """Every cycle of parents, found by an iterative depth-first search (any tree size)."""
    graph = {
        n: [p for p in node.parents if p in spec.nodes and p != n] for n, node in spec.nodes.items()
    }
    color: dict[str, int] = {}  # 1: on the current path, 2: done
    found: list[tuple[Loc, str]] = []
    for start in graph:
        if start in color:
            continue
        color[start] = 1
        path = [start]
        pending = [iter(graph[start])]
        while pending:
            n = path[-1]
            p = next(pending[-1], None)
            if p is None:
                color[n] = 2
                path.pop()
                pending.pop()
            elif color.get(p) == 1:
                cycle = [*path[path.index(p) :], p]
                found.append((("nodes", n, "parents"), "cycle: " + _shorten(cycle)))
            elif p not in color:
                color[p] = 1
                path.append(p)
                pending.append(iter(graph[p]))
    return found


def _shorten(cycle: Sequence[str], keep: int = 5) -> str:
    """``a <- b <- c <- a``, with the middle left out of a long cycle so it stays one line."""
    if len(cycle) <= 2 * keep + 1:
        return " <- ".join(cycle)
    head, tail = " <- ".join(cycle[:keep]), " <- ".join(cycle[-keep:])
    return f"{head} <- ... <- {tail} ({len(cycle) - 1} nodes)"


def _check_indicator(
    iid: str,
    ind: Indicator,
    spec: ScenarioTree,
    states: Mapping[str, Sequence[str]],
    broken: Set[str] = frozenset(),
) -> list[tuple[Loc, str]]:
    loc: Loc = ("indicators", iid)
    out: list[tuple[Loc, str]] = []
    if ind.source is not None and ind.source not in spec.sources:
        out.append(
            (
                (*loc, "source"),
                f"unknown source '{ind.source}'{did_you_mean(ind.source, spec.sources)}",
            )
        )
    scope_ok = True
    for i, n in enumerate(ind.depends_on):
        if n in broken:
            scope_ok = False
        elif n not in spec.nodes:
            out.append(
                ((*loc, "depends_on", i), f"unknown node '{n}'{did_you_mean(n, spec.nodes)}")
            )
            scope_ok = False
        elif ind.depends_on.index(n) != i:
            out.append(((*loc, "depends_on", i), f"node '{n}' is listed twice"))
            scope_ok = False
    if ind.kind == "categorical":
        cats = ind.categories or []
        if len(cats) < 2:
            out.append(
                ((*loc, "categories"), "a categorical indicator needs at least two categories")
            )
            return out
        if len(set(cats)) != len(cats):
            out.append(((*loc, "categories"), "duplicate category"))
    elif ind.categories is not None:
        out.append(
            ((*loc, "categories"), f"only a categorical indicator has categories, not {ind.kind}")
        )
    if ind.read_as is not None:
        if ind.kind not in CONTINUOUS_KINDS:
            out.append(((*loc, "read_as"), f"read_as is for continuous indicators, not {ind.kind}"))
        elif ind.read_as.transform in ("log_change", "pct_change") and ind.read_as.baseline is None:
            out.append(
                (
                    (*loc, "read_as", "baseline"),
                    f"transform {ind.read_as.transform} needs a baseline value",
                )
            )
        elif ind.kind == "lognormal" and ind.read_as.transform != "identity":
            out.append(
                (
                    (*loc, "read_as", "transform"),
                    "a lognormal indicator reads the value as reported (transform identity); "
                    "use kind normal with transform log or log_change instead",
                )
            )
    if (
        ind.combine is not None
        and ind.combine.rule == "all"
        and "per" in ind.combine.model_fields_set
    ):
        out.append(((*loc, "combine", "per"), "per applies to rule latest only"))
    if ind.within_report_correlation is not None and ind.kind not in CONTINUOUS_KINDS:
        out.append(
            (
                (*loc, "within_report_correlation"),
                f"within_report_correlation is for continuous indicators, not {ind.kind}: "
                "readings of a discrete indicator in one report count as independent",
            )
        )
    if scope_ok and all(spec.nodes[n].calendar is not None for n in ind.depends_on):
        out.append(
            (
                (*loc, "depends_on"),
                "depends only on calendar nodes: its readings would say nothing about the scenario",
            )
        )

    def check_then(where: Loc, then: Mapping[str, float | Uncertain]) -> list[tuple[Loc, str]]:
        if ind.kind == "categorical":
            held = [k for k, v in then.items() if isinstance(v, Uncertain)]
            if held:
                return [
                    (
                        (*where, held[0]),
                        "a categorical indicator's probabilities are plain numbers: hold them "
                        "loosely by widening them, not with {mean, sd}",
                    )
                ]
            plain = {k: float(v) for k, v in then.items() if not isinstance(v, Uncertain)}
            bad = [
                (where, f"probability {v} of '{k}' is outside [0, 1]")
                for k, v in plain.items()
                if not 0 <= v <= 1
            ]
            return bad or _check_probabilities(where, plain, ind.categories or [], "category")
        return _check_params(where, ind.kind, then)

    if scope_ok:
        out.extend(_check_rows((*loc, "params"), ind.params, ind.depends_on, states, check_then))
    return out


def _check_thresholds(
    name: str, node: Node, spec: ScenarioTree, sound: Set[str]
) -> list[tuple[Loc, str]]:
    """Each claim of a state's definition, against the indicator's params in that state.

    ``sound`` names the indicators that passed their own checks: only their params are read.
    """
    from scenariocast.evidence.likelihood import reading_cdf

    out: list[tuple[Loc, str]] = []
    for state, claims in (node.thresholds or {}).items():
        loc: Loc = ("nodes", name, "thresholds", state)
        if state not in node.states:
            out.append((loc, f"unknown state '{state}'{did_you_mean(state, node.states)}"))
            continue
        for i, claim in enumerate(claims):
            where: Loc = (*loc, i)
            ind = spec.indicators.get(claim.indicator)
            if ind is None:
                hint = did_you_mean(claim.indicator, spec.indicators)
                out.append(((*where, "indicator"), f"unknown indicator '{claim.indicator}'{hint}"))
                continue
            if ind.kind not in CONTINUOUS_KINDS:
                out.append(
                    (
                        (*where, "indicator"),
                        f"thresholds are for continuous indicators; '{claim.indicator}' is "
                        f"{ind.kind}",
                    )
                )
                continue
            if name not in ind.depends_on:
                out.append(
                    (
                        (*where, "indicator"),
                        f"indicator '{claim.indicator}' does not depend on node '{name}' (it "
                        f"depends on {', '.join(ind.depends_on)})",
                    )
                )
                continue
            transform = ind.read_as.transform if ind.read_as is not None else "identity"
            if claim.threshold <= 0 and (
                ind.kind == "lognormal" or transform in ("log", "log_change")
            ):
                out.append(
                    (
                        (*where, "threshold"),
                        f"{claim.threshold:g} cannot be a reading of '{claim.indicator}', which "
                        "reads the log of a value: give a value > 0",
                    )
                )
                continue
            if claim.indicator not in sound:
                continue  # its own problems are reported; its params cannot be trusted
            misses = [
                (abs(q - claim.quantile), q, j, row.when)
                for j, row in enumerate(ind.params)
                if row.when.get(name) == state
                for q in [
                    reading_cdf(
                        ind.kind,
                        {k: mean_of(v) for k, v in row.then.items()},
                        ind.read_as,
                        claim.threshold,
                    )
                ]
                if abs(q - claim.quantile) > claim.tolerance
            ]
            if misses:
                _, q, j, when = max(misses, key=lambda m: m[0])
                given = ", ".join(f"{k}={v}" for k, v in when.items())
                more = f"; and in {len(misses) - 1} more rows" if len(misses) > 1 else ""
                out.append(
                    (
                        where,
                        f"'{claim.indicator}' puts {claim.threshold:g} at quantile {q:.3f} where "
                        f"{given} (indicators.{claim.indicator}.params[{j}]), not "
                        f"{claim.quantile:g} (within {claim.tolerance:g}){more}",
                    )
                )
    return out


def _check_calendar(node: Node, name: str) -> list[tuple[Loc, str]]:
    loc: Loc = ("nodes", name)
    out: list[tuple[Loc, str]] = []
    for key in ("parents", "probabilities", "table", "dynamic", "thresholds"):
        if key in node.model_fields_set and getattr(node, key):
            out.append(((*loc, key), f"a calendar node takes no {key}: the calendar sets it"))
    cal = node.calendar or {}
    seen: dict[int, str] = {}
    for state, months in cal.items():
        if state not in node.states:
            hint = did_you_mean(state, node.states)
            out.append(((*loc, "calendar", state), f"unknown state '{state}'{hint}"))
            continue
        if not months:
            out.append(((*loc, "calendar", state), "names no month"))
        for m in months:
            if m in seen:
                out.append(((*loc, "calendar", state), f"month {m} is also in state '{seen[m]}'"))
            seen.setdefault(m, state)
    missing = [str(m) for m in range(1, 13) if m not in seen]
    if missing and not out:
        what = f"month {missing[0]} is" if len(missing) == 1 else f"months {', '.join(missing)} are"
        out.append(((*loc, "calendar"), f"{what} in no state"))
    absent = [s for s in node.states if s not in cal]
    if absent and not out:
        what = "state" if len(absent) == 1 else "states"
        out.append(((*loc, "calendar"), f"{what} {', '.join(absent)} in no month"))
    return out


def _check_dynamic(
    node: Node, name: str, states: Mapping[str, Sequence[str]]
) -> list[tuple[Loc, str]]:
    loc: Loc = ("nodes", name, "dynamic")
    dyn = node.dynamic
    assert dyn is not None
    if (dyn.persistence is None) == (dyn.transitions is None):
        return [(loc, "give either persistence or transitions")]
    if isinstance(dyn.persistence, dict):
        return _check_state_map((*loc, "persistence"), dyn.persistence, node.states)
    if dyn.transitions is not None:
        names = [name, *node.parents]

        def check_then(where: Loc, then: Mapping[str, float]) -> list[tuple[Loc, str]]:
            return _check_probabilities(where, then, node.states, "state")

        found = _check_rows((*loc, "transitions"), dyn.transitions, names, states, check_then)
        own = f"no state given for {name}"
        return [
            (where, msg.replace(own, f"{own} (its state at the previous step)", 1))
            if msg.startswith(own)
            else (where, msg)
            for where, msg in found
        ]
    return []


def _check_state_map(
    loc: Loc, values: Mapping[str, float], valid: Sequence[str]
) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    for key in values:
        if key not in valid:
            out.append(((*loc, key), f"unknown state '{key}'{did_you_mean(key, valid)}"))
    missing = [s for s in valid if s not in values]
    if missing:
        out.append((loc, f"no value for state {', '.join(missing)}"))
    return out


def _check_horizon(spec: ScenarioTree, broken: Set[str]) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    moving = [n for n, node in spec.nodes.items() if node.dynamic or node.calendar is not None]
    horizon = spec.horizon
    if horizon is None:
        if moving and _BROKEN_HORIZON not in broken:
            key = "dynamic" if spec.nodes[moving[0]].dynamic else "calendar"
            out.append(
                (
                    ("nodes", moving[0], key),
                    f"node '{moving[0]}' changes over time: the tree needs a horizon "
                    "(horizon: {start, end, step})",
                )
            )
        return out
    unit = horizon.step
    first = step_start(unit, horizon.start)
    if first != horizon.start:
        out.append(
            (
                ("horizon", "start"),
                f"{horizon.start} is not the first day of a {unit} (steps are calendar "
                f"{unit}s{', Monday to Sunday' if unit == 'week' else ''}); did you mean {first}?",
            )
        )
    last = step_end(unit, horizon.end)
    if last != horizon.end:
        out.append(
            (
                ("horizon", "end"),
                f"{horizon.end} is not the last day of a {unit}; did you mean {last}?",
            )
        )
    if horizon.end < horizon.start:
        out.append((("horizon", "end"), f"{horizon.end} is before the start {horizon.start}"))
    elif not out:
        n = Steps(unit, horizon.start, horizon.end).n
        if n > MAX_STEPS:
            out.append((("horizon",), f"has {n} steps, more than the {MAX_STEPS} allowed"))
    return out


def _check_timing(
    oid: str, out: Outcome, spec: ScenarioTree, broken: Set[str]
) -> list[tuple[Loc, str]]:
    loc: Loc = ("outcomes", oid)
    node = spec.nodes[out.node]
    problems: list[tuple[Loc, str]] = []
    if node.calendar is not None:
        return [((*loc, "node"), f"node '{out.node}' is set by the calendar: it resolves nothing")]
    if node.dynamic is None:
        if out.timing is not None:
            problems.append(
                (
                    (*loc, "timing"),
                    f"node '{out.node}' does not change over time: timing applies to outcomes "
                    "on dynamic nodes",
                )
            )
        if out.k is not None:
            problems.append(((*loc, "k"), "k applies to timing at_least only"))
        return problems
    if out.timing is None:
        return [
            (
                loc,
                f"node '{out.node}' is dynamic: say when the outcome holds with "
                "timing: end (at the horizon's last step), ever (in any step) or at_least "
                "(in at least k steps)",
            )
        ]
    if out.timing == "at_least" and out.k is None:
        problems.append((loc, "timing at_least needs k, the number of steps"))
    if out.timing != "at_least" and out.k is not None:
        problems.append(((*loc, "k"), "k applies to timing at_least only"))
    horizon = spec.horizon
    if horizon is not None and not _check_horizon(spec, broken):
        steps = Steps(horizon.step, horizon.start, horizon.end)
        if out.k is not None and out.k > steps.n:
            problems.append(((*loc, "k"), f"k is {out.k} but the horizon has {steps.n} steps"))
        if out.resolve_by < horizon.end:
            problems.append(
                (
                    (*loc, "resolve_by"),
                    f"{out.resolve_by} is before the horizon's end {horizon.end}: an outcome on "
                    "a dynamic node resolves over the whole horizon",
                )
            )
    return problems


def check_uncertain(loc: Loc, what: str, value: Uncertain, *, kind: str) -> list[tuple[Loc, str]]:
    """Problems with a number held with uncertainty.

    ``kind`` is ``probability`` (a Beta prior), ``positive`` (a Gamma prior) or ``real`` (a
    normal prior).
    """
    m, sd = value.mean, value.sd
    if kind == "probability":
        if not 0 < m < 1:
            return [((*loc, "mean"), f"{what}: the mean of an uncertain probability must be "
                     f"strictly between 0 and 1, got {m}")]  # fmt: skip
        limit = math.sqrt(m * (1 - m))
        if sd >= limit:
            return [
                (
                    (*loc, "sd"),
                    f"{what}: a probability with mean {m:g} cannot have sd {sd:g} (a Beta needs "
                    f"sd below sqrt(mean * (1 - mean)) = {limit:.3g})",
                )
            ]
    elif kind == "positive" and m <= 0:
        return [((*loc, "mean"), f"{what}: the mean must be > 0, got {m}")]
    return []


def _check_params(
    loc: Loc, kind: str, then: Mapping[str, float | Uncertain]
) -> list[tuple[Loc, str]]:
    names = KIND_PARAMS[kind]
    out: list[tuple[Loc, str]] = []
    for key, given in then.items():
        value = mean_of(given)
        if key not in names:
            out.append(
                (
                    (*loc, key),
                    f"unknown parameter '{key}' for a {kind} indicator"
                    f"{did_you_mean(key, names)}; it takes {', '.join(names)}",
                )
            )
        elif isinstance(given, Uncertain):
            if key == "nu":
                out.append(((*loc, key), "nu (the tails' weight) cannot be uncertain"))
            else:
                held = {"p": "probability", "mu": "real"}.get(key, "positive")
                out.extend(check_uncertain((*loc, key), key, given, kind=held))
        elif not math.isfinite(value):
            out.append(((*loc, key), f"{key} must be a finite number, got {value}"))
        elif key in ("sigma", "nu", "rate") and value <= 0:
            out.append(((*loc, key), f"{key} must be > 0, got {value}"))
        elif key == "p" and not 0 <= value <= 1:
            out.append(((*loc, key), f"p must be in [0, 1], got {value}"))
    missing = [n for n in names if n not in then]
    if missing:
        out.append((loc, f"missing parameter {', '.join(missing)} for a {kind} indicator"))
    return out


# ---------------------------------------------------------------------------------------------
# compilation


def parents_first(parents: Mapping[str, Sequence[str]]) -> list[str]:
    """Every name with its parents before it, iteratively (a chain of any length).

    ``parents`` maps each name to its parents; names keep their given order where the parents
    allow it. The graph must have no cycle.
    """
    order: list[str] = []
    done: set[str] = set()
    for root in parents:
        if root in done:
            continue
        stack = [(root, iter(parents[root]))]
        while stack:
            n, ps = stack[-1]
            p = next(ps, None)
            if p is None:
                stack.pop()
                if n not in done:
                    done.add(n)
                    order.append(n)
            elif p not in done:
                stack.append((p, iter(parents[p])))
    return order


def compile_tree(
    spec: ScenarioTree, *, default_id: str = "tree", path: Path | None = None, file_hash: str = ""
) -> Tree:
    """Turn a checked specification into arrays; ``check_tree`` must have found no problem."""
    states = {n: node.states for n, node in spec.nodes.items()}
    steps = (
        Steps(spec.horizon.step, spec.horizon.start, spec.horizon.end)
        if spec.horizon is not None
        else None
    )
    nodes: dict[str, CompiledNode] = {}
    notes: list[Problem] = []
    for name in parents_first({n: node.parents for n, node in spec.nodes.items()}):
        node = spec.nodes[name]
        if node.calendar is not None:
            month_state = {m: node.states.index(s) for s, ms in node.calendar.items() for m in ms}
            calendar = tuple(month_state[m] for m in range(1, 13))
            first = calendar[steps.month(0) - 1] if steps is not None else 0
            nodes[name] = CompiledNode(
                name=name,
                states=tuple(node.states),
                parents=(),
                cpt=np.eye(len(node.states))[first],
                strength=node.strength or spec.strength,
                kind="calendar",
                calendar=calendar,
            )
            continue
        if node.table is not None:
            parsed, _ = parse_table(
                node.table, node.parents, node.states, states, tolerance=SUM_TOLERANCE
            )
            assert parsed is not None
            cpt = _renormalised(parsed, ("nodes", name, "table"), notes)
        else:
            raw = _table(node.probabilities, node.parents, node.states, states)
            cpt = _renormalised(raw, ("nodes", name, "probabilities"), notes)
        transition = None
        if node.dynamic is not None:
            transition = _transition(node, name, cpt, states)
        nodes[name] = CompiledNode(
            name=name,
            states=tuple(node.states),
            parents=tuple(node.parents),
            cpt=cpt,
            strength=node.strength or spec.strength,
            kind="static" if node.dynamic is None else "dynamic",
            transition=transition,
        )
    indicators: dict[str, CompiledIndicator] = {}
    for iid, ind in spec.indicators.items():
        scope = tuple(ind.depends_on)
        cards = tuple(len(states[n]) for n in scope)
        params: dict[str, np.ndarray] = {}
        if ind.kind == "categorical":
            cats = ind.categories or []
            probs = np.zeros((*cards, len(cats)))
            for prow in ind.params:
                idx = tuple(states[n].index(prow.when[n]) for n in scope)
                probs[idx] = [mean_of(prow.then[c]) for c in cats]
            params["probs"] = probs / probs.sum(axis=-1, keepdims=True)
        else:
            for pname in KIND_PARAMS[ind.kind]:
                arr = np.zeros(cards)
                for prow in ind.params:
                    idx = tuple(states[n].index(prow.when[n]) for n in scope)
                    arr[idx] = mean_of(prow.then[pname])
                params[pname] = arr
        indicators[iid] = CompiledIndicator(name=iid, spec=ind, scope=scope, params=params)
    return Tree(
        id=spec.id or default_id,
        path=path,
        file_hash=file_hash,
        spec=spec,
        nodes=nodes,
        indicators=indicators,
        outcomes=dict(spec.outcomes),
        steps=steps,
        notes=tuple(notes),
    )


def _renormalised(table: np.ndarray, loc: Loc, notes: list[Problem]) -> np.ndarray:
    """``table`` with each row divided by its sum, noting rows that did not sum to 1."""
    sums = table.sum(axis=-1, keepdims=True)
    off = np.abs(sums[..., 0] - 1.0)
    worst = float(off.max())
    if worst > EXACT_SUM:
        n = int((off > EXACT_SUM).sum())
        notes.append(
            Problem(
                f"{n} row{'s' if n != 1 else ''} sum{'' if n != 1 else 's'} to 1 only within "
                f"{worst:.2g}: renormalised",
                path=loc,
            )
        )
    return np.asarray(table / sums, dtype=np.float64)


def _table(
    probabilities: Any,
    names: Sequence[str],
    node_states: Sequence[str],
    states: Mapping[str, Sequence[str]],
) -> np.ndarray:
    """A probability table as an array: one axis per name in ``names``, then the node's states.

    Rows are not renormalised here (see :func:`_renormalised`).
    """
    table = np.zeros((*[len(states[p]) for p in names], len(node_states)))
    if isinstance(probabilities, dict):
        table[:] = [probabilities[s] for s in node_states]
    else:
        for row in probabilities:
            idx = tuple(states[p].index(row.when[p]) for p in names)
            table[idx] = [row.then[s] for s in node_states]
    return table


def _transition(
    node: Node, name: str, cpt: np.ndarray, states: Mapping[str, Sequence[str]]
) -> np.ndarray:
    """The transition array, axes ``(state at t, *parents at t+1, state at t+1)``."""
    dyn = node.dynamic
    assert dyn is not None
    if dyn.transitions is not None:
        raw = _table(dyn.transitions, [name, *node.parents], node.states, states)
        return np.asarray(raw / raw.sum(axis=-1, keepdims=True), dtype=np.float64)
    k = len(node.states)
    pers = dyn.persistence
    keep = np.array(
        [pers[s] for s in node.states] if isinstance(pers, dict) else [float(pers or 0.0)] * k
    )
    return persistence_transition(keep, cpt)


def persistence_transition(keep: np.ndarray, cpt: np.ndarray) -> np.ndarray:
    """The transition of a node that keeps state ``h`` with probability ``keep[h]``.

    Otherwise its state is drawn afresh from ``cpt`` (axes ``(*parents, state)``) given the
    parents at the new step. Axes of the result: ``(state at t, *parents at t+1, state at t+1)``.
    """
    k = len(keep)
    keep_b = keep.reshape((k,) + (1,) * (cpt.ndim - 1) + (1,))
    stay = np.eye(k).reshape((k,) + (1,) * (cpt.ndim - 1) + (k,))
    return np.asarray(keep_b * stay + (1.0 - keep_b) * cpt[None, ...], dtype=np.float64)
