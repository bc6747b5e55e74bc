"""`Q` (combinable filter conditions) and `F` (field references for atomic updates)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["F", "Q", "UpdateOp"]


class Q:
    """A filter condition that combines with `&`, `|` and `~`.

    `Q(status="paid") | Q(total__gt=500)` matches items where either holds; keyword lookups in
    one `Q` are AND-ed, like `filter()`'s.
    """

    AND: Literal["AND"] = "AND"
    OR: Literal["OR"] = "OR"
    __slots__ = ("children", "connector", "negated")

    def __init__(self, /, *args: Q, **lookups: Any) -> None:
        for arg in args:
            if not isinstance(arg, Q):
                raise TypeError(
                    f"Q() takes Q objects and keyword lookups, not {type(arg).__name__}."
                )
        self.children: list[Q | tuple[str, Any]] = [*args, *lookups.items()]
        self.connector: Literal["AND", "OR"] = "AND"
        self.negated = False

    @classmethod
    def _make(
        cls, children: list[Q | tuple[str, Any]], connector: Literal["AND", "OR"], negated: bool
    ) -> Q:
        q = cls()
        q.children, q.connector, q.negated = children, connector, negated
        return q

    def _combine(self, other: object, connector: Literal["AND", "OR"]) -> Any:
        if not isinstance(other, Q):
            return NotImplemented
        return Q._make([self, other], connector, False)

    def __and__(self, other: Q) -> Q:
        combined: Q = self._combine(other, "AND")
        return combined

    def __or__(self, other: Q) -> Q:
        combined: Q = self._combine(other, "OR")
        return combined

    def __invert__(self) -> Q:
        return Q._make(list(self.children), self.connector, not self.negated)

    def __bool__(self) -> bool:
        return bool(self.children)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Q):
            return NotImplemented
        return (self.children, self.connector, self.negated) == (
            other.children,
            other.connector,
            other.negated,
        )

    __hash__ = None  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]

    def __repr__(self) -> str:
        inner = f" {self.connector} ".join(
            repr(c) if isinstance(c, Q) else f"{c[0]}=..." for c in self.children
        )
        return f"{'~' if self.negated else ''}Q({inner})"


UpdateKind = Literal[
    "ref", "add_num", "sub_num", "append", "prepend", "if_not_exists", "add", "remove"
]


@dataclass(frozen=True)
class UpdateOp:
    """One atomic update built from an `F` expression (see `F`)."""

    kind: UpdateKind
    source: str
    value: Any = None

    def __bool__(self) -> bool:
        raise TypeError(
            "An F() expression has no truth value; use it as an update value, "
            "e.g. obj.update(total=F('total') + 1)."
        )


class F:
    """A reference to a stored field, for atomic updates evaluated by DynamoDB.

    `o.update(total=F("total") + 5, tags=F("tags").add({"gift"}))`. Supported: `+`, `-`,
    `.append(list)`, `.prepend(list)`, `.if_not_exists(value)`, `.add(set)`, `.remove(set)`.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __add__(self, value: Any) -> UpdateOp:
        return UpdateOp("add_num", self.name, value)

    __radd__ = __add__

    def __sub__(self, value: Any) -> UpdateOp:
        return UpdateOp("sub_num", self.name, value)

    def append(self, values: list[Any]) -> UpdateOp:
        """Append to a list attribute (`list_append(field, values)`)."""
        return UpdateOp("append", self.name, list(values))

    def prepend(self, values: list[Any]) -> UpdateOp:
        """Prepend to a list attribute (`list_append(values, field)`)."""
        return UpdateOp("prepend", self.name, list(values))

    def if_not_exists(self, value: Any) -> UpdateOp:
        """Set the field only when it is not stored yet (`if_not_exists(field, value)`)."""
        return UpdateOp("if_not_exists", self.name, value)

    def add(self, values: set[Any] | frozenset[Any]) -> UpdateOp:
        """Add members to a set attribute (`ADD`)."""
        return UpdateOp("add", self.name, set(values))

    def remove(self, values: set[Any] | frozenset[Any]) -> UpdateOp:
        """Remove members from a set attribute (`DELETE`)."""
        return UpdateOp("remove", self.name, set(values))

    def __bool__(self) -> bool:
        raise TypeError(
            "An F() reference has no truth value; F is for updates, use filter() lookups "
            "for conditions."
        )

    def __repr__(self) -> str:
        return f"F({self.name!r})"


def lookup_names(q: Q) -> Iterator[str]:
    """The lookup names (`field__lookup`) of a Q tree, depth first."""
    for child in q.children:
        if isinstance(child, Q):
            yield from lookup_names(child)
        else:
            yield child[0]
