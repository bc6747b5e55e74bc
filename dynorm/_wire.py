"""Validate DynamoDB JSON straight into model instances: one pydantic-core schema per model.

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
"""

from __future__ import annotations

import copy
import enum
import logging
import threading
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel
from pydantic._internal._model_construction import init_private_attributes
from pydantic_core import SchemaValidator, ValidationError

from ._codec import Decoder, decoder_for, unwrap_optional
from ._constants import PK, SK, TYPE_ATTR

if TYPE_CHECKING:
    from .models import Model

__all__ = ["CollectionDecoder", "WireDecoder", "collection_decoder", "wire_decoder"]

logger = logging.getLogger("dynorm")

Schema = dict[str, Any]

# Each item's key (and, for GetItem, its entity type) is read by a second field over the same
# list, so the instances carry nothing but their own fields while validators run.
_KEY: Schema = {"type": "str"}


def _keys_of(attrs: tuple[str, ...]) -> Schema:
    """Each item's key attributes (all strings in dynorm's table) by attribute name."""
    fields = {
        attr: {"type": "typed-dict-field", "schema": _KEY, "validation_alias": [[attr, "S"]]}
        for attr in dict.fromkeys((PK, SK, *attrs))
    }
    return {"type": "typed-dict", "fields": fields, "extra_behavior": "ignore"}


_KEYS = _keys_of(())
_KEYS_AND_TYPE: Schema = {
    **_KEYS,
    "fields": {
        **_KEYS["fields"],
        "type": {
            "type": "typed-dict-field",
            "schema": {"type": "nullable", "schema": {"type": "str"}},
            "validation_alias": [[TYPE_ATTR, "S"]],
            "required": False,
        },
    },
}

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


class _Builder:
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


