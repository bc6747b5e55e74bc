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
from typing import Any, TypeVar

import click

from . import __version__, _registry
from ._config import configure, get_settings
from ._descriptions import describe_json, describe_models
from ._table import _describe, create_table, delete_table
from .exceptions import DynormError
from .testing._local import serve_foreground

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
    """dynorm: run DynamoDB Local, create, delete and describe the table of your models."""
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
