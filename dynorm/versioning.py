"""Versioned models: the current item plus one immutable history item per version.

Layout in the table (same partition as the current item):

- current item: the model's own `pk`/`sk`, index keys, every field;
- history item per version n: `sk = "_history#" + escape(current sk) + "!" + n` (n
  zero-padded to 12 digits), entity type `"<type>#history"`, and a `payload` holding the
  stored attributes, gzip-compressed JSON as binary when `Meta.compress` (default), else a
  map. History items carry no index keys.

The current sort key is embedded with the key codec's escape (`dynorm._keys.escape`), whose
output never holds a character up to `$` other than its own `$XX` escapes. So:

- the first `!` after the prefix ends the embedded key: one object's history prefix is never
  a prefix of another object's history keys (`"a"` and `"a#b"` included), and a history key
  parses back into exactly one (current sk, version);
- no item rendered from field values can take a history key: values never hold a raw `!`,
  and key templates follow each field with `#`, never `!` (a template would have to spell
  the object's escaped key, `!` included, as literal text).
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field, PrivateAttr
from typing_extensions import Self, dataclass_transform

from . import _persistence
from ._codec import check_item_size, from_wire, wire_bytes
from ._config import connection_for, table_name_for
from ._constants import (
    PK,
    SK,
    SORT_KEY_LIMIT,
    TRANSACT_ITEMS_LIMIT,
    TYPE_ATTR,
    VERSION_ATTR,
    WRITE_TOKEN_ATTR,
)
from ._keys import SEPARATOR, escape, unescape
from ._transactions import current_transaction
from .exceptions import (
    ConfigurationError,
    DynormError,
    InvalidValueError,
    QueryError,
    TransactionCanceledError,
    VersionConflictError,
)
from .fields import Compressed
from .models import Model, ModelMeta
from .query.compiler import Plan, Request, compile_condition
from .query.lookups import _coerce
from .query.placeholders import Placeholders
from .query.queryset import Manager, QuerySet

if TYPE_CHECKING:
    from ._persistence import WriteOp

__all__ = ["HistoryQuerySet", "VersionedModel", "VersionedQuerySet"]

V = TypeVar("V", bound="VersionedModel")

logger = logging.getLogger("dynorm")

_HISTORY = "_history" + SEPARATOR
#: Ends the embedded current sort key: escaped text never holds it, templates never render it.
_END = "!"
_DIGITS = 12
_PAYLOAD = "payload"
_GZIP_MAGIC = b"\x1f\x8b"
#: Bytes a history sort key adds to the escaped current sort key ("_history#", "!", digits).
HISTORY_KEY_OVERHEAD = len(_HISTORY) + len(_END) + _DIGITS


# --------------------------------------------------------------------------- history keys


def history_prefix(current_sk: str) -> str:
    """The sort-key prefix of every history item of one current item (and of no other)."""
    return f"{_HISTORY}{escape(current_sk)}{_END}"


def history_sk(current_sk: str, version: int) -> str:
    """The sort key of version `version` (zero-padded: text order is numeric order)."""
    if not 0 <= version < 10**_DIGITS:
        raise ValueError(f"a history version must be between 0 and {10**_DIGITS - 1}")
    return f"{history_prefix(current_sk)}{version:0{_DIGITS}d}"


def parse_history_sk(text: str) -> tuple[str, int]:
    """Split a history sort key into (current sk, version); ValueError if it is not one."""
    if not text.startswith(_HISTORY):
        raise ValueError("not a history sort key")
    escaped, end, digits = text[len(_HISTORY) :].partition(_END)
    if not end or len(digits) != _DIGITS or not (digits.isascii() and digits.isdigit()):
        raise ValueError("not a history sort key")
    current = unescape(escaped)
    if escape(current) != escaped:  # a text escape() never writes (e.g. a bare "$")
        raise ValueError("not a history sort key")
    return current, int(digits)


def _checked_history_sk(model: type[VersionedModel], current_sk: str, version: int) -> str:
    """`history_sk`, refused (before anything is sent) when it is over DynamoDB's limit."""
    text = history_sk(current_sk, version)
    size = len(text.encode("utf-8"))
    if size > SORT_KEY_LIMIT:
        meta = model._meta
        assert meta.sk is not None
        fields = ", ".join(meta.sk.fields) or "the sort key template"
        raise InvalidValueError(
            f"Cannot build the history sort key of {meta.model_name}: it would be "
            f"{size} bytes, over DynamoDB's {SORT_KEY_LIMIT}-byte limit. A versioned model's "
            f"history key is the sort key escaped (each character up to '$' takes 3 bytes) "
            f"plus {HISTORY_KEY_OVERHEAD} bytes, so its sort key must stay about "
            f"{HISTORY_KEY_OVERHEAD} bytes (or more, once escaped) under the limit; shorten "
            f"{fields}.",
            model=meta.model_name,
        )
    return text


