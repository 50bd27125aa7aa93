"""XMLBIF 0.3 (``.xml``, ``.xmlbif``), the XML interchange format of JavaBayes, Weka and pgmpy.

``<VARIABLE TYPE="nature">`` names a variable and its ``<OUTCOME>``s; ``<DEFINITION>`` gives
its table: ``<FOR>`` the variable, ``<GIVEN>`` each parent, ``<TABLE>`` the numbers, the
parents' combinations in order (the last parent fastest) and the variable's states fastest of
all. Names and outcomes are any text, so labels are written there. ``<PROPERTY>`` elements are
read and left out (reported). Read with lxml, safely (see :mod:`.xml`).
"""

from __future__ import annotations

from scenariocast.interop.network import Network, RawNetwork, RawVariable, slot_names
from scenariocast.interop.xml import child, children, local, parse_xml, pretty, text_of


def read(data: bytes, file: str) -> RawNetwork:
    """The network in XMLBIF ``data`` (problems recorded, not raised)."""
    raw = RawNetwork(file)
    root, problem = parse_xml(data, file)
    if problem is not None:
        raw.problems.append(problem)
        return raw
    network = root if local(root.tag).upper() == "NETWORK" else child(root, "NETWORK")
    if local(root.tag).upper() not in ("BIF", "NETWORK") or network is None:
        raw.problem("not an XMLBIF file: no <BIF><NETWORK>", root.sourceline)
        return raw
    raw.name = text_of(child(network, "NAME")) or None
    properties = len(children(network, "PROPERTY"))
    for el in children(network, "VARIABLE"):
        name_el = child(el, "NAME")
        name = text_of(name_el)
        if not name:
            raw.problem("a <VARIABLE> without a <NAME>", el.sourceline)
            continue
        kind = (el.get("TYPE") or "nature").lower()
        if kind != "nature":
            raw.problem(
                f"'{name}' is a {kind} variable: only chance (nature) variables can be read",
                el.sourceline,
            )
            continue
        var = RawVariable(name, [text_of(o) for o in children(el, "OUTCOME")], el.sourceline)
        properties += len(children(el, "PROPERTY"))
        raw.add(var)
    for el in [*children(network, "DEFINITION"), *children(network, "PROBABILITY")]:
        target = text_of(child(el, "FOR"))
        found = raw.variables.get(target)
        if found is None:
            raw.unknown_table("a <DEFINITION> for an unknown variable", target, el.sourceline)
            continue
        var = found
        if var.has_table:
            raw.problem(
                f"'{target}' has a second <DEFINITION> (the first at line {var.table_line})",
                el.sourceline,
            )
            continue
        var.has_table = True
        var.table_line = el.sourceline
        for given in children(el, "GIVEN"):
            var.parents.append(text_of(given))
            var.parent_lines.append(given.sourceline)
        table = child(el, "TABLE")
        if table is None:
            raw.problem(f"the <DEFINITION> of '{target}' has no <TABLE>", el.sourceline)
            continue
        var.table_line = table.sourceline
        words = (table.text or "").split()
        try:
            var.flat = [float(w) for w in words]
        except ValueError:
            bad = next(w for w in words if not _is_number(w))
            raw.problem(f"the <TABLE> of '{target}' holds '{bad}', not a number", table.sourceline)
    if properties:
        raw.dropped.append(f"{properties} XMLBIF <PROPERTY> elements (free text) are not kept")
    return raw


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write(net: Network) -> str:
    """``net`` as XMLBIF 0.3: labels as names and outcomes where they are unique."""
    from lxml import etree

    ids = list(net.variables)
    names = dict(
        zip(ids, slot_names(ids, [net.variables[i].label for i in ids], _fits), strict=True)
    )
    root = etree.Element("BIF", VERSION="0.3")
    network = etree.SubElement(root, "NETWORK")
    etree.SubElement(network, "NAME").text = net.name or "network"
    order = net.order()
    for ident in order:
        var = net.variables[ident]
        el = etree.SubElement(network, "VARIABLE", TYPE="nature")
        etree.SubElement(el, "NAME").text = names[ident]
        for state in slot_names(var.states, var.state_labels, _fits):
            etree.SubElement(el, "OUTCOME").text = state
    for ident in order:
        var = net.variables[ident]
        el = etree.SubElement(network, "DEFINITION")
        etree.SubElement(el, "FOR").text = names[ident]
        for p in var.parents:
            etree.SubElement(el, "GIVEN").text = names[p]
        etree.SubElement(el, "TABLE").text = " ".join(repr(float(x)) for x in var.table.reshape(-1))
    return pretty(root)


def _fits(text: str) -> bool:
    # names are element text: anything that survives stripping and holds no control character
    return text == text.strip() and bool(text) and all(ord(c) >= 32 for c in text)
