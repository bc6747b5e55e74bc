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

from pydantic import BaseModel

from ._codec import unwrap_optional
from ._constants import ATTRIBUTE_NAME_LIMIT, KEY_ATTRIBUTE_NAME_LIMIT
from ._keys import KeyTemplate
from ._layout import DEFAULT, LAYOUT_OPTIONS, Layout
from ._options import BoundIndex, assign_slots
from .exceptions import ConfigurationError

__all__ = [
    "KeySpec",
    "bind_indexes",
    "check_index_projection",
    "check_keys",
    "check_needs",
    "number_key",
    "resolve_layout",
]


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
    token = _name(
        model,
        "write_token_attribute",
        given.get("write_token_attribute", DEFAULT.token),
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
        "write_token_attribute": token,
    }
    if ttl_field is not None:
        named["the TTL field's attribute"] = ttl
    seen: dict[str, str] = {}
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
    stored: dict[str, str] = {}
    for field, attr in attr_names.items():
        if not isinstance(attr, str) or not attr:
            raise _error(model, f"fields.Attr of {field}", "it needs a non-empty name", "name it")
        if attr in stored:
            raise ConfigurationError(
                f"Cannot store {model}.{field} under the attribute {attr!r}: "
                f"{model}.{stored[attr]} is stored there, and one would overwrite the other; "
                "give each field its own attribute name.",
                code="model-definition",
            )
        stored[attr] = field
    layout = Layout(
        pk=pk, sk=sk, type=type_attr, version=version, ttl=ttl, managed=managed, token=token
    )
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
            (layout.token, "dynorm's write token"),
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


def bind_indexes(
    name: str,
    raw: Mapping[str, Any],
    known: list[str],
    type_name: str,
    layout: Layout,
    table_pk: KeyTemplate,
    keys: list[KeySpec],
) -> dict[str, BoundIndex]:
    """Compile `Meta.indexes`: slots, templates and the physical names of existing ones."""
    bound: dict[str, BoundIndex] = {}
    for index, slot in assign_slots(list(raw.get("indexes") or ()), name):
        label = f"Index({index.name!r})"
        pk_tpl = KeyTemplate(index.pk, name, known, f"index {index.name!r} partition key")
        sk_tpl = KeyTemplate(index.sk or type_name, name, known, f"index {index.name!r} sort key")
        custom = bool(index.physical or index.pk_attribute or index.sk_attribute or index.local)
        pk_attr = index.pk_attribute or (layout.pk if index.local else "")
        if index.local:
            if pk_attr != layout.pk or index.pk != table_pk.source:
                raise ConfigurationError(
                    f"Cannot declare the local index {index.name!r} on {name}: a local "
                    f"secondary index shares the table's partition key; give it "
                    f"pk={table_pk.source!r} and pk_attribute={layout.pk!r}.",
                    code="index",
                )
            if not index.sk_attribute or layout.sk is None:
                raise ConfigurationError(
                    f"Cannot declare the local index {index.name!r} on {name} without "
                    "sk_attribute (or on a table with no sort key); name the index's sort-key "
                    "attribute.",
                    code="index",
                )
        for option, attr in (
            ("pk_attribute", index.pk_attribute),
            ("sk_attribute", index.sk_attribute),
        ):
            if attr is not None and (not isinstance(attr, str) or not attr):
                raise ConfigurationError(
                    f"Cannot use {label}.{option} on {name}: give a non-empty attribute name.",
                    code="index",
                )
        if index.physical is not None and not (isinstance(index.physical, str) and index.physical):
            raise ConfigurationError(
                f"Cannot use {label}.name on {name}: give the index's DynamoDB name.",
                code="index",
            )
        bound_index = BoundIndex(
            name=index.name,
            slot=slot,
            pk=pk_tpl,
            sk=sk_tpl,
            physical_name=index.physical or "",
            pk_attr=pk_attr,
            sk_attr=index.sk_attribute or "",
            projection=check_index_projection(name, index.name, index.projection),
            local=index.local,
            custom=custom,
        )
        if bound_index.pk_attr == bound_index.sk_attr:
            raise ConfigurationError(
                f"Cannot use one attribute for both keys of index {index.name!r} on {name}; "
                "name two attributes.",
                code="index",
            )
        keys.append(
            KeySpec(
                f"index {index.name!r} partition key",
                f"{label}.pk_attribute",
                bound_index.pk_attr,
                pk_tpl,
            )
        )
        keys.append(
            KeySpec(
                f"index {index.name!r} sort key",
                f"{label}.sk_attribute",
                bound_index.sk_attr,
                sk_tpl,
            )
        )
        bound[index.name] = bound_index
    return bound


def check_needs(cls: type[BaseModel], name: str, raw: Mapping[str, Any], layout: Layout) -> None:
    """Refuse features a layout cannot hold (history, guards, counters, audit entries)."""
    versioned = any(str(k.__module__).startswith("dynorm.versioning") for k in cls.__mro__)
    text_keys = not layout.types.get(layout.pk) and not (layout.sk and layout.types.get(layout.sk))
    own_names = (layout.pk, layout.sk, layout.type) == (DEFAULT.pk, DEFAULT.sk, DEFAULT.type)
    needs = [  # (feature, used, what else it needs, in words)
        ("a VersionedModel", versioned, own_names and layout.version == DEFAULT.version),
        ("Meta.unique", bool(raw.get("unique")), True),
        ("Meta.counted", bool(raw.get("counted")), True),
        ("Meta.audit", bool(raw.get("audit")), own_names),
    ]
    for feature, wanted, extra in needs:
        if not wanted:
            continue
        if layout.sk is None or layout.type is None or not text_keys or not extra:
            own = feature in ("a VersionedModel", "Meta.audit")
            raise ConfigurationError(
                f"Cannot use {feature} on {name} with this layout: it stores items of its "
                "own beside the model's, which needs a string partition and sort key and a "
                "type attribute"
                + (
                    " under dynorm's own names (pk, sk, _type"
                    + (", version" if versioned else "")
                    + "; other names are not supported for it yet)"
                    if own
                    else ""
                )
                + f"; use dynorm's layout for this model, or drop {feature}.",
                code="model-definition",
            )
