"""The Manager descriptor, the lazy QuerySet, pages and collections."""

from __future__ import annotations

import dataclasses
import itertools
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, cast, overload

from typing_extensions import Self, TypeVar

from .. import _registry
from .._batch import batch_get, batch_write, in_parallel
from .._config import Table, as_table, connection_for, get_settings, table_name_for
from .._constants import PK, SK, TYPE_ATTR, VERSION_ATTR, WRITE_TOKEN_ATTR
from .._persistence import WriteOp
from .._wire import CollectionDecoder, collection_decoder, wire_decoder
from ..exceptions import (
    ConditionFailedError,
    DynormError,
    ItemExistsError,
    QueryError,
    VersionConflictError,
    WriteOutcomeUnknownError,
)
from .compiler import Plan, QueryState, Request, compile_condition, compile_query
from .expressions import Q
from .lookups import _coerce
from .pagination import decode_cursor, encode_cursor, fingerprint
from .placeholders import Placeholders, check_expressions
from .updates import key_params, plan_update

if TYPE_CHECKING:
    from .._connection import Connection
    from ..models import Model

__all__ = ["Collection", "Manager", "Page", "QuerySet"]

M = TypeVar("M", bound="Model")
N = TypeVar("N", bound="Model")
T = TypeVar("T")
#: The QuerySet class of a Manager; a bare `Manager` is the default one.
QS = TypeVar("QS", bound="QuerySet[Any]", default="QuerySet[Any]")

_MAX_UPDATE_ATTEMPTS = 5
#: The largest Limit a read of a known number of items sends per page.
_MAX_LIMIT = 1000
#: QuerySet changes that keep a slice meaningful (they change how items load, not which).
_SLICE_SAFE = frozenset({"bounds", "projection", "consistent", "explicit_all", "table"})


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


@dataclass
class Page(Generic[M]):
    """One page of results: `items` and the cursor of the next page (None on the last)."""

    items: list[M]
    next_cursor: str | None


