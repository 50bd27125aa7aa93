"""The North Korea 2026 scenario trees, their evidence mapping, and whether they make sense.

Structural tests need only the spec loader and the CSV. Behavioural tests forecast with the exact
engine; they check that evidence moves each node and outcome the way its rationale claims, that
time works as the rationales say (the lean season, persistence, staleness), and that the
2023-2025 readings move the forecast without settling it. What the trees must get right has a
test each: the thresholds of the definitions, exports not totals, base rates, resolution
criteria, the arrows and indicators of the state's response, the importer's reasons, the
timeline.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from scipy import stats

from scenariocast.spec.load import load_tree

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "scenarios" / "nk-2026.yaml"
CHINA_FIRST = ROOT / "scenarios" / "nk-2026-china-first.yaml"
EVIDENCE = ROOT / "scenarios" / "evidence"
CSV_PATH = EVIDENCE / "nk-indicators-2023-2025.csv"
MAPPING = EVIDENCE / "mapping.yaml"
LATER = Path(__file__).resolve().parent / "fixtures" / "ledger" / "nk-later" / "readings.csv"
JANUARY = dt.date(2026, 1, 15)
TODAY = dt.date(2026, 11, 28)
OUTCOMES = {"rationing_returns", "heavy_market_controls", "china_realignment", "severe_food_shock"}
TREES = [MAIN, CHINA_FIRST]
IDS = ["main", "china-first"]


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


@pytest.fixture(scope="module")
def models(main: Any, china_first: Any) -> dict[str, Any]:
    """One prepared model per tree, shared by the behavioural tests."""
    from scenariocast.engines.exact import ExactModel

    return {main.id: ExactModel(main), china_first.id: ExactModel(china_first)}


def _tree(path: Path, main: Any, china_first: Any) -> Any:
    return main if path == MAIN else china_first


# ---------------------------------------------------------------------------------------------
# structure


def test_both_trees_validate(main: Any, china_first: Any) -> None:
    assert main.id == "nk-2026"
    assert china_first.id == "nk-2026-china-first"


def test_size_limits(main: Any, china_first: Any) -> None:
    for tree in (main, china_first):
        assert 6 <= len(tree.spec.nodes) <= 8
        for name, node in tree.spec.nodes.items():
            # the food shock's four bands keep 5,000 and 14,000 KPW/kg apart; the rest have 2-3
            assert 2 <= len(node.states) <= (4 if name == "food_shock" else 3), name
            assert len(node.parents) <= 3


@pytest.mark.parametrize("path", TREES, ids=IDS)
def test_the_monthly_model(path: Path, main: Any, china_first: Any) -> None:
    tree = _tree(path, main, china_first)
    steps = tree.steps
    assert (steps.unit, steps.start, steps.end) == (
        "month",
        dt.date(2026, 1, 1),
        dt.date(2026, 12, 31),
    )
    kinds = {name: node.kind for name, node in tree.nodes.items()}
    for name in ("food_shock", "market_controls", "rationing", "hard_currency"):
        assert kinds[name] == "dynamic", name
        assert tree.spec.nodes[name].dynamic.rationale.strip(), name
    assert kinds["season"] == "calendar"
    assert tree.nodes["season"].calendar == (1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1)  # lean: May-Aug
    assert "season" in tree.spec.nodes["food_shock"].parents
    assert kinds["russia_compensation"] == kinds["china_relationship"] == "static"


def test_trees_share_outcomes(main: Any, china_first: Any) -> None:
    assert set(main.spec.outcomes) == OUTCOMES == set(china_first.spec.outcomes)
    for oid, out in main.spec.outcomes.items():
        other = china_first.spec.outcomes[oid]
        assert out.resolve_by == other.resolve_by == dt.date(2026, 12, 31)
        assert (out.node, out.states, out.timing, out.k, out.resolution) == (
            other.node,
            other.states,
            other.timing,
            other.k,
            other.resolution,
        )


def test_outcomes_resolve_as_their_criteria_say(main: Any) -> None:
    out = main.spec.outcomes
    # "two survey dates at least 28 days apart" is at least two months, not the year's end
    assert (out["severe_food_shock"].timing, out["severe_food_shock"].k) == ("at_least", 2)
    assert "28 days apart" in out["severe_food_shock"].resolution
    assert out["rationing_returns"].timing == out["heavy_market_controls"].timing == "ever"
    assert out["china_realignment"].timing is None  # a question about the year as a whole


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
    assert set(main.spec.indicators) == set(china_first.spec.indicators)
    for name, ind in main.spec.indicators.items():
        other = china_first.spec.indicators[name]
        assert (ind.kind, ind.unit, ind.read_as) == (other.kind, other.unit, other.read_as)
        assert ind.correlation() == other.correlation(), name


def test_same_sources_in_both_trees(main: Any, china_first: Any) -> None:
    assert dict(main.spec.sources) == dict(china_first.spec.sources)


def test_daily_nk_and_nk_times_weighted_separately(main: Any) -> None:
    src = main.spec.sources
    assert src["nk_times"].reliability < src["daily_nk"].reliability


# ---------------------------------------------------------------------------------------------
# likelihoods derived from the states' own definitions


def _claims(tree: Any) -> list[tuple[str, str, Any]]:
    return [
        (name, state, claim)
        for name, node in tree.spec.nodes.items()
        for state, claims in (node.thresholds or {}).items()
        for claim in claims
    ]


def _reading_cdf(ind: Any, then: dict[str, float], value: float) -> float:
    """P(reading <= value), computed here with SciPy, independently of scenariocast."""
    ra = ind.read_as
    x = value
    if ra is not None and ra.transform == "log":
        x = math.log(value)
    elif ra is not None and ra.transform == "log_change":
        x = math.log(value / ra.baseline)
    z = (x - then["mu"]) / then["sigma"]
    if ind.kind == "student_t":
        return float(stats.t.cdf(z, then["nu"]))
    return float(stats.norm.cdf(z))


@pytest.mark.parametrize("path", TREES, ids=IDS)
def test_every_threshold_of_a_definition_is_its_stated_quantile(
    path: Path, main: Any, china_first: Any
) -> None:
    tree = _tree(path, main, china_first)
    claims = _claims(tree)
    checked = 0
    for node, state, claim in claims:
        ind = tree.spec.indicators[claim.indicator]
        rows = [row for row in ind.params if row.when[node] == state]
        assert rows, (node, state, claim.indicator)
        for row in rows:
            q = _reading_cdf(ind, row.then, claim.threshold)
            assert abs(q - claim.quantile) <= claim.tolerance, (node, state, claim, row.when, q)
            checked += 1
    # the definitions the trees rest on are all written as claims
    states = {(node, state) for node, state, _ in claims}
    assert {("food_shock", s) for s in ("calm", "contained", "serious", "severe")} <= states
    assert {("rationing", s) for s in ("none", "partial", "broad")} <= states
    assert checked >= 18


@pytest.mark.parametrize("path", TREES, ids=IDS)
def test_the_claims_are_the_numbers_of_the_written_definition(
    path: Path, main: Any, china_first: Any
) -> None:
    """Each threshold in a claim appears in its node's description, as a third party reads it."""
    tree = _tree(path, main, china_first)
    for node, state, claim in _claims(tree):
        text = tree.spec.nodes[node].description
        shown = f"{claim.threshold:,.0f}"
        assert shown in text or f"{claim.threshold:.0f}" in text, (node, state, shown)


