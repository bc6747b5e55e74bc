"""The writes of an instance: `save()`, `delete()`, `update()` and `tx.check()` as `WriteOp`s.

Each builder turns the instance into values and an expectation on the stored item, has the
write compiler (`query._compile_write`) turn them into the request, and adds how a refusal
reads (`conflict`) and what the instance takes on success. The clock and the write token are
read once per write, here, and passed to the compiler. Nothing is sent here
(`_executor` sends).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._blobs import after_save, blob_fields, blob_overrides, delete_objects_of, deleted_blobs
from ._codec import Item
from ._exactly_once import (
    carrying,
    disproves,
    first_gone,
    may_have_applied,
    new_write_token,
    old_item,
    refused_items,
    set_stored_token,
    stored_item,
    stored_token,
    stored_token_of,
    stored_version,
    unknown,
)
from ._migrations import stored_schema_version
from ._proof import Sent, sent_of
from ._request import Request
from ._write_op import WriteOp
from .exceptions import (
    DynormError,
    InvalidValueError,
    ItemExistsError,
    ItemTooLargeError,
    QueryError,
    TransactionCanceledError,
    VersionConflictError,
)
from .fields import utcnow
from .query._compile_write import (
    Absent,
    Check,
    Delete,
    Loaded,
    Matches,
    PutItem,
    SetFields,
    Update,
    compile_transaction,
    compile_update,
    compile_write,
    model_item,
)
from .query.expressions import F, UpdateOp
from .query.updates import index_refs, resolve_index_refs

if TYPE_CHECKING:
    from .models import Model

__all__ = [
    "build_item",
    "call_values",
    "condition_check_op",
    "delete_op",
    "local_update",
    "save_op",
    "take",
    "timestamps",
    "update_instance_op",
]


# --------------------------------------------------------------------------- values


def build_item(instance: Model, overrides: Mapping[str, Any], token: str | None = None) -> Item:
    """Return the complete item for an instance with `overrides` applied (see `model_item`)."""
    return model_item(instance._meta, {**instance.__dict__, **overrides}, token=token)


def timestamps(instance: Model, creating: bool, now: datetime) -> dict[str, Any]:
    """The CreatedAt (on create, unless given) and UpdatedAt values a save stores."""
    out: dict[str, Any] = {}
    for name, kind in instance._meta.field_kinds.items():
        if kind == "updated_at":
            out[name] = now
        elif kind == "created_at" and creating and name not in instance.model_fields_set:
            out[name] = now
    return out


def _key_names(instance: Model) -> str:
    return ", ".join(sorted(instance._meta.key_fields)) or "its key"


def _loaded(instance: Model) -> Loaded:
    """The expectation of a write of a stored instance: the stored item is the one it holds.

    The version it was loaded (or last saved) at, and, when the instance knows it, that
    item's write token: an item deleted and created again has the version again, never the
    token, so a stale instance cannot overwrite or delete its successor.
    """
    return Loaded(instance.version, stored_token_of(instance))


def _stored_key(instance: Model) -> tuple[str, str]:
    return instance._loaded_key or instance._meta.primary_key(instance.__dict__)


# --------------------------------------------------------------------------- refusals


def _conflict(
    instance: Model, action: str, token: str | None = None
) -> Callable[[DynormError], Exception | None]:
    """How a refusal of the instance's `action` ("create", "save", "update", "delete") reads.

    Our own token in the stored item: applied earlier (None). A delete whose item is gone:
    done (None). Otherwise, after an attempt that may have been applied, and unless the
    refusal disproves it (see `disproves`): `WriteOutcomeUnknownError`; else
    `ItemExistsError` (create) or `VersionConflictError`.
    """
    meta = instance._meta
    layout = meta.layout
    model = meta.model_name
    expected = instance.version
    keys = _key_names(instance)

    def conflict(exc: DynormError) -> Exception | None:
        if carrying(refused_items(exc), token, layout) is not None:
            return None
        if action == "delete" and first_gone(exc):
            return None  # gone already (e.g. our delete, retried after a lost response)
        old = old_item(exc)
        current = stored_version(old, layout.version)
        if may_have_applied() and not disproves(old, expected, layout):
            return unknown(model, action, keys, expected, current, exc)
        if action == "create":
            key = old or {}
            return ItemExistsError(
                f"Cannot create {model} (key fields: {keys}): an item with the same key "
                "already exists. Load it and save() that object, or use get_or_create().",
                model=model,
                keys=[{a: layout.text(a, key) for a in layout.key_attrs}]
                if layout.has_key(key)
                else [],
                objects=[instance],
                aws_code=exc.aws_code,
                response=exc.response,
            )
        migrations = meta.migrations
        if migrations is not None and old is not None and current == expected:
            stamp = stored_schema_version(old)
            if stamp != migrations.current:  # the version held: the stamp refused it
                if stamp is None or stamp > migrations.current:
                    return migrations.newer(stamp)
                return migrations.older(stamp, action)
        if current is None:
            state = "the item no longer exists (deleted, or its key changed)"
        elif current == expected:
            state = f"the item was deleted and created again since (at version {current} again)"
        else:
            state = f"the stored version is {current}, not the loaded version {expected}"
        return VersionConflictError(
            f"Cannot {action} {model} (key fields: {keys}): {state}. Reload it "
            "with refresh_from_db() (or get()) and apply the change again.",
            model=model,
            expected_version=expected,
            current_version=current,
            aws_code=exc.aws_code,
            response=exc.response,
        )

    return conflict


# --------------------------------------------------------------------------- results


def _apply(
    instance: Model,
    values: Mapping[str, Any],
    key: tuple[str, str] | None,
    token: str | None = None,
) -> None:
    vars(instance).update(values)
    instance._loaded_key = key
    set_stored_token(instance, token)


def take(instance: Model, item: dict[str, Any]) -> None:
    """Give the instance the stored item's fields, key and write token."""
    fresh = type(instance).from_item(item)
    vars(instance).update(fresh.__dict__)
    instance._loaded_key = fresh._loaded_key
    instance._blobs = fresh._blobs
    set_stored_token(instance, stored_token(item, instance._meta.layout))


