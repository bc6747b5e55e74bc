"""The audit log (`Meta.audit`): who (`actor()`), and the entries written with each write.

An audited model's every create, update and delete writes audit entries in the same
TransactWriteItems as the object (see `_companions`): the write and its entries are stored
together or not at all. One entry is put in each of three logs, all items of the
`AuditEntry` model (`dynorm.audit`): the object's own log, the actor's log (when an actor is
set) and the day's log (UTC), so each of "this object", "this actor" and "this day" is one
Query. Each entry is put at a key of its own (the time and the write's token), on condition
that none is stored there: a retry never writes an entry twice, and a refused or cancelled
write writes none.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._item_size import check_item_size
from ._options import Options
from ._request import Request
from .exceptions import InvalidValueError
from .query._compile_write import Absent, PutItem, compile_write, model_item

if TYPE_CHECKING:
    from .models import Model

__all__ = ["actor", "audit_writes", "current_actor", "entry_model", "set_entry_model"]

_actor: ContextVar[str | None] = ContextVar("dynorm_actor", default=None)
_entry: list[type[Model]] = []
#: Field kinds whose changes an entry leaves out (dynorm sets them on every write).
_NOISE = ("created_at", "updated_at")


@contextmanager
def actor(name: str | None) -> Iterator[None]:
    """Name who makes the writes of this block (this thread or asyncio task only).

    `with dynorm.actor("user-42"): order.save()`: the audit entries of audited models
    written inside record `"user-42"`; outside any block the actor is None.
    """
    token = _actor.set(None if name is None else str(name))
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor() -> str | None:
    """The actor of the innermost `actor()` block, or None."""
    return _actor.get()


def set_entry_model(model: type[Model]) -> None:
    """Install the model audit entries are stored as (`dynorm.audit.AuditEntry`)."""
    _entry[:] = [model]


def entry_model() -> type[Model]:
    """The `AuditEntry` model (installed when `dynorm` is imported)."""
    return _entry[0]


def _changes(
    meta: Options, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The changed fields as a DynamoDB map: `{field: [old, new]}`, each as the field stores it."""
    codec = meta.codec
    assert codec is not None
    excluded = set(meta.audit_exclude) | {"version"}
    excluded |= {n for n, k in meta.field_kinds.items() if k in _NOISE}
    excluded |= set(meta.extra.get("blobs", {}))  # in S3: an entry records no blob content
    out: dict[str, Any] = {}
    for name in meta.field_names:
        if name in excluded:
            continue
        before = None if old is None else old.get(name)
        after = None if new is None else new.get(name)
        if before == after and old is not None and new is not None:
            continue
        pair = []
        for value in (before, after):
            try:
                av = codec.encode_field(name, value) if value is not None else None
            except (InvalidValueError, TypeError, ValueError):
                av = None
            pair.append(av if av is not None else {"NULL": True})
        if pair != [{"NULL": True}, {"NULL": True}]:
            out[name] = {"L": pair}
    return {"M": out}


def audit_writes(
    meta: Options,
    action: str,
    key: tuple[str, str],
    version: int,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    entry_id: str,
    now: datetime,
) -> list[Request]:
    """The entry Puts of one audited write (`action`: "create", "update" or "delete")."""
    model = entry_model()
    entry_meta = model._meta
    who = current_actor()
    logs = [f"object#{meta.type_name}#{key[0]}#{key[1]}", f"day#{now.date().isoformat()}"]
    if who is not None:
        logs.append(f"actor#{who}")
    changes = _changes(meta, old, new)
    out = []
    for log in logs:
        values = {
            "version": 1,
            "log": log,
            "at": now,
            "entry_id": entry_id,
            "entity": meta.type_name,
            "object_pk": key[0],
            "object_sk": key[1],
            "action": action,
            "object_version": version,
            "actor": who,
            "changes": {},
        }
        item = model_item(entry_meta, values, token=None)
        item["changes"] = changes
        check_item_size(item, entry_meta.model_name)
        out.append(compile_write(entry_meta, PutItem(item), Absent(), return_old=False))
    return out