def test_rice_definition_no_longer_contradicted(main: Any) -> None:
    """Each band's median reading lies inside the band its definition draws."""
    bands = {"calm": (0, 8000), "contained": (8000, 15000), "serious": (15000, 30000)}
    for row in main.spec.indicators["rice_price_market"].params:
        median = 4800 * math.exp(row.then["mu"])
        low, high = bands.get(row.when["food_shock"], (30000, math.inf))
        assert low < median < high, (row.when, median)


# ---------------------------------------------------------------------------------------------
# within-report correlation, estimated from the data


def test_within_report_correlation_is_the_data_estimate(main: Any, imported: Any) -> None:
    from scenariocast.analysis.correlation import report_spread

    _, readings = imported
    estimated = 0
    prices = ("rice", "corn", "usd_kpw", "cny_kpw", "gasoline_price", "diesel_price")
    for name, ind in main.indicators.items():
        if not name.startswith(prices):
            continue
        est = report_spread(main, readings, name)
        if est.correlation is None:  # fuel: no report holds two cities; rice's figure
            assert ind.spec.within_report_correlation == (
                main.indicators["rice_price_market"].spec.within_report_correlation
            )
            continue
        assert ind.spec.within_report_correlation == est.correlation, name
        assert f"{est.correlation:.2f}" in ind.spec.rationale, name
        estimated += 1
    assert estimated == 4  # rice, corn, dollar, yuan