# --------------------------------------------------------------------------- save


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
    token = new_write_token()
    overrides = timestamps(instance, creating, utcnow())
    overrides["version"] = instance.version + 1
    if blob_fields(meta):  # uploaded now, before the write (see dynorm._blobs)
        target = instance._loaded_key if instance._partial is not None else None
        target = target or meta.primary_key(instance.__dict__)
        overrides.update(blob_overrides(instance, update_fields, instance.version + 1, target))
    if instance._partial is not None and update_fields is not None:
        return _partial_update_op(instance, list(dict.fromkeys(update_fields)), overrides, token)
    values = {**instance.__dict__, **overrides}
    item = model_item(meta, values, token=token)
    new_key = meta.layout.key_of(item)
    written = None if update_fields is None else tuple(update_fields)

    def on_success(_: dict[str, Any]) -> None:
        _apply(instance, overrides, new_key, token)
        after_save(instance, written)

    if creating:
        request = compile_write(meta, PutItem(item), Absent())
        return WriteOp.of(
            request, cls, _conflict(instance, "create", token), on_success, token=token
        )
    old_key = instance._loaded_key or new_key
    if old_key != new_key:
        # DynamoDB cannot update key attributes: move = delete old + put new, atomically.
        request = compile_transaction(
            [
                compile_write(meta, Delete(old_key), _loaded(instance)),
                compile_write(meta, PutItem(item), Absent()),
            ]
        )
        version_conflict = _conflict(instance, "save", token)
        exists_conflict = _conflict(instance, "create", token)

        def move_conflict(exc: DynormError) -> Exception | None:
            if isinstance(exc, TransactionCanceledError) and exc.reasons[:1] == [None]:
                return exists_conflict(exc)
            return version_conflict(exc)

        return WriteOp.of(
            request, cls, move_conflict, on_success, extra={"move": True}, token=token
        )
    if update_fields is None:
        request = compile_write(meta, PutItem(item), _loaded(instance))
        return WriteOp.of(request, cls, _conflict(instance, "save", token), on_success, token=token)
    names = list(dict.fromkeys(update_fields))
    for name in names:
        meta.check_field(name, "save update_fields of")
    return _update_fields_op(instance, names, overrides, old_key, partial=False, token=token)


