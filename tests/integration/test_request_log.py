"""One DEBUG line per request: operation, table, duration, attempts, capacity; never a value."""

from __future__ import annotations

import json
import logging
import uuid
from decimal import Decimal
from typing import Any

import botocore.endpoint
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import dynorm._http
from dynorm._connection import Connection
from dynorm.exceptions import ConditionFailedError
from tests.models import Order
from tests.reliability.conftest import FakeTime
from tests.reliability.helpers import Faults

DATA_PLANE = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"}


def request_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "dynorm" and hasattr(r, "operation")]


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The operations handed to Connection.send, in order."""
    calls: list[str] = []
    original = Connection.send

    def spy(self: Connection, operation: str, params: Any) -> dict[str, Any]:
        calls.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(Connection, "send", spy)
    return calls


@pytest.fixture
def bodies(dynorm_table: str) -> Any:
    """The JSON body of every attempt that reaches the wire."""
    faults = Faults()
    seen: list[tuple[str, dict[str, Any]]] = []

    def record(request: Any, event_name: str, **_: Any) -> None:
        seen.append((event_name.rsplit(".", 1)[1], json.loads(request.body or b"{}")))

    faults.on("before-send.dynamodb", record)
    yield seen
    faults.clear()


def test_each_request_is_one_line_with_its_measurements(
    dynorm_table: str, caplog: pytest.LogCaptureFixture, sends: list[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="dynorm")
    order = Order.objects.create(customer_id="c1", total=Decimal("12.50"))
    Order.objects.get(customer_id="c1", id=order.id)
    list(Order.objects.filter(customer_id="c1"))
    order.update(status="paid")
    Order.objects.bulk_create([Order(customer_id="c2", total=1), Order(customer_id="c2", total=2)])
    with pytest.raises(ConditionFailedError):
        Order.objects.create(customer_id="c1", id=order.id, total=1)
    order.delete()

    records = request_records(caplog)
    assert [r.operation for r in records] == sends  # type: ignore[attr-defined]
    assert set(sends) >= DATA_PLANE
    formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    for record in records:
        fields: dict[str, Any] = vars(record)
        assert record.levelno == logging.DEBUG
        assert fields["table"] == dynorm_table
        assert isinstance(fields["duration_ms"], float) and fields["duration_ms"] > 0
        assert fields["attempts"] == 1
        line = formatter.format(record)
        assert line.startswith(f"DEBUG dynorm: {fields['operation']} table={dynorm_table} ")
        assert line.count("dynorm:") == 1  # not "dynorm: dynorm: ..."
        assert f"attempts={fields['attempts']}" in line
        if fields["error"] is None:
            # DynamoDB Local reports capacity for every data-plane request.
            assert isinstance(fields["consumed_capacity"], float)
            assert f"consumed_capacity={fields['consumed_capacity']:g}" in line
    [failed] = [r for r in records if vars(r)["error"] is not None]
    assert (failed.operation, failed.error) == (  # type: ignore[attr-defined]
        "PutItem",
        "ConditionalCheckFailedException",
    )
    assert "error=ConditionalCheckFailedException" in failed.getMessage()


def test_consumed_capacity_is_asked_for_only_when_debug_logging_is_on(
    bodies: list[tuple[str, dict[str, Any]]], caplog: pytest.LogCaptureFixture
) -> None:
    def work() -> None:
        order = Order.objects.create(customer_id="c1", total=1)
        Order.objects.get(customer_id="c1", id=order.id)
        list(Order.objects.filter(customer_id="c1"))
        order.delete()

    caplog.set_level(logging.INFO, logger="dynorm")
    work()
    assert bodies and all("ReturnConsumedCapacity" not in body for _, body in bodies)
    bodies.clear()
    caplog.set_level(logging.DEBUG, logger="dynorm")
    work()
    assert {op for op, _ in bodies} >= {"PutItem", "GetItem", "Query", "DeleteItem"}
    assert all(body.get("ReturnConsumedCapacity") == "TOTAL" for _, body in bodies)
    # explain() shows the request as compiled; the capacity flag is the logger's business.
    [request] = Order.objects.filter(customer_id="c1").explain()
    assert "ReturnConsumedCapacity" not in request.params


def test_attempts_count_botocore_retries(
    dynorm_table: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(botocore.endpoint, "time", FakeTime())
    monkeypatch.setattr(dynorm._http, "time", FakeTime())  # the lean path's back-off
    faults = Faults()
    faults.fail("PutItem", "InternalServerError", times=2, status=500)
    caplog.set_level(logging.DEBUG, logger="dynorm")
    try:
        Order.objects.create(customer_id="c1", total=1)
    finally:
        faults.clear()
    faults.check_fired()
    [put] = [r for r in request_records(caplog) if r.operation == "PutItem"]  # type: ignore[attr-defined]
    assert vars(put)["attempts"] == 3 and "attempts=3" in put.getMessage()


_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    note=_text,
    tag=_text,
    whole=st.integers(10**11, 10**12 - 1),
    cents=st.integers(10**5, 10**6 - 1),
)
def test_no_value_ever_reaches_the_log(
    dynorm_table: str,
    caplog: pytest.LogCaptureFixture,
    note: str,
    tag: str,
    whole: int,
    cents: int,
) -> None:
    marker = uuid.uuid4().hex  # makes each value unmistakable in the log
    secrets = {f"{marker}{note}", f"{marker}{tag}", f"{whole}.{cents}"}
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="dynorm"):
        customer = f"{marker}-customer"
        order = Order.objects.create(
            customer_id=customer,
            total=Decimal(f"{whole}.{cents}"),
            note=f"{marker}{note}",
            tags={f"{marker}{tag}"},
        )
        Order.objects.get(customer_id=customer, id=order.id)
        list(Order.objects.filter(customer_id=customer, note=f"{marker}{note}"))
        order.update(note=f"{marker}{tag}", total=Decimal(f"{whole}.{cents}") + 1)
        with pytest.raises(ConditionFailedError):
            Order.objects.create(
                customer_id=customer, id=order.id, total=Decimal(f"{whole}.{cents}")
            )
        order.delete()
    records = [r for r in caplog.records if r.name.startswith("dynorm")]
    assert len(request_records(caplog)) >= 6
    secrets |= {marker, customer}
    for record in records:
        text = record.getMessage() + repr(vars(record))
        for secret in secrets:
            assert secret not in text, (record.getMessage(), secret)
