"""A model's physical names: its table's key attributes, type and version attributes.

dynorm's own layout is `pk`, `sk`, `_type`, `version`, `_wtok` (the `DEFAULT` layout, the bytes
every existing table holds). A model mapped onto a table dynorm did not create declares other
names on its `dynorm.Table` (shared by every model in it) or in its `Meta` (per model); the
compilers, the decoders and the tooling read them from `Model._meta.layout`, never from the
constants.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._constants import PK, SK, TTL_ATTR, TYPE_ATTR, VERSION_ATTR, WRITE_TOKEN_ATTR

__all__ = ["DEFAULT", "LAYOUT_OPTIONS", "Key", "Layout"]

#: A stored primary key: (partition key, sort key) as text ("" for the sort key of a table
#: that has none). A number key (`N`) is its canonical decimal text.
Key = tuple[str, str]

#: The names a `Table` and a model's `Meta` may set (Meta overrides the table).
LAYOUT_OPTIONS = (
    "managed",
    "pk_attribute",
    "sk_attribute",
    "type_attribute",
    "version_attribute",
    "write_token_attribute",
)


@dataclass(frozen=True)
class Layout:
    """The physical names of one model's items (`Model._meta.layout`).

    Attributes:
        pk: The partition-key attribute.
        sk: The sort-key attribute; None for a table with a partition key only.
        type: The entity-type attribute; None: every item in the model's key range is it.
        version: The optimistic-locking attribute; None: saves are last-writer-wins.
        ttl: The time-to-live attribute.
        token: The attribute of dynorm's write token (`_wtok`); None: no token is stored,
            and a write whose response was lost is recognised by its content (`_proof`).
        managed: False for a table dynorm did not create: create/delete_table() refuse it.
        types: The DynamoDB type of each key attribute that is not a string (`"N"`).
    """

    pk: str = PK
    sk: str | None = SK
    type: str | None = TYPE_ATTR
    version: str | None = VERSION_ATTR
    ttl: str = TTL_ATTR
    token: str | None = WRITE_TOKEN_ATTR
    managed: bool = True
    types: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_default(self) -> bool:
        """Whether this is dynorm's own layout (the fast page decoder reads only that one)."""
        return self == DEFAULT

    def av(self, attr: str, text: str) -> dict[str, str]:
        """A key attribute's value as DynamoDB JSON (`{"S": text}` or `{"N": text}`)."""
        return {self.types.get(attr, "S"): text}

    def text(self, attr: str, item: Mapping[str, Any]) -> str:
        """A key attribute's text out of a stored item or key."""
        return str(item[attr][self.types.get(attr, "S")])

    def key_item(self, key: Key) -> dict[str, Any]:
        """A primary key as the `Key` of a request."""
        out: dict[str, Any] = {self.pk: self.av(self.pk, key[0])}
        if self.sk is not None:
            out[self.sk] = self.av(self.sk, key[1])
        return out

    def key_of(self, item: Mapping[str, Any]) -> Key:
        """The primary key of a stored item (or a request's `Key`)."""
        return self.text(self.pk, item), "" if self.sk is None else self.text(self.sk, item)

    def has_key(self, item: Mapping[str, Any] | None) -> bool:
        """Whether `item` holds this layout's whole primary key."""
        if not item:
            return False
        return self.pk in item and (self.sk is None or self.sk in item)

    @property
    def key_attrs(self) -> tuple[str, ...]:
        """The table's key attribute names."""
        return (self.pk,) if self.sk is None else (self.pk, self.sk)

    def type_of(self, item: Mapping[str, Any] | None) -> str | None:
        """The entity type an item names (None: none, or no type attribute in this layout)."""
        if not item or self.type is None:
            return None
        value = item.get(self.type, {})
        return value.get("S") if isinstance(value, Mapping) else None

    def is_type(self, item: Mapping[str, Any] | None, type_name: str) -> bool:
        """Whether a stored item is of `type_name` (any item is, with no type attribute)."""
        if item is None:
            return False
        if self.type is None:
            return True
        return self.type_of(item) == type_name


DEFAULT = Layout()
