"""The scenariocast command line: parse, call the library, print, map errors to exit codes.

Exit codes: 0 success; 1 a problem with the input (one line per problem on stderr, no
traceback); 2 wrong usage. Nothing here computes: every command calls the library.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

try:
    from typer import _click as click  # recent typer bundles its own click
except ImportError:  # pragma: no cover - typer that depends on click
    import click  # type: ignore[no-redef,import-not-found,unused-ignore]

from scenariocast import __version__
from scenariocast.errors import ProblemsError, ScenariocastError, escape_controls

if TYPE_CHECKING:
    from scenariocast.evidence.catalog import Catalog
    from scenariocast.ledger import Ledger
    from scenariocast.ledger.reads import SqliteReader


def _usage_error(exc: click.exceptions.UsageError) -> None:
    """Wrong usage as one line on stderr, with where to find help, and exit code 2."""
    ctx = exc.ctx
    where = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
    typer.echo(f"error: {escape_controls(exc.format_message())}{where}", err=True)
    raise typer.Exit(code=2)


class _OneLineErrors(TyperGroup):
    """Wrong usage (an unknown option, a value out of range) reported on one line, exit 2."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.exceptions.UsageError as exc:
            _usage_error(exc)
            raise  # pragma: no cover - _usage_error always exits

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.exceptions.UsageError as exc:
            _usage_error(exc)


app = typer.Typer(
    cls=_OneLineErrors,
    name="scenariocast",
    help="Scenario trees, an evidence ledger and Bayesian updating for forecasters.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="SCENARIOCAST_DB",
        help="Ledger: a SQLite file or any SQLAlchemy URL (default: see `scenariocast info`).",
    ),
]
ScenariosOption = Annotated[
    Path,
    typer.Option(
        "--scenarios",
        envvar="SCENARIOCAST_SCENARIOS",
        help="Folder of scenario trees whose indicators and sources readings are checked against.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
GivenOption = Annotated[
    list[str] | None,
    typer.Option(
        "--given",
        "-g",
        help="Assume NODE=STATE (repeatable); for a dynamic node, at every step of the horizon, "
        "or at one step with NODE@DATE=STATE (DATE: 2026-06 or 2026-06-15).",
        metavar="NODE=STATE",
    ),
]
VirtualOption = Annotated[
    list[str] | None,
    typer.Option(
        "--virtual",
        help="Virtual (likelihood) evidence on a node, NODE=STATE:RATIO,STATE:RATIO,... "
        "(repeatable; NODE@DATE for one step): how much more likely the report is in each "
        "state. Exact engine.",
        metavar="NODE=S:R,...",
    ),
]
SoftOption = Annotated[
    list[str] | None,
    typer.Option(
        "--soft",
        help="Soft evidence on a node (Jeffrey's rule), NODE=STATE:P,STATE:P,... summing to 1 "
        "(repeatable): the node's probabilities after the update. Exact engine.",
        metavar="NODE=S:P,...",
    ),
]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Count only readings observed on or before this day (YYYY-MM-DD)."
    ),
]


class Engine(StrEnum):
    """The engines ``--engine`` accepts."""

    exact = "exact"
    pymc = "pymc"


TreeArgument = Annotated[Path, typer.Argument(help="A scenario file (YAML).", show_default=False)]
EngineOption = Annotated[
    Engine,
    typer.Option(
        "--engine",
        help="exact: Bayes' rule on the tree's numbers; pymc: every number held with "
        "uncertainty, probabilities with 90% intervals (docs/pymc.md).",
    ),
]
DrawsOption = Annotated[
    int, typer.Option("--draws", min=1, help="PyMC engine: draws per chain (after tuning).")
]
ChainsOption = Annotated[
    int, typer.Option("--chains", min=2, help="PyMC engine: chains (at least 2).")
]
SeedOption = Annotated[
    int | None,
    typer.Option("--seed", help="PyMC engine: random seed (default: from the tree and readings)."),
]
ByOption = Annotated[
    str | None,
    typer.Option(
        "--by",
        help="Who is recording this (default: $SCENARIOCAST_USER, else the operating system's "
        "user).",
        show_default=False,
    ),
]
WeightsOption = Annotated[
    str | None,
    typer.Option(
        "--weights",
        help="The trees' weights: one per tree in order (2,1) or by id (nk-2026=2,other=1); "
        "default equal.",
        show_default=False,
    ),
]


def _fail(lines: list[str]) -> None:
    for line in lines:
        typer.echo(f"error: {escape_controls(line)}", err=True)
    raise typer.Exit(code=1)


