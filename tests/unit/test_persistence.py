"""Write requests built offline: every placeholder a write defines is used by it."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from dynorm._instance_writes import save_op
from dynorm.query._decoding import decode as _decode
from tests.models import Order


def assert_placeholders_used(params: dict[str, Any]) -> None:
    text = " ".join(v for k, v in params.items() if k.endswith("Expression"))
    used = set(re.findall(r"[#:][nv]\d+", text))
    defined = set(params.get("ExpressionAttributeNames", {})) | set(
        params.get("ExpressionAttributeValues", {})
    )
    assert used == defined


def stored_order() -> dict[str, Any]:
    o = Order(customer_id="c1", id="o1", total=Decimal(5))
    item = save_op(o).params["Item"]
    item["version"] = {"N": "3"}
    return item


def test_update_fields_save_uses_every_placeholder() -> None:
    o = Order.from_item(stored_order())
    o.status = "paid"
    op = save_op(o, ["status"])
    assert op.operation == "UpdateItem"
    assert_placeholders_used(op.params)


def test_partial_update_fields_save_uses_every_placeholder() -> None:
    partial = _decode(Order, stored_order(), ("total",))
    partial.total = Decimal(6)
    op = save_op(partial, ["total"])
    assert op.operation == "UpdateItem"
    assert_placeholders_used(op.params)
    assert "gsi1pk" not in op.params["ExpressionAttributeNames"].values()  # index untouched
