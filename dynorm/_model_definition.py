"""What class creation checks and builds for a model.

Reserved names, field and attribute names, the Meta options, and the model's Options
(`Model._meta`); the metaclass (`dynorm.models.ModelMeta`) calls these once per class.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo, ModelPrivateAttr

from ._codec import ModelCodec, compile_field, unwrap_optional
from ._config import as_table
from ._constants import (
    ATTRIBUTE_NAME_LIMIT,
    KEY_ATTRIBUTE_NAME_LIMIT,
    PK,
    SCHEMA_VERSION_ATTR,
    SK,
    TTL_ATTR,
    TYPE_ATTR,
    VERSION_ATTR,
    WRITE_TOKEN_ATTR,
)
from ._datetime_format import PRESETS, DateTimeFormat, with_format
from ._keys import KeyTemplate
from ._layout import LAYOUT_OPTIONS, Layout
from ._migrations import Migrations, check_schema_version, unversioned
from ._options import BoundIndex, Options, UniqueConstraint
from ._physical import KeySpec, bind_indexes, check_keys, check_needs, resolve_layout
from ._pydantic_internals import is_classvar_annotation
from .exceptions import AbstractModelError, ConfigurationError
from .fields import DynormField, FieldKind

__all__ = [
    "META_KEYS",
    "abstract_error",
    "build_options",
    "check_namespace",
    "check_reserved",
    "reserved_names",
]


_RESERVED_FIELD = re.compile(r"^(pk|sk|gsi\d+pk|gsi\d+sk)$")
#: Attribute names dynorm writes in items (besides the fields' own).
_DYNORM_ATTRS = frozenset(
    {PK, SK, TYPE_ATTR, VERSION_ATTR, TTL_ATTR, WRITE_TOKEN_ATTR, SCHEMA_VERSION_ATTR}
)
META_KEYS = frozenset(
    {
        "abstract",
        "type_name",
        "pk",
        "sk",
        "indexes",
        "max_versions",
        "compress",
        "table",
        "ordering",
        "unique",
        "counted",
        "blob_bucket",
        "audit",
        "audit_exclude",
        "schema_version",
        *LAYOUT_OPTIONS,
    }
)


def _owned(klass: type) -> bool:
    """Whether a class is dynorm's or pydantic's own: its names are reserved for models."""
    return str(getattr(klass, "__module__", "")).partition(".")[0] in ("dynorm", "pydantic")


def reserved_names(bases: Iterable[type]) -> dict[str, str]:
    """Every name a field of a model with these bases must not take, and what uses it.

    Derived from the classes, so it cannot go stale: every attribute and annotation of
    dynorm's and pydantic's classes among the bases' ancestors (`objects`, `save`, `delete`,
    `version`, `history`, `model_dump`, `_meta`, `_loaded_key`...), plus `Meta`.
    """
    out: dict[str, str] = {"Meta": "the inner class Meta (dynorm's model options)"}
    for base in bases:
        for klass in base.__mro__:
            if klass is object or not _owned(klass):
                continue
            for name in (*vars(klass), *vars(klass).get("__annotations__", {})):
                if not (name.startswith("__") and name.endswith("__")):
                    owner = str(klass.__module__).partition(".")[0]
                    out.setdefault(name, f"{klass.__qualname__}.{name} ({owner})")
    return out


def _slots(bases: Iterable[type]) -> set[str]:
    """The fields and private attributes dynorm's classes declare (`version`, `_loaded_key`...).

    No class body may define these in any way (a ClassVar, a plain value or a method would
    remove or hide dynorm's own field).
    """
    return {
        name
        for base in bases
        for klass in base.__mro__
        if klass is not object and _owned(klass)
        for name, annotation in vars(klass).get("__annotations__", {}).items()
        if not is_classvar_annotation(annotation) and not name.startswith("__")
    }


def _declared(namespace: dict[str, Any]) -> list[str]:
    """The fields and private attributes a class body declares (not ClassVars, not methods)."""
    annotations: dict[str, Any] = namespace.get("__annotations__", {})
    names = [n for n, a in annotations.items() if not is_classvar_annotation(a)]
    names += [
        n
        for n, v in namespace.items()
        if n not in annotations and isinstance(v, (FieldInfo, ModelPrivateAttr, DynormField))
    ]
    return names


def _refuse_reserved(model: str, name: str, owner: str) -> ConfigurationError:
    if name == VERSION_ATTR:
        fix = (
            "remove the declaration: every model already has `version: int` (optimistic "
            "locking, set by dynorm); name your own counter differently (e.g. 'revision')"
        )
    elif name.startswith("_"):
        fix = "rename the private attribute (e.g. '_my" + name + "')"
    else:
        fix = f"rename the field (e.g. '{name}_value')"
    kind = "private attribute" if name.startswith("_") else "field"
    return ConfigurationError(
        f"Cannot declare the {kind} {name!r} on {model}: the name is taken by {owner}; {fix}.",
        code="model-definition",
    )


def check_namespace(model: str, bases: Iterable[type], namespace: dict[str, Any]) -> None:
    """Refuse a class body that declares a reserved name or redefines one of dynorm's fields."""
    bases = tuple(bases)
    reserved = reserved_names(bases)
    slots = _slots(bases)
    for name in (*namespace.get("__annotations__", {}), *namespace):
        if name in slots:
            raise _refuse_reserved(model, name, reserved[name])
    for name in _declared(namespace):
        if name in reserved:
            raise _refuse_reserved(model, name, reserved[name])
        _check_utf8(model, name)


def check_reserved(cls: type[BaseModel]) -> None:
    """Refuse fields or private attributes of `cls` (its own or a mixin's) with reserved names.

    The class body was checked before pydantic saw it; this catches what mixins and plain
    base classes bring in, and private attributes pydantic made of unannotated values.
    """
    reserved = reserved_names(cls.__bases__)
    slots = _slots(cls.__bases__)
    user = [k for k in cls.__mro__[1:] if k is not object and not _owned(k)]
    for klass in user:
        for name in (*vars(klass).get("__annotations__", {}), *vars(klass)):
            if name in slots:
                raise _refuse_reserved(cls.__name__, name, reserved[name])
    for name in cls.model_fields:
        if name in reserved and any(name in vars(k).get("__annotations__", {}) for k in user):
            raise _refuse_reserved(cls.__name__, name, reserved[name])
    for name, attr in cls.__private_attributes__.items():
        if name not in reserved:
            continue
        theirs = [
            vars(k)["__private_attributes__"].get(name)
            for k in cls.__mro__
            if _owned(k) and name in vars(k).get("__private_attributes__", {})
        ]
        if all(attr is not t for t in theirs):  # by identity: private attrs compare by value
            raise _refuse_reserved(cls.__name__, name, reserved[name])


def abstract_error(model: type[Any], action: str) -> AbstractModelError:
    name = model.__name__
    return AbstractModelError(
        f"Cannot {action} {name}: it is an abstract model (Meta.abstract = True), a base "
        f"with no keys and no objects of its own; {action} a concrete subclass of {name} "
        "instead.",
        model=name,
    )


class _AbstractOptions(Options):
    """The options of an abstract model: anything that needs a key refuses clearly."""

    def _refuse(self) -> AbstractModelError:
        return AbstractModelError(
            f"Cannot store, read or build the key of {self.model_name}: it is an abstract "
            f"model (Meta.abstract = True), a base with no keys; use a concrete subclass of "
            f"{self.model_name} instead.",
            model=self.model_name,
        )

    def key_value(self, template: KeyTemplate, values: Mapping[str, Any], role: str) -> str | None:
        raise self._refuse()

    def primary_key(self, values: Mapping[str, Any]) -> tuple[str, str]:
        raise self._refuse()

    def parse_key(self, pk: str, sk: str, read: Callable[[str, str], Any]) -> dict[str, Any] | None:
        raise self._refuse()

    def index_keys(self, values: Mapping[str, Any]) -> dict[str, str | None]:
        raise self._refuse()


def build_options(
    cls: type[BaseModel], raw: dict[str, Any], kinds: dict[str, FieldKind]
) -> Options:
    name = cls.__name__
    fields = cls.model_fields
    if cls.model_config.get("extra") == "allow":
        raise ConfigurationError(
            f"Cannot use extra='allow' on {name}: dynorm stores declared fields only, so "
            "extra values would be dropped silently on save; declare them as fields (or one "
            "dict field), or use extra='ignore' to drop them on purpose.",
            code="model-definition",
        )
    for field_name, info in fields.items():
        if info.alias or info.validation_alias or info.serialization_alias:
            raise ConfigurationError(
                f"Cannot use a pydantic alias on {name}.{field_name}: to store the field under "
                f"another attribute name, declare it with fields.Attr (e.g. `{field_name}: str "
                f'= fields.Attr("{field_name}Name")`), or rename the field.',
                code="model-definition",
            )
        if "__" in field_name:
            raise ConfigurationError(
                f"Cannot name a field {field_name!r} on {name}: dynorm reads '__' as "
                "field__lookup (and nested__field) in filters and updates; rename it.",
                code="model-definition",
            )
    ttl_fields = [f for f, k in kinds.items() if k == "ttl"]
    if len(ttl_fields) > 1:
        raise ConfigurationError(
            f"Cannot declare more than one fields.TTL() on {name} (found "
            f"{', '.join(ttl_fields)}); DynamoDB has one TTL attribute per table.",
            code="model-definition",
        )
    given_attrs: dict[str, str] = dict(raw.get("_attributes") or {})
    attr_names = {
        f: given_attrs[f] if f in given_attrs else (TTL_ATTR if kinds.get(f) == "ttl" else f)
        for f in fields
    }
    if "version" in given_attrs:
        raise ConfigurationError(
            f"Cannot rename the version field of {name} with fields.Attr: name its attribute "
            'with Meta.version_attribute (e.g. version_attribute = "Version").',
            code="model-definition",
        )
    table = as_table(raw["table"]) if raw.get("table") is not None else None
    annotations = {f: i.annotation for f, i in fields.items()}
    layout, _ = resolve_layout(
        name,
        raw,
        table.layout if table is not None else {},
        attr_names,
        annotations,
        ttl_fields[0] if ttl_fields else None,
    )
    abstract = bool(raw.get("abstract", False))
    type_name = str(raw.get("type_name") or name)
    if "#" in type_name:
        raise ConfigurationError(
            f"Cannot use a type name containing '#' for {name}: dynorm derives other entity "
            "types from it (a versioned model's history is '<type>#history'); rename it.",
            code="model-definition",
        )
    meta = (_AbstractOptions if abstract else Options)(
        model_name=name,
        type_name=type_name,
        abstract=abstract,
        field_names=tuple(fields),
        field_kinds=dict(kinds),
        attr_names=attr_names,
        ttl_field=ttl_fields[0] if ttl_fields else None,
        extra={"raw": raw, "annotations": annotations},
        layout=layout,
    )
    if table is not None:
        meta.table = table
    formats = _datetime_formats(name, raw.get("_formats") or {}, annotations, kinds)
    meta.datetime_formats = formats
    meta.codec = ModelCodec(
        name,
        (
            with_format(compile_field(f, attr_names[f], info.annotation, kinds.get(f)), formats)
            for f, info in fields.items()
            if f != "version" or layout.version is not None
        ),
    )
    if abstract:
        for field_name, attr in attr_names.items():
            _check_attribute_name(name, field_name, attr, kinds.get(field_name), layout, set())
        return meta
    if "pk" not in raw and getattr(cls, "__dynorm_singleton__", False):
        raw = {**raw, "pk": f"SINGLETON#{type_name}"}
    if "pk" not in raw:
        raise ConfigurationError(
            f"Cannot create model {name} without a partition key: add "
            f'`class Meta: pk = "{type_name.upper()}#{{id}}"` (or `abstract = True`).',
            code="model-definition",
        )
    known = [f for f in fields if kinds.get(f) not in ("compressed", "blob")]
    if layout.sk is None and raw.get("sk") is not None:
        raise ConfigurationError(
            f"Cannot use Meta.sk on {name}: its table has no sort key (sk_attribute=None); "
            "drop Meta.sk, or name the table's sort-key attribute.",
            code="model-definition",
        )
    meta.pk = KeyTemplate(str(raw["pk"]), name, known, "partition key")
    meta.sk = KeyTemplate(str(raw.get("sk") or type_name), name, known, "sort key")
    keys = [KeySpec("partition key", "Meta.pk_attribute", layout.pk, meta.pk)]
    if layout.sk is not None:
        keys.append(KeySpec("sort key", "Meta.sk_attribute", layout.sk, meta.sk))
    bound = bind_indexes(name, raw, known, type_name, layout, meta.pk, keys)
    types, owned = check_keys(name, layout, keys, attr_names, annotations)
    layout = Layout(**{**vars(layout), "types": types})
    meta.layout = layout
    for key, bound_index in list(bound.items()):
        writes = tuple(
            a
            for a in (bound_index.pk_attr, bound_index.sk_attr)
            if a not in layout.key_attrs and a not in owned
        )
        bound[key] = BoundIndex(**{**vars(bound_index), "writes": writes})
    for field_name, attr in attr_names.items():
        _check_attribute_name(name, field_name, attr, kinds.get(field_name), layout, owned)
    check_needs(cls, name, raw, layout)
    for bound_index in bound.values():
        if len(bound_index.pk_attr) > KEY_ATTRIBUTE_NAME_LIMIT:
            raise ConfigurationError(
                f"Cannot pin index {bound_index.name!r} of {name} to slot {bound_index.slot}: "
                f"its key attribute names would exceed DynamoDB's {KEY_ATTRIBUTE_NAME_LIMIT}-"
                "character limit; pick a smaller slot.",
                code="index",
            )
    meta.indexes = bound
    meta.key_fields = frozenset(meta.pk.fields + meta.sk.fields)
    meta.ordering = _ordering(name, raw.get("ordering"), [meta.sk, *(i.sk for i in bound.values())])
    meta.unique = _unique_constraints(name, type_name, raw.get("unique"), fields, known)
    counted = raw.get("counted", False)
    if not isinstance(counted, bool):
        raise ConfigurationError(
            f"Cannot use Meta.counted on {name}: it must be True or False.",
            code="model-definition",
        )
    meta.counted = counted
    meta.audit, meta.audit_exclude = _audit_options(name, raw, fields)
    schema_version = check_schema_version(name, raw.get("schema_version"))
    if schema_version is not None:
        index_attrs = [a for i in bound.values() for a in (i.pk_attr, i.sk_attr)]
        fields_at = {a for f, a in attr_names.items() if f != "version"}
        physical = (layout.pk, layout.sk, layout.type, layout.version, layout.token)
        index_attrs += [a for a in physical if a is not None and a not in fields_at]
        meta.migrations = Migrations(name, schema_version, index_attrs, attr_names)
        meta.codec.upgrade = meta.migrations.upgrade
    else:
        meta.codec.upgrade = unversioned(name)
    templates = [meta.pk, meta.sk, *(t for i in bound.values() for t in (i.pk, i.sk))]
    templates += [c.template for c in meta.unique]
    for template in templates:
        template.formats = {f: formats[f] for f in template.fields if f in formats}
        for field_name in template.fields:
            base, _ = unwrap_optional(fields[field_name].annotation)
            if base is float:
                raise ConfigurationError(
                    f"Cannot use the float field {field_name!r} in a key template of {name}: "
                    "floats have several texts for one value (0.0 and -0.0, 1e16+1), so an "
                    "item could become unreachable. Use int, Decimal or str.",
                    code="key-template",
                )
        template.check_specs(lambda f: unwrap_optional(fields[f].annotation)[0] in (int, Decimal))
    return meta


def _datetime_formats(
    model: str, given: Mapping[str, str], annotations: Mapping[str, Any], kinds: Mapping[str, Any]
) -> dict[str, DateTimeFormat]:
    """The storage formats of the datetime fields that declare one, checked.

    dynorm's own format (`"dynorm"`) needs nothing: those fields keep the default codec.
    """
    out: dict[str, DateTimeFormat] = {}
    for field_name, spec in given.items():
        if field_name not in annotations:
            continue  # a parent's field this model no longer has
        base, _ = unwrap_optional(annotations[field_name])
        if base is not datetime or kinds.get(field_name) == "ttl":
            raise ConfigurationError(
                f"Cannot give {model}.{field_name} a datetime format: it is not a datetime "
                "field; declare it `datetime` (or `datetime | None`), or drop format=.",
                code="model-definition",
            )
        try:
            fmt = DateTimeFormat(spec)
        except ValueError as exc:
            raise ConfigurationError(
                f"Cannot use the datetime format {spec!r} on {model}.{field_name}: {exc}.",
                code="model-definition",
            ) from None
        if fmt.pattern != PRESETS["dynorm"]:
            out[field_name] = fmt
    return out


def _ordering(model: str, raw: Any, sort_keys: list[KeyTemplate]) -> tuple[str, bool] | None:
    """`Meta.ordering` (`"-created_at"` or `["-created_at"]`) as (field, descending)."""
    if raw is None:
        return None
    entries = [raw] if isinstance(raw, str) else list(raw)
    if len(entries) != 1 or not isinstance(entries[0], str):
        raise ConfigurationError(
            f"Cannot use Meta.ordering of {model} with {len(entries)} entries: DynamoDB sorts "
            "by one sort key, so give one sort-key field, e.g. ordering = ['-created_at'].",
            code="model-definition",
        )
    name = entries[0].removeprefix("-")
    if not any(name in tpl.fields for tpl in sort_keys):
        fields = sorted({f for tpl in sort_keys for f in tpl.fields})
        raise ConfigurationError(
            f"Cannot order {model} by {name!r} in Meta.ordering: DynamoDB sorts by a sort key "
            f"only, and no sort key of the table or its indexes holds {name!r} (sort-key "
            f"fields: {', '.join(fields) or 'none'}). Name one of those.",
            code="model-definition",
        )
    return name, entries[0].startswith("-")


def _audit_options(
    model: str, raw: Mapping[str, Any], fields: Mapping[str, Any]
) -> tuple[bool, tuple[str, ...]]:
    """`Meta.audit` (True/False) and `Meta.audit_exclude` (field names kept out of entries)."""
    audit = raw.get("audit", False)
    if not isinstance(audit, bool):
        raise ConfigurationError(
            f"Cannot use Meta.audit on {model}: it must be True or False.",
            code="model-definition",
        )
    exclude = raw.get("audit_exclude") or ()
    if isinstance(exclude, str) or not all(isinstance(n, str) for n in exclude):
        raise ConfigurationError(
            f"Cannot use Meta.audit_exclude on {model}: list field names, e.g. "
            'audit_exclude = ["password_hash"].',
            code="model-definition",
        )
    for name in exclude:
        if name not in fields:
            raise ConfigurationError(
                f"Cannot exclude {model}.{name!r} from the audit log: no such field.",
                code="model-definition",
            )
    return audit, tuple(exclude)


def _unique_constraints(
    model: str, type_name: str, raw: Any, fields: Mapping[str, Any], known: list[str]
) -> tuple[UniqueConstraint, ...]:
    """Parse `Meta.unique`: a list of field-name tuples (`[("email",), ("tenant", "slug")]`)."""
    if raw is None:
        return ()
    fix = 'list tuples of field names, e.g. unique = [("email",), ("tenant", "slug")]'
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Iterable):
        raise ConfigurationError(
            f"Cannot use Meta.unique on {model}: {fix}.", code="model-definition"
        )
    out: list[UniqueConstraint] = []
    seen: set[frozenset[str]] = set()
    for entry in raw:
        names = (entry,) if isinstance(entry, str) else entry
        if not isinstance(names, (tuple, list)) or not names:
            raise ConfigurationError(
                f"Cannot use Meta.unique on {model}: {fix}.", code="model-definition"
            )
        for name in names:
            if not isinstance(name, str) or name not in fields:
                raise ConfigurationError(
                    f"Cannot declare a unique constraint on {model}.{name!r}: no such field.",
                    code="model-definition",
                )
            if name not in known:
                raise ConfigurationError(
                    f"Cannot declare a unique constraint on the compressed field "
                    f"{model}.{name}: its value is stored as compressed bytes; use a plain "
                    "field.",
                    code="model-definition",
                )
        if len(set(names)) != len(names) or frozenset(names) in seen:
            raise ConfigurationError(
                f"Cannot declare the unique constraint ({', '.join(names)}) on {model} "
                "twice, or with a field twice; name each constraint and field once.",
                code="model-definition",
            )
        seen.add(frozenset(names))
        source = f"_UNIQUE#{type_name}#{'+'.join(names)}#" + "#".join(f"{{{n}}}" for n in names)
        template = KeyTemplate(source, model, known, f"unique guard ({', '.join(names)})")
        out.append(UniqueConstraint(tuple(names), template))
    return tuple(out)


