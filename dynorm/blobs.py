"""Maintenance of blob fields (`fields.Blob()`): finding and removing orphan objects.

Blob writes are ordered so that a failure leaves at most an *orphan*, an object no item
points at (an upload whose write crashed, or the object of a deleted item whose removal
failed), and never an item pointing at a missing object. `gc()` removes orphans.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from . import _blob_store as store
from ._blob_pointer import decode_pointer
from ._blobs import OBJECT_ROOT, blob_fields
from ._codec import wire_bytes
from ._config import Table, connection_for
from ._registry import all_models

__all__ = ["GcResult", "gc"]

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class GcResult:
    """What `gc()` found.

    Attributes:
        items: Items scanned.
        referenced: Objects some item (or history version) points at.
        orphans: Keys of the objects no item points at and older than `older_than`
            (deleted, unless `dry_run`).
        recent: Orphans left alone because they are younger than `older_than` (an upload
            whose write may still be in flight).
    """

    items: int = 0
    referenced: int = 0
    orphans: list[str] = field(default_factory=list)
    recent: int = 0


def _pointers(item: dict[str, Any]) -> set[tuple[str, str]]:
    """Every blob pointer in an item, history payloads included."""
    found: set[tuple[str, str]] = set()
    attributes = dict(item)
    payload = item.get("payload")
    if payload is not None and "B" in payload:  # a history item's compressed snapshot
        try:
            raw = wire_bytes(payload["B"])
            if raw[:2] == _GZIP_MAGIC:
                raw = gzip.decompress(raw)
            body = json.loads(raw)
        except (ValueError, OSError):
            body = {}
        if isinstance(body, dict):
            attributes.update({f"payload.{k}": v for k, v in body.items()})
    elif payload is not None and "M" in payload:
        attributes.update({f"payload.{k}": v for k, v in payload["M"].items()})
    for value in attributes.values():
        if isinstance(value, dict):
            pointer = decode_pointer(value)
            if pointer is not None:
                found.add((pointer.pointer.bucket, pointer.pointer.key))
    return found


def _now() -> datetime:
    """The time gc compares object ages with (its own function, so a test can move it)."""
    return datetime.now(timezone.utc)


def gc(
    *,
    older_than: timedelta | float = timedelta(hours=1),
    dry_run: bool = False,
    table: Table | str | None = None,
) -> GcResult:
    """Delete the blob objects of a table that no item points at.

    It scans the whole table (every item, history versions included) for pointers, then lists
    the objects under `dynorm/<table>/` in the bucket of every model with blob fields, and
    deletes those no item names. An object younger than `older_than` is kept: it may be the
    upload of a save whose conditional write has not happened yet (deleting it would leave
    that item pointing at nothing).

    DynamoDB: Scan (every page, consistent). S3: ListObjectsV2, DeleteObjects.

    Args:
        older_than: Keep orphans younger than this (a timedelta, or seconds); default 1 hour.
        dry_run: Only report the orphans.
        table: The table to collect (default: the configured one).
    """
    grace = older_than if isinstance(older_than, timedelta) else timedelta(seconds=older_than)
    conn = connection_for(None, table)
    result = GcResult()
    referenced: set[tuple[str, str]] = set()
    params: dict[str, Any] = {"TableName": conn.table_name, "ConsistentRead": True}
    while True:
        response = conn.send("Scan", params)
        for item in response.get("Items", []):
            result.items += 1
            referenced |= _pointers(item)
        lek = response.get("LastEvaluatedKey")
        if not lek:
            break
        params = {**params, "ExclusiveStartKey": lek}
    result.referenced = len(referenced)
    buckets = {
        bucket
        for model in all_models()
        if blob_fields(model._meta) and (bucket := store.bucket_for(model._meta)) is not None
    }
    prefix = f"{OBJECT_ROOT}{quote(conn.table_name, safe='')}/"
    cutoff = _now() - grace
    for bucket in sorted(buckets):
        orphans = []
        for key, modified in store.list_objects(bucket, prefix):
            if (bucket, key) in referenced:
                continue
            if modified > cutoff:
                result.recent += 1
                continue
            orphans.append(key)
        result.orphans += orphans
        if orphans and not dry_run:
            store.delete_objects(bucket, orphans)
    return result
