"""Companion items: the writes that ride in the same transaction as an object's write.

A model whose writes carry companions (the guard items of `Meta.unique`, the counter
shards of `Meta.counted`, the entries of `Meta.audit`) has each of
its instance writes (create, save, update, delete, a key move, a versioned save) turned
into one TransactWriteItems by `attach`, called by the executor's `prepare()` on the write
its model built: the write's own actions first, then the companions'
(`compile_with_companions`). So the object and its companions are written together or not
at all, whether the write is sent alone, joins a `transaction()` block, or is retried.

Exactly once still holds: the object's own action keeps its condition and its write token,
and `conflict` reads a refusal of the object's own actions exactly as the plain write's
`conflict` did (only those actions' reasons are passed on), so a retried create, save or
delete whose first attempt was applied is recognised by its token (or, for a delete, by the
item being gone), never reported as a conflict, and never writes its companions twice: a
refused transaction writes nothing. Companions are computed from the stored item, read
(consistently) before the write of an object that is already stored; the object's own
condition (its loaded version and token) makes sure that this read is what the write
replaces.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._audit import audit_writes
from ._constants import TRANSACT_ITEMS_LIMIT
from ._counters import count_write
from ._exactly_once import CCF, carrying, new_write_token, refused_items, stored_item
from ._instance_writes import local_update
from ._options import UniqueConstraint
from ._request import Request
from ._unique import guard_writes, violation
from ._write_op import WriteOp
from .exceptions import DynormError, QueryError, TransactionCanceledError
from .fields import utcnow
from .query._compile_write import compile_with_companions, transact_actions
from .query.expressions import UpdateOp
from .query.lookups import _coerce

if TYPE_CHECKING:
    from .models import Model

__all__ = ["attach", "explain", "is_companion_write"]

Key = tuple[str, str]
#: How a refused companion action reads (None: nothing to say beyond the cancellation).
Explain = Callable[[DynormError], "Exception | None"]


def _new_values(
    instance: Model, call: tuple[Any, ...], old: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The field values the write stores (None: a delete), as far as companions need them."""
    meta = instance._meta
    kind = call[0]
    if kind == "delete":
        return None
    current = dict(instance.__dict__)
    if kind == "save" and call[1] is None or old is None:
        return current
    out = dict(old)
    if kind == "save":  # save(update_fields=...): those fields, the others as stored
        out.update({name: current[name] for name in call[1] if name in current})
        return out
    for name, value in call[1].items():  # update(**values)
        if isinstance(value, UpdateOp):
            if any(name in c.fields for c in meta.unique):
                raise QueryError(
                    f"Cannot update {meta.model_name}.{name} with an F() expression: it is "
                    "a Meta.unique field, whose new value must be known to take its guard. "
                    "Pass the new value itself.",
                    code="bad-query",
                )
            continue
        out[name] = _coerce(meta, name, value)
    return out


