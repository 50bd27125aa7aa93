"""Plain-text renderings of trees, forecasts, explanations and the ledger, for the terminal.

Also Markdown tables for documents (the back-test table of a README).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: `import` and `evidence` render without loading the engines
    from scenariocast.analysis.backtest import BacktestResult
    from scenariocast.analysis.explain import Contribution, Explanation
    from scenariocast.engines.result import ForecastResult, StepForecast
    from scenariocast.evidence.readings import Reading
    from scenariocast.evidence.select import Stale
    from scenariocast.spec.model import Source
    from scenariocast.spec.tree import Tree

if TYPE_CHECKING:
    from scenariocast.analysis.sensitivity import SensitivityResult
    from scenariocast.analysis.watch import WatchResult


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A left-aligned text table (numbers right-aligned)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [
        all(_is_number(r[i]) for r in cells[1:]) and len(cells) > 1 for i in range(len(headers))
    ]
    lines = []
    for k, r in enumerate(cells):
        parts = [
            c.rjust(widths[i]) if numeric[i] and k > 0 else c.ljust(widths[i])
            for i, c in enumerate(r)
        ]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _is_number(s: str) -> bool:
    try:
        float(s.rstrip("%").replace(",", ""))
    except ValueError:
        return False
    return True


def pct(p: float) -> str:
    """A probability as a percentage with one decimal."""
    return f"{100 * p:.1f}%"


def render_tree(tree: Tree) -> str:
    """A readable summary of a tree: nodes, outcomes, indicators, sources."""
    spec = tree.spec
    out = [f"{tree.id}: {spec.title}" if spec.title else tree.id]
    if spec.description:
        out.append(spec.description.strip())
    out.append("")
    if tree.steps is not None:
        st = tree.steps
        out.append(
            f"Horizon: {st.start} to {st.end}, {st.n} steps of a {st.unit} "
            f"({st.label(0)} to {st.label(st.n - 1)})"
        )
        out.append("")
    out.append("Nodes")
    rows = []
    for name, node in tree.nodes.items():
        parents = ", ".join(node.parents) or "-"
        rows.append([name, " | ".join(node.states), parents, _node_kind(tree, name)])
    out.append(table(["node", "states", "parents", "over time"], rows))
    if tree.outcomes:
        out += ["", "Outcomes"]
        out.append(
            table(
                ["outcome", "node = states", "when", "resolve by", "question"],
                [
                    [
                        oid,
                        f"{o.node} = {' | '.join(o.states)}",
                        timing_text(o.timing, o.k),
                        o.resolve_by,
                        o.question,
                    ]
                    for oid, o in tree.outcomes.items()
                ],
            )
        )
    if tree.indicators:
        out += ["", "Indicators"]
        rows = []
        for iid, ind in tree.indicators.items():
            s = ind.spec
            read = s.read_as.transform if s.read_as else "as reported"
            rule = s.combine_rule()
            comb = rule.rule + (f" per {'+'.join(rule.per)}" if rule.rule == "latest" else "")
            rows.append([iid, s.kind, s.unit or "", ", ".join(ind.scope), read, comb])
        out.append(table(["indicator", "kind", "unit", "depends on", "read as", "combine"], rows))
    if tree.sources:
        out += ["", "Sources"]
        out.append(
            table(
                ["source", "reliability", "description"],
                [[n, _reliability_text(s), s.description] for n, s in tree.sources.items()],
            )
        )
    return "\n".join(out)


def _reliability_text(source: Source) -> str:
    from scenariocast.spec.model import Uncertain  # here: `evidence` renders without the spec

    r = source.reliability
    if isinstance(r, Uncertain):
        return f"{r.mean:.2f} (sd {r.sd:.2f})"
    return f"{r:.2f}"


def _node_kind(tree: Tree, name: str) -> str:
    node = tree.nodes[name]
    if node.kind == "calendar":
        return "calendar"
    if node.kind == "static":
        return "-"
    dyn = tree.spec.nodes[name].dynamic
    if dyn is not None and dyn.persistence is not None:
        pers = dyn.persistence
        shown = (
            ", ".join(f"{k} {v:g}" for k, v in pers.items())
            if isinstance(pers, dict)
            else f"{pers:g}"
        )
        return f"dynamic (persistence {shown})"
    return "dynamic (transitions)"


def timing_text(timing: str | None, k: int | None) -> str:
    """How an outcome on a dynamic node resolves, in words."""
    if timing == "end":
        return "at the end"
    if timing == "ever":
        return "in any step"
    if timing == "at_least":
        return f"in {k}+ steps"
    return ""


EXCLUSION_LABELS = {
    "retracted": "retracted",
    "after_as_of": "observed after the as-of date",
    "unknown_indicator": "on an indicator this tree does not define",
    "unknown_node": "on a node this tree does not have",
    "unknown_source": "from a source this tree does not define",
    "unreadable": "value the indicator cannot read",
    "repeated": "the same reading entered again (counted once)",
    "linked": "linked to another report of the same event (counted once)",
    "too_old": "older than the indicator's max_age_days before the as-of date",
    "outside_window": "older than the indicator's window_days before the as-of date",
    "superseded": "superseded by a later reading of the same source and location",
}


def render_forecast(result: ForecastResult, *, top: int = 5) -> str:
    """Outcomes with prior and posterior, the most probable scenarios, and what was not used."""
    ev = result.evidence
    head = f"Forecast for {result.tree_id} as of {result.as_of} ({result.engine} engine)"
    warning = render_convergence(result)
    if result.given:
        head += "\nAssuming " + ", ".join(f"{k} = {v}" for k, v in result.given.items())
    if ev.findings:
        head += "\nEvidence on nodes: " + "; ".join(f.describe() for f in ev.findings)
    lines = [
        *warning,
        head,
        f"Evidence: {result.n_observations} observations in {len(ev.reports)} reports from "
        f"{len(ev.reading_ids)} readings; {len(ev.excluded)} readings not counted; "
        f"log evidence {result.log_evidence:.3f}",
    ]
    lines += render_stale(result.stale)
    lines.append("")
    timed = any(o.timing for o in result.outcomes.values())
    ranged = any(o.interval for o in result.outcomes.values())
    head_row = ["outcome", "prior", "now"]
    head_row += ["90% interval"] if ranged else []
    head_row += ["when"] if timed else []
    head_row += ["resolve by", "question"]
    rows = []
    for o in result.outcomes.values():
        row: list[object] = [o.id, pct(o.prior), pct(o.probability)]
        if ranged:
            row.append(f"{pct(o.interval[0])}-{pct(o.interval[1])}" if o.interval else "")
        if timed:
            row.append(timing_text(o.timing, o.k))
        rows.append([*row, o.resolve_by, o.question])
    lines.append(table(head_row, rows))
    if result.diagnostics:
        lines += ["", render_diagnostics(result.diagnostics)]
    for name, path in result.steps.items():
        lines += ["", *render_path(name, path, result.now_step)]
    shown = min(top, len(result.top_scenarios))
    if result.steps:
        last = next(iter(result.steps.values()))[-1].label
        lines += ["", f"Most probable states at the horizon's end, {last} (top {shown})"]
    else:
        lines += ["", f"Most probable complete scenarios (top {shown})"]
    for k, s in enumerate(result.top_scenarios[:top], start=1):
        states = ", ".join(f"{n}={v}" for n, v in s.states.items())
        lines.append(f"{k}. {pct(s.probability):>6}  {states}")
    counts: dict[str, int] = {}
    for e in ev.excluded:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    if counts:
        lines += [
            "",
            "Readings not counted (`scenariocast explain --json` gives each with its reason):",
        ]
        lines += [
            f"  {n:4d}  {EXCLUSION_LABELS.get(kind, kind)}"
            for kind, n in sorted(counts.items(), key=lambda kv: -kv[1])
        ]
    return "\n".join(lines)


def render_convergence(result: ForecastResult) -> list[str]:
    """A warning, first of all, when a sampler did not converge."""
    d = result.diagnostics
    if not d or d.get("converged", True):
        return []
    reasons = "; ".join(d.get("reasons", [])) or "see the diagnostics"
    return [
        "WARNING: the sampler did not converge, so these probabilities and intervals are not "
        f"to be trusted: {reasons}. Sample longer (--draws) or look at the tree's numbers.",
        "",
    ]


def render_diagnostics(d: Mapping[str, object]) -> str:
    """The sampler's diagnostics in one line."""

    def num(key: str) -> float:
        value = d.get(key)
        return float(value) if isinstance(value, int | float) else float("nan")

    verdict = "converged" if d.get("converged") else "NOT converged"
    return (
        f"Sampler: {d.get('sampler')}, {d.get('chains')} chains x {d.get('draws')} draws; "
        f"largest R-hat {num('rhat_max'):.3f}, smallest bulk ESS {num('ess_bulk_min'):.0f}, "
        f"tail ESS {num('ess_tail_min'):.0f}, {d.get('divergences')} divergences: {verdict}; "
        f"intervals are {d.get('interval', '90% equal-tailed')}"
    )