def _partial_update_op(
    instance: Model, names: list[str], overrides: dict[str, Any], token: str
) -> WriteOp:
    """save(update_fields=...) of an object loaded with only(): encode just those fields."""
    meta = instance._meta
    assert instance._loaded_key is not None
    if set(names) & meta.key_fields:
        raise QueryError(
            f"Cannot change a key field of a partial {meta.model_name} loaded with only(); "
            "load it whole and save() it to move the item.",
            code="bad-query",
        )
    return _update_fields_op(
        instance, names, overrides, instance._loaded_key, partial=True, token=token
    )


def _update_fields_op(
    instance: Model,
    names: list[str],
    overrides: dict[str, Any],
    key: tuple[str, str],
    *,
    partial: bool,
    token: str,
) -> WriteOp:
    """Build the UpdateItem of `save(update_fields=...)`, conditional on the loaded version.

    It sets those fields, the overrides (version, timestamps), the index keys and a write
    token (see `SetFields`).
    """
    values = {**instance.__dict__, **overrides}
    write = SetFields(key, values, [*names, *(n for n in overrides if n not in names)], partial)
    request = compile_write(instance._meta, write, _loaded(instance), token=token)

    def on_success(_: dict[str, Any]) -> None:
        _apply(instance, overrides, key, token)
        after_save(instance, names)

    conflict = _conflict(instance, "save", token)
    return WriteOp.of(request, type(instance), conflict, on_success, token=token)


# --------------------------------------------------------------------------- delete


def delete_op(instance: Model) -> WriteOp:
    """Build the write that `instance.delete()` sends."""
    meta = instance._meta
    if instance.version == 0:
        raise type(instance).DoesNotExist(
            f"Cannot delete {meta.model_name}: it was never saved (version 0)."
        )
    request = compile_write(meta, Delete(_stored_key(instance)), _loaded(instance))
    blobs = deleted_blobs(instance)

    def on_success(_: dict[str, Any]) -> None:
        _apply(instance, {"version": 0}, None)
        if blobs or instance._blobs:
            delete_objects_of(instance, blobs)  # after the item: at worst an orphan object

    return WriteOp.of(request, type(instance), _conflict(instance, "delete"), on_success)


# --------------------------------------------------------------------------- update


def local_update(
    instance: Model, values: Mapping[str, Any], plain: Mapping[str, Any]
) -> dict[str, Any]:
    """The field values `update(**values)` produces, computed from the instance's values.

    Exact when the instance holds the stored item at its version (the update is conditional
    on it) and has no unsaved changes in the fields the `F` expressions read. A value it
    cannot compute (arithmetic on a missing number) keeps the instance's value.
    """
    current = instance.__dict__
    out: dict[str, Any] = dict(plain)
    for name, value in values.items():
        op = UpdateOp("ref", value.name) if isinstance(value, F) else value
        if not isinstance(op, UpdateOp):
            continue
        source = current.get(op.source)
        try:
            if op.kind == "ref":
                result: Any = source
            elif op.kind == "add_num":
                result = source + op.value
            elif op.kind == "sub_num":
                result = source - op.value
            elif op.kind == "append":
                result = [*(source or ()), *op.value]
            elif op.kind == "prepend":
                result = [*op.value, *(source or ())]
            elif op.kind == "if_not_exists":
                result = op.value if source is None else source
            elif op.kind == "add":
                result = {*(current.get(name) or ()), *op.value}
            else:
                result = {*(current.get(name) or ())} - set(op.value)
        except TypeError:
            continue
        out[name] = result
    return out


