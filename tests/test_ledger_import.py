"""Importing CSV files of readings: all rows or none, mapping files, duplicates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scenariocast.errors import ImportProblemsError, LedgerError, MappingError
from scenariocast.evidence.catalog import Catalog
from scenariocast.ledger import ImportReport, Ledger
from tests.ledger_support import FIXTURES, dump, example_catalog


@pytest.fixture
def catalog() -> Catalog:
    return example_catalog()


@pytest.fixture
def ledger(ledger_url: str) -> Ledger:
    """A new ledger, on SQLite and on PostgreSQL."""
    return Ledger(ledger_url)


def _lines(err: pytest.ExceptionInfo[ImportProblemsError]) -> list[tuple[int | None, str]]:
    return [(p.line, p.message) for p in err.value.problems]


def test_native_csv(ledger: Ledger, catalog: Catalog) -> None:
    report = ledger.import_csv(FIXTURES / "native_good.csv", catalog=catalog, entered_by="ana")
    assert isinstance(report, ImportReport)
    assert report.mapping_path is None
    assert report.skipped_unused == []
    assert report.skipped_duplicates == []
    got = [
        (r.indicator, r.value, r.observed.text, r.source, r.location, r.unit)
        for r in report.imported
    ]
    assert got == [
        ("rice_price", "5200", "2025-10-26", "market_survey", "Pyongyang", "KPW/kg"),
        ("distribution_report", "yes", "2025-11", "wire", "Hyesan", None),
        ("crackdowns", "3", "2025", "rumour", None, None),
        ("crackdowns", "1,000", "2025-01/2025-06", "wire", "Sinuiju", None),
    ]
    first = report.imported[0]
    assert first.note == "fortnightly survey"
    assert first.source_url == "https://example.org/survey/1"
    assert all(r.entered_by == "ana" for r in report.imported)
    assert ledger.readings() == report.imported


def test_a_report_column_names_each_rows_report(ledger: Ledger, catalog: Catalog) -> None:
    report = ledger.import_csv(FIXTURES / "native_reports.csv", catalog=catalog)
    assert [(r.location, r.report) for r in report.imported] == [
        ("Pyongyang", "dnk-2025-10-26"),
        ("Hyesan", "dnk-2025-10-26"),
        ("Sinuiju", "dnk-2025-10-26"),
        ("Pyongyang", None),
    ]


def test_every_bad_row_is_reported_and_nothing_written(ledger: Ledger, catalog: Catalog) -> None:
    ledger.observe("crackdowns", "7", observed="2024", source="wire", catalog=catalog)
    before = dump(ledger)
    with pytest.raises(ImportProblemsError) as err:
        ledger.import_csv(FIXTURES / "native_bad.csv", catalog=catalog)
    problems = err.value.problems
    assert all(p.file == str(FIXTURES / "native_bad.csv") for p in problems)
    lines = _lines(err)
    assert [line for line, _ in lines] == [3, 4, 5, 6, 8]
    assert "unknown indicator 'rice_pric' (did you mean 'rice_price'?)" in lines[0][1]
    assert lines[1][1] == "rice_price: value 'cheap' is not a number"
    assert lines[2][1].startswith("date '2025-13-01' is not a day")
    assert "unknown source 'wir' (did you mean 'wire'?)" in lines[3][1]
    assert "period '2025-12/2025-01' ends before it starts" in lines[4][1]
    assert "nothing imported" in str(err.value)
    assert dump(ledger) == before


def test_header_problems_are_on_line_1(ledger: Ledger, catalog: Catalog) -> None:
    with pytest.raises(ImportProblemsError) as err:
        ledger.import_csv(FIXTURES / "native_missing_column.csv", catalog=catalog)
    assert _lines(err)[0][0] == 1
    assert "missing column value" in _lines(err)[0][1]
    with pytest.raises(ImportProblemsError) as err:
        ledger.import_csv(FIXTURES / "native_unknown_column.csv", catalog=catalog)
    assert _lines(err) == [(1, "unknown column 'sorce_url' (did you mean 'source_url'?)")]
    assert dump(ledger)["readings"] == []


def test_rows_with_the_wrong_number_of_fields(ledger: Ledger, catalog: Catalog) -> None:
    with pytest.raises(ImportProblemsError) as err:
        ledger.import_csv(FIXTURES / "native_ragged.csv", catalog=catalog)
    assert _lines(err) == [
        (3, "has 3 fields, the header has 4"),
        (4, "has 5 fields, the header has 4"),
    ]
    assert dump(ledger)["readings"] == []


def test_line_numbers_count_lines_of_the_file(ledger: Ledger, catalog: Catalog) -> None:
    # the first row spans lines 2-3, so the bad row is on line 4
    with pytest.raises(ImportProblemsError) as err:
        ledger.import_csv(FIXTURES / "native_multiline.csv", catalog=catalog)
    assert _lines(err) == [(4, "crackdowns: value 'many' is not a number")]


def test_links_must_name_an_existing_reading(ledger: Ledger, catalog: Catalog) -> None:
    with pytest.raises(ImportProblemsError) as err:
        ledger.import_csv(FIXTURES / "native_links.csv", catalog=catalog)
    assert _lines(err) == [
        (3, "links: no reading with id 999 to link to"),
        (4, "links: 'abc' is not a reading id"),
    ]
    assert dump(ledger)["readings"] == []


def test_missing_and_empty_files(ledger: Ledger, catalog: Catalog, tmp_path: Path) -> None:
    with pytest.raises(ImportProblemsError, match="no such file"):
        ledger.import_csv(tmp_path / "nothing.csv", catalog=catalog)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ImportProblemsError, match="the file is empty"):
        ledger.import_csv(empty, catalog=catalog)


def test_importing_twice_adds_nothing(ledger: Ledger, catalog: Catalog) -> None:
    first = ledger.import_csv(FIXTURES / "native_good.csv", catalog=catalog)
    assert len(first.imported) == 4
    before = dump(ledger)
    second = ledger.import_csv(FIXTURES / "native_good.csv", catalog=catalog)
    assert second.imported == []
    assert [(line, ind) for line, ind, _ in second.skipped_duplicates] == [
        (2, "rice_price"),
        (3, "distribution_report"),
        (4, "crackdowns"),
        (5, "crackdowns"),
    ]
    assert (
        second.skipped_duplicates[0][2] == f"same as reading {first.imported[0].id} in the ledger"
    )
    assert dump(ledger) == before


def test_a_retracted_reading_is_not_imported_again(ledger: Ledger, catalog: Catalog) -> None:
    first = ledger.import_csv(FIXTURES / "native_good.csv", catalog=catalog)
    ledger.retract(first.imported[0].id, reason="wrong market")
    again = ledger.import_csv(FIXTURES / "native_good.csv", catalog=catalog)
    assert again.imported == []
    assert len(again.skipped_duplicates) == 4


def test_duplicates_within_the_file(ledger: Ledger, catalog: Catalog) -> None:
    report = ledger.import_csv(FIXTURES / "native_duplicates.csv", catalog=catalog)
    assert [r.location for r in report.imported] == ["Pyongyang", "Hyesan"]
    assert report.skipped_duplicates == [(3, "rice_price", "same as line 2")]


def test_a_database_failure_midway_writes_nothing(ledger: Ledger, catalog: Catalog) -> None:
    import sqlalchemy as sa

    ledger.observe("crackdowns", "7", observed="2024", source="wire", catalog=catalog)  # id 1
    before = dump(ledger)
    # the database fails on the third row of the import (id 4), after two were inserted
    engine = sa.create_engine(ledger.url)
    with engine.begin() as conn:
        if ledger.is_sqlite:
            conn.exec_driver_sql(
                "CREATE TRIGGER fail_third BEFORE INSERT ON readings WHEN NEW.id = 4 "
                "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION fail_third() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.id = 4 THEN RAISE EXCEPTION 'disk I/O error'; END IF; RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER fail_third BEFORE INSERT ON readings "
                "FOR EACH ROW EXECUTE FUNCTION fail_third()"
            )
    engine.dispose()
    with pytest.raises(
        LedgerError, match=r"^cannot write to the ledger at .*: disk I/O error( \(SQLITE_\w+\))?$"
    ):
        ledger.import_csv(FIXTURES / "native_good.csv", catalog=catalog)
    assert dump(ledger) == before


# ---------------------------------------------------------------------------------------------
# CSVs in the shape of the real data file, with a mapping file


def test_mapping_next_to_the_csv_is_used(ledger: Ledger, catalog: Catalog) -> None:
    report = ledger.import_csv(FIXTURES / "shaped" / "readings.csv", catalog=catalog)
    assert report.mapping_path == FIXTURES / "shaped" / "mapping.yaml"
    got = [(r.indicator, r.value, r.unit, r.source, r.location) for r in report.imported]
    assert got == [
        # source_url dailynk.com and indicator contains "rice" (case-insensitive)
        ("rice_price", "30000", "KPW/kg", "market_survey", "Pyongyang"),
        # note contains "NK Times"; 2.8 thousand KPW/kg scaled by 1000 into the tree's unit
        ("rice_price", "2800", "KPW/kg", "rumour", "Chongjin"),
        # matches only the catch-all rule {}
        ("distribution_report", "yes", None, "wire", "Hyesan"),
        # dailynk.com but not a rice row: the catch-all rule
        ("crackdowns", "4", "reports", "wire", None),
    ]
    scaled = report.imported[1]
    assert (
        scaled.note
        == "NK Times survey; thousands of won [reported as 2.8 thousand KPW/kg; scaled by 1000]"
    )
    assert [r.source_url for r in report.imported] == [
        "https://www.dailynk.com/english/rice-1/",
        "https://nktimes.kr/en/rice-2/",
        "https://example.org/wire/3",
        "https://www.dailynk.com/english/crackdown/",
    ]
    assert report.skipped_unused == [
        (
            5,
            "usd_kpw_pct_change_vs_2025-02-16",
            "a percentage derived from two readings already in the file",
        )
    ]
    again = ledger.import_csv(FIXTURES / "shaped" / "readings.csv", catalog=catalog)
    assert again.imported == []
    assert len(again.skipped_duplicates) == 4
    assert len(again.skipped_unused) == 1


def test_explicit_mapping_wins(ledger: Ledger, catalog: Catalog, tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "shaped" / "readings.csv", tmp_path / "readings.csv")
    (tmp_path / "mapping.yaml").write_text("this: is not used\n")
    report = ledger.import_csv(
        tmp_path / "readings.csv",
        catalog=catalog,
        mapping_path=FIXTURES / "shaped" / "mapping.yaml",
    )
    assert report.mapping_path == FIXTURES / "shaped" / "mapping.yaml"
    assert len(report.imported) == 4


def test_shaped_csv_without_a_mapping(ledger: Ledger, catalog: Catalog, tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "shaped" / "readings.csv", tmp_path / "readings.csv")
    with pytest.raises(ImportProblemsError) as err:
        ledger.import_csv(tmp_path / "readings.csv", catalog=catalog)
    ((line, message),) = _lines(err)
    assert line == 1
    assert "missing column source" in message
    assert "mapping file" in message


def test_shaped_csv_bad_rows(ledger: Ledger, catalog: Catalog) -> None:
    before = dump(ledger)
    with pytest.raises(ImportProblemsError) as err:
        ledger.import_csv(
            FIXTURES / "shaped_bad.csv",
            catalog=catalog,
            mapping_path=FIXTURES / "mapping_no_fallback.yaml",
        )
    lines = _lines(err)
    assert [line for line, _ in lines] == [3, 4, 5, 6, 7]
    assert lines[0][1].startswith("indicator 'corn_price_market' is not in the mapping file")
    assert lines[1][1].startswith(
        "no rule for indicator 'rice_price_market' in the mapping file fits this row "
        "(unit 'KPW per USD'"
    )
    assert lines[2][1] == "no source rule in the mapping file matches this row"
    assert lines[3][1].startswith("date '2025-10-32' is not a day")
    assert lines[4][1] == (
        "rice_price_market: value 'a lot' is not a number (the mapping scales it by 1000)"
    )
    assert dump(ledger) == before


def test_mapping_with_bad_keys(ledger: Ledger, catalog: Catalog) -> None:
    path = FIXTURES / "mapping_bad_keys.yaml"
    with pytest.raises(MappingError) as err:
        ledger.import_csv(FIXTURES / "shaped_bad.csv", catalog=catalog, mapping_path=path)
    found = {(p.line, p.message) for p in err.value.problems}
    assert all(p.file == str(path) for p in err.value.problems)
    assert (4, "unknown key 'sorce' (did you mean 'source'?)") in found
    assert (4, "missing required key 'source'") in found
    assert (9, "unknown key 'indicatr' (did you mean 'indicator'?)") in found
    assert any(line == 11 and "either `indicator`" in msg for line, msg in found), found
    assert any(
        line == 14 and "scale must be a finite number other than 0" in msg for line, msg in found
    ), found
    assert dump(ledger)["readings"] == []


def test_mapping_with_unknown_match_column(
    tmp_path: Path, ledger: Ledger, catalog: Catalog
) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text("sources:\n  - source: wire\n    match: {sourceurl: x}\n")
    with pytest.raises(MappingError) as err:
        ledger.import_csv(FIXTURES / "shaped" / "readings.csv", catalog=catalog, mapping_path=path)
    ((problem,),) = [err.value.problems]
    assert problem.line == 3
    assert problem.message == "unknown column 'sourceurl' (did you mean 'source_url'?)"


def test_mapping_names_must_be_in_the_trees(ledger: Ledger, catalog: Catalog) -> None:
    path = FIXTURES / "mapping_bad_names.yaml"
    with pytest.raises(MappingError) as err:
        ledger.import_csv(FIXTURES / "shaped" / "readings.csv", catalog=catalog, mapping_path=path)
    assert [(p.line, p.message) for p in err.value.problems] == [
        (2, "no scenario tree defines source 'wires' (did you mean 'wire'?)"),
        (6, "no scenario tree defines indicator 'rice_prices' (did you mean 'rice_price'?)"),
    ]


def test_mapping_that_is_not_yaml(ledger: Ledger, catalog: Catalog) -> None:
    with pytest.raises(MappingError, match="not valid YAML"):
        ledger.import_csv(
            FIXTURES / "shaped" / "readings.csv",
            catalog=catalog,
            mapping_path=FIXTURES / "mapping_not_yaml.yaml",
        )
    with pytest.raises(MappingError, match="no such file"):
        ledger.import_csv(
            FIXTURES / "shaped" / "readings.csv",
            catalog=catalog,
            mapping_path=FIXTURES / "no-such-mapping.yaml",
        )


def test_indicator_rules_match_date_form_and_columns(
    ledger: Ledger, catalog: Catalog, tmp_path: Path
) -> None:
    """Rules can pick rows by the form of their date and by column text, first match wins."""
    (tmp_path / "mapping.yaml").write_text(
        "sources:\n  - source: market_survey\n    match: {}\n"
        "indicators:\n"
        "  rice_price_market:\n"
        "    - match: {location: average}\n"
        "      unused: an average of cities already read one by one\n"
        "    - date_form: [day]\n"
        "      indicator: rice_price\n"
        "    - unused: not a day's survey\n"
    )
    (tmp_path / "readings.csv").write_text(
        "date,indicator,location,value,unit,source_url,note\n"
        "2025-10-26,rice_price_market,Pyongyang,21200,KPW/kg,,\n"
        "2025-10-26,rice_price_market,3-city average,21000,KPW/kg,,\n"
        "2025-10,rice_price_market,Pyongyang,20000,KPW/kg,,\n"
    )
    report = ledger.import_csv(tmp_path / "readings.csv", catalog=catalog)
    assert [(r.indicator, r.location) for r in report.imported] == [("rice_price", "Pyongyang")]
    assert [(line, reason) for line, _, reason in report.skipped_unused] == [
        (3, "an average of cities already read one by one"),
        (4, "not a day's survey"),
    ]


def test_unknown_column_in_an_indicator_rule_is_named(tmp_path: Path) -> None:
    from scenariocast.errors import MappingError
    from scenariocast.ledger.mapping import load_mapping

    path = tmp_path / "mapping.yaml"
    path.write_text("indicators:\n  x:\n    - match: {locaton: a}\n      unused: y\n")
    with pytest.raises(
        MappingError,
        match=r"mapping.yaml:3: .*unknown column 'locaton' \(did you mean 'location'\?\)",
    ):
        load_mapping(path)


def test_control_characters_in_cells_are_refused_on_their_line(
    ledger: Ledger, catalog: Catalog
) -> None:
    """A control character anywhere in the file sends each row through the full check."""
    path = FIXTURES / "native_controls.csv"
    with pytest.raises(ImportProblemsError) as err:
        ledger.import_csv(path, catalog=catalog)
    lines = _lines(err)
    assert [line for line, _ in lines] == [3, 5]
    assert lines[0][1].startswith(r"location: 'Hye\x1bsan' holds a control character")
    assert lines[1][1].startswith(r"unknown source 'wire\tX' (did you mean 'wire'?)")
    assert ledger.count() == 0
    # the rows on their own: the tab in a note is kept, as when observed one by one
    good = [line for i, line in enumerate(path.read_text().splitlines()) if i not in (2, 4)]
    clean = path.parent / "native_controls_ok.csv"
    try:
        clean.write_text("\n".join(good) + "\n")
        report = ledger.import_csv(clean, catalog=catalog)
    finally:
        clean.unlink()
    assert [r.note for r in report.imported] == ["plain row", "a tab\tin a note is kept"]


def test_imported_readings_are_the_stored_ones(ledger: Ledger, catalog: Catalog) -> None:
    """The readings an import returns are built when looked at, equal to the stored ones."""
    report = ledger.import_csv(FIXTURES / "native_good.csv", catalog=catalog, entered_by="ana")
    stored = ledger.readings()
    assert len(report.imported) == len(stored) > 3
    assert report.imported == stored and stored == report.imported
    assert report.imported[1:3] == stored[1:3]
    assert [r.id for r in report.imported] == [r.id for r in stored]
    assert report.imported != stored[:-1]
    assert report.imported[0].observed == stored[0].observed


def test_a_kind_column_imports_readings_of_nodes(ledger: Ledger, catalog: Catalog) -> None:
    """``kind`` ``node``: the node in ``indicator``, its state in ``value`` (as observe --node)."""
    report = ledger.import_csv(FIXTURES / "native_nodes.csv", catalog=catalog)
    got = [(r.kind, r.indicator, r.value, r.source, r.observed.text) for r in report.imported]
    assert got == [
        ("indicator", "crackdowns", "2", "wire", "2025-10"),
        ("node", "rationing", "broad", "wire", "2025-11"),
        ("indicator", "crackdowns", "3", "wire", "2025-11"),
        ("node", "rationing", "partial", "rumour", "2025-12-02"),
    ]
    assert [r.of_node for r in ledger.readings()] == [False, True, False, True]
    assert ledger.verify().ok
    # the same file again adds nothing; a node and an indicator reading are never one reading
    again = ledger.import_csv(FIXTURES / "native_nodes.csv", catalog=catalog)
    assert list(again.imported) == [] and len(again.skipped_duplicates) == 4


def test_bad_rows_of_nodes_are_each_named_on_their_line(ledger: Ledger, catalog: Catalog) -> None:
    with pytest.raises(ImportProblemsError) as err:
        ledger.import_csv(FIXTURES / "native_nodes_bad.csv", catalog=catalog)
    lines = _lines(err)
    assert [line for line, _ in lines] == [2, 3, 4, 5, 6, 7, 8, 9]
    messages = [m for _, m in lines]
    assert messages[0].startswith("unknown node 'rationin' (did you mean 'rationing'?)")
    assert messages[1].startswith("node 'rationing' has no state 'brod' (did you mean 'broad'?)")
    assert messages[2].startswith("unknown source 'wir' (did you mean 'wire'?)")
    assert messages[3] == "node rationing: a reading of a node has no unit (unit 'KPW')"
    assert messages[4] == "links: a reading of a node links to no other reading (node rationing)"
    assert messages[5] == "node rationing: no state"
    assert (
        messages[6]
        == "kind: 'nod' is not a kind of reading (did you mean 'node'?); it is indicator or node"
    )
    assert "future" in messages[7]
    assert ledger.count() == 0
