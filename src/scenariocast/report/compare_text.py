"""Terminal text for comparing trees, pooling them, resolutions, scores and back-tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

from scenariocast.analysis.backtest import BacktestResult
from scenariocast.analysis.compare import Comparison
from scenariocast.analysis.pool import Pool
from scenariocast.analysis.score import Scores
from scenariocast.analysis.timeline import Timeline
from scenariocast.ledger.records import OutcomeResolution
from scenariocast.report.text import pct, table


def _num(x: float, digits: int = 2) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}f}"


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def render_comparison(c: Comparison, *, top: int = 8) -> str:
    """A comparison as text: outcomes, evidence fit, deciding reports, left out, structure."""
    ids = c.trees
    out = [f"comparing {', '.join(ids)} as of {c.as_of}", ""]
    headers = ["outcome", *(f"{t} prior" for t in ids), *(f"{t} now" for t in ids)]
    headers += ["difference", "model average"]
    rows: list[list[object]] = [
        [
            o.id,
            *(pct(o.prior[t]) for t in ids),
            *(pct(o.probability[t]) for t in ids),
            f"{100 * o.spread:.1f} pp",
            pct(o.average),
        ]
        for o in c.outcomes
    ]
    out.append(table(headers, rows))
    for tid, outcomes in c.not_shared.items():
        out.append(f"only in {tid} (not compared): {', '.join(outcomes)}")
    out += ["", "evidence fit on the readings every tree counts:"]
    counted = ", ".join(f"{t} {n}" for t, n in c.counted.items())
    out.append(
        f"  readings counted: {counted}; counted by every tree: {c.n_common} "
        f"(in {len(c.reports)} reports)"
    )
    if c.n_common == 0:
        out.append(
            "  the trees count no reading in common: the evidence cannot tell them apart yet, "
            "and their weights are the prior weights"
        )
    out.append(
        table(
            ["tree", "log marginal likelihood", "prior weight", "posterior weight"],
            [
                [t, _num(f.log_evidence), f"{f.prior_weight:.3f}", f"{f.weight:.3f}"]
                for t, f in c.fits.items()
            ],
        )
    )
    for a, b, v in c.pairs():
        out.append(f"  log Bayes factor {a} against {b}: {_num(v)} (Bayes factor {_bf(v)})")
    deciding = c.deciding(top)
    if deciding:
        out += [
            "",
            "the reports that told them apart most (log predictive score, in order observed):",
        ]
        rows = []
        for r in deciding:
            shown = ", ".join(f"{x.indicator}={x.value}" for x in r.readings[:3])
            more = f" +{len(r.readings) - 3}" if len(r.readings) > 3 else ""
            rows.append(
                [
                    r.last_day,
                    r.source,
                    _short(shown + more, 48),
                    *(_num(r.scores[t]) for t in ids),
                    r.best,
                ]
            )
        out.append(table(["observed", "source", "readings", *ids, "better"], rows))
    if c.common.left_out:
        out += ["", "readings some trees count, left out of the Bayes factor:"]
        for x in c.common.left_out:
            rd = x.reading
            why = "; ".join(f"{k}: {v}" for k, v in x.reasons.items())
            by = ", ".join(x.counted_by) or "no tree"
            out.append(
                f"  #{rd.id} {rd.indicator}={rd.value} ({rd.observed}, {rd.source}): counted by "
                f"{by}; {why}"
            )
    for s in c.structure:
        out += ["", f"how {s.other} differs from {s.reference}:"]
        if not s.differences:
            out.append("  no difference in structure or numbers")
        for d in s.differences:
            size = f" (up to {d.size:.3f})" if d.size is not None else ""
            out.append(f"  {d.what} {d.name}: {d.detail}{size}")
    return "\n".join(out)


def _bf(log_bf: float) -> str:
    if log_bf > 700:
        return "> 1e300"
    if log_bf < -700:
        return "< 1e-300"
    value = math.exp(log_bf)
    return f"{value:.3g}"


def render_pool(p: Pool) -> str:
    """The pooled probability of each shared outcome, beside each tree's."""
    ids = list(p.weights)
    out = [f"{p.method} pool of {', '.join(ids)} as of {p.as_of}"]
    out.append("weights: " + ", ".join(f"{t} {w:.3f}" for t, w in p.weights.items()))
    if p.extremizing is not None:
        out.append(p.extremizing.describe())
    if p.log_evidence is not None:
        out.append(
            f"evidence weights from the {p.n_common} readings every tree counts (log marginal "
            "likelihood " + ", ".join(f"{t} {_num(v)}" for t, v in p.log_evidence.items()) + ")"
        )
    out.append("")
    out.append(
        table(
            ["outcome", *ids, "pooled"],
            [[o.id, *(pct(o.probabilities[t]) for t in ids), pct(o.pooled)] for o in p.outcomes],
        )
    )
    return "\n".join(out)