def _note(line: str) -> None:
    typer.echo(f"note: {escape_controls(line)}", err=True)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn scenariocast errors into one line per problem on stderr and exit code 1."""
    try:
        yield
    except ProblemsError as exc:
        head = f"{exc.subject}: " if exc.subject else ""
        n = len(exc.problems)
        lines = [f"{head}{exc.kind} ({n} problem{'s' if n != 1 else ''})"] if n > 1 else []
        _fail(lines + (exc.lines() if n > 1 else [str(exc)]))
    except ScenariocastError as exc:
        _fail([str(exc)])


def _ledger(db: str | None) -> Ledger:
    from scenariocast.ledger import Ledger

    return Ledger(db)


def _reader(db: str | None) -> Ledger | SqliteReader:
    """The ledger, for a command that only lists what it holds.

    A SQLite file at the current schema is read with sqlite3 alone (no SQLAlchemy to import);
    anything else through :class:`~scenariocast.ledger.Ledger`, which upgrades an older file
    and says what is wrong with a missing or newer one.
    """
    from scenariocast.ledger.reads import open_reader

    return open_reader(db) or _ledger(db)


def _catalog(scenarios: Path) -> Catalog:
    from scenariocast.evidence.catalog import Catalog

    return Catalog.from_dir(scenarios)


def _as_of(text: str | None) -> dt.date | None:
    from scenariocast.evidence.readings import parse_day

    return parse_day(text) if text is not None else None


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"scenariocast {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Scenario trees, an evidence ledger and Bayesian updating for forecasters."""


@app.command()
def validate(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Scenario files (default: every *.yaml in --scenarios).", show_default=False
        ),
    ] = None,
    scenarios: ScenariosOption = Path("scenarios"),
) -> None:
    """Check scenario files and report every problem, with file, field and line."""
    from scenariocast.spec.load import load_tree

    paths = list(files or sorted(scenarios.glob("*.yaml")))
    if not paths:
        _fail([f"no scenario files given and none in {scenarios}/"])
    problems: list[str] = []
    for path in paths:
        try:
            tree = load_tree(path)
        except ProblemsError as exc:
            problems.extend(exc.lines())
            continue
        typer.echo(
            f"ok: {path} ({tree.id}: {len(tree.nodes)} nodes, {len(tree.outcomes)} outcomes, "
            f"{len(tree.indicators)} indicators)"
        )
        for n in tree.notes:
            _note(str(n))
    if problems:
        _fail(problems)


@app.command()
def show(tree: TreeArgument) -> None:
    """Show a tree: nodes, outcomes, indicators and sources."""
    from scenariocast.report.text import render_tree
    from scenariocast.spec.load import load_tree

    with _errors():
        typer.echo(render_tree(load_tree(tree)))


@app.command()
def convert(
    source: Annotated[
        Path,
        typer.Argument(
            metavar="IN",
            help="A network (.bif, .xml/.xmlbif, .net, .xdsl) or a scenario tree (.yaml).",
            show_default=False,
        ),
    ],
    target: Annotated[
        Path,
        typer.Argument(
            metavar="OUT",
            help="The file to write, in the format of its extension.",
            show_default=False,
        ),
    ],
    tolerance: Annotated[
        float,
        typer.Option(
            "--tolerance",
            min=0.0,
            max=0.5,
            help="How far a row of the network may sum from 1 and still be read (renormalised, "
            "with a note).",
        ),
    ] = 1e-3,
) -> None:
    """Convert between BIF, XMLBIF, Hugin NET, GeNIe XDSL and scenario trees (by extension).

    What the target format cannot hold, and what changed on the way, is listed as notes.
    """
    from scenariocast.interop import NAMES
    from scenariocast.interop import convert as run

    with _errors():
        done = run(source, target, tolerance=tolerance)
        for line in done.notes:
            _note(line)
        typer.echo(
            f"wrote {done.target} ({NAMES[done.target_format]}, {done.nodes} nodes) from "
            f"{done.source} ({NAMES[done.source_format]})"
        )


@app.command()
def schema() -> None:
    """Print the JSON Schema of the scenario file format."""
    from scenariocast.spec.model import ScenarioTree

    _print_json(ScenarioTree.model_json_schema())


@app.command()
def info(db: DbOption = None, scenarios: ScenariosOption = Path("scenarios")) -> None:
    """Show the version, where the ledger is, what it holds, and the trees found."""
    from scenariocast.errors import LedgerNotFoundError

    with _errors():
        ledger = _reader(db)
        typer.echo(f"scenariocast {__version__}")
        typer.echo(f"ledger: {ledger.location}")
        try:
            counts = ledger.counts()
        except LedgerNotFoundError:
            typer.echo(
                "  (none there yet: `scenariocast observe`, `import` or `ledger init` creates it)"
            )
        else:
            typer.echo(f"readings: {counts.readings} ({counts.retracted} retracted)")
            typer.echo(f"forecasts recorded: {counts.snapshots}")
            typer.echo(
                f"resolutions: {counts.resolutions} ({counts.resolutions_retracted} retracted)"
            )
        typer.echo(f"scenarios: {scenarios.resolve()}")
        for path in sorted(scenarios.glob("*.yaml")):
            typer.echo(f"  {path.name}")


@app.command(context_settings={"ignore_unknown_options": True})
def observe(
    indicator: Annotated[
        str,
        typer.Argument(help="Indicator name, as in the scenario files (with --node: a node)."),
    ],
    value: Annotated[
        str,
        typer.Argument(
            help="The value as reported (a number, yes/no, a category; with --node: a state)."
        ),
    ],
    on: Annotated[str, typer.Option("--on", help="Observed: a day, month, year or period (A/B).")],
    source: Annotated[str, typer.Option("--source", help="Source name, as in the scenario files.")],
    location: Annotated[str | None, typer.Option(help="Where it was observed.")] = None,
    note: Annotated[str | None, typer.Option(help="Free text.")] = None,
    unit: Annotated[str | None, typer.Option(help="Unit as reported.")] = None,
    url: Annotated[str | None, typer.Option("--url", help="Source address.")] = None,
    links: Annotated[
        int | None, typer.Option("--links", help="Id of an earlier reading of the same event.")
    ] = None,
    report: Annotated[
        str | None,
        typer.Option(
            "--report",
            help="Report id: readings of one source with the same id are one report "
            "(default: the source's readings of the same observed date).",
        ),
    ] = None,
    node: Annotated[
        bool,
        typer.Option(
            "--node",
            help="A reading of a node of a tree, not of an indicator: the source reports the "
            "node in the state given (observe --node rationing broad ...).",
        ),
    ] = False,
    by: ByOption = None,
    db: DbOption = None,
    scenarios: ScenariosOption = Path("scenarios"),
) -> None:
    """Record one reading in the ledger (a negative value needs no `--`: observe x -5 ...)."""
    from scenariocast.ledger.store import today

    with _errors():
        catalog = _catalog(scenarios)
        if node:
            _observe_node(
                catalog,
                scenarios,
                indicator,
                value,
                on=on,
                source=source,
                location=location,
                note=note,
                unit=unit,
                url=url,
                links=links,
                report=report,
                by=by,
                db=db,
            )
            return
        reading = _ledger(db).observe(
            indicator,
            value,
            observed=on,
            source=source,
            unit=unit,
            location=location,
            note=note,
            source_url=url,
            links=links,
            report=report,
            entered_by=by,
            catalog=catalog,
        )
        typer.echo(
            f"recorded reading #{reading.id}: {reading.indicator} = {reading.value} "
            f"({reading.observed}, {reading.source})"
        )
        if not catalog.trees_reading(reading.indicator, reading.source):
            _note(
                f"no tree in {scenarios} reads {reading.indicator} from source "
                f"{reading.source}: this reading counts in no forecast until one does"
            )
        if reading.observed.end > today():
            _note(f"observed until {reading.observed.end}: it counts in forecasts as of that day")


def _observe_node(
    catalog: Catalog,
    scenarios: Path,
    node: str,
    state: str,
    *,
    on: str,
    source: str,
    location: str | None,
    note: str | None,
    unit: str | None,
    url: str | None,
    links: int | None,
    report: str | None,
    by: str | None,
    db: str | None,
) -> None:
    from scenariocast.errors import ReadingError
    from scenariocast.ledger.store import today

    if unit is not None or links is not None:
        raise ReadingError(
            f"--node {node}: a reading of a node takes no --{'unit' if unit else 'links'} "
            "(its value is a state)"
        )
    reading = _ledger(db).observe_node(
        node,
        state,
        observed=on,
        source=source,
        location=location,
        note=note,
        source_url=url,
        report=report,
        entered_by=by,
        catalog=catalog,
    )
    typer.echo(
        f"recorded reading #{reading.id}: node {reading.indicator} = {reading.value} "
        f"({reading.observed}, {reading.source})"
    )
    if not catalog.trees_reading_node(reading.indicator, reading.value, reading.source):
        _note(
            f"no tree in {scenarios} has node {reading.indicator} with state {reading.value} "
            f"and source {reading.source}: this reading counts in no forecast until one does"
        )
    if reading.observed.end > today():
        _note(f"observed until {reading.observed.end}: it counts in forecasts as of that day")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV of readings.", show_default=False)],
    mapping: Annotated[
        Path | None,
        typer.Option(
            help="Mapping of the CSV's indicators, units and sources "
            "(default: mapping.yaml beside the CSV)."
        ),
    ] = None,
    by: ByOption = None,
    db: DbOption = None,
    scenarios: ScenariosOption = Path("scenarios"),
) -> None:
    """Import a CSV of readings: every row or none; every bad row is reported with its line."""
    from scenariocast.report.text import render_skipped

    with _errors():
        report = _ledger(db).import_csv(
            file, catalog=_catalog(scenarios), mapping_path=mapping, entered_by=by
        )
        typer.echo(f"imported {len(report.imported)} readings from {file}")
        if report.mapping_path:
            typer.echo(f"mapping: {report.mapping_path}")
        if report.skipped_duplicates:
            n = len(report.skipped_duplicates)
            typer.echo(f"already in the ledger or repeated in the file, not added again: {n} rows")
        for line in render_skipped(report.skipped_unused, label="not imported"):
            typer.echo(line)


@app.command()
def evidence(
    as_json: JsonOption = False,
    indicator: Annotated[str | None, typer.Option(help="Only this indicator.")] = None,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    location: Annotated[str | None, typer.Option(help="Only this location.")] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only readings observed on or after this day (YYYY-MM-DD)."),
    ] = None,
    before: Annotated[
        int | None,
        typer.Option(help="Only readings with an id below this (to page back).", min=1),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(help="Show the last N readings that match; 0 shows them all.", min=0),
    ] = 50,
    db: DbOption = None,
) -> None:
    """List the ledger's readings, newest last, retracted ones included and marked."""
    from scenariocast.report.text import render_readings

    with _errors():
        ledger = _reader(db)
        when = _as_of(since)
        readings = ledger.readings(
            indicator=indicator,
            source=source,
            location=location,
            since=when,
            before=before,
            limit=limit or None,
        )
        if as_json:
            _print_json([_reading_dict(r) for r in readings])
            return
        if not readings:
            typer.echo("no readings match" if ledger.count() else "the ledger has no readings")
            return
        typer.echo(render_readings(readings))
        if limit and len(readings) == limit:
            total = ledger.count(indicator=indicator, source=source, location=location, since=when)
            if total > limit:
                typer.echo(
                    f"the last {limit} of {total} readings that match; earlier ones: "
                    f"--before {readings[0].id}, all: --limit 0"
                )


def _reading_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "indicator": r.indicator,
        "value": r.value,
        "unit": r.unit,
        "observed": str(r.observed),
        "location": r.location,
        "source": r.source,
        "source_url": r.source_url,
        "note": r.note,
        "links": r.links,
        "report": r.report,
        "entered_at": r.entered_at.isoformat() if r.entered_at else None,
        "entered_by": r.entered_by,
        "retracted": r.retracted,
        "retraction_reason": r.retraction_reason,
        "kind": r.kind,
    }


@app.command()
def retract(
    reading_id: Annotated[int, typer.Argument(metavar="ID", help="The reading's id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it no longer counts.")],
    by: ByOption = None,
    db: DbOption = None,
) -> None:
    """Retract a reading: it stops counting but stays in the ledger with the reason."""
    with _errors():
        r = _ledger(db).retract(reading_id, reason=reason, by=by)
        typer.echo(f"retracted reading #{r.id} ({r.indicator} = {r.value}): {reason}")


@app.command()
def forecast(
    tree: TreeArgument,
    given: GivenOption = None,
    virtual: VirtualOption = None,
    soft: SoftOption = None,
    as_of: AsOfOption = None,
    as_json: JsonOption = False,
    db: DbOption = None,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="Record a what-if (--given, --virtual, --soft) in the history too; forecasts "
            "without them are always recorded.",
        ),
    ] = False,
    engine: EngineOption = Engine.exact,
    draws: DrawsOption = 1000,
    chains: ChainsOption = 2,
    seed: SeedOption = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="PyMC engine: exit with code 3 when the sampler did not converge."
        ),
    ] = False,
    save: Annotated[
        Path | None,
        typer.Option(
            "--save", help="PyMC engine: write the posterior (an ArviZ DataTree) to this .nc file."
        ),
    ] = None,
    by: ByOption = None,
) -> None:
    """Update the tree on the ledger's evidence; print outcomes, priors and top scenarios."""
    import sys

    from scenariocast.api import forecast as run
    from scenariocast.api import parse_given, parse_node_evidence, record_forecast
    from scenariocast.errors import LedgerBusyError
    from scenariocast.report.text import render_forecast
    from scenariocast.spec.load import load_tree

    converged = True
    with _errors():
        ledger = _ledger(db)
        assumed = parse_given(given or [])
        likelihoods = parse_node_evidence(virtual or [], "--virtual")
        revised = parse_node_evidence(soft or [], "--soft")
        loaded = load_tree(tree)
        result = run(
            loaded,
            ledger,
            given=assumed,
            virtual=likelihoods,
            soft=revised,
            as_of=_as_of(as_of),
            record=False,
            engine=engine.value,
            draws=draws,
            chains=chains,
            seed=seed,
            progress=not as_json and sys.stderr.isatty(),
            save=save,
        )
        if record or not (assumed or likelihoods or revised):
            if record or ledger.accepts_writes:
                try:
                    record_forecast(loaded, ledger, result, by=by)
                except LedgerBusyError as exc:
                    if record:
                        raise
                    _note(f"not recorded in the history: {exc}")
            else:
                _note(f"not recorded in the history: the ledger at {ledger.location} is read-only")
        if as_json:
            _print_json(result.to_dict())
        else:
            typer.echo(render_forecast(result))
        if save is not None:
            _note(f"posterior written to {save}")
        converged = result.engine != "pymc" or bool(result.diagnostics.get("converged"))
    if strict and not converged:
        raise typer.Exit(code=3)


@app.command()
def explain(
    tree: TreeArgument,
    outcome: Annotated[
        str | None, typer.Option(help="Only this outcome, with every reading.")
    ] = None,
    given: GivenOption = None,
    as_of: AsOfOption = None,
    as_json: JsonOption = False,
    top: Annotated[int, typer.Option(help="Readings shown per outcome.", min=1)] = 5,
    db: DbOption = None,
) -> None:
    """Each reading's contribution to each outcome, in log-odds, in the order observed."""
    from scenariocast.api import explain as run
    from scenariocast.api import parse_given
    from scenariocast.report.text import render_explanation

    with _errors():
        expl = run(
            tree,
            _ledger(db),
            given=parse_given(given or []),
            as_of=_as_of(as_of),
            outcomes=[outcome] if outcome else None,
        )
        if as_json:
            _print_json(expl.to_dict())
        else:
            typer.echo(render_explanation(expl, outcome=outcome, top=top))


@app.command()
def watch(
    tree: TreeArgument,
    outcome: Annotated[
        str | None, typer.Option(help="Only this outcome (default: every outcome).")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            help="The source every reading would come from (default: each indicator's usual "
            "source: its source in the tree, else that of most of its readings, else the tree's "
            "most reliable)."
        ),
    ] = None,
    indicator: Annotated[
        list[str] | None,
        typer.Option("--indicator", help="Only this indicator (repeatable)."),
    ] = None,
    readings: Annotated[
        int,
        typer.Option(
            "--readings", min=1, help="Readings of the indicator in the one report (cities)."
        ),
    ] = 1,
    top: Annotated[int, typer.Option(help="Indicators shown per outcome.", min=1)] = 5,
    as_of: AsOfOption = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """What to watch next: what a reading of each indicator would tell about each outcome."""
    from scenariocast.api import watch as run
    from scenariocast.report.text import render_watch

    with _errors():
        result = run(
            tree,
            _ledger(db),
            as_of=_as_of(as_of),
            outcomes=[outcome] if outcome else None,
            source=source,
            indicators=indicator or None,
            readings_per_report=readings,
        )
        if as_json:
            _print_json(result.to_dict())
        else:
            typer.echo(render_watch(result, outcome=outcome, top=top))


@app.command()
def sensitivity(
    tree: TreeArgument,
    outcome: Annotated[
        str | None, typer.Option(help="Only this outcome (default: every outcome).")
    ] = None,
    top: Annotated[
        int,
        typer.Option(
            help="Numbers shown per outcome (and in its tornado chart), their ranges "
            "recomputed exactly.",
            min=1,
        ),
    ] = 15,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder to write a tornado chart per outcome (tornado-OUTCOME.png) and "
            "sensitivity.json into (created if needed).",
        ),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            help="exact; or pymc: also the power-scaling sensitivity of the PyMC posterior to "
            "the prior and to the readings."
        ),
    ] = Engine.exact,
    draws: Annotated[
        int, typer.Option("--draws", min=1, help="PyMC engine: draws per chain (after tuning).")
    ] = 1000,
    chains: Annotated[
        int, typer.Option("--chains", min=2, help="PyMC engine: chains (at least 2).")
    ] = 2,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", help="PyMC engine: random seed (default: from the tree and readings)."
        ),
    ] = None,
    as_of: AsOfOption = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """What the forecast hinges on: how each outcome moves with each number in the tree."""
    from scenariocast.api import sensitivity as run
    from scenariocast.report.text import render_sensitivity

    with _errors():
        if out is not None:
            from scenariocast.report.output import check_output

            check_output(out, what="the sensitivity charts")
        result = run(
            tree,
            _ledger(db),
            as_of=_as_of(as_of),
            outcomes=[outcome] if outcome else None,
            top=top,
            engine=engine.value,
            draws=draws,
            chains=chains,
            seed=seed,
        )
        if out is not None:
            from scenariocast.report.document import sensitivity_files
            from scenariocast.report.output import write_files

            written = write_files(
                out, sensitivity_files(result, top=top), what="the sensitivity charts"
            )
        if as_json:
            _print_json(result.to_dict(top=top))
        else:
            typer.echo(render_sensitivity(result, outcome=outcome, top=top))
        if out is not None:
            for path in written.values():
                if as_json:
                    _note(f"wrote {path}")
                else:
                    typer.echo(f"wrote {path}")


@app.command()
def report(
    tree: TreeArgument,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder to write report.html, report.md, forecast.json and figures/ into "
            "(created if needed; the report's own files in it are replaced).",
            show_default=False,
        ),
    ],
    engine: EngineOption = Engine.exact,
    as_of: AsOfOption = None,
    by: ByOption = None,
    db: DbOption = None,
    draws: DrawsOption = 1000,
    chains: ChainsOption = 2,
    seed: SeedOption = None,
) -> None:
    """Write a probability report: one HTML page to send, the same in Markdown, and the JSON."""
    from scenariocast.api import write_report

    with _errors():
        files = write_report(
            tree,
            _ledger(db),
            out,
            engine=engine.value,
            as_of=_as_of(as_of),
            by=by,
            draws=draws,
            chains=chains,
            seed=seed,
        )
        typer.echo(f"wrote {files.html}")
        typer.echo(f"wrote {files.markdown} (figures in {files.markdown.parent / 'figures'})")
        typer.echo(f"wrote {files.json}")


@app.command()
def history(
    as_json: JsonOption = False,
    tree: Annotated[str | None, typer.Option(help="Only this tree id.")] = None,
    db: DbOption = None,
) -> None:
    """List the forecasts made so far (snapshots), oldest first."""
    from scenariocast.report.text import table

    with _errors():
        snaps = _ledger(db).history(tree)
        if as_json:
            _print_json([_snapshot_dict(s) for s in snaps])
            return
        if not snaps:
            typer.echo("no forecasts recorded yet")
            return
        rows = [
            [
                s.id,
                s.created_at.strftime("%Y-%m-%d %H:%M"),
                s.tree_id,
                s.engine,
                s.as_of,
                s.created_by or "-",
                s.n_readings,
                s.readings_hash[:10],
                s.tree_hash[:10],
                ", ".join(f"{k}={v}" for k, v in sorted(s.given.items())) or "-",
                ", ".join(f"{k} {100 * v:.1f}%" for k, v in s.payload.get("outcomes", {}).items()),
            ]
            for s in snaps
        ]
        typer.echo(
            table(
                [
                    "id",
                    "when",
                    "tree",
                    "engine",
                    "as of",
                    "by",
                    "readings",
                    "evidence",
                    "tree hash",
                    "given (what-if)",
                    "outcomes",
                ],
                rows,
            )
        )


def _snapshot_dict(s: Any) -> dict[str, Any]:
    return {
        "id": s.id,
        "created_at": s.created_at.isoformat(),
        "tree": s.tree_id,
        "tree_hash": s.tree_hash,
        "engine": s.engine,
        "as_of": str(s.as_of),
        "given": s.given,
        "what_if": s.is_what_if,
        "created_by": s.created_by,
        "n_readings": s.n_readings,
        "readings_hash": s.readings_hash,
        "probabilities": s.payload,
    }


# ---------------------------------------------------------------------------------------------
# comparing, pooling, resolving and scoring


class Answer(StrEnum):
    """How a question resolved."""

    yes = "yes"
    no = "no"


class PoolMethod(StrEnum):
    """The pools ``pool --method`` accepts."""

    linear = "linear"
    log = "log"
    extremized = "extremized"
    evidence = "evidence"


class Every(StrEnum):
    """The dates ``backtest --every`` replays the ledger at."""

    reading = "reading"
    month = "month"
    quarter = "quarter"


TreesArgument = Annotated[
    list[Path], typer.Argument(help="Scenario files (YAML).", show_default=False)
]
ExtremizeOption = Annotated[
    float | None,
    typer.Option(
        "--extremize",
        help="The extremized pool's factor a (logit p = a * the weighted mean log-odds); default: "
        "fitted on 20+ resolved questions, else 1.5.",
        show_default=False,
    ),
]


def _trees(paths: list[Path]) -> list[Any]:
    from scenariocast.spec.load import load_tree

    return [load_tree(p) for p in paths]


@app.command()
def compare(
    trees: TreesArgument,
    as_of: AsOfOption = None,
    weights: WeightsOption = None,
    as_json: JsonOption = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Also write compare.html (one self-contained page), compare.md and "
            "compare.json into this folder.",
            show_default=False,
        ),
    ] = None,
    top: Annotated[int, typer.Option(help="Reports shown that told the trees apart.", min=1)] = 8,
    db: DbOption = None,
) -> None:
    """Compare trees on the ledger: outcomes, structure, evidence fit and Bayes factors."""
    from scenariocast.analysis.compare import compare as run
    from scenariocast.analysis.compare import parse_weights

    with _errors():
        if len(trees) < 2:
            _usage(f"compare takes at least two trees, got {len(trees)}", "compare")
        day = _as_of(as_of)
        w = parse_weights(weights)
        loaded = _trees(trees)
        if out is not None:
            from scenariocast.report.output import check_output

            check_output(out)
        ledger = _ledger(db)
        result = run(loaded, ledger.readings(), as_of=day, weights=w)
        if result.n_common == 0:
            _note(
                "the trees count no reading in common: no Bayes factor yet, and their weights "
                "are the prior weights"
            )
        if out is not None:
            from scenariocast.report.comparison import write_comparison

            files = write_comparison(result, out)
        if as_json:
            _print_json(result.to_dict())
        else:
            from scenariocast.report.compare_text import render_comparison

            typer.echo(render_comparison(result, top=top))
        if out is not None:
            for path in files.values():
                _note(f"wrote {path}")


def _usage(message: str, command: str) -> None:
    typer.echo(f"error: {message} (see: scenariocast {command} --help)", err=True)
    raise typer.Exit(code=2)


@app.command()
def pool(
    trees: TreesArgument,
    method: Annotated[
        PoolMethod, typer.Option("--method", help="linear, log, extremized or evidence.")
    ] = PoolMethod.linear,
    weights: WeightsOption = None,
    extremize: ExtremizeOption = None,
    as_of: AsOfOption = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Pool the trees' forecasts of the outcomes they share into one probability each."""
    from scenariocast.analysis.compare import parse_weights
    from scenariocast.analysis.pool import pool as run

    with _errors():
        if len(trees) < 2:
            _usage(f"pool takes at least two trees, got {len(trees)}", "pool")
        day = _as_of(as_of)
        w = parse_weights(weights)
        loaded = _trees(trees)
        ledger = _ledger(db)
        result = run(
            loaded,
            ledger.readings(),
            method=method.value,
            weights=w,
            as_of=day,
            extremize=extremize,
            resolutions=ledger.resolutions() if method == PoolMethod.extremized else (),
        )
        if as_json:
            _print_json(result.to_dict())
        else:
            from scenariocast.report.compare_text import render_pool

            typer.echo(render_pool(result))


@app.command()
def resolve(
    outcome: Annotated[str, typer.Argument(help="The outcome id, as in the scenario files.")],
    answer: Annotated[Answer, typer.Argument(help="yes or no.")],
    on: Annotated[str, typer.Option("--on", help="The day it resolved (YYYY-MM-DD).")],
    source: Annotated[str, typer.Option("--source", help="What settles it (a record, a link).")],
    note: Annotated[str | None, typer.Option(help="Free text.")] = None,
    by: ByOption = None,
    db: DbOption = None,
    scenarios: ScenariosOption = Path("scenarios"),
) -> None:
    """Record how a question turned out (retract it with retract-resolution; never deleted)."""
    from scenariocast.evidence.readings import parse_day

    with _errors():
        day = parse_day(on)
        catalog = _catalog(scenarios)
        r = _ledger(db).resolve(
            outcome,
            answer == Answer.yes,
            on=day,
            source=source,
            note=note,
            by=by,
            catalog=catalog,
        )
        typer.echo(
            f"recorded resolution #{r.id}: {r.outcome} {r.answer} on {r.resolved_on} "
            f"({r.source}, by {r.entered_by})"
        )


@app.command("retract-resolution")
def retract_resolution(
    resolution_id: Annotated[int, typer.Argument(metavar="ID", help="The resolution's id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it no longer stands.")],
    by: ByOption = None,
    db: DbOption = None,
) -> None:
    """Retract a resolution: it answers nothing from now on, and stays with the reason."""
    with _errors():
        r = _ledger(db).retract_resolution(resolution_id, reason=reason, by=by)
        typer.echo(f"retracted resolution #{r.id} ({r.outcome} {r.answer}): {reason}")


@app.command()
def resolutions(as_json: JsonOption = False, db: DbOption = None) -> None:
    """List the resolutions recorded, retracted ones included and marked."""
    from scenariocast.report.compare_text import render_resolutions

    with _errors():
        items = _ledger(db).resolutions()
        if as_json:
            _print_json(
                [
                    {
                        "id": r.id,
                        "outcome": r.outcome,
                        "answer": r.answer,
                        "resolved_on": r.resolved_on.isoformat(),
                        "source": r.source,
                        "note": r.note,
                        "entered_at": r.entered_at.isoformat() if r.entered_at else None,
                        "entered_by": r.entered_by,
                        "retracted": r.retracted,
                        "retraction_reason": r.retraction_reason,
                        "retracted_by": r.retracted_by,
                    }
                    for r in items
                ]
            )
            return
        typer.echo(render_resolutions(items) if items else "no resolutions recorded yet")


@app.command()
def score(
    trees: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Scenario files (default: every *.yaml in --scenarios).", show_default=False
        ),
    ] = None,
    weights: WeightsOption = None,
    extremize: ExtremizeOption = None,
    no_pools: Annotated[
        bool, typer.Option("--no-pools", help="Score the trees only, not their pools.")
    ] = False,
    bins: Annotated[int, typer.Option(help="Bins of the calibration table.", min=1, max=100)] = 10,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Draw the calibration plot into this file (.svg or .png).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
    scenarios: ScenariosOption = Path("scenarios"),
) -> None:
    """Score each tree (and their pools) on the resolved outcomes: Brier, log, calibration."""
    from scenariocast.analysis.compare import parse_weights
    from scenariocast.analysis.score import score as run

    with _errors():
        w = parse_weights(weights)
        paths = list(trees or sorted(scenarios.glob("*.yaml")))
        if not paths:
            _fail([f"no scenario files given and none in {scenarios}/"])
        if plot is not None and plot.suffix.lower() not in (".svg", ".png"):
            _fail([f"--plot {plot}: the file must end in .svg or .png"])
        loaded = _trees(paths)
        ledger = _ledger(db)
        result = run(
            loaded,
            ledger.readings(),
            ledger.resolutions(),
            snapshots=ledger.history(),
            weights=w,
            extremize=extremize,
            pools=not no_pools,
            bins=bins,
        )
        if plot is not None:
            from scenariocast.report.plots import write_calibration_plot

            write_calibration_plot(result, plot)
        if as_json:
            _print_json(result.to_dict())
        else:
            from scenariocast.report.compare_text import render_scores

            typer.echo(render_scores(result))
        if plot is not None:
            _note(f"calibration plot written to {plot}")


