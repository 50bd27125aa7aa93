"""Probability reports: what they say, that user text is escaped everywhere, that the files are
written all or none, and the command line's answers to bad input. The browser check is in
tests/test_report_browser.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from scenariocast.analysis.explain import explain
from scenariocast.analysis.indicators import predictions, reported, t_quantile
from scenariocast.analysis.timeline import outcome_timeline
from scenariocast.api import report as make_report
from scenariocast.api import sensitivity as api_sensitivity
from scenariocast.api import watch as api_watch
from scenariocast.cli import app
from scenariocast.engines.exact import ExactModel
from scenariocast.engines.result import ForecastResult
from scenariocast.errors import ReportError
from scenariocast.evidence.readings import ObservedDate, Reading
from scenariocast.ledger import Ledger
from scenariocast.ledger.records import Snapshot
from scenariocast.report.content import REPORT_TORNADO, month_ranges, previous_report, web_url
from scenariocast.report.document import ProbabilityReport, build_report
from scenariocast.report.formatting import number, pct, points
from scenariocast.report.render import md_escape
from scenariocast.spec.load import load_tree, parse_tree
from tests.ledger_support import dump
from tests.report_support import (
    HOSTILE,
    NK_AS_OF,
    NK_TREE,
    SCRIPT,
    Page,
    dynamic_example,
    dynamic_example_text,
    nk_ledger,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "example-harvest.yaml"


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An empty ledger (read commands never create one) and the example tree's folder."""
    env = {
        "SCENARIOCAST_DB": str(tmp_path / "ledger.db"),
        "SCENARIOCAST_SCENARIOS": str(ROOT / "examples"),
    }
    code, _, err = run(env, "ledger", "init")
    assert code == 0, err
    return env


