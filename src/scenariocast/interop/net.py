"""Hugin's NET format (``.net``), also read and written by GeNIe, Netica, pgmpy and bnlearn.

Read with a Lark grammar. ``node NAME { label = "..."; states = ("a" "b"); }`` (or
``discrete node``) declares a variable; ``potential (CHILD | P1 P2) { data = (...); }`` its
table, nested by the parents' states (the last parent innermost) with the child's states
innermost of all. Other attributes (positions, Hugin's own) are read and left out, reported.
Continuous, decision and utility nodes, and tables given by expressions (``model_nodes``), are
refused with their line.
"""

from __future__ import annotations

import re
from typing import Any

from scenariocast.interop.grammar import parse
from scenariocast.interop.network import Network, RawNetwork, RawVariable, slot_names

GRAMMAR = r"""
start: item*
?item: net | node | potential
net: "net" "{" attr* "}"
node: KIND* "node" NAME "{" attr* "}"
    | OTHER NAME "{" attr* "}" -> other
potential: "potential" "(" NAME* given? ")" "{" attr* "}"
given: "|" NAME*
attr: NAME "=" value ";"
?value: STRING | NUMBER | list | NAME
list: "(" value* ")"
KIND.2: "discrete" | "continuous"
OTHER.2: "decision" | "utility" | "function" | "class"
NAME: /[A-Za-z_][A-Za-z0-9_.]*/
STRING: /"(\\.|[^"\\])*"/
NUMBER: /[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/
COMMENT: /%[^\n]*/
%import common.WS
%ignore WS
%ignore COMMENT
"""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _string(tok: Any) -> str:
    return str(tok)[1:-1].replace('\\"', '"').replace("\\\\", "\\")


def _flat(value: Any, out: list[Any]) -> None:
    if hasattr(value, "data"):
        for c in value.children:
            _flat(c, out)
    else:
        out.append(value)


def read(text: str, file: str) -> RawNetwork:
    """The network in Hugin NET ``text`` (problems recorded, not raised)."""
    raw = RawNetwork(file)
    tree, problem = parse(GRAMMAR, text, file)
    if problem is not None:
        raw.problems.append(problem)
        return raw
    dropped: dict[str, int] = {}
    potentials: list[Any] = []
    for item in tree.children:
        if item.data == "net":
            for attr in item.children:
                key, value = attr.children
                if str(key) == "name" and getattr(value, "type", "") == "STRING":
                    raw.name = _string(value)
        elif item.data == "other":
            kind, name = item.children[0], item.children[1]
            raw.problem(
                f"'{name}' is a {kind} node: only discrete chance nodes can be read", name.line
            )
        elif item.data == "node":
            kinds = [str(c) for c in item.children if getattr(c, "type", "") == "KIND"]
            name_tok = next(c for c in item.children if getattr(c, "type", "") == "NAME")
            if "continuous" in kinds:
                raw.problem(
                    f"'{name_tok}' is a continuous node: only discrete nodes can be read",
                    name_tok.line,
                )
                continue
            var = RawVariable(str(name_tok), [], name_tok.line)
            has_states = False
            for attr in item.children[len(kinds) + 1 :]:
                key, value = attr.children
                if str(key) == "states":
                    has_states = True
                    values: list[Any] = []
                    _flat(value, values)
                    if any(getattr(v, "type", "") != "STRING" for v in values):
                        raw.problem(f"the states of '{name_tok}' must be quoted", key.line)
                    var.states = [_string(v) for v in values]
                elif str(key) == "label" and getattr(value, "type", "") == "STRING":
                    var.label = _string(value) or None
                else:
                    dropped[str(key)] = dropped.get(str(key), 0) + 1
            if not has_states:
                raw.problem(f"node '{name_tok}' has no states", name_tok.line)
            raw.add(var)
        else:
            potentials.append(item)
    for item in potentials:
        heads = [c for c in item.children if getattr(c, "type", "") == "NAME"]
        given = next((c for c in item.children if getattr(c, "data", "") == "given"), None)
        attrs = [c for c in item.children if getattr(c, "data", "") == "attr"]
        line = heads[0].line if heads else None
        if len(heads) != 1:
            raw.problem("a potential must be of exactly one node (potential (A | B C))", line)
            continue
        child = str(heads[0])
        found = raw.variables.get(child)
        if found is None:
            raw.unknown_table("a potential for an unknown node", child, line)
            continue
        var = found
        if var.has_table:
            raw.problem(
                f"'{child}' has a second potential (the first at line {var.table_line})", line
            )
            continue
        var.has_table = True
        var.table_line = line
        if given is not None:
            var.parents = [str(p) for p in given.children]
            var.parent_lines = [p.line for p in given.children]
        data = None
        for attr in attrs:
            key, value = attr.children
            if str(key) == "data":
                data = value
                var.table_line = key.line
            elif str(key) in ("model_nodes", "model_data"):
                raw.problem(
                    f"the potential of '{child}' is given by expressions ({key}): give it as data",
                    key.line,
                )
        if data is None:
            raw.problem(f"the potential of '{child}' has no data", line)
            continue
        numbers: list[Any] = []
        _flat(data, numbers)
        try:
            var.flat = [float(n) for n in numbers]
        except ValueError:
            bad = next(n for n in numbers if not _is_number(n))
            raw.problem(f"the data of '{child}' holds '{bad}', not a number", var.table_line)
    if dropped:
        shown = ", ".join(f"{k} ({n})" for k, n in sorted(dropped.items())[:6])
        raw.dropped.append(f"node attributes not kept: {shown}")
    return raw


def _is_number(tok: Any) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ident(text: str) -> str:
    out = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return out if out[:1].isalpha() or out[:1] == "_" else "n_" + out


def write(net: Network) -> str:
    """``net`` as Hugin NET text: names as identifiers, labels and state names as text."""
    ids = list(net.variables)
    names = dict(
        zip(
            ids,
            slot_names(ids, [None] * len(ids), lambda s: bool(_NAME.match(s)), _ident),
            strict=True,
        )
    )
    out = ["net", "{", "}"]
    order = net.order()
    for ident in order:
        var = net.variables[ident]
        states = slot_names(var.states, var.state_labels, lambda s: True)
        out.append(f"node {names[ident]}")
        out.append("{")
        out.append(f"    label = {_quote(var.shown)};")
        out.append(f"    states = ({' '.join(_quote(s) for s in states)});")
        out.append("}")
    for ident in order:
        var = net.variables[ident]
        given = " | " + " ".join(names[p] for p in var.parents) if var.parents else ""
        out.append(f"potential ({names[ident]}{given})")
        out.append("{")
        out.append(f"    data = {_nested(var.table)};")
        out.append("}")
    return "\n".join(out) + "\n"


def _nested(table: Any) -> str:
    if table.ndim == 1:
        return "(" + " ".join(repr(float(x)) for x in table) + ")"
    return "(" + " ".join(_nested(t) for t in table) + ")"
