"""A Bayesian network as the other tools hold it, and its checks, between a file and a tree.

Every reader (:mod:`.bif`, :mod:`.xmlbif`, :mod:`.net`, :mod:`.xdsl`) turns a file into a
:class:`RawNetwork`: variables named as the file names them, with the line of everything that
can be wrong. :func:`finish` checks it as a whole (unknown variables, tables of the wrong size,
rows that do not sum to 1, cycles), renormalises rows that sum to 1 only within the tolerance
(saying so, with the largest deviation), and gives every variable and state a scenariocast id,
keeping a name that is not a valid id as its label. The result, a :class:`Network`, is what the
writers take, and what :func:`network_from_tree` makes of a scenario tree.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from scenariocast.errors import NetworkFileError, Problem, did_you_mean
from scenariocast.spec.load import parents_first

FloatArray = NDArray[np.float64]

#: How far a row of a file may sum from 1 and still be read (renormalised, with a note).
DEFAULT_TOLERANCE = 1e-3
#: Rows that sum to 1 within this are taken as they are, without a note (decimal rounding).
EXACT = 1e-12

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
_SYMBOLS = (("<=", "le"), (">=", "ge"), ("<", "lt"), (">", "gt"), ("+", "plus"), ("%", "pct"))
MAX_ID = 80


def is_id(text: str) -> bool:
    """Whether ``text`` is a valid scenariocast id."""
    return bool(_ID.match(text)) and len(text) <= MAX_ID


def make_id(text: str, prefix: str) -> str:
    """A valid id for the name ``text``: itself when it is one, else a readable spelling.

    ``<5`` -> ``lt5``, ``>=7.5`` -> ``ge7_5``, ``12+`` -> ``s12plus``, ``3`` -> ``s3``,
    ``Asy/Patch`` -> ``Asy_Patch`` (``prefix`` starts names that do not start with a letter).
    """
    if is_id(text):
        return text
    out = text.strip()
    for symbol, word in _SYMBOLS:
        out = out.replace(symbol, word)
    out = re.sub(r"[^A-Za-z0-9_\-]+", "_", out).strip("_")
    out = re.sub(r"_{2,}", "_", out)
    if not out or not out[0].isalpha():
        out = prefix + out
    return out[:MAX_ID]


def unique_ids(names: Sequence[str], prefix: str) -> list[str]:
    """:func:`make_id` of each name, with ``_2``, ``_3``... where two would be the same."""
    taken: set[str] = {n for n in names if is_id(n)}
    out: list[str] = []
    for name in names:
        ident = make_id(name, prefix)
        if ident != name:
            base, k = ident, 2
            while ident in taken:
                ident = f"{base[: MAX_ID - len(str(k)) - 1]}_{k}"
                k += 1
            taken.add(ident)
        out.append(ident)
    return out


# ---------------------------------------------------------------------------------------------
# what a reader gives


@dataclass
class RawRow:
    """One row of a table as written: the parents' states (``None``: a default row) and numbers."""

    parents: tuple[str, ...] | None
    values: list[float]
    line: int | None


@dataclass
class RawVariable:
    """A variable as a file names it, with the lines of its parts.

    The table is either ``flat`` (every number, the parents' combinations in order with the
    last parent fastest and the variable's own states fastest of all, unless ``child_first``:
    then the variable's states slowest, as BIF's ``table`` has them) or ``rows``.
    """

    name: str
    states: list[str]
    line: int | None = None
    declared: int | None = None  # a state count the file declares (BIF's [N])
    parents: list[str] = field(default_factory=list)
    parent_lines: list[int | None] = field(default_factory=list)
    flat: list[float] | None = None
    child_first: bool = False
    rows: list[RawRow] = field(default_factory=list)
    table_line: int | None = None
    label: str | None = None
    description: str = ""
    has_table: bool = False
    misnamed: bool = False  # a table names it with a typo (reported there, not again)


