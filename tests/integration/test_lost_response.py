"""A write applied by DynamoDB whose response is lost must not be reported as a conflict."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ReadTimeoutError

from dynorm import _config
from dynorm.exceptions import ServiceError, VersionConflictError
from tests.models import Order
from tests.proxies import forwarding_proxy
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


@pytest.mark.parametrize("transport", ["boto3", "http"])
def test_a_write_whose_answers_a_proxy_lost_is_known_to_be_maybe_applied(
    transport: str, dynorm_table: str, dynamodb_local: str, no_proxy_env: pytest.MonkeyPatch
) -> None:
    """The proxy forwards each attempt of the create, DynamoDB applies the first, and the
    proxy hangs up without answering (urllib3 calls that a ProxyError, as it does a proxy
    it could not reach). The error says the write may have been applied, and the object
    remembers it: saved again, it recognises its own create instead of a conflict."""
    behind = f"http://dynamodb-behind-a-proxy.invalid:{urlsplit(dynamodb_local).port or 80}"
    before = _config.get_settings().transport
    o = Order(customer_id="c1", total=Decimal("1.50"))
    with forwarding_proxy(dynamodb_local, lose={"PutItem": 3}) as (proxy, seen):
        no_proxy_env.setenv("HTTP_PROXY", proxy)
        _config.configure(transport=transport, endpoint_url=behind, max_attempts=3)
        try:
            with pytest.raises(ServiceError) as lost:
                o.save()
            assert lost.value.maybe_applied
            assert "may or may not have been applied" in str(lost.value)
            o.save()  # the first attempt's create is found: no ItemExistsError
            stored = Order.objects.get(customer_id="c1", id=o.id)
        finally:  # the table fixture deletes its table at the real endpoint
            _config.configure(transport=before, endpoint_url=dynamodb_local)
    assert (o.version, stored.version) == (1, 1)
    assert sum("POST" in line for line in seen) == 5  # three lost, the second save, a get
