"""`page()`: pages of a query and the signed, opaque cursors bound to the query."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .. import _executor
from .._config import get_settings
from .._exactly_once import bind_all
from .._request import Request
from ..exceptions import InvalidCursorError, QueryError
from ._decoding import keyed_page

if TYPE_CHECKING:
    from ..models import Model
    from .queryset import QuerySet

__all__ = ["Page", "decode_cursor", "encode_cursor", "fingerprint", "read_page"]

M = TypeVar("M", bound="Model")

#: What a cursor is not bound to (the table is: a cursor of one table's query is refused for
#: the same query on another table).
_IGNORED = frozenset({"ExclusiveStartKey", "Limit"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fingerprint(request: Request, model_type: str) -> str:
    """A digest of the query (operation, conditions, values, order, index, model)."""
    body = {k: v for k, v in request.params.items() if k not in _IGNORED}
    text = json.dumps([request.operation, model_type, body], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def encode_cursor(key: dict[str, Any], query: str, secret: bytes) -> str:
    """Return an opaque, URL-safe cursor for a start key, signed with HMAC-SHA256."""
    payload = json.dumps({"k": key, "q": query}, separators=(",", ":"), sort_keys=True).encode()
    signature = hmac.new(secret, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def decode_cursor(cursor: str, query: str, secret: bytes, model: str) -> dict[str, Any]:
    """Verify a cursor and return its start key; raises InvalidCursorError."""
    fail = InvalidCursorError(
        f"Cannot use this cursor for the {model} query: it was altered, signed with another "
        "secret (another process without configure(cursor_secret=...)), or belongs to a "
        "different query. Start again without a cursor."
    )
    if not isinstance(cursor, str) or cursor.count(".") != 1 or len(cursor) > 8192:
        raise fail
    body, sig = cursor.split(".")
    try:
        payload, signature = _unb64(body), _unb64(sig)
    except (binascii.Error, ValueError):
        raise fail from None
    expected = hmac.new(secret, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise fail
    try:
        data = json.loads(payload)
    except ValueError:
        raise fail from None
    if not isinstance(data, dict) or data.get("q") != query or not isinstance(data.get("k"), dict):
        raise fail
    key: dict[str, Any] = data["k"]
    return key


@dataclass
class Page(Generic[M]):
    """One page of results: `items` and the cursor of the next page (None on the last)."""

    items: list[M]
    next_cursor: str | None


def read_page(qs: QuerySet[M], size: int, cursor: str | None) -> Page[M]:
    """`qs.page(size, cursor)`: `size` matches and the signed cursor of the next page."""
    if size < 1:
        raise QueryError("Cannot fetch a page of fewer than 1 item.", code="bad-query")
    qs._refuse_sliced("page")
    plan = qs._plan()
    if not plan.requests:  # `none()`: an empty last page, nothing sent
        return Page([], None)
    if len(plan.requests) != 1:
        raise QueryError("Cannot page a parallel scan; scan with one segment.", code="bad-query")
    secret = get_settings().cursor_secret
    model_name = qs.model._meta.model_name
    query = fingerprint(plan.requests[0], qs.model._meta.type_name)
    start = None if cursor is None else decode_cursor(cursor, query, secret, model_name)
    conn = qs._connection()
    found: list[tuple[Any, dict[str, Any]]] = []
    if qs._wire_ok() and not plan.has_filter:
        # Limit bounds each page: validating a whole page costs at most one extra item.
        fetch = keyed_page(qs.model, qs._decode, plan.key_attrs, wire=True)
        pages = _executor.follow(conn, plan.requests[0], fetch, limit=size + 1, start_key=start)
        for pairs, _ in pages:
            found.extend(pairs)
            if len(found) > size:
                break
    else:  # raw items, decoded only as far as the page goes
        raws = _executor.follow(
            conn,
            plan.requests[0],
            _executor.raw_page,
            limit=size + 1,
            bounded=not plan.has_filter,
            start_key=start,
        )
        read: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for raw_items, _ in raws:
            read.extend((raw, {a: raw[a] for a in plan.key_attrs if a in raw}) for raw in raw_items)
            if len(read) > size:
                break
        found = [(qs._decode(raw), key) for raw, key in read[:size]] + read[size : size + 1]
    next_cursor = None
    if len(found) > size:
        next_cursor = encode_cursor(found[size - 1][1], query, secret)
    items: list[M] = [obj for obj, _ in found[:size]]  # (the extra one only marks a next page)
    bind_all(items, qs._binding())
    return Page(items, next_cursor)