def _audited_values(
    instance: Model,
    call: tuple[Any, ...],
    old: Mapping[str, Any] | None,
    new: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """The values an audited write stores, `F()` results included (computed from `old`)."""
    if new is None or call[0] != "update" or old is None:
        return new
    ops = {n: v for n, v in call[1].items() if isinstance(v, UpdateOp)}
    if not ops:
        return new
    stored = type(instance).model_construct(**old)
    return {**new, **local_update(stored, ops, {})}


def _trimmed(exc: DynormError, count: int) -> DynormError:
    """The refusal as the object's own `count` actions saw it (their reasons only)."""
    if not isinstance(exc, TransactionCanceledError):
        return exc
    response = dict(exc.response or {})
    response["CancellationReasons"] = list(response.get("CancellationReasons", []))[:count]
    return TransactionCanceledError(
        str(exc), reasons=exc.reasons[:count], aws_code=exc.aws_code, response=response
    )


def explain(op: WriteOp, reasons: list[str | None], exc: DynormError) -> Exception | None:
    """The typed error of a write whose companion was refused (None: none applies).

    `reasons` are the cancellation reasons of the op's own actions, in order (inside a
    `transaction()` block, the slice of that op).
    """
    explainers: list[Explain | None] = op.extra.get("companion_explain", [])
    count = int(op.extra.get("companions", 0))
    for reason, explainer in zip(reasons[count:], explainers):
        if reason == CCF and explainer is not None:
            return explainer(exc)
    return None


def attach(op: WriteOp, instance: Model, call: tuple[Any, ...]) -> WriteOp:
    """The write `op` of `instance` with its companion writes, as one TransactWriteItems.

    `op` is returned as it is when the model has no companions or this write needs none
    (a save that changes no unique value).
    """
    meta = instance._meta
    if not meta.has_companions or op.operation == "ConditionCheck":
        return op
    creating = call[0] == "save" and instance.version == 0
    stored_key = instance._loaded_key or meta.primary_key(instance.__dict__)
    # Guards to release and audited changes come from the stored item: read it (counters
    # need nothing).
    reads = meta.unique or meta.audit
    item = None if creating or not reads else stored_item(instance, stored_key)
    assert meta.codec is not None
    old = meta.codec.decode(item) if item is not None else None
    new = _new_values(instance, call, old)
    new_key: Key | None = None
    if new is not None:  # a whole save may move the object; other writes keep its key
        whole = call[0] == "save" and call[1] is None
        new_key = meta.primary_key(instance.__dict__) if whole else stored_key
    companions: list[Request] = []
    explainers: list[Explain | None] = []
    for request, constraint in guard_writes(
        meta, old, new, None if creating else stored_key, new_key
    ):
        companions.append(request)
        explainers.append(_explainer(meta, constraint))
    if meta.counted and (creating or call[0] == "delete"):
        counted_key = new_key if creating else stored_key
        assert counted_key is not None
        companions.append(count_write(meta, counted_key, 1 if creating else -1))
        explainers.append(None)
    if meta.audit:
        action = "create" if creating else ("delete" if call[0] == "delete" else "update")
        version = instance.version if action == "delete" else instance.version + 1
        where = new_key if new_key is not None else stored_key
        entry_id = op.token or new_write_token()
        after = _audited_values(instance, call, old, new)
        for entry in audit_writes(meta, action, where, version, old, after, entry_id, utcnow()):
            companions.append(entry)
            explainers.append(None)
    if not companions:
        return op
    own = len(transact_actions(op.request))
    if own + len(companions) > TRANSACT_ITEMS_LIMIT:
        raise QueryError(
            f"Cannot write {meta.model_name}: the write and its companion items (unique "
            f"guards) would take {own + len(companions)} actions, over DynamoDB's "
            f"{TRANSACT_ITEMS_LIMIT} in one transaction.",
            code="bad-query",
        )
    request = compile_with_companions(op.request, companions)
    base = op.conflict
    token = op.token
    layout = meta.layout

    def conflict(exc: DynormError) -> Exception | None:
        reasons = exc.reasons if isinstance(exc, TransactionCanceledError) else [CCF]
        if CCF in reasons[:own] or carrying(refused_items(exc), token, layout) is not None:
            return base(_trimmed(exc, own))
        found = explain(companion_op, list(reasons), exc)
        return found if found is not None else exc

    companion_op = WriteOp.of(
        request,
        op.model,
        conflict,
        op.on_success,
        extra={**op.extra, "companions": own, "companion_explain": explainers},
        table=op.table,
        token=op.token,
        sent=op.sent,
    )
    return companion_op


def _explainer(meta: Any, constraint: UniqueConstraint) -> Explain:
    def read(exc: DynormError) -> Exception:
        return violation(meta, constraint, exc)

    return read


def is_companion_write(op: WriteOp) -> bool:
    """Whether `op` carries companion writes (sent as one TransactWriteItems)."""
    return bool(op.extra.get("companions"))
