"""BIF, the Bayesian Interchange Format (``.bif``) of JavaBayes, bnlearn's repository and pgmpy.

Read with a Lark grammar. A variable is ``variable NAME { type discrete [ N ] { s1, s2 }; }``;
its table ``probability ( CHILD | P1, P2 ) { (p1, p2) 0.1, 0.9; ... }`` (one row per
combination of the parents' states; ``default`` for the rows not given) or ``{ table ...; }``,
whose numbers run over the child's states slowest, then each parent, the last fastest.
Properties are read and left out (reported). Names are words: anything but white space and
``,;{}()[]|"``.
"""

from __future__ import annotations

import re
from typing import Any

from scenariocast.interop.grammar import parse
from scenariocast.interop.network import Network, RawNetwork, RawRow, RawVariable, slot_names

GRAMMAR = r"""
start: item*
?item: network | variable | probability
network: "network" name "{" prop* "}"
variable: "variable" name "{" vpart* "}"
?vpart: vtype | prop
vtype: "type" "discrete" "[" INT "]" "{" [name ("," name)*] "}" ";"
probability: "probability" "(" name given? ")" "{" pentry* "}"
given: "|" name (","? name)*
?pentry: table | default | row | prop
table: "table" numbers ";"
default: "default" numbers ";"
row: "(" name (","? name)* ")" numbers ";"
numbers: NUMBER (","? NUMBER)*
prop: PROPERTY
name: WORD | ESCAPED_STRING
PROPERTY: /property\b[^;]*;/
WORD: /[^\s,;{}()\[\]|"]+/
NUMBER: /[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/
INT: /\d+/
COMMENT: /\/\/[^\n]*/
BLOCK_COMMENT: /\/\*(.|\n)*?\*\//
%import common.ESCAPED_STRING
%import common.WS
%ignore WS
%ignore COMMENT
%ignore BLOCK_COMMENT
"""

_WORD = re.compile(r'^[^\s,;{}()\[\]|"]+$')
_KEYWORDS = {"network", "variable", "probability", "property", "table", "default", "type"}


def _name(tree: Any) -> tuple[str, int]:
    tok = tree.children[0]
    text = str(tok)
    if tok.type == "ESCAPED_STRING":
        text = text[1:-1].replace('\\"', '"')
    return text, tok.line


def _numbers(tree: Any) -> list[float]:
    return [float(tok) for tok in tree.children]


def read(text: str, file: str) -> RawNetwork:
    """The network in BIF ``text`` (problems recorded, not raised)."""
    raw = RawNetwork(file)
    tree, problem = parse(GRAMMAR, text, file)
    if problem is not None:
        raw.problems.append(problem)
        return raw
    properties = 0
    tables: list[Any] = []
    for item in tree.children:
        if item.data == "network":
            raw.name = _name(item.children[0])[0]
            properties += len(item.children) - 1
        elif item.data == "variable":
            name, line = _name(item.children[0])
            var = RawVariable(name, [], line)
            kinds = 0
            for part in item.children[1:]:
                if part.data == "vtype":
                    kinds += 1
                    var.declared = int(part.children[0])
                    var.states = [_name(c)[0] for c in part.children[1:] if c is not None]
                else:
                    properties += 1
            if kinds != 1:
                raw.problem(f"variable '{name}' needs one `type discrete [ N ] {{ ... }};`", line)
            raw.add(var)
        else:
            tables.append(item)
    for item in tables:
        child, line = _name(item.children[0])
        found = raw.variables.get(child)
        if found is None:
            raw.unknown_table("a probability table for an unknown variable", child, line)
            continue
        var = found
        if var.has_table:
            raw.problem(
                f"'{child}' has a second probability table (the first at line {var.table_line})",
                line,
            )
            continue
        var.has_table = True
        var.table_line = line
        entries = item.children[1:]
        if entries and entries[0].data == "given":
            for c in entries[0].children:
                p, p_line = _name(c)
                var.parents.append(p)
                var.parent_lines.append(p_line)
            entries = entries[1:]
        for entry in entries:
            if entry.data == "table":
                if var.flat is not None:
                    raw.problem(f"'{child}' has two `table` entries", line)
                var.flat = _numbers(entry.children[0])
                var.child_first = True
            elif entry.data == "default":
                var.rows.append(RawRow(None, _numbers(entry.children[0]), line))
            elif entry.data == "row":
                states = [_name(c) for c in entry.children[:-1]]
                row_line = states[0][1] if states else line
                values = _numbers(entry.children[-1])
                var.rows.append(RawRow(tuple(s for s, _ in states), values, row_line))
            else:
                properties += 1
        if var.flat is not None and var.rows:
            raw.problem(f"'{child}' mixes `table` with rows", line)
        elif var.flat is None and not var.rows:
            raw.problem(f"the probability table of '{child}' is empty", line)
    if properties:
        raw.dropped.append(f"{properties} BIF properties (free text) are not kept")
    return raw


def _fits(text: str) -> bool:
    return bool(_WORD.match(text)) and text not in _KEYWORDS


def _word(text: str) -> str:
    return text if _fits(text) else '"' + text.replace('"', "'") + '"'


def write(net: Network) -> str:
    """``net`` as BIF text: a row per combination of the parents' states, a `table` for roots."""
    order = net.order()
    ids = list(net.variables)
    labels = [net.variables[i].label for i in ids]
    names = dict(zip(ids, slot_names(ids, labels, _fits), strict=True))
    out = [f"network {_word(net.name or 'unknown')} {{", "}"]
    state_names: dict[str, list[str]] = {}
    for ident in order:
        var = net.variables[ident]
        states = slot_names(var.states, var.state_labels, _fits)
        state_names[ident] = states
        out += [
            f"variable {names[ident]} {{",
            f"  type discrete [ {len(states)} ] {{ {', '.join(states)} }};",
            "}",
        ]
    for ident in order:
        var = net.variables[ident]
        if not var.parents:
            out.append(f"probability ( {names[ident]} ) {{")
            out.append("  table " + ", ".join(repr(float(x)) for x in var.table) + ";")
            out.append("}")
            continue
        parents = ", ".join(names[p] for p in var.parents)
        out.append(f"probability ( {names[ident]} | {parents} ) {{")
        flat = var.table.reshape(-1, var.table.shape[-1])
        combos = _combos([state_names[p] for p in var.parents])
        for combo, row in zip(combos, flat, strict=True):
            values = ", ".join(repr(float(x)) for x in row)
            out.append(f"  ({', '.join(combo)}) {values};")
        out.append("}")
    return "\n".join(out) + "\n"


def _combos(states: list[list[str]]) -> list[tuple[str, ...]]:
    import itertools

    return list(itertools.product(*states))
