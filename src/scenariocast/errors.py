"""One exception hierarchy for everything a forecaster can get wrong.

Every error carries a message that names the problem and where it is (file, field, line, row).
The command line prints ``str(error)`` and exits 1; the library never prints or exits.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest valid name, or ``""`` if none is close."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def format_path(path: Sequence[str | int]) -> str:
    """Render a field path such as ``nodes.shock.probabilities[0].then``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True)
class Problem:
    """One problem found in an input: where it is and what is wrong."""

    message: str
    file: str | None = None
    path: tuple[str | int, ...] = ()
    line: int | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
        field = format_path(self.path)
        if field:
            where = f"{where}: {field}" if where else field
        return f"{where}: {self.message}" if where else self.message


class ScenariocastError(Exception):
    """Base class of every error scenariocast raises on purpose."""


class ProblemsError(ScenariocastError):
    """An input with one or more problems, all reported at once."""

    kind = "invalid input"

    def __init__(self, problems: Sequence[Problem], *, subject: str | None = None) -> None:
        self.problems = list(problems)
        self.subject = subject
        super().__init__(self._summary())

    def _summary(self) -> str:
        n = len(self.problems)
        head = f"{self.subject}: " if self.subject else ""
        if n == 1:
            return f"{head}{self.kind}: {self.problems[0]}"
        return f"{head}{self.kind}, {n} problems: " + "; ".join(str(p) for p in self.problems)

    def lines(self) -> list[str]:
        """One line per problem, for the command line."""
        return [str(p) for p in self.problems]


class SpecError(ProblemsError):
    """A scenario file that does not validate."""

    kind = "invalid scenario file"


class NetworkFileError(ProblemsError):
    """A network file of another tool (BIF, XMLBIF, Hugin NET, GeNIe XDSL) that cannot be read."""

    kind = "invalid network file"


class ImportProblemsError(ProblemsError):
    """A CSV file of readings with bad rows; nothing was imported."""

    kind = "nothing imported"


class MappingError(ProblemsError):
    """An import mapping file that does not validate."""

    kind = "invalid mapping file"


class ResolutionError(ProblemsError):
    """A back-test's resolutions file that does not validate."""

    kind = "invalid resolutions file"


class ReadingError(ScenariocastError):
    """A reading that cannot be recorded (unknown indicator, bad value, bad date...)."""


class LedgerError(ScenariocastError):
    """The evidence ledger cannot be opened or written, or a reading id does not exist."""


class EvidenceConflictError(ScenariocastError):
    """The evidence has zero probability under every scenario."""


class QueryError(ScenariocastError):
    """A bad request to an engine: unknown node or state in --given, unknown outcome..."""


class LedgerNotFoundError(LedgerError):
    """A command that reads the ledger was pointed at one that does not exist."""


class LedgerBusyError(LedgerError):
    """Another process held the ledger's write lock for longer than the lock timeout."""


class LedgerIntegrityError(LedgerError):
    """The ledger's file fails its integrity check, so nothing is written to it."""


class LedgerVersionError(LedgerError):
    """The ledger's schema is older or newer than this version of scenariocast reads."""


_CONTROL_NAMES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text: str) -> str:
    r"""``text`` with control characters and line separators written as escapes (``\n``).

    Every message that quotes what a user typed goes through this before it is printed, so
    that an error is always one line.
    """
    out = []
    for ch in text:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code <= 0x9F or ch in "\u2028\u2029":
            out.append(
                _CONTROL_NAMES.get(ch, f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
            )
        else:
            out.append(ch)
    return "".join(out)


class PosteriorMismatchError(ScenariocastError):
    """A saved posterior that belongs to another tree or to other readings."""


class ReportError(ScenariocastError):
    """A report that cannot be written: the output folder cannot be created or written."""
