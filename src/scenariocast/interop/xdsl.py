"""GeNIe's XDSL (``.xdsl``), the XML format of GeNIe and SMILE.

``<smile><nodes>`` holds a ``<cpt id="...">`` per chance node: its ``<state id="..."/>``s,
``<parents>`` (ids separated by spaces) and ``<probabilities>``, the parents' combinations in
order (the last parent fastest) with the node's states fastest of all. A ``<deterministic>``
node (``<resultingstates>``, one state per combination) is read as a table of ones and zeros.
Node labels are the ``<name>`` of the node in ``<extensions><genie>``; positions and colours
there are left out. Other node types (noisy-MAX, equations, decisions, utilities) are refused
with their line. Ids are letters, digits and ``_``, starting with a letter.
"""

from __future__ import annotations

import re

from scenariocast.interop.network import Network, RawNetwork, RawVariable, slot_names
from scenariocast.interop.xml import child, children, local, parse_xml, pretty, text_of

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def read(data: bytes, file: str) -> RawNetwork:
    """The network in XDSL ``data`` (problems recorded, not raised)."""
    raw = RawNetwork(file)
    root, problem = parse_xml(data, file)
    if problem is not None:
        raw.problems.append(problem)
        return raw
    nodes = child(root, "nodes")
    if local(root.tag) != "smile" or nodes is None:
        raw.problem("not a GeNIe XDSL file: no <smile><nodes>", root.sourceline)
        return raw
    raw.name = root.get("id")
    for el in nodes:
        kind = local(el.tag)
        ident = el.get("id") or ""
        if kind not in ("cpt", "deterministic"):
            raw.problem(
                f"'{ident}' is a {kind} node: only cpt and deterministic nodes can be read",
                el.sourceline,
            )
            continue
        states = [s.get("id") or "" for s in children(el, "state")]
        var = RawVariable(ident, states, el.sourceline)
        parents = child(el, "parents")
        if parents is not None:
            var.parents = text_of(parents).split()
            var.parent_lines = [parents.sourceline] * len(var.parents)
        if kind == "cpt":
            probs = child(el, "probabilities")
            if probs is not None:
                var.has_table = True
                var.table_line = probs.sourceline
                words = text_of(probs).split()
                try:
                    var.flat = [float(w) for w in words]
                except ValueError:
                    bad = next(w for w in words if not _is_number(w))
                    raw.problem(f"the probabilities of '{ident}' hold '{bad}'", probs.sourceline)
                    var.has_table = False
        else:
            result = child(el, "resultingstates")
            if result is not None:
                var.has_table = True
                var.table_line = result.sourceline
                flat: list[float] = []
                for s in text_of(result).split():
                    if s not in states:
                        raw.problem(f"'{ident}' has no state '{s}'", result.sourceline)
                        var.has_table = False
                        break
                    flat += [1.0 if s == t else 0.0 for t in states]
                var.flat = flat
        raw.add(var)
    extensions = child(root, "extensions")
    genie = child(extensions, "genie") if extensions is not None else None
    positions = 0
    if genie is not None:
        for el in children(genie, "node"):
            known = raw.variables.get(el.get("id") or "")
            if known is None:
                continue
            var = known
            name = text_of(child(el, "name"))
            if name:
                var.label = name
            comment = text_of(child(el, "comment"))
            if comment:
                var.description = comment
            positions += child(el, "position") is not None
    if positions:
        raw.dropped.append(f"the positions and colours of {positions} nodes are not kept")
    return raw


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _ident(text: str) -> str:
    out = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return out if out[:1].isalpha() else "n" + out


def write(net: Network) -> str:
    """``net`` as XDSL: ids as GeNIe ids, labels as node names, a simple layout."""
    from lxml import etree

    ids = list(net.variables)
    names = dict(
        zip(
            ids,
            slot_names(ids, [None] * len(ids), lambda s: bool(_ID.match(s)), _ident),
            strict=True,
        )
    )
    root = etree.Element(
        "smile",
        version="1.0",
        id=_ident(net.name or "network"),
        numsamples="10000",
        discsamples="10000",
    )
    nodes = etree.SubElement(root, "nodes")
    order = net.order()
    for ident in order:
        var = net.variables[ident]
        el = etree.SubElement(nodes, "cpt", id=names[ident])
        for state in slot_names(var.states, var.state_labels, lambda s: bool(_ID.match(s)), _ident):
            etree.SubElement(el, "state", id=state)
        if var.parents:
            etree.SubElement(el, "parents").text = " ".join(names[p] for p in var.parents)
        etree.SubElement(el, "probabilities").text = " ".join(
            repr(float(x)) for x in var.table.reshape(-1)
        )
    extensions = etree.SubElement(root, "extensions")
    genie = etree.SubElement(
        extensions, "genie", version="1.0", app="scenariocast", name=net.name or "network"
    )
    for k, ident in enumerate(order):
        var = net.variables[ident]
        el = etree.SubElement(genie, "node", id=names[ident])
        etree.SubElement(el, "name").text = var.shown
        etree.SubElement(el, "interior", color="e5f6f7")
        etree.SubElement(el, "outline", color="000080")
        etree.SubElement(el, "font", color="000000", name="Arial", size="8")
        x, y = 40 + 160 * (k % 8), 40 + 100 * (k // 8)
        etree.SubElement(el, "position").text = f"{x} {y} {x + 120} {y + 50}"
    return pretty(root)
