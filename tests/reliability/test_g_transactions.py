"""G. Transactions (scenarios 40-43)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import dynorm
from dynorm import Model
from dynorm.exceptions import DynormError, ServiceError, TransactionCanceledError
from tests.reliability.conftest import FakeTime, Offline
from tests.reliability.helpers import Faults, aws_error, loaded, raw_get


class RelLedger(Model):
    id: str
    owner: str = ""
    note: str = ""

    class Meta:
        pk = "RELLEDGER#{id}"


def _canceled(*codes: str) -> Any:
    reasons = [{"Code": c} if c == "None" else {"Code": c, "Message": c} for c in codes]
    return aws_error(
        "TransactionCanceledException",
        f"Transaction cancelled, please refer cancellation reasons for specific reasons {codes}",
        CancellationReasons=reasons,
    )


# --------------------------------------------------------------------------- scenario 40


def test_s40_cancellation_reasons_line_up_and_nothing_changes(dynorm_table: str) -> None:
    current = RelLedger.objects.create(id="l1", owner="ann")
    stale = RelLedger.objects.get(id="l1")
    current.owner = "bob"
    current.save()  # stored version 2; `stale` still holds version 1
    before = raw_get("RELLEDGER#l1", "RelLedger")
    fresh = RelLedger(id="l2", owner="new")
    stale.note = "stale change"
    with pytest.raises(TransactionCanceledError) as info:
        with dynorm.transaction():
            fresh.save()  # operation 0: a put that would succeed
            stale.save()  # operation 1: versioned update at the wrong version
    err = info.value
    assert err.reasons == [None, "ConditionalCheckFailed"]
    reasons = (err.response or {})["CancellationReasons"]
    assert reasons[1]["Item"]["version"] == {"N": "2"}  # the conflicting item, via ALL_OLD
    assert raw_get("RELLEDGER#l2", "RelLedger") is None
    assert raw_get("RELLEDGER#l1", "RelLedger") == before
    assert fresh.version == 0
    assert stale.version == 1 and stale.note == "stale change"


# --------------------------------------------------------------------------- scenario 41


def test_s41_exception_inside_a_transaction_block_sends_nothing(offline: Offline) -> None:
    created = RelLedger(id="a")
    saved = loaded(RelLedger, id="b", owner="ann", version=3)
    doomed = loaded(RelLedger, id="c", version=2)
    with pytest.raises(RuntimeError):
        with dynorm.transaction() as tx:
            created.save()
            saved.owner = "bob"
            saved.save()
            doomed.delete()
            tx.check(saved, owner="ann")
            raise RuntimeError("application error")
    assert offline.calls == []
    assert created.version == 0 and saved.version == 3 and doomed.version == 2


# --------------------------------------------------------------------------- scenario 42


def test_s42_idempotency_token_reused_with_another_payload_is_a_typed_error(
    faults: Faults,
) -> None:
    token = f"rel-{uuid.uuid4().hex[:20]}"

    def pin_token(params: dict[str, Any], **_: Any) -> None:
        params["ClientRequestToken"] = token

    faults.on("before-parameter-build.dynamodb.TransactWriteItems", pin_token)
    attempts = faults.count("TransactWriteItems")
    first = RelLedger(id="a")
    with dynorm.transaction():
        first.save()
    assert first.version == 1
    second = RelLedger(id="b")
    with pytest.raises(DynormError) as info:
        with dynorm.transaction():
            second.save()
    err = info.value
    assert isinstance(err, ServiceError) and not isinstance(err, TransactionCanceledError)
    assert err.aws_code == "IdempotentParameterMismatchException"
    assert len(attempts) == 2  # not retried, by botocore or by dynorm
    assert second.version == 0
    assert raw_get("RELLEDGER#b", "RelLedger") is None


# --------------------------------------------------------------------------- scenario 43


def test_s43_transaction_conflict_is_retried_with_backoff_then_succeeds(
    faults: Faults, dynorm_sleeps: FakeTime
) -> None:
    attempts = faults.count("TransactWriteItems")
    conflicts: list[int] = []

    def conflict_twice(**_: Any) -> Any:
        if len(conflicts) < 2:
            conflicts.append(1)
            return _canceled("None", "TransactionConflict")
        return None

    faults.on("before-send.dynamodb.TransactWriteItems", conflict_twice)
    a, b = RelLedger(id="a"), RelLedger(id="b")
    with dynorm.transaction():
        a.save()
        b.save()
    assert len(attempts) == 3
    assert len(dynorm_sleeps.sleeps) == 2 and all(s >= 0 for s in dynorm_sleeps.sleeps)
    assert a.version == 1 and b.version == 1
    assert raw_get("RELLEDGER#a", "RelLedger") is not None
    assert raw_get("RELLEDGER#b", "RelLedger") is not None


def test_s43_persistent_transaction_conflict_raises_with_conflict_reasons(
    faults: Faults, dynorm_sleeps: FakeTime
) -> None:
    attempts = faults.count("TransactWriteItems")
    faults.on(
        "before-send.dynamodb.TransactWriteItems",
        lambda **_: _canceled("None", "TransactionConflict"),
    )
    a, b = RelLedger(id="a"), RelLedger(id="b")
    with pytest.raises(TransactionCanceledError) as info:
        with dynorm.transaction():
            a.save()
            b.save()
    assert info.value.reasons == [None, "TransactionConflict"]
    assert 1 < len(attempts) <= 10  # retried, but bounded
    assert len(dynorm_sleeps.sleeps) == len(attempts) - 1
    assert a.version == 0 and b.version == 0


def test_s43_condition_failure_in_a_transaction_is_not_retried(
    faults: Faults, dynorm_sleeps: FakeTime
) -> None:
    attempts = faults.count("TransactWriteItems")
    faults.on(
        "before-send.dynamodb.TransactWriteItems",
        lambda **_: _canceled("TransactionConflict", "ConditionalCheckFailed"),
    )
    with pytest.raises(TransactionCanceledError) as info:
        with dynorm.transaction():
            RelLedger(id="a").save()
            RelLedger(id="b").save()
    assert info.value.reasons == ["TransactionConflict", "ConditionalCheckFailed"]
    assert len(attempts) == 1 and dynorm_sleeps.sleeps == []


def test_s43_single_item_transaction_conflict_is_retried_too(
    faults: Faults, dynorm_sleeps: FakeTime, retry_sleeps: FakeTime
) -> None:
    doc = RelLedger.objects.create(id="a", owner="ann")
    attempts = faults.count("PutItem")
    faults.fail("PutItem", "TransactionConflictException", times=2)
    doc.owner = "bob"
    doc.save()  # nothing was applied by the refused attempts: retrying is safe
    assert len(attempts) == 3
    assert doc.version == 2
    stored = raw_get("RELLEDGER#a", "RelLedger")
    assert stored is not None and stored["owner"] == {"S": "bob"}
