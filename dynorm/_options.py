"""Model options parsed from `class Meta`: key templates, indexes and their slots."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._codec import ModelCodec, ValueProblem
from ._constants import PARTITION_KEY_LIMIT, SORT_KEY_LIMIT, gsi_name, gsi_pk, gsi_sk
from ._datetime_format import DateTimeFormat
from ._keys import KeyTemplate, suggest as _suggest
from ._layout import DEFAULT, Key, Layout
from ._migrations import Migrations
from .exceptions import ConfigurationError, InvalidValueError, QueryError

if TYPE_CHECKING:
    from .fields import FieldKind


Projection = Any  # "ALL", "KEYS_ONLY" or a tuple of attribute names


@dataclass(frozen=True, init=False)
class Index:
    """A secondary index of a model, declared in `Meta.indexes`.

    Args:
        alias: The name queries use: `Order.objects.using_gsi("by_status")`.
        pk: The partition-key template, e.g. `"STATUS#{status}"`.
        sk: The sort-key template; defaults to the model's entity type name.
        slot: Pin the physical index (`gsi{slot}`); by default slots are assigned in
            declaration order, lowest free first.
        name: The physical name of an existing index (default: `gsi{slot}`). Given with no
            alias, it is the name queries use (the older spelling `Index(name=..., pk=...)`).
        pk_attribute: The index's partition-key attribute (default `gsi{slot}pk`).
        sk_attribute: The index's sort-key attribute (default `gsi{slot}sk`).
        projection: `"ALL"` (default), `"KEYS_ONLY"` or a list of the attribute names the
            index projects; a query needing an attribute it lacks raises `QueryError`.
        local: A local secondary index: it shares the table's partition key.
    """

    name: str
    pk: str
    sk: str | None
    slot: int | None
    physical: str | None
    pk_attribute: str | None
    sk_attribute: str | None
    projection: Projection
    local: bool

    def __init__(
        self,
        alias: str | None = None,
        pk: str | None = None,
        sk: str | None = None,
        slot: int | None = None,
        *,
        name: str | None = None,
        pk_attribute: str | None = None,
        sk_attribute: str | None = None,
        projection: str | Sequence[str] = "ALL",
        local: bool = False,
    ) -> None:
        if alias is None:
            alias, name = name, None
        if alias is None or pk is None:
            raise TypeError("Index() needs a name and pk, e.g. Index('by_x', pk='X#{x}')")
        if not isinstance(projection, str):
            projection = tuple(projection)
        for key, value in (
            ("name", alias),
            ("pk", pk),
            ("sk", sk),
            ("slot", slot),
            ("physical", name),
            ("pk_attribute", pk_attribute),
            ("sk_attribute", sk_attribute),
            ("projection", projection),
            ("local", local),
        ):
            object.__setattr__(self, key, value)


@dataclass(frozen=True)
class BoundIndex:
    """An index with its slot assigned and its templates compiled."""

    name: str
    slot: int
    pk: KeyTemplate
    sk: KeyTemplate
    #: The DynamoDB index name (`gsi{slot}` unless `Index(name=...)`).
    physical_name: str = ""
    #: The index's key attributes (`gsi{slot}pk/sk` unless declared).
    pk_attr: str = ""
    sk_attr: str = ""
    #: "ALL", "KEYS_ONLY" or the projected attribute names.
    projection: Projection = "ALL"
    local: bool = False
    #: Whether the index declares its physical names (an existing index).
    custom: bool = False
    #: Key attributes this index writes itself (not a table key or a field's own attribute).
    writes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.physical_name:
            object.__setattr__(self, "physical_name", gsi_name(self.slot))
        if not self.pk_attr:
            object.__setattr__(self, "pk_attr", gsi_pk(self.slot))
        if not self.sk_attr:
            object.__setattr__(self, "sk_attr", gsi_sk(self.slot))
        if not self.writes and not self.custom:
            object.__setattr__(self, "writes", (self.pk_attr, self.sk_attr))


def assign_slots(indexes: Sequence[Index], model: str) -> list[tuple[Index, int]]:
    """Assign GSI slots: pinned ones first, the rest lowest free in declaration order."""
    names: set[str] = set()
    taken: dict[int, str] = {}
    for index in indexes:
        if not isinstance(index, Index):
            raise ConfigurationError(
                f"Cannot use {type(index).__name__} in {model}.Meta.indexes; "
                "list dynorm.Index(...) objects.",
                code="index",
            )
        if index.name in names:
            raise ConfigurationError(
                f"Cannot declare two indexes named {index.name!r} on {model}; rename one.",
                code="index",
            )
        names.add(index.name)
        if index.slot is not None:
            if index.slot < 1:
                raise ConfigurationError(
                    f"Cannot pin index {index.name!r} of {model} to slot {index.slot}; "
                    "slots start at 1.",
                    code="index",
                )
            if index.slot in taken:
                raise ConfigurationError(
                    f"Cannot pin index {index.name!r} of {model} to slot {index.slot}: "
                    f"{taken[index.slot]!r} already uses it; pick another slot.",
                    code="index",
                )
            taken[index.slot] = index.name
    out: list[tuple[Index, int]] = []
    next_free = 1
    for index in indexes:
        if index.slot is not None:
            out.append((index, index.slot))
            continue
        while next_free in taken:
            next_free += 1
        taken[next_free] = index.name
        out.append((index, next_free))
    return out


@dataclass(frozen=True)
class UniqueConstraint:
    """One `Meta.unique` constraint: its fields and the template of its guard items' key.

    The guard of an object holding values `v` is the item under
    `(template.render(v), GUARD_SK)`; it names its owner's primary key.
    """

    fields: tuple[str, ...]
    template: KeyTemplate

    def describe(self) -> str:
        """The constraint as messages name it (`email`, `tenant, slug`)."""
        return ", ".join(self.fields)


@dataclass
class Options:
    """Everything dynorm knows about a model, built once at class creation (`Model._meta`)."""

    model_name: str
    type_name: str
    abstract: bool
    field_names: tuple[str, ...]
    field_kinds: dict[str, FieldKind]
    attr_names: dict[str, str]
    pk: KeyTemplate | None = None
    sk: KeyTemplate | None = None
    indexes: dict[str, BoundIndex] = field(default_factory=dict)
    codec: ModelCodec | None = None
    ttl_field: str | None = None
    key_fields: frozenset[str] = frozenset()
    #: `Meta.table`: the Table (or table name) this model lives in; None: the default.
    table: Any = None
    #: `Meta.ordering`: (sort-key field, descending) for queries with no `order_by()`.
    ordering: tuple[str, bool] | None = None
    #: `Meta.unique`: constraints on non-key fields, enforced by guard items.
    unique: tuple[UniqueConstraint, ...] = ()
    #: `Meta.counted`: a per-type count kept in sharded counter items with every write.
    counted: bool = False
    #: `Meta.audit`: every write also writes audit entries; `Meta.audit_exclude` fields
    #: never appear in them.
    audit: bool = False
    audit_exclude: tuple[str, ...] = ()
    #: `Meta.schema_version` and the upgrade functions (`@Model.migration`); None: no stamp.
    migrations: Migrations | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The physical names of the model's items (key, type and version attributes).
    layout: Layout = DEFAULT
    #: The storage formats of datetime fields that declare one (`fields.DateTime`).
    datetime_formats: dict[str, DateTimeFormat] = field(default_factory=dict)

    @property
    def schema_version(self) -> int | None:
        """`Meta.schema_version` (None when the model declares none)."""
        return None if self.migrations is None else self.migrations.current

    @property
    def has_companions(self) -> bool:
        """Whether the model's writes carry companion items (guards, counters, audit)."""
        return bool(self.unique) or self.counted or self.audit

    # ----------------------------------------------------------------- keys

    def key_value(self, template: KeyTemplate, values: Mapping[str, Any], role: str) -> str | None:
        """Render a key, checking emptiness and DynamoDB's byte limits; naming the fields."""
        try:
            text = template.render(values)
        except ValueProblem as exc:
            raise InvalidValueError(
                f"Cannot build the {role} of {self.model_name} from "
                f"{', '.join(template.fields)}: a value {exc.reason}.",
                model=self.model_name,
            ) from None
        if text is None:
            return None
        if text == "":
            raise InvalidValueError(
                f"Cannot build the {role} of {self.model_name}: it would be empty, which "
                f"DynamoDB refuses; give {', '.join(template.fields) or 'the key'} a value.",
                model=self.model_name,
            )
        limit = PARTITION_KEY_LIMIT if role.endswith("partition key") else SORT_KEY_LIMIT
        size = len(text.encode("utf-8"))
        if size > limit:
            raise InvalidValueError(
                f"Cannot build the {role} of {self.model_name}: it is {size} bytes, over "
                f"DynamoDB's {limit}-byte limit; shorten {', '.join(template.fields)}.",
                model=self.model_name,
            )
        return text

    def primary_key(self, values: Mapping[str, Any]) -> Key:
        """Return (pk, sk) for field values; raises when a key field is None or empty.

        The sort key of a table that has none is `""`.
        """
        assert self.pk is not None and self.sk is not None
        pk = self.key_value(self.pk, values, "partition key")
        sk = "" if self.layout.sk is None else self.key_value(self.sk, values, "sort key")
        if pk is None or sk is None:
            missing = [f for f in self.key_fields if values.get(f) is None]
            raise InvalidValueError(
                f"Cannot build the primary key of {self.model_name}: "
                f"{', '.join(sorted(missing))} must not be None.",
                model=self.model_name,
            )
        return pk, sk

    def parse_key(self, pk: str, sk: str, read: Callable[[str, str], Any]) -> dict[str, Any] | None:
        """Split a stored (pk, sk) into this model's key-field values; None if not its key.

        `read(field, text)` turns a field's key text back into a value of the field's type.
        """
        assert self.pk is not None and self.sk is not None
        texts = self.pk.parse(pk)
        sk_texts = {} if self.layout.sk is None else self.sk.parse(sk)
        if texts is None or sk_texts is None:
            return None
        for name, text in sk_texts.items():
            if texts.setdefault(name, text) != text:
                return None  # a field in both keys must read the same in both
        try:
            return {name: read(name, text) for name, text in texts.items()}
        except ValueError:
            return None

    def index_keys(self, values: Mapping[str, Any]) -> dict[str, str | None]:
        """Return the key attributes each index writes, as key text (`layout.av` types it).

        None where the index is sparse. An index key that is the table's key or a field's
        own attribute is not among them: that attribute is written once, by the table key
        or the field.
        """
        out: dict[str, str | None] = {}
        for index in self.indexes.values():
            if not index.writes:
                continue
            role = f"index {index.name!r}"
            pk = self.key_value(index.pk, values, f"{role} partition key")
            sk = self.key_value(index.sk, values, f"{role} sort key")
            for attr, text in ((index.pk_attr, pk), (index.sk_attr, sk)):
                if attr in index.writes:
                    sparse = pk is None or sk is None or text is None
                    out[attr] = None if sparse else text
        return out

    def check_field(self, name: str, action: str) -> None:
        """Raise QueryError (with a close-match hint) unless `name` is a field of the model."""
        if name not in self.field_names:
            raise QueryError(
                f"Cannot {action} {self.model_name}.{name!r}: no such field."
                f"{self.suggest_field(name)}",
                code="unknown-field",
            )

    def suggest_field(self, name: str) -> str:
        """Return ' Perhaps you meant ...?' for an unknown field name, or ''."""
        return _suggest(name, self.field_names)

    def suggest_index(self, name: str) -> str:
        """Return a hint naming the closest index (or the available ones)."""
        hint = _suggest(name, self.indexes)
        if hint:
            return hint
        if self.indexes:
            return f" Available indexes: {', '.join(sorted(self.indexes))}."
        return f" {self.model_name} declares no indexes (Meta.indexes)."
