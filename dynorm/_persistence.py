"""Instance writes: build the conditional request for save/delete/update and apply the result."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._codec import Item, check_item_size, from_wire
from ._config import get_connection
from ._connection import logger
from ._constants import PK, SK, TYPE_ATTR, VERSION_ATTR, WRITE_TOKEN_ATTR
from .exceptions import (
    ConditionFailedError,
    DynormError,
    QueryError,
    TransactionCanceledError,
    VersionConflictError,
)
from .fields import utcnow
from .query.placeholders import Placeholders, check_expressions

if TYPE_CHECKING:
    from .models import Model


@dataclass
class WriteOp:
    """One write ready to send alone or to join a transaction.

    `params` are the parameters of `operation` without TableName; `conflict` maps a
    refused condition to the exception to raise (None: the refusal proves that this very
    write was applied earlier, e.g. a retry after a lost response); `on_success` updates
    the instance.
    """

    operation: str
    params: dict[str, Any]
    model: type[Model]
    conflict: Callable[[DynormError], Exception | None]
    on_success: Callable[[dict[str, Any]], None]
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- item building


def build_item(instance: Model, overrides: Mapping[str, Any]) -> Item:
    """Return the complete item for an instance: keys, entity type, index keys and fields."""
    meta = instance._meta
    assert meta.codec is not None
    values = {**instance.__dict__, **overrides}
    pk, sk = meta.primary_key(values)
    item: Item = {PK: {"S": pk}, SK: {"S": sk}, TYPE_ATTR: {"S": meta.type_name}}
    for attr, key in meta.index_keys(values).items():
        if key is not None:
            item[attr] = {"S": key}
    item.update(meta.codec.encode(instance, overrides))
    check_item_size(item, meta.model_name)
    return item


def _timestamps(instance: Model, creating: bool) -> dict[str, Any]:
    now = utcnow()
    out: dict[str, Any] = {}
    for name, kind in instance._meta.field_kinds.items():
        if kind == "updated_at":
            out[name] = now
        elif kind == "created_at" and creating and name not in instance.model_fields_set:
            out[name] = now
    return out


def _key_names(instance: Model) -> str:
    return ", ".join(sorted(instance._meta.key_fields)) or "its key"


def _old_item(exc: DynormError) -> dict[str, Any] | None:
    response = exc.response or {}
    if "Item" in response:
        return dict(response["Item"])
    for reason in response.get("CancellationReasons", []):
        if reason.get("Code") == "ConditionalCheckFailed":
            return dict(reason["Item"]) if "Item" in reason else None
    return None


def new_write_token() -> str:
    """A random token stored with each write (`_wtok`), to recognise our own earlier write."""
    return secrets.token_hex(8)


def already_applied(old: Mapping[str, Any] | None, token: str | None) -> bool:
    """Whether the stored item (ALL_OLD of a refused write) carries this write's token.

    Then the refusal came from a retry after a lost response that hit our own earlier success,
    and reporting a conflict would be false. Comparing content instead would be unsafe: two
    read-modify-write increments from the same version write identical items.
    """
    if old is None or token is None:
        return False
    return bool(old.get(WRITE_TOKEN_ATTR, {}).get("S") == token)


def _version_conflict(
    instance: Model, action: str, token: str | None = None
) -> Callable[[DynormError], Exception | None]:
    model = instance._meta.model_name
    expected = instance.version

    def conflict(exc: DynormError) -> Exception | None:
        current: int | None = None
        old = _old_item(exc)
        if already_applied(old, token):
            return None
        if action == "delete" and old is None:
            return None  # already gone (e.g. our retried delete after a lost response)
        if old and VERSION_ATTR in old:
            current = int(from_wire(old[VERSION_ATTR]))
        state = (
            f"the stored version is {current}, not the loaded version {expected}"
            if current is not None
            else "the item no longer exists (deleted, or its key changed)"
        )
        return VersionConflictError(
            f"Cannot {action} {model} (key fields: {_key_names(instance)}): {state}. Reload it "
            "with refresh_from_db() (or get()) and apply the change again.",
            model=model,
            expected_version=expected,
            current_version=current,
            aws_code=exc.aws_code,
            response=exc.response,
        )

    return conflict


def _exists_conflict(
    instance: Model, token: str | None = None
) -> Callable[[DynormError], Exception | None]:
    def conflict(exc: DynormError) -> Exception | None:
        if already_applied(_old_item(exc), token):
            return None
        return ConditionFailedError(
            f"Cannot create {instance._meta.model_name} (key fields: {_key_names(instance)}): "
            "an item with the same key already exists. Load it and save() that object, or "
            "use get_or_create().",
            aws_code=exc.aws_code,
            response=exc.response,
        )

    return conflict


def _apply(instance: Model, values: Mapping[str, Any], key: tuple[str, str] | None) -> None:
    instance.__dict__.update(values)
    instance._loaded_key = key


# --------------------------------------------------------------------------- requests


def save_op(instance: Model, update_fields: Iterable[str] | None = None) -> WriteOp:
    """Build the write that `instance.save()` sends."""
    meta = instance._meta
    cls = type(instance)
    creating = instance.version == 0
    if instance._partial is not None and (
        update_fields is None or not set(update_fields) <= instance._partial
    ):
        raise QueryError(
            f"Cannot save a partial {meta.model_name} loaded with only(): fields not loaded "
            "would be lost. Pass update_fields=[...] naming loaded fields, or load it whole.",
            code="bad-query",
        )
    overrides = _timestamps(instance, creating)
    overrides["version"] = instance.version + 1
    if instance._partial is not None and update_fields is not None:
        return _partial_update_op(instance, list(dict.fromkeys(update_fields)), overrides)
    item = build_item(instance, overrides)
    token = new_write_token()
    item[WRITE_TOKEN_ATTR] = {"S": token}
    new_key = (item[PK]["S"], item[SK]["S"])

    def on_success(_: dict[str, Any]) -> None:
        _apply(instance, overrides, new_key)

    ph = Placeholders()
    if creating:
        params = {
            "Item": item,
            "ConditionExpression": f"attribute_not_exists({ph.name(PK)})",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        return WriteOp(
            "PutItem", ph.apply(params), cls, _exists_conflict(instance, token), on_success
        )

    old_key = instance._loaded_key or new_key
    version_cond = f"{ph.name(VERSION_ATTR)} = {ph.value({'N': str(instance.version)})}"
    if old_key != new_key:
        # DynamoDB cannot update key attributes: move = delete old + put new, atomically.
        put_ph = Placeholders()
        actions = [
            {
                "Delete": ph.apply(
                    {
                        "Key": {PK: {"S": old_key[0]}, SK: {"S": old_key[1]}},
                        "ConditionExpression": version_cond,
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                )
            },
            {
                "Put": put_ph.apply(
                    {
                        "Item": item,
                        "ConditionExpression": f"attribute_not_exists({put_ph.name(PK)})",
                    }
                )
            },
        ]
        version_conflict = _version_conflict(instance, "save")
        exists_conflict = _exists_conflict(instance)

        def move_conflict(exc: DynormError) -> Exception | None:
            if isinstance(exc, TransactionCanceledError) and exc.reasons[:1] == [None]:
                return exists_conflict(exc)
            return version_conflict(exc)

        return WriteOp(
            "TransactWriteItems",
            {"TransactItems": actions},
            cls,
            move_conflict,
            on_success,
            extra={"move": True},
        )
    if update_fields is None:
        params = {
            "Item": item,
            "ConditionExpression": version_cond,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        return WriteOp(
            "PutItem", ph.apply(params), cls, _version_conflict(instance, "save", token), on_success
        )

    names = list(dict.fromkeys(update_fields))
    for name in names:
        meta.check_field(name, "save update_fields of")
    return _update_fields_op(instance, names, overrides, old_key, partial=False)


def _partial_update_op(instance: Model, names: list[str], overrides: dict[str, Any]) -> WriteOp:
    """save(update_fields=...) of an object loaded with only(): encode just those fields."""
    meta = instance._meta
    assert instance._loaded_key is not None
    if set(names) & meta.key_fields:
        raise QueryError(
            f"Cannot change a key field of a partial {meta.model_name} loaded with only(); "
            "load it whole and save() it to move the item.",
            code="bad-query",
        )
    return _update_fields_op(instance, names, overrides, instance._loaded_key, partial=True)


def _update_fields_op(
    instance: Model,
    names: list[str],
    overrides: dict[str, Any],
    key: tuple[str, str],
    *,
    partial: bool,
) -> WriteOp:
    """Build the UpdateItem of `save(update_fields=...)`, conditional on the loaded version.

    It sets those fields, the overrides (version, timestamps), the index keys and a write
    token. A whole object rewrites every index key; a partial one (loaded with only()) those built
    from the fields it changes, which must all be loaded.
    """
    from .query.updates import UpdatePlan

    meta = instance._meta
    assert meta.codec is not None
    values = {**instance.__dict__, **overrides}
    ph = Placeholders()
    condition = f"{ph.name(VERSION_ATTR)} = {ph.value({'N': str(instance.version)})}"
    plan = UpdatePlan()
    for name in [*names, *(n for n in overrides if n not in names)]:
        target = ph.name(meta.attr_names[name])
        av = meta.codec.encode_field(name, values[name])
        if av is None:
            plan.removes.append(target)
        else:
            plan.sets.append(f"{target} = {ph.value(dict(av))}")
    touched = set(names) | set(overrides)
    for index in meta.indexes.values():
        fields = {*index.pk.fields, *index.sk.fields}
        if partial and not fields & touched:
            continue
        missing = sorted(f for f in fields if f not in values)
        if missing:
            raise QueryError(
                f"Cannot save a partial {meta.model_name}: index {index.name!r} is built from "
                f"{', '.join(sorted(fields))}; load {', '.join(missing)} with only() too.",
                code="bad-query",
            )
        keys = meta.index_keys({f: values.get(f) for f in meta.field_names})
        for attr in (index.pk_attr, index.sk_attr):
            index_key = keys[attr]
            if index_key is None:
                plan.removes.append(ph.name(attr))
            else:
                plan.sets.append(f"{ph.name(attr)} = {ph.value({'S': index_key})}")
    token = new_write_token()
    plan.sets.append(f"{ph.name(WRITE_TOKEN_ATTR)} = {ph.value({'S': token})}")
    params = {
        "Key": {PK: {"S": key[0]}, SK: {"S": key[1]}},
        "UpdateExpression": plan.expression(),
        "ConditionExpression": condition,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }

    def on_success(_: dict[str, Any]) -> None:
        _apply(instance, overrides, key)

    return WriteOp(
        "UpdateItem",
        ph.apply(params),
        type(instance),
        _version_conflict(instance, "save", token),
        on_success,
    )


def delete_op(instance: Model) -> WriteOp:
    """Build the write that `instance.delete()` sends."""
    meta = instance._meta
    if instance.version == 0:
        raise type(instance).DoesNotExist(
            f"Cannot delete {meta.model_name}: it was never saved (version 0)."
        )
    pk, sk = instance._loaded_key or meta.primary_key(instance.__dict__)
    ph = Placeholders()
    params = {
        "Key": {PK: {"S": pk}, SK: {"S": sk}},
        "ConditionExpression": (
            f"{ph.name(VERSION_ATTR)} = {ph.value({'N': str(instance.version)})}"
        ),
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }

    def on_success(_: dict[str, Any]) -> None:
        _apply(instance, {"version": 0}, None)

    return WriteOp(
        "DeleteItem",
        ph.apply(params),
        type(instance),
        _version_conflict(instance, "delete"),
        on_success,
    )


# --------------------------------------------------------------------------- sending


def execute(op: WriteOp) -> dict[str, Any]:
    """Send a write (or add it to the active transaction) and apply its result on success."""
    from ._transactions import current_transaction

    tx = current_transaction()
    if tx is not None:
        tx.add(op)
        return {}
    conn = get_connection()
    params = dict(op.params)
    check_expressions(params, op.model.__name__)
    if op.operation == "TransactWriteItems":
        params["TransactItems"] = [
            {kind: {**body, "TableName": conn.table_name} for kind, body in action.items()}
            for action in params["TransactItems"]
        ]
    else:
        params["TableName"] = conn.table_name
    try:
        response = conn.send(op.operation, params)
    except ConditionFailedError as exc:
        error = op.conflict(exc)
        if error is not None:
            raise error from exc
        response = {"Attributes": _old_item(exc)}
        logger.info("dynorm: %s was already applied (a retry after a lost response)", op.operation)
    except TransactionCanceledError as exc:
        if "ConditionalCheckFailed" not in exc.reasons:
            raise
        error = op.conflict(exc)
        if error is not None:
            raise error from exc
        response = {}
    op.on_success(response)
    return response


def refresh(instance: Model) -> None:
    """Reload an instance's fields from a consistent read of its stored item."""
    meta = instance._meta
    pk, sk = instance._loaded_key or meta.primary_key(instance.__dict__)
    conn = get_connection()
    response = conn.send_raw(
        "GetItem",
        {
            "TableName": conn.table_name,
            "Key": {PK: {"S": pk}, SK: {"S": sk}},
            "ConsistentRead": True,
        },
    )
    item = response.get("Item")
    if item is None:
        raise type(instance).DoesNotExist(
            f"Cannot refresh {meta.model_name} (key fields: {_key_names(instance)}): the item "
            "no longer exists."
        )
    fresh = type(instance).from_item(item)
    instance.__dict__.update(fresh.__dict__)
    instance._loaded_key = fresh._loaded_key


