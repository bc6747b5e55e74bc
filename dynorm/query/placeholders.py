"""One allocator per request for `#name` and `:value` placeholders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class Placeholders:
    """Hands out expression placeholders; every user value and name goes through one.

    Names are reused per attribute (the same attribute always maps to the same `#nN`);
    values never are, so the expression text does not depend on the values.
    """

    __slots__ = ("names", "values", "_name_of")

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, dict[str, Any]] = {}
        self._name_of: dict[str, str] = {}

    def name(self, attr: str) -> str:
        """Return the placeholder for one attribute name."""
        token = self._name_of.get(attr)
        if token is None:
            token = f"#n{len(self._name_of)}"
            self._name_of[attr] = token
            self.names[token] = attr
        return token

    def path(self, attrs: Sequence[str]) -> str:
        """Return a document path (`#n0.#n1`) for nested map attributes."""
        return ".".join(self.name(a) for a in attrs)

    def value(self, av: dict[str, Any]) -> str:
        """Return the placeholder for one attribute value (already in DynamoDB JSON)."""
        token = f":v{len(self.values)}"
        self.values[token] = av
        return token

    def apply(self, params: dict[str, Any]) -> dict[str, Any]:
        """Add ExpressionAttributeNames/Values to request params when any were used."""
        if self.names:
            params["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            params["ExpressionAttributeValues"] = dict(self.values)
        return params
