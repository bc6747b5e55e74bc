"""The read compiler's parts for existing tables: plain-value sort keys, index projections.

A plain-value key (`sk = "{subject}"` on a table dynorm does not manage, or a key attribute
that is a field's own) holds the value itself: `S` text or an `N` number. Its range lookups
compile to DynamoDB's own comparisons (`>`, `<`, `BETWEEN`, `begins_with` on text), which
order numbers numerically and strings by their UTF-8 bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import QueryError
from .lookups import RANGE_LOOKUPS, Lookup, is_orderable
from .placeholders import Placeholders

if TYPE_CHECKING:
    from .._keys import KeyTemplate
    from .._options import BoundIndex
    from .compiler import QueryState

__all__ = ["check_projection", "plain_sort_condition"]

_COMPARISONS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def plain_sort_condition(
    state: QueryState,
    tpl: KeyTemplate,
    attr: str,
    leaves: list[Lookup],
    eq: dict[str, Lookup],
    ph: Placeholders,
) -> tuple[str, str, str, set[int]]:
    """(key text, mode, condition, consumed lookups) of a plain-value sort key."""
    meta = state.model._meta
    layout = meta.layout
    (name,) = tpl.fields
    number = layout.types.get(attr) == "N"

    def value(v: Any) -> str:
        return ph.value(layout.av(attr, tpl.value_text(v)))

    if name in eq:
        text = tpl.value_text(eq[name].value)
        return text, "eq", f"{ph.name(attr)} = {ph.value(layout.av(attr, text))}", {id(eq[name])}
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
    if rng is None or not (number or is_orderable(meta, name, "")):
        return "", "none", "", set()
    key = ph.name(attr)
    if rng.lookup == "begins_with":
        if number or not isinstance(rng.value, str):
            return "", "none", "", set()
        return "", "range", f"begins_with({key}, {value(rng.value)})", {id(rng)}
    if rng.lookup == "between":
        low, high = rng.value
        return "", "range", f"{key} BETWEEN {value(low)} AND {value(high)}", {id(rng)}
    return "", "range", f"{key} {_COMPARISONS[rng.lookup]} {value(rng.value)}", {id(rng)}


def check_projection(state: QueryState, index: BoundIndex) -> None:
    """Refuse a query of an index that does not project every attribute the model needs.

    A missing attribute would build instances with defaults in place of stored values, and
    a save of one would overwrite them: never silently. `only()` the projected fields, or
    project ALL.
    """
    if index.projection == "ALL":
        return
    meta = state.model._meta
    layout = meta.layout
    projected = {*layout.key_attrs, index.pk_attr, index.sk_attr}
    if index.projection != "KEYS_ONLY":
        projected |= set(index.projection)
    wanted = state.projection if state.projection is not None else meta.field_names
    needed = {meta.attr_names[f]: f for f in wanted if f != "version" and f in meta.attr_names}
    # The type filter reads the type attribute (absent: nothing would match); a whole object
    # needs its version (a partial one from only() is conditional on it and refused instead).
    version = layout.version if state.projection is None else None
    for attr, what in ((layout.type, "the type attribute"), (version, "version")):
        if attr is not None:
            needed[attr] = what
    missing = sorted(f"{what} ({attr!r})" for attr, what in needed.items() if attr not in projected)
    if missing:
        kind = "KEYS_ONLY" if index.projection == "KEYS_ONLY" else "a projection"
        raise QueryError(
            f"Cannot query {meta.model_name} on index {index.name!r}: the index projects "
            f"{kind}, which lacks {', '.join(missing)}, so the objects would be built without "
            "those values. Select only projected fields with only(...), or give the index "
            "projection='ALL'.",
            code="bad-query",
        )
