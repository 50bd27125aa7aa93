"""Reading XML safely with lxml: no entities expanded, no network, no DTD; lines kept.

A syntax error (a file cut short, a tag left open) is one problem with its line.
"""

from __future__ import annotations

import re
from typing import Any

from scenariocast.errors import Problem

#: The largest XML file read, in bytes (water, the largest network shipped, is 0.3 MB as XML).
MAX_XML_BYTES = 64 * 1024 * 1024


def parse_xml(data: bytes, file: str) -> tuple[Any, Problem | None]:
    """The root element of ``data``, or ``None`` and the problem."""
    from lxml import etree

    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        message = re.sub(r"(,? line \d+)*(, column \d+)?$", "", str(exc.msg or exc).strip())
        text = data.rstrip()
        last_line = text.count(b"\n") + 1
        # an error on the last line of a file that does not end with its root's closing tag is
        # a file cut short, whatever the parser calls it
        cut = (exc.lineno or 0) >= last_line and not text.endswith(b">")
        if cut or "Premature end" in message or "EndTag" in message or "end of data" in message:
            message = f"the file ends too early (cut short?): {message}"
        else:
            message = f"not well-formed XML: {message}"
        return None, Problem(message, file=file, line=exc.lineno or None)
    return root, None


def text_of(element: Any) -> str:
    """The element's text, stripped ("" when it has none)."""
    return str(element.text or "").strip() if element is not None else ""


def local(tag: Any) -> str:
    """The tag without its namespace."""
    return str(tag).rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def children(element: Any, name: str) -> list[Any]:
    """The element's children called ``name`` (any namespace, any case)."""
    want = name.lower()
    return [c for c in element if local(c.tag).lower() == want]


def child(element: Any, name: str) -> Any:
    """The first child called ``name``, or ``None``."""
    found = children(element, name)
    return found[0] if found else None


def pretty(root: Any) -> str:
    """The XML document of ``root``, indented, with its declaration."""
    from lxml import etree

    etree.indent(root, space="  ")
    body = str(etree.tostring(root, encoding="unicode"))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
