"""The `dynorm` command, on Click (options, errors) and Rich (progress).

`dynorm.cli.main` imports this module only when Click and Rich are installed (the `cli`
extra); the library itself never imports it. Every command takes the options of
`dynorm.configure()` that make sense on a command line (`--table`, `--endpoint-url`,
`--region`, `--max-attempts`); errors are one line on stderr (`--debug` shows tracebacks and
dynorm's request log). The shared options are in `_cli_base.py`, the data commands (check,
iac, export, import) in `_cli_data.py`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

import click

from . import __version__, _registry
from ._cli_base import (
    CommandError,
    connection_options,
    friendly,
    import_models,
    models_option,
)
from ._cli_blobs import blobs
from ._cli_data import DATA_COMMANDS
from ._config import get_settings
from ._descriptions import describe_json, describe_models
from ._table import _describe, create_table, delete_table
from ._table_layout import living_in
from .testing._local import serve_foreground

__all__ = ["CommandError", "cli", "import_models", "run"]


# --------------------------------------------------------------------------- progress


class RichProgress:
    """A `Progress` callback for `ensure_jar`, drawn with Rich on stderr."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=console if console is not None else Console(stderr=True),
            transient=False,
        )
        self._tasks: dict[str, Any] = {}

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if not self._tasks:
            self._progress.start()
        task = self._tasks.get(phase)
        if task is None:
            for other in self._tasks.values():  # the previous phase is finished
                self._progress.update(other, completed=1, total=1)
            label = {
                "download": "downloading DynamoDB Local (first run only)",
                "unpack": "unpacking DynamoDB Local",
            }.get(phase, phase)
            task = self._tasks[phase] = self._progress.add_task(label, total=total)
        self._progress.update(task, completed=done if total is not None else 0, total=total)

    def close(self) -> None:
        """Stop drawing (leaves the finished bars on screen)."""
        if self._tasks:
            self._progress.stop()


# --------------------------------------------------------------------------- commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, "--version", "-V", prog_name="dynorm", message="%(prog)s %(version)s"
)
@click.option("--debug", is_flag=True, help="Show tracebacks and dynorm's request log.")
def cli(debug: bool) -> None:
    """dynorm: run DynamoDB Local; create, check and describe the table of your models.

    The table as code (iac).
    """
    if debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger("dynorm")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)


@cli.command(short_help="Run DynamoDB Local in the foreground.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
def local(port: int) -> None:
    """Run DynamoDB Local in memory in the foreground (Ctrl-C stops it)."""
    progress = RichProgress()

    def ready(endpoint: str) -> None:
        progress.close()
        click.echo(f"dynorm: DynamoDB Local on {endpoint} (in memory; Ctrl-C stops it)")

    try:
        with friendly():
            code = serve_foreground(port, on_ready=ready, progress=progress)
    finally:
        progress.close()
    if code:
        raise CommandError(f"DynamoDB Local exited with code {code}.")


@cli.command("create-table", short_help="Create the table the models need.")
@models_option()
@connection_options
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until ACTIVE.")
def create_table_command(models: tuple[str, ...], wait: bool) -> None:
    """Create the table (and the GSIs) the models need; idempotent."""
    import_models(models)
    with friendly():
        create_table(wait=wait)
    click.echo(f"dynorm: table {get_settings().table_name!r} is ready")


@cli.command("delete-table", short_help="Delete the table and every item in it.")
@connection_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def delete_table_command(yes: bool) -> None:
    """Delete the table and every item in it."""
    name = get_settings().table_name
    if not yes:
        if not sys.stdin.isatty():
            raise CommandError(
                f"refusing to delete table {name!r} (and every item in it) without --yes."
            )
        click.confirm(f"Delete table {name!r} and every item in it?", abort=True)
    with friendly():
        existed = _describe(name) is not None
        delete_table()
    click.echo(f"dynorm: table {name!r} " + ("deleted" if existed else "does not exist"))


@cli.command(short_help="Show models, keys, indexes and physical names.")
@models_option()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable, with physical names.")
@click.option("--table", "table_name", metavar="NAME", help="Table name shown in --json.")
def describe(models: tuple[str, ...], as_json: bool, table_name: str | None) -> None:
    """Show models, keys, indexes, physical attribute names and access patterns."""
    import_models(models)
    if as_json:
        with friendly():
            name = table_name or get_settings().table_name
        click.echo(json.dumps(describe_json(name), indent=2))
    else:
        click.echo(describe_models())


for _command in DATA_COMMANDS:
    cli.add_command(_command)
cli.add_command(blobs)


@cli.command(short_help="Show the count of every counted model (Meta.counted).")
@models_option()
@connection_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: {type: count}.")
def stats(models: tuple[str, ...], as_json: bool) -> None:
    """Show the count of every model of the table with Meta.counted = True (a BatchGetItem each)."""
    import_models(models)
    table = get_settings().table_name
    counted = sorted(
        (m for m in living_in(table, _registry.all_models()) if m._meta.counted),
        key=lambda m: m._meta.type_name,
    )
    if not counted:
        raise CommandError(
            "no model of these modules keeps a count; set Meta.counted = True on a model."
        )
    with friendly():
        counts = {m._meta.type_name: m.objects.stats().count for m in counted}
    if as_json:
        click.echo(json.dumps(counts, indent=2))
        return
    width = max(len(name) for name in counts)
    for name, count in counts.items():
        click.echo(f"{name.ljust(width)}  {count}")


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (never raises for a user mistake)."""
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None, prog_name="dynorm", standalone_mode=False
        )
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except click.Abort:
        click.echo("dynorm: aborted", err=True)
        return 1
    return result if isinstance(result, int) else 0
