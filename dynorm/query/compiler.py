"""The pure query compiler: QuerySet state in, DynamoDB request(s) out. Nothing is sent here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._codec import ValueProblem
from .._constants import PK, SK, SORT_KEY_LIMIT
from .._keys import SEPARATOR, KeyTemplate, render_value, successor
from .._options import BoundIndex
from .._request import Request
from ..exceptions import InvalidValueError, QueryError
from ._plain_keys import check_projection, plain_sort_condition
from .expressions import Q
from .lookups import (
    RANGE_LOOKUPS,
    Lookup,
    fixed_width,
    is_orderable,
    parse_lookup,
    render_condition,
)
from .placeholders import Placeholders, check_expressions

if TYPE_CHECKING:
    from .._datetime_format import DateTimeFormat
    from .._options import Options
    from ..models import Model

__all__ = ["Plan", "QueryState", "Request", "compile_query"]


@dataclass(frozen=True)
class QueryState:
    """Everything a QuerySet knows; immutable, so every QuerySet method returns a new one."""

    model: type[Model]
    where: tuple[Q, ...] = ()
    index: str | None = None
    descending: bool = False
    order_field: str | None = None
    projection: tuple[str, ...] | None = None
    consistent: bool = False
    scan: bool = False
    segments: int = 1
    include: tuple[type[Model], ...] = ()
    explicit_all: bool = False
    extra: tuple[tuple[str, Any], ...] = ()
    #: (start, stop) of `qs[start:stop]`, None when not sliced. Not compiled: the QuerySet
    #: reads `stop` items (a Limit on unfiltered queries) and drops the first `start`.
    bounds: tuple[int, int | None] | None = None
    #: `qs.using(table)`: the Table (or name) to send to; never read by the compiler.
    table: Any = None
    #: `qs.none()`: compiles to no request at all.
    empty: bool = False

    def option(self, name: str, default: Any = None) -> Any:
        """Return an extension option (used by versioned models)."""
        return dict(self.extra).get(name, default)


@dataclass
class Plan:
    """The compiled form of a QuerySet."""

    requests: list[Request]
    #: (pk, sk) when the query names one whole primary key and nothing else (GetItem-able).
    get_key: tuple[str, str] | None = None
    has_filter: bool = False
    key_attrs: tuple[str, ...] = (PK, SK)  # the layout's, set by compile_query
    models: tuple[type[Model], ...] = field(default_factory=tuple)


def _flatten(state: QueryState) -> tuple[list[Lookup], list[Q]]:
    """Split the AND-ed top level into plain lookups (key candidates) and other Q nodes."""
    meta = state.model._meta
    leaves: list[Lookup] = []
    residual: list[Q] = []

    def visit(q: Q) -> None:
        if q.negated or (q.connector == "OR" and len(q.children) > 1):
            _validate(meta, q)
            residual.append(q)
            return
        for child in q.children:
            if isinstance(child, Q):
                visit(child)
            else:
                leaves.append(parse_lookup(meta, child[0], child[1]))

    for q in state.where:
        visit(q)
    return leaves, residual


def _validate(meta: Options, q: Q) -> None:
    for child in q.children:
        if isinstance(child, Q):
            _validate(meta, child)
        else:
            parse_lookup(meta, child[0], child[1])


def _render_q(meta: Options, q: Q, ph: Placeholders) -> str:
    parts = []
    for child in q.children:
        if isinstance(child, Q):
            parts.append(_render_q(meta, child, ph))
        else:
            parts.append(render_condition(meta, parse_lookup(meta, child[0], child[1]), ph))
    parts = [p for p in parts if p]
    if not parts:
        return ""
    text = parts[0] if len(parts) == 1 else "(" + f" {q.connector} ".join(parts) + ")"
    return f"(NOT {text})" if q.negated else text


def _key_templates(
    state: QueryState,
) -> tuple[KeyTemplate, KeyTemplate, str, str, BoundIndex | None]:
    meta = state.model._meta
    if state.index is None:
        assert meta.pk is not None and meta.sk is not None
        # A table with no sort key: sk_attr "" (no sort condition, the key is the pk).
        return meta.pk, meta.sk, meta.layout.pk, meta.layout.sk or "", None
    index = meta.indexes[state.index]
    return index.pk, index.sk, index.pk_attr, index.sk_attr, index


def _needs_scan(state: QueryState, eq: dict[str, Lookup], pk_tpl: KeyTemplate) -> QueryError:
    meta = state.model._meta
    where = f"index {state.index!r}" if state.index else "the table"
    missing = [f for f in pk_tpl.fields if f not in eq]
    usable = [
        name
        for name, idx in meta.indexes.items()
        if name != state.index and all(f in eq for f in idx.pk.fields)
    ]
    if usable:
        hint = f"Use .using_gsi({usable[0]!r}), whose partition key your filter fixes,"
    elif state.index is not None and meta.pk is not None and all(f in eq for f in meta.pk.fields):
        hint = "Drop .using_gsi() to query the table's own key,"
    else:
        hint = "Add equality filters on those fields,"
    return QueryError(
        f"Cannot query {meta.model_name} on {where} without equality on its partition-key "
        f"field(s) {', '.join(missing)}: that would need a Scan. {hint} or call .scan() to "
        "read everything explicitly.",
        code="needs-scan",
    )


def _check_order(state: QueryState, sk_tpl: KeyTemplate, eq: dict[str, Lookup]) -> None:
    name = state.order_field
    if name is None:
        return
    meta = state.model._meta
    on = f"index {state.index!r}" if state.index else "the table"
    if state.scan:
        raise QueryError(
            f"Cannot order a scan of {meta.model_name}: a Scan has no order. Query a key "
            "instead, or sort the results in Python.",
            code="bad-order-by",
        )
    if name not in sk_tpl.fields:
        fields = ", ".join(sk_tpl.fields) or "none"
        raise QueryError(
            f"Cannot order {meta.model_name} by {name!r} on {on}: DynamoDB sorts by the sort "
            f"key only (its fields: {fields}). Use an index whose sort key is {name!r}.",
            code="bad-order-by",
        )
    for literal_name in sk_tpl.fields[: sk_tpl.fields.index(name)]:
        if literal_name not in eq:
            raise QueryError(
                f"Cannot order {meta.model_name} by {name!r} on {on}: the sort key orders by "
                f"{literal_name!r} first; filter {literal_name} to one value or order by it.",
                code="bad-order-by",
            )
    spec = next(s for _, f, s in sk_tpl.parts if f == name)
    if not is_orderable(meta, name, spec):
        raise QueryError(
            f"Cannot order {meta.model_name} by {name!r}: its key text does not sort like its "
            f"values; give it a fixed-width format spec in the template (e.g. '{{{name}:010d}}').",
            code="bad-order-by",
        )


def _projection(state: QueryState, ph: Placeholders, key_attrs: tuple[str, ...]) -> str | None:
    if state.projection is None:
        return None
    meta = state.model._meta
    # The write token too: a partial object's writes are conditional on it, as a whole one's.
    layout = meta.layout
    attrs: list[str] = [*key_attrs]
    attrs += [a for a in (layout.type, layout.version, layout.token) if a is not None]
    for name in state.projection:
        meta.check_field(name, "select with only()")
        attrs.append(meta.attr_names[name])
    if meta.migrations is not None:
        # Upgrading an item of an older schema version needs the whole item: a model with a
        # schema version reads whole items and keeps the fields asked for (a projection
        # saves bandwidth only; DynamoDB charges the whole item's reads either way).
        return None
    return ", ".join(ph.name(a) for a in dict.fromkeys(attrs))


def compile_query(state: QueryState, table_name: str) -> Plan:
    """Compile a QuerySet state into its DynamoDB request(s); pure, never sends."""
    try:
        return _compile_query(state, table_name)
    except ValueProblem as exc:
        name = state.model._meta.model_name
        raise InvalidValueError(
            f"Cannot query {name}: a key value {exc.reason}.", model=name
        ) from None


def _compile_query(state: QueryState, table_name: str) -> Plan:
    meta = state.model._meta
    if state.empty:  # `none()`: nothing to ask DynamoDB
        return Plan([], models=(state.model, *state.include))
    if state.index is not None and state.index not in meta.indexes:
        raise QueryError(
            f"Cannot use index {state.index!r} on {meta.model_name}: no such index."
            f"{meta.suggest_index(state.index)}",
            code="unknown-index",
        )
    pk_tpl, sk_tpl, pk_attr, sk_attr, index = _key_templates(state)
    table_keys = meta.layout.key_attrs
    key_attrs = table_keys if index is None else (*table_keys, pk_attr, sk_attr)
    key_attrs = tuple(dict.fromkeys(key_attrs))  # an LSI shares the table's pk
    if index is not None:
        check_projection(state, index)
    if state.include and meta.layout.type is None:
        raise QueryError(
            f"Cannot include() other models with {meta.model_name}: its layout has no type "
            "attribute (type_attribute=None), so the items of several models cannot be told "
            "apart; query each model on its own.",
            code="bad-query",
        )
    leaves, residual = _flatten(state)
    eq: dict[str, Lookup] = {}
    for lk in leaves:
        if lk.lookup == "exact" and lk.is_plain and lk.value is not None:
            eq.setdefault(lk.field, lk)
    _check_order(state, sk_tpl, eq)
    models = (state.model, *state.include)
    if state.scan and state.descending:
        raise QueryError(
            f"Cannot reverse a scan of {meta.model_name}: a Scan has no order. Query a key "
            "instead, or sort the results in Python.",
            code="bad-order-by",
        )
    if state.scan:
        return _compile_scan(state, table_name, leaves, residual, index, key_attrs, models)

    if not all(f in eq for f in pk_tpl.fields):
        raise _needs_scan(state, eq, pk_tpl)
    consumed: set[int] = set()
    ph = Placeholders()
    values = {f: lk.value for f, lk in eq.items()}
    pk_value = _render(meta, pk_tpl, values, "partition key")
    for f in pk_tpl.fields:
        consumed.add(id(eq[f]))
    key_cond = f"{ph.name(pk_attr)} = {ph.value(meta.layout.av(pk_attr, pk_value))}"

    prefix = ""
    sk_mode = "none"
    get_key: tuple[str, str] | None = None
    if not sk_attr:  # a table with no sort key: the partition key is the whole key
        if not state.include:
            get_key = (pk_value, "")
    elif not state.include:
        sort = plain_sort_condition if sk_tpl.raw else _sort_condition
        prefix, sk_mode, sk_cond, used = sort(state, sk_tpl, sk_attr, leaves, eq, ph)
        consumed |= used
        if sk_cond:
            key_cond += f" AND {sk_cond}"
        if sk_mode == "eq" and index is None:
            get_key = (pk_value, prefix)

    filters = [render_condition(meta, lk, ph) for lk in leaves if id(lk) not in consumed]
    filters += [text for q in residual if (text := _render_q(meta, q, ph))]
    has_filter = bool(filters)
    # Every read of a model is restricted to its entity type: key text alone cannot prove
    # it (another model may render the same prefix, and GSI keys are not unique). With no
    # type attribute, the model's key range holds only that model (the docs say so).
    if meta.layout.type is not None:
        filters.append(_type_filter(models, ph))
    if get_key is not None and (has_filter or state.projection is not None):
        get_key = None
    params: dict[str, Any] = {"TableName": table_name}
    if index is not None:
        params["IndexName"] = index.physical_name
    params["KeyConditionExpression"] = key_cond
    if filters:
        params["FilterExpression"] = " AND ".join(filters)
    projection = _projection(state, ph, key_attrs)
    if projection:
        params["ProjectionExpression"] = projection
    if state.descending != _default_descending(state, sk_tpl):
        params["ScanIndexForward"] = False
    if state.consistent:
        params["ConsistentRead"] = True
    ph.apply(params)
    check_expressions(params, meta.model_name)
    return Plan([Request("Query", params)], get_key, has_filter, key_attrs, models)


def _default_descending(state: QueryState, sk_tpl: KeyTemplate) -> bool:
    """Whether `Meta.ordering` reads this query newest first (no `order_by()` given).

    The direction applies to a query whose sort key holds the ordering field; `order_by()`
    replaces it and `reverse()` flips it.
    """
    ordering = state.model._meta.ordering
    if ordering is None or state.order_field is not None:
        return False
    name, descending = ordering
    return descending and name in sk_tpl.fields


def _type_filter(models: tuple[type[Model], ...], ph: Placeholders) -> str:
    """The condition that keeps only items of the queried entity type(s)."""
    types = [m._meta.type_name for m in models]
    attr = models[0]._meta.layout.type
    assert attr is not None
    if len(types) == 1:
        return f"{ph.name(attr)} = {ph.value({'S': types[0]})}"
    return f"{ph.name(attr)} IN ({', '.join(ph.value({'S': t}) for t in types)})"


def _render(meta: Options, tpl: KeyTemplate, values: dict[str, Any], role: str) -> str:
    text = meta.key_value(tpl, values, role)
    assert text is not None
    return text


def _sort_condition(
    state: QueryState,
    tpl: KeyTemplate,
    attr: str,
    leaves: list[Lookup],
    eq: dict[str, Lookup],
    ph: Placeholders,
) -> tuple[str, str, str, set[int]]:
    """Return (prefix, mode, condition, consumed lookups) for the sort key.

    The prefix is rendered by the key codec and always ends with the literal after the last
    fixed field, so it selects exactly the keys of those field values. Range bounds rely on
    the codec's order: a value's text never contains `#`, and `#` sorts below every character
    it can contain, so `P + text(v) + "#..."` orders by `v` even when more key text follows.
    """
    meta = state.model._meta
    prefix = ""
    used: set[int] = set()
    for i, (literal, name, spec) in enumerate(tpl.parts):
        prefix += literal
        if name is None:
            continue
        if name in eq:
            prefix += tpl.value_text(eq[name].value, spec, name=name)
            used.add(id(eq[name]))
            continue
        last = i == len(tpl.parts) - 1
        rng = next(
            (
                lk
                for lk in leaves
                if lk.field == name
                and lk.is_plain
                and lk.lookup in RANGE_LOOKUPS
                and lk.value is not None
            ),
            None,
        )
        if rng is not None and rng.lookup == "begins_with":
            if is_orderable(meta, name, "") and not spec and isinstance(rng.value, str):
                # The escape is a prefix-free, character-wise code: exact for any position.
                used.add(id(rng))
                return prefix, "range", _begins(ph, attr, prefix + render_value(rng.value)), used
            rng = None
        if rng is not None and is_orderable(meta, name, spec) and _fits(rng, spec):
            cond, exact = _range(ph, attr, prefix, rng, spec, last, tpl.formats.get(name))
            if exact:
                used.add(id(rng))
            return prefix, "range", cond, used
        if prefix:
            return prefix, "prefix", _begins(ph, attr, prefix), used
        return prefix, "none", "", used
    return prefix, "eq", f"{ph.name(attr)} = {ph.value({'S': prefix})}", used


def _fits(lk: Lookup, spec: str) -> bool:
    """Whether range bounds render in the field's fixed width (else use prefix + filter)."""
    width = fixed_width(spec)
    if width is None:
        return True
    values = lk.value if lk.lookup == "between" else (lk.value,)
    texts = [render_value(v, spec, strict=False) for v in values]
    return all(len(t) == width and not t.startswith("-") for t in texts)


