"""The lazy, immutable QuerySet (builder and terminal methods) and its Manager descriptor."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, cast, overload

from typing_extensions import Self, TypeVar

from .. import _executor, _registry
from .._blobs import load_blobs
from .._config import Table, as_table, binding, connection_for, table_name_for
from .._counters import Stats
from .._exactly_once import bind, bind_all
from ..exceptions import QueryError
from . import _bulk, _companion_reads, _create, _update_delete
from ._async_queries import AsyncTerminals
from ._decoding import decode, get_item, model_page
from ._read_only import ReadOnlyMethods
from ._terminals import DjangoTerminals
from .collection import Collection
from .compiler import Plan, QueryState, Request, _validate, compile_query, consistent_gsi_error
from .expressions import Q, lookup_names
from .lookups import _coerce
from .pagination import Page, read_page

if TYPE_CHECKING:
    from .._connection import Connection
    from ..models import Model

__all__ = ["Collection", "Manager", "Page", "QuerySet"]

M = TypeVar("M", bound="Model")
#: The QuerySet class of a Manager; a bare `Manager` is the default one.
QS = TypeVar("QS", bound="QuerySet[Any]", default="QuerySet[Any]")

#: QuerySet changes that keep a slice meaningful (they change how items load, not which).
_SLICE_SAFE = frozenset({"bounds", "projection", "consistent", "explicit_all", "table", "empty"})


class Manager(Generic[QS]):
    """`Model.objects`: a descriptor that returns a fresh lazy QuerySet of the model.

    Typed by its QuerySet class: the default `Manager()` gives `QuerySet[Order]` on `Order`,
    `OrderQuerySet.as_manager()` gives `OrderQuerySet` (see "Type checking" in the docs).
    """

    def __init__(self, queryset_class: type[QS] | None = None) -> None:
        self.queryset_class: type[QS] = queryset_class or cast("type[QS]", QuerySet)

    @overload
    def __get__(self: Manager[QuerySet[Any]], instance: None, owner: type[M]) -> QuerySet[M]: ...

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> QS: ...

    def __get__(self, instance: object, owner: type[Any]) -> Any:
        if instance is not None:
            raise AttributeError(
                f"Cannot reach objects through a {owner.__name__} instance; "
                f"use {owner.__name__}.objects."
            )
        return self.queryset_class(owner)


class _Pristine:
    """The initial state per model, to recognise an untouched QuerySet cheaply."""

    def __init__(self) -> None:
        self._states: dict[type[Any], QueryState] = {}

    def get(self, model: type[Any]) -> QueryState:
        state = self._states.get(model)
        if state is None:
            state = self._states[model] = QueryState(model)
        return state


_PRISTINE = _Pristine()


class QuerySet(AsyncTerminals, DjangoTerminals[M], ReadOnlyMethods[M]):
    """A lazy, immutable query over one model; every method returns a new QuerySet.

    Evaluated by iteration, `len()`, `list()`, slicing, `count()`, `first()`, `get()`, ...;
    the results are cached on the QuerySet. `iterator()` streams without caching. The
    terminals that return plain values (`values()`, `aggregate()`, ...) are `DjangoTerminals`.
    """

    def __init__(self, model: type[M], state: QueryState | None = None) -> None:
        self.model = model
        self._state = state or QueryState(model)
        self._cache: list[M] | None = None

    @classmethod
    def as_manager(cls) -> Manager[Self]:
        """Return a Manager whose QuerySets are of this (custom) class (and typed as it)."""
        return Manager(cls)

    def _clone(self, **changes: Any) -> Self:
        if self._state.bounds is not None and not changes.keys() <= _SLICE_SAFE:
            # The slice was taken of the old query; applying it to a new one would cut
            # other items than the ones asked for (Django refuses the same).
            raise QueryError(
                f"Cannot filter, reorder, scan or change the index of a sliced QuerySet of "
                f"{self.model.__name__}: slice last, e.g. qs.filter(...).order_by(...)[:20].",
                code="bad-query",
            )
        return type(self)(self.model, dataclasses.replace(self._state, **changes))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.model.__name__}>"

    # ------------------------------------------------------------------ building

    def all(self) -> Self:
        """Return a copy; before `delete()`, it says "every matching item" explicitly."""
        return self._clone(explicit_all=True)

    def filter(self, /, *args: Q, **lookups: Any) -> Self:
        """Keep items matching every lookup (`field__lookup=value`) and `Q` object."""
        q = Q(*args, **lookups)
        self._check(q)
        return self._clone(where=(*self._state.where, q))

    def exclude(self, /, *args: Q, **lookups: Any) -> Self:
        """Drop items matching all the given lookups (`NOT (...)` in the filter)."""
        q = ~Q(*args, **lookups)
        self._check(q)
        return self._clone(where=(*self._state.where, q))

    def _check(self, q: Q) -> None:
        _validate(self.model._meta, q)

    def using(self, table: Table | str) -> Self:
        """Send this query (and writes made through it) to another table."""
        return self._clone(table=as_table(table))

    def _connection(self) -> Connection:
        """The Connection this QuerySet's requests go through."""
        return connection_for(self.model, self._state.table)

    def _binding(self) -> Table | None:
        """The table the instances this QuerySet reads or creates belong to (see `bind`)."""
        return binding(self.model, self._state.table)

    def using_gsi(self, name: str) -> Self:
        """Query the model's index `name` (declared in `Meta.indexes`)."""
        meta = self.model._meta
        if name not in meta.indexes:
            raise QueryError(
                f"Cannot use index {name!r} on {meta.model_name}: no such index."
                f"{meta.suggest_index(name)}",
                code="unknown-index",
            )
        if self._state.consistent:
            raise consistent_gsi_error(meta.model_name)
        return self._clone(index=name)

    def order_by(self, field: str) -> Self:
        """Order by a sort-key field of the index in use; `-field` for descending."""
        descending = field.startswith("-")
        name = field.lstrip("-")
        self.model._meta.check_field(name, "order by")
        return self._clone(order_field=name, descending=descending)

    def reverse(self) -> Self:
        """Reverse the order (DynamoDB's ScanIndexForward)."""
        return self._clone(descending=not self._state.descending)

    def only(self, *fields: str) -> Self:
        """Load only these fields (ProjectionExpression); the instances cannot be saved whole."""
        for name in fields:
            self.model._meta.check_field(name, "select with only()")
        return self._clone(projection=tuple(dict.fromkeys(fields)))

    def consistent(self) -> Self:
        """Use strongly consistent reads (the table only; GSIs cannot)."""
        if self._state.index is not None:
            raise consistent_gsi_error(self.model._meta.model_name)
        return self._clone(consistent=True)

    def scan(self, *, segments: int = 1) -> Self:
        """Read the whole table (or index) with Scan, explicitly; `segments` run in parallel."""
        if segments < 1:
            raise QueryError("Cannot scan with fewer than 1 segment.", code="bad-query")
        return self._clone(scan=True, segments=segments)

    def include(self, *models: type[Model]) -> Collection:
        """Fetch other entity types from the same partition in one Query (see `Collection`)."""
        for model in models:
            if _registry.get_model(model._meta.type_name) is not model:
                raise QueryError(
                    f"Cannot include {model.__name__}: it is not a registered model.",
                    code="bad-query",
                )
        return Collection(self._clone(include=tuple(models)))

    # ------------------------------------------------------------------ compiling

    def _plan(self, state: QueryState | None = None) -> Plan:
        state = state or self._state
        return compile_query(state, table_name_for(self.model, state.table))

    def explain(self) -> list[Request]:
        """Return the request(s) this QuerySet sends, without sending anything."""
        plan = self._plan()
        bounds = self._state.bounds
        if bounds is not None and bounds[1] is not None and self._limits(plan):
            (request,) = plan.requests  # the first page's Limit, as the executor sends it
            limit = _executor.page_limit(bounds[1], 0)
            return [Request(request.operation, {**request.params, "Limit": limit})]
        return plan.requests

    def _refuse_sliced(self, action: str) -> None:
        """Refuse a bulk operation on `qs[a:b]`: it would act on every match, not the slice."""
        if self._state.bounds is not None:
            name = self.model.__name__
            raise QueryError(
                f"Cannot {action} a sliced QuerySet of {name}: a slice only limits what is "
                f"read. Call {action}() on the QuerySet before slicing it (filter it to the "
                f"items you mean), or loop over the slice.",
                code="bad-query",
            )

    @staticmethod
    def _limits(plan: Plan) -> bool:
        """Whether a read of a known number of items sends a Limit (see `_executor.follow`)."""
        # The entity-type filter alone rarely drops an item: a Limit still bounds pages.
        return len(plan.requests) == 1 and not plan.has_filter

    # ------------------------------------------------------------------ evaluation

    def _raw(
        self, plan: Plan, *, limit: int | None = None, start_key: dict[str, Any] | None = None
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
        """Yield (item, LastEvaluatedKey of its page or None) across every page and segment."""
        pages = _executor.pages(
            self._connection(),
            plan.requests,
            _executor.raw_page,
            limit=limit,
            bounded=not plan.has_filter,
            start_key=start_key,
        )
        for items, lek in pages:
            for item in items:
                yield item, lek

    def _decode(self, item: dict[str, Any]) -> M:
        return decode(self.model, item, self._state.projection)

    def _wire_ok(self) -> bool:
        """Whether the model's wire schema can stand in for `_decode`.

        It can for whole items (no `only()`) read by a QuerySet that decodes as this class
        does (not the history of a versioned model).
        """
        return self._state.projection is None and type(self)._decode is QuerySet._decode

    def _fetch(self, limit: int | None = None) -> Iterator[M]:
        pages = self._fetch_pages(limit)
        try:
            for page in pages:
                yield from page
        finally:
            pages.close()

    def _fetch_pages(self, limit: int | None = None) -> Generator[list[M], None, None]:
        """The results as lists, one per page read (a slice's in lists of up to 100)."""
        if self._state.bounds is not None:
            items = self._fetch_slice(limit)
            try:
                while chunk := list(itertools.islice(items, 100)):
                    yield chunk
            finally:
                if isinstance(items, Generator):
                    items.close()
            return
        plan = self._plan()
        count = 0
        if limit is not None and limit <= 0:
            return
        table = self._binding()
        # Scan segments: each thread decodes (or validates) its own pages.
        pages = _executor.pages(
            self._connection(),
            plan.requests,
            model_page(self.model, self._decode, wire=self._wire_ok()),
            limit=limit,
            bounded=not plan.has_filter,
        )
        try:
            for decoded, _ in pages:
                if limit is not None:
                    decoded = decoded[: limit - count]
                bind_all(decoded, table)
                if self._state.option("with_blobs"):
                    load_blobs(decoded)
                if decoded:
                    yield decoded
                count += len(decoded)
                if limit is not None and count >= limit:
                    return
        finally:  # stop scan segment threads now, not when the generator is collected
            if isinstance(pages, Generator):
                pages.close()

    def _fetch_slice(self, limit: int | None) -> Iterator[M]:
        """The items of `qs[start:stop]`, at most `limit`: reads `stop` items, drops `start`."""
        assert self._state.bounds is not None
        start, stop = self._state.bounds
        if limit is not None:
            stop = start + limit if stop is None else min(stop, start + limit)
        items = self._clone(bounds=None)._fetch(stop)
        try:
            yield from itertools.islice(items, start, None)
        finally:  # stop scan segment threads now, as _fetch does
            if isinstance(items, Generator):
                items.close()

    def iterator(self) -> Iterator[M]:
        """Stream results page by page without caching them."""
        return self._fetch()

    def _result(self) -> list[M]:
        if self._cache is None:
            self._cache = list(self._fetch())
        return self._cache

    def __iter__(self) -> Iterator[M]:
        return iter(self._result())

    def __len__(self) -> int:
        return len(self._result())

    def __bool__(self) -> bool:
        return bool(self._result())

    @overload
    def __getitem__(self, key: int) -> M: ...

    @overload
    def __getitem__(self, key: slice) -> Self: ...

    def __getitem__(self, key: int | slice) -> M | Self:
        """`qs[3]` reads one item; `qs[:20]` is a lazy QuerySet of at most 20.

        Evaluating `qs[:20]` fetches only as many pages as 20 matches need (a `Limit` on
        unfiltered queries). A slice of a slice narrows it; a sliced QuerySet cannot be
        filtered or reordered any more (slice last).
        """
        if isinstance(key, slice):
            start, stop, step = key.start or 0, key.stop, key.step
            if not isinstance(start, int) or not isinstance(stop, (int, type(None))):
                kinds = f"{type(start).__name__}, {type(stop).__name__}"
                raise TypeError(f"QuerySet indices must be integers, not ({kinds})")
            if start < 0 or (stop is not None and stop < 0) or step not in (None, 1):
                raise QueryError(
                    "Cannot slice a QuerySet with negative indices or a step; use "
                    ".reverse() for the last items.",
                    code="bad-query",
                )
            low, high = self._state.bounds or (0, None)  # a slice of a slice narrows it
            new_low, new_high = low + start, None if stop is None else low + stop
            if high is not None:
                new_high = high if new_high is None else min(new_high, high)
            if new_high is not None:
                new_high = max(new_high, new_low)  # empty, never negative
            bounds = None if (new_low, new_high) == (0, None) else (new_low, new_high)
            sliced = self._clone(bounds=bounds)
            if self._cache is not None:  # already read: the slice sends nothing
                sliced._cache = self._cache[start:stop]
            return sliced
        if key < 0:
            raise QueryError(
                "Cannot index a QuerySet with a negative number; use .last() or .reverse().",
                code="bad-query",
            )
        if self._cache is not None:
            return self._cache[key]
        got = list(self._fetch(key + 1))
        if len(got) <= key:
            raise IndexError("QuerySet index out of range")
        return got[key]

    def count(self) -> int:
        """Count matching items (Select=COUNT, summed over pages; filters applied).

        A slice with an end counts by reading its items (at most `stop`).
        """
        if self._cache is not None:
            return len(self._cache)
        if self._state.bounds is not None:
            start, stop = self._state.bounds
            if stop is not None:
                return len(self._result())
            return max(0, self._clone(bounds=None).count() - start)
        plan = self._plan(dataclasses.replace(self._state, projection=None))
        return _executor.count(self._connection(), plan.requests)

    def exists(self) -> bool:
        """Whether any item matches (stops at the first match)."""
        if self._cache is not None:
            return bool(self._cache)
        return next(iter(self._fetch(1)), None) is not None

    def first(self) -> M | None:
        """The first match in sort-key order (or the order asked for), or None."""
        if self._cache is not None:
            return self._cache[0] if self._cache else None
        return next(iter(self._fetch(1)), None)

    def last(self) -> M | None:
        """The last match in sort-key order (one reversed Query), or None."""
        return self.reverse().first()

    def get(self, /, *args: Q, **lookups: Any) -> M:
        """Return the one matching item; GetItem when the lookups name a whole primary key.

        Raises:
            DoesNotExist: Nothing matches.
            MultipleObjectsReturned: More than one item matches.
        """
        meta = self.model._meta
        if (
            not args
            and self._state == _PRISTINE.get(self.model)
            and lookups.keys() == meta.key_fields
        ):
            # The common `get(<whole primary key>)`: render the key directly, skip the compiler.
            values = {
                f: _coerce(meta, f, v, action=f"get {meta.model_name} by {f}")
                for f, v in lookups.items()
            }
            return self._get_item(meta.primary_key(values), ", ".join(sorted(lookups)))
        qs = self.filter(*args, **lookups) if args or lookups else self
        plan = qs._plan()
        fields = ", ".join(
            sorted({k.split("__")[0] for q in qs._state.where for k in lookup_names(q)})
        )
        if plan.get_key is not None and qs._state.bounds is None:
            return qs._get_item(plan.get_key, fields)
        found = list(qs._fetch(2))
        if not found:
            raise self.model.DoesNotExist(
                f"Cannot get {meta.model_name}: nothing matches the query (fields: {fields})."
            )
        if len(found) > 1:
            raise self.model.MultipleObjectsReturned(
                f"Cannot get one {meta.model_name}: more than one item matches the query "
                f"(fields: {fields}); filter on more fields or use first()."
            )
        return found[0]

    def get_by_unique(self, /, **values: Any) -> M:
        """The object holding these values of a `Meta.unique` constraint (see its docs page).

        Two consistent GetItems (the guard, then the object). Raises DoesNotExist, or
        QueryError if no constraint has exactly these fields.
        """
        return _companion_reads.get_by_unique(self, values)

    def stats(self) -> Stats:
        """The model's count (`Meta.counted`): one consistent BatchGetItem of its shards.

        Filters do not apply. Raises QueryError if the model is not counted.
        """
        return _companion_reads.stats(self)

    def _get_item(self, key: tuple[str, str], fields: str) -> M:
        # No projection here: only() disables the GetItem plan (compiler), so get() queries.
        found = get_item(
            self._connection(),
            self.model,
            key,
            self._decode,
            consistent=self._state.consistent,
            wire=self._wire_ok(),
        )
        if found is None:
            raise self.model.DoesNotExist(
                f"Cannot get {self.model._meta.model_name}: no item has that key "
                f"(fields: {fields})."
            )
        bind(found, self._binding())
        if self._state.option("with_blobs"):
            load_blobs([found])
        return found

    def page(self, size: int, cursor: str | None = None) -> Page[M]:
        """Return `size` matches (fewer only on the last page) and a signed cursor for more.

        Raises:
            InvalidCursorError: The cursor was tampered with or belongs to another query.
        """
        return read_page(self, size, cursor)

    # ------------------------------------------------------------------ writes

    def create(self, /, **values: Any) -> M:
        """Create and save a new item (PutItem, fails if the key exists)."""
        obj = self.model(**values)
        bind(obj, self._binding())  # created in this QuerySet's table
        obj.save()
        return obj

    def get_or_create(
        self, /, defaults: Mapping[str, Any] | None = None, **lookups: Any
    ) -> tuple[M, bool]:
        """Return (object, created): get by the lookups, else create with `defaults` added.

        The create is conditional (`attribute_not_exists`), so two racing callers create one
        item; the loser reads the winner's. The object is created from the exact lookups
        (those without `__`) and `defaults`, which win where both name a field. Through an
        index (`using_gsi()`), only the primary key is unique: callers racing with different
        primary keys each create their own object.

        Raises:
            QueryError: `version` is among the lookups or defaults (dynorm sets it), or a
                default names no field of the model. Nothing is sent.
            ItemExistsError: Nothing matches the lookups, yet an item has the key of the
                object to create (it fails a non-key lookup); it is left unchanged.
        """
        return _create.get_or_create(self, defaults, lookups)

    def update_or_create(
        self, /, defaults: Mapping[str, Any] | None = None, **lookups: Any
    ) -> tuple[M, bool]:
        """Return (object, created): update the match with `defaults`, else create it.

        Retries on a concurrent change (bounded), so the last writer's defaults win. A new
        object is created from the exact lookups and `defaults`, as in `get_or_create()`.

        Raises:
            QueryError: `version` is among the lookups or defaults (dynorm sets it), or a
                default names no field of the model. Nothing is sent.
            ItemExistsError: Nothing matches the lookups, yet an item has the key of the
                object to create (it fails a non-key lookup); it is left unchanged.
        """
        return _create.update_or_create(self, defaults, lookups)

    def bulk_create(self, objs: Iterable[M], *, overwrite: bool = False) -> list[M]:
        """Create many new objects; never replaces a stored item unless `overwrite=True`.

        By default each object is one conditional PutItem (`attribute_not_exists(pk)`),
        several in flight at once. An object whose key is already stored is not written:
        once every other object was, `ItemExistsError` lists those (`.keys`, `.objects`;
        their `version` stays 0). Objects are built and checked before anything is sent.

        `overwrite=True` uses BatchWriteItem (25 items per request, unprocessed items
        retried), which cannot be conditional: an item with the same key is replaced.

        Inside a `transaction()` each object is one Put (conditional unless `overwrite`).

        Raises:
            ItemExistsError: Some keys were already stored (the other objects were created).
            BatchIncompleteError: With `overwrite=True`, items were still unprocessed after
                every retry (named).
            ServiceError: A write failed; objects still at version 0 were not created (or,
                with `maybe_applied`, may have been: calling bulk_create again with them is
                applied once).
        """
        return _bulk.bulk_create(self, objs, overwrite=overwrite)

    def bulk_get(
        self, keys: Sequence[Mapping[str, Any] | M], *, consistent: bool = False
    ) -> list[M | None]:
        """Read many items by key (BatchGetItem, 100 per request), in request order.

        Missing items come back as None; duplicate keys are read once.
        """
        return _bulk.bulk_get(self, keys, consistent=consistent)

    def update(self, /, **values: Any) -> int:
        """Update every matching item with an UpdateItem each; return how many were updated.

        Each write is conditional on the item still matching the filters at its read version;
        an item changed concurrently is re-read (from the refusal) and retried, one that no
        longer matches is skipped, not counted. Several writes are in flight at once; an
        error is raised once every item was tried.

        Raises:
            WriteOutcomeUnknownError: An item's write got no answer and the item has been
                changed since by someone else (retrying could apply it twice).
        """
        return _update_delete.update_matching(self, values)

    def delete(self) -> int:
        """Delete every matching item that still matches when deleted; return the count.

        One DeleteItem per item, conditional on the version read and on the filters (several
        in flight at once): an item changed since it was read is deleted only if it still
        matches (re-read from the refusal), one that no longer matches is skipped, not
        counted. An unfiltered QuerySet must say so with `.all()` first.
        """
        return _update_delete.delete_matching(self)
