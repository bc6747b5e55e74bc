"""Lookups: parse `field__path__lookup=value`, validate it, encode values, render conditions."""

from __future__ import annotations

import difflib
import enum
import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from .._codec import ValueProblem, invalid_value, to_wire, unwrap_optional
from .._constants import IN_OPERANDS_LIMIT
from ..exceptions import QueryError
from .placeholders import Placeholders

if TYPE_CHECKING:
    from .._options import Options

__all__ = ["COMPARATORS", "LOOKUPS", "Lookup", "parse_lookup", "render_condition"]

COMPARATORS = {"exact": "=", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
LOOKUPS = (*COMPARATORS, "between", "begins_with", "in", "contains", "exists")
RANGE_LOOKUPS = frozenset({"lt", "lte", "gt", "gte", "between", "begins_with"})
_SIZE_LOOKUPS = frozenset({*COMPARATORS, "between"})


@dataclass(frozen=True)
class Lookup:
    """One parsed lookup: field, nested path, operator and its (validated) value."""

    field: str
    path: tuple[str, ...]
    lookup: str
    size: bool
    value: Any
    attr_path: tuple[str, ...]

    @property
    def is_plain(self) -> bool:
        """A lookup on a whole top-level field (no nested path, no size())."""
        return not self.path and not self.size


def _adapter(meta: Options, name: str, annotation: Any) -> TypeAdapter[Any]:
    cache: dict[str, TypeAdapter[Any]] = meta.extra.setdefault("adapters", {})
    adapter = cache.get(name)
    if adapter is None:
        adapter = cache[name] = TypeAdapter(annotation)
    return adapter


def _annotation(meta: Options, name: str) -> Any:
    annotations: dict[str, Any] = meta.extra.get("annotations", {})
    return annotations.get(name, Any)


def _walk_path(meta: Options, name: str, path: list[str]) -> None:
    """Check a nested path against nested pydantic models where the type says what is allowed."""
    current: Any  # an annotation: a class, a generic alias, Any itself
    current, _ = unwrap_optional(_annotation(meta, name))
    walked = name
    for part in path:
        if isinstance(current, type) and issubclass(current, BaseModel):
            if part not in current.model_fields:
                close = difflib.get_close_matches(part, list(current.model_fields), n=1)
                hint = f" Perhaps you meant {close[0]!r}?" if close else ""
                raise QueryError(
                    f"Cannot filter {meta.model_name} on {walked}__{part}: {current.__name__} "
                    f"has no field {part!r}.{hint}",
                    code="unknown-field",
                )
            current, _ = unwrap_optional(current.model_fields[part].annotation)
        elif current is Any or get_origin(current) in (dict, typing.Mapping) or current is dict:
            args = get_args(current)
            current = args[1] if len(args) == 2 else Any
        else:
            close = difflib.get_close_matches(part, [*LOOKUPS, "size"], n=1)
            hint = f" Perhaps you meant {close[0]!r}?" if close else ""
            raise QueryError(
                f"Cannot filter {meta.model_name} on {walked}__{part}: {part!r} is not a lookup, "
                f"and {walked} is not a map. Lookups: {', '.join(LOOKUPS)}, size__<cmp>.{hint}",
                code="unknown-lookup",
            )
        walked = f"{walked}__{part}"


def _coerce(
    meta: Options, name: str, value: Any, lookup: str | None = None, *, action: str | None = None
) -> Any:
    """Validate a lookup value as the field's type (so '2024-01-01' works for a datetime).

    With `lookup` (a filter) or `action` (what the caller does with the value, e.g.
    `"get Order by seq"`), a value that does not validate raises QueryError naming the
    model, the field and the lookup or action (never the value); with neither, pydantic's
    ValidationError.
    """
    annotation = _annotation(meta, name)
    adapter = _adapter(meta, name, annotation)
    if lookup is None and action is None:
        return adapter.validate_python(value)
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        kinds = ", ".join(sorted({str(e["type"]) for e in exc.errors()}))
        doing = action or f"filter {meta.model_name} on {name} (lookup {lookup})"
        raise QueryError(
            f"Cannot {doing}: the value is not a valid {_type_name(annotation)} ({kinds}); "
            "pass a value of the field's type.",
            code="bad-query",
        ) from None


def _type_name(annotation: Any) -> str:
    """A short name for a field's type in messages (never a value)."""
    base, optional = unwrap_optional(annotation)
    name = getattr(base, "__name__", None) or str(base).replace("typing.", "")
    if get_origin(base) is Literal:
        name = "Literal choice"
    return f"{name} (or None)" if optional else name


def encode_value(meta: Options, name: str, value: Any) -> dict[str, Any]:
    """Encode one field value as the codec stores it."""
    assert meta.codec is not None
    av = meta.codec.encode_field(name, value)
    if av is None:
        raise QueryError(
            f"Cannot compare {meta.model_name}.{name} with an empty value (None or an empty "
            "set is not stored); use the exists lookup instead.",
            code="bad-query",
        )
    return dict(av)


def encode_raw(meta: Options, name: str, value: Any) -> dict[str, Any]:
    """Encode a value inside a field (a set member, a nested map value)."""
    try:
        av = to_wire(value)
    except ValueProblem as exc:
        raise invalid_value("filter on", meta.model_name, name, exc) from None
    if av is None:
        raise QueryError(
            f"Cannot compare {meta.model_name}.{name} with None inside a lookup; use "
            f"{name}__exists=False.",
            code="bad-query",
        )
    return dict(av)


def parse_lookup(meta: Options, key: str, value: Any) -> Lookup:
    """Parse `field__path__lookup` and validate the value; raises QueryError with a hint."""
    parts = key.split("__")
    name = parts[0]
    if name not in meta.field_names:
        raise QueryError(
            f"Cannot filter {meta.model_name} on {name!r}: there is no such field."
            f"{meta.suggest_field(name)}",
            code="unknown-field",
        )
    if meta.field_kinds.get(name) == "blob":
        raise QueryError(
            f"Cannot filter {meta.model_name} on {name}: it is a blob field (fields.Blob()) "
            "stored in S3; DynamoDB only holds its pointer.",
            code="bad-query",
        )
    if meta.field_kinds.get(name) == "compressed":
        raise QueryError(
            f"Cannot filter {meta.model_name} on {name}: it is stored compressed "
            "(fields.Compressed()), so DynamoDB cannot compare it.",
            code="bad-query",
        )
    rest = parts[1:]
    lookup = "exact"
    if rest and rest[-1] in LOOKUPS:
        lookup = rest.pop()
    size = False
    if rest and rest[-1] == "size":
        rest.pop()
        size = True
        if lookup not in _SIZE_LOOKUPS:
            raise QueryError(
                f"Cannot use size__{lookup} on {meta.model_name}.{name}; size takes "
                f"{', '.join(sorted(_SIZE_LOOKUPS))}.",
                code="unknown-lookup",
            )
    if rest:
        _walk_path(meta, name, rest)
    fmt = meta.datetime_formats.get(name)
    if fmt is not None and not fmt.sortable and lookup in RANGE_LOOKUPS and not size:
        raise QueryError(
            f"Cannot use {lookup} on {meta.model_name}.{name}: its datetime format "
            f"{fmt.name!r} does not sort like the datetimes (it needs %Y %m %d %H %M %S in "
            "that order); filter with exact/in, or store a sortable format.",
            code="bad-query",
        )
    attr_path = (meta.attr_names[name], *rest)
    value = _check_value(meta, key, name, lookup, size, bool(rest), value)
    return Lookup(name, tuple(rest), lookup, size, value, attr_path)


def _check_value(
    meta: Options, key: str, name: str, lookup: str, size: bool, nested: bool, value: Any
) -> Any:
    where = f"{meta.model_name} lookup {key}"
    if value is None and lookup not in ("exact", "ne", "exists"):
        raise QueryError(
            f"Cannot use {where} with None: None is stored as a missing attribute; use "
            f"{name}__exists=False (or =True) instead.",
            code="bad-query",
        )
    if lookup == "exists":
        if not isinstance(value, bool):
            raise QueryError(f"Cannot use {where}: exists takes True or False.", code="bad-query")
        return value
    if lookup == "in":
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise QueryError(f"Cannot use {where}: `in` takes a list of values.", code="bad-query")
        values = list(value)
        if not 1 <= len(values) <= IN_OPERANDS_LIMIT:
            raise QueryError(
                f"Cannot use {where} with {len(values)} values: DynamoDB's IN takes 1 to "
                f"{IN_OPERANDS_LIMIT}; split the query or filter differently.",
                code="bad-query",
            )
        return [_one(meta, name, v, size, nested, lookup) for v in values]
    if lookup == "between":
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise QueryError(
                f"Cannot use {where}: between takes a (low, high) pair.", code="bad-query"
            )
        pair = list(value)
        if len(pair) != 2:
            raise QueryError(
                f"Cannot use {where}: between takes a (low, high) pair.", code="bad-query"
            )
        low, high = (_one(meta, name, v, size, nested, lookup) for v in pair)
        try:
            reversed_bounds = bool(low > high)
        except TypeError:
            reversed_bounds = False
        if reversed_bounds:
            raise QueryError(
                f"Cannot use {where}: between takes (low, high) with low <= high; DynamoDB "
                "rejects a BETWEEN whose bounds are reversed.",
                code="bad-query",
            )
        return (low, high)
    if lookup == "begins_with":
        if not isinstance(value, (str, bytes)) or not value:
            raise QueryError(
                f"Cannot use {where}: begins_with takes a non-empty string.", code="bad-query"
            )
        if not nested and not size:
            base, _ = unwrap_optional(_annotation(meta, name))
            if base in (int, float, Decimal, bool):
                raise QueryError(
                    f"Cannot use {where}: begins_with applies to fields stored as strings "
                    f"or binary, and {name} is stored as a number or a boolean.",
                    code="bad-query",
                )
        return value
    if lookup == "contains":
        return value
    if value is None and lookup in ("exact", "ne"):
        return None
    return _one(meta, name, value, size, nested, lookup)


def _one(meta: Options, name: str, value: Any, size: bool, nested: bool, lookup: str) -> Any:
    if size:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise QueryError(
                f"Cannot use a size lookup on {meta.model_name}.{name} with a non-integer.",
                code="bad-query",
            )
        return value
    if nested:
        return value
    return _coerce(meta, name, value, lookup)


def lookup_values(meta: Options, lk: Lookup) -> list[dict[str, Any]]:
    """Return the encoded attribute values of a lookup, in order."""
    if lk.lookup == "exists" or lk.value is None:
        return []
    values = list(lk.value) if lk.lookup in ("in", "between") else [lk.value]
    out = []
    for v in values:
        if lk.size:
            out.append({"N": str(v)})
        elif lk.lookup in ("begins_with", "contains") or lk.path:
            if lk.lookup == "begins_with" and not lk.path and _is_key_like_str(meta, lk.field):
                out.append({"S": str(v)} if isinstance(v, str) else {"B": v})
            else:
                out.append(encode_raw(meta, lk.field, v))
        else:
            out.append(encode_value(meta, lk.field, v))
    return out


def _is_key_like_str(meta: Options, name: str) -> bool:
    base, _ = unwrap_optional(_annotation(meta, name))
    return base is str


def render_condition(meta: Options, lk: Lookup, ph: Placeholders) -> str:
    """Render one lookup as a condition expression (names and values as placeholders)."""
    path = ph.path(lk.attr_path)
    if lk.lookup == "exists":
        return f"attribute_exists({path})" if lk.value else f"attribute_not_exists({path})"
    if lk.value is None:
        return (
            f"attribute_not_exists({path})" if lk.lookup == "exact" else f"attribute_exists({path})"
        )
    operand = f"size({path})" if lk.size else path
    tokens = [ph.value(av) for av in lookup_values(meta, lk)]
    if lk.lookup in COMPARATORS:
        return f"{operand} {COMPARATORS[lk.lookup]} {tokens[0]}"
    if lk.lookup == "between":
        return f"{operand} BETWEEN {tokens[0]} AND {tokens[1]}"
    if lk.lookup == "in":
        return f"{operand} IN ({', '.join(tokens)})"
    if lk.lookup == "begins_with":
        return f"begins_with({path}, {tokens[0]})"
    return f"contains({path}, {tokens[0]})"


def _is_text_type(base: Any) -> bool:
    if base in (str, bytes):
        return True
    if get_origin(base) is Literal:
        return all(isinstance(a, str) for a in get_args(base))
    return isinstance(base, type) and issubclass(base, enum.Enum) and issubclass(base, str)


_FIXED_INT = re.compile(r"^0(\d+)d$")


def fixed_width(spec: str) -> int | None:
    """The width of a zero-padded integer spec such as `010d`, else None."""
    match = _FIXED_INT.match(spec)
    return int(match.group(1)) if match else None


def is_orderable(meta: Options, name: str, spec: str) -> bool:
    """Whether a key template renders this field so that text order is value order.

    True for strings, datetimes and dates, and for integers with a zero-padded spec such as
    `{seq:010d}` (dynorm refuses to store a value that does not fit that width).
    """
    base, _ = unwrap_optional(_annotation(meta, name))
    if spec:
        return fixed_width(spec) is not None and base is int
    fmt = meta.datetime_formats.get(name)
    if fmt is not None:
        return fmt.sortable
    if base in (datetime, date):
        return True
    return base is not bytes and _is_text_type(base)


def is_fixed_width(meta: Options, name: str, spec: str) -> bool:
    """Whether every rendered value has the same width (safe before more key text)."""
    base, _ = unwrap_optional(_annotation(meta, name))
    if spec:
        return fixed_width(spec) is not None and base is int
    return base in (datetime, date)
