"""Parsing text formats with Lark (an LALR parser generator), errors as one line with its line.

Each grammar is compiled once per process, on first use. A syntax error becomes a
:class:`~scenariocast.errors.Problem` naming the line and what was expected, in the file's own
symbols (``'}'``, ``';'``, a name, a number) rather than the grammar's terminal names.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from scenariocast.errors import Problem

#: What a terminal of the grammars means, for messages.
_WORDS = {
    "WORD": "a name",
    "NAME": "a name",
    "STRING": "a quoted text",
    "ESCAPED_STRING": "a quoted text",
    "NUMBER": "a number",
    "INT": "a whole number",
    "PROPERTY": "a property",
}


@cache
def parser(grammar: str) -> Any:
    """The LALR parser of ``grammar`` (compiled once)."""
    from lark import Lark

    return Lark(grammar, parser="lalr", lexer="contextual", maybe_placeholders=False)


def _describe(lark: Any, names: Any) -> str:
    shown: list[str] = []
    for name in sorted(names):
        if name in _WORDS:
            text = _WORDS[name]
        else:
            try:
                pattern = lark.get_terminal(name).pattern
            except KeyError:
                text = name.lower()
            else:
                text = f"'{pattern.value}'" if pattern.type == "str" else name.lower()
        if text not in shown:
            shown.append(text)
    if not shown:
        return ""
    if len(shown) > 6:
        shown = [*shown[:6], "..."]
    return " (expected " + (shown[0] if len(shown) == 1 else "one of " + ", ".join(shown)) + ")"


def parse(grammar: str, text: str, file: str) -> tuple[Any, Problem | None]:
    """The parse tree of ``text``, or ``None`` and the syntax error as a problem."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    lark = parser(grammar)
    last_line = text.count("\n") + (0 if text.endswith("\n") else 1)
    try:
        return lark.parse(text), None
    except UnexpectedEOF as exc:
        expected = _describe(lark, exc.expected)
        message = f"the file ends too early (cut short?){expected}"
        return None, Problem(message, file=file, line=max(last_line, 1))
    except UnexpectedToken as exc:
        token = exc.token
        if token.type == "$END":
            expected = _describe(lark, exc.expected)
            message = f"the file ends too early (cut short?){expected}"
            return None, Problem(message, file=file, line=max(last_line, 1))
        expected = _describe(lark, exc.expected)
        shown = str(token)[:40]
        return None, Problem(f"unexpected '{shown}'{expected}", file=file, line=token.line)
    except UnexpectedCharacters as exc:
        pos = exc.pos_in_stream or 0
        char = text[pos] if pos < len(text) else ""
        expected = _describe(lark, exc.allowed or ())
        return None, Problem(f"unexpected character {char!r}{expected}", file=file, line=exc.line)
