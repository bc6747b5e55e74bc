"""Django's other QuerySet terminals: values(), values_list(), in_bulk(), none(), latest(), ...

`QuerySet` inherits them from `DjangoTerminals`; they read through the QuerySet's own plan,
so each compiles like any read (never a silent scan) and `explain()` shows the same request.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, overload

from pydantic import TypeAdapter
from typing_extensions import Self, TypeVar

from ..exceptions import QueryError
from . import aggregates
from .compiler import Plan, QueryState

if TYPE_CHECKING:
    from .._options import Options
    from ..models import Model

__all__ = ["DjangoTerminals"]

M = TypeVar("M", bound="Model")


class DjangoTerminals(Generic[M]):
    """The Django terminals of `QuerySet` that return plain values (or nothing at all)."""

    if TYPE_CHECKING:  # provided by QuerySet

        model: type[M]
        _state: QueryState

        def _clone(self, **changes: Any) -> Self: ...

        def _plan(self, state: QueryState | None = None) -> Plan: ...

        def _raw(
            self,
            plan: Plan,
            *,
            limit: int | None = None,
            start_key: dict[str, Any] | None = None,
        ) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]: ...

        def order_by(self, field: str) -> Self: ...

        def first(self) -> M | None: ...

        def count(self) -> int: ...

        def bulk_get(
            self, keys: Sequence[Mapping[str, Any] | M], *, consistent: bool = False
        ) -> list[M | None]: ...

    def none(self) -> Self:
        """Return a QuerySet that matches nothing and sends nothing (Django's `none()`).

        It stays empty through `filter()` and friends; `count()` is 0, `delete()` and
        `update()` return 0, `page()` is one empty page.
        """
        return self._clone(empty=True, explicit_all=True)

    def values(self, *fields: str) -> list[dict[str, Any]]:
        """Return the matches as dicts of these fields (all fields if none); no instances.

        DynamoDB: a Query (or the Scan asked for) with a ProjectionExpression of the fields,
        paginated; a slice reads only as many items as it needs.
        """
        names = _names(self.model._meta, fields, "values")
        read = _reader(self.model, names)
        return [dict(zip(names, read(item))) for item in _stream(self, names)]

    @overload
    def values_list(self, field: str, /, *, flat: Literal[True]) -> list[Any]: ...

    @overload
    def values_list(self, *fields: str, flat: Literal[False] = ...) -> list[tuple[Any, ...]]: ...

    @overload
    def values_list(self, *fields: str, flat: bool) -> list[Any]: ...

    def values_list(self, *fields: str, flat: bool = False) -> list[Any]:
        """Return the matches as tuples of these fields; with `flat=True` (one field), values.

        DynamoDB: as `values()`.
        """
        meta = self.model._meta
        if flat and len(fields) != 1:
            raise QueryError(
                f"Cannot use values_list(flat=True) of {meta.model_name} with "
                f"{len(fields)} fields: flat needs exactly one; drop flat for tuples.",
                code="bad-query",
            )
        names = _names(meta, fields, "values_list")
        read = _reader(self.model, names)
        rows = (read(item) for item in _stream(self, names))
        return [row[0] for row in rows] if flat else list(rows)

    def in_bulk(self, keys: Iterable[Any], *, consistent: bool = False) -> dict[Any, M]:
        """Return {key: object} for the keys that exist (BatchGetItem, 100 per request).

        A key is the key-field value for a model whose primary key has one field
        (`Customer`: its `id`), else a tuple of the key fields in template order (pk, then
        sk: `(customer_id, id)` for `Order`) or a mapping of them. The result is keyed the
        same way (a tuple for several fields); missing keys are left out.
        """
        meta = self.model._meta
        if self._state.empty:
            return {}
        pristine = dataclasses.replace(
            self._state, table=None, consistent=False, explicit_all=False, empty=False
        )
        if pristine != QueryState(self.model):
            raise QueryError(
                f"Cannot call in_bulk() on a filtered, ordered, sliced or indexed QuerySet of "
                f"{meta.model_name}: it reads by primary key only. Call it on "
                f"{meta.model_name}.objects (or .using(table)), and filter the dict.",
                code="bad-query",
            )
        order = _key_order(meta)
        wanted = [_key_mapping(meta, order, key) for key in keys]
        if not wanted:
            return {}
        found = self.bulk_get(wanted, consistent=consistent or self._state.consistent)
        out: dict[Any, M] = {}
        for obj in found:
            if obj is not None:
                ident = tuple(getattr(obj, f) for f in order)
                out[ident[0] if len(order) == 1 else ident] = obj
        return out

    def latest(self, field: str) -> M:
        """Return the match with the greatest `field`, a sort-key field of the index in use.

        DynamoDB: one Query, newest first, with `Limit` 1 (a filter may need more pages).

        Raises:
            QueryError: `field` is not in the sort key; the message names the index to use.
            DoesNotExist: Nothing matches.
        """
        return self._edge(field, "latest")

    def earliest(self, field: str) -> M:
        """Return the match with the smallest `field` (see `latest()`)."""
        return self._edge(field, "earliest")

    def _edge(self, field: str, which: Literal["latest", "earliest"]) -> M:
        meta = self.model._meta
        meta.check_field(field, f"call {which}() on")
        index = self._state.index
        sort_key = meta.sk if index is None else meta.indexes[index].sk
        if sort_key is not None and field not in sort_key.fields and not self._state.scan:
            usable = [n for n, i in meta.indexes.items() if field in i.sk.fields and n != index]
            fix = (
                f"query .using_gsi({usable[0]!r}), whose sort key holds it,"
                if usable
                else "declare an index whose sort key holds it,"
            )
            raise QueryError(
                f"Cannot call {which}({field!r}) on {meta.model_name}: DynamoDB finds the "
                f"{which} item by the sort key only, and {field!r} is not in the sort key of "
                f"{'the table' if index is None else f'index {index!r}'}. To fix it, {fix} "
                f"or use aggregate(Max({field!r})), which reads every match.",
                code="bad-order-by",
            )
        found = self.order_by(f"-{field}" if which == "latest" else field).first()
        if found is None:
            raise self.model.DoesNotExist(
                f"Cannot get the {which} {meta.model_name}: nothing matches the query."
            )
        return found

    def aggregate(
        self, *args: aggregates.Aggregate, **named: aggregates.Aggregate
    ) -> dict[str, Any]:
        """Return {alias: value} of `Count()`, `Sum(f)`, `Min(f)`, `Max(f)`, `Avg(f)`.

        Positional aggregates are keyed `field__function` (`total__sum`, `count`), keyword
        ones by their keyword. Computed client-side over every match.

        DynamoDB: the query's pages with a ProjectionExpression of the aggregated fields;
        this reads (and is billed for) every matching item. `aggregate(Count())` alone is
        Select=COUNT, as `count()`.
        """
        meta = self.model._meta
        wanted = aggregates.collect(meta, args, named)
        if all(type(a) is aggregates.Count and a.field is None for a in wanted.values()):
            total = self.count()
            return dict.fromkeys(wanted, total)
        names = tuple(dict.fromkeys(a.field for a in wanted.values() if a.field is not None))
        read = _reader(self.model, names)
        rows = (dict(zip(names, read(item))) for item in _stream(self, names))
        return aggregates.evaluate(wanted, rows)


def _names(meta: Options, fields: tuple[str, ...], action: str) -> tuple[str, ...]:
    for name in fields:
        meta.check_field(name, f"select with {action}()")
    return tuple(dict.fromkeys(fields)) if fields else meta.field_names


def _key_order(meta: Options) -> tuple[str, ...]:
    assert meta.pk is not None and meta.sk is not None
    return tuple(dict.fromkeys((*meta.pk.fields, *meta.sk.fields)))


def _key_mapping(meta: Options, order: tuple[str, ...], key: Any) -> Any:
    if isinstance(key, Mapping) or hasattr(type(key), "_meta"):
        return key  # bulk_get checks it
    if len(order) == 1 and not isinstance(key, tuple):
        return {order[0]: key}
    if isinstance(key, tuple) and len(key) == len(order):
        return dict(zip(order, key))
    raise QueryError(
        f"Cannot call in_bulk() of {meta.model_name} with a {type(key).__name__}: pass "
        f"tuples of its key fields ({', '.join(order)}) or mappings of them.",
        code="bad-query",
    )


def _stream(qs: DjangoTerminals[Any], names: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """The raw items of the query, projected on `names`; a slice reads no more than it needs."""
    start, stop = qs._state.bounds or (0, None)
    if stop is not None and stop <= start:
        return
    plan = qs._plan(dataclasses.replace(qs._state, projection=names, bounds=None))
    raw = qs._raw(plan, limit=stop)
    try:
        for item, _ in itertools.islice(raw, start, stop):
            yield item
    finally:  # stop scan segment threads now
        if isinstance(raw, Generator):
            raw.close()


def _reader(model: type[Model], names: tuple[str, ...]) -> Any:
    """A function from a raw item to the values of `names`, each of its field's type."""
    meta = model._meta
    assert meta.codec is not None
    codecs = [meta.codec.by_name[name] for name in names]
    adapters = [_adapter(model, name) for name in names]

    upgrade = meta.codec.upgrade  # a model with a schema version reads whole items

    def read(item: Mapping[str, Any]) -> tuple[Any, ...]:
        if upgrade is not None:
            item = upgrade(item)
        out = []
        for codec, adapter in zip(codecs, adapters):
            raw = item.get(codec.attr)
            if raw is not None:
                value = codec.decode(raw)
            else:
                value = codec.missing() if codec.missing is not None else None
            out.append(None if value is None else adapter.validate_python(value))
        return tuple(out)

    return read


def _adapter(model: type[Model], name: str) -> TypeAdapter[Any]:
    """The validator of one field (stored values are validated like `from_item` does)."""
    cache: dict[str, TypeAdapter[Any]] = model._meta.extra.setdefault("value_adapters", {})
    adapter = cache.get(name)
    if adapter is None:
        info = model.model_fields[name]
        form: Any = Annotated[info.annotation, info]
        adapter = cache[name] = TypeAdapter(form)
    return adapter
