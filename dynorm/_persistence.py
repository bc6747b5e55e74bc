"""Instance writes: build the conditional request for save/delete/update, send it once.

Exactly once, in four steps:

1. Every save and update stores a random token (`_wtok`) with the item, and every write of an
   instance is conditional on the version it was loaded at (or on the key not existing).
2. botocore retries a write whose response was lost; a retry that DynamoDB refuses because the
   first attempt was applied gets back the stored item (`ALL_OLD`) carrying our own token:
   dynorm reports success and takes the stored state.
3. A refusal whose stored item is neither at the expected version nor ours, after an attempt
   that may have been applied (a lost response, a 5xx), raises `WriteOutcomeUnknownError`:
   calling it a conflict would invite the caller to apply the change twice.
4. When every attempt failed that way (`ServiceError(maybe_applied=True)`), the instance
   remembers the attempt (`Attempt`: its token, expected version, call and state). The
   caller's next write of the instance is sent as usual; if DynamoDB refuses it and the
   stored item carries a remembered token, that attempt was applied: the instance takes its
   result, and the new call is reported as done (the same call: the retry) or applied on top
   (a different call, or an instance changed since).
"""

from __future__ import annotations

import copy
import secrets
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

from ._capture import captured
from ._codec import Item, check_item_size, from_wire
from ._config import connection_for
from ._connection import logger
from ._constants import PK, SK, TYPE_ATTR, VERSION_ATTR, WRITE_TOKEN_ATTR
from .exceptions import (
    ConditionFailedError,
    DynormError,
    InvalidValueError,
    ItemExistsError,
    ItemTooLargeError,
    QueryError,
    TransactionCanceledError,
    VersionConflictError,
    WriteOutcomeUnknownError,
)
from .fields import utcnow
from .query.placeholders import Placeholders, check_expressions

if TYPE_CHECKING:
    from ._connection import Connection
    from .models import Model

#: How many uncertain attempts of one instance are remembered (each retry may add one).
_MAX_REMEMBERED = 8
_CCF = "ConditionalCheckFailed"


@dataclass
class WriteOp:
    """One write ready to send alone or to join a transaction.

    `params` are the parameters of `operation` without TableName; `conflict` maps a
    refused condition to the exception to raise (None: the refusal proves that this very
    write was applied earlier, e.g. a retry after a lost response); `on_success` updates
    the instance.

    `token` is the write token the write stores (None for deletes and checks). `instance`,
    `call` and `rebuild` are set for the writes of an instance (`save`, `update`, `delete`):
    the instance, what was called (to recognise a retry of the same call) and how to build
    the write again from the instance's state.
    """

    operation: str
    params: dict[str, Any]
    model: type[Model]
    conflict: Callable[[DynormError], Exception | None]
    on_success: Callable[[dict[str, Any]], None]
    extra: dict[str, Any] = field(default_factory=dict)
    #: The Table (or name) to write to (`qs.using(...)`); None: the model's table.
    table: Any = None
    token: str | None = None
    instance: Model | None = None
    call: tuple[Any, ...] | None = None
    rebuild: Callable[[], WriteOp] | None = None


@dataclass
class Attempt:
    """A write of an instance whose outcome is unknown: every response was lost.

    `group` names the request it was part of (a transaction's writes share one) and `size`
    how many writes that request had; `snapshot` is the instance's state when it was sent and
    `key` the primary key of the item it wrote (or deleted); `owner` the instance it
    belongs to (a shallow copy of the instance shares its bookkeeping, not its attempts).
    """

    token: str | None
    expected: int
    call: tuple[Any, ...] | None
    snapshot: dict[str, Any]
    on_success: Callable[[dict[str, Any]], None]
    deletes: bool
    group: str
    size: int
    key: tuple[str, str] | None = None
    owner: Any = None

    def same(self, call: tuple[Any, ...] | None, instance: Model) -> bool:
        """Whether `call` on the instance as it is now repeats this attempt exactly.

        An `update(**values)` or a `delete()` writes what the call says, whatever else the
        instance holds: the same call is the same write. A save writes the instance's
        fields: it repeats the attempt only if they are unchanged.
        """
        if self.call != call:
            return False
        return (
            call is not None
            and call[0] in ("update", "delete")
            or (self.snapshot == instance.__dict__)
        )


