"""Models: the metaclass that compiles `Meta`, and `Model` with its write methods."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationInfo, model_validator
from pydantic._internal._model_construction import ModelMetaclass, init_private_attributes
from typing_extensions import Self

from . import _persistence, _registry, _wire
from ._codec import ModelCodec, compile_field, unwrap_optional
from ._constants import TTL_ATTR
from ._keys import KeyTemplate, value_from_text
from ._options import BoundIndex, Options, assign_slots
from .exceptions import (
    ConfigurationError,
    InvalidValueError,
    MultipleObjectsReturned,
    ObjectDoesNotExist,
)
from .fields import DynormField, FieldKind
from .query.queryset import Manager

__all__ = ["Model", "ModelMeta"]

_TRUSTED = "dynorm_trusted"
_TRUSTED_CONTEXT = {_TRUSTED: True}
_RESERVED_FIELD = re.compile(r"^(pk|sk|gsi\d+pk|gsi\d+sk)$")
_META_KEYS = frozenset({"abstract", "type_name", "pk", "sk", "indexes", "max_versions", "compress"})


def _subclass_exception(
    name: str, parents: tuple[type[Exception], ...], owner: type
) -> type[Exception]:
    return type(
        name,
        parents,
        {"__module__": owner.__module__, "__qualname__": f"{owner.__qualname__}.{name}"},
    )


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
        manager = namespace.pop("objects", None)
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
        parent_meta = next(
            (b.__dict__["_meta"] for b in cls.__mro__[1:] if "_meta" in b.__dict__), None
        )
        raw: dict[str, Any] = {}
        if parent_meta is not None:
            raw.update(parent_meta.extra["raw"])
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
        type.__setattr__(cls, "objects", manager)
        if not meta.abstract:
            _registry.register(typing.cast("type[Model]", cls))
        return cls


def _build_options(
    cls: type[BaseModel], raw: dict[str, Any], kinds: dict[str, FieldKind]
) -> Options:
    name = cls.__name__
    fields = cls.model_fields
    for field_name, info in fields.items():
        if info.alias or info.validation_alias or info.serialization_alias:
            raise ConfigurationError(
                f"Cannot use an alias on {name}.{field_name}: dynorm stores every field under "
                "its own name. Rename the field instead (or convert at your API boundary).",
                code="model-definition",
            )
        if _RESERVED_FIELD.match(field_name):
            raise ConfigurationError(
                f"Cannot name a field {field_name!r} on {name}: dynorm stores its keys under "
                "that attribute name; rename the field.",
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
    abstract = bool(raw.get("abstract", False))
    type_name = str(raw.get("type_name") or name)
    meta = Options(
        model_name=name,
        type_name=type_name,
        abstract=abstract,
        field_names=tuple(fields),
        field_kinds=dict(kinds),
        attr_names=attr_names,
        ttl_field=ttl_fields[0] if ttl_fields else None,
        extra={"raw": raw, "annotations": {f: i.annotation for f, i in fields.items()}},
    )
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
    if TYPE_CHECKING:
        objects: ClassVar[Manager]
        DoesNotExist: ClassVar[type[ObjectDoesNotExist]]
        MultipleObjectsReturned: ClassVar[type[MultipleObjectsReturned]]

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
        assert cls._meta.codec is not None
        obj = cls.model_validate(cls._meta.codec.decode(item), context=_TRUSTED_CONTEXT)
        pk, sk = item.get("pk"), item.get("sk")
        if pk is not None and sk is not None:
            obj._loaded_key = (pk["S"], sk["S"])
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

        Raises:
            VersionConflictError: The stored version is not the one this object was loaded at.
            ConditionFailedError: Creating, and an item with the same key already exists.
        """
        _persistence.execute(self._save_op(update_fields))

    def delete(self) -> None:
        """Delete the item, conditional on the stored version being the loaded one.

        DynamoDB: DeleteItem with `version = loaded`.

        Raises:
            VersionConflictError: The item changed (or was deleted) since it was loaded.
        """
        _persistence.execute(self._delete_op())

    def refresh_from_db(self) -> None:
        """Reload every field from the table (a strongly consistent read).

        DynamoDB: GetItem, ConsistentRead.

        Raises:
            DoesNotExist: The item no longer exists.
        """
        _persistence.refresh(self)

    def update(self, /, **values: Any) -> None:
        """Apply an atomic UpdateItem (values or `F` expressions) and refresh the instance.

        `o.update(total=F("total") + 5, tags=F("tags").add({"gift"}))` bumps the version,
        is conditional on the loaded version, and loads the item as stored afterwards.

        DynamoDB: UpdateItem, ReturnValues=ALL_NEW.

        Raises:
            VersionConflictError: The item changed since it was loaded.
        """
        _persistence.execute(self._update_op(values))

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
_wire.trust_before_validator(Model._ignore_untrusted_version.__func__)