def render_resolutions(items: Sequence[OutcomeResolution]) -> str:
    """The resolutions recorded, retracted ones marked."""
    rows = [
        [
            r.id,
            r.outcome,
            r.answer,
            r.resolved_on,
            _short(r.source, 40),
            r.entered_by or "",
            f"retracted: {_short(r.retraction_reason or '', 40)}" if r.retracted else "",
        ]
        for r in items
    ]
    return table(["id", "outcome", "answer", "on", "source", "by", ""], rows)


def render_scores(s: Scores) -> str:
    """Each forecaster's scores, their means, the calibration tables and what is unresolved."""
    if not s.rows:
        lines = ["no resolved outcome to score: record one with scenariocast resolve"]
        for tid, outcomes in s.unresolved.items():
            lines.append(f"  {tid}: {', '.join(outcomes)} not resolved")
        return "\n".join(lines)
    rows = []
    for r in s.rows:
        rec = ""
        if r.recorded is not None:
            by = f" by {r.recorded.created_by}" if r.recorded.created_by else ""
            rec = (
                f"{pct(r.recorded.probability)} "
                f"(#{r.recorded.snapshot}{by}, {r.recorded.brier:.3f})"
            )
        rows.append(
            [
                r.forecaster,
                r.outcome,
                f"{r.answer_text()}",
                r.as_of,
                pct(r.probability),
                f"{r.brier:.3f}",
                _num(r.log_score, 3),
                f"{r.mean_brier:.3f}",
                r.days,
                rec,
            ]
        )
    out = [
        table(
            [
                "forecaster",
                "outcome",
                "resolved",
                "forecast as of",
                "p",
                "Brier",
                "log score",
                "time-averaged Brier",
                "days open",
                "recorded forecast (Brier)",
            ],
            rows,
        ),
        "",
        "means over the outcomes each forecaster was scored on (lower is better):",
        table(
            ["forecaster", "outcomes", "Brier", "log score", "time-averaged Brier"],
            [
                [m.forecaster, m.n, f"{m.brier:.3f}", _num(m.log_score, 3), f"{m.mean_brier:.3f}"]
                for m in s.summary()
            ],
        ),
    ]
    if s.extremizing:
        shown = sorted({e.describe() for e in s.extremizing.values()})
        out += ["", "extremized pool: " + "; ".join(shown)]
    out += ["", "calibration (latest forecasts before resolution, by probability bin):"]
    for f, bins in s.calibration.items():
        cells = [
            f"{b.lo:.0%}-{b.hi:.0%}: {b.n} forecast{'s' if b.n != 1 else ''}, "
            f"mean {pct(b.mean_forecast or 0.0)}, happened {pct(b.observed or 0.0)}"
            for b in bins
            if b.n
        ]
        out.append(f"  {f}: " + "; ".join(cells))
    for tid, outcomes in s.unresolved.items():
        out.append(f"not resolved in {tid}: {', '.join(outcomes)}")
    return "\n".join(out)


def render_trajectory(timeline: Timeline) -> str:
    """The forecast by date: the prior, then each date."""
    ids = list(timeline.outcomes)
    rows = []
    for k, day in enumerate(timeline.dates):
        rows.append(
            [
                "prior" if day is None else day,
                timeline.n_observations[k],
                *(pct(timeline.outcomes[o][k]) for o in ids),
            ]
        )
    return table(["as of", "readings", *ids], rows)


def render_backtest_run(result: BacktestResult) -> str:
    """A back-test on the ledger: the trajectory, then each resolved outcome's scores."""
    timeline = Timeline(
        result.tree_id,
        (None, *result.dates),
        {o: (result.priors[o], *p) for o, p in result.probabilities.items()},
        (0, *result.n_observations) if result.n_observations else (0,) * (len(result.dates) + 1),
    )
    out = [
        f"{result.tree_id}: the forecast replayed at {len(result.dates)} dates",
        render_trajectory(timeline),
    ]
    rows: list[list[object]] = []
    for oid in result.probabilities:
        res = result.resolutions.get(oid)
        if res is None:
            continue
        happened = "not settled" if res.happened is None else ("yes" if res.happened else "no")
        b, pb = result.brier(oid), result.prior_brier(oid)
        rows.append(
            [
                oid,
                happened,
                len(result.scored(oid)),
                "-" if b is None else f"{b:.3f}",
                "-" if pb is None else f"{pb:.3f}",
            ]
        )
    out.append("")
    if rows:
        out.append(
            table(["outcome", "happened", "forecasts scored", "Brier", "Brier of the prior"], rows)
        )
    else:
        out.append("no resolution of this tree's outcomes: record one with scenariocast resolve")
    return "\n".join(out)
