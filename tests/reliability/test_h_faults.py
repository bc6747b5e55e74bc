"""H. Throttling, network faults and retries (scenarios 44-47).

dynorm pins botocore's "standard" retry mode; faults are injected with `before-send` hooks so
botocore really retries. Back-off delays are recorded on a fake clock instead of slept.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

import dynorm
from dynorm import F, Model
from dynorm.exceptions import ServiceError, ThrottledError, VersionConflictError
from tests.reliability.conftest import FakeTime
from tests.reliability.helpers import SENTINEL, Faults, aws_error, raw_get, raw_partition

THROTTLES = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
]


class RelMeter(Model):
    id: str
    reading: int = 0
    label: str = ""

    class Meta:
        pk = "RELMETER#{id}"


def _stored(meter_id: str) -> dict[str, Any] | None:
    return raw_get(f"RELMETER#{meter_id}", "RelMeter")


# --------------------------------------------------------------------------- scenario 44


@pytest.mark.parametrize("code", THROTTLES)
def test_s44_transient_throttling_is_retried_to_success(
    faults: Faults, retry_sleeps: FakeTime, code: str
) -> None:
    attempts = faults.count("PutItem")
    faults.fail("PutItem", code, times=2)
    meter = RelMeter(id="m1", reading=5)
    meter.save()
    assert len(attempts) == 3
    assert len(retry_sleeps.sleeps) == 2
    assert meter.version == 1
    stored = _stored("m1")
    assert stored is not None and stored["version"] == {"N": "1"}  # stored once, nothing lost
    assert len(raw_partition("RELMETER#m1")) == 1


@pytest.mark.parametrize("operation", ["GetItem", "Query", "UpdateItem"])
def test_s44_throttled_reads_and_updates_are_retried(
    faults: Faults, retry_sleeps: FakeTime, operation: str
) -> None:
    meter = RelMeter.objects.create(id="m1", reading=5)
    attempts = faults.count(operation)
    faults.fail(operation, "ProvisionedThroughputExceededException", times=2)
    if operation == "GetItem":
        assert RelMeter.objects.get(id="m1").reading == 5
    elif operation == "Query":
        assert [m.id for m in RelMeter.objects.filter(id="m1", reading=5)] == ["m1"]
    else:
        meter.update(reading=F("reading") + 1)
        assert meter.reading == 6
    assert len(attempts) == 3


# --------------------------------------------------------------------------- scenario 45


def test_s45_persistent_throttling_raises_throttled_error(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    attempts = faults.count("PutItem")
    faults.fail("PutItem", "ProvisionedThroughputExceededException")
    meter = RelMeter(id="m1", label=SENTINEL)
    with pytest.raises(ThrottledError) as info:
        meter.save()
    err = info.value
    assert err.operation == "PutItem"
    assert err.aws_code == "ProvisionedThroughputExceededException"
    assert err.attempts == len(attempts)  # the count it reports is the count it made
    assert 2 <= len(attempts) <= 5  # retried, and bounded
    message = str(err)
    assert "PutItem" in message and dynorm._config.get_connection().table_name in message
    assert SENTINEL not in message and SENTINEL not in repr(err)
    # Back-off is bounded: botocore's standard mode caps each delay (1 s base for throttles).
    assert len(retry_sleeps.sleeps) == len(attempts) - 1
    assert all(0 <= s <= min(2**i, 20) for i, s in enumerate(retry_sleeps.sleeps))
    assert meter.version == 0 and _stored("m1") is None


@pytest.mark.parametrize("configured", [None, 1, 5])
def test_s45_configured_max_attempts_is_the_number_of_attempts(
    faults: Faults, retry_sleeps: FakeTime, configured: int | None
) -> None:
    if configured is not None:
        dynorm.configure(max_attempts=configured)
    expected = 3 if configured is None else configured
    attempts = faults.count("PutItem")
    faults.fail("PutItem", "ThrottlingException")
    with pytest.raises(ThrottledError) as info:
        RelMeter(id="m1").save()
    assert len(attempts) == expected
    assert info.value.attempts == expected


# --------------------------------------------------------------------------- scenario 46


@pytest.mark.parametrize("fault", [ReadTimeoutError, ConnectionClosedError])
def test_s46_network_fault_on_a_read_is_retried_transparently(
    faults: Faults, retry_sleeps: FakeTime, fault: Any
) -> None:
    RelMeter.objects.create(id="m1", reading=7)
    attempts = faults.count("GetItem")
    failed: list[int] = []

    def once(request: Any, **_: Any) -> None:
        if not failed:
            failed.append(1)
            raise fault(endpoint_url=request.url)

    faults.on("before-send.dynamodb.GetItem", once)
    assert RelMeter.objects.get(id="m1").reading == 7
    assert len(attempts) == 2


def test_s46_lost_response_on_an_atomic_increment_applies_it_once(faults: Faults) -> None:
    meter = RelMeter.objects.create(id="m1", reading=10)
    applied = faults.lose_response("UpdateItem")
    meter.update(reading=F("reading") + 1)  # retried after the lost response: not applied twice
    assert applied == [200]
    stored = _stored("m1")
    assert stored is not None and stored["reading"] == {"N": "11"}
    assert stored["version"] == {"N": "2"}
    assert meter.reading == 11 and meter.version == 2


def test_s46_lost_response_on_a_bulk_update_is_not_applied_twice(faults: Faults) -> None:
    RelMeter.objects.create(id="m1", reading=10)
    applied = faults.lose_response("UpdateItem")
    try:
        RelMeter.objects.filter(id="m1").update(reading=F("reading") + 1)
    except ServiceError:
        pass  # reporting "maybe applied" would be acceptable; applying twice is not
    assert applied == [200]
    stored = _stored("m1")
    assert stored is not None and stored["reading"] == {"N": "11"}


def test_s46_lost_response_on_a_delete_is_reported_as_success(faults: Faults) -> None:
    meter = RelMeter.objects.create(id="m1")
    applied = faults.lose_response("DeleteItem")
    meter.delete()
    assert applied == [200]
    assert meter.version == 0 and _stored("m1") is None


def test_s46_lost_response_on_a_batch_write_is_harmless(faults: Faults) -> None:
    applied = faults.lose_response("BatchWriteItem")
    objs = [RelMeter(id=f"b{i}", reading=i) for i in range(5)]
    RelMeter.objects.bulk_create(objs, overwrite=True)  # BatchWriteItem: puts are idempotent
    assert applied == [200]
    for i in range(5):
        stored = _stored(f"b{i}")
        assert stored is not None and stored["reading"] == {"N": str(i)}
        assert stored["version"] == {"N": "1"}


def test_s46_write_whose_outcome_is_unknown_says_it_may_have_been_applied(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    meter = RelMeter.objects.create(id="m1", reading=1)

    def timeout(request: Any, **_: Any) -> None:
        raise ReadTimeoutError(endpoint_url=request.url)

    faults.on("before-send.dynamodb.PutItem", timeout)
    meter.reading = 2
    with pytest.raises(ServiceError) as info:
        meter.save()
    message = str(info.value)
    assert "may" in message and "applied" in message
    assert meter.version == 1
    faults.clear()
    meter.save()  # conditional on version 1: safe to retry by hand
    assert meter.version == 2


# --------------------------------------------------------------------------- scenario 47


def test_s47_500_on_a_write_is_retried_then_typed(faults: Faults, retry_sleeps: FakeTime) -> None:
    meter = RelMeter.objects.create(id="m1", reading=1)
    before = raw_get("RELMETER#m1", "RelMeter")
    attempts = faults.count("PutItem")
    faults.fail("PutItem", "InternalServerError", status=500)
    meter.reading = 2
    with pytest.raises(ServiceError) as info:
        meter.save()
    assert info.value.aws_code == "InternalServerError"
    assert len(attempts) >= 2  # botocore retried the 500
    assert meter.version == 1 and raw_get("RELMETER#m1", "RelMeter") == before
    faults.clear()
    meter.save()
    assert meter.version == 2


def test_s47_500_after_the_write_applied_is_not_applied_twice(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    meter = RelMeter.objects.create(id="m1", reading=1)
    applied = faults.lose_response(
        "UpdateItem", answer=lambda request: aws_error("InternalServerError", status=500)
    )
    meter.update(reading=F("reading") + 10)
    assert applied == [200]
    stored = _stored("m1")
    assert (
        stored is not None and stored["reading"] == {"N": "11"} and stored["version"] == {"N": "2"}
    )
    assert meter.reading == 11 and meter.version == 2


def test_s47_500_on_a_write_says_it_may_have_been_applied(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    meter = RelMeter.objects.create(id="m1")
    faults.fail("PutItem", "InternalServerError", status=500)
    meter.reading = 2
    with pytest.raises(ServiceError) as info:
        meter.save()
    message = str(info.value)
    assert "may" in message and "applied" in message


def test_s47_version_conflict_is_still_reported_after_retries(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    """A 500 that was not applied, then a genuine concurrent change: still a conflict."""
    meter = RelMeter.objects.create(id="m1")
    other = RelMeter.objects.get(id="m1")
    other.reading = 99
    other.save()
    faults.fail("PutItem", "InternalServerError", times=1, status=500)
    meter.reading = 1
    with pytest.raises(VersionConflictError):
        meter.save()
    stored = _stored("m1")
    assert stored is not None and stored["reading"] == {"N": "99"}


# --------------------------------------------------------------------------- both paths


@pytest.mark.parametrize("transport", ["boto3", "http"])
def test_each_fault_is_injected_on_whichever_path_sends(
    faults: Faults, retry_sleeps: FakeTime, transport: str
) -> None:
    """The same injectors answer, lose and count the attempts of the boto3 client and of the
    lean transport alike (each request passes through exactly one of them)."""
    dynorm.configure(transport=transport)
    assert (faults.transport is not None) == (transport == "http")
    attempts = faults.count("PutItem")
    applied = faults.lose_response("PutItem")
    throttled = faults.fail("GetItem", "ProvisionedThroughputExceededException", times=2)
    meter = RelMeter.objects.create(id="m1", reading=3)
    assert applied == [200] and len(attempts) == 2 and meter.version == 1  # applied once
    assert RelMeter.objects.get(id="m1").reading == 3
    assert len(throttled) == 3  # two throttled answers, then the real one
    assert len(retry_sleeps.sleeps) == 3
    stored = _stored("m1")
    assert stored is not None and stored["version"] == {"N": "1"}


def test_an_injector_that_never_fired_fails_its_test(dynorm_table: str) -> None:
    """A fault that was never injected would let its test pass without testing anything."""
    box = Faults()
    box.count("DeleteItem")  # an observer may see nothing
    box.fail("DeleteItem", "InternalServerError", status=500)
    RelMeter.objects.create(id="m1")
    box.clear()
    with pytest.raises(AssertionError, match="never fired.*before-send.dynamodb.DeleteItem"):
        box.check_fired()