def update_instance_op(instance: Model, values: Mapping[str, Any]) -> WriteOp:
    """Build the UpdateItem that `instance.update(**values)` sends.

    The item it produces is size-checked before sending, computed from the instance's values
    (see `local_update`; a partial instance loaded with only() is left to DynamoDB).
    """
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
    blobs = sorted(set(values) & set(blob_fields(meta)))
    if blobs:
        raise QueryError(
            f"Cannot update() the blob field(s) {', '.join(blobs)} of {meta.model_name}: a "
            "blob is uploaded to S3 by save(). Assign it and call save().",
            code="bad-query",
        )
    key = _stored_key(instance)
    if index_refs(meta, values):
        # An F() on a field an index key is built from: read-modify-write (see
        # `resolve_index_refs`), conditional on the loaded version like every update.
        item = stored_item(instance, key)
        assert meta.codec is not None
        stored = meta.codec.decode(item) if item is not None else dict(instance.__dict__)
        values = resolve_index_refs(meta, values, stored)
    now, token = utcnow(), new_write_token()
    new_version = instance.version + 1
    write = Update(key, values, instance.__dict__, new_version, return_new=True)
    request, plain = compile_update(meta, write, _loaded(instance), token=token, now=now)
    computed = set(values) - set(plain)
    result = local_update(instance, values, plain)
    sent = None
    if instance._partial is None:
        _check_update_size(instance, {**result, "version": new_version}, token)
        if meta.layout.token is None:  # recognised by content: F() values computed here
            sent = _sent_update(instance, request, {**result, "version": new_version})

    def on_success(response: dict[str, Any]) -> None:
        attributes = response.get("Attributes")
        if attributes:
            take(instance, attributes)
        else:
            # Inside a transaction (no ReturnValues): computed here, then re-read after the
            # commit when F() expressions were involved (see Transaction.commit).
            _apply(instance, {**result, "version": new_version}, key, token)

    return WriteOp.of(
        request,
        type(instance),
        _conflict(instance, "update", token),
        on_success,
        extra={"refresh": bool(computed)},
        token=token,
        sent=sent,
    )


def _sent_update(instance: Model, request: Request, result: Mapping[str, Any]) -> Sent | None:
    """What an update of a whole instance stores, its F() values as computed locally.

    The update is conditional on the version the instance holds, so it applies to exactly
    the values the instance holds (see `_proof`).
    """
    try:
        item = build_item(instance, result)
    except (InvalidValueError, TypeError, ValueError, AttributeError):
        return None
    return sent_of(request.operation, request.params, item)


def _check_update_size(instance: Model, result: Mapping[str, Any], token: str) -> None:
    """Refuse an update whose resulting item would be over 400 KB (ItemTooLargeError)."""
    try:
        build_item(instance, result, token)
    except ItemTooLargeError:
        raise
    except (InvalidValueError, TypeError, ValueError, AttributeError):
        pass  # a value computed here that the codec refuses: DynamoDB computes and checks it


# --------------------------------------------------------------------------- check


def condition_check_op(instance: Model, conditions: Mapping[str, Any]) -> WriteOp:
    """Build a ConditionCheck on an instance's stored item (for `tx.check`)."""
    request = compile_write(instance._meta, Check(_stored_key(instance)), Matches(conditions))
    return WriteOp.of(request, type(instance), _same_error, _nothing)


def _same_error(exc: DynormError) -> Exception:
    return exc


def _nothing(_: dict[str, Any]) -> None:
    return None


def call_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """`update()` values as compared between a call and its retry (`F("n")` by name)."""
    return {k: UpdateOp("ref", v.name) if isinstance(v, F) else v for k, v in values.items()}