def update_instance_op(instance: Model, values: Mapping[str, Any]) -> WriteOp:
    """Build the UpdateItem that `instance.update(**values)` sends."""
    from .query.updates import plan_update

    meta = instance._meta
    if instance.version == 0:
        raise type(instance).DoesNotExist(
            f"Cannot update {meta.model_name}: it was never saved (version 0); call save() first."
        )
    if not values:
        raise QueryError(
            f"Cannot update {meta.model_name} with no values; pass field=value pairs.",
            code="bad-query",
        )
    pk, sk = instance._loaded_key or meta.primary_key(instance.__dict__)
    ph = Placeholders()
    condition = f"{ph.name(VERSION_ATTR)} = {ph.value({'N': str(instance.version)})}"
    plan = plan_update(meta, values, instance.__dict__, ph, new_version=str(instance.version + 1))
    token = new_write_token()
    plan.sets.append(f"{ph.name(WRITE_TOKEN_ATTR)} = {ph.value({'S': token})}")
    params = {
        "Key": {PK: {"S": pk}, SK: {"S": sk}},
        "UpdateExpression": plan.expression(),
        "ConditionExpression": condition,
        "ReturnValues": "ALL_NEW",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    new_version = instance.version + 1

    def on_success(response: dict[str, Any]) -> None:
        attributes = response.get("Attributes")
        if attributes:
            fresh = type(instance).from_item(attributes)
            instance.__dict__.update(fresh.__dict__)
            instance._loaded_key = fresh._loaded_key
        else:
            _apply(instance, {**plan.plain, "version": new_version}, (pk, sk))

    return WriteOp(
        "UpdateItem",
        ph.apply(params),
        type(instance),
        _version_conflict(instance, "update", token),
        on_success,
    )


def condition_check_op(instance: Model, conditions: Mapping[str, Any]) -> WriteOp:
    """Build a ConditionCheck on an instance's stored item (for `tx.check`)."""
    from .query.lookups import parse_lookup, render_condition

    meta = instance._meta
    pk, sk = instance._loaded_key or meta.primary_key(instance.__dict__)
    ph = Placeholders()
    if conditions:
        condition = " AND ".join(
            render_condition(meta, parse_lookup(meta, key, value), ph)
            for key, value in conditions.items()
        )
    else:
        condition = f"attribute_exists({ph.name(PK)})"
    params = {
        "Key": {PK: {"S": pk}, SK: {"S": sk}},
        "ConditionExpression": condition,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    return WriteOp(
        "ConditionCheck", ph.apply(params), type(instance), lambda exc: exc, lambda _: None
    )