def _history_type(model: type[VersionedModel]) -> str:
    return f"{model._meta.type_name}#history"


# --------------------------------------------------------------------------- payloads


def _to_json(av: Mapping[str, Any]) -> dict[str, Any]:
    """One attribute value as JSON: its type tag kept, bytes as base64 text.

    The tag says how to read the value back, so no content is ever taken for a marker (a
    map key such as "__b64__" is just a key): `_from_json(_to_json(av)) == av` for every
    attribute value.
    """
    ((tag, value),) = av.items()
    if tag == "B":
        return {"B": base64.b64encode(wire_bytes(value)).decode("ascii")}
    if tag == "BS":
        return {"BS": [base64.b64encode(wire_bytes(v)).decode("ascii") for v in value]}
    if tag == "M":
        return {"M": {k: _to_json(v) for k, v in value.items()}}
    if tag == "L":
        return {"L": [_to_json(v) for v in value]}
    return {tag: value}


def _from_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """The attribute value `_to_json` wrote."""
    ((tag, value),) = data.items()
    if tag == "B":
        return {"B": base64.b64decode(value)}
    if tag == "BS":
        return {"BS": [base64.b64decode(v) for v in value]}
    if tag == "M":
        return {"M": {k: _from_json(v) for k, v in value.items()}}
    if tag == "L":
        return {"L": [_from_json(v) for v in value]}
    return {tag: value}


def _payload_json(body: Mapping[str, Any]) -> bytes:
    return json.dumps({k: _to_json(v) for k, v in body.items()}, separators=(",", ":")).encode()


def _payload_body(raw: bytes) -> dict[str, Any]:
    return {k: _from_json(v) for k, v in json.loads(raw).items()}


