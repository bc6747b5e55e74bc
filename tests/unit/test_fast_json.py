"""The raw-body path decodes the same with orjson (the `fast` extra) and with the stdlib."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from dynorm import _connection
from dynorm._connection import Connection


class _Client:
    """A stand-in client whose response carries a raw body, as the before-parse hook leaves it."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.meta = type(
            "Meta",
            (),
            {"events": type("E", (), {"register": staticmethod(lambda *a, **k: None)})()},
        )()

    def get_item(self, **_: Any) -> dict[str, Any]:
        return {_connection._RAW_BODY: self.body, "ResponseMetadata": {"HTTPStatusCode": 200}}


BODY = json.dumps(
    {
        "Item": {
            "pk": {"S": "é"},
            "n": {"N": "1.50"},
            "b": {"B": "AP8="},
            "l": {"L": [{"NULL": True}]},
        }
    }
).encode()


@pytest.mark.parametrize("loads", [json.loads, orjson.loads], ids=["stdlib", "orjson"])
def test_raw_body_parses_identically(monkeypatch: pytest.MonkeyPatch, loads: Any) -> None:
    monkeypatch.setattr(_connection, "_loads", loads)
    conn = Connection(_Client(BODY), "t")
    got = conn.send_raw("GetItem", {})
    assert got["Item"] == json.loads(BODY)["Item"]
    assert got["ResponseMetadata"] == {"HTTPStatusCode": 200}
