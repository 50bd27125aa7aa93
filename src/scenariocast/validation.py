"""Validation plumbing shared by every file scenariocast reads (scenario trees, import mappings).

Reading a file into text, safe YAML with line numbers, and turning pydantic's errors into
:class:`~scenariocast.errors.Problem` lines that name the field, the line and, for an unknown
key, the closest valid one.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ValidationError

from scenariocast.errors import Problem, ProblemsError, did_you_mean

Loc = tuple[str | int, ...]

# libyaml's safe loader when PyYAML was built with it (several times faster), else PyYAML's own.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: The largest YAML file read (scenario trees, import mappings): the shipped trees are ~35 KB.
MAX_YAML_BYTES = 1024 * 1024
#: How deeply mappings and lists may nest (a scenario file needs about six levels).
MAX_DEPTH = 64
#: How many nodes aliases (``*name``) may repeat in all, counting what they contain.
MAX_ALIASED_NODES = 10_000

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
#: Marks, in the map of lines, the first line of a block scalar's text (``key: |``).
CONTENT = "@content"


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """A safe loader that leaves dates as text, for the models to check.

    YAML would turn an unquoted ``2026-12-31`` into a date itself, and fail with no line on an
    impossible one such as ``2026-02-30``; pydantic then parses the text and names the field.
    """

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, Any]]]] = {
        first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }


class _Refused(Exception):
    """A document refused before it is built: too deep, or aliases that expand too far."""

    def __init__(self, message: str, line: int, path: Loc) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.path = path


def _walk(
    root: yaml.Node,
    lines: dict[Loc, int],
    problems: list[Problem],
    starts: dict[tuple[int, int], Loc],
) -> None:
    """Record the line of every field and duplicate keys; refuse documents that blow up.

    Iterative, so that deep documents cannot exhaust Python's stack. A node reached a second
    time is reached through an alias: those repeats are counted (a "billion laughs" document
    repeats a few nodes exponentially often) and a node that contains itself is refused.
    """
    seen: set[int] = set()
    repeated = 0
    # (node, its path, depth, ids of the nodes above it)
    stack: list[tuple[yaml.Node, Loc, int, frozenset[int]]] = [(root, (), 0, frozenset())]
    while stack:
        node, path, depth, above = stack.pop()
        line = node.start_mark.line + 1
        if id(node) in above:
            raise _Refused("refused: an alias refers to a node that contains it", line, path)
        if depth > MAX_DEPTH:
            raise _Refused(f"refused: nested more than {MAX_DEPTH} levels deep", line, path)
        if id(node) in seen:
            repeated += 1
            if repeated > MAX_ALIASED_NODES:
                raise _Refused(
                    f"refused: aliases (*name) repeat more than {MAX_ALIASED_NODES:,} nodes",
                    line,
                    path,
                )
        seen.add(id(node))
        starts.setdefault((node.start_mark.line, node.start_mark.column), path)
        inner = above | {id(node)} if isinstance(node, yaml.CollectionNode) else above
        children: list[tuple[yaml.Node, Loc]] = []
        if isinstance(node, yaml.MappingNode):
            keys: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = (
                    key_node.value
                    if isinstance(key_node, yaml.ScalarNode)
                    else str(key_node.value)[:40]
                )
                key_line = key_node.start_mark.line + 1
                if key in keys:
                    problems.append(
                        Problem(
                            f"duplicate key '{key}' (first at line {keys[key]})",
                            path=path,
                            line=key_line,
                        )
                    )
                keys.setdefault(key, key_line)
                lines.setdefault((*path, key), key_line)
                children.append((value_node, (*path, key)))
        elif isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
            lines[(*path, CONTENT)] = node.start_mark.line + 2
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines.setdefault((*path, i), item.start_mark.line + 1)
                children.append((item, (*path, i)))
        for child, child_path in reversed(children):
            stack.append((child, child_path, depth + 1, inner))


def load_yaml(text: str, file: str) -> tuple[Any, dict[Loc, int], list[Problem]]:
    """Parse YAML safely.

    Returns the data, a map from field path to line number, and the problems found (syntax
    errors, unsafe tags, duplicate keys, documents nested too deep or whose aliases expand too
    far). When problems are returned the data may be ``None``. Dates are left as text.
    """
    lines: dict[Loc, int] = {}
    problems: list[Problem] = []
    starts: dict[tuple[int, int], Loc] = {}  # where each node starts -> its path
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, lines, [Problem("the file is empty", file=file)]
        _walk(root, lines, problems, starts)
        data = loader.construct_document(root)
    except _Refused as exc:
        return None, lines, [Problem(exc.message, file=file, line=exc.line)]
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        where = starts.get((mark.line, mark.column), ()) if mark else ()
        tag = exc.problem or "unsupported tag"
        message = f"refused: {tag} (only plain YAML data is allowed)"
        return None, lines, [Problem(message, file=file, path=where, line=line)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(str(exc.problem or exc).split())
        return None, lines, [Problem(f"not valid YAML: {what}", file=file, line=line)]
    except yaml.YAMLError as exc:
        return None, lines, [Problem(f"not valid YAML: {' '.join(str(exc).split())}", file=file)]
    except (ValueError, OverflowError, RecursionError) as exc:  # pragma: no cover - defensive
        return None, lines, [Problem(f"not valid YAML: {exc}", file=file)]
    finally:
        loader.dispose()
    return data, lines, [Problem(p.message, file=file, path=p.path, line=p.line) for p in problems]


def line_of(lines: dict[Loc, int], path: Loc) -> int | None:
    """The line of ``path`` or of its nearest ancestor that the file has."""
    p = tuple(path)
    while p:
        if p in lines:
            return lines[p]
        p = p[:-1]
    return None


def read_text(path: Path, error: type[ProblemsError], *, max_bytes: int = MAX_YAML_BYTES) -> str:
    """The file's text.

    Raises ``error`` naming the file if it is missing, unreadable, not UTF-8 or larger than
    ``max_bytes`` (read no further than that, so a huge file costs nothing).
    """
    file = str(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise error([Problem("no such file", file=file)]) from None
    except OSError as exc:
        raise error([Problem(f"cannot read: {exc.strerror or exc}", file=file)]) from None
    if len(data) > max_bytes:
        raise error(
            [Problem(f"refused: larger than {max_bytes // 1024:,} KiB, the most read", file=file)]
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error([Problem(f"not UTF-8 text (byte {exc.start})", file=file)]) from None


def load_yaml_mapping(
    text: str, file: str, error: type[ProblemsError]
) -> tuple[dict[str, Any], dict[Loc, int], list[Problem]]:
    """Safe YAML that must hold a mapping: data, line of every field, problems found so far."""
    data, lines, problems = load_yaml(text, file)
    if data is None:
        raise error(problems)
    if not isinstance(data, dict):
        raise error([Problem("the file must be a mapping of keys to values", file=file)])
    return data, lines, problems


def problem_at(
    file: str, lines: dict[Loc, int], loc: Loc, message: str, line_loc: Loc | None = None
) -> Problem:
    """A problem at field ``loc``, with the line of ``line_loc`` (default: of ``loc``)."""
    return Problem(
        message, file=file, path=loc, line=line_of(lines, loc if line_loc is None else line_loc)
    )


def translate_errors(
    exc: ValidationError, root: type[BaseModel], *, drop: frozenset[str] = frozenset()
) -> list[tuple[Loc, str, Loc]]:
    """(path to show, message, path whose line to show) for each pydantic error.

    ``drop`` names path parts that are not fields (tags of discriminated unions).
    """
    out: list[tuple[Loc, str, Loc]] = []
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in drop))
        kind = err["type"]
        if loc and loc[-1] == "[key]":
            loc = loc[:-1]
            name = loc[-1] if loc else "?"
            out.append((loc, f"'{name}' is not a valid name (letters, digits, _ and -)", loc))
        elif kind == "extra_forbidden":
            key = str(loc[-1])
            hint = did_you_mean(key, field_names(root, loc[:-1]))
            # the line of the unknown key itself, not of the mapping that holds it
            out.append((loc[:-1], f"unknown key '{key}'{hint}", loc))
        elif kind == "missing":
            out.append((loc[:-1], f"missing required key '{loc[-1]}'", loc[:-1]))
        else:
            got = err.get("input")
            shown = (
                ""
                if isinstance(got, dict | list | BaseModel) or kind == "value_error"
                else f", got {got!r}"
            )
            if isinstance(got, bool) and kind == "string_type":
                shown += (
                    " (YAML reads unquoted yes, no, on, off, true and false as booleans: quote it)"
                )
            msg = str(err["msg"]).removeprefix("Value error, ")
            out.append((loc, f"{msg}{shown}", loc))
    return out


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _resolve(tp: Any, part: str | int | None) -> Any:
    """``tp`` without ``Annotated`` and unions: the member that a key ``part`` descends into.

    An integer part (a list index) picks a list member of a union; anything else, the first
    member that is not a list. ``None`` is never chosen.
    """
    tp = _unwrap(tp)
    while typing.get_origin(tp) in (typing.Union, types.UnionType):
        members = [_unwrap(a) for a in typing.get_args(tp) if _unwrap(a) is not type(None)]
        lists = [m for m in members if typing.get_origin(m) is list]
        others = [m for m in members if typing.get_origin(m) is not list]
        tp = _unwrap(lists[0] if isinstance(part, int) and lists else (others or members)[0])
    return tp


def field_names(root: type[BaseModel], loc: Loc) -> list[str]:
    """The keys valid in the mapping at ``loc`` below the model ``root``."""
    tp: Any = root
    for part in loc:
        tp = _resolve(tp, part)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            f = tp.model_fields.get(str(part))
            if f is None:
                return []
            tp = f.annotation
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        elif origin is list:
            tp = typing.get_args(tp)[0]
        else:
            return []
    tp = _resolve(tp, None)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []
