"""The data commands of `dynorm`: check, iac, export, import.

Thin layers over `dynorm.check_table()` and `dynorm.tooling`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import click

from . import _registry
from ._cli_base import CommandError, connection_options, friendly, import_models, models_option
from ._config import get_settings
from ._table import TableDifference, check_table
from .tooling import (
    IAC_FORMATS,
    STREAM_VIEW_TYPES,
    IacFormat,
    backfill_index,
    export_items,
    import_items,
    migrate,
    table_as_code,
)

__all__ = ["DATA_COMMANDS"]


def _difference_json(difference: TableDifference) -> dict[str, Any]:
    return {
        "part": difference.part,
        "expected": difference.expected,
        "found": difference.found,
        "fixable": difference.fixable,
        "fix": difference.fix,
    }


@click.command(short_help="Compare the live table with the models; exit 1 on a mismatch.")
@models_option()
@connection_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
def check(models: tuple[str, ...], as_json: bool) -> None:
    """Compare the live table with what the models need; exit code 1 when it does not fit.

    Compared: key schema and attribute types, every index slot the models use (keys,
    projection), the TTL attribute. Sends DescribeTable and DescribeTimeToLive only and
    changes nothing.
    """
    import_models(models)
    name = get_settings().table_name
    with friendly():
        differences = check_table()
    if as_json:
        report = {
            "table": name,
            "fits": not differences,
            "differences": [_difference_json(d) for d in differences],
        }
        click.echo(json.dumps(report, indent=2))
    elif not differences:
        click.echo(f"dynorm: table {name!r} fits the models")
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"Table {name!r} does not fit the models", show_lines=True)
        for column in ("What", "The models need", "The table has", "Fix"):
            table.add_column(column, overflow="fold")
        for d in differences:
            fix = d.fix if not d.fixable else f"{d.fix} (or run dynorm create-table)"
            table.add_row(d.part, d.expected, d.found, fix)
        Console(width=max(Console().width, 120)).print(table)
    if differences:
        raise click.exceptions.Exit(1)


@click.command(short_help="Print the table the models need as CloudFormation, Terraform or CDK.")
@models_option()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(IAC_FORMATS),
    default="cloudformation",
    show_default=True,
    help="cloudformation (JSON template), terraform (HCL), cdk-json (CfnTable props).",
)
@click.option("--table", "table_name", metavar="NAME", help="Table name (default: $DYNORM_TABLE).")
@click.option(
    "--streams",
    type=click.Choice(STREAM_VIEW_TYPES),
    default=None,
    help="Enable a stream with this view type.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to a file.")
def iac(
    models: tuple[str, ...],
    fmt: str,
    table_name: str | None,
    streams: str | None,
    output: str | None,
) -> None:
    """Print the table the models need (keys, indexes, TTL, billing, stream) as code.

    The table it describes is the one `dynorm create-table` makes and `dynorm check` accepts.
    """
    import_models(models)
    with friendly():
        name = table_name or get_settings().table_name
        text = table_as_code(cast("IacFormat", fmt), name, streams=streams)
    if output is None:
        click.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8") as out:
            out.write(text)
        click.echo(f"dynorm: wrote the {fmt} of table {name!r} to {output}", err=True)


class ItemProgress:
    """A progress bar with items/s for the data commands, drawn with Rich on stderr."""

    def __init__(self, label: str, total: int | None, enabled: bool = True) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not enabled,
        )
        self._task = self._progress.add_task(label, total=total, rate="")
        self._started = 0.0
        self._done = 0

    def __enter__(self) -> ItemProgress:
        self._started = time.monotonic()
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def __call__(self, n: int) -> None:
        self._done += n
        elapsed = max(time.monotonic() - self._started, 1e-6)
        self._progress.update(self._task, advance=n, rate=f"{self._done / elapsed:,.0f} items/s")


def _model_classes(names: Sequence[str]) -> list[Any]:
    """The registered models named (by class name or entity type name)."""
    chosen = []
    for name in names:
        found = [m for m in _registry.all_models() if name in (m.__name__, m._meta.type_name)]
        if not found:
            known = ", ".join(sorted(m.__name__ for m in _registry.all_models()))
            raise CommandError(f"no registered model is named {name!r}; the models are: {known}.")
        chosen += found
    return chosen


@click.command("export", short_help="Write items as JSON Lines (an explicit, parallel Scan).")
@models_option()
@connection_options
@click.option(
    "--type",
    "types",
    multiple=True,
    metavar="MODEL",
    help="Export only this model's items (repeat); default: the whole table.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    required=True,
    help="The JSON Lines file to write ('-' for stdout).",
)
@click.option(
    "--segments",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Parallel scan segments.",
)
@click.option(
    "--no-history",
    is_flag=True,
    help="With --type, leave out the history items of versioned models.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def export_command(
    models: tuple[str, ...],
    types: tuple[str, ...],
    output: str,
    segments: int,
    no_history: bool,
    no_progress: bool,
) -> None:
    """Write every item of the table (or of the --type models) to a JSON Lines file.

    One line per item: its entity type and its attributes as DynamoDB JSON, so the file
    is lossless for every field type. This is a Scan of the whole table, asked for.
    """
    import_models(models)
    chosen = _model_classes(types) if types else None
    with friendly(), ItemProgress("exporting", None, not no_progress and output != "-") as bar:
        if output == "-":
            result = export_items(
                sys.stdout, chosen, segments=segments, history=not no_history, progress=bar
            )
        else:
            result = export_items(
                output, chosen, segments=segments, history=not no_history, progress=bar
            )
    kinds = ", ".join(f"{k or '(no type)'}: {n}" for k, n in sorted(result.by_type.items()))
    click.echo(
        f"dynorm: exported {result.items} items" + (f" ({kinds})" if kinds else ""), err=True
    )


@click.command("import", short_help="Validate and write the items of a JSON Lines file.")
@models_option()
@connection_options
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("--strict", is_flag=True, help="Stop at the first bad line.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace items already stored under the same key (default: skip them).",
)
@click.option("--dry-run", is_flag=True, help="Validate and count; write nothing.")
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False),
    help="Checkpoint file (default: SOURCE.checkpoint); resumes when it exists.",
)
@click.option("--batch-size", type=click.IntRange(1, 100), default=100, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option(
    "--max-rate",
    type=click.FloatRange(min=1),
    metavar="ITEMS/S",
    help="At most this many items per second.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def import_command(
    models: tuple[str, ...],
    source: str,
    strict: bool,
    overwrite: bool,
    dry_run: bool,
    checkpoint: str | None,
    batch_size: int,
    workers: int,
    max_rate: float | None,
    no_progress: bool,
) -> None:
    """Validate each line of SOURCE through its model and write it (conditional writes).

    A bad line is reported with its number and the rest go on (--strict stops). An item
    whose key is already in the table is left unchanged and counted as skipped, unless
    --overwrite. A killed import, run again, resumes from its checkpoint and writes
    nothing twice. Exit code 1 when a line was refused.
    """
    import_models(models)
    with open(source, encoding="utf-8") as handle:
        total = sum(1 for line in handle if line.strip())
    with (
        friendly(),
        ItemProgress("importing" if not dry_run else "validating", total, not no_progress) as bar,
    ):
        result = import_items(
            source,
            strict=strict,
            overwrite=overwrite,
            dry_run=dry_run,
            checkpoint=checkpoint,
            batch_size=batch_size,
            workers=workers,
            max_rate=max_rate,
            progress=bar,
        )
    for problem in result.invalid:
        click.echo(f"dynorm: {source}: {problem}", err=True)
    verb = "would write" if dry_run else "wrote"
    click.echo(
        f"dynorm: {verb} {result.written} items; {result.skipped} skipped (key already "
        f"stored); {result.resumed} already written by an interrupted run; "
        f"{result.invalid_count} invalid lines",
        err=True,
    )
    if result.invalid_count:
        raise click.exceptions.Exit(1)


def _scan_options(
    *, writes: str, what: str, rate_alias: str | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of a resumable parallel Scan command (backfill, migrate)."""
    rate_flags = (rate_alias, "--max-rate") if rate_alias else ("--max-rate",)
    options = [
        click.option(
            "--segments",
            type=click.IntRange(1, 64),
            default=4,
            show_default=True,
            help="Parallel scan segments.",
        ),
        click.option(
            *rate_flags,
            "max_rate",
            type=click.FloatRange(min=1),
            metavar="ITEMS/S",
            help=f"At most this many {writes} per second.",
        ),
        click.option(
            "--checkpoint",
            type=click.Path(dir_okay=False),
            help=f"Checkpoint file: a killed {what} started again with it resumes.",
        ),
        click.option("--no-progress", is_flag=True, help="No progress bar."),
    ]

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


@click.command("backfill", short_help="(Re)write one index's key attributes on every item.")
@models_option()
@connection_options
@click.option("--index", "index", required=True, metavar="NAME", help="The index name.")
@_scan_options(writes="updates", what="backfill")
def backfill_command(
    models: tuple[str, ...],
    index: str,
    segments: int,
    max_rate: float | None,
    checkpoint: str | None,
    no_progress: bool,
) -> None:
    """Write the index keys of every item of the models declaring --index NAME.

    After an index was added or its template changed. Scans those models' items (a Scan,
    asked for) and updates only the two index key attributes of the items whose stored keys
    differ, each conditional on the stored version: concurrent writers are never
    overwritten. Idempotent: running it again skips every item already right.
    """
    import_models(models)
    with friendly(), ItemProgress("backfilling", None, not no_progress) as bar:
        result = backfill_index(
            index, segments=segments, max_rate=max_rate, checkpoint=checkpoint, progress=bar
        )
    invalid = sum(result.invalid.values())
    click.echo(
        f"dynorm: index {index!r}: {result.changed} items changed, {result.skipped} skipped "
        f"(already right), {result.retried} read again after a concurrent write, "
        f"{invalid} refused by their model",
        err=True,
    )


@click.command("migrate", short_help="Rewrite items stored under an older Meta.schema_version.")
@models_option()
@connection_options
@click.option(
    "--type",
    "types",
    multiple=True,
    metavar="MODEL",
    help="Migrate only this model's items (repeat); default: every model with a schema version.",
)
@click.option("--dry-run", is_flag=True, help="Upgrade, validate and count; write nothing.")
@_scan_options(writes="rewrites", what="migration", rate_alias="--rate")
def migrate_command(
    models: tuple[str, ...],
    types: tuple[str, ...],
    dry_run: bool,
    segments: int,
    max_rate: float | None,
    checkpoint: str | None,
    no_progress: bool,
) -> None:
    """Rewrite every item stored under an older Meta.schema_version at the current one.

    Scans the items of the models declaring a schema version (a Scan, asked for), upgrades
    each older item with the model's @Model.migration functions, validates it, and writes
    it whole, conditional on the stored version: concurrent writers are never overwritten.
    Idempotent: running it again writes nothing.
    """
    import_models(models)
    chosen = _model_classes(types) if types else None
    label = "checking" if dry_run else "migrating"
    with friendly(), ItemProgress(label, None, not no_progress) as bar:
        result = migrate(
            chosen,
            dry_run=dry_run,
            segments=segments,
            max_rate=max_rate,
            checkpoint=checkpoint,
            progress=bar,
        )
    invalid = sum(result.invalid.values())
    verb = "would be upgraded (dry run)" if dry_run else "upgraded"
    click.echo(
        f"dynorm: {result.upgraded} items {verb}, {result.current} already current, "
        f"{result.newer + result.skipped + invalid} skipped ({result.newer} newer than this "
        f"code, {result.skipped} deleted meanwhile, {invalid} refused by their model), "
        f"{result.retried} read again after a concurrent write",
        err=True,
    )
    if invalid:
        by_model = ", ".join(f"{m}: {n}" for m, n in sorted(result.invalid.items()))
        click.echo(f"dynorm: refused items, by model: {by_model}", err=True)


#: The commands `dynorm._cli` adds to the `dynorm` group.
DATA_COMMANDS = [check, iac, export_command, import_command, backfill_command, migrate_command]
