"""The fast page decoders: DynamoDB JSON response bodies straight into model instances.

`wire_decoder(model)` validates a Query/Scan/GetItem/BatchGetItem body of one model in one
pydantic-core pass through the model's page schema (`dynorm._page_schema`);
`collection_decoder(models)` does the same for a page of several entity types. Anything a
schema refuses returns None: the caller decodes that page with the general decoders
(`ModelCodec.decode` + `model_validate`), which accept every stored shape.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel
from pydantic_core import SchemaValidator, ValidationError

from ._constants import SCHEMA_VERSION_ATTR
from ._exactly_once import WriteState
from ._layout import Key
from ._migrations import UNSTAMPED
from ._page_schema import (
    INTERNAL_KEYS,
    TOKEN,
    TYPE,
    Schema,
    SchemaBuilder,
    field_schema,
    keys_and_type_schema,
    keys_schema,
    logger,
    response_schema,
    try_validator,
    validator,
    with_definitions,
)
from ._pydantic_internals import init_private_attributes

if TYPE_CHECKING:
    from .models import Model

__all__ = ["CollectionDecoder", "WireDecoder", "collection_decoder", "wire_decoder"]

#: An attribute no item holds (DynamoDB refuses an empty name): a field read from nowhere.
_NOWHERE = ""


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
        #: The model's physical names: the keys schemas read its key, type and token attributes.
        self.layout = layout = model._meta.layout
        self.keys = keys_schema((), layout)
        self.keys_and_type = keys_and_type_schema(layout)
        migrations = model._meta.migrations
        #: The stamp (number text) of an item in today's shape (a model without a schema
        #: version reads version 1): a page holding any other item goes to the general
        #: decoder, which upgrades it (or refuses an item newer than the code).
        self.stamp = str(UNSTAMPED if migrations is None else migrations.current)
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
        if "blob" in model._meta.field_kinds.values():
            return  # blob pointers become BlobValues in from_item (the general decoder)
        if INTERNAL_KEYS & set(self.layout.key_attrs):
            return  # a key attribute named like the keys schema's own fields
        root = cast(Schema, copy.copy(model.__pydantic_core_schema__))
        definitions: list[Schema] = []
        if root.get("type") == "definitions":
            definitions = list(root["definitions"])
            root = root["schema"]
        builder = SchemaBuilder({d["ref"]: d for d in definitions})
        split = builder.chain(root)  # mode="after" model validators wrap the model node
        if split is None:
            return
        wrappers, node = split
        if node.get("type") != "model" or node.get("cls") is not model:
            return
        kinds = model._meta.field_kinds
        formats = model._meta.datetime_formats
        codecs = codec.by_name
        always: set[str] = set()

        def top_field(name: str, field: Schema) -> Schema:
            fc = codecs.get(name)
            if fc is None:  # the version, with no version attribute: a loaded object is saved
                schema = field["schema"]
                if schema.get("type") == "default":
                    schema = schema["schema"]
                value: Schema = {"type": "default", "schema": schema, "default": 1}
                return {**field, "schema": value, "validation_alias": [[_NOWHERE]]}
            rewritten = builder.field(
                field,
                model.model_fields[name].annotation,
                [fc.attr],
                0,
                (model,),
                decode=fc.decode,
                # a datetime format of its own: its decoder reads the text
                native=kinds.get(name) not in ("ttl", "compressed") and name not in formats,
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
        page = response_schema(
            self.node, definitions, get_item=True, keys=self.keys, keys_and_type=self.keys_and_type
        )
        self.page = validator(page, builder.classes)

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
                page = try_validator(lambda: build(node), self.classes, what)
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
        layout = self.layout
        extra = tuple(a for a in key_attrs if a not in layout.key_attrs)  # the page reads those
        page = self.page
        if extra:
            if INTERNAL_KEYS & set(extra):
                return None
            read = keys_schema(extra, layout)
            page = self._lazy(
                extra, lambda node: response_schema(node, self.definitions, keys=read), "keyed"
            )
        data = _validate(page, body, self.model.__name__)
        if data is None:
            return None
        objs: list[Model] = data.get("Items", [])
        keys: list[dict[str, str]] = data.get("Keys", [])
        if not self.current(keys):
            return None
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
        found: dict[tuple[str, str], Model | None] = {}
        objs = data.get("Responses", {}).get(table, [])
        keys = data.get("ResponseKeys", {}).get(table, [])
        if not self.current(k for k in keys if self._own(k)):
            return None
        for obj, key in zip(objs, keys):
            self._finish(obj, key)
            found[self._key(key)] = obj if self._own(key) else None
        return found, data.get("UnprocessedKeys")

    def _own(self, key: dict[str, str]) -> bool:
        """Whether an item (by its keys) is of this model (any item is, with no type attribute)."""
        return self.layout.type is None or key.get(TYPE) == self.model._meta.type_name

    def _key(self, key: dict[str, str]) -> Key:
        """An item's primary key (the sort key of a table without one is "")."""
        sk = self.layout.sk
        return key[self.layout.pk], "" if sk is None else key[sk]

    def _batch_schema(self, node: Schema) -> Schema:
        items: Schema = {"type": "list", "items_schema": node}
        keys: Schema = {"type": "list", "items_schema": self.keys_and_type}
        page: Schema = {
            "type": "typed-dict",
            "fields": {
                "Responses": field_schema({"type": "dict", "values_schema": items}),
                "ResponseKeys": field_schema({"type": "dict", "values_schema": keys}, "Responses"),
                "UnprocessedKeys": field_schema({"type": "any"}),
            },
            "extra_behavior": "ignore",
        }
        return with_definitions(page, self.definitions)

    def decode_item(self, body: bytes) -> list[Model] | None:
        """Validate a GetItem body: [instance], [] if no item of this model; None if refused."""
        data = _validate(self.page, body, self.model.__name__)
        if data is None:
            return None
        obj: Model | None = data.get("Item")
        if obj is None:
            return []
        key = data["ItemKeys"]
        own = self._own(key)
        if own and not self.current((key,)):
            return None
        self._finish(obj, key)
        return [obj] if own else []

    def current(self, keys: Iterable[dict[str, str]]) -> bool:
        """Whether every item (by its keys) is stamped with today's schema version."""
        stamp = self.stamp
        unstamped = str(UNSTAMPED)
        return all(key.get(SCHEMA_VERSION_ATTR, unstamped) == stamp for key in keys)

    def _finish(self, obj: Model, key: dict[str, str]) -> None:
        """Set what a load sets besides the fields: the stored key, the fields-set, the token."""
        if self.always_set:
            obj.__pydantic_fields_set__ |= self.always_set
        loaded = self._key(key)
        token = key.get(TOKEN)
        if self.private is None:
            private = obj.__pydantic_private__
            assert private is not None
        else:
            private = self.private.copy()
            _set_private(obj, private)
        private["_loaded_key"] = loaded
        if token is not None:
            private["_writes"] = WriteState(token)


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
        layouts = [d.layout for d in self.decoders.values()]
        layout = layouts[0]
        if layout.type is None or any(other != layout for other in layouts):
            return  # told apart by one type attribute, keys read under one set of names
        definitions: dict[str, Schema] = {}
        classes: set[type[BaseModel]] = set()
        for d in self.decoders.values():
            definitions.update((s["ref"], s) for s in d.definitions)
            classes |= d.classes
        union: Schema = {
            "type": "tagged-union",
            "choices": nodes,
            "discriminator": [[layout.type, "S"]],
        }
        defs = list(definitions.values())
        keys = keys_schema((), layout)
        self.page = try_validator(
            lambda: response_schema(union, defs, keys=keys), classes, "collection"
        )

    def decode_page(self, body: bytes) -> tuple[list[Model], dict[str, Any] | None] | None:
        """Validate a Query body into (instances, LastEvaluatedKey); None if refused."""
        data = _validate(self.page, body, "collection")
        if data is None:
            return None
        objs: list[Model] = data.get("Items", [])
        keys = data.get("Keys", [])
        for obj, key in zip(objs, keys):
            if not self.decoders[type(obj)].current((key,)):
                return None
        for obj, key in zip(objs, keys):
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


_decoders: dict[type[Any], WireDecoder] = {}


def wire_decoder(model: type[Model]) -> WireDecoder:
    """The model's wire decoder, built on first use."""
    decoder = _decoders.get(model)
    if decoder is None:
        decoder = _decoders.setdefault(model, WireDecoder(model))
    return decoder
