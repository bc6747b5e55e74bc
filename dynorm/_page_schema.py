"""Page schemas: one pydantic-core schema per model that reads DynamoDB JSON as it is sent.

The fast read path. A Query or Scan response body (and a GetItem body, and a collection's
page through a tagged union of its models), as DynamoDB sent it, is validated in one pass by
pydantic-core (JSON parsing included) into instances of the model: no Python dict of the
item, no per-field Python decoder for scalar, set and nested-model fields. Each item's key
attributes are read by a second field over the same items, for `_loaded_key` and cursors.

The schema is the model's own core schema (so every type, constraint and after-validator is
pydantic's) with each field reading its DynamoDB attribute value through a validation alias:
`[attr, "S"]` for a string, `["M", name, "N"]` for a number in a nested model, and so on.
Each alias has a second choice, the whole attribute value, so a value stored under another
type tag fails validation instead of silently becoming the field default. Fields it does not
express natively (lists of scalars, dicts, TTL, compressed, unions, `Any`, ...) keep dynorm's
per-field decoder, called by pydantic-core on that field only.

Anything the schema refuses is not an error here: the page is decoded again with the
general decoders (`ModelCodec.decode` + `model_validate`), which accept every stored shape
and raise what they always raised. A model the schema cannot express (a `mode="before"` or
`"wrap"` model validator of its own, a custom `__init__`, strict or `extra="allow"` config)
always takes that path. `tests/unit/test_wire.py` compares both paths on every field type.
The decoders that run these schemas are in `dynorm._decode`.
"""

from __future__ import annotations

import enum
import logging
import threading
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Literal, cast

from pydantic import BaseModel
from pydantic_core import CoreSchema, SchemaValidator

from ._codec import Decoder, decoder_for, unwrap_optional
from ._constants import SCHEMA_VERSION_ATTR
from ._layout import DEFAULT, Layout

__all__ = [
    "INTERNAL_KEYS",
    "KEYS",
    "KEYS_AND_TYPE",
    "TOKEN",
    "TYPE",
    "Schema",
    "SchemaBuilder",
    "field_schema",
    "keys_and_type_schema",
    "keys_schema",
    "response_schema",
    "trust_before_validator",
    "try_validator",
    "validator",
    "with_definitions",
]

logger = logging.getLogger("dynorm")

# pydantic-core schema nodes, read and built as plain dicts (`validator` hands them over as
# the CoreSchema they are).
Schema = dict[str, Any]

# Each item's key (and, for GetItem, its entity type) is read by a second field over the same
# list, so the instances carry nothing but their own fields while validators run.
_KEY: Schema = {"type": "str"}


#: The names the keys schema gives the write token and the entity type (not attributes:
#: a layout whose key attributes are named so takes the general decoder).
TOKEN = "_wtok"
TYPE = "type"
INTERNAL_KEYS = frozenset({TOKEN, TYPE, SCHEMA_VERSION_ATTR})


def keys_schema(attrs: tuple[str, ...], layout: Layout = DEFAULT) -> Schema:
    """Each item's key attributes, by attribute name, as text (a number key: its digits).

    The layout's primary key first, then `attrs` (an index's keys, for cursors). And its write
    token (as `TOKEN`) when it has one: a loaded instance's writes are then conditional on it,
    as they are for instances the general decoder builds; and its schema version stamp
    (`_sv`) when it has one.
    """
    fields: dict[str, Schema] = {
        attr: {
            "type": "typed-dict-field",
            "schema": _KEY,
            "validation_alias": [[attr, layout.types.get(attr, "S")]],
        }
        for attr in dict.fromkeys((*layout.key_attrs, *attrs))
    }
    if layout.token is not None:
        fields[TOKEN] = {
            "type": "typed-dict-field",
            "schema": _KEY,
            "validation_alias": [[layout.token, "S"]],
            "required": False,
        }
    # The schema version stamp (`Meta.schema_version`): its number text, or the whole value
    # when it is stored under another tag. The decoder hands an item of another version (or
    # an unreadable stamp) to the general decoder, which upgrades it or refuses it.
    fields[SCHEMA_VERSION_ATTR] = {
        "type": "typed-dict-field",
        "schema": {"type": "any"},
        "validation_alias": [[SCHEMA_VERSION_ATTR, "N"], [SCHEMA_VERSION_ATTR]],
        "required": False,
    }
    return {"type": "typed-dict", "fields": fields, "extra_behavior": "ignore"}


def keys_and_type_schema(layout: Layout = DEFAULT) -> Schema:
    """`keys_schema` and the item's entity type (as `TYPE`), when the layout has one."""
    keys = keys_schema((), layout)
    if layout.type is None:
        return keys
    entity: Schema = {
        "type": "typed-dict-field",
        "schema": {"type": "nullable", "schema": {"type": "str"}},
        "validation_alias": [[layout.type, "S"]],
        "required": False,
    }
    return {**keys, "fields": {**keys["fields"], TYPE: entity}}


KEYS = keys_schema(())
KEYS_AND_TYPE = keys_and_type_schema()

