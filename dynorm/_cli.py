"""The `dynorm` command, on Click (options, errors) and Rich (progress).

`dynorm.cli.main` imports this module only when Click and Rich are installed (the `cli`
extra); the library itself never imports it. Every command takes the options of
`dynorm.configure()` that make sense on a command line (`--table`, `--endpoint-url`,
`--region`, `--max-attempts`); errors are one line on stderr (`--debug` shows tracebacks and
dynorm's request log).
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import click

from . import __version__, _registry
from ._config import configure, get_settings
from ._descriptions import describe_json, describe_models
from ._table import TableDifference, _describe, check_table, create_table, delete_table
from .exceptions import DynormError
from .testing._local import serve_foreground
from .tooling import IAC_FORMATS, STREAM_VIEW_TYPES, IacFormat, table_as_code

__all__ = ["cli", "run"]

F = TypeVar("F", bound=Callable[..., Any])


class CommandError(click.ClickException):
    """A failure shown as one line, `dynorm: error: ...`, with exit code 1."""

    def show(self, file: Any = None) -> None:
        click.secho(f"dynorm: error: {self.message}", err=True, fg="red")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def _friendly() -> Iterator[None]:
    """Turn dynorm's errors into one line (a traceback only with --debug)."""
    try:
        yield
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise
    except DynormError as exc:
        if _debug():
            traceback.print_exc()
        raise CommandError(" ".join(str(exc).split())) from exc


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("debug"))


# --------------------------------------------------------------------------- shared options


def _split_modules(values: Sequence[str]) -> list[str]:
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def import_models(modules: Sequence[str]) -> None:
    """Import the modules that define the models (from the current directory too)."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, "")
    for name in _split_modules(modules):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if _debug():
                traceback.print_exc()
            missing = exc.name or name
            hint = (
                "check the name, and run dynorm from the directory your imports start from"
                if name == missing or name.startswith(f"{missing}.")
                else f"{missing!r} is imported by {name!r}: install it"
            )
            raise CommandError(
                f"cannot import {name!r}: no module named {missing!r}; {hint}."
            ) from None
        except Exception as exc:
            if _debug():
                traceback.print_exc()
            raise CommandError(
                f"importing {name!r} failed: {_one_line(exc)} (--debug shows the traceback)"
            ) from exc
    if not _registry.all_models():
        raise CommandError(
            f"no models registered by {', '.join(_split_modules(modules))}; pass the modules "
            "that define your dynorm models."
        )


def models_option(required: bool = True) -> Callable[[F], F]:
    """`--models app.models` (repeat it, or separate modules with commas)."""
    return click.option(
        "--models",
        "-m",
        "models",
        multiple=True,
        required=required,
        metavar="MODULE",
        help="Module defining models; repeat or separate with commas.",
    )


def connection_options(func: F) -> F:
    """The options of dynorm.configure(): --table, --endpoint-url, --region, --max-attempts."""
    options = [
        click.option(
            "--table",
            "table_name",
            metavar="NAME",
            help="Table name (default: $DYNORM_TABLE, else 'dynorm').",
        ),
        click.option(
            "--endpoint-url",
            metavar="URL",
            help="DynamoDB endpoint, e.g. http://127.0.0.1:8000 (default: "
            "$DYNORM_ENDPOINT_URL, else AWS).",
        ),
        click.option(
            "--region",
            "region_name",
            metavar="REGION",
            help="AWS region (default: $AWS_DEFAULT_REGION or the profile's, else $AWS_REGION).",
        ),
        click.option(
            "--max-attempts",
            type=click.IntRange(min=1),
            metavar="N",
            help="Attempts per request (default 3).",
        ),
    ]

    @functools.wraps(func)
    def wrapper(
        *args: Any,
        table_name: str | None,
        endpoint_url: str | None,
        region_name: str | None,
        max_attempts: int | None,
        **kwargs: Any,
    ) -> Any:
        given: dict[str, Any] = {
            "table_name": table_name,
            "endpoint_url": endpoint_url,
            "region_name": region_name,
            "max_attempts": max_attempts,
        }
        with _friendly():
            configure(**{k: v for k, v in given.items() if v is not None})
        return func(*args, **kwargs)

    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    result: F = decorated
    return result


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
        with _friendly():
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
    with _friendly():
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
    with _friendly():
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
        with _friendly():
            name = table_name or get_settings().table_name
        click.echo(json.dumps(describe_json(name), indent=2))
    else:
        click.echo(describe_models())


def _difference_json(difference: TableDifference) -> dict[str, Any]:
    return {
        "part": difference.part,
        "expected": difference.expected,
        "found": difference.found,
        "fixable": difference.fixable,
        "fix": difference.fix,
    }


@cli.command(short_help="Compare the live table with the models; exit 1 on a mismatch.")
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
    with _friendly():
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


@cli.command(short_help="Print the table the models need as CloudFormation, Terraform or CDK.")
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
    with _friendly():
        name = table_name or get_settings().table_name
        text = table_as_code(cast("IacFormat", fmt), name, streams=streams)
    if output is None:
        click.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8") as out:
            out.write(text)
        click.echo(f"dynorm: wrote the {fmt} of table {name!r} to {output}", err=True)


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