@pytest.fixture(scope="module")
def nk(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The NK report through the command line: an earlier forecast, a what-if, then the report.

    The earlier forecast is recorded as a snapshot as a report would record it (a report would
    cost a second computation of what to watch and what the forecast hinges on).
    """
    tmp = tmp_path_factory.mktemp("nk")
    db = tmp / "ledger.db"
    nk_ledger(db)
    env = {"SCENARIOCAST_DB": str(db), "SCENARIOCAST_SCENARIOS": str(ROOT / "scenarios")}
    out = tmp / "report"
    code, earlier, err = run(env, "forecast", str(NK_TREE), "--json", "--as-of", "2025-11-01")
    assert code == 0, err
    first = json.loads(earlier)
    # a what-if is not a report
    code, _, err = run(
        env, "forecast", str(NK_TREE), "--given", "food_shock=severe", "--as-of", NK_AS_OF
    )
    assert code == 0, err
    code, stdout, err = run(env, "report", str(NK_TREE), "--as-of", NK_AS_OF, "--out", str(out))
    assert code == 0, err
    code, forecast_out, err = run(env, "forecast", str(NK_TREE), "--json", "--as-of", NK_AS_OF)
    assert code == 0, err
    return {
        "out": out,
        "stdout": stdout,
        "first": first,
        "forecast": json.loads(forecast_out),
        "html": (out / "report.html").read_text(),
        "md": (out / "report.md").read_text(),
        "json": json.loads((out / "forecast.json").read_text()),
        "env": env,
    }


# -- the three files -----------------------------------------------------------------------------


def test_the_command_writes_three_files_and_the_figures(nk: dict[str, object]) -> None:
    out = nk["out"]
    assert isinstance(out, Path)
    assert {p.name for p in out.iterdir()} == {
        "report.html",
        "report.md",
        "forecast.json",
        "figures",
    }
    assert str(out / "report.html") in str(nk["stdout"])
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert "trajectory.svg" in figures and "tree.svg" in figures
    assert any(f.startswith("indicator-rice_price_market") for f in figures)
    for f in (out / "figures").iterdir():
        assert f.read_bytes().lstrip().startswith(b"<?xml") and b"<svg" in f.read_bytes()


def test_forecast_json_is_forecast_json(nk: dict[str, object]) -> None:
    assert nk["json"] == nk["forecast"]


def test_the_page_is_self_contained(nk: dict[str, object]) -> None:
    html = str(nk["html"])
    page = Page(html)
    assert page.attrs("img", "src"), "the page has figures"
    assert all(src.startswith("data:image/svg+xml;base64,") for src in page.attrs("img", "src"))
    assert not [t for t, _ in page.tags if t in ("script", "link", "iframe", "object", "embed")]
    assert "@import" not in html and "url(" not in html and "@font-face" not in html
    csp = [a.get("content") or "" for t, a in page.tags if a.get("http-equiv")]
    assert csp and "default-src 'none'" in csp[0] and "script-src" not in csp[0]
    # every address on the page is an http(s) link or an anchor
    for href in page.all_attrs("href"):
        assert href.startswith(("https://", "http://", "#")), href


def test_headline_table_equals_forecast_json(nk: dict[str, object]) -> None:
    data = nk["json"]
    assert isinstance(data, dict)
    page = Page(str(nk["html"]))
    rows = [a["data-outcome"] for t, a in page.tags if t == "tr" and "data-outcome" in a]
    assert rows == list(data["outcomes"])
    shown = [float(a["data-probability"] or "nan") for _, a in page.tags if "data-probability" in a]
    assert shown == [o["probability"] for o in data["outcomes"].values()]
    for o in data["outcomes"].values():
        assert pct(o["probability"]) in str(nk["html"])
        assert f"**{pct(o['probability'])}**" in str(nk["md"])


def test_change_since_the_previous_report_ignores_what_ifs(nk: dict[str, object]) -> None:
    data, first = nk["json"], nk["first"]
    assert isinstance(data, dict) and isinstance(first, dict)
    html = str(nk["html"])
    assert "as of 2025-11-01" in html  # the earlier report, not the what-if made since
    for oid, o in data["outcomes"].items():
        change = o["probability"] - first["outcomes"][oid]["probability"]
        assert points(change) in html
    assert "No earlier report of this tree" not in html


def test_sections_and_warnings(nk: dict[str, object]) -> None:
    html = str(nk["html"])
    for section in ("headline", "trajectory", "movers", "tree", "indicators", "method"):
        assert f'id="{section}"' in html
    assert 'id="diagnostics"' not in html  # the exact engine has none
    assert "Stale evidence" in html and "corn_price_market" in html
    assert "Resolution criteria" in html and "<details>" in html
    # resolution criteria and dates, a click away
    tree = load_tree(NK_TREE)
    for o in tree.outcomes.values():
        assert " ".join(o.resolution.split()).replace("'", "&#39;")[:60] in html
    # the method is generated from the tree: every source and indicator is named
    for name in (*tree.sources, *tree.indicators):
        assert name in html
    assert "0.8" in html and "daily_nk" in html


def test_user_text_is_escaped_and_only_web_addresses_are_links(nk: dict[str, object]) -> None:
    html, md = str(nk["html"]), str(nk["md"])
    assert SCRIPT not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = Page(html)
    hrefs = page.all_attrs("href")
    assert "https://example.org/visit?a=1&b=2" in hrefs
    for _, _, _, url in HOSTILE[:-1]:
        assert url not in hrefs
    assert not any(h.lower().startswith(("javascript:", "data:", "//", "..")) for h in hrefs)
    assert SCRIPT in "".join(page.text)  # shown as text
    # Markdown: no raw HTML from users, no link but to http(s), no markup from notes
    assert SCRIPT not in md and "<img src=x" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    destinations = re.findall(r"(?<!\\)\]\(<?([^)>]*)>?\)", md)  # not an escaped \]
    assert destinations
    assert all(d.startswith(("https://", "http://", "figures/")) for d in destinations), (
        destinations
    )
    assert "\\*\\*not bold\\*\\*" in md and "\\[x\\](javascript:y)" in md


def test_the_markdown_links_its_figures(nk: dict[str, object]) -> None:
    out = nk["out"]
    assert isinstance(out, Path)
    images = re.findall(r"!\[[^\]]*\]\(<(figures/[^>]+)>\)", str(nk["md"]))
    assert "figures/trajectory.svg" in images and "figures/tree.svg" in images
    assert all((out / i).is_file() for i in images)
    assert "## What moved the forecast" in str(nk["md"])


# -- escaping and links, unit by unit --------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/a?b=1&c=2", "https://example.org/a?b=1&c=2"),
        ("http://example.org", "http://example.org"),
        ("HTTPS://EXAMPLE.ORG/", "HTTPS://EXAMPLE.ORG/"),
        ("javascript:alert(1)", None),
        ("JavaScript:alert(1)", None),
        (" javascript:alert(1)", None),
        ("java\tscript:alert(1)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("vbscript:msgbox", None),
        ("file:///etc/passwd", None),
        ("/relative/path", None),
        ("../up", None),
        ("page.html", None),
        ("//evil.example/x", None),
        ("http:evil", None),
        ("https://exa mple.org", None),
        ("https://", None),
        ("", None),
        (None, None),
    ],
)
def test_only_http_and_https_addresses_are_links(url: str | None, expected: str | None) -> None:
    assert web_url(url) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain words", "plain words"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("**bold** and _it_", "\\*\\*bold\\*\\* and \\_it\\_"),
        ("[x](javascript:y)", "\\[x\\](javascript:y)"),
        ("a | b", "a \\| b"),
        ("# heading", "\\# heading"),
        ("- item", "\\- item"),
        ("1. item", "1\\. item"),
        ("0.8", "0.8"),
        ("`code`", "\\`code\\`"),
        ("===", "\\==="),
        ("two\nlines", "two lines"),
        ("a & b", "a &amp; b"),
    ],
)
def test_markdown_escaping(text: str, expected: str) -> None:
    assert md_escape(text) == expected


def test_hostile_tree_text_is_escaped(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    text = text.replace(
        "description: >\n  A toy tree that shows the format: two drivers, one response, a "
        "resolvable outcome\n  and indicators of three kinds.",
        'description: "<img src=x onerror=alert(1)> *stars* [l](javascript:x)"',
    )
    assert "*stars*" in text
    text = text.replace(
        "    description: A market price survey network.",
        "    description: <b>bold</b>\n    url: javascript:alert(1)",
    )
    text = text.replace(
        "title: Harvest failure", "title: <script>alert(9)</script> Harvest failure"
    )
    tree = parse_tree(text, file="hostile.yaml")
    rep = make_report(tree, [], as_of=dt.date(2026, 4, 30))
    html, md = rep.html(), rep.markdown()
    for raw in ("<img src=x", "<script>alert(9)", "<b>bold</b>"):
        assert raw not in html and raw not in md
    assert "&lt;script&gt;alert(9)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html.lower()
    assert not re.search(r"(?<!\\)\]\(<?javascript", md)
    assert "\\[l\\](javascript:x)" in md  # the text, escaped
    assert "\\*stars\\*" in md


# -- content -------------------------------------------------------------------------------------


def test_a_tree_with_no_readings_is_a_sensible_report(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _, err = run(env, "report", str(EXAMPLE), "--as-of", "2026-04-30", "--out", str(out))
    assert code == 0, err
    data = json.loads((out / "forecast.json").read_text())
    html = (out / "report.html").read_text()
    assert data["n_observations"] == 0
    for o in data["outcomes"].values():
        assert o["probability"] == pytest.approx(o["prior"])
        assert pct(o["probability"]) in html
    assert "No readings yet" in html and "No report has moved the forecast yet" in html
    assert "there is no trajectory yet" in html
    assert "no reading yet" in html  # every indicator listed as waiting
    assert not (out / "figures" / "trajectory.svg").exists()
    assert (out / "figures" / "tree.svg").exists()
    assert "No readings yet" in (out / "report.md").read_text()


def test_a_ledger_whose_readings_are_all_retracted(env: dict[str, str], tmp_path: Path) -> None:
    for value, on in (("yes", "2026-03"), ("no", "2026-04")):
        code, _, err = run(
            env, "observe", "distribution_report", value, "--on", on, "--source", "wire"
        )
        assert code == 0, err
    for rid in ("1", "2"):
        assert run(env, "retract", rid, "--reason", "misdated")[0] == 0
    out = tmp_path / "out"
    code, _, err = run(env, "report", str(EXAMPLE), "--as-of", "2026-04-30", "--out", str(out))
    assert code == 0, err
    html = (out / "report.html").read_text()
    assert "All 2 readings of this tree" in html and "retracted" in html
    assert json.loads((out / "forecast.json").read_text())["n_observations"] == 0
    assert "2 readings, none counts" in html


def test_readings_after_the_as_of_date_are_a_warning(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "observe", "distribution_report", "yes", "--on", "2026-03", "--source", "wire")
    run(env, "observe", "distribution_report", "yes", "--on", "2026-06", "--source", "wire")
    out = tmp_path / "out"
    code, _, err = run(env, "report", str(EXAMPLE), "--as-of", "2026-04-30", "--out", str(out))
    assert code == 0, err
    html = (out / "report.html").read_text()
    assert "1 reading is dated after the as-of date 2026-04-30" in html
    assert "distribution_report: 1 reading, observed 2026-06" in html


def _readings() -> list[Reading]:
    return [
        Reading(1, "rice_price", "16000", ObservedDate.parse("2026-05-10"), "survey", location="A"),
        Reading(2, "rice_price", "17500", ObservedDate.parse("2026-05-10"), "survey", location="B"),
        Reading(3, "crackdown_report", "yes", ObservedDate.parse("2026-05"), "wire"),
        Reading(4, "rice_price", "9000", ObservedDate.parse("2026-07-10"), "survey", location="A"),
    ]


def test_the_dynamic_example_reports_its_path_to_the_horizon() -> None:
    tree = dynamic_example()
    rep = make_report(tree, _readings(), as_of=dt.date(2026, 5, 31))
    c = rep.content
    assert c.dynamic and c.now_step == "2026-05" and c.horizon == "2026-12"
    assert "paths" in rep.figures and "trajectory" in rep.figures
    html = rep.html()
    assert "Month by month to the horizon" in html and "By 2026-12:" in html
    assert "states at the horizon's end (2026-12)" in unescape(html)
    assert "season" in html and "May–Aug" in html  # the calendar node's months
    assert "1 reading is dated after the as-of date" in html  # the July price
    # the indicator on (shock, season): the season of the as-of step holds, the other is 0
    rice = next(v for v in c.indicators if v.id == "rice_price")
    lean = [r for r in rice.rows if "season = lean" in r.states]
    other = [r for r in rice.rows if "season = other" in r.states]
    assert sum(r.now or 0 for r in lean) == pytest.approx(1.0)
    assert all(r.now == 0.0 for r in other)
    assert rep.result.steps and "crisis_in_2026" in html


def test_movers_are_the_effects_on_todays_forecast(example_tree) -> None:  # type: ignore[no-untyped-def]
    """Each mover's effect is the forecast with every report minus the forecast without it."""
    readings = [
        Reading(i, "distribution_report", "yes", ObservedDate.parse(f"2026-0{i}"), "wire")
        for i in range(1, 4)
    ] + [Reading(9, "crackdowns", "0", ObservedDate.parse("2026-02"), "wire", note="quiet")]
    as_of = dt.date(2026, 4, 30)
    rep = make_report(example_tree, readings, as_of=as_of)
    expl = rep.explanation
    post = rep.result.outcomes["rationing_returns"]
    assert len(rep.content.movers) == len(expl.contributions) == 3  # reports of 02 merge
    assert [m.mark for m in rep.content.movers] == ["A", "B", "C"]
    for m in rep.content.movers:
        ids = {r.id for r in m.readings}
        rest = [r for r in readings if r.id not in ids]
        without = ExactModel(example_tree).forecast(rest, as_of=as_of).outcomes
        for oid, change in m.changes.items():
            assert change == pytest.approx(
                rep.result.outcomes[oid].probability - without[oid].probability, abs=1e-9
            )
    # three reports of distribution telling the same story: each is worth less today than the
    # three together, so the effects add up to less than the change from prior to now
    total = sum(m.changes["rationing_returns"] for m in rep.content.movers)
    assert 0 < total < post.probability - post.prior
    feb = rep.content.movers[1]
    assert {r.indicator for r in feb.readings} == {"distribution_report", "crackdowns"}


def test_previous_report_rules() -> None:
    result = make_report(load_tree(EXAMPLE), [], as_of=dt.date(2026, 4, 30)).result

    def snap(i: int, **kw: object) -> Snapshot:
        base: dict[str, object] = {
            "id": i,
            "created_at": dt.datetime(2026, 4, i),
            "tree_id": result.tree_id,
            "tree_hash": result.tree_hash,
            "engine": "exact",
            "as_of": dt.date(2026, 4, 1),
            "given": {},
            "n_readings": 3,
            "readings_hash": "other",
            "payload": {"outcomes": {"rationing_returns": 0.5}},
        }
        base.update(kw)
        return Snapshot(**base)  # type: ignore[arg-type]

    good = snap(1)
    history = [
        good,
        snap(2, given={"harvest": "short"}),  # a what-if
        snap(3, tree_id="other-tree"),
        snap(4, as_of=dt.date(2026, 5, 30)),  # as of a later day
        snap(5, readings_hash=result.readings_hash, as_of=result.as_of),  # this forecast again
    ]
    assert previous_report(history, result) == good
    assert previous_report(history[1:], result) is None
    changed = snap(6, readings_hash=result.readings_hash, as_of=result.as_of, tree_hash="x")
    assert previous_report([*history, changed], result) == changed


def _with(result: ForecastResult, *, converged: bool, intervals: bool = True) -> ForecastResult:
    outcomes = {
        oid: dataclasses.replace(
            o, interval=(max(0.0, o.probability - 0.07), min(1.0, o.probability + 0.05))
        )
        for oid, o in result.outcomes.items()
    }
    steps = {
        n: tuple(
            dataclasses.replace(
                x,
                intervals={
                    s: (max(0, p - 0.1), min(1, p + 0.1)) for s, p in x.probabilities.items()
                },
            )
            for x in path
        )
        for n, path in result.steps.items()
    }
    diagnostics = {
        "converged": converged,
        "reasons": [] if converged else ["R-hat 1.08 for rationing (above 1.01)", "12 divergences"],
        "rhat_max": np.float64(1.002 if converged else 1.08),
        "ess_bulk_min": 1850.0 if converged else 95.0,
        "ess_tail_min": 1500.0 if converged else 120.0,
        "divergences": np.int64(0 if converged else 12),
        "chains": 4,
    }
    return dataclasses.replace(
        result,
        engine="pymc",
        outcomes=outcomes,
        steps=steps if intervals else result.steps,
        diagnostics=diagnostics,
    )


def _rebuild(rep: ProbabilityReport, result: ForecastResult) -> ProbabilityReport:
    return build_report(
        rep.tree,
        result,
        rep.explanation,
        rep.timeline,
        readings=_readings(),
        previous=None,
    )


def test_credible_intervals_and_diagnostics_appear_when_present() -> None:
    rep = make_report(dynamic_example(), _readings(), as_of=dt.date(2026, 5, 31))
    assert not rep.content.has_intervals and rep.content.diagnostics is None
    assert "90% credible interval" not in rep.html()
    good = _rebuild(rep, _with(rep.result, converged=True))
    html, md = good.html(), good.markdown()
    assert good.content.has_intervals and good.content.step_intervals
    assert "90% credible interval" in html and "90% credible interval" in md
    for o in good.result.outcomes.values():
        assert o.interval is not None
        assert f"{pct(o.interval[0])} – {pct(o.interval[1])}" in html
    assert 'id="diagnostics"' in html and "Converged." in html and "## Diagnostics" in md
    assert "1.002" in html and "1,850" in html and "chains" in html
    assert "did not converge" not in html
    assert "MCMC" not in html and "Markov chain Monte Carlo (PyMC)" in html
    assert good.figures["paths"].svg != rep.figures["paths"].svg  # the bands are drawn
    assert json.loads(good.forecast_json())["steps"]["shock"][0]["intervals"]["calm"]


def test_a_sampler_that_did_not_converge_is_the_first_thing_said() -> None:
    rep = make_report(dynamic_example(), _readings(), as_of=dt.date(2026, 9, 30))
    bad = _rebuild(rep, _with(rep.result, converged=False, intervals=False))
    notices = bad.content.notices
    assert notices[0].level == "danger" and "did not converge" in notices[0].title
    assert "12 divergences" in notices[0].items
    html = bad.html()
    assert html.index("did not converge") < html.index('id="headline"')
    assert "Not converged." in html and "not met" in html
    assert bad.content.diagnostics is not None
    assert [r.ok for r in bad.content.diagnostics.rows][:4] == [False, False, False, False]
    md = bad.markdown()
    assert md.index("did not converge") < md.index("## Where the probabilities stand")


def test_indicator_predictions_in_the_units_readings_are_entered_in() -> None:
    tree = load_tree(NK_TREE)
    rice = {
        (p.states["food_shock"], p.states["market_controls"]): p
        for p in predictions(tree, "rice_price_market")
    }
    assert len(rice) == 4 * 3
    serious = rice["serious", "tolerant"]
    # serious, tolerant: mu 1.4031, sigma 0.2802 on the log change against 4,800 KPW/kg
    assert serious.median == pytest.approx(4800 * 2.718281828459045**1.4031)
    assert serious.low < serious.median < serious.high  # type: ignore[operator]
    # Student t with 4 degrees of freedom: the 95% quantile is 2.1318
    assert serious.high == pytest.approx(
        4800 * 2.718281828459045 ** (1.4031 + 2.13185 * 0.2802), rel=1e-4
    )
    visit = predictions(tree, "china_high_level_visit")
    assert [p.probabilities for p in visit] == [{"yes": 0.1}, {"yes": 0.35}, {"yes": 0.75}]
    example = load_tree(EXAMPLE)
    counts = predictions(example, "crackdowns")
    assert counts[0].low == 0 and counts[2].median == 3  # Poisson(3): median 3
    assert reported(None, 2.0) == 2.0


def test_number_and_percentage_formats() -> None:
    assert pct(0.4213) == "42.1%" and pct(0.0) == "0%" and pct(1.0) == "100%"
    assert pct(0.0004) == "<0.1%" and pct(0.9996) == ">99.9%" and pct(0.0004, 0) == "<1%"
    assert points(0.042) == "+4.2 pp" and points(-0.003) == "−0.3 pp" and points(1e-5) == "±0.0 pp"
    assert number(16234.0) == "16,200" and number(5.713) == "5.71" and number(-0.0123) == "−0.0123"
    assert month_ranges([5, 6, 7, 8]) == "May–Aug"
    assert month_ranges([1, 2, 3, 4, 9, 10, 11, 12]) == "Sep–Apr"
    assert month_ranges([1, 3]) == "Jan, Mar"


def test_the_same_report_draws_the_same_figures() -> None:
    a = make_report(dynamic_example(), _readings(), as_of=dt.date(2026, 5, 31))
    b = make_report(dynamic_example(), _readings(), as_of=dt.date(2026, 5, 31))
    assert {k: f.svg for k, f in a.figures.items()} == {k: f.svg for k, f in b.figures.items()}


# -- writing: all or none ------------------------------------------------------------------


def test_a_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rep = make_report(load_tree(EXAMPLE), [], as_of=dt.date(2026, 4, 30))
    calls = {"n": 0}
    real = Path.write_bytes

    def flaky(self: Path, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", flaky)
    with pytest.raises(ReportError, match="No space left on device"):
        rep.write(tmp_path / "new")
    assert list(tmp_path.iterdir()) == []
    # an existing report is left as it was
    monkeypatch.setattr(Path, "write_bytes", real)
    first = rep.write(tmp_path / "old")
    before = {p: p.read_bytes() for p in (tmp_path / "old").rglob("*") if p.is_file()}
    calls["n"] = 0
    monkeypatch.setattr(Path, "write_bytes", flaky)
    with pytest.raises(ReportError):
        rep.write(tmp_path / "old")
    after = {p: p.read_bytes() for p in (tmp_path / "old").rglob("*") if p.is_file()}
    assert after == before and first.html.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["old"]


def test_writing_into_an_existing_folder_replaces_only_the_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "stale.svg").write_text("old figure")
    (out / "notes.txt").write_text("mine")
    (out / "report.html").write_text("old page")
    tree = load_tree(EXAMPLE)
    rep = make_report(tree, [], as_of=dt.date(2026, 4, 30))
    files = rep.write(out)
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / "figures" / "stale.svg").exists()
    assert files.html.read_text().startswith("<!doctype html>")
    # no readings: the tree and, from the prior alone, what each outcome hinges on
    assert sorted(p.name for p in files.figures) == sorted(
        ["tree.svg", *(f"tornado-{o}.svg" for o in tree.outcomes)]
    )
    assert {p.name for p in out.iterdir()} == {
        "notes.txt",
        "figures",
        "report.html",
        "report.md",
        "forecast.json",
    }
    assert oct((out / "figures").stat().st_mode & 0o777) == oct(0o777 & ~_umask())


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- the command line -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "no-such-tree.yaml", "--out", "{tmp}/out"], "no such file"),
        (["report", str(EXAMPLE), "--out", "{tmp}/a-file/out"], "cannot write the report"),
        (["report", str(EXAMPLE), "--out", "{tmp}/a-file"], "is a file, not a folder"),
        (["report", str(EXAMPLE), "--out", "{tmp}/out", "--as-of", "2026-13-01"], "YYYY-MM-DD"),
        (["report", str(EXAMPLE), "--out", "{tmp}/out", "--as-of", "soon"], "YYYY-MM-DD"),
        (
            ["report", str(EXAMPLE), "--out", "{tmp}/a-file", "--engine", "pymc"],
            "is a file, not a folder",
        ),
        (
            ["report", str(ROOT / "tests/fixtures/spec/wrong_cycle.yaml"), "--out", "{tmp}/out"],
            "cycle",
        ),
    ],
)
def test_bad_input_is_one_clear_line_and_writes_nothing(
    env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    run(env, "observe", "distribution_report", "yes", "--on", "2026-04", "--source", "wire")
    (tmp_path / "a-file").write_text("not a folder")
    before = dump(Ledger(env["SCENARIOCAST_DB"]))

    def files() -> list[str]:  # the ledger's own -wal and -shm files come and go
        return sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("ledger.db-"))

    listing = files()
    code, out, err = run(env, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert code == 1, (out, err)
    assert message in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert "Traceback" not in out + err
    assert dump(Ledger(env["SCENARIOCAST_DB"])) == before  # no snapshot either
    assert files() == listing


def test_wrong_usage_exits_2(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "report", str(EXAMPLE))[0] == 2  # --out is required
    assert run(env, "report", str(EXAMPLE), "--out", str(tmp_path), "--engine", "mcmc")[0] == 2
    code, out, _ = run(env, "report", "--help")
    assert code == 0 and "--engine" in out and "--as-of" in out and "--out" in out


def test_the_report_records_a_snapshot(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "observe", "distribution_report", "yes", "--on", "2026-04", "--source", "wire")
    code, _, err = run(
        env, "report", str(EXAMPLE), "--as-of", "2026-04-30", "--out", str(tmp_path / "o")
    )
    assert code == 0, err
    snaps = Ledger(env["SCENARIOCAST_DB"]).history()
    assert len(snaps) == 1 and snaps[0].given == {} and snaps[0].n_readings == 1


def test_the_report_imports_no_sampler(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "observe", "distribution_report", "yes", "--on", "2026-04", "--source", "wire")
    code = (
        "import sys\n"
        "from scenariocast.cli import app\n"
        f"sys.argv = ['scenariocast', 'report', {str(EXAMPLE)!r}, "
        f"'--out', {str(tmp_path / 'o')!r}]\n"
        "try:\n    app()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = sorted(m for m in ('pymc', 'arviz', 'pytensor', 'pandas') if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env={**env}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stderr


def test_the_api_report_matches_its_parts(example_tree) -> None:  # type: ignore[no-untyped-def]
    readings = [
        Reading(1, "distribution_report", "yes", ObservedDate.parse("2026-03"), "wire"),
        Reading(
            2, "rice_price", "9000", ObservedDate.parse("2026-03-02"), "market_survey", location="A"
        ),
    ]
    day = dt.date(2026, 4, 30)
    rep = make_report(example_tree, readings, as_of=day)
    model = ExactModel(example_tree)
    want = model.forecast(readings, as_of=day)
    assert {o: f.probability for o, f in rep.result.outcomes.items()} == {
        o: f.probability for o, f in want.outcomes.items()
    }
    assert rep.explanation.posterior == explain(example_tree, readings, as_of=day).posterior
    tl = outcome_timeline(example_tree, readings)
    assert rep.timeline.outcomes == tl.outcomes


def _section(html: str, sid: str) -> str:
    """The HTML of one ``<section id=...>`` of the report ('' if it is not there)."""
    m = re.search(rf'<section id="{sid}">(.*?)</section>', html, re.DOTALL)
    return m.group(1) if m else ""


def _md_section(md: str, title: str) -> str:
    """The Markdown under one ``## title`` heading, up to the next one ('' if absent)."""
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", md, re.DOTALL | re.MULTILINE)
    return m.group(1) if m else ""


def _watch_rows(section: str) -> dict[str, list[list[str]]]:
    """Per outcome heading, the cells of each row of its "What to watch next" table."""
    out: dict[str, list[list[str]]] = {}
    for part in re.split(r"<h3>", section)[1:]:
        heading = unescape(re.sub(r"<[^>]+>", "", part.split("</h3>", 1)[0])).strip()
        body = part.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in part else ""
        rows = re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL)
        out[heading] = [
            [
                unescape(re.sub(r"<[^>]+>", "", c)).strip()
                for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.DOTALL)
            ]
            for r in rows
        ]
    return out