# Core schema leaves that validate a JSON string / number-string / bool the way they
# validate the Python value dynorm's own decoder would produce from it.
_SCALAR_LEAVES = frozenset(
    {
        "str",
        "int",
        "float",
        "decimal",
        "bool",
        "datetime",
        "date",
        "time",
        "uuid",
        "literal",
        "enum",
    }
)
_SET_LEAVES = frozenset({"set", "frozenset"})
# Wrappers a field's schema may have around its type that keep its meaning on wire input.
_TRANSPARENT = frozenset({"nullable", "function-after"})
_MAX_DEPTH = 8  # same bound as decoder_for: deeper values use the generic decoder

_trusted_before: set[Callable[..., Any]] = set()
_build_lock = threading.Lock()


def trust_before_validator(function: Callable[..., Any]) -> None:
    """Let the wire schema drop this model validator (dynorm's own, a no-op on loads)."""
    _trusted_before.add(function)


def _scalar_tag(base: Any) -> str | None:
    """The type tag dynorm stores a scalar under, if the value is a scalar."""
    if base is bool:
        return "BOOL"
    if base is int or base is float or base is Decimal:
        return "N"
    if base is str or base is datetime or base is date or base is time or base is uuid.UUID:
        return "S"
    if isinstance(base, type) and issubclass(base, enum.Enum):
        values = [m.value for m in base]
        return "S" if values and all(type(v) is str for v in values) else None
    if typing.get_origin(base) is Literal:
        args = typing.get_args(base)
        return "S" if args and all(type(a) is str for a in args) else None
    return None


def _tolerant(decode: Decoder) -> Callable[[Any], Any]:
    """A field decoder that passes non-attribute values through (validated defaults)."""

    def run(av: Any) -> Any:
        return decode(av) if type(av) is dict else av

    return run


class SchemaBuilder:
    """Rewrites a model's core schema to read DynamoDB JSON."""

    def __init__(self, definitions: Mapping[str, Schema]) -> None:
        self.definitions = definitions
        self.classes: set[type[BaseModel]] = set()

    def resolve(self, node: Schema) -> Schema:
        while node.get("type") == "definition-ref":
            node = self.definitions[node["schema_ref"]]
        return node

    def chain(self, node: Schema) -> tuple[list[Schema], Schema] | None:
        """Split `node` into transparent wrappers and the leaf; None if a wrapper is opaque."""
        wrappers: list[Schema] = []
        node = self.resolve(node)
        while node.get("type") in _TRANSPARENT:
            wrappers.append(node)
            node = self.resolve(node["schema"])
        if node.get("type", "").startswith("function-"):
            return None
        return wrappers, node

    @staticmethod
    def rebuild(wrappers: list[Schema], leaf: Schema) -> Schema:
        for wrapper in reversed(wrappers):  # copies: a ref names the original, not these
            leaf = {**{k: v for k, v in wrapper.items() if k != "ref"}, "schema": leaf}
        return leaf

    def model(
        self,
        node: Schema,
        cls: type[BaseModel],
        *,
        depth: int,
        stack: tuple[type, ...],
        top_field: Callable[[str, Schema], Schema] | None = None,
    ) -> Schema | None:
        """A copy of a model node whose fields read the model's attribute values.

        `top_field(name, field)` rewrites the fields of the stored model itself (they have
        attribute names, TTL and compressed codecs and read defaults of their own).
        """
        config = node.get("config") or {}
        if (
            node.get("custom_init")
            or node.get("root_model")
            or config.get("strict")
            or config.get("extra_fields_behavior") == "allow"
            or cls in stack
            or depth > _MAX_DEPTH
        ):
            return None
        top = depth == 0
        inner = self.resolve(node["schema"])
        if top and inner.get("type") == "function-before":
            function = inner["function"]["function"]
            if getattr(function, "__func__", function) not in _trusted_before:
                return None
            inner = self.resolve(inner["schema"])
        if inner.get("type") != "model-fields":
            return None
        prefix: list[str | int] = [] if top else ["M"]
        fields: dict[str, Schema] = {}
        for name, field in inner["fields"].items():
            info = cls.model_fields.get(name)
            if info is None:
                return None
            if top and top_field is not None:
                fields[name] = top_field(name, field)
            else:
                path = [*prefix, name]
                fields[name] = self.field(field, info.annotation, path, depth, (*stack, cls))
        out = {k: v for k, v in node.items() if k != "ref"}
        out["schema"] = {
            **inner,
            "fields": fields,
            # An item carries keys, type and write token beside the fields; a nested map
            # must be a map ({"M": ...}), or the general decoder takes the page.
            "extra_behavior": "ignore" if top else "forbid",
        }
        self.classes.add(cls)
        return out

    def field(
        self,
        field: Schema,
        annotation: Any,
        path: list[str | int],
        depth: int,
        stack: tuple[type, ...],
        *,
        decode: Decoder | None = None,
        native: bool = True,
    ) -> Schema:
        """A model-field reading its attribute value at `path` (decoder: `decode` or generic)."""
        schema = field["schema"]
        default: Schema | None = None
        if schema.get("type") == "default":
            default, schema = schema, schema["schema"]
        read = self.value(schema, annotation, path, depth, stack) if native else None
        if read is None:  # dynorm's decoder for this field, then the field's own schema
            dec = decode or decoder_for(annotation, depth)
            value: Schema = {
                "type": "function-before",
                "function": {"type": "no-info", "function": _tolerant(dec)},
                "schema": schema,
            }
            alias: list[list[str | int]] = [path]
        else:
            value, alias = read
        if default is not None:
            value = {**default, "schema": value}
        return {**field, "schema": value, "validation_alias": alias}

    def value(
        self,
        schema: Schema,
        annotation: Any,
        path: list[str | int],
        depth: int,
        stack: tuple[type, ...],
    ) -> tuple[Schema, list[list[str | int]]] | None:
        """The field's schema and alias when pydantic-core can read it natively, else None."""
        split = self.chain(schema)
        if split is None:
            return None
        wrappers, leaf = split
        base, nullable = unwrap_optional(annotation)
        kind = leaf.get("type")
        tag = _scalar_tag(base)
        if tag is not None and kind in _SCALAR_LEAVES:
            if nullable and depth:
                # Inside a map None is stored as {"NULL": true}, which an alias cannot turn
                # into None without also accepting a wrong tag: dynorm's decoder reads it.
                return None
            return schema, [[*path, tag], path]
        origin = typing.get_origin(base)
        if origin in (set, frozenset) and kind in _SET_LEAVES:
            args = typing.get_args(base)
            item = self.chain(leaf["items_schema"]) if args and "items_schema" in leaf else None
            item_tag = _scalar_tag(args[0]) if args else None
            if (
                item is not None
                and item_tag in ("S", "N")
                and item[1].get("type") in _SCALAR_LEAVES
            ):
                return schema, [[*path, item_tag + "S"], path]
            return None
        if isinstance(base, type) and issubclass(base, BaseModel) and kind == "model":
            wire = self.model(leaf, base, depth=depth + 1, stack=stack)
            return None if wire is None else (self.rebuild(wrappers, wire), [path])
        if origin is list and kind == "list" and "items_schema" in leaf:
            args = typing.get_args(base)
            item_base = unwrap_optional(args[0])[0] if args else None
            item = self.chain(leaf["items_schema"])
            if not (isinstance(item_base, type) and issubclass(item_base, BaseModel)) or not item:
                return None
            item_wrappers, item_leaf = item
            if item_leaf.get("type") != "model":
                return None
            wire = self.model(item_leaf, item_base, depth=depth + 2, stack=stack)
            if wire is None:
                return None
            items = {**leaf, "items_schema": self.rebuild(item_wrappers, wire)}
            return self.rebuild(wrappers, items), [[*path, "L"], path]
        return None