class WriteState:
    """dynorm's bookkeeping of one instance's writes (`Model._writes`).

    `token` is the write token of the stored item the instance holds, when known; `pending`
    the instance's writes of unknown outcome. It never takes part in equality (two instances
    with equal fields are equal whatever dynorm knows about them), copies keep the token but
    not the pending writes (those belong to the original instance), and it is never changed
    in place (a shallow copy of an instance shares it): changes replace it.
    """

    __slots__ = ("pending", "token")

    def __init__(self, token: str | None = None, pending: list[Attempt] | None = None) -> None:
        self.token = token
        self.pending = pending

    def __eq__(self, other: object) -> bool:
        return other is None or isinstance(other, WriteState)

    __hash__ = None  # type: ignore[assignment]

    def __copy__(self) -> WriteState:
        return WriteState(self.token)

    def __deepcopy__(self, memo: dict[int, Any]) -> WriteState:
        return WriteState(self.token)

    def __reduce__(self) -> tuple[Any, ...]:
        return (WriteState, (self.token,))

    def __repr__(self) -> str:
        return f"WriteState(pending={len(self.pending or ())})"


def pending(instance: Model) -> list[Attempt]:
    """The instance's remembered writes of unknown outcome."""
    state = instance._writes
    return list(state.pending or ()) if state is not None else []


def forget(instance: Model) -> None:
    """Forget the instance's writes of unknown outcome (settled, or the caller reloaded)."""
    state = instance._writes
    if state is not None and state.pending is not None:
        instance._writes = WriteState(state.token)


def stored_token_of(instance: Model) -> str | None:
    """The write token of the stored item the instance holds, when known."""
    state = instance._writes
    return state.token if state is not None else None


def set_stored_token(instance: Model, token: str | None) -> None:
    state = instance._writes
    if state is None and token is None:
        return
    instance._writes = WriteState(token, state.pending if state is not None else None)


# --------------------------------------------------------------------------- attempts


class _Attempts:
    """What the attempts of one request told: whether any of them may have been applied."""

    __slots__ = ("earlier", "uncertain")

    def __init__(self) -> None:
        self.uncertain = False  # an attempt of this request got no answer, or a 5xx
        self.earlier = False  # an earlier request of the same write may have been applied


_attempts: ContextVar[_Attempts | None] = ContextVar("dynorm_write_attempts", default=None)
#: Errors that prove the request never left: no connection was made.
_NOT_SENT = (EndpointConnectionError, ConnectTimeoutError)
_tracked: weakref.WeakSet[Any] = weakref.WeakSet()
_tracked_lock = threading.Lock()


def _on_attempt(response: Any = None, caught_exception: Any = None, **_: Any) -> None:
    """Note an attempt that may have been applied unseen (botocore `needs-retry` hook)."""
    box = _attempts.get()
    if box is None:
        return None
    if caught_exception is not None:
        if not isinstance(caught_exception, _NOT_SENT):
            box.uncertain = True
    elif response is not None and response[0] is not None and response[0].status_code >= 500:
        box.uncertain = True
    return None


def _track(conn: Connection) -> None:
    client = conn.client
    if client in _tracked:
        return
    with _tracked_lock:
        if client in _tracked:
            return
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is not None:
            events.register("needs-retry.dynamodb", _on_attempt, unique_id="dynorm-write-attempts")
        _tracked.add(client)


@contextmanager
def tracking(conn: Connection) -> Iterator[_Attempts]:
    """Record, for the requests sent inside, whether an attempt may have been applied."""
    _track(conn)
    box = _Attempts()
    token = _attempts.set(box)
    try:
        yield box
    finally:
        _attempts.reset(token)


def may_have_applied() -> bool:
    """Whether the write being sent may have been applied by an attempt whose answer was lost."""
    box = _attempts.get()
    return box is not None and (box.uncertain or box.earlier)


# --------------------------------------------------------------------------- item building


