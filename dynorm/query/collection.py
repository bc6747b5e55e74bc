"""`Collection`: several entity types that share a partition, fetched by one Query."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import Self

from .. import _executor
from .._async import run
from .._config import binding
from .._decode import collection_decoder
from .._exactly_once import bind_all
from .._request import Request
from ._decoding import collection_page, from_any

if TYPE_CHECKING:
    from ..models import Model
    from .queryset import QuerySet

__all__ = ["Collection"]

N = TypeVar("N", bound="Model")


class Collection:
    """Several entity types that share a partition, fetched by one Query.

    `group = Customer.objects.filter(id=cid).include(Order)`; `group.one(Customer)`,
    `group.of(Order)`. Evaluated on first use.
    """

    def __init__(self, queryset: QuerySet[Any]) -> None:
        self._qs = queryset
        self._items: list[Model] | None = None

    def explain(self) -> list[Request]:
        """The one Query this collection sends."""
        return self._qs.explain()

    def _load(self) -> list[Model]:
        if self._items is None:
            qs = self._qs
            plan = qs._plan()
            conn = qs._connection()
            items: list[Model] = []
            if len(plan.requests) == 1 and qs._state.projection is None:
                fetch = collection_page(collection_decoder((qs.model, *qs._state.include)))
                for page, _ in _executor.follow(conn, plan.requests[0], fetch):
                    items.extend(page)
            else:
                for raws, _ in _executor.pages(conn, plan.requests, _executor.raw_page):
                    items.extend(m for raw in raws if (m := from_any(raw)) is not None)
            for model in {type(i) for i in items}:  # each model's own rule for the table
                bind_all([i for i in items if type(i) is model], binding(model, qs._state.table))
            self._items = items
        return self._items

    def __iter__(self) -> Iterator[Model]:
        return iter(self._load())

    async def aload(self) -> Self:
        """Send the Query now, from a dynorm worker thread, and return the collection.

        `group = await Customer.objects.filter(id=cid).include(Order).aload()`; then
        `group.one(Customer)` and `group.of(Order)` read what was fetched.
        """
        await run(self._load)
        return self

    def of(self, model: type[N]) -> list[N]:
        """Every item of one type, in sort-key order."""
        return [i for i in self._load() if isinstance(i, model) and type(i) is model]

    def one(self, model: type[N]) -> N:
        """The single item of one type; raises its DoesNotExist / MultipleObjectsReturned."""
        found = self.of(model)
        if not found:
            raise model.DoesNotExist(f"Cannot find a {model.__name__} in this collection.")
        if len(found) > 1:
            raise model.MultipleObjectsReturned(
                f"Cannot pick one {model.__name__}: the collection holds {len(found)}."
            )
        return found[0]
