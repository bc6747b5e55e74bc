"""Models: the metaclass that compiles `Meta`, and `Model` with its write methods."""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_validator,
)
from typing_extensions import Self, dataclass_transform

from . import _registry, signals
from ._async import run
from ._audit import entry_model
from ._blob_pointer import BlobPointer, BlobValue
from ._blobs import blob_fields, blob_url, load_blobs, read_blob, saving
from ._config import binding
from ._exactly_once import WriteState, bind, stored_token
from ._executor import refresh, write
from ._instance_writes import call_values, delete_op, save_op, update_instance_op
from ._keys import value_from_text
from ._migrations import Migration, no_schema_version
from ._model_definition import (
    META_KEYS,
    abstract_error,
    build_options,
    check_namespace,
    check_reserved,
    reserved_names,
)
from ._options import Options
from ._page_schema import trust_before_validator
from ._pydantic_internals import ModelMetaclass, fast_private_reads, init_private_attributes
from ._write_op import WriteOp
from .exceptions import (
    ConfigurationError,
    InvalidValueError,
    MultipleObjectsReturned,
    ObjectDoesNotExist,
)
from .fields import Blob, BlobSpec, Compressed, DynormField, FieldKind, declared_names
from .query._read_only import read_only_error
from .query.queryset import Manager

if TYPE_CHECKING:
    from .audit import AuditEntry, AuditQuerySet

__all__ = ["Model", "ModelMeta", "reserved_names"]

_TRUSTED = "dynorm_trusted"
_TRUSTED_CONTEXT = {_TRUSTED: True}


class _AbstractManager(Manager):
    """`objects` of an abstract model: refuses every use; keeps the QuerySet class to inherit."""

    def __get__(self, instance: object, owner: type[Any]) -> Any:
        raise abstract_error(owner, "query")


