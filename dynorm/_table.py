"""Table management: create the one table (and the GSIs the models use), delete it."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import _registry
from ._config import get_connection
from ._constants import PK, SK, TTL_ATTR, gsi_name, gsi_pk, gsi_sk
from .exceptions import ConfigurationError, DynormError

if TYPE_CHECKING:
    from .models import Model

__all__ = ["create_table", "delete_table", "table_definition"]


def _slots(models: Iterable[type[Model]]) -> list[int]:
    return sorted({index.slot for m in models for index in m._meta.indexes.values()})


def _gsi(slot: int) -> dict[str, Any]:
    return {
        "IndexName": gsi_name(slot),
        "KeySchema": [
            {"AttributeName": gsi_pk(slot), "KeyType": "HASH"},
            {"AttributeName": gsi_sk(slot), "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


def table_definition(
    table_name: str, models: Iterable[type[Model]] | None = None
) -> dict[str, Any]:
    """Return the CreateTable parameters for the given (default: all registered) models."""
    chosen = list(_registry.all_models() if models is None else models)
    slots = _slots(chosen)
    attrs = [PK, SK] + [a for s in slots for a in (gsi_pk(s), gsi_sk(s))]
    params: dict[str, Any] = {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [
            {"AttributeName": PK, "KeyType": "HASH"},
            {"AttributeName": SK, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in attrs],
    }
    if slots:
        params["GlobalSecondaryIndexes"] = [_gsi(s) for s in slots]
    return params


def _describe(table: str) -> dict[str, Any] | None:
    conn = get_connection()
    try:
        return dict(conn.send("DescribeTable", {"TableName": table})["Table"])
    except ConfigurationError as exc:
        if exc.aws_code == "ResourceNotFoundException":
            return None
        raise


def _wait_active(table: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        desc = _describe(table)
        if desc is not None:
            busy = desc.get("TableStatus") != "ACTIVE" or any(
                g.get("IndexStatus") not in (None, "ACTIVE")
                for g in desc.get("GlobalSecondaryIndexes", [])
            )
            if not busy:
                return desc
        if time.monotonic() > deadline:
            raise ConfigurationError(
                f"Cannot use table {table!r}: it did not become ACTIVE within {timeout:.0f} s; "
                "check it in the AWS console and call create_table() again.",
                code="no-table",
            )
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def create_table(
    models: Iterable[type[Model]] | None = None, *, wait: bool = True, timeout: float = 600.0
) -> None:
    """Create the table with `pk`/`sk` and the GSIs the models use; idempotent.

    An existing table is kept; GSIs the models need that it lacks are added (one UpdateTable
    each, as DynamoDB requires) and TTL is enabled on `_ttl` when a model has `fields.TTL()`.

    Args:
        models: The models whose indexes the table needs; default every registered model.
        wait: Wait until the table and its indexes are ACTIVE.
        timeout: Seconds to wait for ACTIVE before raising ConfigurationError.

    DynamoDB: DescribeTable, CreateTable (PAY_PER_REQUEST), UpdateTable, UpdateTimeToLive.
    """
    conn = get_connection()
    chosen = list(_registry.all_models() if models is None else models)
    table = conn.table_name
    definition = table_definition(table, chosen)
    desc = _describe(table)
    if desc is None:
        try:
            conn.send("CreateTable", definition)
        except DynormError as exc:
            if exc.aws_code != "ResourceInUseException":
                raise
        desc = _wait_active(table, timeout) if wait else None
    else:
        present = {g["IndexName"] for g in desc.get("GlobalSecondaryIndexes", [])}
        for slot in _slots(chosen):
            if gsi_name(slot) in present:
                continue
            _wait_active(table, timeout)
            conn.send(
                "UpdateTable",
                {
                    "TableName": table,
                    "AttributeDefinitions": [
                        {"AttributeName": gsi_pk(slot), "AttributeType": "S"},
                        {"AttributeName": gsi_sk(slot), "AttributeType": "S"},
                    ],
                    "GlobalSecondaryIndexUpdates": [{"Create": _gsi(slot)}],
                },
            )
        if wait:
            _wait_active(table, timeout)
    if any(m._meta.ttl_field for m in chosen):
        ttl = conn.send("DescribeTimeToLive", {"TableName": table}).get("TimeToLiveDescription", {})
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            conn.send(
                "UpdateTimeToLive",
                {
                    "TableName": table,
                    "TimeToLiveSpecification": {"Enabled": True, "AttributeName": TTL_ATTR},
                },
            )


def delete_table(*, wait: bool = True, timeout: float = 600.0) -> None:
    """Delete the table and everything in it; a missing table is not an error.

    DynamoDB: DeleteTable, then DescribeTable until it is gone when `wait` is true.
    """
    conn = get_connection()
    table = conn.table_name
    try:
        conn.send("DeleteTable", {"TableName": table})
    except ConfigurationError as exc:
        if exc.aws_code == "ResourceNotFoundException":
            return
        raise
    deadline = time.monotonic() + timeout
    while wait and _describe(table) is not None:
        if time.monotonic() > deadline:
            raise ConfigurationError(
                f"Cannot confirm that table {table!r} was deleted within {timeout:.0f} s.",
                code="no-table",
            )
        time.sleep(0.05)
