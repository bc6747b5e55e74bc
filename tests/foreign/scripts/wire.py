"""Tagged JSON between the tests and the foreign scripts (imported by both sides).

JSON has no bytes, sets, datetimes or decimals, so those travel as one-key objects:
`{"$bytes": base64}`, `{"$set": [sorted items]}`, `{"$dt": isoformat}`, `{"$dec": text}`.
Standard library only: it runs in the foreign virtualenvs too.
"""

from __future__ import annotations

import base64
from datetime import datetime
from decimal import Decimal
from typing import Any


def dump(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, (set, frozenset)):
        items = [dump(v) for v in value]
        return {"$set": sorted(items, key=repr)}
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, dict):
        return {str(k): dump(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [dump(v) for v in value]
    return value


def load(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag == "$bytes":
                return base64.b64decode(inner)
            if tag == "$set":
                return {load(v) for v in inner}
            if tag == "$dt":
                return datetime.fromisoformat(inner)
            if tag == "$dec":
                return Decimal(inner)
        return {k: load(v) for k, v in value.items()}
    if isinstance(value, list):
        return [load(v) for v in value]
    return value
