"""Models: the metaclass that compiles `Meta`, and `Model` with its write methods."""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator
from pydantic.fields import FieldInfo, ModelPrivateAttr
from typing_extensions import Self, dataclass_transform

from . import _persistence, _registry
from ._codec import ModelCodec, compile_field, unwrap_optional
from ._config import as_table
from ._constants import (
    ATTRIBUTE_NAME_LIMIT,
    KEY_ATTRIBUTE_NAME_LIMIT,
    PK,
    SK,
    TTL_ATTR,
    TYPE_ATTR,
    VERSION_ATTR,
    WRITE_TOKEN_ATTR,
)
from ._keys import KeyTemplate, value_from_text
from ._options import BoundIndex, Options, assign_slots
from ._page_schema import trust_before_validator
from ._pydantic_internals import ModelMetaclass, init_private_attributes, is_classvar_annotation
from .exceptions import (
    AbstractModelError,
    ConfigurationError,
    InvalidValueError,
    MultipleObjectsReturned,
    ObjectDoesNotExist,
)
from .fields import Compressed, DynormField, FieldKind
from .query.queryset import Manager

__all__ = ["Model", "ModelMeta", "reserved_names"]

_TRUSTED = "dynorm_trusted"
_TRUSTED_CONTEXT = {_TRUSTED: True}
_RESERVED_FIELD = re.compile(r"^(pk|sk|gsi\d+pk|gsi\d+sk)$")
#: Attribute names dynorm writes in items (besides the fields' own).
_DYNORM_ATTRS = frozenset({PK, SK, TYPE_ATTR, VERSION_ATTR, TTL_ATTR, WRITE_TOKEN_ATTR})
_META_KEYS = frozenset(
    {"abstract", "type_name", "pk", "sk", "indexes", "max_versions", "compress", "table"}
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


def _check_namespace(model: str, bases: Iterable[type], namespace: dict[str, Any]) -> None:
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


def _check_reserved(cls: type[BaseModel]) -> None:
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


class _AbstractManager(Manager):
    """`objects` of an abstract model: refuses every use; keeps the QuerySet class to inherit."""

    def __get__(self, instance: object, owner: type[Any]) -> Any:
        raise _abstract(owner, "query")


def _abstract(model: type[Any], action: str) -> AbstractModelError:
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


def _subclass_exception(
    name: str, parents: tuple[type[Exception], ...], owner: type
) -> type[Exception]:
    return type(
        name,
        parents,
        {"__module__": owner.__module__, "__qualname__": f"{owner.__qualname__}.{name}"},
    )


# Type checkers honour dataclass_transform on the metaclass a class uses, not on its bases:
# without this (and the same on every subclass of ModelMeta) constructors are `(**data: Any)`.
# fields.ULID() & co. always have a default, so they are plain defaults to a checker; only
# Compressed(default=...) may lack one, so it is a field specifier.
@dataclass_transform(kw_only_default=True, field_specifiers=(Field, PrivateAttr, Compressed))
class ModelMeta(ModelMetaclass):
    """Metaclass of dynorm models: parses `Meta`, compiles keys and codec, registers the model."""

    def __new__(  # noqa: D102 - documented on the class
        mcs,
        cls_name: str,
        bases: tuple[type[Any], ...],
        namespace: dict[str, Any],
        **kwargs: Any,
    ) -> type:
        meta_class = namespace.pop("Meta", None)
        own_raw = (
            {k: v for k, v in vars(meta_class).items() if not k.startswith("__")}
            if (meta_class is not None)
            else {}
        )
        unknown = set(own_raw) - _META_KEYS
        if unknown:
            raise ConfigurationError(
                f"Cannot use Meta option(s) {', '.join(sorted(unknown))} on {cls_name}; "
                f"known options are {', '.join(sorted(_META_KEYS))}.",
                code="model-definition",
            )
        _check_namespace(cls_name, bases, namespace)
        manager = namespace.pop("objects", None)
        if manager is not None and not isinstance(manager, Manager):
            raise ConfigurationError(
                f"Cannot use {type(manager).__name__} as {cls_name}.objects: it must be a "
                "dynorm Manager (e.g. `objects = MyQuerySet.as_manager()`); a field cannot "
                "be named objects.",
                code="model-definition",
            )
        kinds: dict[str, FieldKind] = {}
        for key, value in list(namespace.items()):
            if isinstance(value, DynormField):
                kinds[key] = value.kind
                namespace[key] = value.to_field_info()
        cls = super().__new__(mcs, cls_name, bases, namespace, **kwargs)
        post_init = cls.__dict__.get("model_post_init")
        if getattr(post_init, "__wrapped__", None) is init_private_attributes:
            # pydantic wraps the parent's private-attribute setup in the child's and runs it
            # twice per instance; once is enough (a user-defined model_post_init is kept).
            type.__setattr__(cls, "model_post_init", init_private_attributes)
        _check_reserved(cls)
        parent_meta = next(
            (b.__dict__["_meta"] for b in cls.__mro__[1:] if "_meta" in b.__dict__), None
        )
        raw: dict[str, Any] = {}
        if parent_meta is not None:
            raw.update(parent_meta.extra["raw"])
            generic = getattr(cls, "__pydantic_generic_metadata__", None) or {}
            if generic.get("origin") is None or not parent_meta.abstract:
                # A parametrized abstract generic base (`Base[int]`) stays abstract.
                raw.pop("abstract", None)
            raw.pop("type_name", None)
            for name, kind in parent_meta.field_kinds.items():
                kinds.setdefault(name, kind)
        raw.update(own_raw)
        meta = _build_options(cls, raw, kinds)
        type.__setattr__(cls, "_meta", meta)
        exc_parents: dict[str, tuple[type[Exception], ...]] = {}
        for exc_name, root in (
            ("DoesNotExist", ObjectDoesNotExist),
            ("MultipleObjectsReturned", MultipleObjectsReturned),
        ):
            inherited = tuple(
                b.__dict__[exc_name] for b in cls.__mro__[1:] if exc_name in b.__dict__
            )
            exc_parents[exc_name] = inherited[:1] or (root,)
            type.__setattr__(
                cls, exc_name, _subclass_exception(exc_name, exc_parents[exc_name], cls)
            )
        if manager is None:
            managers: list[Manager] = [
                b.__dict__["objects"] for b in cls.__mro__[1:] if "objects" in b.__dict__
            ]
            parent = managers[0] if managers else None
            manager = Manager(parent.queryset_class if parent is not None else None)
        if meta.abstract:
            manager = _AbstractManager(manager.queryset_class)
        type.__setattr__(cls, "objects", manager)
        if not meta.abstract:
            _registry.register(typing.cast("type[Model]", cls))
        return cls

    if not TYPE_CHECKING:  # a typed __getattr__ would hide typos in class attributes

        def __getattr__(cls, name: str) -> Any:
            # Reached when normal lookup failed, e.g. `objects` of an abstract model.
            meta = cls.__dict__.get("_meta")
            if name == "objects" and meta is not None and meta.abstract:
                raise _abstract(cls, "query")
            return super().__getattr__(name)


def _build_options(
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
                f"Cannot use an alias on {name}.{field_name}: dynorm stores every field under "
                "its own name. Rename the field instead (or convert at your API boundary).",
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
    attr_names = {f: (TTL_ATTR if kinds.get(f) == "ttl" else f) for f in fields}
    for field_name, attr in attr_names.items():
        _check_attribute_name(name, field_name, attr, kinds.get(field_name))
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
        extra={"raw": raw, "annotations": {f: i.annotation for f, i in fields.items()}},
    )
    if raw.get("table") is not None:
        meta.table = as_table(raw["table"])
    meta.codec = ModelCodec(
        name,
        (
            compile_field(f, attr_names[f], info.annotation, kinds.get(f))
            for f, info in fields.items()
        ),
    )
    if abstract:
        return meta
    if "pk" not in raw and getattr(cls, "__dynorm_singleton__", False):
        raw = {**raw, "pk": f"SINGLETON#{type_name}"}
    if "pk" not in raw:
        raise ConfigurationError(
            f"Cannot create model {name} without a partition key: add "
            f'`class Meta: pk = "{type_name.upper()}#{{id}}"` (or `abstract = True`).',
            code="model-definition",
        )
    known = [f for f in fields if kinds.get(f) != "compressed"]
    meta.pk = KeyTemplate(str(raw["pk"]), name, known, "partition key")
    meta.sk = KeyTemplate(str(raw.get("sk") or type_name), name, known, "sort key")
    bound: dict[str, BoundIndex] = {}
    for index, slot in assign_slots(list(raw.get("indexes") or ()), name):
        bound[index.name] = BoundIndex(
            name=index.name,
            slot=slot,
            pk=KeyTemplate(index.pk, name, known, f"index {index.name!r} partition key"),
            sk=KeyTemplate(index.sk or type_name, name, known, f"index {index.name!r} sort key"),
        )
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
    templates = [meta.pk, meta.sk, *(t for i in bound.values() for t in (i.pk, i.sk))]
    for template in templates:
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


def _check_attribute_name(model: str, field: str, attr: str, kind: FieldKind | None) -> None:
    """Refuse a field whose stored attribute name DynamoDB would refuse or dynorm uses."""
    ours = field == VERSION_ATTR or (kind == "ttl" and attr == TTL_ATTR)
    if not ours and (attr in _DYNORM_ATTRS or _RESERVED_FIELD.match(attr)):
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


class Model(BaseModel, metaclass=ModelMeta):
    """Base class of dynorm models: a pydantic model stored as one item of the table.

    Declare keys in an inner `class Meta` (`pk`, `sk`, `indexes`, `type_name`, `abstract`).
    Every model has `version` (0 until first saved) for optimistic locking.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    version: int = 0

    _meta: ClassVar[Options]
    _loaded_key: tuple[str, str] | None = PrivateAttr(default=None)
    _partial: frozenset[str] | None = PrivateAttr(default=None)
    # dynorm's bookkeeping of this instance's writes (never part of equality): the stored
    # item's write token and the writes of unknown outcome (see dynorm._persistence).
    _writes: _persistence.WriteState | None = PrivateAttr(default=None)
    if TYPE_CHECKING:
        # Inferred, not declared: a model's own `objects = MyQuerySet.as_manager()` then types
        # as its QuerySet class without pyright's invariant-override error on a declared one.
        objects = Manager()
        DoesNotExist: ClassVar[type[ObjectDoesNotExist]]
        MultipleObjectsReturned: ClassVar[type[MultipleObjectsReturned]]

    if not TYPE_CHECKING:
        # Hidden from type checkers: the metaclass pops `Meta` from every class body, so no
        # model has a `Meta` attribute to override, and pyright would otherwise report each
        # model's `class Meta` as an incompatible override (reportIncompatibleVariableOverride).
        class Meta:  # noqa: D106 - the base of every model declares no keys
            abstract = True

    @model_validator(mode="before")
    @classmethod
    def _ignore_untrusted_version(cls, data: Any, info: ValidationInfo) -> Any:
        # `version` comes only from the table: taken from user input (mass assignment), it
        # would turn the create of a new object into a conditional overwrite of a stored one.
        if isinstance(data, dict) and "version" in data and info.field_name is None:
            context = info.context
            if not (isinstance(context, dict) and context.get(_TRUSTED)):
                data = {k: v for k, v in data.items() if k != "version"}
        return data

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Self:
        """Build an instance from a DynamoDB item (attribute-value JSON) as stored."""
        if cls._meta.abstract:
            raise _abstract(cls, "load items as")
        assert cls._meta.codec is not None
        obj = cls.model_validate(cls._meta.codec.decode(item), context=_TRUSTED_CONTEXT)
        pk, sk = item.get("pk"), item.get("sk")
        if pk is not None and sk is not None:
            obj._loaded_key = (pk["S"], sk["S"])
        token = _persistence.stored_token(item)
        if token is not None:
            obj._writes = _persistence.WriteState(token)
        return obj

    # ------------------------------------------------------------------ writes

    def save(self, *, update_fields: Iterable[str] | None = None) -> None:
        """Save the object: create it, or update it if the stored version is the loaded one.

        Args:
            update_fields: Update only these fields (plus version, timestamps and index keys)
                with an UpdateItem instead of replacing the whole item.

        DynamoDB: PutItem (create: `attribute_not_exists(pk)`; update: `version = loaded`),
        or UpdateItem with `update_fields`; a changed key field moves the item atomically with
        one TransactWriteItems (delete the old key, put the new one).

        Retrying a save that raised `ServiceError(maybe_applied=True)` is safe: if the
        earlier attempt was stored, the retry reports success without writing it twice
        (changes made to the object since are then saved on top of it).

        Raises:
            VersionConflictError: The stored version is not the one this object was loaded at.
            ItemExistsError: Creating, and an item with the same key already exists (a
                `ConditionFailedError`).
            WriteOutcomeUnknownError: An earlier attempt may have been applied and the stored
                item now holds another writer's change; reload and check.
        """
        fields = None if update_fields is None else tuple(update_fields)
        _persistence.write(self, ("save", fields), lambda: self._save_op(fields))

    def delete(self) -> None:
        """Delete the item, conditional on the stored version being the loaded one.

        DynamoDB: DeleteItem with `version = loaded`.

        An item that is already gone counts as deleted (e.g. the retry of a delete whose
        response was lost).

        Raises:
            VersionConflictError: The item changed since it was loaded.
            WriteOutcomeUnknownError: An earlier attempt may have been applied and the stored
                item now holds another writer's change; reload and check.
        """
        _persistence.write(self, ("delete",), self._delete_op)

    def refresh_from_db(self) -> None:
        """Reload every field from the table (a strongly consistent read).

        DynamoDB: GetItem, ConsistentRead. It also forgets this object's writes of unknown
        outcome (after `WriteOutcomeUnknownError`, reload and decide).

        Raises:
            DoesNotExist: The item no longer exists.
        """
        _persistence.refresh(self)

    def update(self, /, **values: Any) -> None:
        """Apply an atomic UpdateItem (values or `F` expressions) and refresh the instance.

        `o.update(total=F("total") + 5, tags=F("tags").add({"gift"}))` bumps the version,
        is conditional on the loaded version, and loads the item as stored afterwards.

        Inside a `transaction()` the instance is re-read (consistently) after the commit
        when `F` expressions were used, so it holds the stored item there too. Calling the
        same `update(...)` again after `ServiceError(maybe_applied=True)` is a retry: it is
        applied once (an `F("n") + 1` is never added twice).

        DynamoDB: UpdateItem, ReturnValues=ALL_NEW.

        Raises:
            VersionConflictError: The item changed since it was loaded.
            ItemTooLargeError: The resulting item, computed from this object's values, would
                be over 400 KB.
            WriteOutcomeUnknownError: An earlier attempt may have been applied and the stored
                item now holds another writer's change; reload and check.
        """
        call = ("update", _persistence.call_values(values))
        _persistence.write(self, call, lambda: self._update_op(values))

    # ------------------------------------------------------------------ hooks

    def _save_op(self, update_fields: Iterable[str] | None) -> _persistence.WriteOp:
        return _persistence.save_op(self, update_fields)

    def _delete_op(self) -> _persistence.WriteOp:
        return _persistence.delete_op(self)

    def _update_op(self, values: dict[str, Any]) -> _persistence.WriteOp:
        return _persistence.update_instance_op(self, values)

    # ------------------------------------------------------------------ introspection

    @classmethod
    def parse_key(cls, pk: str, sk: str) -> dict[str, Any]:
        """Read the key-field values back from a stored `pk` and `sk`.

        Raises:
            InvalidValueError: The key was not written for this model.
        """
        meta = cls._meta
        fields = cls.model_fields
        found = meta.parse_key(pk, sk, lambda f, t: value_from_text(fields[f].annotation, t))
        if found is None:
            raise InvalidValueError(
                f"Cannot parse the key as a key of {meta.model_name}: it does not match the "
                f"templates {meta.pk.source!r} / {meta.sk.source!r}.",  # type: ignore[union-attr]
                model=meta.model_name,
            )
        return found

    @property
    def dynamo_key(self) -> dict[str, str]:
        """The item's primary key as stored (`{"pk": ..., "sk": ...}`), computed from fields."""
        pk, sk = self._meta.primary_key(self.__dict__)
        return {"pk": pk, "sk": sk}


# Loads are trusted: the wire schema (fast read path) leaves this validator out.
trust_before_validator(Model._ignore_untrusted_version.__func__)
