"""What every `dynorm` command shares: one-line errors, importing the models, the options.

Needs Click (the `cli` extra), like every `_cli*` module.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from . import _registry
from ._config import configure
from .exceptions import DynormError

__all__ = [
    "CommandError",
    "connection_options",
    "friendly",
    "import_models",
    "is_debug",
    "models_option",
]

F = TypeVar("F", bound=Callable[..., Any])


class CommandError(click.ClickException):
    """A failure shown as one line, `dynorm: error: ...`, with exit code 1."""

    def show(self, file: Any = None) -> None:
        click.secho(f"dynorm: error: {self.message}", err=True, fg="red")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def friendly() -> Iterator[None]:
    """Turn dynorm's errors into one line (a traceback only with --debug)."""
    try:
        yield
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise
    except DynormError as exc:
        if is_debug():
            traceback.print_exc()
        raise CommandError(" ".join(str(exc).split())) from exc


def is_debug() -> bool:
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
            if is_debug():
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
            if is_debug():
                traceback.print_exc()
            raise CommandError(
                f"importing {name!r} failed: {_one_line(exc)} (--debug shows the traceback)"
            ) from exc
    # dynorm's own models (the audit log's AuditEntry) are registered by importing dynorm.
    if not [m for m in _registry.all_models() if not m.__module__.startswith("dynorm.")]:
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
        click.option(
            "--transport",
            type=click.Choice(["boto3", "http"]),
            help="How item requests travel (default: $DYNORM_TRANSPORT, else boto3).",
        ),
        click.option(
            "--max-pool-connections",
            type=click.IntRange(min=1),
            metavar="N",
            help="Keep-alive connections per client (default 50).",
        ),
        click.option(
            "--connect-timeout",
            type=click.FloatRange(min=0, min_open=True),
            metavar="SECONDS",
            help="Seconds to wait for a connection (default 60).",
        ),
        click.option(
            "--read-timeout",
            type=click.FloatRange(min=0, min_open=True),
            metavar="SECONDS",
            help="Seconds to wait for an answer (default 60).",
        ),
    ]

    @functools.wraps(func)
    def wrapper(
        *args: Any,
        table_name: str | None,
        endpoint_url: str | None,
        region_name: str | None,
        max_attempts: int | None,
        transport: str | None,
        max_pool_connections: int | None,
        connect_timeout: float | None,
        read_timeout: float | None,
        **kwargs: Any,
    ) -> Any:
        given: dict[str, Any] = {
            "table_name": table_name,
            "endpoint_url": endpoint_url,
            "region_name": region_name,
            "max_attempts": max_attempts,
            "transport": transport,
            "max_pool_connections": max_pool_connections,
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
        }
        with friendly():
            configure(**{k: v for k, v in given.items() if v is not None})
        return func(*args, **kwargs)

    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    result: F = decorated
    return result
