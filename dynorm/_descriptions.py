"""Descriptions of the registered models: keys, indexes, physical names, access patterns.

Used by `dynorm describe` and importable from code (`dynorm.cli.describe_models`,
`dynorm.cli.describe_json`); they need neither Click nor Rich.
"""

from __future__ import annotations

from typing import Any

from . import _registry
from ._table import table_definition
from ._table_layout import layout_of, living_in

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
        key_attrs = ", ".join(a for a in (meta.layout.pk, meta.layout.sk) if a is not None)
        lines.append(f"  table   pk={meta.pk.source!r} sk={meta.sk.source!r} ({key_attrs})")
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
            ttl_attr = meta.attr_names[meta.ttl_field]
            lines.append(f"  ttl     {meta.ttl_field} (stored as {ttl_attr})")
    lines.append("")
    lines.append(_attributes_line(models))
    return "\n".join(lines)


def _attributes_line(models: list[Any]) -> str:
    names: dict[str, None] = {}  # in order, once each, over every model's own layout
    for model in models:
        meta = model._meta
        layout = meta.layout
        names.update(dict.fromkeys(a for a in (layout.pk, layout.sk) if a is not None))
        if layout.type is not None:
            names[f"{layout.type} (entity type)"] = None
        if layout.version is not None:
            names[layout.version] = None
        if layout.token is not None:
            names[f"{layout.token} (write token)"] = None
    for model in models:
        for index in model._meta.indexes.values():
            names.update(dict.fromkeys(index.writes))
    for model in models:
        if model._meta.ttl_field:
            names[f"{model._meta.attr_names[model._meta.ttl_field]} (time to live)"] = None
    return "Physical attributes: " + ", ".join(names)


def describe_json(table_name: str) -> dict[str, Any]:
    """Return one table's registered models and the table they need, with physical names.

    Only the models that live in `table_name` are described: those whose `Meta.table` names
    it, and those with no `Meta.table` (they use whichever table is the default) unless
    other models declare this table as theirs. `table.create_table` is the CreateTable request
    `dynorm.create_table()` would send; `table.attributes` names the attributes dynorm
    writes in every item, under the table's layout (`Table(pk_attribute=...)`).
    """
    models = living_in(table_name, _models())
    layout = layout_of(models)
    indexes = {
        i.physical_name: i for m in models for i in m._meta.indexes.values() if i.physical_name
    }
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
                "pk": {
                    "attribute": meta.layout.pk,
                    "template": meta.pk.source,
                    "fields": list(meta.pk.fields),
                },
                "sk": {
                    "attribute": meta.layout.sk,
                    "template": meta.sk.source,
                    "fields": list(meta.sk.fields),
                },
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
                    {"field": meta.ttl_field, "attribute": meta.attr_names[meta.ttl_field]}
                    if meta.ttl_field
                    else None
                ),
                "attributes": dict(meta.attr_names),
            }
        )
    return {
        "table": {
            "name": table_name,
            "attributes": {
                "partition_key": layout.pk,
                "sort_key": layout.sk,
                "type": layout.type,
                "version": layout.version,
                "write_token": layout.token,
                "ttl": layout.ttl if ttl else None,
            },
            "indexes": [
                {
                    "index_name": name,
                    "partition_key": index.pk_attr,
                    "sort_key": index.sk_attr,
                    "projection": index.projection
                    if isinstance(index.projection, str)
                    else list(index.projection),
                }
                for name, index in sorted(indexes.items())
            ],
            "create_table": table_definition(table_name, models),
        },
        "models": out_models,
    }
