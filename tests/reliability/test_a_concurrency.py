"""A. Concurrency and optimistic locking (scenarios 1-5)."""

from __future__ import annotations

import re
import threading
from decimal import Decimal
from typing import Any

import pytest

from dynorm import Model
from dynorm.exceptions import (
    ConditionFailedError,
    ServiceError,
    VersionConflictError,
)
from tests.reliability.conftest import Offline
from tests.reliability.helpers import loaded, raw_client, raw_get, table_name, without_token


class RelCounter(Model):
    name: str
    value: int = 0

    class Meta:
        pk = "RELCOUNTER#{name}"


class RelAccount(Model):
    tenant: str
    id: str
    owner: str
    balance: Decimal = Decimal(0)
    note: str | None = None

    class Meta:
        pk = "RELTENANT#{tenant}"
        sk = "RELACCOUNT#{id}"


THREADS = 16
INCREMENTS = 25


def _run_threads(target: Any, count: int) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            target()
        except BaseException as exc:  # surfaced by the caller
            errors.append(exc)

    threads = [threading.Thread(target=guarded) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    return errors


def test_s01_lost_update_sixteen_threads_reach_exactly_400(dynorm_table: str) -> None:
    RelCounter.objects.create(name="hits")
    lock = threading.Lock()
    written: list[tuple[int, int]] = []  # (version, value) of every save that succeeded
    conflicts = [0]
    start = threading.Barrier(THREADS)

    def worker() -> None:
        start.wait()
        for _ in range(INCREMENTS):
            while True:
                counter = RelCounter.objects.get(name="hits")
                counter.value += 1
                try:
                    counter.save()
                except VersionConflictError:
                    with lock:
                        conflicts[0] += 1
                    continue
                with lock:
                    written.append((counter.version, counter.value))
                break

    assert _run_threads(worker, THREADS) == []
    final = RelCounter.objects.consistent().get(name="hits")
    total = THREADS * INCREMENTS
    assert final.value == total
    assert final.version == total + 1
    # Every version 2..401 was written exactly once, each by a save that saw its predecessor.
    assert sorted(v for v, _ in written) == list(range(2, total + 2))
    assert all(value == version - 1 for version, value in written)
    assert conflicts[0] > 0, "the threads never collided; the test proved nothing"


def test_s01_control_arm_naive_unconditional_writes_lose_updates(dynorm_table: str) -> None:
    """The same read-modify-write without a version condition (raw boto3) loses updates."""
    RelCounter.objects.create(name="naive")
    client = raw_client()
    table = table_name()
    key = {"pk": {"S": "RELCOUNTER#naive"}, "sk": {"S": "RelCounter"}}
    lockstep = threading.Barrier(THREADS)

    def worker() -> None:
        for _ in range(INCREMENTS):
            item = client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
            lockstep.wait()  # every thread has read before anyone writes: the classic race
            item["value"] = {"N": str(int(item["value"]["N"]) + 1)}
            client.put_item(TableName=table, Item=item)  # no condition: last writer wins
            lockstep.wait()

    assert _run_threads(worker, THREADS) == []
    final = RelCounter.objects.consistent().get(name="naive")
    # 400 increments "succeeded", yet each round of 16 concurrent writes kept only one.
    assert final.value == INCREMENTS
    assert final.value < THREADS * INCREMENTS


def _stale_pair() -> tuple[RelAccount, RelAccount]:
    account = RelAccount.objects.create(tenant="t1", id="a1", owner="ann")
    account.save()
    account.save()
    first = RelAccount.objects.get(tenant="t1", id="a1")
    second = RelAccount.objects.get(tenant="t1", id="a1")
    assert first.version == second.version == 3
    return first, second


def test_s02_stale_save_raises_version_conflict_and_keeps_local_state(dynorm_table: str) -> None:
    first, second = _stale_pair()
    first.owner = "bob"
    first.save()
    assert first.version == 4
    before = raw_get("RELTENANT#t1", "RELACCOUNT#a1")

    second.owner = "cat"
    second.balance = Decimal("5.25")
    with pytest.raises(VersionConflictError) as info:
        second.save()
    err = info.value
    message = str(err)
    assert "RelAccount" in message
    assert "tenant" in message and re.search(r"\bid\b", message)
    assert re.search(r"\b3\b", message), message
    assert err.model == "RelAccount"
    assert err.expected_version == 3
    assert err.current_version == 4  # from ReturnValuesOnConditionCheckFailure=ALL_OLD
    # The stale object is untouched: still v3, and its unsaved changes are still there.
    assert second.version == 3
    assert second.owner == "cat" and second.balance == Decimal("5.25")
    assert raw_get("RELTENANT#t1", "RELACCOUNT#a1") == before
    # Reloading and re-applying the change then works.
    second.refresh_from_db()
    second.owner = "cat"
    second.save()
    assert second.version == 5


def test_s02_stale_partial_save_also_conflicts(dynorm_table: str) -> None:
    first, second = _stale_pair()
    first.note = "first"
    first.save(update_fields=["note"])
    second.owner = "zed"
    with pytest.raises(VersionConflictError) as info:
        second.save(update_fields=["owner"])
    assert info.value.expected_version == 3 and info.value.current_version == 4
    assert second.version == 3 and second.owner == "zed"
    stored = RelAccount.objects.consistent().get(tenant="t1", id="a1")
    assert stored.owner == "ann" and stored.note == "first" and stored.version == 4


def test_s03_stale_delete_raises_and_item_survives(dynorm_table: str) -> None:
    first, second = _stale_pair()
    first.owner = "bob"
    first.save()
    before = raw_get("RELTENANT#t1", "RELACCOUNT#a1")
    with pytest.raises(VersionConflictError) as info:
        second.delete()
    assert info.value.expected_version == 3 and info.value.current_version == 4
    assert second.version == 3
    assert raw_get("RELTENANT#t1", "RELACCOUNT#a1") == before
    # The current copy can delete it.
    first.delete()
    assert raw_get("RELTENANT#t1", "RELACCOUNT#a1") is None


def test_s04_create_if_absent_refuses_existing_key(
    dynorm_table: str, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    RelAccount.objects.create(tenant="t1", id="a1", owner="ann", balance=Decimal(7))
    before = raw_get("RELTENANT#t1", "RELACCOUNT#a1")
    sent.clear()
    twin = RelAccount(tenant="t1", id="a1", owner="mallory")
    with pytest.raises(ConditionFailedError) as info:
        RelAccount.objects.create(tenant="t1", id="a1", owner="mallory")
    assert not isinstance(info.value, VersionConflictError)
    with pytest.raises(ConditionFailedError):
        twin.save()
    assert twin.version == 0
    assert raw_get("RELTENANT#t1", "RELACCOUNT#a1") == before
    puts = [params for op, params in sent if op == "PutItem"]
    assert len(puts) == 2
    for params in puts:
        condition = params["ConditionExpression"]
        match = re.fullmatch(r"attribute_not_exists\((#\w+)\)", condition)
        assert match, condition
        assert params["ExpressionAttributeNames"][match.group(1)] == "pk"


def _version_token(params: dict[str, Any]) -> str:
    names = params["ExpressionAttributeNames"]
    return next(token for token, name in names.items() if name == "version")


@pytest.mark.parametrize("how", ["update", "update_fields"])
def test_s05_partial_update_is_a_conditional_update_expression(offline: Offline, how: str) -> None:
    account = loaded(RelAccount, tenant="t1", id="a1", owner="ann", version=3)
    account.owner = "bob"
    if how == "update":
        account.update(owner="bob")
    else:
        account.save(update_fields=["owner"])
    assert offline.operations == ["UpdateItem"]  # never a whole-item PutItem
    params = offline.calls[0][1]
    values = params["ExpressionAttributeValues"]
    v = _version_token(params)
    condition = re.fullmatch(rf"{v} = (:\w+)", params["ConditionExpression"])
    assert condition and values[condition.group(1)] == {"N": "3"}
    expression = params["UpdateExpression"]
    assert expression.startswith("SET ")
    bump = re.search(rf"{v} = (:\w+)", expression)
    assert bump and values[bump.group(1)] == {"N": "4"}
    assert account.version == 4


def test_s05_local_version_rises_only_after_success(offline: Offline) -> None:
    account = loaded(RelAccount, tenant="t1", id="a1", owner="ann", version=3)

    def refuse(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        raise ServiceError("injected: DynamoDB answered 500")

    offline.responder = refuse
    with pytest.raises(ServiceError):
        account.update(owner="bob")
    with pytest.raises(ServiceError):
        account.save(update_fields=["owner"])
    assert account.version == 3
    offline.responder = None
    account.update(owner="bob")
    assert account.version == 4 and account.owner == "bob"


def test_s05_partial_update_on_dynamodb_local(
    dynorm_table: str, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    account = RelAccount.objects.create(tenant="t1", id="a1", owner="ann", note="keep")
    other = RelAccount.objects.get(tenant="t1", id="a1")
    sent.clear()
    account.update(owner="bob")
    assert [op for op, _ in sent] == ["UpdateItem"]
    assert account.version == 2 and account.owner == "bob"
    stored = without_token(raw_get("RELTENANT#t1", "RELACCOUNT#a1"))
    assert stored is not None
    assert stored["owner"] == {"S": "bob"} and stored["note"] == {"S": "keep"}
    assert stored["version"] == {"N": "2"}
    with pytest.raises(VersionConflictError):
        other.update(owner="stale")
    assert other.version == 1
