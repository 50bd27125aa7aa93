"""Readings of a node: recorded in the ledger, counted in forecasts as reports of their source.

A reading of node N in state s from a source of reliability r has likelihood
``r [N == s] + (1 - r) q`` with ``q`` the prior probability of ``N == s`` (docs/evidence.md):
checked against enumeration of the joint states, against hard evidence for r = 1, and against
no evidence for r = 0; in the ledger (SQLite and PostgreSQL): chained, retracted, exported,
restored, and a ledger of revision 0004 with data upgraded to hold them.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from scenariocast import api
from scenariocast.cli import app
from scenariocast.engines.exact import ExactModel
from scenariocast.errors import ImportProblemsError, LedgerError, QueryError, ReadingError
from scenariocast.evidence.readings import ObservedDate, Reading
from scenariocast.evidence.select import select_evidence
from scenariocast.ledger import Ledger
from scenariocast.ledger.schema import SCHEMA_REVISION
from scenariocast.spec.tree import Tree
from scenariocast.testing import brute_force, random_dynamic_tree_spec, tree_from_dict
from tests.conftest import EXAMPLE, reading
from tests.ledger_support import FIXTURES, example_catalog

FAR = dt.date(2100, 1, 1)
runner = CliRunner()


def node_reading(
    rid: int,
    node: str,
    state: str,
    on: str = "2025-03-02",
    source: str = "wire",
    *,
    retracted: bool = False,
    report: str | None = None,
) -> Reading:
    return Reading(
        id=rid,
        indicator=node,
        value=state,
        observed=ObservedDate.parse(on),
        source=source,
        report=report,
        retracted=retracted,
        retraction_reason="test" if retracted else None,
        kind="node",
    )


def _example_spec() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    data["sources"]["official"] = {"reliability": 1.0, "description": "Fully reliable."}
    data["sources"]["noise"] = {"reliability": 0.0, "description": "Worthless."}
    return data


@pytest.fixture(scope="module")
def tree() -> Tree:
    return tree_from_dict(_example_spec(), tree_id="example-harvest")


def _close(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> None:
    assert a.keys() == b.keys()
    for node, states in a.items():
        for state, p in states.items():
            assert p == pytest.approx(b[node][state], abs=1e-10), (node, state)


def test_the_exact_engine_matches_enumeration(tree: Tree) -> None:
    readings = [
        node_reading(1, "rationing", "partial", source="rumour"),
        # one report of wire: a node reading and an indicator reading, genuine or not together
        node_reading(2, "harvest", "short", on="2025-03-05"),
        reading(3, "crackdowns", "3", on="2025-03-05"),
        reading(4, "distribution_report", "yes", on="2025-04", source="market_survey"),
        node_reading(5, "weather", "good", on="2025-04-10", source="market_survey"),
    ]
    result = ExactModel(tree).forecast(readings, as_of=FAR)
    truth = brute_force(tree, readings, as_of=FAR)
    _close(dict(result.nodes), truth.nodes)
    for oid, o in result.outcomes.items():
        assert o.probability == pytest.approx(truth.outcomes[oid], abs=1e-10)
    assert len(result.evidence.reports) == 4  # the two wire readings of 2025-03-05 are one
    assert result.nodes["harvest"]["short"] > result.prior_nodes["harvest"]["short"]


def test_a_fully_reliable_source_is_hard_evidence(tree: Tree) -> None:
    model = ExactModel(tree)
    read = model.forecast([node_reading(1, "harvest", "short", source="official")], as_of=FAR)
    assumed = model.forecast([], given={"harvest": "short"}, as_of=FAR)
    assert read.nodes["harvest"]["short"] == pytest.approx(1.0)
    _close(dict(read.nodes), dict(assumed.nodes))
    # an unreliable source softens it, in between
    soft = model.forecast([node_reading(1, "harvest", "short", source="rumour")], as_of=FAR)
    prior = soft.prior_nodes["harvest"]["short"]
    assert prior < soft.nodes["harvest"]["short"] < 1.0


def test_a_worthless_source_changes_nothing(tree: Tree) -> None:
    model = ExactModel(tree)
    read = model.forecast([node_reading(1, "rationing", "broad", source="noise")], as_of=FAR)
    _close(dict(read.nodes), dict(read.prior_nodes))


def test_two_fully_reliable_readings_that_disagree_are_a_conflict(tree: Tree) -> None:
    from scenariocast.errors import EvidenceConflictError

    readings = [
        node_reading(1, "harvest", "short", source="official"),
        node_reading(2, "harvest", "adequate", on="2025-04-01", source="official"),
    ]
    with pytest.raises(EvidenceConflictError):
        ExactModel(tree).forecast(readings, as_of=FAR)


def test_what_does_not_count(tree: Tree) -> None:
    readings = [
        node_reading(1, "rationing", "broad", retracted=True),
        node_reading(2, "rationing", "broad", on="2025-06-01"),  # after the as-of date
        node_reading(3, "rationin", "broad"),  # no such node
        node_reading(4, "rationing", "brod"),  # no such state
        node_reading(5, "rationing", "partial", source="nobody"),
        node_reading(6, "harvest", "short"),
        node_reading(7, "harvest", "short"),  # the same reading entered again
        # an indicator reading of that name: there is no such indicator
        reading(8, "rationing", "1", on="2025-03-01"),
    ]
    ev = select_evidence(tree, readings, dt.date(2025, 5, 1))
    kinds = {e.reading.id: e.kind for e in ev.excluded}
    assert kinds == {
        1: "retracted",
        2: "after_as_of",
        3: "unknown_node",
        4: "unreadable",
        5: "unknown_source",
        7: "repeated",
        8: "unknown_indicator",
    }
    assert [o.reading.id for o in ev.observations] == [6]
    assert ev.observations[0].folded == (7,)


@pytest.mark.parametrize("seed", range(3))
def test_a_dynamic_node_is_read_at_the_step_of_the_date(seed: int) -> None:
    spec = random_dynamic_tree_spec(seed, 3, n_dynamic=2, n_steps=4, n_indicators=2)
    tree = tree_from_dict(spec)
    assert tree.steps is not None
    dynamic = [n for n, node in tree.nodes.items() if node.kind == "dynamic"]
    static = [n for n, node in tree.nodes.items() if node.kind == "static"]
    sources = list(tree.sources)
    name = dynamic[-1]
    states = tree.nodes[name].states
    day = tree.steps.first_day(1)
    readings = [
        node_reading(1, name, states[-1], on=day.isoformat(), source=sources[-1]),
        node_reading(
            2, static[0], tree.nodes[static[0]].states[0], on=day.isoformat(), source=sources[0]
        ),
    ]
    as_of = tree.steps.last_day(tree.steps.n - 1)
    ev = select_evidence(tree, readings, as_of)
    assert {o.reading.id: o.step for o in ev.observations} == {1: 1, 2: None}
    result = ExactModel(tree).forecast(readings, as_of=as_of)
    truth = brute_force(tree, readings, as_of=as_of)
    _close(dict(result.nodes), truth.nodes)
    for oid, o in result.outcomes.items():
        assert o.probability == pytest.approx(truth.outcomes[oid], abs=1e-9)
    for n, path in result.steps.items():
        for t, step in enumerate(path):
            for s, p in step.probabilities.items():
                assert p == pytest.approx(truth.steps[n][t][s], abs=1e-9)


def test_the_pymc_engine_refuses_them_without_sampling(tree: Tree) -> None:
    readings = [node_reading(1, "rationing", "broad"), reading(2, "crackdowns", "3")]
    with pytest.raises(QueryError, match="PyMC engine does not take readings of nodes"):
        api.forecast(tree, readings, engine="pymc", as_of=FAR, draws=10)
    # before them, the forecast is the PyMC engine's as always: not run here (it samples)


# ---------------------------------------------------------------------------------------------
# the ledger


def test_recorded_chained_retracted_exported_and_restored(ledger_url: str, tmp_path: Path) -> None:
    catalog = example_catalog()
    ledger = Ledger(ledger_url)
    first = ledger.observe_node(
        "rationing",
        "broad",
        observed="2025-03-02",
        source="wire",
        note="the regime announced rationing (KCNA)",
        entered_by="ana",
        catalog=catalog,
    )
    assert (first.kind, first.indicator, first.value, first.entered_by) == (
        "node",
        "rationing",
        "broad",
        "ana",
    )
    ledger.observe("crackdowns", "2", observed="2025-03", source="wire", catalog=catalog)
    back = ledger.readings()
    assert [(r.kind, r.of_node) for r in back] == [("node", True), ("indicator", False)]
    assert back[0] == first
    assert ledger.verify().ok
    before = api.forecast(EXAMPLE, ledger, as_of=FAR, record=False)
    assert first.id in before.evidence.reading_ids
    ledger.retract(first.id, reason="misread the broadcast", by="ben")
    after = api.forecast(EXAMPLE, ledger, as_of=FAR, record=False)
    assert first.id not in after.evidence.reading_ids
    assert after.outcomes["rationing_returns"].probability < (
        before.outcomes["rationing_returns"].probability
    )
    assert ledger.verify().ok
    for fmt in ("csv", "parquet"):
        out = tmp_path / f"export-{fmt}"
        ledger.export(out, format=fmt)
        target = Ledger(tmp_path / f"restored-{fmt}.db")
        target.restore(out)
        assert target.readings() == ledger.readings()
        assert target.verify().head == ledger.verify().head
    ledger.close()


def test_an_unknown_node_or_state_is_refused_with_a_hint(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    catalog = example_catalog()
    with pytest.raises(ReadingError, match=r"unknown node 'rationin' \(did you mean 'rationing'"):
        ledger.observe_node("rationin", "broad", observed="2025-03", source="wire", catalog=catalog)
    with pytest.raises(ReadingError, match=r"no state 'brod' \(did you mean 'broad'"):
        ledger.observe_node("rationing", "brod", observed="2025-03", source="wire", catalog=catalog)
    with pytest.raises(ReadingError, match="unknown source 'wir'"):
        ledger.observe_node("rationing", "broad", observed="2025-03", source="wir", catalog=catalog)
    assert not (tmp_path / "l.db").exists()  # nothing written


def _to_revision(url: str, revision: str, *, stamp: str | None = None) -> None:
    """Bring the ledger at ``url`` to ``revision`` only (not the head); ``stamp``: the
    revision of a ledger from before revisions were recorded."""
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(url if "://" in url else f"sqlite:///{url}")
    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", "scenariocast.ledger:migrations")
        cfg.attributes["connection"] = conn
        if stamp is not None:
            command.stamp(cfg, stamp)
        command.upgrade(cfg, revision)
    engine.dispose()


def _load_rev0003(url: str) -> None:
    engine = sa.create_engine(url if "://" in url else f"sqlite:///{url}")
    script = (FIXTURES / "ledger-rev0003.sql").read_text(encoding="utf-8")
    if engine.dialect.name != "sqlite":
        engine.dispose()
        from tests.test_ledger_trust import _load_0_1_0

        _load_0_1_0(url)
        _to_revision(url, "0003", stamp="0001")
        return
    raw = engine.raw_connection()
    try:
        raw.driver_connection.executescript(script)  # type: ignore[union-attr]
    finally:
        raw.close()
    engine.dispose()


def test_a_0004_ledger_with_data_upgrades_and_takes_node_readings(ledger_url: str) -> None:
    _load_rev0003(ledger_url)
    _to_revision(ledger_url, "0004")
    old = Ledger(ledger_url)
    assert old.schema_revision() == "0004"
    if "://" in ledger_url:  # a server is upgraded only when asked
        with pytest.raises(LedgerError, match="revision 0004"):
            old.readings()
        assert old.upgrade() == ("0004", SCHEMA_REVISION)
    readings = Ledger(ledger_url).readings()
    assert readings and all(r.kind == "indicator" for r in readings)
    ledger = Ledger(ledger_url)
    assert ledger.schema_revision() == SCHEMA_REVISION == "0005"
    report = ledger.verify()
    assert report.ok, report.problems()
    made = ledger.observe_node("rationing", "partial", observed="2025-02", source="wire")
    report = ledger.verify()
    assert report.ok, report.problems()
    assert report.entries == report.total
    assert ledger.readings()[-1] == made
    assert [r for r in ledger.readings()[:-1]] == readings


def test_an_export_with_a_bad_kind_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    shutil.copytree(FIXTURES / "export-bad-kind", folder)
    with pytest.raises(ImportProblemsError, match=r"readings.csv:2: kind: 'nod' is not valid"):
        Ledger(tmp_path / "t.db").restore(folder)
    assert not (tmp_path / "t.db").exists() or not Ledger(tmp_path / "t.db").readings()


# ---------------------------------------------------------------------------------------------
# the command line


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    scen = tmp_path / "scenarios"
    scen.mkdir()
    (scen / EXAMPLE.name).write_text(EXAMPLE.read_text())
    monkeypatch.setenv("SCENARIOCAST_DB", str(tmp_path / "ledger.db"))
    monkeypatch.setenv("SCENARIOCAST_SCENARIOS", str(scen))
    monkeypatch.chdir(tmp_path)
    return scen


def test_observe_evidence_forecast_explain_on_the_command_line(cli_env: Path) -> None:
    done = runner.invoke(
        app,
        [
            "observe",
            "--node",
            "rationing",
            "broad",
            "--on",
            "2025-03-02",
            "--source",
            "wire",
            "--note",
            "the regime announced rationing (KCNA)",
            "--by",
            "ana",
            "--scenarios",
            str(cli_env),
        ],
    )
    assert done.exit_code == 0, done.output
    assert "recorded reading #1: node rationing = broad (2025-03-02, wire)" in done.output
    listed = runner.invoke(app, ["evidence", "--json"])
    (row,) = json.loads(listed.output)
    assert (row["kind"], row["indicator"], row["value"], row["entered_by"]) == (
        "node",
        "rationing",
        "broad",
        "ana",
    )
    assert "node rationing" in runner.invoke(app, ["evidence"]).output
    tree = str(cli_env / EXAMPLE.name)
    fc = runner.invoke(app, ["forecast", tree, "--json", "--as-of", "2025-06-01"])
    assert fc.exit_code == 0, fc.output
    data = json.loads(fc.output)
    assert data["n_readings_used"] == 1
    assert data["outcomes"]["rationing_returns"]["probability"] > 0.9
    before = runner.invoke(app, ["forecast", tree, "--json", "--as-of", "2025-03-01"])
    assert json.loads(before.output)["n_readings_used"] == 0  # after as-of: ignored
    ex = runner.invoke(app, ["explain", tree, "--as-of", "2025-06-01"])
    assert "#1 node rationing = broad, 2025-03-02, wire" in ex.output
    ex_json = json.loads(runner.invoke(app, ["explain", tree, "--json"]).output)
    (contribution,) = ex_json["contributions"]
    assert contribution["readings"][0]["node"] == "rationing"
    pm = runner.invoke(app, ["forecast", tree, "--engine", "pymc", "--as-of", "2025-06-01"])
    assert pm.exit_code != 0
    assert "PyMC engine does not take readings of nodes" in pm.output
    assert "Traceback" not in pm.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rationin", "broad"], "unknown node 'rationin' (did you mean 'rationing'?)"),
        (["rationing", "brod"], "node 'rationing' has no state 'brod' (did you mean 'broad'?)"),
        (["rationing", "broad", "--unit", "kg"], "takes no --unit"),
    ],
)
def test_bad_node_readings_are_one_line_errors(
    cli_env: Path, args: list[str], message: str
) -> None:
    done = runner.invoke(
        app,
        ["observe", "--node", *args, "--on", "2025-03", "--source", "wire"],
    )
    assert done.exit_code != 0
    lines = [line for line in done.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], done.output
    assert not (cli_env.parent / "ledger.db").exists()


def test_the_spec_is_not_changed_by_reading_nodes(tree: Tree) -> None:
    """The node pseudo-indicators are the tree's readable things, not its indicators."""
    assert set(tree.indicators) == {"rice_price", "distribution_report", "crackdowns"}
    assert set(tree.readable) == {
        *tree.indicators,
        *(f"node:{n}" for n in ("weather", "imports", "harvest", "rationing")),
    }
    assert copy.deepcopy(_example_spec())["nodes"].keys() == tree.spec.nodes.keys()


def test_the_analyses_count_node_readings(tree: Tree) -> None:
    """explain adds up to the forecast; sensitivity, watch, compare and report take them."""
    import math

    readings = [
        node_reading(1, "rationing", "partial", source="rumour"),
        reading(2, "crackdowns", "3", on="2025-03-05"),
        node_reading(3, "harvest", "short", on="2025-03-05"),
    ]
    as_of = dt.date(2025, 6, 1)
    result = api.forecast(tree, readings, as_of=as_of, record=False)
    expl = api.explain(tree, readings, as_of=as_of)
    assert [c.report.ids for c in expl.contributions] == [(1,), (2, 3)]
    o = result.outcomes["rationing_returns"]
    change = math.log(o.probability / (1 - o.probability)) - math.log(o.prior / (1 - o.prior))
    assert expl.total("rationing_returns") == pytest.approx(change, abs=1e-9)
    other = tree_from_dict({**_example_spec(), "id": "other"}, tree_id="other")
    compared = api.compare([tree, other], readings, as_of=as_of)
    assert compared is not None
    assert api.sensitivity(tree, readings, as_of=as_of) is not None
    assert api.watch(tree, readings, as_of=as_of) is not None
    built = api.report(tree, readings, as_of=as_of)
    assert built is not None