class WireDecoder:
    """Decodes DynamoDB JSON response bodies of one model into instances."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self.page: SchemaValidator | None = None
        self.always_set: frozenset[str] = frozenset()
        self.private: dict[str, Any] | None = None
        self.node: Schema | None = None  # the model's wire schema, for collections
        self.definitions: list[Schema] = []
        self.classes: set[type[BaseModel]] = set()
        self._lazy_pages: dict[object, SchemaValidator | None] = {}
        try:
            self._build()
        except Exception as exc:  # noqa: BLE001 - any failure leaves the general decoder
            # The general decoder reads every model; a schema pydantic-core will not build
            # (a type this module did not foresee) must cost speed, never a query.
            logger.debug("no wire schema for %s (%s)", model.__name__, type(exc).__name__)
            self.page = self.node = None

    def _build(self) -> None:
        model = self.model
        codec = model._meta.codec
        assert codec is not None
        root: Schema = copy.copy(model.__pydantic_core_schema__)  # type: ignore[arg-type]
        definitions: list[Schema] = []
        if root.get("type") == "definitions":
            definitions = list(root["definitions"])
            root = root["schema"]
        builder = _Builder({d["ref"]: d for d in definitions})
        split = builder.chain(root)  # mode="after" model validators wrap the model node
        if split is None:
            return
        wrappers, node = split
        if node.get("type") != "model" or node.get("cls") is not model:
            return
        kinds = model._meta.field_kinds
        codecs = codec.by_name
        always: set[str] = set()

        def top_field(name: str, field: Schema) -> Schema:
            fc = codecs[name]
            rewritten = builder.field(
                field,
                model.model_fields[name].annotation,
                [fc.attr],
                0,
                (model,),
                decode=fc.decode,
                native=kinds.get(name) not in ("ttl", "compressed"),
            )
            if fc.missing is not None:
                # An absent attribute means None (or an empty set) was saved, whatever the
                # field's default: the general decoder passes that value, and so does this.
                schema = rewritten["schema"]
                if schema.get("type") == "default":
                    schema = schema["schema"]
                rewritten["schema"] = {
                    "type": "default",
                    "schema": schema,
                    "default_factory": fc.missing,
                    "validate_default": True,
                }
                always.add(name)
            return rewritten

        wire = builder.model(node, model, depth=0, stack=(), top_field=top_field)
        if wire is None:
            return
        self.private = _private_template(model)
        if self.private is not None:  # set in _finish from a copy, without a call per item
            wire.pop("post_init", None)
        self.node = builder.rebuild(wrappers, wire)
        self.definitions = definitions
        self.classes = builder.classes
        self.always_set = frozenset(always)
        self.page = _validator(_response(self.node, definitions, get_item=True), builder.classes)

    def _lazy(
        self, key: object, build: Callable[[Schema], Schema], what: str
    ) -> SchemaValidator | None:
        """A validator of another response shape around the model's wire schema.

        Built on first use; None when the model has no wire schema or the shape cannot be built.
        """
        if key not in self._lazy_pages:
            node = self.node
            page = None
            if node is not None:
                page = _try_validator(lambda: build(node), self.classes, what)
            self._lazy_pages[key] = page
        return self._lazy_pages[key]

    def decode_page(self, body: bytes) -> tuple[list[Model], dict[str, Any] | None] | None:
        """Validate a Query/Scan body into (instances, LastEvaluatedKey); None if refused."""
        got = self.decode_keyed_page(body, ())
        return None if got is None else (got[0], got[2])

    def decode_keyed_page(
        self, body: bytes, key_attrs: tuple[str, ...]
    ) -> tuple[list[Model], list[dict[str, str]], dict[str, Any] | None] | None:
        """Like `decode_page`, with each item's key attributes (for cursors); None if refused."""
        extra = tuple(a for a in key_attrs if a not in (PK, SK))  # the page reads pk and sk
        page = self.page
        if extra:
            read = _keys_of(extra)
            page = self._lazy(
                extra, lambda node: _response(node, self.definitions, keys=read), "keyed"
            )
        data = _validate(page, body, self.model.__name__)
        if data is None:
            return None
        objs: list[Model] = data.get("Items", [])
        keys: list[dict[str, str]] = data.get("Keys", [])
        for obj, key in zip(objs, keys):
            self._finish(obj, key)
        return objs, keys, data.get("LastEvaluatedKey")

    def decode_batch(
        self, body: bytes, table: str
    ) -> tuple[dict[tuple[str, str], Model | None], Any] | None:
        """Validate a BatchGetItem body; None if refused.

        Returns ({key: instance, or None for an item of another entity type}, UnprocessedKeys).
        """
        page = self._lazy("batch", self._batch_schema, "batch")
        data = _validate(page, body, self.model.__name__)
        if data is None:
            return None
        type_name = self.model._meta.type_name
        found: dict[tuple[str, str], Model | None] = {}
        objs = data.get("Responses", {}).get(table, [])
        for obj, key in zip(objs, data.get("ResponseKeys", {}).get(table, [])):
            self._finish(obj, key)
            found[(key["pk"], key["sk"])] = obj if key.get("type") == type_name else None
        return found, data.get("UnprocessedKeys")

    def _batch_schema(self, node: Schema) -> Schema:
        items: Schema = {"type": "list", "items_schema": node}
        keys: Schema = {"type": "list", "items_schema": _KEYS_AND_TYPE}
        page: Schema = {
            "type": "typed-dict",
            "fields": {
                "Responses": _field({"type": "dict", "values_schema": items}),
                "ResponseKeys": _field({"type": "dict", "values_schema": keys}, "Responses"),
                "UnprocessedKeys": _field({"type": "any"}),
            },
            "extra_behavior": "ignore",
        }
        return _with_definitions(page, self.definitions)

    def decode_item(self, body: bytes) -> list[Model] | None:
        """Validate a GetItem body: [instance], [] if no item of this model; None if refused."""
        data = _validate(self.page, body, self.model.__name__)
        if data is None:
            return None
        obj: Model | None = data.get("Item")
        if obj is None:
            return []
        key = data["ItemKeys"]
        self._finish(obj, key)
        return [obj] if key.get("type") == self.model._meta.type_name else []

    def _finish(self, obj: Model, key: dict[str, str]) -> None:
        """Set what a load sets besides the fields: the stored key, and the fields-set."""
        if self.always_set:
            obj.__pydantic_fields_set__ |= self.always_set
        loaded = (key["pk"], key["sk"])
        if self.private is None:
            private = obj.__pydantic_private__
            assert private is not None
            private["_loaded_key"] = loaded
        else:
            private = self.private.copy()
            private["_loaded_key"] = loaded
            _set_private(obj, private)


def _validate(page: SchemaValidator | None, body: bytes, what: str) -> dict[str, Any] | None:
    """The validated response, or None (logged) when the wire schema refuses it."""
    if page is None:
        return None
    try:
        data: dict[str, Any] = page.validate_json(body)
    except ValidationError as exc:
        # Field names only: a location can hold a map key, which is user data.
        logger.debug(
            "a %s response took the general decoder (%s)",
            what,
            ", ".join(f"{e['type']} in {_attribute(e['loc'])}" for e in exc.errors()),
        )
        return None
    return data


def _attribute(loc: tuple[int | str, ...]) -> str:
    """The item attribute a validation error is in (never a map key or a value)."""
    for part in loc:
        if isinstance(part, str) and part not in ("Items", "Item", "Keys", "ItemKeys"):
            return part
    return "the response"


def _field(schema: Schema, alias: str | None = None) -> Schema:
    field: Schema = {"type": "typed-dict-field", "schema": schema, "required": False}
    if alias is not None:
        field["validation_alias"] = alias
    return field


def _with_definitions(schema: Schema, definitions: list[Schema]) -> Schema:
    if not definitions:
        return schema
    return {"type": "definitions", "schema": schema, "definitions": definitions}


