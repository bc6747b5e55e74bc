"""Bulk writes never overwrite silently: bulk_create is create-only unless asked, and
QuerySet.update()/delete() change only the items that still match when they are written."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

import dynorm
from dynorm import F, Index, Model
from dynorm.exceptions import ConditionFailedError, ItemExistsError, ServiceError
from dynorm.query import _update_delete
from tests.reliability.conftest import FakeTime
from tests.reliability.helpers import Faults, raw_client, raw_get, table_name


class BulkDoc(Model):
    group: str
    id: str
    status: str = "open"
    text: str = ""
    n: int = 0

    class Meta:
        pk = "BULKGROUP#{group}"
        sk = "DOC#{id}"
        indexes = [Index("by_status", pk="BULKSTATUS#{status}", sk="{id}")]


def _stored(doc_id: str, group: str = "g") -> dict[str, Any] | None:
    return raw_get(f"BULKGROUP#{group}", f"DOC#{doc_id}")


def _docs(*ids: str, **values: Any) -> list[BulkDoc]:
    return [BulkDoc.objects.create(group="g", id=i, **values) for i in ids]


def _before_first(faults: Faults, operation: str, change: Callable[[], None]) -> None:
    """Run `change` (another writer) once, after the items were read and before any
    `operation` reaches DynamoDB (the writes go out in parallel: every one waits for it)."""
    lock = threading.Lock()
    done: list[int] = []

    def handler(**_: Any) -> None:
        with lock:
            if not done:
                change()
                done.append(1)

    faults.on(f"before-send.dynamodb.{operation}", handler)


def _other_writer(doc_id: str, **values: dict[str, str]) -> Callable[[], None]:
    """Another process sets attributes of a stored item (and bumps its version)."""

    def write() -> None:
        names = {f"#a{i}": name for i, name in enumerate(values)}
        sets = ", ".join(f"#a{i} = :v{i}" for i in range(len(values)))
        raw_client().update_item(
            TableName=table_name(),
            Key={"pk": {"S": "BULKGROUP#g"}, "sk": {"S": f"DOC#{doc_id}"}},
            UpdateExpression=f"SET {sets}, version = version + :one",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={
                **{f":v{i}": v for i, v in enumerate(values.values())},
                ":one": {"N": "1"},
            },
        )

    return write


# --------------------------------------------------------------------------- bulk_create


def test_bulk_create_never_replaces_a_stored_item(dynorm_table: str) -> None:
    stored = BulkDoc.objects.create(group="g", id="x", text="original")
    stored.save()  # version 2
    before = _stored("x")
    forged = BulkDoc.model_validate({"group": "g", "id": "x", "text": "forged", "version": 2})
    fresh = BulkDoc(group="g", id="y", text="new")
    with pytest.raises(ItemExistsError) as info:
        BulkDoc.objects.bulk_create([forged, fresh])
    err = info.value
    assert isinstance(err, ConditionFailedError)
    assert err.model == "BulkDoc" and err.objects == [forged]
    assert err.keys == [{"pk": "BULKGROUP#g", "sk": "DOC#x"}]
    assert "forged" not in str(err) and "BULKGROUP#g" not in str(err) and "DOC#x" not in str(err)
    assert _stored("x") == before  # untouched: version 2, "original"
    assert forged.version == 0
    assert fresh.version == 1 and _stored("y") is not None  # the others were created


def test_bulk_create_sends_one_conditional_put_per_object(
    dynorm_table: str, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    made = BulkDoc.objects.bulk_create([BulkDoc(group="g", id=f"{i:02d}") for i in range(30)])
    puts = [params for op, params in sent if op == "PutItem"]
    assert len(puts) == 30 and not [op for op, _ in sent if op == "BatchWriteItem"]
    for params in puts:
        (name,) = params["ExpressionAttributeNames"].values()
        assert name == "pk" and params["ConditionExpression"].startswith("attribute_not_exists(")
    assert all(o.version == 1 for o in made)
    assert all(BulkDoc.objects.get(group="g", id=o.id) == o for o in made)


def test_bulk_create_with_overwrite_replaces_stored_items_in_batches(
    dynorm_table: str, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    _docs("x", text="original")
    made = BulkDoc.objects.bulk_create(
        [BulkDoc(group="g", id="x", text="replaced"), BulkDoc(group="g", id="y")], overwrite=True
    )
    assert [op for op, _ in sent if op in ("PutItem", "BatchWriteItem")][-1:] == ["BatchWriteItem"]
    stored = _stored("x")
    assert stored is not None and stored["text"] == {"S": "replaced"}
    assert stored["version"] == {"N": "1"} and made[0].version == 1


def test_bulk_create_in_a_transaction_never_replaces_a_stored_item(dynorm_table: str) -> None:
    _docs("x", text="original")
    before = _stored("x")
    with pytest.raises(dynorm.TransactionCanceledError):
        with dynorm.transaction():
            BulkDoc.objects.bulk_create([BulkDoc(group="g", id="y"), BulkDoc(group="g", id="x")])
    assert _stored("x") == before and _stored("y") is None


def test_bulk_create_retried_after_lost_responses_creates_each_object_once(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    objs = [BulkDoc(group="g", id=f"{i:02d}", n=i) for i in range(6)]
    lost: list[str] = []
    lock = threading.Lock()

    def lose_every_response_of_odd_ids(request: Any, **_: Any) -> None:
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        if '"DOC#01"' in body or '"DOC#03"' in body:
            faults.send(request)
            with lock:
                lost.append(body)
            raise ReadTimeoutError(endpoint_url=request.url)
        return None

    faults.on("before-send.dynamodb.PutItem", lose_every_response_of_odd_ids)
    with pytest.raises(ServiceError) as info:
        BulkDoc.objects.bulk_create(objs)
    assert info.value.maybe_applied
    assert [o.version for o in objs] == [1, 0, 1, 0, 1, 1]  # 01 and 03: outcome unknown
    assert lost
    faults.clear()
    left = [o for o in objs if o.version == 0]
    BulkDoc.objects.bulk_create(left)  # the retry: the stored creates are recognised
    assert all(o.version == 1 for o in objs)
    for o in objs:
        stored = _stored(o.id)
        assert stored is not None and stored["version"] == {"N": "1"}
        assert stored["n"] == {"N": str(o.n)}


# --------------------------------------------------------------------------- QuerySet.delete()


def test_delete_only_deletes_items_that_still_match_when_written(faults: Faults) -> None:
    _docs("a", "b", "c")
    _before_first(faults, "DeleteItem", _other_writer("b", status={"S": "closed"}))
    assert BulkDoc.objects.filter(group="g", status="open").delete() == 2  # b no longer matches
    assert _stored("a") is None and _stored("c") is None
    stored = _stored("b")
    assert stored is not None and stored["status"] == {"S": "closed"}


def test_delete_deletes_an_item_changed_since_read_that_still_matches(faults: Faults) -> None:
    _docs("a", "b")
    _before_first(faults, "DeleteItem", _other_writer("b", n={"N": "7"}))
    assert BulkDoc.objects.filter(group="g", status="open").delete() == 2
    assert _stored("a") is None and _stored("b") is None


def test_delete_through_an_index_rechecks_the_index_key_when_written(faults: Faults) -> None:
    _docs("a", "b")
    index_key = BulkDoc._meta.index_keys({"group": "g", "id": "a", "status": "closed"})
    _before_first(
        faults,
        "DeleteItem",
        _other_writer(
            "a", status={"S": "closed"}, **{k: {"S": v} for k, v in index_key.items() if v}
        ),
    )
    qs = BulkDoc.objects.using_gsi("by_status").filter(status="open")
    assert qs.delete() == 1
    assert _stored("a") is not None and _stored("b") is None


def test_delete_counts_an_item_whose_delete_response_was_lost_once(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    _docs("a")
    applied = faults.lose_response("DeleteItem")
    assert BulkDoc.objects.filter(group="g").delete() == 1
    assert applied == [200] and _stored("a") is None


def test_delete_does_not_count_an_item_deleted_by_someone_else(faults: Faults) -> None:
    _docs("a", "b")

    def delete_b() -> None:
        raw_client().delete_item(
            TableName=table_name(), Key={"pk": {"S": "BULKGROUP#g"}, "sk": {"S": "DOC#b"}}
        )

    _before_first(faults, "DeleteItem", delete_b)
    assert BulkDoc.objects.filter(group="g").delete() == 1


# --------------------------------------------------------------------------- QuerySet.update()


def test_update_skips_an_item_that_stopped_matching_and_does_not_count_it(
    faults: Faults,
) -> None:
    _docs("a", "b", "c")
    _before_first(faults, "UpdateItem", _other_writer("b", status={"S": "closed"}))
    assert BulkDoc.objects.filter(group="g", status="open").update(n=F("n") + 1) == 2
    stored = _stored("b")
    assert stored is not None and stored["n"] == {"N": "0"} and stored["status"] == {"S": "closed"}
    assert all(_stored(i)["n"] == {"N": "1"} for i in "ac")  # type: ignore[index]


def test_update_applies_once_on_top_of_a_change_made_since_read(faults: Faults) -> None:
    _docs("a", "b")
    _before_first(faults, "UpdateItem", _other_writer("b", n={"N": "7"}))
    assert BulkDoc.objects.filter(group="g", status="open").update(n=F("n") + 1) == 2
    assert _stored("b")["n"] == {"N": "8"}  # type: ignore[index]
    assert _stored("a")["n"] == {"N": "1"}  # type: ignore[index]


def test_an_update_of_many_in_a_transaction_joins_whole_or_not_at_all(
    dynorm_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A QuerySet.update() that fails while building its writes adds none of them: catching
    the error inside the block cannot commit a part of it."""
    _docs("a", "b")
    c = BulkDoc.objects.create(group="h", id="c")
    original = _update_delete._update_params
    built: list[int] = []

    def fail_on_the_second(qs: Any, item: Any, values: Any) -> Any:
        built.append(1)
        if len(built) == 2:
            raise RuntimeError("the second item cannot be written")
        return original(qs, item, values)

    monkeypatch.setattr(_update_delete, "_update_params", fail_on_the_second)
    with dynorm.transaction():
        with pytest.raises(RuntimeError):
            BulkDoc.objects.filter(group="g").update(text="changed")
        c.update(text="kept")
    assert len(built) == 2
    stored_a = _stored("a")
    assert stored_a is not None and stored_a["text"] == {"S": ""}  # a's update was not kept
    stored_c = _stored("c", group="h")
    assert stored_c is not None and stored_c["text"] == {"S": "kept"}