def history_item(model: type[VersionedModel], item: dict[str, Any], version: int) -> dict[str, Any]:
    """Build the history item of one version from the current item as it will be stored."""
    meta = model._meta
    # Leave out exactly the keys (a field may well be named "gsize": it is kept).
    keys = {PK, SK, *(a for i in meta.indexes.values() for a in (i.pk_attr, i.sk_attr))}
    body = {k: v for k, v in item.items() if k not in keys}
    if meta.extra["raw"].get("compress", True):
        payload: dict[str, Any] = {"B": gzip.compress(_payload_json(body), mtime=0)}
    else:
        payload = {"M": body}
    out = {
        PK: item[PK],
        SK: {"S": _checked_history_sk(model, item[SK]["S"], version)},
        TYPE_ATTR: {"S": _history_type(model)},
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
        body = _payload_body(data)
    else:
        body = dict(payload["M"])
    current_sk, _ = parse_history_sk(item[SK]["S"])
    body[PK], body[SK] = item[PK], {"S": current_sk}
    return model.from_item(body)


def read_version(model: type[V], pk: str, sk: str, version: int) -> V:
    """Read version `version` of the object stored under (pk, sk): a consistent GetItem."""
    name = model._meta.model_name
    if isinstance(version, bool) or not isinstance(version, int):
        raise QueryError(
            f"Cannot get a version of {name}: pass the version as an int.", code="bad-query"
        )
    if not 1 <= version < 10**_DIGITS:
        raise model.DoesNotExist(
            f"Cannot get that version of {name}: versions are numbered from 1."
        )
    conn = connection_for(model)
    item = conn.send_raw(
        "GetItem",
        {
            "TableName": conn.table_name,
            "Key": {PK: {"S": pk}, SK: {"S": _checked_history_sk(model, sk, version)}},
            "ConsistentRead": True,
        },
    ).get("Item")
    if item is None or item.get(TYPE_ATTR, {}).get("S") != _history_type(model):
        raise model.DoesNotExist(
            f"Cannot get version {version} of {name}: it does not exist "
            "(never written, or pruned by Meta.max_versions)."
        )
    return decode_history(model, item)


def _history_query(
    model: type[VersionedModel],
    pk: str,
    sk: str,
    *,
    upto: int | None = None,
    keys_only: bool = False,
    consistent: bool = False,
    descending: bool = False,
) -> dict[str, Any]:
    """The Query of one object's history items (versions up to `upto` when given).

    The key condition selects this object's history keys only (the prefix is injective);
    the entity-type filter also keeps out any other model's item that happens to sort there.
    """
    ph = Placeholders()
    if upto is None:
        # Computed like a full key so a sort key too long for history is refused the same way.
        prefix = _checked_history_sk(model, sk, 0)[:-_DIGITS]
        condition = f"begins_with({ph.name(SK)}, {ph.value({'S': prefix})})"
    else:
        low, high = (_checked_history_sk(model, sk, n) for n in (0, upto))
        condition = f"{ph.name(SK)} BETWEEN {ph.value({'S': low})} AND {ph.value({'S': high})}"
    params: dict[str, Any] = {
        "KeyConditionExpression": f"{ph.name(PK)} = {ph.value({'S': pk})} AND {condition}",
        "FilterExpression": f"{ph.name(TYPE_ATTR)} = {ph.value({'S': _history_type(model)})}",
    }
    if keys_only:
        params["ProjectionExpression"] = f"{ph.name(PK)}, {ph.name(SK)}"
    if consistent:
        params["ConsistentRead"] = True
    if descending:
        params["ScanIndexForward"] = False
    return ph.apply(params)


def _history_keys(
    model: type[VersionedModel],
    pk: str,
    sk: str,
    *,
    upto: int | None = None,
    limit: int | None = None,
    consistent: bool = False,
) -> list[dict[str, Any]]:
    """The keys of one object's history items, oldest first (at most `limit`)."""
    conn = connection_for(model)
    params = {
        **_history_query(model, pk, sk, upto=upto, keys_only=True, consistent=consistent),
        "TableName": conn.table_name,
    }
    keys: list[dict[str, Any]] = []
    while limit is None or len(keys) < limit:
        if limit is not None:  # a Query reads (and bills) whole items, payloads included
            params["Limit"] = limit - len(keys)
        response = conn.send_raw("Query", params)
        keys += [{PK: item[PK], SK: item[SK]} for item in response.get("Items", [])]
        lek = response.get("LastEvaluatedKey")
        if not lek:
            break
        params["ExclusiveStartKey"] = lek
    return keys if limit is None else keys[:limit]


class HistoryQuerySet(QuerySet[V]):
    """The versions of one versioned object, newest first (`obj.history()`)."""

    def _plan(self, state: Any = None) -> Plan:
        pk, sk = self._state.option("history")
        params = _history_query(
            self.model,
            pk,
            sk,
            consistent=self._state.consistent,
            descending=self._state.descending,
        )
        params["TableName"] = table_name_for(self.model, self._state.table)
        return Plan([Request("Query", params)], None, False, (PK, SK), (self.model,))

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


# --------------------------------------------------------------------------- deleting

Conflict = Callable[[DynormError], "Exception | None"]


def _nothing(_: dict[str, Any]) -> None:
    return None


def _deletes(keys: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"Delete": {"Key": key}} for key in keys]


def _delete_guarded(
    model: type[VersionedModel],
    pk: str,
    sk: str,
    condition: str,
    ph: Placeholders,
    keys: list[Any],
) -> None:
    """Delete history `keys` in transactions of 99, each checking `condition` on (pk, sk).

    Raises:
        TransactionCanceledError: The condition was false (nothing more is deleted).
    """
    conn = connection_for(model)
    check = ph.apply(
        {
            "TableName": conn.table_name,
            "Key": {PK: {"S": pk}, SK: {"S": sk}},
            "ConditionExpression": condition,
        }
    )
    room = TRANSACT_ITEMS_LIMIT - 1
    for start in range(0, len(keys), room):
        deletes = [
            {"Delete": {"Key": key, "TableName": conn.table_name}}
            for key in keys[start : start + room]
        ]
        conn.send("TransactWriteItems", {"TransactItems": [{"ConditionCheck": check}, *deletes]})


