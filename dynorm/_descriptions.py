"""Descriptions of the registered models: keys, indexes, physical names, access patterns.

Used by `dynorm describe` and importable from code (`dynorm.cli.describe_models`,
`dynorm.cli.describe_json`); they need neither Click nor Rich.
"""

from __future__ import annotations

from typing import Any

from . import _registry
from ._constants import (
    PK,
    SK,
    TTL_ATTR,
    TYPE_ATTR,
    VERSION_ATTR,
    WRITE_TOKEN_ATTR,
    gsi_name,
    gsi_pk,
    gsi_sk,
)
from ._table import table_definition

__all__ = ["describe_json", "describe_models"]


def _models() -> list[Any]:
    return sorted(_registry.all_models(), key=lambda m: m._meta.type_name)


def describe_models() -> str:
    """Return a text description of every registered model: keys, indexes, access patterns.

    Each key line ends with the physical attributes that hold it (`pk`/`sk`, `gsi{n}pk`/
    `gsi{n}sk`), which infrastructure code that creates the table must use.
    """
    lines: list[str] = []
    models = _models()
    for model in models:
        meta = model._meta
        assert meta.pk is not None and meta.sk is not None
        lines.append(f"{meta.model_name} (entity type {meta.type_name!r})")
        lines.append(f"  table   pk={meta.pk.source!r} sk={meta.sk.source!r} ({PK}, {SK})")
        fields = ", ".join(f"{f}=..." for f in meta.pk.fields)
        lines.append(f"          {meta.model_name}.objects.filter({fields})")
        for index in meta.indexes.values():
            lines.append(
                f"  {index.physical_name:<7} {index.name}: pk={index.pk.source!r} "
                f"sk={index.sk.source!r} ({index.pk_attr}, {index.sk_attr})"
            )
            fields = ", ".join(f"{f}=..." for f in index.pk.fields)
            lines.append(
                f"          {meta.model_name}.objects.using_gsi({index.name!r}).filter({fields})"
            )
        if meta.ttl_field:
            lines.append(f"  ttl     {meta.ttl_field} (stored as {TTL_ATTR})")
    lines.append("")
    lines.append(_attributes_line(models))
    return "\n".join(lines)


def _attributes_line(models: list[Any]) -> str:
    slots = sorted({i.slot for m in models for i in m._meta.indexes.values()})
    names = [
        PK,
        SK,
        f"{TYPE_ATTR} (entity type)",
        VERSION_ATTR,
        f"{WRITE_TOKEN_ATTR} (write token)",
    ]
    names += [a for s in slots for a in (gsi_pk(s), gsi_sk(s))]
    if any(m._meta.ttl_field for m in models):
        names.append(f"{TTL_ATTR} (time to live)")
    return "Physical attributes: " + ", ".join(names)


def describe_json(table_name: str) -> dict[str, Any]:
    """Return the registered models and the table they need, with every physical name.

    `table.create_table` is the CreateTable request `dynorm.create_table()` would send;
    `table.attributes` names the attributes dynorm writes in every item.
    """
    models = _models()
    slots = sorted({i.slot for m in models for i in m._meta.indexes.values()})
    ttl = any(m._meta.ttl_field for m in models)
    out_models = []
    for model in models:
        meta = model._meta
        assert meta.pk is not None and meta.sk is not None
        out_models.append(
            {
                "name": meta.model_name,
                "module": model.__module__,
                "type_name": meta.type_name,
                "pk": {"attribute": PK, "template": meta.pk.source, "fields": list(meta.pk.fields)},
                "sk": {"attribute": SK, "template": meta.sk.source, "fields": list(meta.sk.fields)},
                "indexes": [
                    {
                        "name": index.name,
                        "index_name": index.physical_name,
                        "slot": index.slot,
                        "pk": {
                            "attribute": index.pk_attr,
                            "template": index.pk.source,
                            "fields": list(index.pk.fields),
                        },
                        "sk": {
                            "attribute": index.sk_attr,
                            "template": index.sk.source,
                            "fields": list(index.sk.fields),
                        },
                    }
                    for index in meta.indexes.values()
                ],
                "ttl": (
                    {"field": meta.ttl_field, "attribute": TTL_ATTR} if meta.ttl_field else None
                ),
                "attributes": dict(meta.attr_names),
            }
        )
    return {
        "table": {
            "name": table_name,
            "attributes": {
                "partition_key": PK,
                "sort_key": SK,
                "type": TYPE_ATTR,
                "version": VERSION_ATTR,
                "write_token": WRITE_TOKEN_ATTR,
                "ttl": TTL_ATTR if ttl else None,
            },
            "indexes": [
                {
                    "index_name": gsi_name(slot),
                    "partition_key": gsi_pk(slot),
                    "sort_key": gsi_sk(slot),
                    "projection": "ALL",
                }
                for slot in slots
            ],
            "create_table": table_definition(table_name, models),
        },
        "models": out_models,
    }