def _raw_page(
    conn: Connection, operation: str, params: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    response = conn.send_raw(operation, params)
    return response.get("Items", []), response.get("LastEvaluatedKey")


def _from_any(raw: dict[str, Any]) -> Model | None:
    """An item of any registered model (None for an unknown entity type)."""
    model = _registry.get_model(raw.get(TYPE_ATTR, {}).get("S", ""))
    return None if model is None else model.from_item(raw)


#: A page of instances with their key attributes, and its LastEvaluatedKey (for cursors).
_Keyed = tuple[list[tuple[T, dict[str, Any]]], "dict[str, Any] | None"]


def _collection_page(
    decoder: CollectionDecoder, conn: Connection, operation: str, params: dict[str, Any]
) -> tuple[list[Model], dict[str, Any] | None]:
    def general(response: dict[str, Any]) -> tuple[list[Model], dict[str, Any] | None]:
        raws = response.get("Items", [])
        return [m for r in raws if (m := _from_any(r)) is not None], response.get(
            "LastEvaluatedKey"
        )

    return conn.read(operation, params, decoder.decode_page, general)


def _decode(model: type[M], item: dict[str, Any], projection: tuple[str, ...] | None) -> M:
    if projection is None:
        return model.from_item(item)
    meta = model._meta
    assert meta.codec is not None
    loaded = set(projection) | {"version"}
    values = {k: v for k, v in meta.codec.decode(item).items() if k in loaded}
    obj = model.model_construct(_fields_set=set(values), **values)
    for name in meta.field_names:
        if name not in loaded:
            obj.__dict__.pop(name, None)
    obj._loaded_key = (item[PK]["S"], item[SK]["S"])
    obj._partial = frozenset(loaded)
    return obj


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


class QuerySet(Generic[M]):
    """A lazy, immutable query over one model; every method returns a new QuerySet.

    Evaluated by iteration, `len()`, `list()`, slicing, `count()`, `first()`, `get()`, ...;
    the results are cached on the QuerySet. `iterator()` streams without caching.
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
        from .compiler import _validate

        _validate(self.model._meta, q)

    def using(self, table: Table | str) -> Self:
        """Send this query (and writes made through it) to another table."""
        return self._clone(table=as_table(table))

    def _connection(self) -> Connection:
        """The Connection this QuerySet's requests go through."""
        return connection_for(self.model, self._state.table)

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
            raise _consistent_gsi(meta.model_name)
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
            raise _consistent_gsi(self.model._meta.model_name)
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
            (request,) = plan.requests  # the first page's Limit, as _follow sends it
            limit = max(1, min(bounds[1], _MAX_LIMIT))
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
        """Whether a read of a known number of items sends a Limit (see `_follow`)."""
        # The entity-type filter alone rarely drops an item: a Limit still bounds pages.
        return len(plan.requests) == 1 and not plan.has_filter

    # ------------------------------------------------------------------ evaluation

    def _raw(
        self, plan: Plan, *, limit: int | None = None, start_key: dict[str, Any] | None = None
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
        """Yield (item, LastEvaluatedKey of its page or None) across every page and segment."""
        for items, lek in self._pages(plan, limit=limit, start_key=start_key):
            for item in items:
                yield item, lek

    def _pages(
        self, plan: Plan, *, limit: int | None = None, start_key: dict[str, Any] | None = None
    ) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any] | None]]:
        """Yield (items, LastEvaluatedKey or None) per response, following every page."""
        if len(plan.requests) > 1:
            yield from self._parallel(plan, _raw_page)
            return
        yield from self._follow(plan, _raw_page, limit=limit, start_key=start_key)

    def _follow(
        self,
        plan: Plan,
        fetch: Callable[[Connection, str, dict[str, Any]], tuple[list[T], dict[str, Any] | None]],
        *,
        limit: int | None = None,
        start_key: dict[str, Any] | None = None,
    ) -> Iterator[tuple[list[T], dict[str, Any] | None]]:
        """Send the plan's one request page after page; `fetch` sends one and reads it."""
        conn = self._connection()
        request = plan.requests[0]
        params = dict(request.params)
        params["TableName"] = conn.table_name
        if start_key is not None:
            params["ExclusiveStartKey"] = start_key
        seen = 0
        while True:
            # The entity-type filter alone rarely drops an item: a Limit still bounds pages.
            if limit is not None and not plan.has_filter:
                params["Limit"] = max(1, min(limit - seen, _MAX_LIMIT))
            items, lek = fetch(conn, request.operation, params)
            seen += len(items)
            yield items, lek
            if not lek:
                return
            params["ExclusiveStartKey"] = lek

    def _parallel(
        self,
        plan: Plan,
        fetch: Callable[[Connection, str, dict[str, Any]], tuple[list[T], dict[str, Any] | None]],
    ) -> Iterator[tuple[list[T], None]]:
        """Run scan segments in threads, a page at a time; stop them if the consumer stops."""
        conn = self._connection()
        out: queue.Queue[Any] = queue.Queue(maxsize=4)
        done = object()
        stop = threading.Event()

        def put(value: Any) -> bool:
            while not stop.is_set():
                try:
                    out.put(value, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def run(request: Request) -> None:
            try:
                params = {**request.params, "TableName": conn.table_name}
                while not stop.is_set():
                    items, lek = fetch(conn, request.operation, params)
                    if not put(items):
                        return
                    if not lek:
                        break
                    params["ExclusiveStartKey"] = lek
                put(done)
            except BaseException as exc:  # re-raised in the consuming thread
                put(exc)

        threads = [threading.Thread(target=run, args=(r,), daemon=True) for r in plan.requests]
        for t in threads:
            t.start()
        remaining = len(threads)
        try:
            while remaining:
                got = out.get()
                if got is done:
                    remaining -= 1
                elif isinstance(got, BaseException):
                    raise got
                else:
                    yield got, None
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=5)

    def _decode(self, item: dict[str, Any]) -> M:
        return _decode(self.model, item, self._state.projection)

    def _wire_ok(self) -> bool:
        """Whether the model's wire schema can stand in for `_decode`.

        It can for whole items (no `only()`) read by a QuerySet that decodes as this class
        does (not the history of a versioned model).
        """
        return self._state.projection is None and type(self)._decode is QuerySet._decode

    def _model_page(
        self, conn: Connection, operation: str, params: dict[str, Any]
    ) -> tuple[list[M], dict[str, Any] | None]:
        """Send one request and validate its body into instances (see `dynorm._wire`)."""

        def general(response: dict[str, Any]) -> tuple[list[M], dict[str, Any] | None]:
            items = [self._decode(item) for item in response.get("Items", [])]
            return items, response.get("LastEvaluatedKey")

        wire = cast(
            "Callable[[bytes], tuple[list[M], dict[str, Any] | None] | None]",
            wire_decoder(self.model).decode_page,
        )
        return conn.read(operation, params, wire, general)

    def _fetch(self, limit: int | None = None) -> Iterator[M]:
        if self._state.bounds is not None:
            yield from self._fetch_slice(limit)
            return
        plan = self._plan()
        count = 0
        if limit is not None and limit <= 0:
            return
        pages: Iterator[tuple[list[M], Any]]
        if not self._wire_ok():
            pages = self._decoded_pages(plan, limit)
        elif len(plan.requests) > 1:  # scan segments: each thread validates its own pages
            pages = self._parallel(plan, self._model_page)
        else:
            pages = self._follow(plan, self._model_page, limit=limit)
        try:
            for decoded, _ in pages:
                if limit is not None:
                    decoded = decoded[: limit - count]
                yield from decoded
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

    def _decoded_pages(self, plan: Plan, limit: int | None) -> Iterator[tuple[list[M], Any]]:
        for items, lek in self._pages(plan, limit=limit):
            yield [self._decode(item) for item in items], lek

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
                raise TypeError(f"QuerySet indices must be integers, not {key!r}")
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
        conn = self._connection()
        total = 0
        for request in plan.requests:
            params = {**request.params, "TableName": conn.table_name, "Select": "COUNT"}
            while True:
                response = conn.send(request.operation, params)
                total += int(response.get("Count", 0))
                lek = response.get("LastEvaluatedKey")
                if not lek:
                    break
                params["ExclusiveStartKey"] = lek
        return total

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
            values = {f: _coerce(meta, f, v) for f, v in lookups.items()}
            return self._get_item(meta.primary_key(values), ", ".join(sorted(lookups)))
        qs = self.filter(*args, **lookups) if args or lookups else self
        plan = qs._plan()
        fields = ", ".join(sorted({k.split("__")[0] for q in qs._state.where for k in _keys(q)}))
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

    def _get_item(self, key: tuple[str, str], fields: str) -> M:
        meta = self.model._meta
        conn = self._connection()
        params: dict[str, Any] = {"TableName": conn.table_name, "Key": key_params(*key)}
        if self._state.consistent:
            params["ConsistentRead"] = True

        # No projection here: only() disables the GetItem plan (compiler), so get() queries.
        def wire(body: bytes) -> list[M] | None:
            if not self._wire_ok():
                return None
            return cast("list[M] | None", wire_decoder(self.model).decode_item(body))

        def general(response: dict[str, Any]) -> list[M]:
            item = response.get("Item")
            if item is None or item.get(TYPE_ATTR, {}).get("S") != meta.type_name:
                return []
            return [self._decode(item)]

        found = conn.read("GetItem", params, wire, general)
        if not found:
            raise self.model.DoesNotExist(
                f"Cannot get {meta.model_name}: no item has that key (fields: {fields})."
            )
        return found[0]

    def page(self, size: int, cursor: str | None = None) -> Page[M]:
        """Return `size` matches (fewer only on the last page) and a signed cursor for more.

        Raises:
            InvalidCursorError: The cursor was tampered with or belongs to another query.
        """
        if size < 1:
            raise QueryError("Cannot fetch a page of fewer than 1 item.", code="bad-query")
        self._refuse_sliced("page")
        plan = self._plan()
        if len(plan.requests) != 1:
            raise QueryError(
                "Cannot page a parallel scan; scan with one segment.", code="bad-query"
            )
        settings = get_settings()
        query = fingerprint(plan.requests[0], self.model._meta.type_name)
        start = None
        if cursor is not None:
            start = decode_cursor(
                cursor, query, settings.cursor_secret, self.model._meta.model_name
            )
        if self._wire_ok() and not plan.has_filter:
            # Limit bounds each page: validating a whole page costs at most one extra item.
            return self._wire_page(plan, size, start, query)
        raws: list[dict[str, Any]] = []
        for item, _ in self._raw(plan, limit=size + 1, start_key=start):
            raws.append(item)
            if len(raws) > size:
                break
        next_cursor = None
        if len(raws) > size:
            last = raws[size - 1]
            key = {a: last[a] for a in plan.key_attrs if a in last}
            next_cursor = encode_cursor(key, query, settings.cursor_secret)
        return Page([self._decode(item) for item in raws[:size]], next_cursor)

    def _wire_page(
        self, plan: Plan, size: int, start: dict[str, Any] | None, query: str
    ) -> Page[M]:
        """`page()` through the wire schema: instances and their key attributes in one pass."""
        key_attrs = plan.key_attrs

        def wire(body: bytes) -> _Keyed[M] | None:
            got = wire_decoder(self.model).decode_keyed_page(body, key_attrs)
            if got is None:
                return None
            objs, keys, lek = got
            pairs = [
                (cast("M", o), {a: {"S": k[a]} for a in key_attrs}) for o, k in zip(objs, keys)
            ]
            return pairs, lek

        def general(response: dict[str, Any]) -> _Keyed[M]:
            pairs = [
                (self._decode(raw), {a: raw[a] for a in key_attrs if a in raw})
                for raw in response.get("Items", [])
            ]
            return pairs, response.get("LastEvaluatedKey")

        def fetch(conn: Connection, operation: str, params: dict[str, Any]) -> _Keyed[M]:
            return conn.read(operation, params, wire, general)

        found: list[tuple[M, dict[str, Any]]] = []
        for pairs, _ in self._follow(plan, fetch, limit=size + 1, start_key=start):
            found.extend(pairs)
            if len(found) > size:
                break
        next_cursor = None
        if len(found) > size:
            next_cursor = encode_cursor(found[size - 1][1], query, get_settings().cursor_secret)
        return Page([obj for obj, _ in found[:size]], next_cursor)

    # ------------------------------------------------------------------ writes

    def create(self, /, **values: Any) -> M:
        """Create and save a new item (PutItem, fails if the key exists)."""
        obj = self.model(**values)
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
        values = self._values_to_create("get_or_create", lookups, defaults)
        try:
            return self.get(**lookups), False
        except self.model.DoesNotExist:
            pass
        created = self._create_if_absent(values)
        if isinstance(created, ConditionFailedError):
            # Another writer's item has that key: read it (an index cannot read consistently).
            reader = self.consistent() if not self._state.index else self
            try:
                return reader.get(**lookups), False
            except self.model.DoesNotExist:
                raise created from None  # an item has the key but does not match the lookups
        return created, True

    def _values_to_create(
        self, action: str, lookups: Mapping[str, Any], defaults: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """Check the arguments of get_or_create/update_or_create; the values to create with."""
        meta = self.model._meta
        for where, names in (("lookups", list(lookups)), ("defaults", list(defaults or ()))):
            if any(name.split("__")[0] == VERSION_ATTR for name in names):
                raise QueryError(
                    f"Cannot pass version in the {where} of {meta.model_name}.objects."
                    f"{action}(): dynorm sets version itself (optimistic locking), so it would "
                    "never match or would be overwritten. Leave it out; to change an object "
                    "only while it is at a known version, get() it, change it and save().",
                    code="bad-query",
                )
        for name in defaults or ():
            meta.check_field(name, "set")
        return {**{k: v for k, v in lookups.items() if "__" not in k}, **(defaults or {})}

    def _create_if_absent(self, values: Mapping[str, Any]) -> M | ConditionFailedError:
        """Create the object (PutItem, attribute_not_exists); the refusal if the key is taken."""
        obj = self.model(**values)
        try:
            obj.save()
        except VersionConflictError:
            raise
        except ConditionFailedError as exc:
            return exc
        return obj

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
        values = self._values_to_create("update_or_create", lookups, defaults)
        taken: ConditionFailedError | None = None
        for _ in range(_MAX_UPDATE_ATTEMPTS):
            try:
                obj = (
                    self.consistent().get(**lookups)
                    if not self._state.index
                    else self.get(**lookups)
                )
            except self.model.DoesNotExist:
                if taken is not None:
                    raise taken from None  # an item has the key but does not match the lookups
                created = self._create_if_absent(values)
                if isinstance(created, ConditionFailedError):
                    taken = created
                    continue  # created concurrently: read it and update it
                return created, True
            for name, value in (defaults or {}).items():
                setattr(obj, name, value)
            try:
                obj.save()
            except VersionConflictError:
                continue
            return obj, False
        raise VersionConflictError(
            f"Cannot update_or_create {self.model._meta.model_name}: the item kept changing "
            f"during {_MAX_UPDATE_ATTEMPTS} attempts; try again.",
            model=self.model._meta.model_name,
            expected_version=0,
        )

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
        from .._persistence import _timestamps, build_item, execute, new_write_token, prepare
        from .._transactions import current_transaction

        meta = self.model._meta
        objs = list(objs)
        for obj in objs:
            if type(obj) is not self.model:
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
        ops: list[WriteOp] = []
        for obj in objs:
            if overwrite:
                overrides = {**_timestamps(obj, True), "version": 1}
                token = new_write_token()
                item = build_item(obj, overrides, token)
                key = (item[PK]["S"], item[SK]["S"])
                applier = _applier(obj, {**overrides, "_key": key}, token)
                put = {"Item": item}
                ops.append(WriteOp("PutItem", put, self.model, _same_error, applier, token=token))
            else:
                ops.append(prepare(obj, ("save", None), partial(obj._save_op, None)))
        seen: set[tuple[str, str]] = set()
        for op in ops:
            key = (op.params["Item"][PK]["S"], op.params["Item"][SK]["S"])
            if key in seen:
                raise QueryError(
                    f"Cannot bulk_create two {meta.model_name} objects with the same key "
                    f"(key fields: {', '.join(sorted(meta.key_fields))}).",
                    code="bad-query",
                )
            seen.add(key)
            op.table = self._state.table
        tx = current_transaction()
        if tx is not None:
            for op in ops:
                tx.add(op)  # conditional Puts (unless overwrite): sent with the block
            return objs
        if overwrite:
            puts = [{"PutRequest": {"Item": op.params["Item"]}} for op in ops]
            batch_write(self._connection(), puts, meta.model_name)
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

    def bulk_get(
        self, keys: Sequence[Mapping[str, Any] | M], *, consistent: bool = False
    ) -> list[M | None]:
        """Read many items by key (BatchGetItem, 100 per request), in request order.

        Missing items come back as None; duplicate keys are read once.
        """
        from ..models import Model as Model_

        meta = self.model._meta
        wanted: list[tuple[str, str]] = []
        for key in keys:
            if isinstance(key, Model_):
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
            values = {f: _coerce(meta, f, key[f]) for f in meta.key_fields}
            wanted.append(meta.primary_key(values))
        found = batch_get(
            self._connection(),
            wanted,
            meta.model_name,
            consistent=consistent,
            decode=wire_decoder(self.model).decode_batch,
        )
        out: list[M | None] = []
        given: set[tuple[str, str]] = set()
        for key_pair in wanted:
            item = found.get(key_pair)
            if item is None or isinstance(item, Model_):  # missing, or a wire-decoded instance
                obj = cast("M | None", item)
                if obj is not None and key_pair in given:  # a repeated key: its own instance
                    obj = obj.model_copy(deep=True)
                given.add(key_pair)
                out.append(obj)
                continue
            ok = item.get(TYPE_ATTR, {}).get("S") == meta.type_name
            out.append(self.model.from_item(item) if ok else None)
        return out

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
        meta = self.model._meta
        self._refuse_sliced("update")
        if not values:
            raise QueryError(f"Cannot update {meta.model_name} with no values.", code="bad-query")
        from .._transactions import current_transaction

        tx = current_transaction()
        # Check field names, F() references and values before anything is sent.
        plan_update(meta, values, dict.fromkeys(meta.field_names), Placeholders(), new_version="1")
        conn = self._connection()
        items = [
            item
            for item, _ in self._raw(self._plan(dataclasses.replace(self._state, projection=None)))
        ]
        if tx is not None:  # join the transaction: sent (or not) with the block
            built = [self._update_params(item, values) for item in items]  # all, or none
            for params, token, _ in built:
                tx.add(
                    WriteOp(
                        "UpdateItem",
                        params,
                        self.model,
                        _same_error,
                        _no_op,
                        token=token,
                        table=self._state.table,
                    )
                )
            return len(items)
        results = in_parallel([partial(self._update_item, conn, item, values) for item in items])
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            raise errors[0]
        return sum(1 for r in results if r is True)

    def _update_params(
        self, item: dict[str, Any], values: Mapping[str, Any]
    ) -> tuple[dict[str, Any], str, int]:
        """The conditional UpdateItem of one read item.

        Returns (params without TableName, the write token, the version read).
        """
        from .._persistence import new_write_token

        meta = self.model._meta
        assert meta.codec is not None
        current = meta.codec.decode(item)
        version = int(item[VERSION_ATTR]["N"]) if VERSION_ATTR in item else 0
        ph = Placeholders()
        condition = self._still_matches(ph, version)
        plan = plan_update(meta, values, current, ph, new_version=str(version + 1))
        token = new_write_token()
        plan.sets.append(f"{ph.name(WRITE_TOKEN_ATTR)} = {ph.value({'S': token})}")
        params = ph.apply(
            {
                "Key": {PK: item[PK], SK: item[SK]},
                "UpdateExpression": plan.expression(),
                "ConditionExpression": condition,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        )
        check_expressions(params, meta.model_name)
        return params, token, version

    def _still_matches(self, ph: Placeholders, version: int) -> str:
        """The condition of a QuerySet write: the version read, and every filter."""
        condition = f"{ph.name(VERSION_ATTR)} = {ph.value({'N': str(version)})}"
        extra = compile_condition(self._state, ph)
        return f"{condition} AND {extra}" if extra else condition

    def _update_item(self, conn: Connection, item: dict[str, Any], values: Any) -> bool:
        """Update one read item; True if this call changed it."""
        from .._persistence import already_applied, disproves, tracking

        meta = self.model._meta
        for attempt in range(1, _MAX_UPDATE_ATTEMPTS + 1):
            params, token, version = self._update_params(item, values)
            with tracking(conn) as box:
                try:
                    conn.send("UpdateItem", {**params, "TableName": conn.table_name})
                    return True
                except ConditionFailedError as exc:
                    old = (exc.response or {}).get("Item")
                    if already_applied(old, token):  # a retry after a lost response
                        return True
                    stored = int(old[VERSION_ATTR]["N"]) if old and VERSION_ATTR in old else None
                    if old is None or stored == version:
                        return False  # deleted, or no longer matches the filters
                    if box.uncertain and not disproves(old, version):
                        raise WriteOutcomeUnknownError(
                            f"Cannot tell whether the update of a {meta.model_name} was "
                            "applied: its response was lost and the item has been changed "
                            "since by someone else; it was not retried. Reload it and check.",
                            model=meta.model_name,
                            expected_version=version,
                            current_version=stored,
                            aws_code=exc.aws_code,
                            response=exc.response,
                        ) from exc
                    if attempt == _MAX_UPDATE_ATTEMPTS:
                        raise VersionConflictError(
                            f"Cannot update {meta.model_name}: an item kept changing during "
                            f"{attempt} attempts; try again.",
                            model=meta.model_name,
                            expected_version=version,
                        ) from exc
                    item = old  # changed since it was read: update it if it still matches
        return False

    def delete(self) -> int:
        """Delete every matching item that still matches when deleted; return the count.

        One DeleteItem per item, conditional on the version read and on the filters (several
        in flight at once): an item changed since it was read is deleted only if it still
        matches (re-read from the refusal), one that no longer matches is skipped, not
        counted. An unfiltered QuerySet must say so with `.all()` first.
        """
        meta = self.model._meta
        self._refuse_sliced("delete")
        if not self._state.where and not self._state.explicit_all:
            raise QueryError(
                f"Cannot delete every {meta.model_name} without saying so: call "
                f".all().delete() (or filter first).",
                code="bad-query",
            )
        from .._transactions import current_transaction

        plan = self._plan(dataclasses.replace(self._state, projection=()))
        items = [item for item, _ in self._raw(plan)]
        tx = current_transaction()
        if tx is not None:  # join the transaction: one conditional Delete action per item
            for item in items:
                params = self._delete_params(item)
                tx.add(
                    WriteOp(
                        "DeleteItem",
                        params,
                        self.model,
                        _same_error,
                        _no_op,
                        table=self._state.table,
                    )
                )
            return len(items)
        conn = self._connection()
        results = in_parallel([partial(self._delete_item, conn, item) for item in items])
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            raise errors[0]
        return sum(1 for r in results if r is True)

    def _delete_params(self, item: dict[str, Any]) -> dict[str, Any]:
        version = int(item[VERSION_ATTR]["N"]) if VERSION_ATTR in item else 0
        ph = Placeholders()
        params = ph.apply(
            {
                "Key": {PK: item[PK], SK: item[SK]},
                "ConditionExpression": self._still_matches(ph, version),
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        )
        check_expressions(params, self.model._meta.model_name)
        return params

    def _delete_item(self, conn: Connection, item: dict[str, Any]) -> bool:
        """Delete one read item if it still matches; True if this call deleted it."""
        from .._persistence import tracking

        meta = self.model._meta
        for attempt in range(1, _MAX_UPDATE_ATTEMPTS + 1):
            params = {**self._delete_params(item), "TableName": conn.table_name}
            version = int(item[VERSION_ATTR]["N"]) if VERSION_ATTR in item else 0
            with tracking(conn) as box:
                try:
                    conn.send("DeleteItem", params)
                    return True
                except ConditionFailedError as exc:
                    old = (exc.response or {}).get("Item")
                    if not old:
                        # Gone: by our own attempt whose response was lost, or by another.
                        return box.uncertain
                    if int(old.get(VERSION_ATTR, {}).get("N", "0")) == version:
                        return False  # no longer matches the filters
                    if attempt == _MAX_UPDATE_ATTEMPTS:
                        raise VersionConflictError(
                            f"Cannot delete {meta.model_name}: an item kept changing during "
                            f"{attempt} attempts; try again.",
                            model=meta.model_name,
                            expected_version=version,
                        ) from exc
                    item = old  # changed since it was read: delete it if it still matches
        return False


def _same_error(exc: DynormError) -> Exception:
    return exc


def _no_op(_: dict[str, Any]) -> None:
    return None


def _applier(
    obj: Any, overrides: dict[str, Any], token: str | None = None
) -> Callable[[dict[str, Any]], None]:
    """Apply a bulk create's version, timestamps and write token to the object once written."""
    from .._persistence import set_stored_token

    def apply(_: dict[str, Any]) -> None:
        values = dict(overrides)
        obj._loaded_key = values.pop("_key")
        obj.__dict__.update(values)
        set_stored_token(obj, token)

    return apply


def _keys(q: Q) -> Iterator[str]:
    for child in q.children:
        if isinstance(child, Q):
            yield from _keys(child)
        else:
            yield child[0]


def _consistent_gsi(model: str) -> QueryError:
    return QueryError(
        f"Cannot read {model} consistently from a global secondary index: DynamoDB only "
        "offers eventually consistent GSI reads. Query the table's key instead.",
        code="consistent-gsi",
    )


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
            if len(plan.requests) == 1 and qs._state.projection is None:
                decoder = collection_decoder((qs.model, *qs._state.include))
                items: list[Model] = []
                for page, _ in qs._follow(plan, partial(_collection_page, decoder)):
                    items.extend(page)
            else:
                items = [m for raw, _ in qs._raw(plan) if (m := _from_any(raw)) is not None]
            self._items = items
        return self._items

    def __iter__(self) -> Iterator[Model]:
        return iter(self._load())

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