def _bound(text: str) -> dict[str, str]:
    """A sort-key bound as an attribute value; DynamoDB refuses one over the key limit."""
    if len(text.encode("utf-8")) > SORT_KEY_LIMIT:
        raise ValueProblem(
            f"makes a sort-key bound over DynamoDB's {SORT_KEY_LIMIT}-byte limit; shorten it"
        )
    return {"S": text}


def _begins(ph: Placeholders, attr: str, text: str) -> str:
    return f"begins_with({ph.name(attr)}, {ph.value(_bound(text))})"


#: Sorts after the separator and below every character of a rendered value ("$XX", "%"...):
#: `P + text(v) + AFTER_SEPARATOR` is above every key whose field equals `v`, and below every
#: key whose field is greater.
AFTER_SEPARATOR = chr(ord(SEPARATOR) + 1)


def _range(
    ph: Placeholders,
    attr: str,
    prefix: str,
    lk: Lookup,
    spec: str,
    last: bool,
    fmt: DateTimeFormat | None = None,
) -> tuple[str, bool]:
    """A sort-key range inside `prefix`; returns (condition, exact).

    Not last in the template, keys read `P + text(v) + "#" + more`; last, `P + text(v)`. An
    exact range lets the lookup leave the filter; `lt`/`gt` on the last field keep it (the
    bound itself is inclusive).
    """

    def text(value: Any) -> str:
        return prefix + render_value(value, spec, fmt=fmt)

    above = "" if last else AFTER_SEPARATOR  # just above every key whose field equals v
    low: str | None = None
    high: str | None = None
    exact = True
    if lk.lookup == "gte":
        low = text(lk.value)
    elif lk.lookup == "gt":
        low = text(lk.value) + above
        exact = not last
    elif lk.lookup == "lte":
        high = text(lk.value) + above
    elif lk.lookup == "lt":
        high = text(lk.value)
        exact = not last
    else:
        low, high = text(lk.value[0]), text(lk.value[1]) + above
    name = ph.name(attr)
    if low is None:
        low = prefix or None
    if high is None and prefix:
        high = successor(prefix)
        if high is None:
            exact = False
    if low is not None and high is not None:
        return f"{name} BETWEEN {ph.value(_bound(low))} AND {ph.value(_bound(high))}", exact
    if low is not None:
        return f"{name} >= {ph.value(_bound(low))}", exact
    assert high is not None
    return f"{name} <= {ph.value(_bound(high))}", exact


