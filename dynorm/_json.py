"""DynamoDB JSON in and out: orjson when the `fast` extra is installed, else the stdlib."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

__all__ = ["FAST", "dumps", "loads"]


def _base64(value: Any) -> str:
    """JSON for binary values, as DynamoDB's JSON protocol carries them."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not DynamoDB JSON")


def stdlib_dumps(value: Any) -> bytes:
    """Compact JSON, non-ASCII text escaped (lone surrogates too, as botocore writes them)."""
    return json.dumps(value, separators=(",", ":"), default=_base64).encode("utf-8")


loads: Callable[[bytes], Any]
dumps: Callable[[Any], bytes]
try:  # the optional `dynorm[fast]` extra: orjson parses a 1 MB page about 3x faster
    import orjson

    FAST = True
    loads = orjson.loads

    def orjson_dumps(value: Any) -> bytes:
        """Compact UTF-8 JSON; raises TypeError (e.g. a lone surrogate) if it cannot."""
        return orjson.dumps(value, default=_base64)

    dumps = orjson_dumps

except ImportError:  # pragma: no cover - both are tested in tests/unit/test_fast_json.py
    FAST = False
    loads = json.loads
    dumps = stdlib_dumps
