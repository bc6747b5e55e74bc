"""Recognising a write by what it stored, for a layout without a write token.

dynorm recognises its own earlier write (a retry after a lost response) by the random write
token the item carries (`_exactly_once`). A model mapped with `write_token_attribute=None`
stores none, so its write is recognised by its content instead: `Sent` holds what the request
stores (a PutItem's whole item; an UpdateItem's key, its plain `SET #a = :v` assignments and
its `REMOVE`s) and `shows(item)` says whether a stored item holds exactly that. A write that
computes a value inside DynamoDB (`#n = #n + :v`, `ADD`, `if_not_exists`, `list_append`) has
no `Sent`: it cannot be recognised, and a refusal after a lost response reads as "may have
been applied" (`WriteOutcomeUnknownError`), never as a conflict or a success.

Each write's `Sent` is registered under the write's token (drawn as usual, never stored), so
the readers of a refusal look it up where they would compare tokens. The registry holds weak
references: the write (`WriteOp.sent`) and a remembered attempt (`Attempt.sent`) keep theirs.
"""

from __future__ import annotations

import base64
import re
import weakref
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["Sent", "register", "sent_for", "sent_of"]

_CLAUSE = re.compile(r"\b(SET|REMOVE|ADD|DELETE)\b")
_ASSIGN = re.compile(r"^(#\w+) = (:\w+)$")
_NAME = re.compile(r"^#\w+$")


def _norm(av: Any) -> Any:
    """A DynamoDB JSON value in a form where equal stored values compare equal.

    DynamoDB keeps a number's value, not its text ("1.50" comes back "1.5"), and a set's
    members, not their order; binary arrives as bytes or base64 text depending on the client.
    """
    if not isinstance(av, Mapping) or len(av) != 1:
        return ("?", repr(av))
    ((tag, value),) = av.items()
    if tag == "N":
        return (tag, _number(value))
    if tag == "NS":
        return (tag, frozenset(_number(v) for v in value))
    if tag == "B":
        return (tag, _bytes(value))
    if tag == "BS":
        return (tag, frozenset(_bytes(v) for v in value))
    if tag == "SS":
        return (tag, frozenset(value))
    if tag == "L":
        return (tag, tuple(_norm(v) for v in value))
    if tag == "M":
        return (tag, frozenset((k, _norm(v)) for k, v in value.items()))
    return (tag, value)


def _number(text: Any) -> Any:
    try:
        return Decimal(str(text)).normalize()
    except InvalidOperation:
        return str(text)


def _bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return base64.b64decode(str(value))


class Sent:
    """What one write stores: attributes with their values, and attributes it removes.

    `whole`: the write replaces the item (a PutItem), so the stored item must hold exactly
    these attributes and no other.
    """

    __slots__ = ("__weakref__", "removed", "values", "whole")

    def __init__(self, values: Mapping[str, Any], removed: Iterable[str], whole: bool) -> None:
        self.values = {name: _norm(av) for name, av in values.items()}
        self.removed = frozenset(removed)
        self.whole = whole

    def shows(self, item: Mapping[str, Any] | None) -> bool:
        """Whether a stored item holds exactly what this write stored."""
        if not item:
            return False
        if self.whole and set(item) != set(self.values):
            return False
        if any(name in item for name in self.removed):
            return False
        return all(name in item and _norm(item[name]) == v for name, v in self.values.items())


def _update(body: Mapping[str, Any], result: Mapping[str, Any] | None) -> Sent | None:
    names: Mapping[str, str] = body.get("ExpressionAttributeNames", {})
    values: Mapping[str, Any] = body.get("ExpressionAttributeValues", {})
    text = str(body.get("UpdateExpression", ""))
    parts = _CLAUSE.split(text)
    stored: dict[str, Any] = dict(body["Key"])
    removed: list[str] = []
    for keyword, clause in zip(parts[1::2], parts[2::2]):
        items = _items(clause)
        if keyword in ("ADD", "DELETE"):  # `#a :v`: a number or a set computed in DynamoDB
            for item in items:
                name = names.get(item.partition(" ")[0])
                if name is None or result is None or name not in result:
                    return None
                stored[name] = result[name]
        elif keyword == "SET":
            for assignment in items:
                match = _ASSIGN.match(assignment)
                if match is not None:
                    stored[names[match[1]]] = values[match[2]]
                    continue
                target = _NAME.match(assignment.partition(" = ")[0])
                name = names.get(target[0]) if target is not None else None
                if name is None or result is None or name not in result:
                    return None  # computed in DynamoDB: its result is not known here
                stored[name] = result[name]
        elif keyword == "REMOVE" and all(_NAME.match(i) for i in items):
            removed += [names[i] for i in items]
        else:
            return None
    return Sent(stored, removed, whole=False)


def _items(clause: str) -> list[str]:
    """A clause's comma-separated items, commas inside a function's parentheses kept."""
    items: list[str] = []
    depth = start = 0
    for i, char in enumerate(clause):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(clause[start:i])
            start = i + 1
    items.append(clause[start:])
    return [item.strip() for item in items if item.strip()]


def sent_of(
    operation: str, params: Mapping[str, Any], result: Mapping[str, Any] | None = None
) -> Sent | None:
    """What a compiled write of an instance stores (None: nothing, or not knowable).

    `result` is the item as the writer computed it (an `update()` with `F()` of a whole
    object loaded at the version the write is conditional on): the value of an attribute
    the UpdateExpression computes in DynamoDB is taken from there.

    A transaction's own item is its first action, or its first Put when that one deletes or
    checks (a key move deletes the old key, then puts the new one).
    """
    if operation == "TransactWriteItems":
        actions = [next(iter(a.items())) for a in params["TransactItems"]]
        if not actions:
            return None
        kind, body = actions[0]
        if kind in ("Delete", "ConditionCheck"):
            puts = [b for k, b in actions if k == "Put"]
            if not puts:
                return None
            kind, body = "Put", puts[0]
        operation = {"Put": "PutItem", "Update": "UpdateItem"}.get(kind, kind)
    else:
        body = params
    if operation == "PutItem":
        return Sent(body["Item"], (), whole=True)
    if operation == "UpdateItem":
        return _update(body, result)
    return None


_registry: weakref.WeakValueDictionary[str, Sent] = weakref.WeakValueDictionary()


def register(token: str | None, sent: Sent | None) -> None:
    """File a write's `Sent` under its (unstored) token, for the readers of a refusal."""
    if token is not None and sent is not None:
        _registry[token] = sent


def sent_for(token: str | None) -> Sent | None:
    """The `Sent` of the write with this token, while that write (or its attempt) lives."""
    return None if token is None else _registry.get(token)