def build_item(instance: Model, overrides: Mapping[str, Any], token: str | None = None) -> Item:
    """Return the complete item for an instance: keys, type, index keys, fields, token.

    Its size is checked as it will be stored: every attribute dynorm adds is counted.
    """
    meta = instance._meta
    assert meta.codec is not None
    values = {**instance.__dict__, **overrides}
    pk, sk = meta.primary_key(values)
    item: Item = {PK: {"S": pk}, SK: {"S": sk}, TYPE_ATTR: {"S": meta.type_name}}
    for attr, key in meta.index_keys(values).items():
        if key is not None:
            item[attr] = {"S": key}
    item.update(meta.codec.encode(instance, overrides))
    if token is not None:
        item[WRITE_TOKEN_ATTR] = {"S": token}
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


def new_write_token() -> str:
    """A random token stored with each write (`_wtok`), to recognise our own earlier write."""
    return secrets.token_hex(8)


# --------------------------------------------------------------------------- refusals


def refused_items(exc: DynormError) -> list[dict[str, Any]]:
    """Every stored item a refusal returned (`ALL_OLD`), for any action of the request."""
    response = exc.response or {}
    if "CancellationReasons" in response:
        return [dict(r["Item"]) for r in response["CancellationReasons"] if r.get("Item")]
    return [dict(response["Item"])] if response.get("Item") else []


def carrying(items: Iterable[Mapping[str, Any]], token: str | None) -> dict[str, Any] | None:
    """The item that carries this write token (the write was applied), if any.

    Tokens are random per write, so a match proves our write; comparing content instead
    would be unsafe (two read-modify-write increments from one version write equal items).
    """
    if token is None:
        return None
    for item in items:
        if item.get(WRITE_TOKEN_ATTR, {}).get("S") == token:
            return dict(item)
    return None


def already_applied(old: Mapping[str, Any] | None, token: str | None) -> bool:
    """Whether the stored item (ALL_OLD of a refused write) carries this write's token."""
    return old is not None and carrying([old], token) is not None


def _old_item(exc: DynormError) -> dict[str, Any] | None:
    response = exc.response or {}
    if "Item" in response:
        return dict(response["Item"])
    for reason in response.get("CancellationReasons", []):
        if reason.get("Code") == _CCF:
            return dict(reason["Item"]) if "Item" in reason else None
    return None


def first_gone(exc: DynormError) -> bool:
    """Whether a refusal says that the write's (first) item does not exist."""
    response = exc.response or {}
    reasons = response.get("CancellationReasons")
    if reasons is not None:
        first = reasons[0] if reasons else {}
        return bool(first.get("Code") == _CCF and not first.get("Item"))
    return not response.get("Item")


def _stored_version(old: Mapping[str, Any] | None) -> int | None:
    if old and VERSION_ATTR in old:
        return int(from_wire(old[VERSION_ATTR]))
    return None


def disproves(old: Mapping[str, Any] | None, expected: int) -> bool:
    """Whether a stored item without our token proves that our write was never applied.

    Every write of an instance is conditional on the version `expected` and stores
    `expected + 1`; only one writer can store that version. So another writer's item at
    exactly `expected + 1` means ours never was (a genuine conflict). At a later version (or
    gone) ours may have been stored and then changed: that cannot be told.
    """
    return _stored_version(old) == expected + 1


