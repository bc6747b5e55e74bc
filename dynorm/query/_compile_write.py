"""The pure write compiler: a write and what the stored item must be, in; a `Request` out.

This module is the only place that writes a ConditionExpression or an UpdateExpression for a
write. It sends nothing, reads no clock, draws no random token, knows no table name and looks
nothing up in the model registry: the time (`now`) and the write token (`token`) come in as
arguments, and the executor adds `TableName`. So the same arguments always compile to the same
request, which is what `capture()` records and what the offline tests assert, dict for dict.

A write is one of

- `Put(values)`: PutItem of a model's item, built from every field value (`model_item`);
- `PutItem(item)`: PutItem of an item already built (a versioned model's history item);
- `SetFields(key, values, names)`: UpdateItem setting these fields (`save(update_fields=...)`);
- `Update(key, changes, current, version)`: UpdateItem of values and `F` expressions
  (`obj.update(...)`, `qs.update(...)`);
- `Delete(key)`: DeleteItem;
- `Check(key)`: a transaction's ConditionCheck;
- `Add(key, deltas, sets)`: UpdateItem adding numbers to attributes of a companion item
  (the shards of `Meta.counted`),

and the expectation on the stored item, one of

- `Absent()`: no item under the key (a create): `attribute_not_exists(pk)`;
- `Loaded(version, token)`: the item an instance was loaded (or last saved) at: `version = v`,
  and, when the token of that item is known, `_wtok = t` (the layout's token attribute; none
  for a layout without one) (an item deleted and created again
  reaches the version again, never the token). Written here once;
- `Matches(lookups)`: `filter()`-style lookups hold (`tx.check`); none: the item exists;
- `StillMatches(state, version)`: the item a QuerySet read at `version` still matches its
  filters (the per-item writes of `qs.update()` / `qs.delete()`);
- `Unconditional()`: no condition (`bulk_create(overwrite=True)`, history pruning);
- `Owned(owners)`: a companion item is absent or belongs to one of these objects (the
  guard items of `Meta.unique`).

`compile_transaction` joins several requests into one TransactWriteItems (a key move is
`Delete` of the old key at `Loaded` + `Put` of the new one at `Absent`).
`compile_with_companions` is the one way a write takes companion items (unique guards, ...)
that must be written in the same transaction: the write's own actions first, then theirs.

Every name goes through `#n` placeholders and every value through `:v` placeholders; the
expression text never depends on the values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from .._codec import Item, ValueProblem, invalid_value
from .._constants import (
    OWNER_PK_ATTR,
    OWNER_SK_ATTR,
    SCHEMA_VERSION_ATTR,
)
from .._item_size import check_item_size
from .._layout import DEFAULT
from .._migrations import UNSTAMPED
from .._request import Request
from .compiler import QueryState, compile_condition
from .lookups import parse_lookup, render_condition
from .placeholders import Placeholders
from .updates import UpdatePlan, plan_update, rewrite_index_keys

if TYPE_CHECKING:
    from datetime import datetime

    from .._options import Options

__all__ = [
    "Absent",
    "Add",
    "Check",
    "Delete",
    "Expectation",
    "Loaded",
    "Matches",
    "Owned",
    "Put",
    "PutItem",
    "SetFields",
    "StillMatches",
    "Unconditional",
    "Update",
    "Write",
    "compile_transaction",
    "compile_update",
    "compile_with_companions",
    "compile_write",
    "key_of",
    "model_item",
    "transact_actions",
]

#: A primary key as stored: (pk, sk).
Key: TypeAlias = "tuple[str, str]"

# --------------------------------------------------------------------------- writes


@dataclass(frozen=True)
class Put:
    """PutItem of the model item built from `values`: every field, as it is to be stored.

    The caller has set what the write changes (the new version, timestamps); the item gets
    its keys, entity type and index keys from the values, and the write token.
    """

    values: Mapping[str, Any]


@dataclass(frozen=True)
class PutItem:
    """PutItem of an item already built (e.g. a versioned model's history item)."""

    item: Item


@dataclass(frozen=True)
class SetFields:
    """UpdateItem of `save(update_fields=...)`: set `names` to their `values`, keep the rest.

    A field whose value stores nothing (None) is removed. `values` are the object's field
    values (with the new version and timestamps). A whole object rewrites every index key
    and its resulting item's size is checked; a `partial` one (loaded with `only()`: `values`
    holds the loaded fields) rewrites the index keys built from `names`, each of whose
    fields must be in `values` (else QueryError), and its size is left to DynamoDB.
    """

    key: Key
    values: Mapping[str, Any]
    names: Sequence[str]
    partial: bool = False


@dataclass(frozen=True)
class Update:
    """UpdateItem of `changes` (plain values, `F` expressions, `UpdateOp`s).

    `current` holds the stored item's field values (index keys built from a changed field
    are recomputed from them); UpdatedAt fields are set to `now`. `version` is the version
    to store (None: incremented atomically). `return_new` asks for the item as stored
    (ReturnValues=ALL_NEW), left out inside a transaction.
    """

    key: Key
    changes: Mapping[str, Any]
    current: Mapping[str, Any]
    version: int | None
    return_new: bool = False


@dataclass(frozen=True)
class Delete:
    """DeleteItem of the item under `key`."""

    key: Key


@dataclass(frozen=True)
class Check:
    """A transaction's ConditionCheck on the item under `key` (it writes nothing)."""

    key: Key


@dataclass(frozen=True)
class Add:
    """UpdateItem of a companion item: `ADD` each of `deltas`, `SET` each of `sets`.

    Attribute names are dynorm's own (not fields); values are DynamoDB JSON for `sets`.
    """

    key: Key
    deltas: Mapping[str, int]
    sets: Mapping[str, Any] = field(default_factory=dict)


Write: TypeAlias = "Put | PutItem | SetFields | Update | Delete | Check | Add"

# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Absent:
    """No item is stored under the key (a create): `attribute_not_exists(pk)`."""


@dataclass(frozen=True)
class Loaded:
    """The stored item is the one loaded: at `version`, carrying `token` when it is known."""

    version: int
    token: str | None = None


@dataclass(frozen=True)
class Matches:
    """The stored item satisfies `filter()`-style lookups; with none, it exists."""

    lookups: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StillMatches:
    """The item a QuerySet read at `version` is still at it and still matches its filters."""

    state: QueryState
    version: int


@dataclass(frozen=True)
class Unconditional:
    """No condition: the write replaces (or deletes) whatever is stored."""


@dataclass(frozen=True)
class Owned:
    """A companion item is absent, or its owner (`_opk`, `_osk`) is one of `owners`."""

    owners: tuple[Key, ...]


Expectation: TypeAlias = "Absent | Loaded | Matches | StillMatches | Unconditional | Owned"

# --------------------------------------------------------------------------- items


def model_item(meta: Options, values: Mapping[str, Any], *, token: str | None) -> Item:
    """The complete item of a model's field values: keys, type, index keys, fields, token.

    Its size is checked as it will be stored (every attribute dynorm adds counts):
    `ItemTooLargeError` over 400 KB; a value DynamoDB cannot store is `InvalidValueError`.
    """
    codec = meta.codec
    assert codec is not None
    layout = meta.layout
    item: Item = layout.key_item(meta.primary_key(values))
    if layout.type is not None:
        item[layout.type] = {"S": meta.type_name}
    for attr, index_key in meta.index_keys(values).items():
        if index_key is not None:
            item[attr] = layout.av(attr, index_key)
    for f in codec.fields:
        try:
            av = f.encode(values[f.name])
        except ValueProblem as exc:
            raise invalid_value("store", meta.model_name, f.name, exc) from None
        if av is not None:
            item[f.attr] = av
    if token is not None and layout.token is not None:
        item[layout.token] = {"S": token}
    if meta.migrations is not None:
        item[SCHEMA_VERSION_ATTR] = {"N": str(meta.migrations.current)}
    check_item_size(item, meta.model_name)
    return item


def key_of(request: Request, meta: Options | None = None) -> Key:
    """The primary key a compiled Put/Update/Delete/ConditionCheck writes (or checks)."""
    body = request.params.get("Item") or request.params["Key"]
    return (DEFAULT if meta is None else meta.layout).key_of(body)


# --------------------------------------------------------------------------- compiling


def _version_is(meta: Options, version: int, ph: Placeholders) -> str:
    """The condition that the stored version is `version`.

    With no version attribute (locking off): the item still exists; the write is
    last-writer-wins but never recreates a deleted item.
    """
    attr = meta.layout.version
    if attr is None:
        return f"attribute_exists({ph.name(meta.layout.pk)})"
    return f"{ph.name(attr)} = {ph.value({'N': str(version)})}"


def _condition(meta: Options, expect: Expectation, ph: Placeholders) -> str | None:
    """The ConditionExpression of an expectation (None: unconditional)."""
    pk = meta.layout.pk
    if isinstance(expect, Absent):
        return f"attribute_not_exists({ph.name(pk)})"
    if isinstance(expect, Loaded):
        condition = _version_is(meta, expect.version, ph)
        attr = meta.layout.token
        if expect.token is not None and meta.layout.version is not None and attr is not None:
            condition += f" AND {ph.name(attr)} = {ph.value({'S': expect.token})}"
        return condition
    if isinstance(expect, Matches):
        if not expect.lookups:
            return f"attribute_exists({ph.name(pk)})"
        return " AND ".join(
            render_condition(meta, parse_lookup(meta, name, value), ph)
            for name, value in expect.lookups.items()
        )
    if isinstance(expect, StillMatches):
        condition = _version_is(meta, expect.version, ph)
        extra = compile_condition(expect.state, ph)
        return f"{condition} AND {extra}" if extra else condition
    if isinstance(expect, Owned):
        parts = [f"attribute_not_exists({ph.name(pk)})"]
        for pk, sk in expect.owners:
            owner_pk = f"{ph.name(OWNER_PK_ATTR)} = {ph.value({'S': pk})}"
            parts.append(f"({owner_pk} AND {ph.name(OWNER_SK_ATTR)} = {ph.value({'S': sk})})")
        return " OR ".join(parts)
    return None


def _stamp_condition(current: int, ph: Placeholders) -> str:
    """The item is stamped with schema version `current` (unstamped counts as version 1)."""
    name = ph.name(SCHEMA_VERSION_ATTR)
    same = f"{name} = {ph.value({'N': str(current)})}"
    return f"(attribute_not_exists({name}) OR {same})" if current == UNSTAMPED else same


def _set_fields(meta: Options, write: SetFields, ph: Placeholders, token: str | None) -> str:
    codec = meta.codec
    assert codec is not None
    plan = UpdatePlan()
    for name in write.names:
        if meta.attr_names[name] in meta.layout.key_attrs:
            continue  # the field is the key itself: the item's key already holds it
        target = ph.name(meta.attr_names[name])
        av = codec.encode_field(name, write.values[name])
        if av is None:
            plan.removes.append(target)
        else:
            plan.sets.append(f"{target} = {ph.value(dict(av))}")
    touched = set(write.names) if write.partial else None
    rewrite_index_keys(meta, write.values, touched, ph, plan, require=True)
    if not write.partial:
        model_item(meta, write.values, token=token)  # the resulting item's size, checked
    _set_token(meta, token, ph, plan)
    return plan.expression()


def _set_token(meta: Options, token: str | None, ph: Placeholders, plan: UpdatePlan) -> None:
    """Store the write token, where the layout has a token attribute."""
    attr = meta.layout.token
    if token is not None and attr is not None:
        plan.sets.append(f"{ph.name(attr)} = {ph.value({'S': token})}")


def _update(
    meta: Options, write: Update, ph: Placeholders, token: str | None, now: datetime | None
) -> UpdatePlan:
    if now is None:
        raise TypeError("compile_write(Update(...)) needs `now` (the time UpdatedAt fields get)")
    version = None if write.version is None else str(write.version)
    plan = plan_update(meta, write.changes, write.current, ph, new_version=version, now=now)
    _set_token(meta, token, ph, plan)
    return plan


def compile_write(
    meta: Options,
    write: Write,
    expect: Expectation,
    *,
    token: str | None = None,
    now: datetime | None = None,
    return_old: bool = True,
) -> Request:
    """Compile one write of a model's item into its Request (without TableName).

    Args:
        meta: The model's options (`Model._meta`).
        write: What to write (`Put`, `PutItem`, `SetFields`, `Update`, `Delete`, `Check`).
        expect: What the stored item must be (`Absent`, `Loaded`, `Matches`,
            `StillMatches`, `Unconditional`).
        token: The write token stored with the item (the layout's token attribute, `_wtok`)
            by `Put`, `SetFields` and `Update`; None, or a layout without a token attribute,
            stores none. Ignored by the others.
        now: The time UpdatedAt fields get; required by `Update` (the other writes take
            their timestamps from their values).
        return_old: Ask DynamoDB for the stored item when it refuses the condition
            (ReturnValuesOnConditionCheckFailure=ALL_OLD); only for conditional writes.

    The condition is rendered first, then the update expression, each from one placeholder
    allocator, so placeholder numbers follow that order.
    """
    return _compile(meta, write, expect, token, now, return_old)[0]


def compile_update(
    meta: Options,
    write: Update,
    expect: Expectation,
    *,
    token: str | None = None,
    now: datetime,
    return_old: bool = True,
) -> tuple[Request, dict[str, Any]]:
    """`compile_write` of an `Update`, with the plain values it stores.

    Those are the changes given as values (coerced to the fields' types) and the UpdatedAt
    fields (`now`): what an instance takes locally when DynamoDB returns no item.
    """
    return _compile(meta, write, expect, token, now, return_old)


def _compile(
    meta: Options,
    write: Write,
    expect: Expectation,
    token: str | None,
    now: datetime | None,
    return_old: bool,
) -> tuple[Request, dict[str, Any]]:
    ph = Placeholders()
    key = meta.layout.key_item
    condition = _condition(meta, expect, ph)
    params: dict[str, Any]
    plain: dict[str, Any] = {}
    if isinstance(write, Put):
        operation = "PutItem"
        params = {"Item": model_item(meta, write.values, token=token)}
    elif isinstance(write, PutItem):
        operation, params = "PutItem", {"Item": write.item}
    elif isinstance(write, SetFields):
        operation = "UpdateItem"
        params = {"Key": key(write.key), "UpdateExpression": _set_fields(meta, write, ph, token)}
    elif isinstance(write, Update):
        operation = "UpdateItem"
        plan = _update(meta, write, ph, token, now)
        params = {"Key": key(write.key), "UpdateExpression": plan.expression()}
        plain = plan.plain
    elif isinstance(write, Delete):
        operation, params = "DeleteItem", {"Key": key(write.key)}
    elif isinstance(write, Add):
        sets = [f"{ph.name(a)} = {ph.value(dict(v))}" for a, v in write.sets.items()]
        adds = [f"{ph.name(a)} {ph.value({'N': str(d)})}" for a, d in write.deltas.items()]
        text = (f"SET {', '.join(sets)} " if sets else "") + f"ADD {', '.join(adds)}"
        operation, params = "UpdateItem", {"Key": key(write.key), "UpdateExpression": text}
    else:
        operation, params = "ConditionCheck", {"Key": key(write.key)}
    if meta.migrations is not None and isinstance(write, (SetFields, Update)):
        # A partial write leaves the other attributes as they are: only an item already in
        # today's shape may take it (an older one is upgraded by a whole save or migrate).
        stamp = _stamp_condition(meta.migrations.current, ph)
        condition = stamp if condition is None else f"{condition} AND {stamp}"
    if condition is not None:
        params["ConditionExpression"] = condition
    if isinstance(write, Update) and write.return_new:
        params["ReturnValues"] = "ALL_NEW"
    if condition is not None and return_old:
        params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return Request(operation, ph.apply(params)), plain


# --------------------------------------------------------------------------- transactions

_ACTIONS = {
    "PutItem": "Put",
    "UpdateItem": "Update",
    "DeleteItem": "Delete",
    "ConditionCheck": "ConditionCheck",
}


def transact_actions(request: Request) -> list[dict[str, Any]]:
    """The TransactWriteItems actions of a compiled write (without TableName).

    A write becomes one action (`{"Put": params}`, ...; ReturnValues, which a transaction
    does not take, left out); a TransactWriteItems contributes its own actions.
    """
    if request.operation == "TransactWriteItems":
        return [dict(action) for action in request.params["TransactItems"]]
    body = {k: v for k, v in request.params.items() if k != "ReturnValues"}
    return [{_ACTIONS[request.operation]: body}]


def compile_transaction(requests: Sequence[Request]) -> Request:
    """Join compiled writes into one TransactWriteItems, in order (without TableName).

    Each action keeps its own placeholders. `ClientRequestToken` is the sender's to add.
    """
    return Request(
        "TransactWriteItems",
        {"TransactItems": [action for r in requests for action in transact_actions(r)]},
    )


def compile_with_companions(write: Request, companions: Sequence[Request]) -> Request:
    """A write and its companion writes as one TransactWriteItems (without TableName).

    The write's own actions come first (a single write is action 0), then the companions',
    in order; with no companions the write is returned as it is. A refusal's
    `CancellationReasons` line up with that order.
    """
    if not companions:
        return write
    return compile_transaction([write, *companions])
