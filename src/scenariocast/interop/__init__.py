"""Networks of other Bayesian-network tools: BIF, XMLBIF, Hugin NET and GeNIe XDSL.

:func:`convert` turns a file of any of these formats, or a scenario tree, into any other,
choosing each format by the file's extension. What the target format cannot hold (a tree's
outcomes, indicators and sources, rationale, labels that do not fit its names...) and what
changed on the way (rows renormalised, names that are not ids) is returned as notes, one line
each, never dropped silently. A file that cannot be read raises
:class:`~scenariocast.errors.NetworkFileError` with one line per problem, each with its line.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scenariocast.errors import NetworkFileError, Problem
from scenariocast.interop.network import DEFAULT_TOLERANCE, Network, finish, make_id

#: Extension -> format.
FORMATS = {
    ".bif": "bif",
    ".xmlbif": "xmlbif",
    ".xml": "xmlbif",
    ".net": "net",
    ".xdsl": "xdsl",
    ".yaml": "yaml",
    ".yml": "yaml",
}
#: Format -> its name in messages.
NAMES = {
    "bif": "BIF",
    "xmlbif": "XMLBIF",
    "net": "Hugin NET",
    "xdsl": "GeNIe XDSL",
    "yaml": "scenario tree",
}
#: The largest network file read (the YAML of a scenario tree has its own limit).
MAX_BYTES = 64 * 1024 * 1024

__all__ = [
    "DEFAULT_TOLERANCE",
    "FORMATS",
    "Conversion",
    "Network",
    "convert",
    "format_of",
    "read_network",
    "write_network",
]


@dataclass(frozen=True)
class Conversion:
    """What :func:`convert` did: the files, their formats, the nodes, and the notes."""

    source: Path
    target: Path
    source_format: str
    target_format: str
    nodes: int
    notes: tuple[str, ...]


def format_of(path: str | os.PathLike[str]) -> str:
    """The format of a file, by its extension.

    Raises
    ------
    NetworkFileError
        For an extension no format has.
    """
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise NetworkFileError(
            [
                Problem(
                    f"unknown format '{p.suffix or '(no extension)'}'; known: {known}", file=str(p)
                )
            ]
        )
    return fmt


def _read_bytes(path: Path) -> bytes:
    file = str(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise NetworkFileError([Problem("no such file", file=file)]) from None
    except OSError as exc:
        raise NetworkFileError(
            [Problem(f"cannot read: {exc.strerror or exc}", file=file)]
        ) from None
    if len(data) > MAX_BYTES:
        raise NetworkFileError(
            [Problem(f"refused: larger than {MAX_BYTES // 2**20} MiB, the most read", file=file)]
        )
    return data


def _text(data: bytes, file: str) -> str:
    for encoding in ("utf-8", "latin-1"):  # Hugin and old BIF files are often Latin-1
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def read_network(path: str | os.PathLike[str], *, tolerance: float = DEFAULT_TOLERANCE) -> Network:
    """The network in a BIF, XMLBIF, Hugin NET or GeNIe XDSL file (or a scenario tree).

    Rows that sum to 1 within ``tolerance`` are renormalised (with a note in ``notes``).

    Raises
    ------
    NetworkFileError
        With every problem found, each with its line.
    """
    p = Path(path)
    fmt = format_of(p)
    if fmt == "yaml":
        from scenariocast.interop.scenario import network_from_tree
        from scenariocast.spec.load import load_tree

        tree = load_tree(p)
        net = network_from_tree(tree)
        net.notes.extend(str(n) for n in tree.notes)
        return net
    data = _read_bytes(p)
    file = str(p)
    if fmt == "bif":
        from scenariocast.interop import bif

        raw = bif.read(_text(data, file), file)
    elif fmt == "net":
        from scenariocast.interop import net as hugin

        raw = hugin.read(_text(data, file), file)
    elif fmt == "xmlbif":
        from scenariocast.interop import xmlbif

        raw = xmlbif.read(data, file)
    else:
        from scenariocast.interop import xdsl

        raw = xdsl.read(data, file)
    return finish(raw, tolerance=tolerance)


def network_text(net: Network, fmt: str, *, tree_id: str, header: str = "") -> str:
    """``net`` as the text of a file in format ``fmt``."""
    if fmt == "yaml":
        from scenariocast.interop.scenario import to_yaml

        return to_yaml(net, tree_id=tree_id, header=header)
    if fmt == "bif":
        from scenariocast.interop import bif

        return bif.write(net)
    if fmt == "net":
        from scenariocast.interop import net as hugin

        return hugin.write(net)
    if fmt == "xmlbif":
        from scenariocast.interop import xmlbif

        return xmlbif.write(net)
    from scenariocast.interop import xdsl

    return xdsl.write(net)


def write_network(
    net: Network, path: str | os.PathLike[str], *, tree_id: str | None = None
) -> None:
    """Write ``net`` to ``path`` in the format of its extension, whole or not at all."""
    p = Path(path)
    fmt = format_of(p)
    text = network_text(net, fmt, tree_id=tree_id or make_id(p.stem, "t"))
    _write_atomically(p, text)


def _write_atomically(path: Path, text: str) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    except OSError as exc:
        raise NetworkFileError(
            [Problem(f"cannot write: {exc.strerror or exc}", file=str(path))]
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise NetworkFileError(
            [Problem(f"cannot write: {exc.strerror or exc}", file=str(path))]
        ) from None


def convert(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Conversion:
    """Convert ``source`` to ``target``, each in the format of its extension.

    Nothing is written when the source cannot be read. The notes list what the target format
    cannot hold and what changed on the way (checked by reading the written text back).

    Raises
    ------
    NetworkFileError
        For a source that cannot be read, with one line per problem.
    SpecError
        For a scenario tree that does not validate.
    """
    src, dst = Path(source), Path(target)
    src_fmt, dst_fmt = format_of(src), format_of(dst)
    notes: list[str] = []
    if src_fmt == "yaml":
        from scenariocast.interop.scenario import left_out, network_from_tree
        from scenariocast.spec.load import load_tree

        tree = load_tree(src)
        net = network_from_tree(tree)
        notes += [str(n) for n in tree.notes]
        if dst_fmt != "yaml":
            lost = left_out(tree)
            if lost:
                notes.append(
                    f"{NAMES[dst_fmt]} cannot hold, so {dst.name} leaves out: " + "; ".join(lost)
                )
    else:
        net = read_network(src, tolerance=tolerance)
        notes += net.notes
    tree_id = make_id(dst.stem, "t")
    header = f"Converted by scenariocast from {src.name} ({NAMES[src_fmt]})."
    text = network_text(net, dst_fmt, tree_id=tree_id, header=header)
    notes += _read_back(net, text, dst_fmt, str(dst))
    _write_atomically(dst, text)
    return Conversion(src, dst, src_fmt, dst_fmt, len(net.variables), tuple(notes))


def _read_back(net: Network, text: str, fmt: str, file: str) -> list[str]:
    """What the written text loses: read it back and compare ids, labels and tables."""
    if fmt == "yaml":
        from scenariocast.interop.scenario import network_from_tree
        from scenariocast.spec.load import parse_tree

        back = network_from_tree(parse_tree(text, file=file))
    else:
        from scenariocast.interop import bif, xdsl, xmlbif
        from scenariocast.interop import net as hugin

        readers = {"bif": bif.read, "net": hugin.read}
        raw = (
            readers[fmt](text, file)
            if fmt in readers
            else {"xmlbif": xmlbif.read, "xdsl": xdsl.read}[fmt](text.encode(), file)
        )
        back = finish(raw, tolerance=1e-9)
    name = NAMES[fmt]
    ids_changed: list[str] = []
    labels_lost: list[str] = []
    states_changed: list[str] = []
    state_labels_lost: list[str] = []
    descriptions: list[str] = []
    written = [net.variables[i] for i in net.order()]  # every writer writes in this order
    for a, b in zip(written, [back.variables[i] for i in back.order()], strict=True):
        if a.id != b.id:
            ids_changed.append(f"{a.id} -> {b.id}")
        if a.label and a.label != b.label:
            labels_lost.append(a.id)
        if a.states != b.states:
            states_changed.append(a.id)
        if any(x and x != y for x, y in zip(a.state_labels, b.state_labels, strict=True)):
            state_labels_lost.append(a.id)
        if a.description and a.description != b.description:
            descriptions.append(a.id)
        if a.table.shape != b.table.shape or not np.allclose(a.table, b.table, rtol=0, atol=1e-12):
            raise AssertionError(f"the table of {a.id} changed on the way to {name}")  # a bug
    out: list[str] = []

    def some(what: str, items: list[str]) -> None:
        if items:
            shown = ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
            out.append(f"{name} {what}: {shown}")

    some("names nodes differently, so their ids change when read back", ids_changed)
    some("cannot hold the labels of these nodes", labels_lost)
    some(
        "names states differently, so these nodes' state ids change when read back", states_changed
    )
    some("cannot hold the state labels of these nodes", state_labels_lost)
    some("cannot hold the descriptions of these nodes", descriptions)
    return out