def _example_readings() -> list[Reading]:
    return [
        Reading(1, "distribution_report", "yes", ObservedDate.parse("2026-03"), "wire"),
        Reading(
            2, "rice_price", "9000", ObservedDate.parse("2026-03-02"), "market_survey", location="A"
        ),
    ]


def test_what_to_watch_next_shows_the_watch_ranking(example_tree) -> None:  # type: ignore[no-untyped-def]
    readings, day = _example_readings(), dt.date(2026, 4, 30)
    rep = make_report(example_tree, readings, as_of=day)
    want = api_watch(example_tree, readings, as_of=day)
    html, md = rep.html(), rep.markdown()
    tables = _watch_rows(_section(html, "watch"))
    md_part = _md_section(md, "What to watch next")
    assert tables and md_part, "both files have the section"
    assert len(tables) == len(example_tree.outcomes)
    for oid, now in want.outcomes.items():
        heading = next(h for h in tables if h.lower().startswith(oid.replace("_", " ")))
        assert pct(now.probability) in heading
        ranked = want.ranked(oid)[:5]
        rows = tables[heading]
        assert [r[1] for r in rows] == [c.name for c in ranked]
        for row, c in zip(rows, ranked, strict=True):
            v = c.values[oid]
            assert row[3] == f"{v.gain:.4f}"
            assert row[4] == pct(v.share)
            assert row[5] == f"{100 * abs(v.expected_change):.1f} pp"
            assert row[6] == f"{100 * abs(v.largest_change):.1f} pp"
            assert f"| `{c.name}` |" in md_part and f"| {v.gain:.4f} |" in md_part
    assert "Cost" not in _section(html, "watch")  # no indicator of this tree has a cost