@app.command()
def backtest(
    tree: TreeArgument,
    as_of: AsOfOption = None,
    every: Annotated[
        Every,
        typer.Option(
            "--every",
            help="Replay at each day a reading was observed (reading), or at the first day of "
            "each month or quarter.",
        ),
    ] = Every.reading,
    resolutions_file: Annotated[
        Path | None,
        typer.Option(
            "--resolutions",
            help="Score against this resolutions file (scenarios/backtest/resolutions.yaml) "
            "instead of the ledger's resolutions.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Replay the ledger in observed order: the tree's forecast at each date, and its scores."""
    from scenariocast.api import backtest as run

    with _errors():
        result = run(
            tree,
            _ledger(db),
            as_of=_as_of(as_of),
            every=every.value,
            resolutions=resolutions_file,
        )
        if as_json:
            _print_json(result.to_dict())
            return
        from scenariocast.report.compare_text import render_backtest_run

        typer.echo(render_backtest_run(result))


ledger_app = typer.Typer(
    cls=_OneLineErrors,
    name="ledger",
    help="Look after the ledger itself: create, upgrade, verify, export and restore.",
    no_args_is_help=True,
)
app.add_typer(ledger_app)


@ledger_app.command("init")
def ledger_init(db: DbOption = None) -> None:
    """Create an empty ledger (a SQLite file, or the tables in an empty database)."""
    with _errors():
        ledger = _ledger(db)
        if ledger.create():
            typer.echo(f"created an empty ledger at {ledger.location}")
        else:
            typer.echo(f"a ledger is already at {ledger.location}; nothing changed")


@ledger_app.command("upgrade")
def ledger_upgrade(db: DbOption = None) -> None:
    """Bring the ledger's schema to this version's, keeping every entry."""
    with _errors():
        ledger = _ledger(db)
        before, after = ledger.upgrade()
        if before == after:
            typer.echo(f"the ledger at {ledger.location} is at schema revision {after} already")
        else:
            typer.echo(f"upgraded the ledger at {ledger.location}: revision {before} -> {after}")


@ledger_app.command("verify")
def ledger_verify(db: DbOption = None) -> None:
    """Check the ledger: its file, its append-only triggers and its hash chain."""
    with _errors():
        report = _ledger(db).verify()
        typer.echo(f"ledger: {report.location} (schema revision {report.revision})")
        typer.echo(f"file integrity: {report.integrity}")
        typer.echo(f"entries in an unbroken chain: {report.entries} of {report.total}")
        typer.echo(f"head: {report.head}")
        if not report.ok:
            _fail(report.problems())
        typer.echo("ok: every entry follows from the one before")


class ExportFormat(StrEnum):
    """The formats ``ledger export --format`` accepts."""

    csv = "csv"
    parquet = "parquet"


@ledger_app.command("export")
def ledger_export(
    folder: Annotated[
        Path, typer.Argument(help="A new or empty folder for the files.", show_default=False)
    ],
    format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="csv: readings.csv, retractions.csv, snapshots.csv; parquet: the same as "
            "typed Parquet files (needs pyarrow: pip install 'scenariocast[parquet]').",
        ),
    ] = ExportFormat.csv,
    db: DbOption = None,
) -> None:
    """Write every reading, retraction and snapshot to files (readings.csv, ...)."""
    with _errors():
        report = _ledger(db).export(folder, format=format.value)
        typer.echo(
            f"exported {report.readings} readings, {report.retractions} retractions, "
            f"{report.snapshots} snapshots and {report.resolutions} resolutions to "
            f"{report.folder} (head {report.head[:16]})"
        )


@ledger_app.command("restore")
def ledger_restore(
    folder: Annotated[
        Path, typer.Argument(help="A folder written by `ledger export`.", show_default=False)
    ],
    db: DbOption = None,
) -> None:
    """Load an export into an empty ledger: the same entries, ids and hash chain."""
    with _errors():
        ledger = _ledger(db)
        report = ledger.restore(folder)
        typer.echo(
            f"restored {report.readings} readings, {report.retractions} retractions, "
            f"{report.snapshots} snapshots and {report.resolutions} resolutions into "
            f"{ledger.location} (head {report.head[:16]})"
        )


def main() -> None:
    """Entry point of the ``scenariocast`` command."""
    app()


if __name__ == "__main__":
    main()
