"""The `dynorm` command: run DynamoDB Local, create the table, describe models."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from . import _registry

__all__ = ["main"]


def _import_models(modules: Sequence[str]) -> None:
    for name in modules:
        importlib.import_module(name)
    if not _registry.all_models():
        raise SystemExit(f"dynorm: no models registered by {', '.join(modules)}")


def _local(args: argparse.Namespace) -> int:
    from .testing._local import java_command

    command = java_command(args.port)
    print(f"dynorm: DynamoDB Local on http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    try:
        # DynamoDB Local writes a metadata file into its working directory: keep it in the cache.
        return subprocess.call(command, cwd=Path(command[3]).parent)
    except KeyboardInterrupt:
        return 0


def _create_table(args: argparse.Namespace) -> int:
    from . import _config
    from ._table import create_table

    _import_models(args.models)
    if args.table:
        _config.configure(table_name=args.table)
    if args.endpoint_url:
        _config.configure(endpoint_url=args.endpoint_url)
    create_table()
    print(f"dynorm: table {_config.get_settings().table_name!r} is ready")
    return 0


def describe_models() -> str:
    """Return a text description of every registered model: keys, indexes, access patterns."""
    lines: list[str] = []
    for model in sorted(_registry.all_models(), key=lambda m: m._meta.type_name):
        meta = model._meta
        assert meta.pk is not None and meta.sk is not None
        lines.append(f"{meta.model_name} (entity type {meta.type_name!r})")
        lines.append(f"  table   pk={meta.pk.source!r} sk={meta.sk.source!r}")
        fields = ", ".join(f"{f}=..." for f in meta.pk.fields)
        lines.append(f"          {meta.model_name}.objects.filter({fields})")
        for index in meta.indexes.values():
            lines.append(
                f"  {index.physical_name:<7} {index.name}: pk={index.pk.source!r} "
                f"sk={index.sk.source!r}"
            )
            fields = ", ".join(f"{f}=..." for f in index.pk.fields)
            lines.append(
                f"          {meta.model_name}.objects.using_gsi({index.name!r}).filter({fields})"
            )
        if meta.ttl_field:
            lines.append(f"  ttl     {meta.ttl_field} (stored as _ttl)")
    return "\n".join(lines)


def _describe(args: argparse.Namespace) -> int:
    _import_models(args.models)
    print(describe_models())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `dynorm` command line."""
    parser = argparse.ArgumentParser(prog="dynorm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    local = sub.add_parser("local", help="run DynamoDB Local in the foreground")
    local.add_argument("--port", type=int, default=8000)
    local.set_defaults(func=_local)
    create = sub.add_parser("create-table", help="create the table the models need")
    create.add_argument("--models", nargs="+", required=True, help="modules defining models")
    create.add_argument("--table", help="table name (default: $DYNORM_TABLE or 'dynorm')")
    create.add_argument("--endpoint-url", help="DynamoDB endpoint (default: AWS)")
    create.set_defaults(func=_create_table)
    describe = sub.add_parser("describe", help="show models, keys, indexes, access patterns")
    describe.add_argument("--models", nargs="+", required=True, help="modules defining models")
    describe.set_defaults(func=_describe)
    args = parser.parse_args(argv)
    sys.path.insert(0, "")
    result: int = args.func(args)
    return result