def _response(
    node: Schema, definitions: list[Schema], *, get_item: bool = False, keys: Schema = _KEYS
) -> Schema:
    """A Query/Scan response of `node` items, and with `get_item` a GetItem response too."""
    fields: dict[str, Schema] = {
        "Items": _field({"type": "list", "items_schema": node}),
        "Keys": _field({"type": "list", "items_schema": keys}, alias="Items"),
        "LastEvaluatedKey": _field({"type": "any"}),
    }
    if get_item:
        fields["Item"] = _field(node)
        fields["ItemKeys"] = _field(_KEYS_AND_TYPE, alias="Item")
    page: Schema = {"type": "typed-dict", "fields": fields, "extra_behavior": "ignore"}
    return _with_definitions(page, definitions)


class CollectionDecoder:
    """Decodes Query pages holding several entity types (`QuerySet.include`) into instances.

    One tagged union of the models' wire schemas, chosen by each item's `_type`; an item of
    another type (or any refusal) leaves the page to the general decoder.
    """

    def __init__(self, models: tuple[type[Model], ...]) -> None:
        self.decoders = {m: wire_decoder(m) for m in models}
        self.page: SchemaValidator | None = None
        nodes = {m._meta.type_name: d.node for m, d in self.decoders.items()}
        if any(node is None for node in nodes.values()):
            return
        definitions: dict[str, Schema] = {}
        classes: set[type[BaseModel]] = set()
        for d in self.decoders.values():
            definitions.update((s["ref"], s) for s in d.definitions)
            classes |= d.classes
        union: Schema = {
            "type": "tagged-union",
            "choices": nodes,
            "discriminator": [[TYPE_ATTR, "S"]],
        }
        defs = list(definitions.values())
        self.page = _try_validator(lambda: _response(union, defs), classes, "collection")

    def decode_page(self, body: bytes) -> tuple[list[Model], dict[str, Any] | None] | None:
        """Validate a Query body into (instances, LastEvaluatedKey); None if refused."""
        data = _validate(self.page, body, "collection")
        if data is None:
            return None
        objs: list[Model] = data.get("Items", [])
        for obj, key in zip(objs, data.get("Keys", [])):
            self.decoders[type(obj)]._finish(obj, key)
        return objs, data.get("LastEvaluatedKey")


_collections: dict[tuple[type[Any], ...], CollectionDecoder] = {}


def collection_decoder(models: tuple[type[Model], ...]) -> CollectionDecoder:
    """The wire decoder of one set of models fetched together, built on first use."""
    decoder = _collections.get(models)
    if decoder is None:
        decoder = _collections.setdefault(models, CollectionDecoder(models))
    return decoder


# The slot's own setter: BaseModel.__setattr__ is for fields, not for this slot.
_set_private: Callable[[Any, dict[str, Any]], None] = vars(BaseModel)[
    "__pydantic_private__"
].__set__
# Defaults shared by every instance without a copy (pydantic deep-copies the others).
_IMMUTABLE: tuple[type, ...] = (type(None), bool, int, float, str, bytes, Decimal)


def _private_template(model: type[Model]) -> dict[str, Any] | None:
    """The private attributes every loaded instance starts with, when a copy can set them.

    None when the model defines its own `model_post_init` or a private attribute with a
    factory or a mutable default: pydantic-core then calls `model_post_init` per instance.
    """
    if vars(model).get("model_post_init", model.model_post_init) is not init_private_attributes:
        return None
    template: dict[str, Any] = {}
    for name, attr in model.__private_attributes__.items():
        default: Any = attr.default
        if attr.default_factory is not None or type(default) not in _IMMUTABLE:
            return None
        template[name] = default
    return template


def _try_validator(
    build: Callable[[], Schema], classes: Iterable[type[BaseModel]], what: str
) -> SchemaValidator | None:
    """`_validator` of a built schema, or None: the general decoder reads every response."""
    try:
        return _validator(build(), classes)
    except Exception as exc:  # noqa: BLE001 - a schema it will not build costs speed only
        logger.debug("no %s wire schema (%s)", what, type(exc).__name__)
        return None


def _validator(schema: Schema, classes: Iterable[type[BaseModel]]) -> SchemaValidator:
    # pydantic-core reuses a complete model class's own validator for a "model" node and
    # ignores the node's schema (its "prebuilt" shortcut, checked only while building). The
    # wire schema must be built from the given nodes, so the classes read as incomplete for
    # the build and complete again right after.
    with _build_lock:
        flipped = [c for c in classes if c.__dict__.get("__pydantic_complete__")]
        for cls in flipped:
            type.__setattr__(cls, "__pydantic_complete__", False)
        try:
            return SchemaValidator(schema)
        finally:
            for cls in flipped:
                type.__setattr__(cls, "__pydantic_complete__", True)


_decoders: dict[type[Any], WireDecoder] = {}


def wire_decoder(model: type[Model]) -> WireDecoder:
    """The model's wire decoder, built on first use."""
    decoder = _decoders.get(model)
    if decoder is None:
        decoder = _decoders.setdefault(model, WireDecoder(model))
    return decoder