def _check_utf8(model: str, name: str) -> int:
    """Return the UTF-8 size of a field name; refuse one UTF-8 cannot encode."""
    try:
        return len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise ConfigurationError(
            f"Cannot name a field of {model} with text that is not valid UTF-8 (a lone "
            "surrogate): DynamoDB attribute names are UTF-8; rename the field.",
            code="model-definition",
        ) from None


def _check_attribute_name(
    model: str, field: str, attr: str, kind: FieldKind | None, layout: Layout, owned: set[str]
) -> None:
    """Refuse a field whose stored attribute name DynamoDB would refuse or dynorm uses."""
    ours = field == VERSION_ATTR or (kind == "ttl" and attr == layout.ttl) or attr in owned
    physical = {layout.pk, layout.sk, layout.type, layout.version, layout.ttl} - {None}
    if not ours and (attr in _DYNORM_ATTRS | physical or _RESERVED_FIELD.match(attr)):
        raise ConfigurationError(
            f"Cannot name a field {field!r} on {model}: dynorm stores its keys (or its own "
            f"data) under the attribute name {attr!r}; rename the field.",
            code="model-definition",
        )
    size = _check_utf8(model, attr)
    if size > ATTRIBUTE_NAME_LIMIT:
        raise ConfigurationError(
            f"Cannot name a field of {model} with {size} bytes (it starts {field[:40]!r}): "
            f"DynamoDB limits attribute names to {ATTRIBUTE_NAME_LIMIT} bytes of UTF-8; "
            "rename the field.",
            code="model-definition",
        )