def render_stale(stale: Sequence[Stale]) -> list[str]:
    """Warning lines for indicators whose newest reading is older than their threshold."""
    if not stale:
        return []
    out = ["Stale evidence (the newest reading is older than the indicator's threshold):"]
    for st in stale:
        still = "still counted" if st.counted else "no longer counted"
        out.append(
            f"  {st.indicator}: newest reading {st.newest}, {st.age_days} days before the as-of "
            f"date (stale after {st.threshold_days}); {still}"
        )
    return out


def render_path(name: str, path: Sequence[StepForecast], now: str | None) -> list[str]:
    """A dynamic node's distribution at each step: one row per state, one column per step."""
    if not path:
        return []
    states = list(path[0].probabilities)
    labels = [_short_label(x.label) + ("*" if x.label == now else "") for x in path]
    rows = [[s, *(f"{100 * x.probabilities[s]:.0f}" for x in path)] for s in states]
    first, last = path[0].label, path[-1].label
    head = (
        f"{name}, % by step from {first} to {last} "
        "(* the as-of step: estimated up to it, predicted after)"
    )
    return [head, table(["state", *labels], rows)]


def _short_label(label: str) -> str:
    """``2026-03`` -> ``03``, ``2026-Q1`` -> ``Q1``, ``2026-W10`` -> ``W10``."""
    return label.split("-", 1)[1] if "-" in label else label


