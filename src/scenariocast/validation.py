"""Validation plumbing shared by every file scenariocast reads (scenario trees, import mappings).

Reading a file into text, safe YAML with line numbers, and turning pydantic's errors into
:class:`~scenariocast.errors.Problem` lines that name the field, the line and, for an unknown
key, the closest valid one.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from scenariocast.errors import Problem, ProblemsError, did_you_mean

Loc = tuple[str | int, ...]

# libyaml's safe loader when PyYAML was built with it (several times faster), else PyYAML's own.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _walk(
    node: yaml.Node,
    path: Loc,
    lines: dict[Loc, int],
    problems: list[Problem],
    starts: dict[tuple[int, int], Loc],
) -> None:
    starts.setdefault((node.start_mark.line, node.start_mark.column), path)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    Problem(
                        f"duplicate key '{key}' (first at line {seen[key]})",
                        path=path,
                        line=line,
                    )
                )
            seen.setdefault(key, line)
            lines.setdefault((*path, key), line)
            _walk(value_node, (*path, key), lines, problems, starts)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.setdefault((*path, i), item.start_mark.line + 1)
            _walk(item, (*path, i), lines, problems, starts)


def load_yaml(text: str, file: str) -> tuple[Any, dict[Loc, int], list[Problem]]:
    """Parse YAML safely.

    Returns the data, a map from field path to line number, and the problems found (syntax
    errors, unsafe tags, duplicate keys). When problems are returned the data may be ``None``.
    """
    lines: dict[Loc, int] = {}
    problems: list[Problem] = []
    starts: dict[tuple[int, int], Loc] = {}  # where each node starts -> its path
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, lines, [Problem("the file is empty", file=file)]
        _walk(root, (), lines, problems, starts)
        data = loader.construct_document(root)
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
        return None, lines, [Problem(f"not valid YAML: {exc.problem}", file=file, line=line)]
    except yaml.YAMLError as exc:
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


def read_text(path: Path, error: type[ProblemsError]) -> str:
    """The file's text; ``error`` naming the file if it is missing, unreadable or not UTF-8."""
    file = str(path)
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise error([Problem("no such file", file=file)]) from None
    except UnicodeDecodeError:
        raise error([Problem("not UTF-8 text", file=file)]) from None
    except OSError as exc:
        raise error([Problem(f"cannot read: {exc.strerror}", file=file)]) from None


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
