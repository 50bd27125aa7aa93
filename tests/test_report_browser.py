"""The HTML report in a real browser: Debian's Chromium, headless, driven by Playwright.

The page is opened from a file with every request other than file: and data: blocked and
recorded, so a page that needed the network would show it. The test saves a full-page
screenshot (in pytest's temporary folder, and in ``$SCENARIOCAST_SCREENSHOTS`` when set), and
checks that nothing went to the console, no script ran, every figure drew, and the headline
probabilities on the page are those of forecast.json.

Playwright drives the browser that ``scripts/ci-browser.sh`` installs (``/usr/bin/chromium``, or
``$SCENARIOCAST_CHROMIUM``); it never downloads one. Without Chromium or Playwright the test is
skipped, except under ``CI=true``, where that is a failure: CI cannot pass by skipping.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scenariocast.cli import app
from scenariocast.report.formatting import pct
from tests.report_support import (
    NK_AS_OF,
    NK_TREE,
    SCRIPT,
    dynamic_example_text,
    nk_ledger,
)

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("SCENARIOCAST_CHROMIUM", "/usr/bin/chromium")
#: Flags for a headless Chromium on a machine without a network (no lookups, no updates).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true the browser check must run (scripts/ci-browser.sh)")
    pytest.skip(f"{reason} (install it with scripts/ci-browser.sh)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        # a fresh profile in a temporary folder is Playwright's default
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _run(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def _open(browser: Any, html: Path, shot: Path, *, media: str = "screen") -> dict[str, Any]:
    """Open ``html``, blocking any request but file: and data:; what the page did."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    seen: dict[str, Any] = {"console": [], "errors": [], "blocked": [], "dialogs": []}
    page.on(
        "console",
        lambda m: (
            seen["console"].append(f"{m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))

    def on_dialog(d: Any) -> None:
        seen["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)

    def route(r: Any) -> None:
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            seen["blocked"].append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.emulate_media(media=media)
    page.goto(html.as_uri(), wait_until="load")
    seen["broken_images"] = page.eval_on_selector_all(
        "img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt)"
    )
    seen["n_images"] = page.eval_on_selector_all("img", "imgs => imgs.length")
    seen["rows"] = page.eval_on_selector_all(
        "tr[data-outcome]",
        """rows => rows.map(r => ({
            id: r.dataset.outcome,
            text: r.querySelector('.now-value').innerText.trim(),
            value: r.querySelector('td.now').dataset.probability,
        }))""",
    )
    seen["text"] = page.inner_text("body")
    seen["js_links"] = page.eval_on_selector_all(
        "a[href]", "as => as.map(a => a.href).filter(h => !/^https?:/i.test(h) && !h.includes('#'))"
    )
    page.screenshot(path=str(shot), full_page=True)
    keep = os.environ.get("SCENARIOCAST_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    page.close()
    return seen


def _check(seen: dict[str, Any], data: dict[str, Any], shot: Path) -> None:
    assert seen["console"] == [], seen["console"]
    assert seen["errors"] == [], seen["errors"]
    assert seen["dialogs"] == [], "a script ran: " + repr(seen["dialogs"])
    assert seen["blocked"] == [], "the page asked the network for " + repr(seen["blocked"])
    assert seen["n_images"] >= 2 and seen["broken_images"] == [], seen["broken_images"]
    assert seen["js_links"] == [], seen["js_links"]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    rows = seen["rows"]
    assert [r["id"] for r in rows] == list(data["outcomes"])
    for r in rows:
        p = data["outcomes"][r["id"]]["probability"]
        assert float(r["value"]) == p
        assert r["text"] == pct(p)


def test_the_nk_report_in_chromium(browser: Any, tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    nk_ledger(db)  # the shipped evidence, and readings with hostile notes and addresses
    env = {"SCENARIOCAST_DB": str(db), "SCENARIOCAST_SCENARIOS": str(ROOT / "scenarios")}
    out = tmp_path / "report"
    _run(env, "report", str(NK_TREE), "--as-of", "2025-11-01", "--out", str(out))
    _run(env, "report", str(NK_TREE), "--as-of", NK_AS_OF, "--out", str(out))
    data = json.loads((out / "forecast.json").read_text())
    shot = tmp_path / "nk-2026-report.png"
    seen = _open(browser, out / "report.html", shot)
    _check(seen, data, shot)
    text = seen["text"]
    assert SCRIPT in text  # the hostile note shows as text
    assert "Stale evidence" in text and "What moved the forecast" in text
    # on paper too
    paper = tmp_path / "nk-2026-report-print.png"
    _check(_open(browser, out / "report.html", paper, media="print"), data, paper)


def test_the_dynamic_example_report_in_chromium(browser: Any, tmp_path: Path) -> None:
    scen = tmp_path / "scenarios"
    scen.mkdir()
    tree = scen / "lean-year.yaml"
    tree.write_text(dynamic_example_text())
    env = {"SCENARIOCAST_DB": str(tmp_path / "l.db"), "SCENARIOCAST_SCENARIOS": str(scen)}
    for value, on, where in (
        ("5600", "2026-01-20", "A"),
        ("5900", "2026-01-20", "B"),
        ("11800", "2026-03-15", "A"),
        ("12500", "2026-03-15", "B"),
    ):
        _run(
            env,
            "observe",
            "rice_price",
            value,
            "--on",
            on,
            "--source",
            "survey",
            "--location",
            where,
        )
    _run(env, "observe", "crackdown_report", "yes", "--on", "2026-03", "--source", "wire")
    out = tmp_path / "report"
    _run(env, "report", str(tree), "--as-of", "2026-03-31", "--out", str(out))
    data = json.loads((out / "forecast.json").read_text())
    shot = tmp_path / "lean-year-report.png"
    seen = _open(browser, out / "report.html", shot)
    _check(seen, data, shot)
    assert "Month by month to the horizon" in seen["text"]


def test_the_nk_comparison_in_chromium(browser: Any, tmp_path: Path) -> None:
    """compare --out: the two North Korea trees, with hostile notes among the readings."""
    db = tmp_path / "ledger.db"
    nk_ledger(db)
    env = {"SCENARIOCAST_DB": str(db), "SCENARIOCAST_SCENARIOS": str(ROOT / "scenarios")}
    out = tmp_path / "compare"
    rival = ROOT / "scenarios" / "nk-2026-china-first.yaml"
    _run(env, "compare", str(NK_TREE), str(rival), "--as-of", NK_AS_OF, "--out", str(out))
    data = json.loads((out / "compare.json").read_text())
    shot = tmp_path / "nk-2026-compare.png"
    for media in ("screen", "print"):
        seen = _open_page(browser, out / "compare.html", shot, media=media)
        assert seen["console"] == [], seen["console"]
        assert seen["errors"] == [], seen["errors"]
        assert seen["dialogs"] == [], "a script ran: " + repr(seen["dialogs"])
        assert seen["blocked"] == [], "the page asked the network for " + repr(seen["blocked"])
        assert seen["n_images"] == 1 and seen["broken_images"] == [], seen["broken_images"]
        assert seen["js_links"] == [], seen["js_links"]
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
        rows = seen["compare_rows"]
        assert [r["id"] for r in rows] == list(data["outcomes"])
        for r in rows:
            o = data["outcomes"][r["id"]]
            assert float(r["average"]) == o["model_average"]
            assert r["text"] == pct(o["model_average"])
        weights = {w["tree"]: float(w["weight"]) for w in seen["weights"]}
        assert weights == data["evidence"]["posterior_weight"]
        assert "Readings left out of the Bayes factor" in seen["text"]
        assert SCRIPT in seen["text"]  # a hostile note among the deciding reports, as text


def _open_page(browser: Any, html: Path, shot: Path, *, media: str) -> dict[str, Any]:
    """``_open`` for a page without the report's headline table, with the comparison's rows."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    seen: dict[str, Any] = {"console": [], "errors": [], "blocked": [], "dialogs": []}
    page.on(
        "console",
        lambda m: (
            seen["console"].append(f"{m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))

    def on_dialog(d: Any) -> None:
        seen["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)

    def route(r: Any) -> None:
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            seen["blocked"].append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.emulate_media(media=media)
    page.goto(html.as_uri(), wait_until="load")
    seen["broken_images"] = page.eval_on_selector_all(
        "img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt)"
    )
    seen["n_images"] = page.eval_on_selector_all("img", "imgs => imgs.length")
    seen["compare_rows"] = page.eval_on_selector_all(
        "tr[data-outcome]",
        """rows => rows.map(r => ({
            id: r.dataset.outcome,
            average: r.dataset.average,
            text: r.querySelector('td.average').innerText.trim(),
        }))""",
    )
    seen["weights"] = page.eval_on_selector_all(
        "table.fit tr[data-tree]",
        "rows => rows.map(r => ({tree: r.dataset.tree, weight: r.dataset.weight}))",
    )
    seen["text"] = page.inner_text("body")
    seen["js_links"] = page.eval_on_selector_all(
        "a[href]", "as => as.map(a => a.href).filter(h => !/^https?:/i.test(h) && !h.includes('#'))"
    )
    page.screenshot(path=str(shot), full_page=True)
    keep = os.environ.get("SCENARIOCAST_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / f"{shot.stem}-{media}.png")
    page.close()
    return seen
