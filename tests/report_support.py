"""Shared helpers for the report tests: ledgers with the shipped evidence, hostile text, parsing."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from scenariocast.evidence.catalog import Catalog
from scenariocast.ledger import Ledger
from scenariocast.spec.load import parse_tree
from scenariocast.spec.tree import Tree

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
NK_TREE = SCENARIOS / "nk-2026.yaml"
NK_EVIDENCE = SCENARIOS / "evidence" / "nk-indicators-2023-2025.csv"
DOC = ROOT / "docs" / "scenario-format.md"
NK_AS_OF = "2026-01-15"  # mid-January 2026, when the 2023-2025 readings count

SCRIPT = "<script>alert(1)</script>"
#: Addresses that must never become links: (indicator, value, on, url).
HOSTILE = [
    ("grain_distribution_report", "no", "2025-12", "javascript:alert(document.domain)"),
    ("market_crackdown_report", "yes", "2025-12", "data:text/html,<script>alert(2)</script>"),
    ("unpaid_wages_report", "yes", "2025-12", "../../etc/passwd"),
    ("china_high_level_visit", "no", "2025-12", "//evil.example/x"),
    ("russia_high_level_visit", "yes", "2025-12", "https://example.org/visit?a=1&b=2"),
]


def dynamic_example_text() -> str:
    """The YAML of the dynamic example tree in docs/scenario-format.md."""
    text = DOC.read_text().split("## A dynamic example", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", text, re.DOTALL)
    assert block is not None
    return block.group(1)


def dynamic_example() -> Tree:
    return parse_tree(dynamic_example_text(), file="lean-year.yaml")


def nk_ledger(path: Path, *, hostile: bool = True) -> Ledger:
    """A ledger with the shipped North Korea evidence (and hostile notes and addresses)."""
    ledger = Ledger(path)
    catalog = Catalog.from_dir(SCENARIOS)
    ledger.import_csv(NK_EVIDENCE, catalog=catalog)
    if hostile:
        for indicator, value, on, url in HOSTILE:
            ledger.observe(
                indicator,
                value,
                observed=on,
                source="wire",
                note=f"{SCRIPT} <img src=x onerror=alert(3)> **not bold** | [x](javascript:y)",
                source_url=url,
                catalog=catalog,
            )
    return ledger


class Page(HTMLParser):
    """Every tag with its attributes, and the page's text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def attrs(self, tag: str, name: str) -> list[str]:
        return [a[name] or "" for t, a in self.tags if t == tag and name in a]

    def all_attrs(self, name: str) -> list[str]:
        return [a[name] or "" for _, a in self.tags if name in a]
