"""Class-creation checks of a model's physical names: its `Layout` and its indexes' names.

`resolve_layout` reads the names from `Meta` (first) and the model's `dynorm.Table`, checks
each one, decides which one-field keys are plain values (`KeyTemplate.make_raw`) and which
key attributes are numbers, and returns the model's `Layout`.

The rule for plain-value keys: a key template that is exactly one field (`"{id}"`, no
literal text, no format spec) is stored as the value itself, not escaped, when its key
attribute *is* that field's stored attribute, or when the table is not managed by dynorm
(`managed=False`). Otherwise (dynorm's own layout) it is escaped as it always was, so no
stored byte of an existing table changes.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ._codec import unwrap_optional
from ._constants import ATTRIBUTE_NAME_LIMIT, KEY_ATTRIBUTE_NAME_LIMIT, WRITE_TOKEN_ATTR
from ._keys import KeyTemplate
from ._layout import DEFAULT, LAYOUT_OPTIONS, Layout
from .exceptions import ConfigurationError

__all__ = ["KeySpec", "check_index_projection", "number_key", "resolve_layout"]


def _error(model: str, option: str, problem: str, fix: str) -> ConfigurationError:
    return ConfigurationError(
        f"Cannot use {option} on {model}: {problem}; {fix}.", code="model-definition"
    )


def _name(model: str, option: str, value: Any, *, key: bool, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        none = " or None" if optional else ""
        raise _error(model, option, "it must be a non-empty attribute name", f"give a str{none}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise _error(model, option, "it is not valid UTF-8", "rename it") from None
    if key and len(value) > KEY_ATTRIBUTE_NAME_LIMIT:
        raise _error(
            model,
            option,
            f"a key attribute name is at most {KEY_ATTRIBUTE_NAME_LIMIT} characters",
            "shorten it",
        )
    if size > ATTRIBUTE_NAME_LIMIT:
        raise _error(model, option, "the attribute name is too long", "shorten it")
    return value


def number_key(annotation: Any) -> bool:
    """Whether a field of this type is stored as a number (`N`) in a plain-value key."""
    base, _ = unwrap_optional(annotation)
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return False
    if typing.get_origin(base) is typing.Literal:
        return False
    return isinstance(base, type) and issubclass(base, (int, Decimal)) and base is not bool


@dataclass
class KeySpec:
    """One key of the model (table or index) as class creation checks it."""

    role: str  # "partition key", "index 'x' sort key"...
    option: str  # where its attribute was named: "Meta.pk_attribute", "Index('x').sk_attribute"
    attr: str
    template: KeyTemplate


def _owner(attr_names: Mapping[str, str], attr: str) -> str | None:
    return next((f for f, a in attr_names.items() if a == attr), None)


def _plain(
    model: str,
    spec: KeySpec,
    attr_names: Mapping[str, str],
    annotations: Mapping[str, Any],
    managed: bool,
    types: dict[str, str],
) -> str | None:
    """Make a key raw where the rule says so; return the field the key attribute *is*."""
    owner = _owner(attr_names, spec.attr)
    tpl = spec.template
    if owner is not None and (not tpl.is_single or tpl.fields != (owner,)):
        raise _error(
            model,
            spec.option,
            f"the {spec.role} attribute {spec.attr!r} is where the field {owner!r} is stored, "
            f"so that key is the field itself",
            f"make its template exactly '{{{owner}}}' (it is {tpl.source!r}), or store the "
            "field under another attribute",
        )
    if owner is None and (managed or not tpl.is_single):
        return None
    tpl.make_raw()
    name = tpl.fields[0]
    base, _ = unwrap_optional(annotations[name])
    if base in (bytes, bytearray):
        raise _error(
            model,
            spec.option,
            f"the {spec.role} is the binary field {name!r}; binary (B) keys are not supported",
            "store the key as a string or a number",
        )
    if number_key(annotations[name]):
        types[spec.attr] = "N"
    return owner


def resolve_layout(
    model: str,
    raw: Mapping[str, Any],
    table_layout: Mapping[str, Any],
    attr_names: dict[str, str],
    annotations: Mapping[str, Any],
    ttl_field: str | None,
) -> tuple[Layout, dict[str, Any]]:
    """The model's Layout from Meta > Table > defaults, checked; and the options as given."""
    given = {**table_layout, **{k: raw[k] for k in LAYOUT_OPTIONS if k in raw}}
    managed = given.get("managed", True)
    if not isinstance(managed, bool):
        raise _error(model, "managed", "it must be True or False", "give a bool")
    pk = _name(
        model, "pk_attribute", given.get("pk_attribute", DEFAULT.pk), key=True, optional=False
    )
    sk = _name(
        model, "sk_attribute", given.get("sk_attribute", DEFAULT.sk), key=True, optional=True
    )
    type_attr = _name(
        model, "type_attribute", given.get("type_attribute", DEFAULT.type), key=False, optional=True
    )
    version = _name(
        model,
        "version_attribute",
        given.get("version_attribute", DEFAULT.version),
        key=False,
        optional=True,
    )
    assert pk is not None
    ttl = attr_names[ttl_field] if ttl_field is not None else DEFAULT.ttl
    named = {
        "pk_attribute": pk,
        "sk_attribute": sk,
        "type_attribute": type_attr,
        "version_attribute": version,
    }
    if ttl_field is not None:
        named["the TTL field's attribute"] = ttl
    seen: dict[str, str] = {WRITE_TOKEN_ATTR: "dynorm's write token"}
    for option, value in named.items():
        if value is None:
            continue
        if value in seen:
            raise _error(
                model,
                option,
                f"{value!r} is also {seen[value]}",
                "give every physical attribute its own name",
            )
        seen[value] = option
    if version is not None:
        attr_names["version"] = version
    layout = Layout(pk=pk, sk=sk, type=type_attr, version=version, ttl=ttl, managed=managed)
    return layout, given