def _after_partial(conflict: Conflict, done: int) -> Conflict:
    """Say, in the conflict of a later step, that the oldest `done` versions are gone."""
    if not done:
        return conflict

    def wrapped(exc: DynormError) -> Exception | None:
        error = conflict(exc)
        if type(error) is not VersionConflictError:
            return error
        return VersionConflictError(
            f"{error} Its {done} oldest history versions were already deleted (a history "
            "this long is deleted in several transactions, oldest first, each conditional "
            "on the version); the object and its newer versions are intact.",
            model=error.model,
            expected_version=error.expected_version,
            current_version=error.current_version,
            aws_code=error.aws_code,
            response=error.response,
        )

    return wrapped


def _clean_if_gone(
    model: type[VersionedModel], pk: str, sk: str, conflict: Conflict, keys: list[Any]
) -> Conflict:
    """A step refused because the current item is gone deletes its history items anyway.

    Without their object they belong to nothing (dynorm deletes the current item last, so
    only an interrupted delete of an earlier build or a manual delete leaves them). The
    deletes check that the current item is still absent: a new object created under the key
    meanwhile keeps its history.
    """

    def wrapped(exc: DynormError) -> Exception | None:
        if _persistence.first_gone(exc) and keys:
            ph = Placeholders()
            try:
                _delete_guarded(model, pk, sk, f"attribute_not_exists({ph.name(PK)})", ph, keys)
            except TransactionCanceledError:
                pass  # a new object took the key: what is there is its history
        return conflict(exc)

    return wrapped


def _delete_writes(
    model: type[VersionedModel],
    current: dict[str, Any],
    conflict_after: Callable[[int], Conflict],
    on_success: Callable[[dict[str, Any]], None],
) -> list[WriteOp]:
    """The writes that delete one object and its whole history, in the order to send them.

    `current` is the conditional Delete of the current item (its params). The current item
    and its history normally go in one transaction. A history longer than one transaction
    holds (99 versions) is deleted in several, oldest versions first, each one guarded by a
    ConditionCheck of `current`'s condition, and the current item goes in the last one with
    the newest versions: whatever step fails, the object is still stored with its newest
    versions (as if pruned), never a history without its object. `conflict_after(n)` reads
    the refusal of a step sent after `n` of the listed versions were deleted.
    """
    pk, sk = current["Key"][PK]["S"], current["Key"][SK]["S"]
    # Consistent: with the version condition, no version this read missed can exist.
    history = _history_keys(model, pk, sk, consistent=True)
    room = TRANSACT_ITEMS_LIMIT - 1
    split = max(0, len(history) - room)
    ops = []
    for start in range(0, split, room):
        part = history[start : min(start + room, split)]
        ops.append(
            _persistence.WriteOp(
                "TransactWriteItems",
                {"TransactItems": [{"ConditionCheck": current}, *_deletes(part)]},
                model,
                _clean_if_gone(model, pk, sk, conflict_after(start), part),
                _nothing,
            )
        )
    tail = history[split:]
    ops.append(
        _persistence.WriteOp(
            "TransactWriteItems",
            {"TransactItems": [{"Delete": current}, *_deletes(tail)]},
            model,
            _clean_if_gone(model, pk, sk, conflict_after(split), tail),
            on_success,
        )
    )
    return ops


def _versions(ops: list[WriteOp]) -> int:
    return sum(len(op.params["TransactItems"]) - 1 for op in ops)


