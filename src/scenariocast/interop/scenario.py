"""Between a :class:`~.network.Network` and a scenario tree: the YAML text, and what is left out.

A network becomes a tree with nodes only (no outcomes, indicators or sources), each table
written as rows of ``when`` and ``then`` with every number as Python writes it back exactly, so
that a round trip keeps every table bit for bit. A tree becomes a network of its nodes; what a
network cannot hold (outcomes, indicators, sources, rationale, dynamics...) is listed by
:func:`left_out`.
"""

from __future__ import annotations

import json

import numpy as np

from scenariocast.errors import NetworkFileError, Problem
from scenariocast.interop.network import Network, Variable, is_id
from scenariocast.spec.tables import format_table
from scenariocast.spec.tree import Tree


def to_yaml(net: Network, *, tree_id: str, header: str = "", title: str = "") -> str:
    """The scenario file for ``net``: nodes only, every table as a ``table:`` block.

    Every number is written as Python writes it back exactly (``repr``), so that reading the
    file gives the same tables bit for bit.
    """
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    out.append(f"id: {_scalar(tree_id)}")
    if title:
        out.append(f"title: {_scalar(title)}")
    out.append("nodes:")
    for ident in net.order():
        var = net.variables[ident]
        out.append(f"  {_scalar(ident)}:")
        if var.label:
            out.append(f"    label: {_scalar(var.label)}")
        if var.description:
            out.append(f"    description: {_scalar(var.description)}")
        out.append(f"    states: [{', '.join(_scalar(s) for s in var.states)}]")
        if any(var.state_labels):
            pairs = [
                f"{_scalar(s)}: {_scalar(lab)}"
                for s, lab in zip(var.states, var.state_labels, strict=True)
                if lab
            ]
            out.append(f"    state_labels: {{{', '.join(pairs)}}}")
        if var.parents:
            out.append(f"    parents: [{', '.join(_scalar(p) for p in var.parents)}]")
        states = {p: net.variables[p].states for p in var.parents}
        text = format_table(var.table, var.parents, states)
        out.append("    table: |")
        out.extend("      " + line for line in text.splitlines())
    return "\n".join(out) + "\n"


_SPECIAL = {"yes", "no", "true", "false", "on", "off", "null", "y", "n", "~"}


def _scalar(text: str) -> str:
    """``text`` as a YAML scalar: plain when it is an id YAML reads as text, else quoted."""
    if is_id(text) and text.lower() not in _SPECIAL:
        return text
    quoted = json.dumps(text, ensure_ascii=False)
    for ch in ("\u2028", "\u2029", "\x85"):
        quoted = quoted.replace(ch, f"\\u{ord(ch):04x}")
    return quoted


def network_from_tree(tree: Tree) -> Network:
    """The tree's nodes as a network (a dynamic node by its table at the horizon's start).

    Raises
    ------
    NetworkFileError
        If the tree has a calendar node: it has no probability table to write.
    """
    variables: dict[str, Variable] = {}
    for name, node in tree.nodes.items():
        spec = tree.spec.nodes[name]
        if node.kind == "calendar":
            raise NetworkFileError(
                [
                    Problem(
                        f"node '{name}' is set by the calendar: it has no probability table to "
                        "write",
                        file=str(tree.path) if tree.path else None,
                        path=("nodes", name),
                    )
                ]
            )
        labels = spec.state_labels or {}
        variables[name] = Variable(
            id=name,
            states=list(node.states),
            parents=list(node.parents),
            table=np.asarray(node.cpt, dtype=np.float64),
            label=spec.label,
            state_labels=[labels.get(s) for s in node.states],
            description=spec.description.strip(),
        )
    return Network(tree.id, variables)


def left_out(tree: Tree) -> list[str]:
    """What a Bayesian network of the tree's nodes cannot hold, one item each."""
    spec = tree.spec
    out: list[str] = []

    def some(what: str, names: list[str]) -> None:
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            out.append(f"{len(names)} {what}{'s' if len(names) != 1 else ''} ({shown})")

    some("outcome", list(spec.outcomes))
    some("indicator", list(spec.indicators))
    some("source", list(spec.sources))
    some(
        "dynamic node (written as its table at the horizon's first step; its transitions are "
        "left out)",
        [n for n, node in tree.nodes.items() if node.kind == "dynamic"],
    )
    if spec.horizon is not None:
        out.append("the horizon")
    some(
        "rationale of a node or row",
        [
            n
            for n, node in spec.nodes.items()
            if node.rationale
            or any(getattr(r, "rationale", "") for r in (node.probabilities or []))
        ],
    )
    some("node with thresholds", [n for n, node in spec.nodes.items() if node.thresholds])
    some(
        "node strength",
        [n for n, node in spec.nodes.items() if node.strength is not None],
    )
    meta = [k for k in ("title", "description", "author") if getattr(spec, k)]
    if meta:
        out.append("the tree's " + ", ".join(meta))
    return out