class _BlobAttribute:
    """The class attribute of a blob field: loads an unloaded blob on first access.

    A data descriptor, so it is asked before the instance's `__dict__` (where pydantic keeps
    the value: the user's value, or a `BlobValue` for a stored blob). Assignment stays
    pydantic's (validated); reading it on the class raises AttributeError as for any field.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type[Any] | None = None) -> Any:
        if instance is None:
            raise AttributeError(self.name)
        value = instance.__dict__[self.name]
        if isinstance(value, BlobValue):
            return value.value if value.loaded else read_blob(instance, self.name, value)
        return value

    def __set__(self, instance: Any, value: Any) -> None:  # pragma: no cover - pydantic sets
        BaseModel.__setattr__(instance, self.name, value)


def _blob_hooks(name: str) -> tuple[Any, Any]:
    """A blob field's validator (a BlobValue passes on loads only) and serializer (loads)."""

    def validate(
        cls: type[Any], value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        if isinstance(value, BlobValue):
            context = info.context
            if isinstance(context, dict) and context.get(_TRUSTED):
                return value
        return handler(value)

    def serialize(
        self: Any, value: Any, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> Any:
        if isinstance(value, BlobValue):
            value = getattr(self, name)  # loads it, or raises BlobNotLoadedError
        return handler(value)

    return (
        field_validator(name, mode="wrap")(validate),
        field_serializer(name, mode="wrap")(serialize),
    )


def _resolve_blobs(instance: Any) -> None:
    """Load the unloaded blobs a dump is about to read (or raise BlobNotLoadedError)."""
    names = blob_fields(instance._meta)
    if names:
        for name in names:
            value = instance.__dict__.get(name)
            if isinstance(value, BlobValue) and not value.loaded:
                read_blob(instance, name, value)


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
@dataclass_transform(
    kw_only_default=True, field_specifiers=(Field, PrivateAttr, Compressed, Blob)
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
        unknown = set(own_raw) - META_KEYS
        if unknown:
            raise ConfigurationError(
                f"Cannot use Meta option(s) {', '.join(sorted(unknown))} on {cls_name}; "
                f"known options are {', '.join(sorted(META_KEYS))}.",
                code="model-definition",
            )
        check_namespace(cls_name, bases, namespace)
        manager = namespace.pop("objects", None)
        if manager is not None and not isinstance(manager, Manager):
            raise ConfigurationError(
                f"Cannot use {type(manager).__name__} as {cls_name}.objects: it must be a "
                "dynorm Manager (e.g. `objects = MyQuerySet.as_manager()`); a field cannot "
                "be named objects.",
                code="model-definition",
            )
        kinds: dict[str, FieldKind] = {}
        blobs: dict[str, BlobSpec] = {}
        attributes = declared_names(namespace)  # stored names, datetime formats
        for key, value in list(namespace.items()):
            if isinstance(value, DynormField):
                if value.kind is not None:
                    kinds[key] = value.kind
                namespace[key] = value.to_field_info()
                if value.blob is not None:
                    blobs[key] = value.blob
                    check, dump = _blob_hooks(key)
                    namespace[f"dynorm_blob_check_{key}"] = check
                    namespace[f"dynorm_blob_dump_{key}"] = dump
        cls = super().__new__(mcs, cls_name, bases, namespace, **kwargs)
        post_init = cls.__dict__.get("model_post_init")
        if getattr(post_init, "__wrapped__", None) is init_private_attributes:
            # pydantic wraps the parent's private-attribute setup in the child's and runs it
            # twice per instance; once is enough (a user-defined model_post_init is kept).
            type.__setattr__(cls, "model_post_init", init_private_attributes)
        check_reserved(cls)
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
        raw.update({key: {**raw.get(key, {}), **names} for key, names in attributes.items()})
        meta = build_options(cls, raw, kinds)
        if parent_meta is not None and meta.migrations is not None:
            meta.migrations.parent = parent_meta.migrations  # a concrete parent's functions
        if parent_meta is not None:
            blobs = {**parent_meta.extra.get("blobs", {}), **blobs}
        if blobs:
            meta.extra["blobs"] = blobs
            for key in blobs:
                type.__setattr__(cls, key, _BlobAttribute(key))
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
                raise abstract_error(cls, "query")
            return super().__getattr__(name)


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
    # item's write token and the writes of unknown outcome (see dynorm._exactly_once).
    _writes: WriteState | None = PrivateAttr(default=None)
    # The blob pointers of the stored item (fields.Blob()), by field; None without blobs.
    _blobs: dict[str, BlobPointer] | None = PrivateAttr(default=None)
    # Read through objects.read_only() (or a read-only Repository): its writes raise.
    _read_only: bool = PrivateAttr(default=False)
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
            raise abstract_error(cls, "load items as")
        assert cls._meta.codec is not None
        obj = cls.model_validate(cls._meta.codec.decode(item), context=_TRUSTED_CONTEXT)
        layout = cls._meta.layout
        if layout.has_key(item):
            obj._loaded_key = layout.key_of(item)
            if layout.version is None:  # no version stored: a loaded object counts as saved
                vars(obj)["version"] = 1
        token = stored_token(item, layout)
        if token is not None:
            obj._writes = WriteState(token)
        bind(obj, binding(cls, None))  # read in a using() block: it belongs to that table
        if obj._loaded_key is not None and blob_fields(cls._meta):
            pointers: dict[str, BlobPointer] = {}
            for name in blob_fields(cls._meta):
                value = obj.__dict__.get(name)
                if isinstance(value, BlobValue):
                    value.owner = obj._loaded_key  # usable for this item only
                    pointers[name] = value.pointer
            obj._blobs = pointers or None
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

        Signals: `pre_save` before anything is sent (a receiver that raises stops the save),
        `post_save` (with `created`) once it succeeded, inside a `transaction()` once the
        transaction was committed.

        Raises:
            VersionConflictError: The stored version is not the one this object was loaded at.
            ItemExistsError: Creating, and an item with the same key already exists (a
                `ConditionFailedError`).
            WriteOutcomeUnknownError: An earlier attempt may have been applied and the stored
                item now holds another writer's change; reload and check.
        """
        fields = None if update_fields is None else tuple(update_fields)
        self._writable("save")
        sender = type(self)
        created = self.version == 0
        signals.pre_save.send(sender, instance=self, update_fields=fields)
        self._save_unsignalled(fields)
        signals.send_after_write(
            signals.post_save, sender, instance=self, created=created, update_fields=fields
        )

    def delete(self) -> None:
        """Delete the item, conditional on the stored version being the loaded one.

        DynamoDB: DeleteItem with `version = loaded`.

        An item that is already gone counts as deleted (e.g. the retry of a delete whose
        response was lost). Signals: `pre_delete`, then `post_delete` once it succeeded.

        Raises:
            VersionConflictError: The item changed since it was loaded.
            WriteOutcomeUnknownError: An earlier attempt may have been applied and the stored
                item now holds another writer's change; reload and check.
        """
        self._writable("delete")
        signals.pre_delete.send(type(self), instance=self)
        self._delete_unsignalled()
        signals.send_after_write(signals.post_delete, type(self), instance=self)

    def refresh_from_db(self) -> None:
        """Reload every field from the table (a strongly consistent read).

        DynamoDB: GetItem, ConsistentRead. It also forgets this object's writes of unknown
        outcome (after `WriteOutcomeUnknownError`, reload and decide).

        Raises:
            DoesNotExist: The item no longer exists.
        """
        refresh(self)

    def update(self, /, **values: Any) -> None:
        """Apply an atomic UpdateItem (values or `F` expressions) and refresh the instance.

        `o.update(total=F("total") + 5, tags=F("tags").add({"gift"}))` bumps the version,
        is conditional on the loaded version, and loads the item as stored afterwards.

        Inside a `transaction()` the instance is re-read (consistently) after the commit
        when `F` expressions were used, so it holds the stored item there too. Calling the
        same `update(...)` again after `ServiceError(maybe_applied=True)` is a retry: it is
        applied once (an `F("n") + 1` is never added twice).

        DynamoDB: UpdateItem, ReturnValues=ALL_NEW. Signals: `post_update` (with `values`)
        once it succeeded.

        Raises:
            VersionConflictError: The item changed since it was loaded.
            ItemTooLargeError: The resulting item, computed from this object's values, would
                be over 400 KB.
            WriteOutcomeUnknownError: An earlier attempt may have been applied and the stored
                item now holds another writer's change; reload and check.
        """
        self._writable("update")
        self._update_unsignalled(values)
        signals.send_after_write(signals.post_update, type(self), instance=self, values=values)

    # ------------------------------------------------------------------ the bare writes
    # What save(), delete() and update() send, without their signals: the async API runs
    # these in a worker thread between `await signal.asend(...)` calls.

    def _save_unsignalled(self, update_fields: tuple[str, ...] | None) -> None:
        self._writable("save")
        with saving(self):  # blobs: uploaded before the write, cleaned up after it
            write(self, ("save", update_fields), lambda: self._save_op(update_fields))

    def _delete_unsignalled(self) -> None:
        self._writable("delete")
        write(self, ("delete",), self._delete_op)

    def _update_unsignalled(self, values: dict[str, Any]) -> None:
        self._writable("update")
        call = ("update", call_values(values))
        write(self, call, lambda: self._update_op(values))

    # ------------------------------------------------------------------ async (Django's names)

    async def asave(self, *, update_fields: Iterable[str] | None = None) -> None:
        """`save()`, awaited: the same request, sent from a dynorm worker thread.

        Signals are sent on the event loop with `asend()`: async receivers are awaited.
        """
        fields = None if update_fields is None else tuple(update_fields)
        self._writable("save")
        sender = type(self)
        created = self.version == 0
        await signals.pre_save.asend(sender, instance=self, update_fields=fields)
        await run(self._save_unsignalled, fields)
        await signals.asend_after_write(
            signals.post_save, sender, instance=self, created=created, update_fields=fields
        )

    async def adelete(self) -> None:
        """`delete()`, awaited (signals with `asend()`)."""
        self._writable("delete")
        await signals.pre_delete.asend(type(self), instance=self)
        await run(self._delete_unsignalled)
        await signals.asend_after_write(signals.post_delete, type(self), instance=self)

    async def aupdate(self, /, **values: Any) -> None:
        """`update()`, awaited: the object holds the stored item afterwards."""
        self._writable("update")
        await run(self._update_unsignalled, values)
        await signals.asend_after_write(
            signals.post_update, type(self), instance=self, values=values
        )

    async def arefresh_from_db(self) -> None:
        """`refresh_from_db()`, awaited."""
        await run(self.refresh_from_db)

    # ------------------------------------------------------------------ blobs

    if not TYPE_CHECKING:  # the signatures stay pydantic's for type checkers

        def model_dump(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            """Pydantic's `model_dump`, loading unloaded blobs first (or raising)."""
            _resolve_blobs(self)
            return super().model_dump(*args, **kwargs)

        def model_dump_json(self, *args: Any, **kwargs: Any) -> str:
            """Pydantic's `model_dump_json`, loading unloaded blobs first (or raising)."""
            _resolve_blobs(self)
            return super().model_dump_json(*args, **kwargs)

    def blob_url(self, field: str, expires: int = 3600) -> str:
        """A presigned GET URL of a stored blob field's S3 object, valid `expires` seconds.

        Raises:
            BlobNotLoadedError: The field's value is not stored yet (save() first).
            BlobIntegrityError: The stored pointer does not belong to this item.
        """
        return blob_url(self, field, expires)

    def load_blobs(self, *fields: str) -> None:
        """Load the object's unloaded blob fields (those named, or all) concurrently.

        Raises:
            BlobIntegrityError: An object is missing, corrupted or not this item's.
        """
        load_blobs([self], fields or None)

    def audit_log(self) -> AuditQuerySet:
        """This object's audit entries (`Meta.audit`), newest first: one Query.

        Each entry has `action`, `actor`, `at`, `object_version` and `changes`
        (`{field: [old, new]}`); see `dynorm.AuditEntry`.
        """
        entries = cast("type[AuditEntry]", entry_model())
        return entries.objects.for_object(self)

    # ------------------------------------------------------------------ hooks

    def _writable(self, action: str) -> None:
        if self._read_only:
            raise read_only_error(self._meta.model_name, action)

    def _save_op(self, update_fields: Iterable[str] | None) -> WriteOp:
        return save_op(self, update_fields)

    def _delete_op(self) -> WriteOp:
        return delete_op(self)

    def _update_op(self, values: dict[str, Any]) -> WriteOp:
        return update_instance_op(self, values)

    # ------------------------------------------------------------------ schema versions

    @classmethod
    def migration(cls, *, from_version: int) -> Callable[[Migration], Migration]:
        """Register an upgrade function from `from_version` to the next schema version.

        ```python
        @Customer.migration(from_version=1)
        def split_name(data: dict) -> dict:
            data["first"], _, data["last"] = data.pop("name").partition(" ")
            return data
        ```

        The function gets the stored item's data (plain values by field name: `str`,
        `int`/`Decimal`, `bool`, lists, dicts, sets; no key, version or dynorm attribute)
        and returns it in the next version's shape. Reads run the chain from the stored
        version up to `Meta.schema_version`; the model validates the result.

        Raises:
            ConfigurationError: The model has no `Meta.schema_version`, or `from_version`
                is not below it, or it already has a migration from that version.
        """
        migrations = cls._meta.migrations
        if migrations is None:
            raise no_schema_version(cls.__name__, cls._meta.abstract)

        def register(function: Migration) -> Migration:
            migrations.add(from_version, function)
            return function

        return register

    # ------------------------------------------------------------------ introspection

    @classmethod
    def parse_key(cls, pk: str, sk: str) -> dict[str, Any]:
        """Read the key-field values back from a stored `pk` and `sk`.

        Raises:
            InvalidValueError: The key was not written for this model.
        """
        meta = cls._meta
        formats, fields = meta.datetime_formats, cls.model_fields
        found = meta.parse_key(
            pk, sk, lambda f, t: value_from_text(fields[f].annotation, t, formats.get(f))
        )
        if found is None:
            assert meta.pk is not None and meta.sk is not None  # meta.parse_key checked them
            raise InvalidValueError(
                f"Cannot parse the key as a key of {meta.model_name}: it does not match the "
                f"templates {meta.pk.source!r} / {meta.sk.source!r}.",
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
fast_private_reads(Model)
