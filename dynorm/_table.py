"""Table management: create the one table (and the GSIs the models use), check it, delete it."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import _registry
from ._config import get_connection, table_name_for
from ._constants import TTL_ATTR, gsi_name, gsi_pk, gsi_sk
from ._model_definition import abstract_error
from ._table_layout import custom_indexes, key_schema, layout_of, of_table, refuse_unmanaged
from .exceptions import ConfigurationError, DynormError, TableMismatchError
from .models import Model

__all__ = [
    "TableDifference",
    "check_table",
    "create_table",
    "delete_table",
    "diff_table",
    "table_definition",
]

_ACTIVE_TTL = ("ENABLED", "ENABLING")


def _chosen(models: Iterable[type[Model]] | None) -> list[type[Model]]:
    """The models a table must serve; abstract ones refused.

    Default: every registered model except those of tables dynorm does not manage.
    """
    if models is None:
        return [m for m in _registry.all_models() if m._meta.layout.managed]
    chosen = list(models)
    for model in chosen:
        if not (isinstance(model, type) and issubclass(model, Model)):
            raise ConfigurationError(
                f"Cannot build a table for {model!r}: pass dynorm model classes.",
                code="config",
            )
        if model._meta.abstract:
            raise abstract_error(model, "build a table for")
    return chosen


def _slots(models: Iterable[type[Model]]) -> list[int]:
    return sorted(
        {index.slot for m in models for index in m._meta.indexes.values() if not index.custom}
    )


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
    chosen = _chosen(models)
    slots = _slots(chosen)
    mine = of_table(chosen, table_name)  # physical names come from this table's models
    schema, types = key_schema(layout_of(mine))
    types.update((a, "S") for s in slots for a in (gsi_pk(s), gsi_sk(s)))
    gsis, lsis, index_types, _ = custom_indexes(mine)
    types.update(index_types)
    params: dict[str, Any] = {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": schema,
        "AttributeDefinitions": [
            {"AttributeName": a, "AttributeType": t} for a, t in types.items()
        ],
    }
    if slots or gsis:
        params["GlobalSecondaryIndexes"] = [_gsi(s) for s in slots] + gsis
    if lsis:
        params["LocalSecondaryIndexes"] = lsis
    return params


# --------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class TableDifference:
    """One way a live table does not fit the models (from `check_table()`).

    Attributes:
        part: What differs: `"table"`, `"key schema"`, `"attribute gsi1pk"`,
            `"index gsi1"` or `"TTL"`.
        expected: What the models need, in words.
        found: What the table has, in words.
        fixable: True when `create_table()` fixes it without touching data (it adds a
            missing GSI, enables TTL, creates a missing table); `create_table()` refuses a
            table with any other difference and changes nothing.
        fix: What to do about it.
    """

    part: str
    expected: str
    found: str
    fixable: bool
    fix: str

    def __str__(self) -> str:
        return f"{self.part}: the models need {self.expected}; the table has {self.found}"


_Keys = tuple[tuple[str, str, str], ...]  # (KeyType, AttributeName, AttributeType)


def _keys(schema: Sequence[Mapping[str, Any]], types: Mapping[str, str]) -> _Keys:
    return tuple(
        (str(k.get("KeyType")), str(k.get("AttributeName")), types.get(k["AttributeName"], "?"))
        for k in schema
    )


def _text(keys: _Keys) -> str:
    return ", ".join(f"{kind} {name} ({kind_of})" for kind, name, kind_of in keys) or "no key"


def _users(models: Sequence[type[Model]], slot: int) -> str:
    return ", ".join(
        f"{m._meta.model_name}.{ix.name}"
        for m in models
        for ix in m._meta.indexes.values()
        if ix.slot == slot
    )


def diff_table(
    description: Mapping[str, Any] | None,
    time_to_live: Mapping[str, Any] | None,
    models: Iterable[type[Model]] | None = None,
) -> list[TableDifference]:
    """Compare a table as DynamoDB describes it with what the models need; sends nothing.

    Args:
        description: `DescribeTable`'s `Table` (None: the table does not exist).
        time_to_live: `DescribeTimeToLive`'s `TimeToLiveDescription` (None: TTL is not
            compared).
        models: The models the table must serve; default every registered model.

    Returns:
        Every difference, in a stable order (table, key schema, indexes by slot, TTL); empty
        when the table fits. Indexes and attributes the models do not use are not compared.
    """
    chosen = _chosen(models)
    if description is None:
        return [
            TableDifference(
                "table", "a table", "no such table", fixable=True, fix="call dynorm.create_table()"
            )
        ]
    types = {
        a["AttributeName"]: a["AttributeType"] for a in description.get("AttributeDefinitions", [])
    }
    wanted = table_definition(str(description.get("TableName", "")), chosen)
    need_types = {a["AttributeName"]: a["AttributeType"] for a in wanted["AttributeDefinitions"]}
    out: list[TableDifference] = []
    need = _keys(wanted["KeySchema"], need_types)
    have = _keys(description.get("KeySchema", []), types)
    if have != need:
        out.append(
            TableDifference(
                "key schema",
                _text(need),
                _text(have),
                fixable=False,
                fix="a table's key schema cannot change: point configure(table_name=...) at "
                "a new table (create_table() makes it) and copy the items over",
            )
        )
    present = {g["IndexName"]: g for g in description.get("GlobalSecondaryIndexes", [])}
    for slot in _slots(chosen):
        name = gsi_name(slot)
        index = _gsi(slot)
        need = _keys(index["KeySchema"], need_types)
        expected = f"{_text(need)}, projecting ALL (for {_users(chosen, slot)})"
        part = f"index {name}"
        found = present.get(name)
        if found is None:
            clash = [a for _, a, _ in need if types.get(a, "S") != "S"]
            out.append(
                TableDifference(
                    part,
                    expected,
                    "no such index"
                    + "".join(f"; {a} is defined as {types[a]} by another index" for a in clash),
                    fixable=not clash,
                    fix="call dynorm.create_table(): it adds the index and DynamoDB fills it "
                    "from the items"
                    if not clash
                    else "pin the models' indexes to free slots (Index(..., slot=n))",
                )
            )
            continue
        rebuild = (
            f"delete index {name} (UpdateTable) and call dynorm.create_table() to rebuild it, "
            "or pin the models' indexes to other slots (Index(..., slot=n))"
        )
        if found.get("IndexStatus") == "DELETING":
            out.append(
                TableDifference(
                    part,
                    expected,
                    "an index being deleted",
                    fixable=False,
                    fix="wait until DynamoDB has deleted it, then call dynorm.create_table()",
                )
            )
            continue
        keys = _keys(found.get("KeySchema", []), types)
        projection = found.get("Projection", {})
        kind = projection.get("ProjectionType")
        if keys != need or kind != "ALL":
            text = f"{_text(keys)}, projecting {kind}"
            if projection.get("NonKeyAttributes"):
                text += f" ({', '.join(projection['NonKeyAttributes'])})"
            out.append(TableDifference(part, expected, text, fixable=False, fix=rebuild))
    mine = of_table(chosen, str(description.get("TableName", "")))
    out += _diff_declared(description, mine, types, need_types)
    if time_to_live is not None:
        out += _diff_ttl(time_to_live, chosen)
    return out


_RANK = {"KEYS_ONLY": 0, "INCLUDE": 1, "ALL": 2}


def _projects(found: Mapping[str, Any], need: Mapping[str, Any]) -> bool:
    """Whether a live projection holds at least what a declared one needs."""
    have, want = found.get("ProjectionType"), need["ProjectionType"]
    if have == "INCLUDE" and want == "INCLUDE":
        return set(need["NonKeyAttributes"]) <= set(found.get("NonKeyAttributes", []))
    return _RANK.get(str(have), -1) >= _RANK[want]


def _diff_declared(
    description: Mapping[str, Any],
    models: Sequence[type[Model]],
    types: Mapping[str, str],
    need_types: Mapping[str, str],
) -> list[TableDifference]:
    """Differences of the existing indexes the models declare (`Index(name=...)`)."""
    gsis, lsis, _, users = custom_indexes(models)
    out: list[TableDifference] = []
    for kind, specs in (("GlobalSecondaryIndexes", gsis), ("LocalSecondaryIndexes", lsis)):
        present = {g["IndexName"]: g for g in description.get(kind, [])}
        for spec in specs:
            name = spec["IndexName"]
            need = _keys(spec["KeySchema"], need_types)
            projection = spec["Projection"]["ProjectionType"]
            expected = f"{_text(need)}, projecting {projection} (for {users[name]})"
            found = present.get(name)
            fix = (
                f"create or fix index {name} with your own tooling (dynorm does not build "
                "declared existing indexes), or correct the model's Index(name=..., "
                "pk_attribute=..., sk_attribute=..., projection=...)"
            )
            if found is None:
                out.append(TableDifference(f"index {name}", expected, "no such index", False, fix))
                continue
            keys = _keys(found.get("KeySchema", []), types)
            if keys != need or not _projects(found.get("Projection", {}), spec["Projection"]):
                live = found.get("Projection", {}).get("ProjectionType")
                text = f"{_text(keys)}, projecting {live}"
                out.append(TableDifference(f"index {name}", expected, text, False, fix))
    return out


def _diff_ttl(ttl: Mapping[str, Any], models: Sequence[type[Model]]) -> list[TableDifference]:
    status = ttl.get("TimeToLiveStatus", "DISABLED")
    attr = ttl.get("AttributeName")
    users = [f"{m._meta.model_name}.{m._meta.ttl_field}" for m in models if m._meta.ttl_field]
    ttl_attr = next((m._meta.layout.ttl for m in models if m._meta.ttl_field), TTL_ATTR)
    on = status in _ACTIVE_TTL
    if users:
        need = f"TTL enabled on {ttl_attr} (for {', '.join(users)})"
        if on and attr == ttl_attr:
            return []
        if status == "DISABLED":
            return [
                TableDifference(
                    "TTL",
                    need,
                    "TTL disabled",
                    fixable=True,
                    fix="call dynorm.create_table(): it enables TTL (UpdateTimeToLive)",
                )
            ]
        found = f"TTL {status.lower()} on {attr}" if attr else f"TTL {status.lower()}"
        return [
            TableDifference(
                "TTL",
                need,
                found,
                fixable=False,
                fix=f"a table has one TTL attribute: disable TTL on {attr} (UpdateTimeToLive; "
                "DynamoDB may take up to an hour), then call dynorm.create_table()"
                if attr != ttl_attr
                else "wait until DynamoDB has disabled TTL, then call dynorm.create_table()",
            )
        ]
    if not on or attr is None:
        return []
    # No model expires items; TTL on an attribute the models store (a number field, or
    # `version`) would make DynamoDB delete their items.
    stored = [
        f"{m._meta.model_name}.{field}"
        for m in models
        for field, name in m._meta.attr_names.items()
        if name == attr
    ]
    if not stored:
        return []
    return [
        TableDifference(
            "TTL",
            f"no TTL on {attr} (no model declares fields.TTL())",
            f"TTL {status.lower()} on {attr}, which {', '.join(stored)} store(s) data in: "
            "DynamoDB would delete those items by it",
            fixable=False,
            fix=f"disable TTL on {attr} (UpdateTimeToLive), or use fields.TTL() for the "
            "expiry field",
        )
    ]


def check_table(models: Iterable[type[Model]] | None = None) -> list[TableDifference]:
    """Compare the configured live table with what the models need (keys, GSIs, TTL).

    Returns every difference (empty when the table fits); sends only descriptions and
    changes nothing. `create_table()` fixes the ones marked `fixable` and refuses the rest.

    Args:
        models: The models the table must serve; default every registered model.

    DynamoDB: DescribeTable, DescribeTimeToLive.
    """
    table = get_connection().table_name
    if models is None:  # an unmanaged table: the models declared on it
        models = [
            m
            for m in _registry.all_models()
            if not m._meta.layout.managed and table_name_for(m) == table
        ] or None
    chosen = _chosen(models)
    desc = _describe(table)
    return diff_table(desc, None if desc is None else _describe_ttl(table), chosen)


def _mismatch(table: str, differences: Sequence[TableDifference]) -> TableMismatchError:
    lines = "; ".join(f"({i}) {d}: {d.fix}" for i, d in enumerate(differences, 1))
    return TableMismatchError(
        f"Cannot use table {table!r}: it does not fit the models in {len(differences)} "
        f"way(s), and create_table() changed nothing: {lines}.",
        table=table,
        differences=differences,
    )


def _describe(table: str) -> dict[str, Any] | None:
    conn = get_connection()
    try:
        return dict(conn.send("DescribeTable", {"TableName": table})["Table"])
    except ConfigurationError as exc:
        if exc.aws_code == "ResourceNotFoundException":
            return None
        raise


def _describe_ttl(table: str) -> dict[str, Any]:
    response = get_connection().send("DescribeTimeToLive", {"TableName": table})
    return dict(response.get("TimeToLiveDescription", {}))


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
    models: Iterable[type[Model]] | None = None,
    *,
    wait: bool = True,
    timeout: float = 600.0,
    streams: bool = False,
) -> None:
    """Create the table with `pk`/`sk` and the GSIs the models use; idempotent.

    An existing table is checked against the models first (`check_table()`): when its key
    schema, an index's key schema or projection, or its TTL attribute does not fit, it
    raises `TableMismatchError` naming every difference and changes nothing. Otherwise the
    GSIs the models need that it lacks are added (one UpdateTable each, as DynamoDB
    requires; on a provisioned table with the table's read and write capacity) and TTL is
    enabled on `_ttl` when a model has `fields.TTL()`. Several processes may call it at
    once (e.g. two deploys): an index or TTL another one added meanwhile is checked, not an
    error.

    Args:
        models: The models whose indexes the table needs; default every registered model.
        wait: Wait until the table and its indexes are ACTIVE.
        timeout: Seconds to wait for ACTIVE before raising ConfigurationError.
        streams: Enable a DynamoDB stream of `NEW_AND_OLD_IMAGES` (read it with
            `dynorm.streams.parse()`); on an existing table without one, it is enabled.

    Raises:
        TableMismatchError: The live table does not fit the models (see `.differences`).
        ConfigurationError: `streams=True` and the table streams another view type.

    DynamoDB: DescribeTable, DescribeTimeToLive, CreateTable (PAY_PER_REQUEST), UpdateTable,
    UpdateTimeToLive.
    """
    conn = get_connection()
    chosen = _chosen(models)
    table = conn.table_name
    refuse_unmanaged("create or change", table, chosen)
    needs_ttl = any(m._meta.ttl_field for m in chosen)
    desc = _describe(table)
    if desc is None:
        definition = table_definition(table, chosen)
        if streams:
            definition["StreamSpecification"] = _STREAM
        try:
            conn.send("CreateTable", definition)
        except DynormError as exc:
            if exc.aws_code != "ResourceInUseException":
                raise
            desc = _wait_active(table, timeout)  # created concurrently: check it below
        else:
            if wait:
                _wait_active(table, timeout)
            if needs_ttl:
                _enable_ttl(table)
            return
    differences = diff_table(desc, _describe_ttl(table), chosen)
    if any(not d.fixable for d in differences):
        raise _mismatch(table, differences)
    present = {g["IndexName"] for g in desc.get("GlobalSecondaryIndexes", [])}
    for slot in _slots(chosen):
        if gsi_name(slot) not in present:
            _add_index(table, slot, desc, chosen, timeout)
    if wait:
        _wait_active(table, timeout)
    if any(d.part == "TTL" for d in differences):
        _enable_ttl(table)
    if streams:
        _enable_stream(table, desc, timeout)


#: `create_table(streams=True)`: what `dynorm.streams.parse()` needs (both images).
_STREAM = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}


def _enable_stream(table: str, desc: Mapping[str, Any], timeout: float) -> None:
    """Enable the stream on an existing table (UpdateTable), unless it streams already."""
    current = desc.get("StreamSpecification") or {}
    if current.get("StreamEnabled"):
        if current.get("StreamViewType") != _STREAM["StreamViewType"]:
            raise ConfigurationError(
                f"Cannot enable a NEW_AND_OLD_IMAGES stream on table {table!r}: it streams "
                f"{current.get('StreamViewType')} already. Disable that stream first "
                "(UpdateTable), or read it without create_table(streams=True).",
                code="config",
            )
        return
    _wait_active(table, timeout)
    get_connection().send("UpdateTable", {"TableName": table, "StreamSpecification": _STREAM})


def _add_index(
    table: str,
    slot: int,
    desc: Mapping[str, Any],
    models: Sequence[type[Model]],
    timeout: float,
) -> None:
    """Add GSI `gsi{slot}` (UpdateTable); another process adding it meanwhile is fine."""
    index = _gsi(slot)
    billing = desc.get("BillingModeSummary", {}).get("BillingMode")
    throughput = desc.get("ProvisionedThroughput", {})
    if billing != "PAY_PER_REQUEST" and throughput.get("ReadCapacityUnits"):
        # A provisioned table's GSIs need a throughput of their own: the table's.
        index["ProvisionedThroughput"] = {
            "ReadCapacityUnits": throughput["ReadCapacityUnits"],
            "WriteCapacityUnits": throughput["WriteCapacityUnits"],
        }
    _wait_active(table, timeout)
    try:
        get_connection().send(
            "UpdateTable",
            {
                "TableName": table,
                "AttributeDefinitions": [
                    {"AttributeName": gsi_pk(slot), "AttributeType": "S"},
                    {"AttributeName": gsi_sk(slot), "AttributeType": "S"},
                ],
                "GlobalSecondaryIndexUpdates": [{"Create": index}],
            },
        )
    except DynormError:
        now = _describe(table) or {}
        if not any(
            g["IndexName"] == index["IndexName"] for g in now.get("GlobalSecondaryIndexes", [])
        ):
            raise
        # Created concurrently (e.g. two deploys): check it like any existing index.
        mismatched = [
            d for d in diff_table(now, None, models) if d.part == f"index {index['IndexName']}"
        ]
        if mismatched:
            raise _mismatch(table, mismatched) from None


def _enable_ttl(table: str) -> None:
    """Enable TTL on `_ttl`; another process enabling it meanwhile is fine."""
    try:
        get_connection().send(
            "UpdateTimeToLive",
            {
                "TableName": table,
                "TimeToLiveSpecification": {"Enabled": True, "AttributeName": TTL_ATTR},
            },
        )
    except DynormError:
        now = _describe_ttl(table)
        if now.get("TimeToLiveStatus") not in _ACTIVE_TTL or now.get("AttributeName") != TTL_ATTR:
            raise


def delete_table(*, wait: bool = True, timeout: float = 600.0) -> None:
    """Delete the table and everything in it; a missing table is not an error.

    DynamoDB: DeleteTable, then DescribeTable until it is gone when `wait` is true.
    """
    conn = get_connection()
    table = conn.table_name
    refuse_unmanaged("delete", table)
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