# ---------------------------------------------------------------------------------------------
# China's exports, not total trade


def test_china_export_means_are_exports_not_total_trade(
    main: Any, china_first: Any, csv_rows: list[dict[str, str]]
) -> None:
    def value(date: str, indicator: str) -> float:
        return next(
            float(r["value"]) for r in csv_rows if (r["date"], r["indicator"]) == (date, indicator)
        )

    shares = [
        value(d, "china_exports_to_dprk") / value(d, "china_dprk_trade_total")
        for d in ("2023", "2024-01/2024-07")
    ]
    total_2025 = value("2025", "china_dprk_trade_total")
    low, high = min(shares) * total_2025 / 12, max(shares) * total_2025 / 12
    sq = math.exp(
        next(
            r.then["mu"]
            for r in main.spec.indicators["china_exports_to_dprk"].params
            if r.when["china_relationship"] == "status_quo"
        )
    )
    assert min(shares) >= 0.8
    assert max(shares) <= 0.9
    assert low * 0.97 <= sq <= high * 1.05  # 2025's export month, not 2,730 / 12 = 227.5
    assert sq < 0.9 * total_2025 / 12
    normal = next(
        r
        for r in china_first.spec.indicators["china_exports_to_dprk"].params
        if r.when["border_trade"] == "normal"
    )
    assert low * 0.97 <= math.exp(normal.then["mu"]) <= high * 1.05


# ---------------------------------------------------------------------------------------------
# base rates from a reference class


@pytest.mark.parametrize("path", TREES, ids=IDS)
def test_each_outcome_starts_from_a_base_rate(path: Path, main: Any, china_first: Any) -> None:
    tree = _tree(path, main, china_first)
    for oid, out in tree.spec.outcomes.items():
        rationale = tree.spec.nodes[out.node].rationale
        assert re.search(r"[Bb]ase rate", rationale), (oid, out.node)
        for year in ("2019", "2025", "2009"):
            assert year in rationale, (oid, year)
        assert "2020-2022" in rationale and "border closure" in rationale, oid
        assert "redenomination" in rationale, oid


# ---------------------------------------------------------------------------------------------
# criteria a third party can apply


def test_resolution_criteria_have_numbers_and_edges(main: Any) -> None:
    out = main.spec.outcomes
    rationing = out["rationing_returns"].resolution
    assert "at least 30% below the same week's market price" in rationing
    controls = out["heavy_market_controls"].resolution
    assert "nationwide" in controls and "at least three provinces" in controls
    assert "begun before 2026 counts" in controls
    china = out["china_realignment"].resolution
    assert "agreement, protocol or memorandum" in china and "do not count" in china
    assert "2,750" in china
    severe = out["severe_food_shock"].resolution
    assert "deaths from hunger" in severe
    # the hunger-death path has an indicator on the node the outcome resolves on
    assert main.spec.indicators["hunger_death_report"].depends_on == ["food_shock"]