def _unknown(
    model: str, action: str, keys: str, expected: int, current: int | None, exc: DynormError
) -> WriteOutcomeUnknownError:
    state = (
        f"is at version {current}, written by someone else"
        if current is not None
        else "no longer exists"
    )
    return WriteOutcomeUnknownError(
        f"Cannot tell whether the {action} of {model} (key fields: {keys}) was applied: an "
        f"earlier attempt got no answer (a lost response, or a server error), and the stored "
        f"item now {state}, not version {expected} and not ours. Nothing was applied twice. "
        "Reload it with refresh_from_db() and check whether your change is there before "
        "applying it again.",
        model=model,
        expected_version=expected,
        current_version=current,
        aws_code=exc.aws_code,
        response=exc.response,
    )


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
    model = meta.model_name
    expected = instance.version
    keys = _key_names(instance)

    def conflict(exc: DynormError) -> Exception | None:
        if carrying(refused_items(exc), token) is not None:
            return None
        if action == "delete" and first_gone(exc):
            return None  # gone already (e.g. our delete, retried after a lost response)
        old = _old_item(exc)
        current = _stored_version(old)
        if may_have_applied() and not disproves(old, expected):
            return _unknown(model, action, keys, expected, current, exc)
        if action == "create":
            key = old or {}
            return ItemExistsError(
                f"Cannot create {model} (key fields: {keys}): an item with the same key "
                "already exists. Load it and save() that object, or use get_or_create().",
                model=model,
                keys=[{PK: key[PK]["S"], SK: key[SK]["S"]}] if PK in key and SK in key else [],
                objects=[instance],
                aws_code=exc.aws_code,
                response=exc.response,
            )
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


def _apply(
    instance: Model,
    values: Mapping[str, Any],
    key: tuple[str, str] | None,
    token: str | None = None,
) -> None:
    instance.__dict__.update(values)
    instance._loaded_key = key
    set_stored_token(instance, token)


def stored_token(item: Mapping[str, Any]) -> str | None:
    """The write token of a stored item (None for items written without one)."""
    token = item.get(WRITE_TOKEN_ATTR, {}).get("S")
    return None if token is None else str(token)


def _take(instance: Model, item: dict[str, Any]) -> None:
    """Give the instance the stored item's fields, key and write token."""
    fresh = type(instance).from_item(item)
    instance.__dict__.update(fresh.__dict__)
    instance._loaded_key = fresh._loaded_key
    set_stored_token(instance, stored_token(item))