def test_what_the_forecast_hinges_on_shows_the_exact_tornado(example_tree) -> None:  # type: ignore[no-untyped-def]
    readings, day = _example_readings(), dt.date(2026, 4, 30)
    rep = make_report(example_tree, readings, as_of=day)
    want = api_sensitivity(example_tree, readings, as_of=day, top=REPORT_TORNADO)
    html, md = rep.html(), rep.markdown()
    section, md_part = _section(html, "hinges"), _md_section(md, "What the forecast hinges on")
    assert section and md_part, "both files have the section"
    page = Page(section)
    for oid, now in want.probabilities.items():
        bars = want.tornado(oid, REPORT_TORNADO)
        assert bars, oid
        fig = rep.figures[f"tornado-{oid}"]
        # the chart's image is inside the page, its description names each bar's ends
        assert fig.data_uri in page.attrs("img", "src")
        assert f"figures/tornado-{oid}.svg" in md_part
        alt = unescape(fig.alt)
        assert pct(now) in alt
        for par, eff in bars[:5]:
            assert par.label in alt
            assert f"moves it from {pct(eff.at_low)} to {pct(eff.at_high)}" in alt
            assert eff.exact  # the report's bars are recomputed, not first-order estimates
        # the first three in words, with the numbers of the analysis
        text = unescape(re.sub(r"<[^>]+>", "", section))
        for par, eff in bars[:3]:
            assert par.label in text
            assert f"from {pct(eff.at_low)} to {pct(eff.at_high)}" in text
            assert pct(eff.at_low) in md_part and pct(eff.at_high) in md_part