def _send_older(ops: list[WriteOp], model: str) -> int:
    """Send every step of a long delete but the last; return how many versions they deleted.

    Refused inside a transaction: there the object and its history must fit into it.
    """
    if current_transaction() is not None:
        raise QueryError(
            f"Cannot delete {model} inside a transaction: its history holds {_versions(ops)} "
            f"versions, and an object is deleted with its history in one transaction only "
            f"up to {TRANSACT_ITEMS_LIMIT - 1} versions. Delete it outside the transaction() "
            "block (dynorm then deletes the history in several transactions, oldest first).",
            code="bad-query",
        )
    for op in ops[:-1]:
        _persistence.execute(op)
    return _versions(ops[:-1])


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
        """Delete the matching objects and all their history; return how many objects.

        Each object is deleted like `obj.delete()`, conditional on the version read and on
        the filters. One changed since it was read is deleted if it still matches (its new
        version is taken from the refusal); one that no longer matches, or is gone, is left
        alone and not counted.

        DynamoDB: the Query of the matches, then per object one consistent Query of its
        history keys and one TransactWriteItems (several for a history over 99 versions).

        Raises:
            VersionConflictError: A history over 99 versions was partly deleted when the
                object stopped matching; the message says how many oldest versions are gone.
        """
        self._refuse_sliced("delete")
        if not self._state.where and not self._state.explicit_all:
            return super().delete()  # raises: an unfiltered delete needs .all()
        plan = self._plan(dataclasses.replace(self._state, projection=()))
        matches = [
            (item[PK]["S"], item[SK]["S"], int(item[VERSION_ATTR]["N"]))
            for item, _ in self._raw(plan)
        ]
        return sum(self._delete_match(pk, sk, version) for pk, sk, version in matches)

    def _delete_match(self, pk: str, sk: str, version: int) -> bool:
        """Delete one matched object if it still matches; True if this call deleted it."""
        model = self.model
        name = model._meta.model_name
        done = 0
        for _ in range(_MAX_DELETE_ATTEMPTS):
            ph = Placeholders()
            condition = f"{ph.name(VERSION_ATTR)} = {ph.value({'N': str(version)})}"
            extra = compile_condition(self._state, ph)
            current = ph.apply(
                {
                    "Key": {PK: {"S": pk}, SK: {"S": sk}},
                    "ConditionExpression": f"{condition} AND {extra}" if extra else condition,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            )
            ops = _delete_writes(model, current, _refused, _nothing)
            tx = current_transaction()
            try:
                if len(ops) > 1:
                    done += _send_older(ops, name)
                    continue  # list what is left: normally one last step
                if tx is not None:
                    tx.add(ops[0])
                    return True  # committed (or not at all) with the block
                _persistence.execute(ops[0])
                return True
            except _Refused as refused:
                stored = refused.stored_version
                if stored is None or stored == version:
                    if done:  # it no longer matches, but its oldest versions are gone
                        raise _partly_deleted(name, version, stored, done) from refused
                    return False  # gone, or no longer matches the filters
                version = stored  # changed since the read: delete it if it still matches
        raise VersionConflictError(
            f"Cannot delete {name}: an object kept changing during {_MAX_DELETE_ATTEMPTS} "
            "attempts; try again.",
            model=name,
            expected_version=version,
        )

    def bulk_create(self, objs: Iterable[V], *, overwrite: bool = False) -> list[V]:
        """Refused: use create() / save(), which write the first history item atomically."""
        raise QueryError(
            f"Cannot bulk_create {self.model.__name__}: a versioned object and its first "
            "history item are written in one transaction; use create() for each.",
            code="bad-query",
        )


class _VersionedManager(Manager[VersionedQuerySet[Any]]):
    """`VersionedModel.objects`: typed per model (`Doc.objects` is a `VersionedQuerySet[Doc]`)."""

    def __init__(self, queryset_class: type[VersionedQuerySet[Any]] | None = None) -> None:
        super().__init__(queryset_class or VersionedQuerySet)

    # Binds the model type from the owner, which Manager[QS] cannot do for a generic QS:
    # this manager is only ever set on versioned models.
    def __get__(self, instance: None, owner: type[V]) -> VersionedQuerySet[V]:
        qs: VersionedQuerySet[V] = super().__get__(instance, owner)
        return qs


_MAX_DELETE_ATTEMPTS = 5


class _Refused(DynormError):
    """A QuerySet delete's condition was refused; `stored_version` of the item, if any."""

    def __init__(self, stored_version: int | None) -> None:
        super().__init__("refused")
        self.stored_version = stored_version


def _refused(_: int) -> Conflict:
    def conflict(exc: DynormError) -> Exception | None:
        reasons = (exc.response or {}).get("CancellationReasons") or [{}]
        stored = (reasons[0].get("Item") or {}).get(VERSION_ATTR)
        return _Refused(None if stored is None else int(from_wire(stored)))

    return conflict


def _partly_deleted(model: str, expected: int, stored: int | None, done: int) -> Exception:
    return VersionConflictError(
        f"Cannot finish deleting {model}: while its long history was being deleted it was "
        f"changed (and no longer matches the filters) or deleted by another writer. Its {done} "
        "oldest history versions were already deleted; if it is still stored, it and its "
        "newer versions are intact.",
        model=model,
        expected_version=expected,
        current_version=stored,
    )


# --------------------------------------------------------------------------- the model


def _max_versions(model: type[Model]) -> int | None:
    keep = model._meta.extra["raw"].get("max_versions")
    return None if keep is None else int(keep)


@dataclass_transform(kw_only_default=True, field_specifiers=(Field, PrivateAttr, Compressed))
class VersionedModelMeta(ModelMeta):  # decorated again: checkers do not inherit it (see ModelMeta)
    """Metaclass of versioned models: also checks the versioning options of `Meta`."""

    def __new__(  # noqa: D102 - documented on the class
        mcs,
        cls_name: str,
        bases: tuple[type[Any], ...],
        namespace: dict[str, Any],
        **kwargs: Any,
    ) -> type:
        # Checked before the class is built (and registered): Meta as ModelMeta merges it.
        parent = next(
            (c.__dict__["_meta"] for base in bases for c in base.__mro__ if "_meta" in c.__dict__),
            None,
        )
        raw = dict(parent.extra["raw"]) if parent is not None else {}
        own = namespace.get("Meta")
        if own is not None:
            raw.update({k: v for k, v in vars(own).items() if not k.startswith("__")})
        keep = raw.get("max_versions")
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
            raise ConfigurationError(
                f"Cannot use Meta.max_versions on {cls_name}: it must be a whole number of at "
                "least 1 (the current version's history is always kept), or None to keep "
                "every version.",
                code="model-definition",
            )
        if not isinstance(raw.get("compress", True), bool):
            raise ConfigurationError(
                f"Cannot use Meta.compress on {cls_name}: it must be True or False.",
                code="model-definition",
            )
        return super().__new__(mcs, cls_name, bases, namespace, **kwargs)


class VersionedModel(Model, metaclass=VersionedModelMeta):
    """A model that keeps every saved version: `history()`, `revert(n)`, `diff(n)`.

    Each save writes the current item and a history item in one TransactWriteItems,
    conditional on the loaded version. `Meta.max_versions` prunes the history older than
    the newest `max_versions` versions, in the same transaction; `Meta.compress` (default
    True) stores history payloads gzip-compressed.
    """

    # Unannotated, as on Model: a subclass's own `objects = MyQuerySet.as_manager()` types.
    objects = _VersionedManager()

    if not TYPE_CHECKING:  # hidden from type checkers, as on Model (see there)

        class Meta:  # noqa: D106 - abstract base
            abstract = True

    # ------------------------------------------------------------------ writes

    def delete(self) -> None:
        """Delete the object and its whole history, conditional on the loaded version.

        DynamoDB: one consistent Query of the history keys, then one TransactWriteItems
        (the current item and up to 99 versions). A longer history takes several, oldest
        versions first, each conditional on the version, the current item in the last: if
        one fails the object is still stored with its newest versions. Inside a
        `transaction()` the object and its history must fit into it.

        Raises:
            VersionConflictError: The object changed (or was deleted) since it was loaded;
                for a long history the message says how many oldest versions were deleted.
            QueryError: Inside a transaction, the history is too long for one.
        """
        done = 0
        ops = self._delete_ops(done)
        while len(ops) > 1:
            done += _send_older(ops, self._meta.model_name)
            ops = self._delete_ops(done)  # what is left: normally one last step
        built = [ops[0]]
        # The last step is the instance's write: a retry after a lost response is settled.
        _persistence.write(
            self, ("delete",), lambda: built.pop() if built else self._delete_op(done)
        )

    def _delete_ops(self, done: int = 0) -> list[WriteOp]:
        base = _persistence.delete_op(self)
        return _delete_writes(
            type(self),
            base.params,
            lambda n: _after_partial(base.conflict, done + n),
            base.on_success,
        )

    def _delete_op(self, done: int = 0) -> WriteOp:
        ops = self._delete_ops(done)
        while len(ops) > 1:
            done += _send_older(ops, self._meta.model_name)  # refused inside a transaction
            ops = self._delete_ops(done)
        return ops[0]

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
        model = type(self)
        new_version = self.version + 1
        item = base.params["Item"]
        pk, sk = item[PK]["S"], item[SK]["S"]
        history = history_item(model, item, new_version)
        ph = Placeholders()
        actions: list[dict[str, Any]] = [
            {"Put": base.params},
            {
                "Put": ph.apply(
                    {"Item": history, "ConditionExpression": f"attribute_not_exists({ph.name(PK)})"}
                )
            },
        ]
        prune_rest = self._prune(actions, pk, sk, new_version)
        name = meta.model_name
        expected = self.version

        def conflict(exc: DynormError) -> Exception | None:
            if isinstance(exc, TransactionCanceledError) and exc.reasons[:1] != [
                "ConditionalCheckFailed"
            ]:
                return VersionConflictError(
                    f"Cannot save {name}: version {new_version} was written concurrently. "
                    "Reload it with refresh_from_db() and apply the change again.",
                    model=name,
                    expected_version=expected,
                    aws_code=exc.aws_code,
                    response=exc.response,
                )
            return base.conflict(exc)

        def on_success(response: dict[str, Any]) -> None:
            base.on_success(response)
            if prune_rest is not None:
                _prune_after_commit(model, pk, sk, prune_rest, new_version, base.token)

        return _persistence.WriteOp(
            "TransactWriteItems",
            {"TransactItems": actions},
            model,
            conflict,
            on_success,
            token=base.token,
        )

    def _prune(self, actions: list[dict[str, Any]], pk: str, sk: str, new: int) -> int | None:
        """Add the deletes of history that falls out of `Meta.max_versions` to `actions`.

        The version leaving the window is always deleted. Older ones exist only after
        `max_versions` was lowered (or set): a keys-only Query finds them, and as many as
        fit go in the transaction. Returns the newest version still to prune after the
        commit (None when nothing is left to do).
        """
        model = type(self)
        keep = _max_versions(model)
        if keep is None or new <= keep:
            return None
        leaving = new - keep
        key = {PK: {"S": pk}, SK: {"S": _checked_history_sk(model, sk, leaving)}}
        actions.append({"Delete": {"Key": key}})
        if leaving == 1:
            return None
        if current_transaction() is not None:
            return leaving - 1  # the block's other writes need the room: prune after it
        room = TRANSACT_ITEMS_LIMIT - len(actions)
        older = _history_keys(model, pk, sk, upto=leaving - 1, limit=room + 1)
        actions += _deletes(older[:room])
        return leaving - 1 if len(older) > room else None

    def _update_op(self, values: dict[str, Any]) -> WriteOp:
        raise QueryError(
            f"Cannot update() a {self._meta.model_name}: every version stores the whole "
            "object. Assign the fields and call save().",
            code="bad-query",
        )

    # ------------------------------------------------------------------ history

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


def _prune_after_commit(
    model: type[VersionedModel], pk: str, sk: str, upto: int, version: int, token: str | None
) -> None:
    """Delete the history up to version `upto` that the save's transaction had no room for.

    Each batch of deletes is a transaction guarded by a ConditionCheck that the current
    item is still the one this save stored (its version and write token): if the object
    changed meanwhile (saved again, or deleted and created anew under the same key, whose
    history these keys may then name), nothing is deleted and the next save prunes.

    Best effort: the save has succeeded, so a failure here is logged, not raised, and the
    history is then longer than `Meta.max_versions`, never shorter.
    """
    ph = Placeholders()
    condition = f"{ph.name(VERSION_ATTR)} = {ph.value({'N': str(version)})}"
    if token is not None:
        condition += f" AND {ph.name(WRITE_TOKEN_ATTR)} = {ph.value({'S': token})}"
    try:
        _delete_guarded(model, pk, sk, condition, ph, _history_keys(model, pk, sk, upto=upto))
    except TransactionCanceledError:
        logger.debug(
            "%s changed before its older history was pruned; its next save prunes it",
            model.__name__,
        )
    except DynormError as exc:
        logger.warning(
            "pruning the older history of %s failed (%s); the next save prunes it",
            model.__name__,
            type(exc).__name__,
        )
