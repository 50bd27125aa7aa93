"""The North Korea 2026 scenario trees, their evidence mapping, and whether they make sense.

Structural tests need only the spec loader. Behavioural tests use the forecasting API
(``scenariocast.forecast``); they check that evidence moves each node and outcome in the
direction its rationale claims, and that the 2023-2025 readings move the forecast without
settling it.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from scenariocast.spec.load import load_tree

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "scenarios" / "nk-2026.yaml"
CHINA_FIRST = ROOT / "scenarios" / "nk-2026-china-first.yaml"
EVIDENCE = ROOT / "scenarios" / "evidence"
CSV_PATH = EVIDENCE / "nk-indicators-2023-2025.csv"
MAPPING = EVIDENCE / "mapping.yaml"
AS_OF = dt.date(2026, 1, 1)
OUTCOMES = {"rationing_returns", "heavy_market_controls", "china_realignment"}


@pytest.fixture(scope="module")
def main() -> Any:
    return load_tree(MAIN)


@pytest.fixture(scope="module")
def china_first() -> Any:
    return load_tree(CHINA_FIRST)


@pytest.fixture(scope="module")
def mapping() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(MAPPING.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def csv_rows() -> list[dict[str, str]]:
    with CSV_PATH.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory, main: Any, china_first: Any) -> Any:
    """The real CSV through the real importer and mapping, into a fresh ledger."""
    from scenariocast.evidence.catalog import Catalog
    from scenariocast.ledger import Ledger

    ledger = Ledger(tmp_path_factory.mktemp("nk") / "ledger.db")
    report = ledger.import_csv(
        CSV_PATH, catalog=Catalog.from_trees([main, china_first]), mapping_path=MAPPING
    )
    return report, ledger.readings()


# ---------------------------------------------------------------------------------------------
# structure


def test_both_trees_validate(main: Any, china_first: Any) -> None:
    assert main.id == "nk-2026"
    assert china_first.id == "nk-2026-china-first"


def test_size_limits(main: Any, china_first: Any) -> None:
    for tree in (main, china_first):
        assert 6 <= len(tree.spec.nodes) <= 8
        for node in tree.spec.nodes.values():
            assert 2 <= len(node.states) <= 3
            assert len(node.parents) <= 3


def test_trees_share_outcomes(main: Any, china_first: Any) -> None:
    assert set(main.spec.outcomes) >= OUTCOMES
    assert set(main.spec.outcomes) == set(china_first.spec.outcomes)
    for oid, out in main.spec.outcomes.items():
        other = china_first.spec.outcomes[oid]
        assert out.resolve_by == other.resolve_by == dt.date(2026, 12, 31)
        assert out.states == other.states


def test_structures_differ(main: Any, china_first: Any) -> None:
    parents = {n: tuple(v.parents) for n, v in main.spec.nodes.items()}
    other = {n: tuple(v.parents) for n, v in china_first.spec.nodes.items()}
    assert parents != other
    assert set(main.spec.nodes) != set(china_first.spec.nodes)


def test_everything_has_a_rationale(main: Any, china_first: Any) -> None:
    for tree in (main, china_first):
        for name, node in tree.spec.nodes.items():
            assert node.rationale.strip(), f"{tree.id}: node {name}"
        for name, ind in tree.spec.indicators.items():
            assert ind.rationale.strip(), f"{tree.id}: indicator {name}"
        for name, out in tree.spec.outcomes.items():
            assert len(out.resolution) > 150, f"{tree.id}: outcome {name} resolution too thin"


def test_shared_indicators_mean_the_same(main: Any, china_first: Any) -> None:
    from scenariocast.evidence.catalog import Catalog

    Catalog.from_trees([main, china_first])  # raises if kinds or categories disagree
    for name, ind in main.spec.indicators.items():
        other = china_first.spec.indicators.get(name)
        assert other is not None, name
        assert (ind.kind, ind.unit, ind.read_as) == (other.kind, other.unit, other.read_as)


def test_same_sources_in_both_trees(main: Any, china_first: Any) -> None:
    assert dict(main.spec.sources) == dict(china_first.spec.sources)


def test_daily_nk_and_nk_times_weighted_separately(main: Any) -> None:
    src = main.spec.sources
    assert src["nk_times"].reliability < src["daily_nk"].reliability


def test_mapping_sources_exist_in_both_trees(
    main: Any, china_first: Any, mapping: dict[str, Any]
) -> None:
    names = {rule["source"] for rule in mapping["sources"]}
    for tree in (main, china_first):
        assert names <= set(tree.spec.sources), tree.id
    assert not mapping["sources"][-1]["match"], "the last rule should catch every row"


def test_mapped_indicators_exist_in_main_tree(
    main: Any, china_first: Any, mapping: dict[str, Any]
) -> None:
    for rules in mapping["indicators"].values():
        for rule in rules:
            if "unused" in rule:
                assert str(rule["unused"]).strip()
                continue
            assert rule["indicator"] in main.spec.indicators
            assert rule["indicator"] in china_first.spec.indicators
            if "unit" in rule:
                assert rule["unit"] == main.spec.indicators[rule["indicator"]].unit


def test_every_csv_row_is_mapped(
    csv_rows: list[dict[str, str]], mapping: dict[str, Any], imported: Any
) -> None:
    report, readings = imported
    assert len(csv_rows) == 221
    assert {r["indicator"] for r in csv_rows} == set(mapping["indicators"])
    # the importer raises on any row no rule fits, so every row is a reading or reported unused
    assert len(report.imported) + len(report.skipped_unused) == 221
    assert not report.skipped_duplicates
    assert all(r.source_url for r in readings)


def test_survey_networks_are_told_apart(imported: Any) -> None:
    _, readings = imported
    notes: dict[str, set[str]] = {}
    for r in readings:
        notes.setdefault(r.source, set()).add(r.note or "")
    assert all("NK Times" in n for n in notes["nk_times"])
    assert all("Daily NK" in n or "dailynk" in n.lower() for n in notes["daily_nk"])
    market = ("rice_price_market", "corn_price_market", "usd_kpw_market", "cny_kpw_market")
    for r in readings:
        if r.indicator in market:
            assert r.source in {"daily_nk", "nk_times", "asiapress"}, r
        if r.indicator.startswith("china_"):
            assert r.source == "china_customs", r
    # the 24 Nov 2024 split: 29,500-30,800 (NK Times) vs 17,900-18,300 (Daily NK)
    nov = [
        r for r in readings if str(r.observed) == "2024-11-24" and r.indicator == "usd_kpw_market"
    ]
    assert {r.source for r in nov if float(r.value) > 25000} == {"nk_times"}
    assert {r.source for r in nov if float(r.value) < 25000} == {"daily_nk"}


def test_date_forms_and_averages_are_sorted_by_the_mapping(imported: Any) -> None:
    report, readings = imported
    exports = [r for r in readings if r.indicator == "china_exports_to_dprk"]
    assert exports
    assert all(len(str(r.observed)) == 7 for r in exports)  # months only
    assert not [r for r in readings if "3-city average" in (r.location or "")]
    unused = {name for _, name, _ in report.skipped_unused}
    assert {"china_exports_to_dprk", "rice_price_market"} <= unused


# ---------------------------------------------------------------------------------------------
# behaviour (needs scenariocast.forecast)


@pytest.fixture(scope="module")
def fc() -> Any:
    from scenariocast.api import forecast  # exported lazily as scenariocast.forecast

    return forecast


def _r(
    indicator: str,
    value: str,
    date: str = "2025-12-07",
    source: str = "daily_nk",
    location: str | None = "Pyongyang",
    rid: int = 1,
) -> Any:
    from scenariocast.evidence.readings import ObservedDate, Reading

    return Reading(
        id=rid,
        indicator=indicator,
        value=value,
        observed=ObservedDate.parse(date),
        source=source,
        location=location,
    )


def _node(fc: Any, tree: Any, readings: list[Any], node: str, state: str) -> tuple[float, float]:
    res = fc(tree, readings, as_of=AS_OF)
    return res.prior_nodes[node][state], res.nodes[node][state]


def _outcome(fc: Any, tree: Any, readings: list[Any], oid: str) -> tuple[float, float]:
    res = fc(tree, readings, as_of=AS_OF)
    return res.outcomes[oid].prior, res.outcomes[oid].probability


@pytest.mark.parametrize("path", [MAIN, CHINA_FIRST], ids=["main", "china-first"])
def test_severe_food_shock_raises_rationing(fc: Any, path: Path) -> None:
    tree = load_tree(path)
    # a result's `prior` is before evidence but after `given`: compare with no assumption
    base = fc(tree, [], as_of=AS_OF).outcomes["rationing_returns"].probability
    severe = fc(tree, [], given={"food_shock": "severe"}, as_of=AS_OF)
    assert severe.outcomes["rationing_returns"].probability > base + 0.1
    contained = fc(tree, [], given={"food_shock": "contained"}, as_of=AS_OF)
    assert contained.outcomes["rationing_returns"].probability < base


@pytest.mark.parametrize("path", [MAIN, CHINA_FIRST], ids=["main", "china-first"])
def test_rice_at_30000_moves_food_shock_to_severe(fc: Any, path: Path) -> None:
    tree = load_tree(path)
    prior, post = _node(
        fc, tree, [_r("rice_price_market", "30000", "2025-10-26")], "food_shock", "severe"
    )
    assert post > prior
    # one reading moves the node; it does not settle it
    assert post < 0.8


# every indicator of the main tree: (reading value, node, state that the rationale says rises)
INDICATOR_DIRECTIONS = [
    ("rice_price_market", "30000", "Pyongyang", "food_shock", "severe"),
    ("rice_price_market", "11000", "Pyongyang", "food_shock", "contained"),
    ("corn_price_market", "7000", "Pyongyang", "food_shock", "severe"),
    ("corn_price_market", "3200", "Pyongyang", "food_shock", "contained"),
    ("usd_kpw_market", "55000", "Pyongyang", "food_shock", "severe"),
    ("usd_kpw_market", "22000", "Pyongyang", "food_shock", "contained"),
    ("cny_kpw_market", "7500", "Hyesan", "food_shock", "severe"),
    ("cny_kpw_market", "3000", "Hyesan", "food_shock", "contained"),
    ("china_exports_to_dprk", "330", "China->DPRK", "china_relationship", "realignment"),
    ("china_exports_to_dprk", "150", "China->DPRK", "china_relationship", "estrangement"),
    ("china_rice_exports_to_dprk", "60", "China->DPRK", "china_relationship", "realignment"),
    (
        "china_rice_exports_to_dprk_tonnes",
        "45000",
        "China->DPRK",
        "china_relationship",
        "realignment",
    ),
    ("russia_grain_to_dprk", "150000", "Russia->DPRK", "russia_compensation", "substantial"),
    ("russia_grain_to_dprk", "800", "Russia->DPRK", "russia_compensation", "token"),
    ("grain_distribution_report", "yes", None, "rationing", "broad"),
    ("market_crackdown_report", "yes", None, "market_controls", "heavy"),
    ("market_crackdown_report", "no", None, "market_controls", "tolerant"),
    ("china_high_level_visit", "yes", None, "china_relationship", "realignment"),
    ("china_high_level_visit", "no", None, "china_relationship", "estrangement"),
    ("russia_high_level_visit", "yes", None, "russia_compensation", "substantial"),
    ("unpaid_wages_report", "yes", None, "hard_currency", "acute"),
    ("unpaid_wages_report", "no", None, "hard_currency", "eased"),
]
_SOURCE = {
    "china_exports_to_dprk": "china_customs",
    "china_rice_exports_to_dprk": "china_customs",
    "china_rice_exports_to_dprk_tonnes": "china_customs",
    "russia_grain_to_dprk": "russia_official",
    "china_high_level_visit": "state_media",
    "russia_high_level_visit": "state_media",
}


@pytest.mark.parametrize(
    ("indicator", "value", "location", "node", "state"),
    INDICATOR_DIRECTIONS,
    ids=[f"{i}={v}" for i, v, *_ in INDICATOR_DIRECTIONS],
)
def test_indicator_moves_its_node(
    fc: Any, main: Any, indicator: str, value: str, location: str | None, node: str, state: str
) -> None:
    reading = _r(indicator, value, "2025-12", _SOURCE.get(indicator, "daily_nk"), location)
    prior, post = _node(fc, main, [reading], node, state)
    assert post > prior + 0.01


def test_every_main_indicator_has_a_direction_test(main: Any) -> None:
    assert {i for i, *_ in INDICATOR_DIRECTIONS} == set(main.spec.indicators)


OUTCOME_DIRECTIONS = [
    ("rationing_returns", "grain_distribution_report", "yes", "daily_nk"),
    ("heavy_market_controls", "market_crackdown_report", "yes", "daily_nk"),
    ("china_realignment", "china_high_level_visit", "yes", "state_media"),
    ("severe_food_shock", "rice_price_market", "30000", "daily_nk"),
]


@pytest.mark.parametrize("path", [MAIN, CHINA_FIRST], ids=["main", "china-first"])
@pytest.mark.parametrize(
    ("oid", "indicator", "value", "source"),
    OUTCOME_DIRECTIONS,
    ids=[o for o, *_ in OUTCOME_DIRECTIONS],
)
def test_evidence_moves_each_outcome(
    fc: Any, path: Path, oid: str, indicator: str, value: str, source: str
) -> None:
    tree = load_tree(path)
    prior, post = _outcome(fc, tree, [_r(indicator, value, "2025-12", source)], oid)
    assert post > prior


def test_outcome_directions_cover_every_outcome(main: Any) -> None:
    assert {o for o, *_ in OUTCOME_DIRECTIONS} == set(main.spec.outcomes)


def test_crackdown_reports_do_not_reach_certainty(fc: Any, main: Any) -> None:
    readings = [_r("market_crackdown_report", "yes", f"2025-{m:02d}", rid=m) for m in (10, 11, 12)]
    prior, post = _outcome(fc, main, readings, "heavy_market_controls")
    assert prior < post < 0.95


@pytest.mark.parametrize("path", [MAIN, CHINA_FIRST], ids=["main", "china-first"])
def test_csv_evidence_moves_without_settling(fc: Any, path: Path, imported: Any) -> None:
    tree = load_tree(path)
    _, readings = imported
    res = fc(tree, readings, as_of=AS_OF)
    assert res.n_observations >= 10
    # entering 2026 at ~20,000 KPW/kg rice and ~38,000 KPW/USD: serious is the mode, not certain
    shock = res.nodes["food_shock"]
    assert max(shock, key=shock.get) == "serious"
    assert shock["serious"] < 0.95
    for name, states in res.nodes.items():
        assert max(states.values()) < 0.95, name
    for out in res.outcomes.values():
        assert 0.02 < out.probability < 0.98, out.id
    # readings are old: none of the 2023-24 NK Times price readings count
    counted = {
        o.reading.source
        for o in res.evidence.observations
        if o.indicator in ("rice_price_market", "usd_kpw_market")
    }
    assert "nk_times" not in counted


def test_nk_times_outlier_does_not_overturn(fc: Any, main: Any, imported: Any) -> None:
    _, readings = imported
    base = fc(main, readings, as_of=AS_OF).nodes["food_shock"]["severe"]
    # an NK Times dollar reading 70% above Daily NK's (the Nov 2024 gap), in the same week
    outlier = _r(
        "usd_kpw_market", "65000", "2025-10-26", "nk_times", "Pyongyang/Sariwon", rid=10_000
    )
    res = fc(main, [*readings, outlier], as_of=AS_OF)
    assert res.nodes["food_shock"]["severe"] >= base
    assert res.nodes["food_shock"]["severe"] < 0.5


def test_importer_accepts_the_mapping(fc: Any, main: Any, china_first: Any, tmp_path: Path) -> None:
    from scenariocast.evidence.catalog import Catalog
    from scenariocast.ledger import Ledger

    ledger = Ledger(tmp_path / "ledger.db")
    report = ledger.import_csv(
        CSV_PATH, catalog=Catalog.from_trees([main, china_first]), mapping_path=MAPPING
    )
    assert len(report.imported) + len(report.skipped_unused) + len(report.skipped_duplicates) == 221
    assert len(report.imported) > 150
    res = fc(main, ledger.readings(), as_of=AS_OF)
    assert not [e for e in res.evidence.excluded if "does not define" in e.reason]
    assert res.n_observations >= 10