def test_costs_appear_in_what_to_watch_next() -> None:
    text = EXAMPLE.read_text().replace(
        "    rationale: A short harvest raises prices against the baseline.\n",
        "    rationale: A short harvest raises prices against the baseline.\n    cost: 4\n",
    )
    assert "cost: 4" in text
    tree = parse_tree(text, file="costly.yaml")
    readings, day = _example_readings(), dt.date(2026, 4, 30)
    rep = make_report(tree, readings, as_of=day)
    want = api_watch(tree, readings, as_of=day)
    rice = next(c for c in want.indicators if c.name == "rice_price")
    html, md = _section(rep.html(), "watch"), _md_section(rep.markdown(), "What to watch next")
    assert "Bits per cost" in html and "Bits per cost" in md
    for oid in want.outcomes:
        per_cost = rice.gain_per_cost(oid)
        assert per_cost is not None
        assert per_cost == pytest.approx(rice.values[oid].gain / 4)
        assert f"{per_cost:.4f}" in html and f"| {per_cost:.4f} |" in md


def test_the_nk_report_says_what_to_watch_and_what_it_hinges_on(nk: dict[str, object]) -> None:
    html, md, out = str(nk["html"]), str(nk["md"]), nk["out"]
    assert isinstance(out, Path)
    tree = load_tree(NK_TREE)
    env = nk["env"]
    assert isinstance(env, dict)
    want = api_watch(tree, Ledger(env["SCENARIOCAST_DB"]), as_of=dt.date.fromisoformat(NK_AS_OF))
    tables = _watch_rows(_section(html, "watch"))
    assert len(tables) == len(tree.outcomes)
    for oid in tree.outcomes:
        heading = next(h for h in tables if h.lower().startswith(oid.replace("_", " ")))
        ranked = want.ranked(oid)[:5]
        assert [r[1] for r in tables[heading]] == [c.name for c in ranked]
        assert [r[3] for r in tables[heading]] == [f"{c.values[oid].gain:.4f}" for c in ranked]
        assert (out / "figures" / f"tornado-{oid}.svg").is_file()
        assert f"(<figures/tornado-{oid}.svg>)" in md
    hinges = _section(html, "hinges")
    assert hinges.count("<figure>") == len(tree.outcomes)
    assert "## What to watch next" in md and "## What the forecast hinges on" in md
    # the sections sit before the tree, after what moved the forecast
    assert html.index('id="movers"') < html.index('id="watch"') < html.index('id="hinges"')
    assert html.index('id="hinges"') < html.index('id="tree"')


