"""Pages to instances: the fast wire decoder where it serves, the general decoder otherwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .. import _registry
from .._constants import TYPE_ATTR
from .._decode import CollectionDecoder, wire_decoder
from .._exactly_once import WriteState, stored_token
from .updates import key_params

if TYPE_CHECKING:
    from .._connection import Connection
    from ..models import Model

__all__ = ["collection_page", "decode", "from_any", "get_item", "keyed_page", "model_page"]

M = TypeVar("M", bound="Model")

#: A page of instances with their key attributes, and its LastEvaluatedKey (for cursors).
Keyed = tuple[list[tuple[M, dict[str, Any]]], "dict[str, Any] | None"]


def decode(model: type[M], item: dict[str, Any], projection: tuple[str, ...] | None) -> M:
    """An instance from a raw item; with `projection` (only()), a partial instance."""
    if projection is None:
        return model.from_item(item)
    meta = model._meta
    assert meta.codec is not None
    loaded = set(projection) | {"version"}
    if meta.migrations is not None:
        # The whole item was read (see the compiler's `_projection`): upgraded and validated
        # by the model like any read, then cut down to the fields asked for.
        whole = model.from_item(item).__dict__
        values = {k: v for k, v in whole.items() if k in loaded}
    else:
        values = {k: v for k, v in meta.codec.decode(item).items() if k in loaded}
    obj = model.model_construct(_fields_set=set(values), **values)
    for name in meta.field_names:
        if name not in loaded:
            vars(obj).pop(name, None)
    obj._loaded_key = meta.layout.key_of(item)
    if meta.layout.version is None:  # no version stored: a loaded object counts as saved
        vars(obj)["version"] = 1
    obj._partial = frozenset(loaded)
    token = stored_token(item, meta.layout)
    if token is not None:
        obj._writes = WriteState(token)
    return obj


def from_any(raw: dict[str, Any]) -> Model | None:
    """An item of any registered model (None for an unknown entity type)."""
    model = _registry.get_model(raw.get(TYPE_ATTR, {}).get("S", ""))
    return None if model is None else model.from_item(raw)


def model_page(
    model: type[M], general_decode: Callable[[dict[str, Any]], M], wire: bool
) -> Callable[[Connection, str, dict[str, Any]], tuple[list[M], dict[str, Any] | None]]:
    """The `fetch` of a read of `model`: its wire schema validates the body when `wire`."""
    decode_page = wire_decoder(model).decode_page if wire else None

    def general(response: dict[str, Any]) -> tuple[list[M], dict[str, Any] | None]:
        items = [general_decode(item) for item in response.get("Items", [])]
        return items, response.get("LastEvaluatedKey")

    def fast(body: bytes) -> tuple[list[M], dict[str, Any] | None] | None:
        if decode_page is None:
            return None
        return cast("tuple[list[M], dict[str, Any] | None] | None", decode_page(body))

    def fetch(
        conn: Connection, operation: str, params: dict[str, Any]
    ) -> tuple[list[M], dict[str, Any] | None]:
        return conn.read(operation, params, fast, general)

    return fetch


def keyed_page(
    model: type[M],
    general_decode: Callable[[dict[str, Any]], M],
    key_attrs: tuple[str, ...],
    wire: bool,
) -> Callable[[Connection, str, dict[str, Any]], Keyed[M]]:
    """The `fetch` of `page()`: instances with their key attributes (for the next cursor)."""

    def fast(body: bytes) -> Keyed[M] | None:
        if not wire:
            return None
        got = wire_decoder(model).decode_keyed_page(body, key_attrs)
        if got is None:
            return None
        objs, keys, lek = got
        av = model._meta.layout.av  # a number key's digits back as {"N": ...}
        pairs = [(cast("M", o), {a: av(a, k[a]) for a in key_attrs}) for o, k in zip(objs, keys)]
        return pairs, lek

    def general(response: dict[str, Any]) -> Keyed[M]:
        pairs = [
            (general_decode(raw), {a: raw[a] for a in key_attrs if a in raw})
            for raw in response.get("Items", [])
        ]
        return pairs, response.get("LastEvaluatedKey")

    def fetch(conn: Connection, operation: str, params: dict[str, Any]) -> Keyed[M]:
        return conn.read(operation, params, fast, general)

    return fetch


def collection_page(
    decoder: CollectionDecoder,
) -> Callable[[Connection, str, dict[str, Any]], tuple[list[Model], dict[str, Any] | None]]:
    """The `fetch` of a Collection: items of every included model, in one pass."""

    def general(response: dict[str, Any]) -> tuple[list[Model], dict[str, Any] | None]:
        raws = response.get("Items", [])
        found = [m for r in raws if (m := from_any(r)) is not None]
        return found, response.get("LastEvaluatedKey")

    def fetch(
        conn: Connection, operation: str, params: dict[str, Any]
    ) -> tuple[list[Model], dict[str, Any] | None]:
        return conn.read(operation, params, decoder.decode_page, general)

    return fetch


def get_item(
    conn: Connection,
    model: type[M],
    key: tuple[str, str],
    general_decode: Callable[[dict[str, Any]], M],
    *,
    consistent: bool,
    wire: bool,
) -> M | None:
    """Read one item of `model` by primary key (GetItem); None if absent or of another type."""
    params: dict[str, Any] = {
        "TableName": conn.table_name,
        "Key": key_params(model._meta, *key),
    }
    if consistent:
        params["ConsistentRead"] = True

    def fast(body: bytes) -> list[M] | None:
        if not wire:
            return None
        return cast("list[M] | None", wire_decoder(model).decode_item(body))

    def general(response: dict[str, Any]) -> list[M]:
        item = response.get("Item")
        if item is None or not model._meta.layout.is_type(item, model._meta.type_name):
            return []
        return [general_decode(item)]

    found = conn.read("GetItem", params, fast, general)
    return found[0] if found else None
