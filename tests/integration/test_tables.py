"""Tables instead of process globals: `dynorm.Table`, `Meta.table`, `qs.using()`,
`dynorm.using()`, and `dynorm.capture()`, on DynamoDB Local."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest

import dynorm
from dynorm import Model, Table
from dynorm._config import connection_for
from tests.models import Order

pytestmark = pytest.mark.usefixtures("dynorm_table")


archive = Table("archive-placeholder")


class Archived(Model):
    id: str
    note: str = ""

    class Meta:
        pk = "ARCHIVED#{id}"
        table = archive


def test_using_sends_a_blocks_requests_to_its_table(dynorm_table: str, second_table: Table) -> None:
    with dynorm.using(second_table):
        Order.objects.create(customer_id="c1", id="o1", total=Decimal(1))
        assert Order.objects.filter(customer_id="c1").count() == 1
    assert Order.objects.filter(customer_id="c1").count() == 0
    with dynorm.using(second_table.name):  # a name works too
        assert Order.objects.get(customer_id="c1", id="o1").total == 1


def test_qs_using_reads_another_table(second_table: Table) -> None:
    with dynorm.using(second_table):
        Order.objects.create(customer_id="c1", id="o1", total=Decimal(1))
    assert list(Order.objects.filter(customer_id="c1")) == []
    assert [o.id for o in Order.objects.using(second_table).filter(customer_id="c1")] == ["o1"]
    assert Order.objects.using(second_table).filter(customer_id="c1").count() == 1
    assert Order.objects.using(second_table).get(customer_id="c1", id="o1").id == "o1"


def test_meta_table_pins_a_model_to_its_table(
    dynorm_table: str, second_table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Archived._meta, "table", second_table)
    assert connection_for(Archived).table_name == second_table.name
    Archived.objects.create(id="a1", note="kept")
    with dynorm.using(dynorm_table):  # a using() block does not move a pinned model
        assert Archived.objects.get(id="a1").note == "kept"
    assert Archived.objects.using(dynorm_table).filter(id="a1").count() == 0


def test_two_tables_two_threads_no_cross_talk(dynorm_table: str, second_table: Table) -> None:
    """Each thread writes and reads its own table while the other does the same; configure()
    in a third thread meanwhile never moves either."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def worker(table: Table | str, customer: str) -> None:
        try:
            barrier.wait()
            with dynorm.using(table):
                for i in range(20):
                    Order.objects.create(customer_id=customer, id=f"o{i}", total=Decimal(i))
                    found = Order.objects.filter(customer_id=customer).count()
                    assert found == i + 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def reconfigure() -> None:
        barrier.wait()
        for _ in range(20):
            dynorm.configure(table_name=f"unrelated-{uuid.uuid4().hex[:8]}")
        dynorm.configure(table_name=dynorm_table)

    threads = [
        threading.Thread(target=worker, args=(dynorm_table, "a")),
        threading.Thread(target=worker, args=(second_table, "b")),
        threading.Thread(target=reconfigure),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with dynorm.using(dynorm_table):
        assert Order.objects.filter(customer_id="a").count() == 20
        assert Order.objects.filter(customer_id="b").count() == 0
    with dynorm.using(second_table):
        assert Order.objects.filter(customer_id="b").count() == 20
        assert Order.objects.filter(customer_id="a").count() == 0


def test_capture_records_every_request_and_sends_none(dynorm_table: str) -> None:
    o = Order.objects.create(customer_id="c1", id="o1", total=Decimal(1))
    before = o.model_dump()
    with dynorm.capture() as requests:
        o.status = "paid"
        o.save()
        o.delete()
        Order.objects.filter(customer_id="c1").update(status="paid")
        assert Order.objects.filter(customer_id="c1").count() == 0  # reads find nothing
    ops = [r.operation for r in requests]
    assert ops[:2] == ["PutItem", "DeleteItem"]
    assert "Query" in ops
    assert requests[0].params["TableName"] == dynorm_table
    assert requests[0].params["Item"]["status"] == {"S": "paid"}
    stored = Order.objects.get(customer_id="c1", id="o1")
    assert stored.status == "open" and stored.version == 1  # nothing was sent
    assert o.version == before["version"]  # and the instance did not change


def test_capture_shows_what_explain_shows(dynorm_table: str) -> None:
    qs = Order.objects.filter(customer_id="c1", total__gte=5)
    (explained,) = qs.explain()
    with dynorm.capture() as requests:
        list(qs)
    assert requests[0].operation == explained.operation
    sent = {k: v for k, v in requests[0].params.items() if k != "TableName"}
    assert sent == {k: v for k, v in explained.params.items() if k != "TableName"}


def test_capture_records_a_transaction_as_one_request_and_changes_no_instance(
    dynorm_table: str,
) -> None:
    a = Order.objects.create(customer_id="c1", id="a", total=Decimal(1))
    b = Order.objects.create(customer_id="c1", id="b", total=Decimal(2))
    with dynorm.capture() as requests:
        with dynorm.transaction():
            a.status = "paid"
            a.save()
            b.delete()
    assert [r.operation for r in requests] == ["TransactWriteItems"]
    assert len(requests[0].params["TransactItems"]) == 2
    assert (a.version, b.version) == (1, 1)
    assert Order.objects.get(customer_id="c1", id="b").version == 1
