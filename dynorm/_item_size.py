"""Item sizes as DynamoDB counts them, and the 400 KB check every write path runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from . import _json
from ._codec import _WIDE
from ._constants import ITEM_SIZE_LIMIT
from .exceptions import InvalidValueError, ItemTooLargeError


def _number_size(text: str) -> int:
    """Bytes of a number as DynamoDB stores it.

    Base-100 digits aligned on the decimal point, plus one byte (one more if negative).
    """
    try:
        sign, digits, exponent = Decimal(text).normalize(_WIDE).as_tuple()
    except InvalidOperation:  # pragma: no cover - never produced by number_to_wire
        return len(text)
    if not digits or digits == (0,):
        return 2
    assert isinstance(exponent, int)
    highest = exponent + len(digits) - 1  # power of ten of the first digit
    pairs = highest // 2 - exponent // 2 + 1
    return pairs + 1 + sign


def _text_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _number_bound(text: str) -> int:
    """An upper bound of `_number_size` without parsing: pairs <= len/2 + 1, plus 2."""
    return len(text) // 2 + 3


def value_size(av: Mapping[str, Any], number: Callable[[str], int] = _number_size) -> int:
    """Return the bytes DynamoDB counts for one attribute value (without its name)."""
    for tag, raw in av.items():
        if tag == "S":
            return _text_size(raw)
        if tag == "N":
            return number(raw)
        if tag == "B":
            return len(raw)
        if tag in ("BOOL", "NULL"):
            return 1
        if tag == "SS":
            return sum(_text_size(s) for s in raw)
        if tag == "NS":
            return sum(number(n) for n in raw)
        if tag == "BS":
            return sum(len(b) for b in raw)
        if tag == "L":
            return 3 + sum(value_size(v, number) + 1 for v in raw)
        if tag == "M":
            return 3 + sum(_text_size(k) + value_size(v, number) + 1 for k, v in raw.items())
    return 0


def item_size(
    item: Mapping[str, Mapping[str, Any]], number: Callable[[str], int] = _number_size
) -> int:
    """Return an item's size as DynamoDB counts it: UTF-8 names plus values."""
    return sum(_text_size(name) + value_size(av, number) for name, av in item.items())


def check_item_size(item: Mapping[str, Mapping[str, Any]], model: str) -> None:
    """Raise ItemTooLargeError when an item is over DynamoDB's 400 KB limit."""
    if _json.FAST:
        # The item's JSON is never shorter than its DynamoDB size (each value's JSON holds
        # its text, bytes as longer base64, numbers' digits, and more punctuation than
        # DynamoDB's per-element overhead), and orjson writes it ~10x faster than a walk.
        try:
            if len(_json.dumps(item)) <= ITEM_SIZE_LIMIT:
                return
        except TypeError:  # a lone surrogate: the walk below names the attribute
            pass
    try:
        # Numbers are costly to size exactly; an upper bound settles almost every item.
        size = item_size(item, _number_bound)
        if size > ITEM_SIZE_LIMIT:
            size = item_size(item)
    except UnicodeEncodeError:
        bad = [k for k, v in item.items() if not _encodable(k, v)]
        raise InvalidValueError(
            f"Cannot save {model}: {', '.join(bad) or 'an attribute'} holds text that is not "
            "valid Unicode (a lone surrogate), which DynamoDB cannot store.",
            model=model,
            field=bad[0] if bad else None,
        ) from None
    if size > ITEM_SIZE_LIMIT:
        sizes = sorted(
            ((len(k.encode()) + value_size(v), k) for k, v in item.items()), reverse=True
        )
        largest = [name for _, name in sizes[:3]]
        raise ItemTooLargeError(
            f"Cannot save {model}: the item is {size} bytes, over DynamoDB's limit of "
            f"{ITEM_SIZE_LIMIT} bytes; largest attributes: {', '.join(largest)}. Store large "
            "values elsewhere (e.g. S3) or declare them with fields.Compressed().",
            model=model,
            size=size,
            largest=largest,
        )


def _encodable(name: str, av: Mapping[str, Any]) -> bool:
    try:
        name.encode("utf-8")
        value_size(av)
    except UnicodeEncodeError:
        return False
    return True
