"""A node's probability table written as text (``table:``), one row per line.

For a large table (a network converted from another tool has nodes with thousands of rows)
the rows of ``when`` and ``then`` are slow to read and to scan by eye. ``table`` holds the same
numbers as a block of text: each line names the parents' states, in ``parents`` order, then a
colon and one probability per state, in ``states`` order::

    parents: [weather, imports]
    table: |
      good normal: 0.9 0.1
      good low:    0.7 0.3
      poor normal: 0.5 0.5
      poor low:    0.15 0.85

A node without parents has one line of numbers (no colon). Blank lines and ``#`` comments are
ignored. Every combination of the parents' states must have exactly one line; their order does
not matter. Reading it costs one split per line, so a tree of any size loads in time
proportional to its size.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
#: (the line's index in the text, 0 for the first line; the message)
TableProblem = tuple[int | None, str]


def parse_table(
    text: str,
    parents: Sequence[str],
    node_states: Sequence[str],
    states: Mapping[str, Sequence[str]],
    *,
    tolerance: float,
    limit: int = 20,
) -> tuple[FloatArray | None, list[TableProblem]]:
    """The table as an array (axes: each parent, then the node's states), or its problems.

    Each row must sum to 1 within ``tolerance``; rows are not renormalised here.
    """
    problems: list[TableProblem] = []
    index = [{s: i for i, s in enumerate(states[p])} for p in parents]
    k = len(node_states)
    cards = [len(states[p]) for p in parents]
    table = np.full((*cards, k), np.nan)
    seen: dict[tuple[int, ...], int] = {}
    for i, raw in enumerate(text.split("\n")):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if len(problems) >= limit:
            break
        if parents:
            head, colon, numbers = line.partition(":")
            if not colon:
                problems.append((i, "a row names the parents' states, then ':' and the numbers"))
                continue
            names = head.split()
            if len(names) != len(parents):
                problems.append(
                    (
                        i,
                        f"names {len(names)} state{'s' if len(names) != 1 else ''} for "
                        f"{len(parents)} parents ({', '.join(parents)})",
                    )
                )
                continue
            combo: list[int] = []
            for p, name, where in zip(parents, names, index, strict=True):
                j = where.get(name)
                if j is None:
                    from scenariocast.errors import did_you_mean

                    problems.append(
                        (i, f"node '{p}' has no state '{name}'{did_you_mean(name, where)}")
                    )
                    break
                combo.append(j)
            else:
                key = tuple(combo)
                if key in seen:
                    problems.append(
                        (i, f"repeats the combination of line {seen[key] + 1} of the table")
                    )
                    continue
                seen[key] = i
                row = _numbers(numbers, k, i, problems, tolerance)
                if row is not None:
                    table[key] = row
        else:
            if seen:
                problems.append((i, "a node without parents has one line of numbers"))
                continue
            seen[()] = i
            row = _numbers(line, k, i, problems, tolerance)
            if row is not None:
                table[()] = row
    if problems:
        return None, problems
    missing = [c for c in itertools.product(*(range(c) for c in cards)) if c not in seen]
    if missing:
        shown = "; ".join(
            ", ".join(f"{p}={states[p][j]}" for p, j in zip(parents, c, strict=True))
            for c in missing[:4]
        )
        more = f"; and {len(missing) - 4} more" if len(missing) > 4 else ""
        return None, [(None, f"no row for {shown or 'the node'}{more}")]
    return table, []


def _numbers(
    text: str, k: int, i: int, problems: list[TableProblem], tolerance: float
) -> list[float] | None:
    parts = text.replace(",", " ").split()
    if len(parts) != k:
        problems.append((i, f"has {len(parts)} numbers for {k} states"))
        return None
    try:
        row = [float(x) for x in parts]
    except ValueError:
        bad = next(x for x in parts if not _is_float(x))
        problems.append((i, f"'{bad}' is not a number"))
        return None
    for x in row:
        if not (0.0 <= x <= 1.0):
            problems.append((i, f"probability {x:g} is not in [0, 1]"))
            return None
    total = math.fsum(row)
    if abs(total - 1.0) > tolerance:
        problems.append((i, f"probabilities sum to {total:.6g}, not 1"))
        return None
    return row


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_table(
    table: FloatArray, parents: Sequence[str], states: Mapping[str, Sequence[str]]
) -> str:
    """``table`` as the text of a ``table:`` block (every number written back exactly)."""
    k = table.shape[-1]
    flat = np.asarray(table, dtype=np.float64).reshape(-1, k)
    if not parents:
        return " ".join(repr(float(x)) for x in flat[0]) + "\n"
    combos = itertools.product(*(states[p] for p in parents))
    heads = [" ".join(c) for c in combos]
    width = max(len(h) for h in heads)
    return "".join(
        f"{(h + ':').ljust(width + 1)} {' '.join(repr(float(x)) for x in row)}\n"
        for h, row in zip(heads, flat, strict=True)
    )
