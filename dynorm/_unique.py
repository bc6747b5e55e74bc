"""Unique constraints on non-key fields (`Meta.unique`): guard items and their writes.

The guard of an object for a constraint is one item whose key renders the constraint's
values through the key codec (`_UNIQUE#<type>#<fields>#<values>`, sort key `_UNIQUE`) and
which names its owner, the object's primary key (`_opk`, `_osk`). It is written in the same
TransactWriteItems as the object (`_companions`):

- a create puts it, on condition that no guard has that key or that it already names the
  object (the retry of our own create);
- a save that changes the values (or moves the object to another key) deletes the old guard
  (if it is ours) and puts the new one; a save that changes neither writes no guard;
- a delete deletes it (if it is ours).

A value that is None takes no guard (as SQL's NULLs, two objects may both have none).
`get_by_unique` reads the guard, then the object it names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._codec import Item
from ._connection import Connection
from ._constants import GUARD_SK, OWNER_PK_ATTR, OWNER_SK_ATTR
from ._options import Options, UniqueConstraint
from ._request import Request
from .exceptions import DynormError, QueryError, UniqueViolationError
from .query._compile_write import Delete, Owned, PutItem, compile_write
from .query.lookups import _coerce

__all__ = [
    "constraint_for",
    "guard_key",
    "guard_owner",
    "guard_type",
    "guard_writes",
    "violation",
]

Key = tuple[str, str]


def guard_type(meta: Options) -> str:
    """The entity type of a model's guard items (`<type>#unique`: never a model's own)."""
    return f"{meta.type_name}#unique"


def guard_key(meta: Options, constraint: UniqueConstraint, values: Mapping[str, Any]) -> Key | None:
    """The key of the guard of these values (None when one of them is None: no guard)."""
    if any(values.get(name) is None for name in constraint.fields):
        return None
    pk = meta.key_value(constraint.template, values, f"unique guard ({constraint.describe()})")
    assert pk is not None
    return pk, GUARD_SK


def _guard_item(meta: Options, key: Key, owner: Key) -> Item:
    layout = meta.layout  # text keys and a type attribute (checked at class creation)
    assert layout.sk is not None and layout.type is not None
    return {
        layout.pk: {"S": key[0]},
        layout.sk: {"S": key[1]},
        layout.type: {"S": guard_type(meta)},
        OWNER_PK_ATTR: {"S": owner[0]},
        OWNER_SK_ATTR: {"S": owner[1]},
    }


def guard_writes(
    meta: Options,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    old_owner: Key | None,
    new_owner: Key | None,
) -> list[tuple[Request, UniqueConstraint]]:
    """The guard writes of one write of an object, each with the constraint it enforces.

    `old` are the stored values (None: nothing stored), `new` the values the write stores
    (None: a delete); the owners are the object's primary key before and after.
    """
    out: list[tuple[Request, UniqueConstraint]] = []
    for constraint in meta.unique:
        before = guard_key(meta, constraint, old) if old is not None else None
        after = guard_key(meta, constraint, new) if new is not None else None
        if before == after and old_owner == new_owner:
            continue
        if before is not None and before != after and old_owner is not None:
            release = compile_write(meta, Delete(before), Owned((old_owner,)), return_old=False)
            out.append((release, constraint))
        if after is not None and new_owner is not None:
            owners = tuple(dict.fromkeys(o for o in (new_owner, old_owner) if o is not None))
            item = _guard_item(meta, after, new_owner)
            take = compile_write(meta, PutItem(item), Owned(owners), return_old=False)
            out.append((take, constraint))
    return out


def violation(meta: Options, constraint: UniqueConstraint, exc: DynormError) -> Exception:
    """The error of a refused guard write: another object holds the values."""
    fields = constraint.describe()
    return UniqueViolationError(
        f"Cannot write {meta.model_name}: another {meta.model_name} already has the same "
        f"value of the unique field(s) {fields} (Meta.unique). Nothing was written; choose "
        f"another value, or load the object that holds it with "
        f"{meta.model_name}.objects.get_by_unique({constraint.fields[0]}=...).",
        model=meta.model_name,
        fields=constraint.fields,
        aws_code=exc.aws_code,
        response=exc.response,
    )


def constraint_for(meta: Options, names: Sequence[str]) -> UniqueConstraint:
    """The constraint on exactly these fields, or QueryError naming the declared ones."""
    for constraint in meta.unique:
        if set(constraint.fields) == set(names):
            return constraint
    declared = "; ".join(f"({c.describe()})" for c in meta.unique) or "none"
    raise QueryError(
        f"Cannot get_by_unique {meta.model_name} on ({', '.join(sorted(names))}): no "
        f"Meta.unique constraint has exactly these fields (declared: {declared}).",
        code="bad-query",
    )


def guard_owner(
    conn: Connection, meta: Options, values: Mapping[str, Any], *, consistent: bool
) -> tuple[UniqueConstraint, dict[str, Any], Key | None]:
    """Read the guard of these values: (constraint, coerced values, owner key or None)."""
    constraint = constraint_for(meta, list(values))
    coerced = {name: _coerce(meta, name, values[name]) for name in constraint.fields}
    key = guard_key(meta, constraint, coerced)
    if key is None:
        return constraint, coerced, None
    params: dict[str, Any] = {
        "TableName": conn.table_name,
        "Key": meta.layout.key_item(key),
    }
    if consistent:
        params["ConsistentRead"] = True
    item = conn.send("GetItem", params).get("Item")
    if not item or meta.layout.type_of(item) != guard_type(meta):
        return constraint, coerced, None
    return constraint, coerced, (item[OWNER_PK_ATTR]["S"], item[OWNER_SK_ATTR]["S"])
