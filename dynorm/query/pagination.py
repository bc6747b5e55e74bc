"""Signed, opaque pagination cursors bound to the query that produced them."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from ..exceptions import InvalidCursorError
from .compiler import Request

__all__ = ["decode_cursor", "encode_cursor", "fingerprint"]

_IGNORED = frozenset({"ExclusiveStartKey", "Limit", "TableName"})


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
