"""A write applied by DynamoDB whose response is lost must not be reported as a conflict."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from dynorm.exceptions import VersionConflictError
from tests.models import Order
from tests.reliability.helpers import Faults


@contextmanager
def lose_next_response(operation: str) -> Iterator[list[int]]:
    """Send the next `operation` for real, then raise a read timeout as if the response was
    lost; the transport retries the same request, which DynamoDB now refuses (its condition)."""
    faults = Faults()
    lost: list[int] = []

    def handler(request: Any, **_: Any) -> None:
        if not lost:
            assert faults.send(request).status_code == 200
            lost.append(1)
            raise ReadTimeoutError(endpoint_url=request.url)

    faults.on(f"before-send.dynamodb.{operation}", handler)
    try:
        yield lost
    finally:
        faults.clear()
    faults.check_fired()


def test_create_with_lost_response_succeeds_once(dynorm_table: str) -> None:
    o = Order(customer_id="c1", total=Decimal("1.50"))
    with lose_next_response("PutItem") as lost:
        o.save()
    assert lost == [1] and o.version == 1
    assert Order.objects.get(customer_id="c1", id=o.id).version == 1


def test_save_with_lost_response_succeeds_once(dynorm_table: str) -> None:
    o = Order.objects.create(customer_id="c1", total=Decimal("1.50"))
    stale = Order.objects.get(customer_id="c1", id=o.id)
    o.status = "paid"
    with lose_next_response("PutItem") as lost:
        o.save()
    assert lost == [1] and o.version == 2
    stored = Order.objects.get(customer_id="c1", id=o.id)
    assert stored.version == 2 and stored.status == "paid"
    stale.status = "cancelled"
    with pytest.raises(VersionConflictError):
        stale.save()  # a genuinely different write still conflicts


def test_update_fields_with_lost_response_succeeds_once(dynorm_table: str) -> None:
    o = Order.objects.create(customer_id="c1", total=Decimal(1))
    o.status = "shipped"
    with lose_next_response("UpdateItem") as lost:
        o.save(update_fields=["status"])
    assert lost == [1] and o.version == 2
    assert Order.objects.get(customer_id="c1", id=o.id).status == "shipped"
