"""Versioned models, transactions and singletons on DynamoDB Local."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest

import dynorm
from dynorm import Index, SingletonModel, VersionedModel, _config, fields
from dynorm.exceptions import (
    ConditionFailedError,
    QueryError,
    TransactionCanceledError,
    VersionConflictError,
)
from tests.models import Counter, Customer, Order


class Page(VersionedModel):
    id: str = fields.ULID()
    title: str
    body: str
    status: str = "draft"

    class Meta:
        pk = "PAGE#{id}"
        indexes = [Index("pages_by_status", pk="PAGESTATUS#{status}")]


class Note(VersionedModel):
    id: str = fields.ULID()
    text: str

    class Meta:
        pk = "NOTE#{id}"
        max_versions = 3
        compress = False


class SiteSettings(SingletonModel):
    maintenance: bool = False
    banner: str = ""


def raw_partition(pk: str) -> list[dict[str, Any]]:
    conn = _config.get_connection()
    response = conn.client.query(
        TableName=conn.table_name,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": pk}},
        ConsistentRead=True,
    )
    items: list[dict[str, Any]] = response["Items"]
    return items


def test_twelve_saves_give_history_in_numeric_order(dynorm_table: str) -> None:
    p = Page.objects.create(title="Hello", body="v1")
    for n in range(2, 13):
        p.body = f"v{n}"
        p.save()
    assert p.version == 12
    history = list(p.history())
    assert [h.version for h in history] == list(range(12, 0, -1))
    assert [h.body for h in history] == [f"v{n}" for n in range(12, 0, -1)]
    assert p.history().count() == 12
    assert Page.objects.get(id=p.id, version=1).body == "v1"
    assert Page.objects.get(id=p.id).body == "v12"


def test_revert_and_diff(dynorm_table: str) -> None:
    p = Page.objects.create(title="Hello", body="one")
    p.body = "two"
    p.title = "Hi"
    p.save()
    assert p.diff(1) == {"body": ("two", "one"), "title": ("Hi", "Hello")}
    p.revert(1)
    assert p.version == 3 and p.body == "one" and p.title == "Hello"
    assert Page.objects.get(id=p.id).body == "one"
    assert [h.body for h in p.history()] == ["one", "two", "one"]


def test_pruning_keeps_exactly_max_versions(dynorm_table: str) -> None:
    n = Note.objects.create(text="1")
    for i in range(2, 8):
        n.text = str(i)
        n.save()
    assert [h.version for h in n.history()] == [7, 6, 5]
    with pytest.raises(Note.DoesNotExist):
        Note.objects.get(id=n.id, version=4)
    stored = [i for i in raw_partition(f"NOTE#{n.id}") if i["sk"]["S"].startswith("_history#")]
    assert len(stored) == 3 and all("M" in i["payload"] for i in stored)


def test_history_is_compressed_in_storage_and_transparent(dynorm_table: str) -> None:
    p = Page.objects.create(title="T", body="x" * 5000)
    items = raw_partition(f"PAGE#{p.id}")
    history = [i for i in items if i["sk"]["S"].startswith("_history#")]
    assert len(history) == 1
    payload = history[0]["payload"]["B"]
    assert payload[:2] == b"\x1f\x8b" and len(payload) < 1000
    assert next(iter(p.history())).body == "x" * 5000


def test_only_current_version_in_listings_and_gsis(dynorm_table: str) -> None:
    p = Page.objects.create(title="T", body="1", status="live")
    p.body = "2"
    p.save()
    live = list(Page.objects.using_gsi("pages_by_status").filter(status="live"))
    assert [(x.id, x.version) for x in live] == [(p.id, 2)]
    assert [x.version for x in Page.objects.filter(id=p.id)] == [2]
    history = [i for i in raw_partition(f"PAGE#{p.id}") if i["sk"]["S"].startswith("_history#")]
    assert all(not k.startswith("gsi") for i in history for k in i)


def test_concurrent_stale_saves_have_exactly_one_winner(dynorm_table: str) -> None:
    p = Page.objects.create(title="T", body="base")
    copies = [Page.objects.get(id=p.id) for _ in range(6)]
    results: list[str] = []
    barrier = threading.Barrier(6)

    def save(copy: Page, n: int) -> None:
        copy.body = f"writer {n}"
        barrier.wait()
        try:
            copy.save()
            results.append("won")
        except VersionConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=save, args=(c, i)) for i, c in enumerate(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 5 + ["won"]
    current = Page.objects.get(id=p.id)
    assert current.version == 2
    assert [h.version for h in current.history()] == [2, 1]
    assert next(iter(current.history())).body == current.body
    assert sum(c.version == 2 for c in copies) == 1


def test_delete_removes_item_and_all_history(dynorm_table: str) -> None:
    p = Page.objects.create(title="T", body="1")
    for i in range(3):
        p.body = str(i)
        p.save()
    p.delete()
    assert raw_partition(f"PAGE#{p.id}") == []


def test_versioned_refusals(dynorm_table: str) -> None:
    p = Page.objects.create(title="T", body="1")
    with pytest.raises(QueryError):
        p.save(update_fields=["body"])
    with pytest.raises(QueryError):
        p.update(body="x")
    with pytest.raises(QueryError):
        Page.objects.filter(id=p.id).update(body="x")
    with pytest.raises(QueryError):
        p.history().filter(body="1")


def test_transaction_commits_everything_at_once(dynorm_table: str) -> None:
    c = Customer.objects.create(email="a@example.com", name="Ada")
    o = Order.objects.create(customer_id=c.id, total=Decimal(10))
    with dynorm.transaction() as tx:
        o.status = "paid"
        o.save()
        counter = Counter(name="payments")
        counter.save()
        tx.check(c, version=c.version)
        assert o.version == 1 and counter.version == 0  # nothing applied yet
    assert o.version == 2 and counter.version == 1
    assert Order.objects.get(customer_id=c.id, id=o.id).status == "paid"
    assert Counter.objects.get(name="payments").version == 1


def test_cancelled_transaction_reports_aligned_reasons_and_changes_nothing(
    dynorm_table: str,
) -> None:
    c = Customer.objects.create(email="a@example.com", name="Ada")
    o = Order.objects.create(customer_id=c.id, total=Decimal(10))
    stale = Order.objects.get(customer_id=c.id, id=o.id)
    o.save()
    fresh = Counter(name="x")
    with pytest.raises(TransactionCanceledError) as info:
        with dynorm.transaction() as tx:
            fresh.save()
            stale.status = "paid"
            stale.save()
            tx.check(c, version=c.version)
    assert info.value.reasons == [None, "ConditionalCheckFailed", None]
    assert fresh.version == 0 and stale.version == 1
    with pytest.raises(Counter.DoesNotExist):
        Counter.objects.get(name="x")


def test_exception_inside_block_sends_nothing(dynorm_table: str) -> None:
    with pytest.raises(RuntimeError):
        with dynorm.transaction():
            Counter(name="never").save()
            raise RuntimeError("boom")
    with pytest.raises(Counter.DoesNotExist):
        Counter.objects.get(name="never")


def test_versioned_save_inside_transaction(dynorm_table: str) -> None:
    p = Page.objects.create(title="T", body="1")
    with dynorm.transaction():
        p.body = "2"
        p.save()
        Counter(name="edits").save()
    assert p.version == 2 and [h.version for h in p.history()] == [2, 1]


def test_transaction_limits_checked_before_sending(dynorm_table: str) -> None:
    with pytest.raises(QueryError):
        with dynorm.transaction():
            for i in range(101):
                Counter(name=f"c{i}").save()
    assert Counter.objects.bulk_get([{"name": "c0"}]) == [None]


def test_transaction_get(dynorm_table: str) -> None:
    c = Customer.objects.create(email="a@example.com", name="Ada")
    got = dynorm.transaction_get([(Customer, {"id": c.id}), (Counter, {"name": "missing"})])
    assert got == [c, None]


def test_singleton_load_and_locking(dynorm_table: str) -> None:
    s = SiteSettings.load()
    assert s.version == 0 and s.maintenance is False
    s.maintenance = True
    s.save()
    again = SiteSettings.load()
    assert again.maintenance is True and again.version == 1
    stale = SiteSettings.load()
    again.banner = "hi"
    again.save()
    stale.banner = "other"
    with pytest.raises(VersionConflictError):
        stale.save()
    dup = SiteSettings(maintenance=False)
    with pytest.raises(ConditionFailedError):
        dup.save()


def test_delete_is_one_transaction_and_a_stale_delete_keeps_everything(
    dynorm_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dynorm._connection import Connection

    p = Page.objects.create(title="T", body="1")
    p.body = "2"
    p.save()
    stale = Page.objects.get(id=p.id)
    p.body = "3"
    p.save()
    before = raw_partition(f"PAGE#{p.id}")
    with pytest.raises(VersionConflictError):
        stale.delete()
    assert raw_partition(f"PAGE#{p.id}") == before  # nothing of the history went either

    sent: list[str] = []
    original = Connection.send

    def spy(self: Connection, operation: str, params: Any) -> dict[str, Any]:
        sent.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(Connection, "send", spy)
    p.delete()
    # A consistent Query of the history keys, then one transaction: with the version
    # condition, no history item the Query missed can exist, so nothing is re-read.
    assert sent == ["Query", "TransactWriteItems"]
    assert raw_partition(f"PAGE#{p.id}") == []


def test_delete_of_a_history_longer_than_a_transaction(dynorm_table: str) -> None:
    p = Note.objects.create(text="0")  # max_versions = 3 keeps history short: use Page
    page = Page.objects.create(title="T", body="0")
    for n in range(1, 101):
        page.body = str(n)
        page.save()
    assert page.history().count() == 101
    page.delete()
    assert raw_partition(f"PAGE#{page.id}") == []
    p.delete()
    assert raw_partition(f"NOTE#{p.id}") == []


def test_queryset_writes_join_a_transaction(dynorm_table: str) -> None:
    c = Customer.objects.create(email="a@example.com", name="Ada")
    a = Order.objects.create(customer_id=c.id, total=Decimal(1))
    b = Order.objects.create(customer_id=c.id, total=Decimal(2))
    new = [Order(customer_id=c.id, total=Decimal(9)) for _ in range(2)]
    with dynorm.transaction():
        assert Order.objects.filter(customer_id=c.id, total__lt=2).update(status="paid") == 1
        assert Order.objects.filter(customer_id=c.id, total=2).delete() == 1
        Order.objects.bulk_create(new)
        # nothing is sent before the block exits
        assert Order.objects.get(customer_id=c.id, id=a.id).status == "open"
        assert Order.objects.filter(customer_id=c.id).count() == 2
        assert all(o.version == 0 for o in new)
    assert Order.objects.get(customer_id=c.id, id=a.id).status == "paid"
    with pytest.raises(Order.DoesNotExist):
        Order.objects.get(customer_id=c.id, id=b.id)
    assert all(o.version == 1 for o in new)
    assert Order.objects.filter(customer_id=c.id).count() == 3


def test_bulk_create_in_a_transaction_cannot_overwrite(dynorm_table: str) -> None:
    existing = Counter.objects.create(name="taken", value=5)
    with pytest.raises(TransactionCanceledError) as info:
        with dynorm.transaction():
            Counter.objects.bulk_create([Counter(name="free"), Counter(name="taken")])
    assert info.value.reasons == [None, "ConditionalCheckFailed"]
    assert Counter.objects.get(name="taken").value == existing.value
    with pytest.raises(Counter.DoesNotExist):
        Counter.objects.get(name="free")


def test_versioned_queryset_delete_joins_a_transaction(dynorm_table: str) -> None:
    p = Page.objects.create(title="T", body="1")
    p.body = "2"
    p.save()
    with pytest.raises(RuntimeError):
        with dynorm.transaction():
            assert Page.objects.filter(id=p.id).delete() == 1
            raise RuntimeError("abort")
    assert p.history().count() == 2  # nothing was sent
    with dynorm.transaction():
        Page.objects.filter(id=p.id).delete()
    assert raw_partition(f"PAGE#{p.id}") == []
