"""One allocator per request for `#name` and `:value` placeholders."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .._constants import EXPRESSION_LENGTH_LIMIT, EXPRESSION_OPERATOR_LIMIT
from ..exceptions import QueryError


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


_OPERATOR = re.compile(r"<>|<=|>=|=|<|>|\b(?:AND|OR|NOT|BETWEEN|IN)\b|\b[a-z_]+\(")


def check_expressions(params: dict[str, Any], model: str) -> None:
    """Refuse expressions over DynamoDB's limits (4 KB, 300 operators) before sending."""
    for key, text in params.items():
        if not key.endswith("Expression") or not isinstance(text, str):
            continue
        if len(text.encode("utf-8")) > EXPRESSION_LENGTH_LIMIT:
            raise QueryError(
                f"Cannot send the {key} for {model}: it is {len(text)} bytes, over DynamoDB's "
                f"{EXPRESSION_LENGTH_LIMIT}-byte limit. Split the query or simplify the filter.",
                code="bad-query",
            )
        operators = len(_OPERATOR.findall(text))
        if operators > EXPRESSION_OPERATOR_LIMIT:
            raise QueryError(
                f"Cannot send the {key} for {model}: it uses {operators} operators or "
                f"functions, over DynamoDB's {EXPRESSION_OPERATOR_LIMIT}. Split the query or "
                "simplify the filter.",
                code="bad-query",
            )
