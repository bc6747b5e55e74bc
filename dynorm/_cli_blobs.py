"""`dynorm blobs gc`: remove the blob objects no item points at (see `dynorm.blobs.gc`)."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from ._cli_base import connection_options, friendly, import_models, models_option
from ._config import configure
from .blobs import gc

__all__ = ["blobs"]


@click.group(short_help="Blob fields (S3): find and remove orphan objects.")
def blobs() -> None:
    """Maintenance of blob fields (fields.Blob())."""


@blobs.command("gc", short_help="Delete the blob objects no item points at.")
@models_option()
@connection_options
@click.option(
    "--blob-bucket", metavar="NAME", help="Bucket (default: Meta.blob_bucket, $DYNORM_BLOB_BUCKET)."
)
@click.option("--s3-endpoint-url", metavar="URL", help="S3 endpoint (default: AWS).")
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    metavar="SECONDS",
    help="Keep orphans younger than this (an upload whose write may be in flight).",
)
@click.option("--dry-run", is_flag=True, help="Only report the orphans.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
def gc_command(
    models: tuple[str, ...],
    blob_bucket: str | None,
    s3_endpoint_url: str | None,
    older_than: float,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Scan the table for blob pointers and delete the objects none names (explicit Scan)."""
    import_models(models)
    with friendly():
        if blob_bucket is not None:
            configure(blob_bucket=blob_bucket)
        if s3_endpoint_url is not None:
            configure(s3_endpoint_url=s3_endpoint_url)
        result = gc(older_than=older_than, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps({**asdict(result), "dry_run": dry_run}, indent=2))
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"dynorm: {result.items} items scanned, {result.referenced} objects referenced; "
        f"{verb} {len(result.orphans)} orphan(s), kept {result.recent} younger than "
        f"{older_than:g} s"
    )