@dataclass
class RawNetwork:
    """A file's network before its checks: variables in the order the file defines them."""

    file: str
    name: str | None = None
    variables: dict[str, RawVariable] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # what the file has that trees do not hold

    def problem(self, message: str, line: int | None) -> None:
        """Record a problem at ``line``."""
        self.problems.append(Problem(message, file=self.file, line=line))

    def unknown_table(self, what: str, name: str, line: int | None) -> None:
        """Record a table for an unknown variable, with the closest name as a hint.

        The variable the hint names, if it has no table of its own, is not reported again for
        having none: one typo is one problem.
        """
        close = difflib.get_close_matches(name, list(self.variables), n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        self.problem(f"{what} '{name}'{hint}", line)
        if close:
            self.variables[close[0]].misnamed = True

    def add(self, var: RawVariable) -> None:
        """Add a variable; a second definition of one name is a problem."""
        first = self.variables.get(var.name)
        if first is not None:
            at = f" (first at line {first.line})" if first.line else ""
            self.problem(f"variable '{var.name}' is defined twice{at}", var.line)
            return
        self.variables[var.name] = var


# ---------------------------------------------------------------------------------------------
# what the writers take


@dataclass
class Variable:
    """A node as scenariocast holds it: ids, labels, parents and its table.

    ``table`` has one axis per parent (in ``parents`` order) and a last axis over ``states``.
    """

    id: str
    states: list[str]
    parents: list[str]
    table: FloatArray
    label: str | None = None
    state_labels: list[str | None] = field(default_factory=list)
    description: str = ""

    def __post_init__(self) -> None:
        if not self.state_labels:
            self.state_labels = [None] * len(self.states)

    @property
    def shown(self) -> str:
        """The label, or the id."""
        return self.label or self.id

    def shown_states(self) -> list[str]:
        """Each state's label, or its id."""
        return [lab or s for s, lab in zip(self.states, self.state_labels, strict=True)]


@dataclass
class Network:
    """A Bayesian network between a file and a tree, with notes on what changed on the way."""

    name: str | None
    variables: dict[str, Variable]
    notes: list[str] = field(default_factory=list)

    def order(self) -> list[str]:
        """The variables with parents before children (the file's order where it allows)."""
        return parents_first({n: v.parents for n, v in self.variables.items()})


# ---------------------------------------------------------------------------------------------
# the checks


def _combos(cards: Sequence[int]) -> Iterable[tuple[int, ...]]:
    return itertools.product(*(range(c) for c in cards))


def _row_text(var: RawVariable, net: RawNetwork, combo: tuple[int, ...]) -> str:
    parts = [f"{p}={net.variables[p].states[i]}" for p, i in zip(var.parents, combo, strict=True)]
    return f"({', '.join(parts)})" if parts else ""


def finish(raw: RawNetwork, *, tolerance: float = DEFAULT_TOLERANCE) -> Network:
    """Check ``raw`` as a whole and give it scenariocast ids; raise with every problem found.

    Raises
    ------
    NetworkFileError
        One problem per line: unknown variables, a variable without a table, a table of the
        wrong size, a row naming an unknown state, probabilities outside [0, 1] or rows that do
        not sum to 1 within ``tolerance``, cycles.
    """
    problems = list(raw.problems)

    def problem(message: str, line: int | None) -> None:
        problems.append(Problem(message, file=raw.file, line=line))

    variables = raw.variables
    parents_ok: dict[str, bool] = {}
    for name, var in variables.items():
        if len(var.states) != len(set(var.states)):
            dup = sorted({s for s in var.states if var.states.count(s) > 1})
            problem(f"variable '{name}' lists state '{dup[0]}' twice", var.line)
        if var.declared is not None and var.declared != len(var.states):
            problem(
                f"variable '{name}' declares {var.declared} states but lists {len(var.states)}",
                var.line,
            )
        if len(var.states) < 2:
            problem(
                f"variable '{name}' has {len(var.states)} state; a node needs at least two",
                var.line,
            )
        ok = True
        for i, p in enumerate(var.parents):
            line = var.parent_lines[i] if i < len(var.parent_lines) else var.table_line
            if p not in variables:
                problem(f"'{name}' has an unknown parent '{p}'{did_you_mean(p, variables)}", line)
                ok = False
            elif p == name:
                problem(f"'{name}' is its own parent", line)
                ok = False
            elif var.parents.index(p) != i:
                problem(f"'{name}' lists parent '{p}' twice", line)
                ok = False
        parents_ok[name] = ok
    untabled = [name for name, var in variables.items() if not var.has_table and not var.misnamed]
    if len(untabled) == 1:
        problem(f"variable '{untabled[0]}' has no probability table", variables[untabled[0]].line)
    elif untabled:
        shown = ", ".join(f"'{n}'" for n in untabled[:4])
        more = f" and {len(untabled) - 4} more" if len(untabled) > 4 else ""
        problem(
            f"{len(untabled)} variables have no probability table: {shown}{more} "
            "(is the file cut short?)",
            variables[untabled[0]].line,
        )
    if not problems:
        problems.extend(Problem(msg, file=raw.file, line=line) for msg, line in _cycles(variables))
    tables: dict[str, FloatArray] = {}
    renormalised: list[str] = []
    for name, var in variables.items():
        if not var.has_table or not parents_ok[name] or len(var.states) < 2:
            continue
        if any(len(variables[p].states) < 2 for p in var.parents):
            continue
        table, deviation = _table(raw, var, problem, tolerance)
        if table is not None:
            tables[name] = table
            if deviation is not None:
                renormalised.append(deviation)
    if problems:
        raise NetworkFileError(sorted(problems, key=lambda p: p.line or 0))
    notes = list(raw.dropped)
    if renormalised:
        notes += renormalised
    return _with_ids(raw, tables, notes)


def _table(
    raw: RawNetwork,
    var: RawVariable,
    problem: Callable[[str, int | None], None],
    tolerance: float,
) -> tuple[FloatArray | None, str | None]:
    """The variable's table as an array, or ``None`` after recording its problems."""
    states = raw.variables
    cards = [len(states[p].states) for p in var.parents]
    k = len(var.states)
    n_rows = math.prod(cards)
    shape = (*cards, k)
    table = np.full(shape, np.nan)
    row_line: dict[tuple[int, ...], int | None] = {}
    if var.flat is not None:
        if len(var.flat) != n_rows * k:
            need = (
                f"{k} states x {n_rows} parent combinations need {n_rows * k}"
                if cards
                else f"{k} states need {k}"
            )
            problem(
                f"the table of '{var.name}' has {len(var.flat)} numbers; {need}", var.table_line
            )
            return None, None
        flat = np.asarray(var.flat, dtype=np.float64)
        if var.child_first:
            table = np.moveaxis(flat.reshape((k, *cards)), 0, -1).copy()
        else:
            table = flat.reshape(shape).copy()
        row_line = {c: var.table_line for c in _combos(cards)}
    else:
        default: RawRow | None = None
        broken = False  # a row with a problem is not also reported as missing
        for row in var.rows:
            if len(row.values) != k:
                what = (
                    "the default row" if row.parents is None else f"row ({', '.join(row.parents)})"
                )
                n = len(row.values)
                problem(
                    f"{what} of '{var.name}' has {n} number{'s' if n != 1 else ''} for {k} states",
                    row.line,
                )
                broken = True
                continue
            if row.parents is None:
                default = row
                continue
            if len(row.parents) != len(var.parents):
                problem(
                    f"a row of '{var.name}' names {len(row.parents)} parent states for "
                    f"{len(var.parents)} parents",
                    row.line,
                )
                broken = True
                continue
            combo: list[int] = []
            for p, s in zip(var.parents, row.parents, strict=True):
                if s not in states[p].states:
                    problem(f"a row of '{var.name}': parent '{p}' has no state '{s}'", row.line)
                    broken = True
                    break
                combo.append(states[p].states.index(s))
            else:
                key = tuple(combo)
                if key in row_line:
                    problem(
                        f"row {_row_text(var, raw, key)} of '{var.name}' is given twice "
                        f"(first at line {row_line[key]})",
                        row.line,
                    )
                    continue
                table[key] = row.values
                row_line[key] = row.line
        if broken:
            return None, None
        missing = [c for c in _combos(cards) if c not in row_line]
        if missing and default is not None:
            for c in missing:
                table[c] = default.values
                row_line[c] = default.line
        elif missing:
            shown = "; ".join(_row_text(var, raw, c) for c in missing[:3])
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            problem(f"'{var.name}' has no row for {shown}{more}", var.table_line)
            return None, None
    if np.isnan(table).any():
        return None, None
    bad = (table < 0) | (table > 1) | ~np.isfinite(table)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        problem(
            f"'{var.name}' has a probability {table[at]:g}, outside [0, 1]",
            row_line.get(at[:-1], var.table_line),
        )
        return None, None
    sums = table.sum(axis=-1)
    off = np.abs(sums - 1.0)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(off)), off.shape)) if cards else ()
    worst_off = float(off[worst]) if cards else float(off)
    if worst_off > tolerance:
        total = float(sums[worst]) if cards else float(sums)
        given = _row_text(var, raw, worst)
        problem(
            f"the probabilities of '{var.name}'{' given ' + given if given else ''} sum to "
            f"{total:.6g}, not 1 (more than {tolerance:g} off)",
            row_line.get(worst, var.table_line),
        )
        return None, None
    note = None
    if worst_off > EXACT:
        n_off = int((off > EXACT).sum())
        given = _row_text(var, raw, worst)
        line = row_line.get(worst, var.table_line)
        where = f" at line {line}" if line else ""
        note = (
            f"'{var.name}': {n_off} row{'s' if n_off != 1 else ''} sum to 1 only within "
            f"{worst_off:.2g} (the largest{' given ' + given if given else ''}{where}); "
            "renormalised"
        )
    return table / table.sum(axis=-1, keepdims=True), note


