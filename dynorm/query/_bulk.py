"""Many items at once: `bulk_create` (conditional puts, or BatchWriteItem) and `bulk_get`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .._batch import batch_get, batch_write, in_parallel
from .._config import Table
from .._decode import wire_decoder
from .._exactly_once import bind, bind_all, new_write_token, set_stored_token, written_key
from .._executor import execute, prepare
from .._instance_writes import timestamps
from .._transaction_context import current_transaction
from .._write_op import WriteOp
from ..exceptions import DynormError, ItemExistsError, QueryError
from ..fields import utcnow
from ._compile_write import Put, Unconditional, compile_write, key_of
from .lookups import _coerce

if TYPE_CHECKING:
    from ..models import Model
    from .queryset import QuerySet

__all__ = ["bulk_create", "bulk_get", "same_error"]

M = TypeVar("M", bound="Model")


def same_error(exc: DynormError) -> Exception:
    """The `conflict` of a write whose refusal is reported as it is."""
    return exc


def _applier(
    obj: Any, overrides: dict[str, Any], token: str | None, table: Table | None
) -> Callable[[dict[str, Any]], None]:
    """Apply a bulk create's version, timestamps, write token and table to the written object."""

    def apply(_: dict[str, Any]) -> None:
        values = dict(overrides)
        obj._loaded_key = values.pop("_key")
        obj.__dict__.update(values)
        set_stored_token(obj, token)
        bind(obj, table)

    return apply


def _check_new(qs: QuerySet[M], objs: list[M]) -> None:
    meta = qs.model._meta
    for obj in objs:
        if type(obj) is not qs.model:
            raise QueryError(
                f"Cannot bulk_create a {type(obj).__name__} through {meta.model_name}.objects.",
                code="bad-query",
            )
        if obj.version != 0:
            raise QueryError(
                f"Cannot bulk_create a {meta.model_name} that is already saved "
                "(version > 0); call save() on it instead.",
                code="bad-query",
            )


def _create_ops(qs: QuerySet[M], objs: list[M], overwrite: bool) -> list[WriteOp]:
    """One write per object, built and checked (no two with one key) before any is sent."""
    meta = qs.model._meta
    ops: list[WriteOp] = []
    now = utcnow()
    for obj in objs:
        if overwrite:  # BatchWriteItem (or a transaction's Put): replaces a stored item
            overrides = {**timestamps(obj, True, now), "version": 1}
            token = new_write_token()
            values = {**obj.__dict__, **overrides}
            request = compile_write(meta, Put(values), Unconditional(), token=token)
            key = key_of(request, meta)
            applier = _applier(obj, {**overrides, "_key": key}, token, qs._binding())
            ops.append(WriteOp.of(request, qs.model, same_error, applier, token=token))
        else:
            ops.append(prepare(obj, ("save", None), partial(obj._save_op, None)))
    seen: set[tuple[str, str]] = set()
    for op in ops:
        written = written_key(op)  # the object's item (with companions: a transaction's)
        assert written is not None
        if written in seen:
            raise QueryError(
                f"Cannot bulk_create two {meta.model_name} objects with the same key "
                f"(key fields: {', '.join(sorted(meta.key_fields))}).",
                code="bad-query",
            )
        seen.add(written)
        op.table = qs._state.table
    return ops


def bulk_create(qs: QuerySet[M], objs: Iterable[M], *, overwrite: bool = False) -> list[M]:
    """`qs.bulk_create(objs, overwrite=...)` (documented on the QuerySet method)."""
    meta = qs.model._meta
    objs = list(objs)
    _check_new(qs, objs)
    if overwrite and meta.has_companions:
        raise QueryError(
            f"Cannot bulk_create {meta.model_name} with overwrite=True: BatchWriteItem "
            "writes single items, so a replaced item's Meta.unique guards, Meta.counted "
            "count and Meta.audit entries would not follow. Create new objects without "
            "overwrite, or save() each replaced object.",
            code="bad-query",
        )
    ops = _create_ops(qs, objs, overwrite)
    tx = current_transaction()
    if tx is not None:
        for op in ops:
            tx.add(op)  # conditional Puts (unless overwrite): sent with the block
        return objs
    if overwrite:
        puts = [{"PutRequest": {"Item": op.params["Item"]}} for op in ops]
        batch_write(qs._connection(), puts, meta.model_name, layout=meta.layout)
        for op in ops:
            op.on_success({})
        return objs
    results = in_parallel([partial(execute, op) for op in ops])
    failed = [(obj, r) for obj, r in zip(objs, results) if isinstance(r, Exception)]
    others = [exc for _, exc in failed if not isinstance(exc, ItemExistsError)]
    if others:
        raise others[0]
    if failed:
        existing = [(obj, exc) for obj, exc in failed if isinstance(exc, ItemExistsError)]
        raise ItemExistsError(
            f"Cannot bulk_create {len(existing)} of {len(objs)} {meta.model_name} objects: "
            f"an item with the same key already exists (key fields: "
            f"{', '.join(sorted(meta.key_fields))}). The other objects were created; "
            "`.objects` lists those that were not (still version 0). Pass overwrite=True "
            "to replace stored items.",
            model=meta.model_name,
            keys=[key for _, exc in existing for key in exc.keys],
            objects=[obj for obj, _ in existing],
        )
    return objs


def _wanted_key(qs: QuerySet[M], key: Any) -> tuple[str, str]:
    """The primary key of one `bulk_get` argument (a mapping of key fields, or an instance)."""
    meta = qs.model._meta
    if not isinstance(key, Mapping) and hasattr(type(key), "_meta"):
        key = {f: key.__dict__[f] for f in meta.key_fields}
    if not isinstance(key, Mapping):
        raise QueryError(
            f"Cannot bulk_get {meta.model_name} with a {type(key).__name__}: pass "
            "mappings of key fields (or model instances).",
            code="bad-query",
        )
    missing = sorted(f for f in meta.key_fields if f not in key)
    if missing:
        raise QueryError(
            f"Cannot bulk_get {meta.model_name}: a key lacks {', '.join(missing)}.",
            code="bad-query",
        )
    doing = f"bulk_get {meta.model_name} by {{}}"
    return meta.primary_key(
        {f: _coerce(meta, f, key[f], action=doing.format(f)) for f in meta.key_fields}
    )


def bulk_get(
    qs: QuerySet[M], keys: Sequence[Mapping[str, Any] | M], *, consistent: bool = False
) -> list[M | None]:
    """`qs.bulk_get(keys, consistent=...)` (documented on the QuerySet method)."""
    meta = qs.model._meta
    wanted = [_wanted_key(qs, key) for key in keys]
    found = batch_get(
        qs._connection(),
        wanted,
        meta.model_name,
        consistent=consistent,
        decode=wire_decoder(qs.model).decode_batch,
        layout=meta.layout,
    )
    out: list[M | None] = []
    given: set[tuple[str, str]] = set()
    for key_pair in wanted:
        item = found.get(key_pair)
        if not isinstance(item, dict):  # missing, or an instance the wire schema decoded
            obj = cast("M | None", item)
            if obj is not None and key_pair in given:  # a repeated key: its own instance
                obj = obj.model_copy(deep=True)
            given.add(key_pair)
            out.append(obj)
            continue
        ok = meta.layout.is_type(item, meta.type_name)
        out.append(qs.model.from_item(item) if ok else None)
    bind_all([obj for obj in out if obj is not None], qs._binding())
    return out