def check_keys(
    model: str,
    layout: Layout,
    keys: Sequence[KeySpec],
    attr_names: dict[str, str],
    annotations: Mapping[str, Any],
) -> tuple[dict[str, str], set[str]]:
    """Decide the plain keys and their types; refuse a field stored over a key attribute.

    Returns (key attribute types that are not S, key attributes that are a field's own).
    """
    types: dict[str, str] = {}
    owned: set[str] = set()
    for spec in keys:
        owner = _plain(model, spec, attr_names, annotations, layout.managed, types)
        if owner is not None:
            owned.add(spec.attr)
    reserved = {
        a: o
        for a, o in (
            (layout.pk, "the partition-key attribute"),
            (layout.sk, "the sort-key attribute"),
            (layout.type, "the entity-type attribute"),
            (WRITE_TOKEN_ATTR, "dynorm's write token"),
            *((s.attr, f"the {s.role} attribute") for s in keys),
        )
        if a is not None
    }
    for field, attr in attr_names.items():
        if field == "version" or attr in owned:
            continue
        if attr in reserved:
            raise ConfigurationError(
                f"Cannot store {model}.{field} under the attribute {attr!r}: it is "
                f"{reserved[attr]}; give the field another attribute name (fields.Attr), or "
                f"make that key exactly '{{{field}}}'.",
                code="model-definition",
            )
    return types, owned


def check_index_projection(model: str, index: str, projection: Any) -> Any:
    """Refuse a projection that is not "ALL", "KEYS_ONLY" or attribute names."""
    if projection in ("ALL", "KEYS_ONLY"):
        return projection
    if isinstance(projection, tuple) and all(isinstance(a, str) and a for a in projection):
        return projection
    raise _error(
        model,
        f"Index({index!r}).projection",
        "it must be 'ALL', 'KEYS_ONLY' or a list of attribute names",
        "give one of those",
    )