def _compile_scan(
    state: QueryState,
    table_name: str,
    leaves: list[Lookup],
    residual: list[Q],
    index: BoundIndex | None,
    key_attrs: tuple[str, ...],
    models: tuple[type[Model], ...],
) -> Plan:
    meta = state.model._meta
    ph = Placeholders()
    filters = [render_condition(meta, lk, ph) for lk in leaves]
    filters += [text for q in residual if (text := _render_q(meta, q, ph))]
    has_filter = bool(filters)
    if meta.layout.type is not None:
        filters.append(_type_filter(models, ph))
    params: dict[str, Any] = {"TableName": table_name}
    if index is not None:
        params["IndexName"] = index.physical_name
    if filters:
        params["FilterExpression"] = " AND ".join(filters)
    projection = _projection(state, ph, key_attrs)
    if projection:
        params["ProjectionExpression"] = projection
    if state.consistent:
        params["ConsistentRead"] = True
    ph.apply(params)
    check_expressions(params, meta.model_name)
    if state.segments <= 1:
        return Plan([Request("Scan", params)], None, has_filter, key_attrs, models)
    requests = [
        Request("Scan", {**params, "Segment": i, "TotalSegments": state.segments})
        for i in range(state.segments)
    ]
    return Plan(requests, None, has_filter, key_attrs, models)


def compile_condition(state: QueryState, ph: Placeholders) -> str | None:
    """Render every filter of a state as one condition (for conditional writes over a query)."""
    meta = state.model._meta
    leaves, residual = _flatten(state)
    parts = [render_condition(meta, lk, ph) for lk in leaves]
    parts += [text for q in residual if (text := _render_q(meta, q, ph))]
    if meta.layout.type is not None:
        parts.append(f"{ph.name(meta.layout.type)} = {ph.value({'S': meta.type_name})}")
    return " AND ".join(parts) if parts else None


def consistent_gsi_error(model: str) -> QueryError:
    """The refusal of a consistent read from a GSI (DynamoDB has none)."""
    return QueryError(
        f"Cannot read {model} consistently from a global secondary index: DynamoDB only "
        "offers eventually consistent GSI reads. Query the table's key instead.",
        code="consistent-gsi",
    )
