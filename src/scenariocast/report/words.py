"""Sentences that say what a number means: the readings worth watching, the numbers that matter.

Shared by the terminal (``report/text.py``) and the probability report (``report/content.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scenariocast.report.formatting import number, pct

if TYPE_CHECKING:
    from scenariocast.analysis.sensitivity import Effect, Parameter
    from scenariocast.analysis.watch import Candidate, Move


def _chance_words(p: float) -> str:
    """``1 chance in 10`` for the tail readings, else a percentage."""
    if abs(p - 0.1) < 1e-9:
        return "1 chance in 10"
    return f"chance {pct(p)}"


def _reading_words(cand: Candidate, value: float | None, reading: str) -> str:
    if value is None:
        return f"'{reading}'"
    unit = f" {cand.unit}" if cand.unit else ""
    return f"{number(value)}{unit}"


def watch_sentences(cand: Candidate, outcome: str, now: float) -> list[str]:
    """A candidate's effect on ``outcome`` in words: which readings would move it, and how far."""
    moves = cand.moves.get(outcome, ())
    out: list[str] = []
    when = f" in {cand.step_label}" if cand.step_label else ""
    name = cand.name
    if cand.kind == "node":
        if moves:
            top = max(moves, key=lambda m: m.probability)
            out.append(
                f"If {name}{when} were known to be {top.reading} ({pct(top.chance)} likely now), "
                f"{outcome} would be {pct(top.probability)} (now {pct(now)})."
            )
        return out

    def verb(p: float) -> str:
        return "raise" if p >= now else "lower"

    def bound(m: Move) -> str:
        if not m.bound:
            return ""
        return " or more" if m.probability >= now else " or less"

    if moves and moves[0].relation in ("at_most", "at_least"):
        ordered = sorted(moves, key=lambda m: -m.probability)
        first, second = ordered[0], ordered[-1]
        rel = {"at_least": "or more", "at_most": "or less"}
        out.append(
            f"A {cand.source} reading of {name}{when} of "
            f"{_reading_words(cand, first.value, first.reading)} {rel[first.relation]} "
            f"({_chance_words(first.chance)}) would {verb(first.probability)} {outcome} from "
            f"{pct(now)} to {pct(first.probability)}{bound(first)}; one of "
            f"{_reading_words(cand, second.value, second.reading)} "
            f"{rel[second.relation]} ({_chance_words(second.chance)}) would "
            f"{verb(second.probability)} it to {pct(second.probability)}{bound(second)}."
        )
    elif moves:
        up = max(moves, key=lambda m: m.probability)
        down = min(moves, key=lambda m: m.probability)
        out.append(
            f"A {cand.source} report of {name}{when} saying '{up.reading}' ({pct(up.chance)} "
            f"likely) would {verb(up.probability)} {outcome} from {pct(now)} to "
            f"{pct(up.probability)}; '{down.reading}' ({pct(down.chance)}) would "
            f"{verb(down.probability)} it to {pct(down.probability)}."
        )
    if cand.larger and outcome in cand.larger:
        big, one = cand.larger[outcome], cand.values[outcome]
        se = f" (±{big.se:.4f})" if big.se else ""
        tail = ""
        if cand.effective is not None:
            tail = (
                f": its readings share an error, so {cand.larger_size} of them count as "
                f"{number(cand.effective)} independent readings"
            )
        out.append(
            f"A report of {cand.larger_size} readings (one source, one date) would be worth "
            f"{big.gain:.4f} bits{se}, against {one.gain:.4f} for one{tail}."
        )
    if cand.replaces:
        ids = ", ".join(f"#{i}" for i in cand.replaces)
        out.append(
            f"It would replace reading {ids} (the indicator counts only the latest of a "
            "source): its value is net of what that reading says."
        )
    return out


def _value(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1e4 else number(x)


def _clip(text: str, width: int = 220) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def hinge_sentence(par: Parameter, effect: Effect, outcome: str, now: float) -> str:
    """What one number does to ``outcome``, in words, with the tree's reason for it."""
    lo, hi = effect.at_low, effect.at_high
    approx = "" if effect.exact else "about "
    text = (
        f"{par.label}, now {_value(par.value)}: from {_value(par.low)} to {_value(par.high)} "
        f"({par.basis}) it takes {outcome} from {approx}{pct(lo)} to {approx}{pct(hi)} "
        f"(now {pct(now)}; {effect.derivative:+.3g} per unit)."
    )
    if par.rationale:
        text += f" The tree says: {_clip(par.rationale)}"
    else:
        text += " The tree gives no rationale for it."
    return text