def test_dynamic_example_on_the_command_line(env: dict[str, str], tmp_path: Path) -> None:
    scen = tmp_path / "scenarios"
    scen.mkdir()
    (scen / "lean-year.yaml").write_text(dynamic_example_text())
    env = {**env, "SCENARIOCAST_SCENARIOS": str(scen)}
    for value, on, loc in (("16000", "2026-05-10", "A"), ("17500", "2026-05-10", "B")):
        code, _, err = run(
            env, "observe", "rice_price", value, "--on", on, "--source", "survey", "--location", loc
        )
        assert code == 0, err
    out = tmp_path / "out"
    code, _, err = run(
        env, "report", str(scen / "lean-year.yaml"), "--as-of", "2026-05-31", "--out", str(out)
    )
    assert code == 0, err
    data = json.loads((out / "forecast.json").read_text())
    assert data["steps"] and (out / "figures" / "paths.svg").exists()
    shutil.rmtree(out)


def test_a_tree_without_outcomes_or_indicators_still_reports() -> None:
    tree = parse_tree(
        "nodes:\n  a: {states: [x, y], probabilities: {x: 0.3, y: 0.7}}\n"
        "  b:\n    states: [u, v]\n    parents: [a]\n    probabilities:\n"
        "      - {when: {a: x}, then: {u: 0.9, v: 0.1}}\n"
        "      - {when: {a: y}, then: {u: 0.2, v: 0.8}}\n",
        file="bare.yaml",
    )
    rep = make_report(tree, [], as_of=dt.date(2026, 1, 1))
    html, md = rep.html(), rep.markdown()
    assert "This tree has no outcomes" in html and "This tree has no outcomes" in md
    assert list(rep.figures) == ["tree"]
    assert "56.0%" in html  # the most probable scenario: a = y, b = v


@pytest.mark.parametrize("nu", [0.5, 1.0, 2.0, 4.0, 7.5, 30.0, 1000.0])
@pytest.mark.parametrize("q", [0.6, 0.95, 0.999])
def test_student_t_quantile_against_scipy(nu: float, q: float) -> None:
    from scipy import stats

    assert t_quantile(q, nu) == pytest.approx(stats.t.ppf(q, nu), rel=1e-10)
