"""Versioned models: the current item plus one immutable history item per version.

Layout in the table (same partition as the current item):

- current item: the model's own `pk`/`sk`, index keys, every field;
- history item per version n: `sk = "_history#<current sk>#<n, 12 digits>"`, entity type
  `"<type>#history"`, and a `payload` holding the stored attributes, gzip-compressed JSON as
  binary when `Meta.compress` (default), else a map. History items carry no index keys.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from typing_extensions import Self

from . import _persistence
from ._batch import batch_write
from ._codec import check_item_size, wire_bytes
from ._config import get_connection
from ._constants import PK, SK, TRANSACT_ITEMS_LIMIT, TYPE_ATTR, VERSION_ATTR
from ._transactions import current_transaction
from .exceptions import DynormError, QueryError, TransactionCanceledError, VersionConflictError
from .models import Model
from .query.compiler import Plan, Request
from .query.lookups import _coerce
from .query.placeholders import Placeholders
from .query.queryset import Manager, QuerySet

if TYPE_CHECKING:
    from ._persistence import WriteOp

__all__ = ["HistoryQuerySet", "VersionedModel", "VersionedQuerySet"]

V = TypeVar("V", bound="VersionedModel")

_HISTORY = "_history#"
_PAYLOAD = "payload"
_GZIP_MAGIC = b"\x1f\x8b"


def history_prefix(current_sk: str) -> str:
    """The sort-key prefix of every history item of one current item."""
    return f"{_HISTORY}{current_sk}#"


def history_sk(current_sk: str, version: int) -> str:
    """The sort key of version `version` (zero-padded: text order is numeric order)."""
    return f"{history_prefix(current_sk)}{version:012d}"


def _to_json(av: Any) -> Any:
    if isinstance(av, dict):
        return {k: _to_json(v) for k, v in av.items()}
    if isinstance(av, list):
        return [_to_json(v) for v in av]
    if isinstance(av, (bytes, bytearray)):
        return {"__b64__": base64.b64encode(av).decode("ascii")}
    return av


def _from_json(data: Any) -> Any:
    if isinstance(data, dict):
        if set(data) == {"__b64__"}:
            return base64.b64decode(data["__b64__"])
        return {k: _from_json(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_from_json(v) for v in data]
    return data


def history_item(model: type[VersionedModel], item: dict[str, Any], version: int) -> dict[str, Any]:
    """Build the history item of one version from the current item as it will be stored."""
    meta = model._meta
    body = {k: v for k, v in item.items() if k not in (PK, SK) and not k.startswith("gsi")}
    if meta.extra["raw"].get("compress", True):
        raw = json.dumps(_to_json(body), separators=(",", ":")).encode()
        payload: dict[str, Any] = {"B": gzip.compress(raw, mtime=0)}
    else:
        payload = {"M": body}
    out = {
        PK: item[PK],
        SK: {"S": history_sk(item[SK]["S"], version)},
        TYPE_ATTR: {"S": f"{meta.type_name}#history"},
        VERSION_ATTR: {"N": str(version)},
        _PAYLOAD: payload,
    }
    check_item_size(out, f"{meta.model_name} (history)")
    return out


def decode_history(model: type[V], item: dict[str, Any]) -> V:
    """Turn a history item back into a model instance of that version."""
    payload = item[_PAYLOAD]
    if "B" in payload:
        data = wire_bytes(payload["B"])
        if data[:2] == _GZIP_MAGIC:
            data = gzip.decompress(data)
        body: dict[str, Any] = _from_json(json.loads(data))
    else:
        body = dict(payload["M"])
    current_sk = item[SK]["S"][len(_HISTORY) :].rsplit("#", 1)[0]
    body[PK], body[SK] = item[PK], {"S": current_sk}
    return model.from_item(body)


def read_version(model: type[V], pk: str, sk: str, version: int) -> V:
    """Read version `version` of the object stored under (pk, sk): a consistent GetItem."""
    conn = get_connection()
    item = conn.send_raw(
        "GetItem",
        {
            "TableName": conn.table_name,
            "Key": {PK: {"S": pk}, SK: {"S": history_sk(sk, version)}},
            "ConsistentRead": True,
        },
    ).get("Item")
    if item is None:
        raise model.DoesNotExist(
            f"Cannot get version {version} of {model._meta.model_name}: it does not exist "
            "(never written, or pruned by Meta.max_versions)."
        )
    return decode_history(model, item)


class HistoryQuerySet(QuerySet[V]):
    """The versions of one versioned object, newest first (`obj.history()`)."""

    def _plan(self, state: Any = None) -> Plan:
        pk, sk = self._state.option("history")
        ph = Placeholders()
        params: dict[str, Any] = {
            "TableName": get_connection().table_name,
            "KeyConditionExpression": (
                f"{ph.name(PK)} = {ph.value({'S': pk})} AND "
                f"begins_with({ph.name(SK)}, {ph.value({'S': history_prefix(sk)})})"
            ),
        }
        if self._state.descending:
            params["ScanIndexForward"] = False
        if self._state.consistent:
            params["ConsistentRead"] = True
        return Plan([Request("Query", ph.apply(params))], None, False, (PK, SK), (self.model,))

    def _decode(self, item: dict[str, Any]) -> V:
        return decode_history(self.model, item)

    def _refuse(self, what: str) -> QueryError:
        return QueryError(
            f"Cannot {what} the history of {self.model.__name__}: history items hold "
            "compressed snapshots; iterate, slice, count or get(version=...) instead.",
            code="bad-query",
        )

    def filter(self, /, *args: Any, **lookups: Any) -> Self:  # noqa: D102 - refused
        raise self._refuse("filter")

    def exclude(self, /, *args: Any, **lookups: Any) -> Self:  # noqa: D102 - refused
        raise self._refuse("exclude")

    def using_gsi(self, name: str) -> Self:  # noqa: D102 - refused
        raise self._refuse("use an index on")

    def only(self, *fields: str) -> Self:  # noqa: D102 - refused
        raise self._refuse("project")

    def update(self, /, **values: Any) -> int:  # noqa: D102 - refused
        raise self._refuse("update")

    def delete(self) -> int:  # noqa: D102 - refused
        raise self._refuse("delete")


def _history_keys(model: type[VersionedModel], pk: str, sk: str) -> list[dict[str, Any]]:
    qs: HistoryQuerySet[Any] = HistoryQuerySet(model)
    qs = qs._clone(extra=(("history", (pk, sk)),))
    return [{PK: item[PK], SK: item[SK]} for item, _ in qs._raw(qs._plan())]


class VersionedQuerySet(QuerySet[V]):
    """The QuerySet of versioned models: `get(<key>, version=n)` reads one version."""

    def get(self, /, *args: Any, version: int | None = None, **lookups: Any) -> V:
        """Return the current object, or version `version` of it when given.

        Raises:
            DoesNotExist: No such object (or no such version).
        """
        if version is None:
            return super().get(*args, **lookups)
        meta = self.model._meta
        missing = sorted(f for f in meta.key_fields if f not in lookups)
        if args or missing or set(lookups) - meta.key_fields:
            raise QueryError(
                f"Cannot get a version of {meta.model_name} without exactly its key fields "
                f"({', '.join(sorted(meta.key_fields))}).",
                code="bad-query",
            )
        pk, sk = meta.primary_key({f: _coerce(meta, f, v) for f, v in lookups.items()})
        return read_version(self.model, pk, sk, version)

    def update(self, /, **values: Any) -> int:
        """Refused: versioned objects change through save(), which writes their history."""
        raise QueryError(
            f"Cannot update {self.model.__name__} objects in bulk: each change must write a "
            "history item. Load each object, change it and save() it.",
            code="bad-query",
        )

    def delete(self) -> int:
        """Delete the matching objects and all their history; return how many objects."""
        if not self._state.where and not self._state.explicit_all:
            return super().delete()  # raises: an unfiltered delete needs .all()
        plan = self._plan(dataclasses.replace(self._state, projection=()))
        keys = [(item[PK]["S"], item[SK]["S"]) for item, _ in self._raw(plan)]
        requests = []
        for pk, sk in keys:
            requests.append({"DeleteRequest": {"Key": {PK: {"S": pk}, SK: {"S": sk}}}})
            requests += [{"DeleteRequest": {"Key": k}} for k in _history_keys(self.model, pk, sk)]
        tx = current_transaction()
        if tx is not None:  # join the transaction: one Delete action per item and version
            for request in requests:
                key = request["DeleteRequest"]["Key"]
                tx.add(
                    _persistence.WriteOp(
                        "DeleteItem", {"Key": key}, self.model, lambda e: e, lambda _: None
                    )
                )
            return len(keys)
        batch_write(get_connection(), requests, self.model.__name__)
        return len(keys)

    def bulk_create(self, objs: Iterable[V]) -> list[V]:
        """Refused: use create() / save(), which write the first history item atomically."""
        raise QueryError(
            f"Cannot bulk_create {self.model.__name__}: a versioned object and its first "
            "history item are written in one transaction; use create() for each.",
            code="bad-query",
        )


class VersionedModel(Model):
    """A model that keeps every saved version: `history()`, `revert(n)`, `diff(n)`.

    Each save writes the current item and a history item in one TransactWriteItems,
    conditional on the loaded version. `Meta.max_versions` prunes the oldest history in the
    same transaction; `Meta.compress` (default True) stores history payloads gzip-compressed.
    """

    objects: ClassVar[Manager] = VersionedQuerySet.as_manager()

    class Meta:  # noqa: D106 - abstract base
        abstract = True

    def _save_op(self, update_fields: Iterable[str] | None) -> WriteOp:
        meta = self._meta
        if update_fields is not None:
            raise QueryError(
                f"Cannot save {meta.model_name} with update_fields: every version stores the "
                "whole object. Call save() without it.",
                code="bad-query",
            )
        base = _persistence.save_op(self)
        if base.operation != "PutItem":
            raise QueryError(
                f"Cannot change a key field of the saved {meta.model_name}: its history is "
                "stored under the current key. Create a new object instead.",
                code="bad-query",
            )
        new_version = self.version + 1
        item = base.params["Item"]
        history = history_item(type(self), item, new_version)
        ph = Placeholders()
        actions: list[dict[str, Any]] = [
            {"Put": base.params},
            {
                "Put": ph.apply(
                    {"Item": history, "ConditionExpression": f"attribute_not_exists({ph.name(PK)})"}
                )
            },
        ]
        keep = meta.extra["raw"].get("max_versions")
        if keep is not None and new_version > int(keep):
            old = history_sk(item[SK]["S"], new_version - int(keep))
            actions.append({"Delete": {"Key": {PK: item[PK], SK: {"S": old}}}})
        model = meta.model_name
        expected = self.version

        def conflict(exc: DynormError) -> Exception | None:
            if isinstance(exc, TransactionCanceledError) and exc.reasons[:1] != [
                "ConditionalCheckFailed"
            ]:
                return VersionConflictError(
                    f"Cannot save {model}: version {new_version} was written concurrently. "
                    "Reload it with refresh_from_db() and apply the change again.",
                    model=model,
                    expected_version=expected,
                    aws_code=exc.aws_code,
                    response=exc.response,
                )
            return base.conflict(exc)

        return _persistence.WriteOp(
            "TransactWriteItems", {"TransactItems": actions}, type(self), conflict, base.on_success
        )

    def _delete_op(self) -> WriteOp:
        op = _persistence.delete_op(self)
        pk, sk = op.params["Key"][PK]["S"], op.params["Key"][SK]["S"]
        base_success = op.on_success
        model = type(self)
        history = _history_keys(model, pk, sk)

        def on_success(response: dict[str, Any]) -> None:
            base_success(response)
            # Whatever the transaction did not cover (a long history, or versions pruned
            # differently since) is deleted in batches; normally nothing is left.
            left = _history_keys(model, pk, sk)
            batch_write(
                get_connection(), [{"DeleteRequest": {"Key": k}} for k in left], model.__name__
            )

        if len(history) + 1 > TRANSACT_ITEMS_LIMIT:
            op.on_success = on_success
            return op
        # The current item and its whole history go in one transaction: all or nothing.
        actions = [{"Delete": op.params}] + [{"Delete": {"Key": k}} for k in history]
        return _persistence.WriteOp(
            "TransactWriteItems", {"TransactItems": actions}, model, op.conflict, on_success
        )

    def _update_op(self, values: dict[str, Any]) -> WriteOp:
        raise QueryError(
            f"Cannot update() a {self._meta.model_name}: every version stores the whole "
            "object. Assign the fields and call save().",
            code="bad-query",
        )

    def history(self) -> HistoryQuerySet[Self]:
        """Every stored version of this object (current included), newest first.

        DynamoDB: one Query on the object's partition (`begins_with(sk, "_history#...")`).
        """
        pk, sk = self._loaded_key or self._meta.primary_key(self.__dict__)
        qs: HistoryQuerySet[Self] = HistoryQuerySet(type(self))
        return qs._clone(extra=(("history", (pk, sk)),), descending=True)

    def _version(self, version: int) -> Self:
        pk, sk = self._loaded_key or self._meta.primary_key(self.__dict__)
        return read_version(type(self), pk, sk, version)

    def revert(self, version: int) -> None:
        """Write a new version whose content is that of `version` (conditional save)."""
        old = self._version(version)
        meta = self._meta
        skip = {"version", *meta.key_fields}
        skip |= {n for n, k in meta.field_kinds.items() if k in ("created_at", "updated_at")}
        for name in meta.field_names:
            if name not in skip:
                self.__dict__[name] = old.__dict__[name]
        self.save()

    def diff(self, version: int) -> dict[str, tuple[Any, Any]]:
        """Fields that differ between this object and `version`: {field: (this, that)}."""
        old = self._version(version)
        skip = {"version"} | {n for n, k in self._meta.field_kinds.items() if k == "updated_at"}
        return {
            name: (self.__dict__.get(name), old.__dict__.get(name))
            for name in self._meta.field_names
            if name not in skip and self.__dict__.get(name) != old.__dict__.get(name)
        }