def test_the_trade_bar_is_ten_percent_above_the_last_year_pace(
    csv_rows: list[dict[str, str]],
) -> None:
    total = next(
        float(r["value"])
        for r in csv_rows
        if (r["date"], r["indicator"]) == ("2025", "china_dprk_trade_total")
    )
    assert round(total * 11 / 12 * 1.1, -1) == 2750


# ---------------------------------------------------------------------------------------------
# the state's response reaches prices; grain shops, hunger deaths, fuel


@pytest.mark.parametrize("path", TREES, ids=IDS)
def test_the_state_response_reaches_prices(path: Path, main: Any, china_first: Any) -> None:
    tree = _tree(path, main, china_first)
    for name in ("rice_price_market", "usd_kpw_market", "cny_kpw_market"):
        assert "market_controls" in tree.spec.indicators[name].depends_on, name
    inds = tree.spec.indicators
    assert inds["grain_shop_sales_report"].depends_on == ["market_controls", "rationing"]
    assert inds["grain_shop_price_vs_market"].depends_on == ["rationing"]
    for fuel in ("diesel_price_market", "gasoline_price_market"):
        assert inds[fuel].unit == "KPW/litre"
        assert "russia_compensation" in inds[fuel].depends_on


# ---------------------------------------------------------------------------------------------
# the mapping and the importer


def test_mapping_sources_exist_in_both_trees(
    main: Any, china_first: Any, mapping: dict[str, Any]
) -> None:
    names = {rule["source"] for rule in mapping["sources"]}
    for tree in (main, china_first):
        assert names <= set(tree.spec.sources), tree.id
    assert not mapping["sources"][-1]["match"], "the last rule should catch every row"


