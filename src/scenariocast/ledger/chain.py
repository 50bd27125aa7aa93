"""The hash chain that makes the ledger tamper-evident.

Every entry (a reading, a retraction, a snapshot, a resolution, the retraction of a resolution)
has a place in one sequence, ``entry`` 1, 2, 3, ... across the tables, and a ``hash``: the
sha256 of the previous entry's hash, the table and the entry's content. Changing, deleting or
inserting an entry behind the tool's back breaks the chain from that entry on, and
:func:`first_break` finds where.

The content hashed is every column of the row except ``entry`` and ``hash`` themselves, in the
fixed order of :data:`FIELDS`, then the columns of :data:`OPTIONAL` that are set, as JSON with
dates in ISO form. This definition is part of the
ledger's format: changing it needs a migration that re-hashes every entry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: The hash before the first entry.
GENESIS = "0" * 64

#: The columns hashed, per table, in order.
FIELDS: dict[str, tuple[str, ...]] = {
    "readings": (
        "id",
        "indicator",
        "value",
        "unit",
        "observed",
        "observed_start",
        "observed_end",
        "location",
        "source",
        "note",
        "source_url",
        "links",
        "report",
        "entered_at",
        "entered_by",
    ),
    "retractions": ("reading_id", "reason", "retracted_at", "retracted_by"),
    "snapshots": (
        "id",
        "created_at",
        "created_by",
        "tree_id",
        "tree_hash",
        "engine",
        "as_of",
        "given",
        "n_readings",
        "readings_hash",
        "payload",
    ),
    "resolutions": (
        "id",
        "outcome",
        "answer",
        "resolved_on",
        "source",
        "note",
        "entered_at",
        "entered_by",
    ),
    "resolution_retractions": ("resolution_id", "reason", "retracted_at", "retracted_by"),
}

#: Columns added later, hashed after those of :data:`FIELDS` and only when set (so that every
#: entry made before they existed keeps its hash): a reading's ``kind`` (revision 0005).
OPTIONAL: dict[str, tuple[str, ...]] = {"readings": ("kind",)}

#: The column that names an entry in messages, per table.
KEY = {
    "readings": "id",
    "retractions": "reading_id",
    "snapshots": "id",
    "resolutions": "id",
    "resolution_retractions": "resolution_id",
}


def _iso(value: Any) -> str:
    """Dates and times in ISO form, for ``json.dumps`` (called only for what JSON lacks)."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot hash a {type(value).__name__}")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_iso)
_ENCODE: Callable[[Any], str] = _ENCODER.encode


def _c_encode() -> Callable[[list[Any]], str] | None:
    """:data:`_ENCODE` of a list through json's C encoder, made once.

    ``encode`` makes one per call, a third of the time of hashing a row. ``None`` where json
    has no C encoder.
    """
    from json import encoder

    make = getattr(encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has it
        return None
    e = _ENCODER
    # the arguments JSONEncoder.iterencode gives it (no markers: a row holds no containers)
    one = make(
        None,
        e.default,
        encoder.encode_basestring,
        None,
        e.key_separator,
        e.item_separator,
        e.sort_keys,
        e.skipkeys,
        e.allow_nan,
    )
    join = "".join
    return lambda values: join(one(values, 0))


_ENCODE_LIST = _c_encode() or _ENCODE


def entry_hash(previous: str, table: str, row: Mapping[str, Any]) -> str:
    """The hash of an entry of ``table`` with content ``row``, following ``previous``."""
    get = row.get
    values = [get(name) for name in FIELDS[table]]
    values += [value for name in OPTIONAL.get(table, ()) if (value := get(name)) is not None]
    return content_hash(previous, table, values)


def content_hash(previous: str, table: str, values: list[Any]) -> str:
    """:func:`entry_hash` of content given as a list in :data:`FIELDS` order.

    Dates and times may be given already in the ISO form the hash uses (``date.isoformat()``,
    and ``isoformat()`` of a time without its time zone), which saves converting them per row.
    """
    content = _ENCODE_LIST(values)
    return hashlib.sha256(f"{previous}\n{table}\n{content}".encode()).hexdigest()


def describe(table: str, row: Mapping[str, Any]) -> str:
    """``reading #12``, ``the retraction of reading #12``, ``snapshot #3``."""
    key = row.get(KEY[table])
    if table == "readings":
        return f"reading #{key}"
    if table == "retractions":
        return f"the retraction of reading #{key}"
    if table == "resolutions":
        return f"resolution #{key}"
    if table == "resolution_retractions":
        return f"the retraction of resolution #{key}"
    return f"snapshot #{key}"


@dataclass(frozen=True)
class Entry:
    """One row of the ledger with its place in the chain."""

    table: str
    entry: int | None
    hash: str | None
    row: Mapping[str, Any]


@dataclass(frozen=True)
class ChainCheck:
    """What :func:`first_break` found.

    Attributes
    ----------
    entries
        How many entries follow one another from the first, unbroken.
    head
        The hash of the last unbroken entry (:data:`GENESIS` for an empty ledger).
    problem
        The first entry whose hash does not follow, and why; ``None`` if the whole chain holds.
    """

    entries: int
    head: str
    problem: str | None


def first_break(entries: Iterable[Entry]) -> ChainCheck:
    """Walk the chain in entry order and report the first entry that does not follow."""
    placed: list[Entry] = []
    for e in entries:
        if e.entry is None or e.hash is None:
            return ChainCheck(
                0,
                GENESIS,
                f"{describe(e.table, e.row)} has no place in the chain: "
                "it was written behind scenariocast's back",
            )
        placed.append(e)
    placed.sort(key=lambda e: e.entry or 0)
    previous = GENESIS
    for expected, e in enumerate(placed, start=1):
        what = describe(e.table, e.row)
        if e.entry != expected:
            problem = (
                f"entry {expected} is missing (deleted?); the next is entry {e.entry}, {what}"
                if (e.entry or 0) > expected
                else f"entry {e.entry} appears twice (the second is {what})"
            )
            return ChainCheck(expected - 1, previous, problem)
        if entry_hash(previous, e.table, e.row) != e.hash:
            return ChainCheck(
                expected - 1,
                previous,
                f"entry {expected}, {what}: its hash does not follow from its content and the "
                "entry before it (changed after it was written?)",
            )
        previous = e.hash
    return ChainCheck(len(placed), previous, None)


def rows_with_fields(table: str, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows given as tuples in :data:`FIELDS` order, as mappings."""
    names = FIELDS[table]
    return [dict(zip(names, r, strict=True)) for r in rows]
