"""The reads of companion items: `get_by_unique()` (guards) and `stats()` (counter shards)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .._batch import batch_get
from .._counters import Stats, shard_keys, stats_of
from .._unique import guard_owner
from ..exceptions import QueryError

if TYPE_CHECKING:
    from ..models import Model
    from .queryset import QuerySet

__all__ = ["get_by_unique", "stats"]

M = TypeVar("M", bound="Model")


def get_by_unique(qs: QuerySet[M], values: Mapping[str, Any]) -> M:
    """`qs.get_by_unique(**values)`: the guard of the values, then the object it names.

    Both reads are consistent, on the QuerySet's table; an object whose values changed
    between the two reads is not returned (DoesNotExist), never a wrong one.
    """
    meta = qs.model._meta
    constraint, wanted, owner = guard_owner(qs._connection(), meta, values, consistent=True)
    fields = constraint.describe()
    found = None
    if owner is not None:
        try:
            found = qs.consistent()._get_item(owner, fields)
        except qs.model.DoesNotExist:
            found = None
    if found is None or any(found.__dict__.get(n) != v for n, v in wanted.items()):
        raise qs.model.DoesNotExist(
            f"Cannot get {meta.model_name} by its unique field(s) {fields}: no object holds "
            "these values."
        )
    return found


def stats(qs: QuerySet[Any]) -> Stats:
    """`qs.stats()`: every counter shard of the model in one consistent BatchGetItem."""
    meta = qs.model._meta
    if not meta.counted:
        raise QueryError(
            f"Cannot read stats() of {meta.model_name}: it keeps no count. Set "
            "Meta.counted = True (or use count(), which reads the matching items).",
            code="bad-query",
        )
    keys = shard_keys(meta)
    found = batch_get(
        qs._connection(), keys, meta.model_name, consistent=True, layout=meta.layout
    )
    return stats_of(found)