def loaded_condition(instance: Model, ph: Placeholders) -> str:
    """The condition of a write of a stored instance: the stored item is the one it holds.

    The version it was loaded (or last saved) at, and, when the instance knows it, that
    item's write token: an item deleted and created again has the version again, never the
    token, so a stale instance cannot overwrite or delete its successor.
    """
    condition = f"{ph.name(VERSION_ATTR)} = {ph.value({'N': str(instance.version)})}"
    stored = stored_token_of(instance)
    if stored is not None:
        condition += f" AND {ph.name(WRITE_TOKEN_ATTR)} = {ph.value({'S': stored})}"
    return condition


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
    token = new_write_token()
    item = build_item(instance, overrides, token)
    new_key = (item[PK]["S"], item[SK]["S"])

    def on_success(_: dict[str, Any]) -> None:
        _apply(instance, overrides, new_key, token)

    ph = Placeholders()
    if creating:
        params = {
            "Item": item,
            "ConditionExpression": f"attribute_not_exists({ph.name(PK)})",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        return WriteOp(
            "PutItem",
            ph.apply(params),
            cls,
            _conflict(instance, "create", token),
            on_success,
            token=token,
        )

    old_key = instance._loaded_key or new_key
    version_cond = loaded_condition(instance, ph)
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
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                )
            },
        ]
        version_conflict = _conflict(instance, "save", token)
        exists_conflict = _conflict(instance, "create", token)

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
            token=token,
        )
    if update_fields is None:
        params = {
            "Item": item,
            "ConditionExpression": version_cond,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        return WriteOp(
            "PutItem",
            ph.apply(params),
            cls,
            _conflict(instance, "save", token),
            on_success,
            token=token,
        )

    names = list(dict.fromkeys(update_fields))
    for name in names:
        meta.check_field(name, "save update_fields of")
    return _update_fields_op(instance, names, overrides, old_key, partial=False, token=token)


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
    return _update_fields_op(
        instance, names, overrides, instance._loaded_key, partial=True, token=new_write_token()
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
    token. A whole object rewrites every index key; a partial one (loaded with only()) those built
    from the fields it changes, which must all be loaded. The size of a whole object's
    resulting item is checked as the instance would store it (exact unless fields not named
    hold unsaved changes); a partial object's is left to DynamoDB (its other fields are not
    known).
    """
    from .query.updates import UpdatePlan

    meta = instance._meta
    assert meta.codec is not None
    values = {**instance.__dict__, **overrides}
    ph = Placeholders()
    condition = loaded_condition(instance, ph)
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
    if not partial:
        build_item(instance, overrides, token)  # the resulting item's size, checked
    plan.sets.append(f"{ph.name(WRITE_TOKEN_ATTR)} = {ph.value({'S': token})}")
    params = {
        "Key": {PK: {"S": key[0]}, SK: {"S": key[1]}},
        "UpdateExpression": plan.expression(),
        "ConditionExpression": condition,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }

    def on_success(_: dict[str, Any]) -> None:
        _apply(instance, overrides, key, token)

    return WriteOp(
        "UpdateItem",
        ph.apply(params),
        type(instance),
        _conflict(instance, "save", token),
        on_success,
        token=token,
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
        "ConditionExpression": loaded_condition(instance, ph),
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }

    def on_success(_: dict[str, Any]) -> None:
        _apply(instance, {"version": 0}, None)

    return WriteOp(
        "DeleteItem",
        ph.apply(params),
        type(instance),
        _conflict(instance, "delete"),
        on_success,
    )


def local_update(
    instance: Model, values: Mapping[str, Any], plain: Mapping[str, Any]
) -> dict[str, Any]:
    """The field values `update(**values)` produces, computed from the instance's values.

    Exact when the instance holds the stored item at its version (the update is conditional
    on it) and has no unsaved changes in the fields the `F` expressions read. A value it
    cannot compute (arithmetic on a missing number) keeps the instance's value.
    """
    from .query.expressions import F, UpdateOp

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
    condition = loaded_condition(instance, ph)
    plan = plan_update(meta, values, instance.__dict__, ph, new_version=str(instance.version + 1))
    token = new_write_token()
    plan.sets.append(f"{ph.name(WRITE_TOKEN_ATTR)} = {ph.value({'S': token})}")
    new_version = instance.version + 1
    computed = set(values) - set(plan.plain)
    result = local_update(instance, values, plan.plain)
    if instance._partial is None:
        _check_update_size(instance, {**result, "version": new_version}, token)
    params = {
        "Key": {PK: {"S": pk}, SK: {"S": sk}},
        "UpdateExpression": plan.expression(),
        "ConditionExpression": condition,
        "ReturnValues": "ALL_NEW",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }

    def on_success(response: dict[str, Any]) -> None:
        attributes = response.get("Attributes")
        if attributes:
            _take(instance, attributes)
        else:
            # Inside a transaction (no ReturnValues): computed here, then re-read after the
            # commit when F() expressions were involved (see Transaction.commit).
            _apply(instance, {**result, "version": new_version}, (pk, sk), token)

    return WriteOp(
        "UpdateItem",
        ph.apply(params),
        type(instance),
        _conflict(instance, "update", token),
        on_success,
        extra={"refresh": bool(computed)},
        token=token,
    )


def _check_update_size(instance: Model, result: Mapping[str, Any], token: str) -> None:
    """Refuse an update whose resulting item would be over 400 KB (ItemTooLargeError)."""
    try:
        build_item(instance, result, token)
    except ItemTooLargeError:
        raise
    except (InvalidValueError, TypeError, ValueError, AttributeError):
        pass  # a value computed here that the codec refuses: DynamoDB computes and checks it


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


# --------------------------------------------------------------------------- instance writes


def call_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """`update()` values as compared between a call and its retry (`F("n")` by name)."""
    from .query.expressions import F, UpdateOp

    return {k: UpdateOp("ref", v.name) if isinstance(v, F) else v for k, v in values.items()}


def _find_token(op: WriteOp) -> str | None:
    """The write token in an op's put item(s) (for writes built by model subclasses)."""
    bodies = [op.params] if op.operation == "PutItem" else []
    if op.operation == "TransactWriteItems":
        bodies = [a["Put"] for a in op.params["TransactItems"] if "Put" in a]
    for body in bodies:
        token = body.get("Item", {}).get(WRITE_TOKEN_ATTR, {}).get("S")
        if token is not None:
            return str(token)
    return None


def prepare(instance: Model, call: tuple[Any, ...], build: Callable[[], WriteOp]) -> WriteOp:
    """Build an instance's write and tag it with the instance, the call and how to rebuild."""
    op = build()
    op.instance, op.call = instance, call
    op.rebuild = lambda: prepare(instance, call, build)
    if op.token is None:
        op.token = _find_token(op)
    return op


def write(instance: Model, call: tuple[Any, ...], build: Callable[[], WriteOp]) -> None:
    """Send `instance`'s write (`save`, `update`, `delete`), or add it to the transaction."""
    if instance.version == 0 and live_attempts(instance) and not _repeats_create(instance, call):
        _settle_by_reading(instance)  # a create of unknown outcome: was it stored?
    execute(prepare(instance, call, build))


def _repeats_create(instance: Model, call: tuple[Any, ...]) -> bool:
    """Whether `call` creates the key the remembered creates wrote.

    Then DynamoDB's refusal of it tells whether one of them was stored.
    """
    if call[0] != "save":
        return False
    try:
        key = instance._meta.primary_key(instance.__dict__)
    except DynormError:
        return True  # the write refuses it itself
    return all(a.key == key for a in live_attempts(instance))


def live_attempts(instance: Model) -> list[Attempt]:
    """The instance's remembered attempts that may still be stored (at its version)."""
    return [a for a in pending(instance) if a.owner is instance and a.expected == instance.version]


def remember(instance: Model, op: WriteOp, group: str | None = None, size: int = 1) -> None:
    """Remember an attempt of `op` whose outcome is unknown, for the next write to settle."""
    attempt = Attempt(
        token=op.token,
        expected=instance.version,
        call=_copied(op.call),
        snapshot=_snapshot(instance),
        on_success=op.on_success,
        deletes=bool(op.call and op.call[0] == "delete"),
        group=group or uuid.uuid4().hex,
        size=size,
        key=_written_key(op),
        owner=instance,
    )
    attempts = [*live_attempts(instance), attempt][-_MAX_REMEMBERED:]
    instance._writes = WriteState(stored_token_of(instance), attempts)


def _snapshot(instance: Model) -> dict[str, Any]:
    snapshot: dict[str, Any] = _copied(instance.__dict__)
    return snapshot


def _copied(value: Any) -> Any:
    """A deep copy to compare a later call with (values the caller may mutate meanwhile)."""
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - a value that cannot be copied: compare what is there
        return copy.copy(value)


def _written_key(op: WriteOp) -> tuple[str, str] | None:
    """The primary key of the item a write of an instance stores (or deletes).

    A transaction of an instance holds its item's Put (a move puts the new key after
    deleting the old one; a versioned save puts the item first), or, for a delete, the
    item's Delete first.
    """
    body: Mapping[str, Any] = op.params
    if op.operation == "TransactWriteItems":
        actions = op.params["TransactItems"]
        puts = [a["Put"] for a in actions if "Put" in a]
        body = puts[0] if puts else next(iter(actions[0].values()), {})
    key = body.get("Item") or body.get("Key")
    if key and PK in key and SK in key:
        return (key[PK]["S"], key[SK]["S"])
    return None


def settle(instance: Model, attempt: Attempt, item: Mapping[str, Any] | None) -> None:
    """An earlier attempt was applied: give the instance its result, forget the others."""
    attempt.on_success({"Attributes": dict(item)} if item is not None else {})
    forget(instance)


def earlier_attempt(
    attempts: Iterable[Attempt], exc: DynormError, gone: bool
) -> tuple[Attempt, dict[str, Any] | None] | None:
    """The remembered attempt a refusal shows applied, with the item that proves it.

    Its token is stored, or it was a delete and the item no longer exists (`gone`).
    """
    attempts = list(attempts)
    items = refused_items(exc)
    for attempt in attempts:
        item = carrying(items, attempt.token)
        if item is not None:
            return attempt, item
    for attempt in attempts:
        if attempt.deletes and gone:
            return attempt, None
    return None


def _settle_by_reading(instance: Model) -> None:
    """Read the items of remembered creates of unknown outcome; settle the one stored.

    Used when the next write could not tell from a refusal (a delete or update of an object
    that is still at version 0, or a create under another key).
    """
    conn = connection_for(type(instance))
    for key in dict.fromkeys(a.key for a in live_attempts(instance) if a.key is not None):
        stored = conn.send_raw(
            "GetItem",
            {
                "TableName": conn.table_name,
                "Key": {PK: {"S": key[0]}, SK: {"S": key[1]}},
                "ConsistentRead": True,
            },
        ).get("Item")
        for attempt in live_attempts(instance):
            if stored is not None and carrying([stored], attempt.token) is not None:
                settle(instance, attempt, stored)
                return


def _with_table(op: WriteOp, table: str) -> dict[str, Any]:
    params = dict(op.params)
    check_expressions(params, op.model.__name__)
    if op.operation == "TransactWriteItems":
        params["TransactItems"] = [
            {kind: {**body, "TableName": table} for kind, body in action.items()}
            for action in params["TransactItems"]
        ]
    else:
        params["TableName"] = table
    return params


def _refusal(exc: DynormError) -> bool:
    """Whether an error is DynamoDB refusing a condition (alone or in a transaction)."""
    if isinstance(exc, ConditionFailedError):
        return True
    return isinstance(exc, TransactionCanceledError) and _CCF in exc.reasons


def _accepted(op: WriteOp, exc: DynormError) -> dict[str, Any]:
    """Read a refusal through `op.conflict`: raise its error, or the response of success."""
    error = op.conflict(exc)
    if error is not None:
        raise error from exc
    logger.info("%s was already applied (a retry after a lost response)", op.operation)
    stored = carrying(refused_items(exc), op.token)
    return {"Attributes": stored} if stored is not None else {}


# --------------------------------------------------------------------------- sending


def execute(op: WriteOp) -> dict[str, Any]:
    """Send a write (or add it to the active transaction) and apply its result on success."""
    from ._transactions import current_transaction

    tx = current_transaction()
    if tx is not None:
        tx.add(op)
        return {}
    conn = connection_for(op.model, op.table)
    params = _with_table(op, conn.table_name)
    if captured():  # dynorm.capture(): recorded by the connection, nothing sent or changed
        return conn.send(op.operation, params)
    if op.instance is not None:
        return _execute_instance(op, op.instance, conn, params)
    with tracking(conn):
        try:
            response = conn.send(op.operation, params)
        except (ConditionFailedError, TransactionCanceledError) as exc:
            if not _refusal(exc):
                raise
            response = _accepted(op, exc)
    op.on_success(response)
    return response


def _execute_instance(
    op: WriteOp, instance: Model, conn: Connection, params: dict[str, Any]
) -> dict[str, Any]:
    """Send an instance's write, settling its remembered attempts of unknown outcome."""
    live = live_attempts(instance)
    with tracking(conn) as box:
        try:
            response = conn.send(op.operation, params)
        except (ConditionFailedError, TransactionCanceledError) as exc:
            if not _refusal(exc):
                if box.uncertain:
                    remember(instance, op)
                raise
            found = earlier_attempt(live, exc, first_gone(exc))
            if found is not None:
                attempt, item = found
                same = attempt.same(op.call, instance)
                settle(instance, attempt, item)
                logger.info(
                    "an earlier %s of %s whose outcome was unknown had been applied",
                    op.operation,
                    op.model.__name__,
                )
                if same or op.rebuild is None:
                    return {}
                return execute(op.rebuild())  # the change made since, on top of it
            box.earlier = bool(live)
            try:
                response = _accepted(op, exc)
            except WriteOutcomeUnknownError:
                if box.uncertain:
                    remember(instance, op)
                raise
        except DynormError:
            if box.uncertain:
                remember(instance, op)
            raise
    op.on_success(response)
    forget(instance)
    return response


def refresh(instance: Model) -> None:
    """Reload an instance's fields from a consistent read of its stored item.

    It also forgets the instance's writes of unknown outcome: the caller now sees what is
    stored.
    """
    meta = instance._meta
    pk, sk = instance._loaded_key or meta.primary_key(instance.__dict__)
    conn = connection_for(type(instance))
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
    _take(instance, item)
    forget(instance)
