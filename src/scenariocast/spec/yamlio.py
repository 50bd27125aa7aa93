"""Safe YAML reading that remembers where every field is.

PyYAML's safe loader refuses python object tags; on top of it this module records the line of
every mapping key and sequence item (so that errors can name a line) and reports duplicate keys,
which plain YAML loading silently resolves by keeping the last one.
"""

from __future__ import annotations

from typing import Any

import yaml

from scenariocast.errors import Problem

Path = tuple[str | int, ...]

# libyaml's safe loader when PyYAML was built with it (several times faster), else PyYAML's own.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _walk(
    node: yaml.Node,
    path: Path,
    lines: dict[Path, int],
    problems: list[Problem],
    starts: dict[tuple[int, int], Path],
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


def load_yaml(text: str, file: str) -> tuple[Any, dict[Path, int], list[Problem]]:
    """Parse YAML safely.

    Returns the data, a map from field path to line number, and the problems found (syntax
    errors, unsafe tags, duplicate keys). When problems are returned the data may be ``None``.
    """
    lines: dict[Path, int] = {}
    problems: list[Problem] = []
    starts: dict[tuple[int, int], Path] = {}  # where each node starts -> its path
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


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of ``path`` or of its nearest ancestor that the file has."""
    p = tuple(path)
    while p:
        if p in lines:
            return lines[p]
        p = p[:-1]
    return None