def test_mapped_indicators_exist_in_both_trees(
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
    assert {r["indicator"] for r in csv_rows} <= set(mapping["indicators"])
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
    nov = [
        r for r in readings if str(r.observed) == "2024-11-24" and r.indicator == "usd_kpw_market"
    ]
    assert {r.source for r in nov if float(r.value) > 25000} == {"nk_times"}
    assert {r.source for r in nov if float(r.value) < 25000} == {"daily_nk"}


def test_a_summary_row_is_dropped_only_when_its_parts_are_read(
    imported: Any, csv_rows: list[dict[str, str]]
) -> None:
    report, readings = imported
    averages = [r for r in readings if "3-city average" in (r.location or "")]
    # 2023-04-30: the Pyongyang row of that survey is not in the file, so the average is read
    assert [(r.observed.text, r.value) for r in averages] == [("2023-04-30", "5766")]
    dropped = [
        (line, reason)
        for line, name, reason in report.skipped_unused
        if name == "rice_price_market"
    ]
    assert len(dropped) == 1
    line, reason = dropped[0]
    row = csv_rows[line - 2]
    assert row["location"] == "3-city average" and row["date"] == "2024-10-13"
    # the reason is true of the row: every city it averages is a reading of the same survey
    parts = {
        r.location
        for r in readings
        if r.observed.text == row["date"]
        and r.source == "daily_nk"
        and r.indicator == "rice_price_market"
    }
    assert {"Pyongyang", "Sinuiju", "Hyesan"} <= parts
    assert "each of which is imported" in reason


def test_fuel_rows_are_read_with_their_units_as_reported(imported: Any) -> None:
    report, readings = imported
    fuel = [r for r in readings if r.indicator in ("gasoline_price_market", "diesel_price_market")]
    assert len(fuel) == 6
    units = {(r.indicator, r.observed.text, r.location): r.unit for r in fuel}
    assert units[("gasoline_price_market", "2025-10-26", "Pyongyang")] == "KPW/litre"
    assert units[("diesel_price_market", "2025-10-26", "Pyongyang")] == "KPW/litre"
    unstated = [u for (_, _, where), u in units.items() if "avg" in where]
    assert unstated and all("not stated" in u for u in unstated)
    assert not [
        name
        for _, name, _ in report.skipped_unused
        if "price_market" in name and name.startswith(("diesel", "gasoline"))
    ]


def test_date_forms_are_sorted_by_the_mapping(imported: Any) -> None:
    report, readings = imported
    exports = [r for r in readings if r.indicator == "china_exports_to_dprk"]
    assert exports
    assert all(len(str(r.observed)) == 7 for r in exports)  # months only
    unused = {name for _, name, _ in report.skipped_unused}
    assert "china_exports_to_dprk" in unused


def test_a_later_file_of_the_same_shape_imports_with_the_shipped_mapping(
    main: Any, china_first: Any, tmp_path: Path, models: dict[str, Any]
) -> None:
    from scenariocast.evidence.catalog import Catalog
    from scenariocast.ledger import Ledger

    ledger = Ledger(tmp_path / "ledger.db")
    catalog = Catalog.from_trees([main, china_first])
    report = ledger.import_csv(LATER, catalog=catalog, mapping_path=MAPPING)
    got = {(r.indicator, r.observed.text, r.location): r for r in report.imported}
    assert len(report.imported) == 13
    # the survey's average is dropped (its three cities are read); the lone average is read
    assert ("rice_price_market", "2026-02-08", "3-city average") not in got
    assert ("rice_price_market", "2026-02-22", "3-city average (Pyongyang/Sinuiju/Hyesan)") in got
    gasoline = got[("gasoline_price_market", "2026-02-08", "Pyongyang")]
    assert (gasoline.value, gasoline.unit) == ("44400", "KPW/litre")  # 60,000 a kg at 0.74 kg/l
    assert "reported as 60000 KPW/kg" in (gasoline.note or "")
    assert (
        got[("diesel_price_market", "2026-02-15", "Ryanggang+N.Hamgyong avg")].source == "asiapress"
    )
    # indicators the 2023-2025 file never had import under their own names
    assert got[("hunger_death_report", "2026-03", "North Hamgyong")].value == "no"
    assert got[("grain_shop_price_vs_market", "2026-03", "Hyesan")].value == "85"
    assert got[("china_high_level_visit", "2026-01/2026-03", "Beijing")].source == "state_media"
    assert [name for _, name, _ in report.skipped_unused] == [
        "rice_price_market",
        "china_exports_to_dprk",
    ]
    # and they count in a forecast
    res = models[main.id].forecast(ledger.readings(), as_of=dt.date(2026, 3, 31), top=0)
    counted = {o.indicator for o in res.evidence.observations}
    assert {"hunger_death_report", "grain_shop_price_vs_market", "gasoline_price_market"} <= counted


def test_a_new_name_imports_once_it_is_in_the_mapping(
    main: Any, china_first: Any, tmp_path: Path
) -> None:
    from scenariocast.errors import ImportProblemsError
    from scenariocast.evidence.catalog import Catalog
    from scenariocast.ledger import Ledger

    rows = LATER.read_text(encoding="utf-8").splitlines()
    new = rows[0] + "\n" + rows[1].replace("rice_price_market", "rice_price_state_market") + "\n"
    (tmp_path / "later.csv").write_text(new, encoding="utf-8")
    catalog = Catalog.from_trees([main, china_first])
    with pytest.raises(
        ImportProblemsError,
        match=r"later\.csv:2: indicator 'rice_price_state_market' is not in the mapping file",
    ):
        Ledger(tmp_path / "a.db").import_csv(
            tmp_path / "later.csv", catalog=catalog, mapping_path=MAPPING
        )
    shutil.copy(MAPPING, tmp_path / "mapping.yaml")
    with (tmp_path / "mapping.yaml").open("a", encoding="utf-8") as fh:
        fh.write(
            "  rice_price_state_market:\n    - unit: KPW/kg\n      indicator: rice_price_market\n"
        )
    report = Ledger(tmp_path / "b.db").import_csv(tmp_path / "later.csv", catalog=catalog)
    assert [(r.indicator, r.value) for r in report.imported] == [("rice_price_market", "18000")]


# ---------------------------------------------------------------------------------------------
# behaviour


def _r(
    indicator: str,
    value: str,
    date: str = "2026-03-15",
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


MARCH = dt.date(2026, 3, 31)


@pytest.mark.parametrize("path", TREES, ids=IDS)
def test_severe_food_shock_raises_rationing(
    path: Path, main: Any, china_first: Any, models: dict[str, Any]
) -> None:
    model = models[_tree(path, main, china_first).id]
    base = model.forecast([], as_of=JANUARY, top=0).outcomes["rationing_returns"].probability
    severe = model.forecast([], given={"food_shock": "severe"}, as_of=JANUARY, top=0)
    assert severe.outcomes["rationing_returns"].probability > base + 0.1
    contained = model.forecast([], given={"food_shock": "contained"}, as_of=JANUARY, top=0)
    assert contained.outcomes["rationing_returns"].probability < base


@pytest.mark.parametrize("path", TREES, ids=IDS)
def test_rice_at_30000_moves_the_month_to_severe(
    path: Path, main: Any, china_first: Any, models: dict[str, Any]
) -> None:
    model = models[_tree(path, main, china_first).id]
    res = model.forecast([_r("rice_price_market", "30000")], as_of=MARCH, top=0)
    prior, post = res.prior_nodes["food_shock"]["severe"], res.nodes["food_shock"]["severe"]
    assert post > prior + 0.1
    assert post < 0.8  # one reading moves the node; it does not settle it


# every indicator of the main tree: (value, location, node, the state its rationale says rises)
INDICATOR_DIRECTIONS = [
    ("rice_price_market", "30000", "Pyongyang", "food_shock", "severe"),
    ("rice_price_market", "11000", "Pyongyang", "food_shock", "contained"),
    ("corn_price_market", "7000", "Pyongyang", "food_shock", "severe"),
    ("corn_price_market", "3200", "Pyongyang", "food_shock", "contained"),
    ("usd_kpw_market", "55000", "Pyongyang", "food_shock", "severe"),
    ("usd_kpw_market", "22000", "Pyongyang", "food_shock", "contained"),
    ("cny_kpw_market", "7500", "Hyesan", "food_shock", "severe"),
    ("cny_kpw_market", "3000", "Hyesan", "food_shock", "contained"),
    ("gasoline_price_market", "60000", "Pyongyang", "food_shock", "severe"),
    ("diesel_price_market", "22000", "Pyongyang", "food_shock", "contained"),
    ("gasoline_price_market", "20000", "Pyongyang", "russia_compensation", "substantial"),
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
    ("grain_shop_sales_report", "yes", None, "market_controls", "heavy"),
    ("grain_shop_price_vs_market", "55", "Hyesan", "rationing", "partial"),
    ("grain_shop_price_vs_market", "92", "Hyesan", "rationing", "none"),
    ("hunger_death_report", "yes", None, "food_shock", "severe"),
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
    models: dict[str, Any], indicator: str, value: str, location: str | None, node: str, state: str
) -> None:
    date = "2026-01/2026-03" if indicator.endswith("_visit") else "2026-03"
    reading = _r(indicator, value, date, _SOURCE.get(indicator, "daily_nk"), location)
    res = models["nk-2026"].forecast([reading], as_of=MARCH, top=0)
    assert res.nodes[node][state] > res.prior_nodes[node][state] + 0.01


def test_every_main_indicator_has_a_direction_test(main: Any) -> None:
    assert {i for i, *_ in INDICATOR_DIRECTIONS} == set(main.spec.indicators)


OUTCOME_DIRECTIONS = [
    ("rationing_returns", "grain_shop_price_vs_market", "55", "daily_nk"),
    ("heavy_market_controls", "market_crackdown_report", "yes", "daily_nk"),
    ("china_realignment", "china_high_level_visit", "yes", "state_media"),
    ("severe_food_shock", "rice_price_market", "30000", "daily_nk"),
    ("severe_food_shock", "hunger_death_report", "yes", "wire"),
]


@pytest.mark.parametrize("path", TREES, ids=IDS)
@pytest.mark.parametrize(
    ("oid", "indicator", "value", "source"),
    OUTCOME_DIRECTIONS,
    ids=[f"{o}-{i}" for o, i, *_ in OUTCOME_DIRECTIONS],
)
def test_evidence_moves_each_outcome(
    path: Path,
    main: Any,
    china_first: Any,
    models: dict[str, Any],
    oid: str,
    indicator: str,
    value: str,
    source: str,
) -> None:
    model = models[_tree(path, main, china_first).id]
    date = "2026-01/2026-03" if indicator.endswith("_visit") else "2026-03"
    res = model.forecast([_r(indicator, value, date, source)], as_of=MARCH, top=0)
    assert res.outcomes[oid].probability > res.outcomes[oid].prior


def test_outcome_directions_cover_every_outcome(main: Any) -> None:
    assert {o for o, *_ in OUTCOME_DIRECTIONS} == set(main.spec.outcomes)


def test_crackdown_reports_do_not_reach_certainty(models: dict[str, Any]) -> None:
    readings = [_r("market_crackdown_report", "yes", f"2026-{m:02d}", rid=m) for m in (1, 2, 3)]
    res = models["nk-2026"].forecast(readings, as_of=MARCH, top=0)
    out = res.outcomes["heavy_market_controls"]
    assert out.prior < out.probability < 0.95


@pytest.mark.parametrize("path", TREES, ids=IDS)
def test_controls_explain_a_price_fall(
    path: Path, main: Any, china_first: Any, models: dict[str, Any]
) -> None:
    """With the shock known, a lower rice price is evidence of heavier controls (the new arrow)."""
    model = models[_tree(path, main, china_first).id]
    given = {"food_shock@2026-03": "serious"}
    low = model.forecast([_r("rice_price_market", "16000")], given=given, as_of=MARCH, top=0)
    high = model.forecast([_r("rice_price_market", "27000")], given=given, as_of=MARCH, top=0)
    assert low.nodes["market_controls"]["heavy"] > high.nodes["market_controls"]["heavy"]


@pytest.mark.parametrize("path", TREES, ids=IDS)
def test_the_lean_season_raises_the_shock(
    path: Path, main: Any, china_first: Any, models: dict[str, Any]
) -> None:
    model = models[_tree(path, main, china_first).id]
    path_ = {
        x.label: x.prior["severe"]
        for x in model.forecast([], as_of=JANUARY, top=0).steps["food_shock"]
    }
    assert path_["2026-08"] > path_["2026-04"]
    assert path_["2026-08"] > path_["2026-12"]


def test_a_reading_fades_with_the_months_after_it(models: dict[str, Any]) -> None:
    res = models["nk-2026"].forecast(
        [_r("rice_price_market", "34000", "2026-02-08")], as_of=MARCH, top=0
    )
    lift = {x.label: x.probabilities["severe"] - x.prior["severe"] for x in res.steps["food_shock"]}
    assert lift["2026-02"] > lift["2026-03"] > lift["2026-06"] > lift["2026-12"] > 0


def test_three_cities_of_one_survey_count_about_as_one(models: dict[str, Any]) -> None:
    model = models["nk-2026"]
    one = model.forecast([_r("rice_price_market", "29000")], as_of=MARCH, top=0)
    three = model.forecast(
        [
            _r("rice_price_market", "29000", rid=1),
            _r("rice_price_market", "29500", location="Hyesan", rid=2),
            _r("rice_price_market", "28700", location="Sinuiju", rid=3),
        ],
        as_of=MARCH,
        top=0,
    )
    assert len(three.evidence.reports) == 1

    def lo(res: Any) -> float:
        p, q = res.nodes["food_shock"]["severe"], res.prior_nodes["food_shock"]["severe"]
        return math.log(p / (1 - p)) - math.log(q / (1 - q))

    assert lo(one) > 0
    assert 0.7 * lo(one) < lo(three) < 1.3 * lo(one)


# ---------------------------------------------------------------------------------------------
# the shipped evidence


@pytest.mark.parametrize("path", TREES, ids=IDS)
def test_csv_evidence_moves_without_settling(
    path: Path, main: Any, china_first: Any, imported: Any, models: dict[str, Any]
) -> None:
    tree = _tree(path, main, china_first)
    _, readings = imported
    res = models[tree.id].forecast(readings, as_of=JANUARY, top=0)
    assert res.n_observations >= 50
    # entering 2026 at 20,000 KPW/kg rice (December 2025): serious is January's mode, not certain
    january = res.steps["food_shock"][0].probabilities
    assert max(january, key=january.get) == "serious"
    assert january["serious"] < 0.9
    for name, states in res.nodes.items():
        assert max(states.values()) < 0.97, name
    for out in res.outcomes.values():
        assert 0.05 < out.probability < 0.95, out.id
    # the NK Times price readings of 2023-24 are superseded month by month, not dropped
    counted = {
        o.reading.source for o in res.evidence.observations if o.indicator == "usd_kpw_market"
    }
    assert {"daily_nk", "nk_times", "asiapress"} <= counted


@pytest.mark.parametrize("path", TREES, ids=IDS)
def test_today_the_evidence_is_stale_and_the_clock_alone_moves_nothing(
    path: Path, main: Any, china_first: Any, imported: Any, models: dict[str, Any]
) -> None:
    """As of 2026-11-28 the newest reading is from December 2025: the forecast says so, rests
    on the chain from there, and is the forecast of January (nothing new has been read)."""
    tree = _tree(path, main, china_first)
    _, readings = imported
    model = models[tree.id]
    today = model.forecast(readings, as_of=TODAY, top=0)
    january = model.forecast(readings, as_of=JANUARY, top=0)
    stale = {s.indicator: s for s in today.stale}
    for name in ("rice_price_market", "usd_kpw_market", "china_exports_to_dprk"):
        assert stale[name].age_days > 300 and stale[name].counted, name
    for oid, out in today.outcomes.items():
        assert out.probability == pytest.approx(january.outcomes[oid].probability, abs=1e-9), oid
        assert out.probability > 0.1, oid  # nothing plausible at 2%
    # the months of 2026 are the chain's, not the December readings': the shock spreads out
    path_ = today.steps["food_shock"]
    assert path_[0].probabilities["serious"] > path_[-1].probabilities["serious"]


def test_nk_times_outlier_does_not_overturn(imported: Any, models: dict[str, Any]) -> None:
    _, readings = imported
    model = models["nk-2026"]
    base = model.forecast(readings, as_of=JANUARY, top=0).steps["food_shock"]
    outlier = _r(
        "usd_kpw_market", "65000", "2025-12-07", "nk_times", "Pyongyang/Sariwon", rid=10_000
    )
    res = model.forecast([*readings, outlier], as_of=JANUARY, top=0).steps["food_shock"]
    assert res[0].probabilities["severe"] >= base[0].probabilities["severe"]
    assert res[0].probabilities["severe"] < 0.5


# ---------------------------------------------------------------------------------------------
# the timeline is what the tree would have said at each date


def test_the_timeline_is_not_an_artefact_of_old_readings(
    main: Any, imported: Any, models: dict[str, Any]
) -> None:
    from scenariocast.analysis.timeline import outcome_timeline

    _, readings = imported
    dates = [
        dt.date(2024, 6, 30),
        dt.date(2025, 6, 30),
        dt.date(2025, 10, 31),
        dt.date(2026, 1, 15),
    ]
    frame = outcome_timeline(main, readings, dates=dates, model=models[main.id]).outcomes
    prior, mid_2024, mid_2025, october, january = frame["severe_food_shock"]
    # readings from 2024 (contained months) weigh towards calm through a sticky chain, but
    # twenty months ahead they leave a real chance: not near 0 as when read as 2026 readings
    assert 0.15 < mid_2024 < prior
    assert mid_2025 > 0.2
    # the October 2025 spike raises it; by January the chain has December's serious month
    assert october > mid_2025
    assert january > prior
