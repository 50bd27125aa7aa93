"""The report's HTML and Markdown, from Jinja2 templates under ``report/templates/``.

Both environments escape every value by default. The HTML one uses Jinja2's autoescaping; the
Markdown one escapes through ``finalize`` (before autoescaping, which then leaves the result
alone): every value written into the Markdown has ``&``,
``<`` and ``>`` turned into entities (so no raw HTML can reach a renderer) and the characters
that would start Markdown markup backslash-escaped, unless it is ``Markup`` made here (numbers
formatted by the filters, links built by the templates from addresses that passed
:func:`~scenariocast.report.content.web_url`). Only http and https addresses become links.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import re
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from scenariocast.report import formatting

if TYPE_CHECKING:
    from jinja2 import Environment

    from scenariocast.report.content import ReportContent
    from scenariocast.report.figures import FigureFile

_MD_INLINE = re.compile(r"([\\`*_\[\]|~])")
_MD_BLOCK = re.compile(r"^(#{1,6}|[-+]|\d{1,9}[.)])(?=\s|$)")
_MD_RULE = re.compile(r"^[=-]+$")


def md_escape(value: Any) -> str:
    """``value`` as Markdown text that renders as itself: no markup, no raw HTML, one line.

    ``&``, ``<`` and ``>`` become entities; the characters that start inline markup (emphasis,
    code, links, table cells, strike-through) get a backslash, and so does a start that would
    make a heading, a list item or a rule.
    """
    text = " ".join(str(value).split())
    text = html.escape(text, quote=False)
    text = _MD_INLINE.sub(r"\\\1", text)
    if _MD_RULE.match(text):
        return "\\" + text
    return _MD_BLOCK.sub(lambda m: m.group(1)[:-1] + "\\" + m.group(1)[-1], text)


def _markup(text: str) -> Any:
    from markupsafe import Markup

    return Markup(text)  # digits, signs, units: never user text


def _filters() -> dict[str, Any]:
    def pct(p: float | None, decimals: int = 1) -> Any:
        return _markup(formatting.pct(p, decimals))

    def points(x: float | None) -> Any:
        return _markup(formatting.points(x))

    def number(x: float | None) -> Any:
        return _markup(formatting.number(x))

    def signed(x: float | None, decimals: int = 2) -> Any:
        return _markup(formatting.signed(x, decimals))

    def day(d: dt.date | dt.datetime | None) -> Any:
        if d is None:
            return ""
        if isinstance(d, dt.datetime):
            return _markup(d.strftime("%Y-%m-%d %H:%M UTC"))
        return _markup(d.isoformat())

    def words(name: str) -> str:
        return name.replace("_", " ")

    def plural(n: int, word: str) -> str:
        return f"{n} {word}" if n == 1 else f"{n} {word}s"

    def sentence(text: str) -> str:
        return text[:1].upper() + text[1:]

    return {
        "pct": pct,
        "points": points,
        "number": number,
        "signed": signed,
        "day": day,
        "words": words,
        "sentence": sentence,
        "plural": plural,
        "commas": lambda items: ", ".join(str(i) for i in items),
        "count": lambda n: _markup(f"{int(n):,}"),
        "repr": lambda x: _markup(repr(float(x))),
        "width": lambda p: _markup(f"{max(0.0, min(1.0, float(p))) * 100:.2f}%"),
        "bits": lambda x: _markup(f"{float(x):.4f}"),
        "pp": lambda x: _markup(f"{100 * abs(float(x)):.1f} pp"),
    }


def _bytecode_cache() -> Any:
    """Jinja's cache of compiled templates in the user's temporary folder, or none.

    Compiling the report's templates costs about half a second each run; the cache keeps the
    compiled code, checked against each template's modification time. A folder that cannot be
    made or written only means no cache.
    """
    from jinja2 import FileSystemBytecodeCache

    class _Quiet(FileSystemBytecodeCache):
        def dump_bytecode(self, bucket: Any) -> None:
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)

    try:
        return _Quiet()
    except (OSError, RuntimeError):
        return None


@cache
def _environment(kind: str) -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined
    from markupsafe import Markup

    def finalize(value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, Markup):
            return value
        return Markup(md_escape(value))  # escaped for Markdown; not to be escaped again

    common: dict[str, Any] = {
        "loader": PackageLoader("scenariocast.report", "templates"),
        "undefined": StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "keep_trailing_newline": True,
        "bytecode_cache": _bytecode_cache(),
    }
    if kind == "html":
        env = Environment(autoescape=True, **common)
    else:
        # autoescaping on, so that macros return Markup; finalize escapes for Markdown first
        env = Environment(autoescape=True, finalize=finalize, **common)

        def mdurl(url: str) -> Any:
            # a link destination in <...>: only < > and the newline could end it early
            return Markup(url.replace("<", "%3C").replace(">", "%3E"))

        def code(text: str) -> Any:
            # a code span shows its content literally; only a backtick could end it, a pipe a cell
            return Markup("`" + str(text).replace("`", "'").replace("|", "\\|") + "`")

        env.filters["mdurl"] = mdurl
        env.filters["code"] = code
    env.filters.update(_filters())
    return env


def render_html(content: ReportContent, figures: Mapping[str, FigureFile]) -> str:
    """The self-contained HTML page: styles inline, figures as ``data:`` addresses."""
    template = _environment("html").get_template("report.html.j2")
    return template.render(r=content, fig=figures)


def render_markdown(content: ReportContent, figures: Mapping[str, FigureFile], folder: str) -> str:
    """The Markdown report, with its figures as files in ``folder`` beside it."""
    template = _environment("md").get_template("report.md.j2")
    return template.render(r=content, fig=figures, folder=folder)