def _cycles(variables: Mapping[str, RawVariable]) -> list[tuple[str, int | None]]:
    color: dict[str, int] = {}
    found: list[tuple[str, int | None]] = []
    for start in variables:
        if start in color:
            continue
        color[start] = 1
        path = [start]
        pending = [iter(variables[start].parents)]
        while pending:
            n = path[-1]
            p = next(pending[-1], None)
            if p is None:
                color[n] = 2
                path.pop()
                pending.pop()
            elif p not in variables:
                continue
            elif color.get(p) == 1:
                cycle = [*path[path.index(p) :], p]
                found.append(("cycle: " + " <- ".join(cycle), variables[n].table_line))
            elif p not in color:
                color[p] = 1
                path.append(p)
                pending.append(iter(variables[p].parents))
    return found


def _with_ids(raw: RawNetwork, tables: Mapping[str, FloatArray], notes: list[str]) -> Network:
    names = list(raw.variables)
    ids = dict(zip(names, unique_ids(names, "n"), strict=True))
    out: dict[str, Variable] = {}
    renamed_nodes = 0
    renamed_states = 0
    for name in names:
        var = raw.variables[name]
        states = unique_ids(var.states, "s")
        labels: list[str | None] = [
            s if s != ident else None for s, ident in zip(var.states, states, strict=True)
        ]
        renamed_states += sum(lab is not None for lab in labels)
        ident = ids[name]
        label = var.label if var.label and var.label != ident else None
        if ident != name and label is None:
            label = name
            renamed_nodes += 1
        out[ident] = Variable(
            id=ident,
            states=states,
            parents=[ids[p] for p in var.parents],
            table=tables[name],
            label=label,
            state_labels=labels,
            description=var.description,
        )
    if renamed_nodes or renamed_states:
        parts = []
        if renamed_nodes:
            parts.append(f"{renamed_nodes} variable name{'s' if renamed_nodes != 1 else ''}")
        if renamed_states:
            parts.append(f"{renamed_states} state name{'s' if renamed_states != 1 else ''}")
        notes.append(
            f"{' and '.join(parts)} are not valid ids (letters, digits, _ and -, starting with a "
            "letter): each has an id made from it and keeps the name as its label"
        )
    return Network(raw.name, out, notes)


# ---------------------------------------------------------------------------------------------
# names in the slots of a format


def slot_names(
    ids: Sequence[str],
    labels: Sequence[str | None],
    fits: Callable[[str], bool],
    fallback: Callable[[str], str] = lambda s: s,
) -> list[str]:
    """What a format writes for each item.

    Its label when the label fits the format's slot and is unique, else its id (through
    ``fallback`` when the id does not fit either).
    """
    out: list[str] = []
    wanted = [lab if lab is not None and fits(lab) else None for lab in labels]
    counts: dict[str, int] = {}
    for w in wanted:
        if w is not None:
            counts[w] = counts.get(w, 0) + 1
    for ident, w in zip(ids, wanted, strict=True):
        if (w is not None and counts[w] == 1 and w not in ids) or w == ident:
            out.append(w)
        else:
            out.append(ident if fits(ident) else fallback(ident))
    taken: set[str] = set()
    for i, name in enumerate(out):
        base, k = name, 2
        while name in taken:
            name = f"{base}_{k}"
            k += 1
        taken.add(name)
        out[i] = name
    return out