def field_schema(schema: Schema, alias: str | None = None) -> Schema:
    field: Schema = {"type": "typed-dict-field", "schema": schema, "required": False}
    if alias is not None:
        field["validation_alias"] = alias
    return field


def with_definitions(schema: Schema, definitions: list[Schema]) -> Schema:
    if not definitions:
        return schema
    return {"type": "definitions", "schema": schema, "definitions": definitions}


def response_schema(
    node: Schema,
    definitions: list[Schema],
    *,
    get_item: bool = False,
    keys: Schema = KEYS,
    keys_and_type: Schema = KEYS_AND_TYPE,
) -> Schema:
    """A Query/Scan response of `node` items, and with `get_item` a GetItem response too."""
    fields: dict[str, Schema] = {
        "Items": field_schema({"type": "list", "items_schema": node}),
        "Keys": field_schema({"type": "list", "items_schema": keys}, alias="Items"),
        "LastEvaluatedKey": field_schema({"type": "any"}),
    }
    if get_item:
        fields["Item"] = field_schema(node)
        fields["ItemKeys"] = field_schema(keys_and_type, alias="Item")
    page: Schema = {"type": "typed-dict", "fields": fields, "extra_behavior": "ignore"}
    return with_definitions(page, definitions)


def try_validator(
    build: Callable[[], Schema], classes: Iterable[type[BaseModel]], what: str
) -> SchemaValidator | None:
    """`validator` of a built schema, or None: the general decoder reads every response."""
    try:
        return validator(build(), classes)
    except Exception as exc:  # noqa: BLE001 - a schema it will not build costs speed only
        logger.debug("no %s wire schema (%s)", what, type(exc).__name__)
        return None


def validator(schema: Schema, classes: Iterable[type[BaseModel]]) -> SchemaValidator:
    # pydantic-core reuses a complete model class's own validator for a "model" node and
    # ignores the node's schema (its "prebuilt" shortcut, checked only while building). The
    # wire schema must be built from the given nodes, so the classes read as incomplete for
    # the build and complete again right after.
    with _build_lock:
        flipped = [c for c in classes if c.__dict__.get("__pydantic_complete__")]
        for cls in flipped:
            type.__setattr__(cls, "__pydantic_complete__", False)
        try:
            return SchemaValidator(cast(CoreSchema, schema))
        finally:
            for cls in flipped:
                type.__setattr__(cls, "__pydantic_complete__", True)
