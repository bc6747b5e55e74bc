"""Model options parsed from `class Meta`: key templates, indexes and their slots."""

from __future__ import annotations

import difflib
import enum
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._codec import ModelCodec, ValueProblem, format_datetime
from ._constants import PARTITION_KEY_LIMIT, SORT_KEY_LIMIT, gsi_name, gsi_pk, gsi_sk
from .exceptions import ConfigurationError, InvalidValueError, QueryError

if TYPE_CHECKING:
    from .fields import FieldKind


@dataclass(frozen=True)
class Index:
    """A global secondary index of a model, declared in `Meta.indexes`.

    Args:
        name: The name queries use: `Order.objects.using_gsi("by_status")`.
        pk: The partition-key template, e.g. `"STATUS#{status}"`.
        sk: The sort-key template; defaults to the model's entity type name.
        slot: Pin the physical index (`gsi{slot}`); by default slots are assigned in
            declaration order, lowest free first.
    """

    name: str
    pk: str
    sk: str | None = None
    slot: int | None = None


_FIXED_INT = re.compile(r"^0(\d+)d$")


def render_key_value(value: Any, spec: str = "", *, strict: bool = True) -> str:
    """Render one field value inside a key template.

    With a zero-padded integer spec (`{seq:010d}`), a value that does not fit the width (or
    is negative) would break "text order is value order"; `strict` refuses it.
    """
    if isinstance(value, enum.Enum):
        value = value.value
    if spec:
        text = format(value, spec)
        match = _FIXED_INT.match(spec)
        if strict and match and (len(text) != int(match.group(1)) or text.startswith("-")):
            raise ValueProblem(
                f"does not fit the fixed-width key format {spec!r} (negative, or too many "
                "digits), so keys would sort out of order; widen the format"
            )
        return text
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (bytes, bytearray)):
        raise ValueProblem("is binary, which key templates cannot hold")
    return str(value)


class KeyTemplate:
    """A compiled key template such as `"ORDER#{created_at}#{id}"`."""

    def __init__(self, source: str, model: str, known_fields: Iterable[str], role: str) -> None:
        self.source = source
        self.parts: list[tuple[str, str | None, str]] = []
        known = set(known_fields)
        try:
            parsed = list(string.Formatter().parse(source))
        except ValueError as exc:
            raise ConfigurationError(
                f"Cannot parse the {role} template {source!r} of {model}: {exc}.",
                code="key-template",
            ) from None
        for literal, field_name, spec, conversion in parsed:
            if field_name is not None:
                if field_name == "" or conversion:
                    raise ConfigurationError(
                        f"Cannot use an empty field or a !conversion in the {role} template "
                        f"{source!r} of {model}; name a field, e.g. '{{id}}'.",
                        code="key-template",
                    )
                if field_name not in known:
                    hint = _suggest(field_name, known)
                    raise ConfigurationError(
                        f"Cannot compile the {role} template {source!r} of {model}: it names "
                        f"the unknown field {field_name!r}.{hint}",
                        code="key-template",
                    )
            self.parts.append((literal, field_name, spec or ""))
        self.fields: tuple[str, ...] = tuple(f for _, f, _ in self.parts if f is not None)
        first = self.parts[0] if self.parts else ("", None, "")
        #: The literal text before the first field: every key of this template starts with it.
        self.prefix: str = first[0]

    def render(self, values: Mapping[str, Any]) -> str | None:
        """Render the key from field values; None when any field is None (sparse index)."""
        out: list[str] = []
        for literal, name, spec in self.parts:
            out.append(literal)
            if name is not None:
                value = values[name]
                if value is None:
                    return None
                out.append(render_key_value(value, spec))
        return "".join(out)

    def __repr__(self) -> str:
        return f"KeyTemplate({self.source!r})"


def _suggest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" Perhaps you meant {close[0]!r}?" if close else ""


@dataclass(frozen=True)
class BoundIndex:
    """An index with its slot assigned and its templates compiled."""

    name: str
    slot: int
    pk: KeyTemplate
    sk: KeyTemplate

    @property
    def physical_name(self) -> str:
        """The DynamoDB GSI name (`gsi{slot}`)."""
        return gsi_name(self.slot)

    @property
    def pk_attr(self) -> str:
        """The partition-key attribute of this index's slot."""
        return gsi_pk(self.slot)

    @property
    def sk_attr(self) -> str:
        """The sort-key attribute of this index's slot."""
        return gsi_sk(self.slot)


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
    extra: dict[str, Any] = field(default_factory=dict)

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

    def primary_key(self, values: Mapping[str, Any]) -> tuple[str, str]:
        """Return (pk, sk) for field values; raises when a key field is None or empty."""
        assert self.pk is not None and self.sk is not None
        pk = self.key_value(self.pk, values, "partition key")
        sk = self.key_value(self.sk, values, "sort key")
        if pk is None or sk is None:
            missing = [f for f in self.key_fields if values.get(f) is None]
            raise InvalidValueError(
                f"Cannot build the primary key of {self.model_name}: "
                f"{', '.join(sorted(missing))} must not be None.",
                model=self.model_name,
            )
        return pk, sk

    def index_keys(self, values: Mapping[str, Any]) -> dict[str, str | None]:
        """Return each index slot's key attributes (None where the index is sparse)."""
        out: dict[str, str | None] = {}
        for index in self.indexes.values():
            role = f"index {index.name!r}"
            pk = self.key_value(index.pk, values, f"{role} partition key")
            sk = self.key_value(index.sk, values, f"{role} sort key")
            if pk is None or sk is None:
                out[index.pk_attr] = out[index.sk_attr] = None
            else:
                out[index.pk_attr], out[index.sk_attr] = pk, sk
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