def render_explanation(expl: Explanation, *, outcome: str | None = None, top: int = 5) -> str:
    """What moves each outcome most today, then (for one outcome) every report in order.

    Reports are ranked by their effect on today's forecast: the outcome's log-odds with every
    report minus without that one (leave one out), shown with the probability without it.
    """
    lines = [
        f"What moved the forecast for {expl.tree_id} as of {expl.as_of}",
        "Each report's effect on today's forecast: log-odds with every report minus without it "
        "(leave one out), and the probability without it.",
    ]
    lines += render_stale(expl.evidence.stale)
    ids = [outcome] if outcome else list(expl.prior)
    for o in ids:
        lines += [
            "",
            f"{o}: {pct(expl.prior[o])} -> {pct(expl.posterior[o])} "
            f"(log-odds {_signed(expl.total(o))})",
        ]
        strongest = expl.strongest(o, top)
        if not strongest:
            lines.append("  no reading moved it")
        for c in strongest:
            lines.append(
                "  "
                + _contribution_line(
                    c, c.influence[o], f"without it {pct(c.probability_without[o])}"
                )
            )
    if outcome:
        lines += [
            "",
            f"Every counted report, in the order observed (log-odds on {outcome}: added, the "
            "change when added after the reports before it; today, the effect on today's "
            "forecast):",
        ]
        rows = [
            [
                str(c.report.last_day),
                c.report.source,
                ", ".join(f"#{r.id}" for r in c.readings),
                _readings_text(c.readings, limit=3),
                _signed(c.log_odds[outcome]),
                _signed(c.influence[outcome]),
            ]
            for c in expl.contributions
        ]
        lines.append(table(["observed", "source", "readings", "values", "added", "today"], rows))
        lines.append(
            f"Sum of contributions as added: {_signed(expl.total(outcome))} (prior to now; "
            "the effects today need not add up to it)"
        )
    return "\n".join(lines)


def _readings_text(readings: Sequence[Reading], *, limit: int) -> str:
    parts = []
    for r in readings[:limit]:
        where = f" in {r.location}" if r.location else ""
        parts.append(f"{reading_name(r)} = {r.value}{where}")
    more = f"; and {len(readings) - limit} more" if len(readings) > limit else ""
    return "; ".join(parts) + more


def _contribution_line(c: Contribution, delta: float, aside: str = "") -> str:
    rs = c.readings
    lead = f"{_signed(delta):>7}  " + (f"({aside})  " if aside else "")
    if len(rs) == 1:
        r = rs[0]
        where = f" in {r.location}" if r.location else ""
        return f"{lead}#{r.id} {reading_name(r)} = {r.value}{where}, {r.observed}, {r.source}"
    return (
        f"{lead}{c.report.source} report {c.report.key}, {len(rs)} readings "
        f"({', '.join(f'#{r.id}' for r in rs)}): {_readings_text(rs, limit=4)}"
    )


def _signed(x: float) -> str:
    return f"{x:+.3f}"


def reading_name(r: Reading) -> str:
    """What a reading is of: the indicator, or ``node NAME`` for a reading of a node."""
    return f"node {r.indicator}" if r.of_node else r.indicator


