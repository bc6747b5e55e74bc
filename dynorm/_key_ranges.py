"""Which models' key ranges can meet in one table: the guard of models with no type attribute.

A model declared with `type_attribute=None` recognises its items by their keys alone, so any
other model's item inside its key range would be read, counted, updated or deleted as one of
its own. `check_shared_ranges` runs when a model is registered and refuses such a pair in one
table: two models may share a table with one of them untyped only when their key ranges (and
the ranges of every index they both use) cannot meet.

Ranges are compared by their templates' literal text: a constant key (`"PROFILE"`) is one
value, a template with fields (`"Task#{id}"`) is every text that starts with its leading
literal (`"Task#"`). Two ranges are disjoint when neither can start with the other, so the
check is conservative: a plain `"{id}"` key (no leading literal) meets every range.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from ._keys import KeyTemplate
    from ._options import Options

__all__ = ["check_shared_ranges"]


def _range(template: KeyTemplate | None) -> tuple[str, bool] | None:
    """(literal text, whether that is the whole value) of a key template; None: no key."""
    if template is None:
        return None
    if not template.fields:
        return template.source, True
    return template.parts[0][0], False


def _disjoint(a: KeyTemplate | None, b: KeyTemplate | None) -> bool:
    """Whether no text rendered by `a` can equal one rendered by `b`."""
    ra, rb = _range(a), _range(b)
    if ra is None or rb is None:
        return False
    (ta, whole_a), (tb, whole_b) = ra, rb
    if whole_a and whole_b:
        return ta != tb
    if whole_a:
        return not ta.startswith(tb)
    if whole_b:
        return not tb.startswith(ta)
    return not (ta.startswith(tb) or tb.startswith(ta))


def _table_of(meta: Options) -> str | None:
    """The name of the table a model declares (None: the configured default table)."""
    table: Any = meta.table
    if table is None:
        return None
    return str(getattr(table, "name", table))


def _meeting(a: Options, b: Options) -> str | None:
    """Where the key ranges of `a` and `b` can meet (a description), or None."""
    # A table with no sort key: the models' `sk` templates are not stored, only `pk` counts.
    sorted_by = a.layout.sk is not None and b.layout.sk is not None
    if not (_disjoint(a.pk, b.pk) or (sorted_by and _disjoint(a.sk, b.sk))):
        return "their primary keys"
    for x in a.indexes.values():
        for y in b.indexes.values():
            if x.physical_name != y.physical_name:
                continue
            if not (_disjoint(x.pk, y.pk) or _disjoint(x.sk, y.sk)):
                return f"their keys in index {x.physical_name!r}"
    return None


def check_shared_ranges(meta: Options, others: Iterable[Options]) -> None:
    """Refuse `meta` when its key range can meet another model's in the same table.

    Only pairs where one of the two has no type attribute are checked: a typed model's
    reads filter on its type, so a typed pair can share any range.

    Raises:
        ConfigurationError: Names both models, where their ranges meet, and the fix.
    """
    table = _table_of(meta)
    for other in others:
        if other.type_name == meta.type_name or _table_of(other) != table:
            continue
        if meta.layout.type is not None and other.layout.type is not None:
            continue
        untyped, typed = (meta, other) if meta.layout.type is None else (other, meta)
        where = _meeting(meta, other)
        if where is None:
            continue
        place = f"table {table!r}" if table is not None else "the default table"
        raise ConfigurationError(
            f"Cannot register {meta.model_name}: it shares {place} with {other.model_name}, "
            f"{where} can hold the same values, and {untyped.model_name} has no type "
            f"attribute (type_attribute=None), so its reads would return, and its deletes "
            f"remove, {typed.model_name} items as its own. Give the keys different literal "
            "prefixes (e.g. pk='THREAD#{id}'), give both models a type attribute "
            "(Meta.type_attribute), or map them onto separate tables.",
            code="model-definition",
        )
