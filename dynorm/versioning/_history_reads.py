"""History reads: one version (a GetItem), one object's history keys and HistoryQuerySet."""

from __future__ import annotations

from typing import Any, TypeVar

from typing_extensions import Self

from .._config import TableChoice, binding, connection_for, table_name_for
from .._constants import PK, SK, TYPE_ATTR
from .._exactly_once import bind
from ..exceptions import QueryError
from ..models import Model
from ..query.compiler import Plan, Request
from ..query.placeholders import Placeholders
from ..query.queryset import QuerySet
from ._history_codec import _DIGITS, _checked_history_sk, _history_type, decode_history

M = TypeVar("M", bound=Model)


def read_version(
    model: type[M], pk: str, sk: str, version: int, table: TableChoice = None
) -> M:
    """Read version `version` of the object stored under (pk, sk): a consistent GetItem.

    From `table` when given (`qs.using(...)`), else the model's table.
    """
    name = model._meta.model_name
    if isinstance(version, bool) or not isinstance(version, int):
        raise QueryError(
            f"Cannot get a version of {name}: pass the version as an int.", code="bad-query"
        )
    if not 1 <= version < 10**_DIGITS:
        raise model.DoesNotExist(
            f"Cannot get that version of {name}: versions are numbered from 1."
        )
    conn = connection_for(model, table)
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
    found = decode_history(model, item)
    bind(found, binding(model, table))  # read from `table`: it writes back there
    return found


def _history_query(
    model: type[Model],
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
    model: type[Model],
    pk: str,
    sk: str,
    *,
    upto: int | None = None,
    limit: int | None = None,
    consistent: bool = False,
    table: TableChoice = None,
) -> list[tuple[str, str]]:
    """The keys of one object's history items, oldest first (at most `limit`)."""
    conn = connection_for(model, table)
    params = {
        **_history_query(model, pk, sk, upto=upto, keys_only=True, consistent=consistent),
        "TableName": conn.table_name,
    }
    keys: list[tuple[str, str]] = []
    while limit is None or len(keys) < limit:
        if limit is not None:  # a Query reads (and bills) whole items, payloads included
            params["Limit"] = limit - len(keys)
        response = conn.send_raw("Query", params)
        keys += [(item[PK]["S"], item[SK]["S"]) for item in response.get("Items", [])]
        lek = response.get("LastEvaluatedKey")
        if not lek:
            break
        params["ExclusiveStartKey"] = lek
    return keys if limit is None else keys[:limit]


class HistoryQuerySet(QuerySet[M]):
    """The versions of one versioned object, newest first (`obj.history()`)."""

    def _plan(self, state: Any = None) -> Plan:
        if self._state.empty:  # `none()`
            return Plan([], models=(self.model,))
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

    def _decode(self, item: dict[str, Any]) -> M:
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
