"""The table the models' physical names describe: key schema, existing indexes, TTL.

`table_definition()` and `diff_table()` (in `_table.py`) use these for models whose layout is
not dynorm's own (`Table(pk_attribute=...)`, `Index(name=..., local=...)`): the key schema
and attribute types come from the models' `Layout`, and each declared index keeps its own
name, key attributes and projection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import _registry
from ._config import _chosen_table, get_settings, table_name_for
from ._layout import DEFAULT, Layout
from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from ._options import BoundIndex
    from .models import Model

__all__ = [
    "custom_indexes",
    "of_table",
    "key_schema",
    "layout_of",
    "projection_of",
    "refuse_unmanaged",
]


def of_table(models: Sequence[type[Model]], table: str) -> list[type[Model]]:
    """The models among `models` that live in `table` (by `table_name_for`)."""
    return [m for m in models if table_name_for(m) == table]


def living_in(table: str, models: Sequence[type[Model]]) -> list[type[Model]]:
    """The models among `models` a command about `table` concerns (describe, stats).

    Those whose `Meta.table` names it, and those with no `Meta.table` (they use whichever
    table is the default) when `table` is the configured default or no model declares it.
    """
    declared = [m for m in models if m._meta.table is not None and table_name_for(m) == table]
    default = [m for m in models if m._meta.table is None]
    if table == get_settings().table_name or not declared:
        return declared + default
    return declared


def layout_of(models: Sequence[type[Model]]) -> Layout:
    """The layout the table's key schema follows.

    The first model's with names of its own; dynorm's own when none has.
    """
    return next((m._meta.layout for m in models if not m._meta.layout.is_default), DEFAULT)


def key_schema(layout: Layout) -> tuple[list[dict[str, str]], dict[str, str]]:
    """(KeySchema, {attribute: type}) of the table's primary key."""
    schema = [{"AttributeName": layout.pk, "KeyType": "HASH"}]
    types = {layout.pk: layout.types.get(layout.pk, "S")}
    if layout.sk is not None:
        schema.append({"AttributeName": layout.sk, "KeyType": "RANGE"})
        types[layout.sk] = layout.types.get(layout.sk, "S")
    return schema, types


def projection_of(index: BoundIndex) -> dict[str, Any]:
    """The `Projection` of a declared index."""
    if index.projection in ("ALL", "KEYS_ONLY"):
        return {"ProjectionType": index.projection}
    return {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(index.projection)}


def custom_indexes(
    models: Sequence[type[Model]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str], dict[str, str]]:
    """(GSIs, LSIs, {attribute: type}, {index name: users}) of the declared existing indexes."""
    gsis: dict[str, dict[str, Any]] = {}
    lsis: dict[str, dict[str, Any]] = {}
    types: dict[str, str] = {}
    users: dict[str, str] = {}
    for model in models:
        layout = model._meta.layout
        for index in model._meta.indexes.values():
            if not index.custom:
                continue
            spec = {
                "IndexName": index.physical_name,
                "KeySchema": [
                    {"AttributeName": index.pk_attr, "KeyType": "HASH"},
                    {"AttributeName": index.sk_attr, "KeyType": "RANGE"},
                ],
                "Projection": projection_of(index),
            }
            (lsis if index.local else gsis).setdefault(index.physical_name, spec)
            for attr in (index.pk_attr, index.sk_attr):
                types[attr] = layout.types.get(attr, "S")
            who = f"{model._meta.model_name}.{index.name}"
            users[index.physical_name] = ", ".join(
                filter(None, (users.get(index.physical_name), who))
            )
    return list(gsis.values()), list(lsis.values()), types, users


def refuse_unmanaged(action: str, table: str, models: Iterable[type[Model]] = ()) -> None:
    """Raise ConfigurationError when `table` is one dynorm does not manage (managed=False).

    It is when the `using()` block's Table says so, when a given model is unmanaged, or when
    a registered unmanaged model lives in a table of that name.
    """
    current = _chosen_table(None, None)
    owners = [m for m in models if not m._meta.layout.managed]
    owners += [
        m
        for m in _registry.all_models()
        if not m._meta.layout.managed and table_name_for(m) == table and m not in owners
    ]
    flagged = getattr(current, "layout", {}).get("managed") is False
    if owners or flagged:
        names = ", ".join(sorted(m._meta.model_name for m in owners)) or "its Table"
        raise ConfigurationError(
            f"Cannot {action} table {table!r}: it is not managed by dynorm (managed=False, "
            f"declared by {names}), so dynorm never creates, changes or deletes it. Manage "
            "it with your own tooling, or compare it with the models with "
            "dynorm.check_table() / `dynorm check`.",
            code="config",
        )