def render_readings(readings: Sequence[Reading]) -> str:
    """The ledger's readings, retracted ones marked."""
    rows = [
        [
            r.id,
            reading_name(r),
            r.value,
            r.unit or "",
            str(r.observed),
            r.location or "",
            r.source,
            "retracted: " + (r.retraction_reason or "") if r.retracted else (r.note or "")[:40],
        ]
        for r in readings
    ]
    return table(
        ["id", "indicator", "value", "unit", "observed", "location", "source", "note"], rows
    )


def render_skipped(skipped: Sequence[tuple[int, str, str]], *, label: str) -> list[str]:
    """Skipped import rows grouped by indicator and reason, with their line numbers."""
    groups: dict[tuple[str, str], list[int]] = {}
    for line, name, reason in skipped:
        groups.setdefault((name, reason), []).append(line)
    out = []
    for (name, reason), lines in groups.items():
        where = "line" if len(lines) == 1 else "lines"
        out.append(f"{label}: {name} ({where} {', '.join(map(str, lines))}): {reason}")
    return out


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown (GitHub) table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join("" if c is None else str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def render_backtest(results: Sequence[BacktestResult]) -> str:
    """Each tree's forecast of each outcome at each date, its resolution and Brier scores.

    A Markdown table, one row per tree and outcome, then one row per tree with the mean Brier
    score over the outcomes the record resolves. The columns are the first result's dates (day
    and month), the year the first date's of each tree: give results forecast on the same days
    of their years.
    """
    if not results:
        return ""
    dates = results[0].dates
    headers = [
        "tree",
        "year",
        "outcome",
        "happened",
        *(f"as of {d.day} {d:%b}" for d in dates),
        "Brier",
        "prior",
        "Brier of the prior",
    ]
    rows: list[list[object]] = []
    for res in results:
        scored: list[tuple[float, float]] = []
        for oid, probs in res.probabilities.items():
            resolution = res.resolutions.get(oid)
            if resolution is None or resolution.happened is None:
                happened = "not settled"
            else:
                happened = "yes" if resolution.happened else "no"
                if resolution.basis == "inferred":
                    happened += " (inferred)"
            brier, prior = res.brier(oid), res.prior_brier(oid)
            if brier is not None and prior is not None:
                scored.append((brier, prior))
            rows.append(
                [
                    res.tree_id,
                    res.dates[0].year,
                    oid,
                    happened,
                    *(f"{100 * p:.0f}%" for p in probs),
                    "-" if brier is None else f"{brier:.3f}",
                    f"{100 * res.priors[oid]:.0f}%",
                    "-" if prior is None else f"{prior:.3f}",
                ]
            )
        if scored:
            mean = sum(b for b, _ in scored) / len(scored)
            mean_prior = sum(p for _, p in scored) / len(scored)
            blanks = [""] * len(dates)
            label = f"mean of {len(scored)}"
            year = res.dates[0].year
            rows.append(
                [res.tree_id, year, label, "", *blanks, f"{mean:.3f}", "", f"{mean_prior:.3f}"]
            )
    return markdown_table(headers, rows)


# -- what to watch next ----------------------------------------------------------------------


def render_watch(
    result: WatchResult, *, outcome: str | None = None, top: int = 5, words: int = 2
) -> str:
    """What to watch next, for the terminal: a ranking per outcome, the first ``words`` in words."""
    from scenariocast.report.formatting import points
    from scenariocast.report.words import watch_sentences

    lines = [
        f"What to watch next: {result.tree_id}, as of {result.as_of} "
        f"({result.n_reports} reports counted)"
    ]
    where = (
        f"observed in {result.step_label} (the step after the as-of date's)"
        if result.step_label
        else "added to the evidence"
    )
    n = {c.readings for c in result.indicators}
    per = "one reading" if n == {1} else f"{min(n)} readings"
    lines.append(
        f"Each reading {where}, {per} per report, from its usual source: the indicator's "
        "source in the tree, else that of most of its readings, else (*) the tree's most "
        "reliable."
    )
    lines.append(
        "gain: the expected information about the outcome, in bits and as a share of its "
        "uncertainty now; move: the expected size of the change in its probability; largest: "
        "the largest change one reading could make."
    )
    lines += [f"note: {n}" for n in result.notes]
    wanted = [outcome] if outcome else list(result.outcomes)
    costed = any(c.cost is not None for c in result.indicators)
    for oid in wanted:
        now = result.outcomes[oid]
        lines += ["", f"{oid}: {pct(now.probability)} now (uncertainty {now.entropy:.2f} bits)"]
        if now.entropy == 0:
            lines.append("  certain already: no reading can change it")
            continue
        headers = [
            "rank",
            "indicator",
            "source",
            "reliability",
            "gain (bits)",
            "share",
            "move",
            "largest",
        ]
        if costed:
            headers += ["cost", "bits/cost"]
        rows = []
        ranked = result.ranked(oid)
        for k, c in enumerate(ranked[:top], start=1):
            v = c.values[oid]
            star = "*" if c.source_rule.startswith("no readings") else ""
            row: list[object] = [
                k,
                c.name,
                f"{c.source}{star}",
                f"{c.reliability:.2f}",
                f"{v.gain:.4f}",
                pct(v.share),
                points(v.expected_change).lstrip("+"),
                points(v.largest_change).lstrip("+"),
            ]
            if costed:
                gpc = c.gain_per_cost(oid)
                row += [
                    "" if c.cost is None else f"{c.cost:g}",
                    "" if gpc is None else f"{gpc:.4f}",
                ]
            rows.append(row)
        lines.append(table(headers, rows))
        for c in ranked[: min(top, words)]:
            for sentence in watch_sentences(c, oid, now.probability):
                lines.append(f"  - {sentence}")
        ceilings = [c for c in result.ceilings(oid)[:3] if c.values[oid].gain > 0]
        if ceilings:
            parts = [
                f"{c.name}{' in ' + c.step_label if c.step_label else ''} "
                f"{c.values[oid].gain:.3f} bits ({pct(c.values[oid].share)})"
                for c in ceilings
            ]
            lines.append(
                "  Knowing a node exactly (no reading of it can tell more): " + "; ".join(parts)
            )
    if outcome is None and len(result.outcomes) > 1:
        overall = [c for c in result.overall()[:top] if c.mean_share() > 0]
        if overall:
            lines += ["", "Across the outcomes (the mean share of their uncertainty removed):"]
            lines.append(
                "  "
                + "; ".join(
                    f"{k}. {c.name} {pct(c.mean_share())}" for k, c in enumerate(overall, start=1)
                )
            )
    if costed:
        lines += ["", "By gain per unit of cost:"]
        for oid in wanted:
            ranked = result.by_cost(oid)[:top]
            lines.append(
                f"  {oid}: "
                + "; ".join(
                    f"{c.name} {c.gain_per_cost(oid):.4f} bits per unit ({c.cost:g})"
                    for c in ranked
                )
            )
        missing = [c.name for c in result.indicators if c.cost is None]
        if missing:
            lines.append(f"  without a cost in the tree: {', '.join(missing)}")
    return "\n".join(lines)


def render_sensitivity(
    result: SensitivityResult, *, outcome: str | None = None, top: int = 15, words: int = 5
) -> str:
    """What the forecast hinges on, for the terminal: per outcome, the numbers that move it most."""
    from scenariocast.report.formatting import number
    from scenariocast.report.words import hinge_sentence

    lines = [
        f"What the forecast hinges on: {result.tree_id}, as of {result.as_of}",
        "Each number moved over its interval, the others held: a probability by 0.1 either way "
        "(the rest of its row in proportion), a number written {mean, sd} by one sd, a mu by a "
        "quarter of its row's sigma, a sigma, nu or rate by a quarter of itself. "
        "d/dx: the derivative of the outcome's probability; ~: a first-order estimate.",
    ]
    lines += [f"note: {n}" for n in result.notes]
    wanted = [outcome] if outcome else list(result.probabilities)
    for oid in wanted:
        now = result.probabilities[oid]
        bars = result.tornado(oid, top)
        lines += ["", f"{oid}: {pct(now)} now. This forecast hinges on these numbers:"]
        for k, (par, eff) in enumerate(bars[:words], start=1):
            lines.append(f"  {k}. {hinge_sentence(par, eff, oid, now)}")
        rows = [
            [
                k,
                par.label,
                number(par.value) if par.value != 0 else "0",
                f"{number(par.low)} to {number(par.high)}",
                f"{'' if eff.exact else '~'}{pct(eff.at_low)}",
                f"{'' if eff.exact else '~'}{pct(eff.at_high)}",
                f"{100 * eff.swing:.1f} pp",
                f"{eff.derivative:+.3g}",
            ]
            for k, (par, eff) in enumerate(bars, start=1)
        ]
        if rows:
            lines.append(
                table(["rank", "number", "value", "interval", "at low", "at high", "swing", "d/dx"],
                      rows)
            )  # fmt: skip
    if result.power_scaling is not None:
        lines += ["", *result.power_scaling.lines()]
    return "\n".join(lines)
