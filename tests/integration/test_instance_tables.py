"""An instance writes back to the table it was read from or saved to.

Whatever `using()` block is active at the write, and whatever the other table holds under the
same key: a tenant's object never lands in (or deletes, or reads the history of) another
tenant's table. Tested with an item under the same key at the same version in the other
table, so a write sent to the wrong table would succeed there instead of failing.
"""

from __future__ import annotations

import contextlib
import copy
import pickle
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import dynorm
from dynorm import Model, Table, VersionedModel
from dynorm._config import connection_for
from dynorm.exceptions import VersionConflictError

pytestmark = pytest.mark.usefixtures("dynorm_table")


class TenantTicket(Model):
    tenant: str
    id: str
    title: str = ""
    n: int = 0

    class Meta:
        pk = "TENANT#{tenant}"
        sk = "TICKET#{id}"


class TenantPage(VersionedModel):
    id: str
    body: str = ""

    class Meta:
        pk = "PAGE#{id}"


def _raw(table: str, pk: str, sk: str) -> dict[str, Any] | None:
    conn = connection_for(None, table)
    item: dict[str, Any] | None = conn.send_raw(
        "GetItem", {"TableName": table, "Key": {"pk": {"S": pk}, "sk": {"S": sk}}}
    ).get("Item")
    return item


def _twins(default: str, other: Table) -> None:
    """The same ticket (same key, same version, different titles) in both tables."""
    TenantTicket.objects.create(tenant="t", id="1", title="A")
    TenantTicket.objects.using(other).create(tenant="t", id="1", title="B")


def _title(table: str) -> str | None:
    item = _raw(table, "TENANT#t", "TICKET#1")
    return None if item is None else str(item["title"]["S"])


def test_an_instance_read_through_qs_using_saves_updates_and_deletes_there(
    dynorm_table: str, second_table: Table
) -> None:
    _twins(dynorm_table, second_table)
    b = TenantTicket.objects.using(second_table).get(tenant="t", id="1")
    b.title = "B2"
    b.save()
    assert (_title(second_table.name), _title(dynorm_table)) == ("B2", "A")
    b.update(n=5)
    b.refresh_from_db()
    assert b.n == 5 and _title(dynorm_table) == "A"
    b.delete()
    assert _title(second_table.name) is None and _title(dynorm_table) == "A"


def test_an_instance_read_in_a_using_block_is_saved_there_after_the_block(
    dynorm_table: str, second_table: Table
) -> None:
    _twins(dynorm_table, second_table)
    with dynorm.using(second_table):
        b = TenantTicket.objects.filter(tenant="t").first()  # the query (fast decode) path
    assert b is not None
    b.title = "B2"
    b.save()
    assert (_title(second_table.name), _title(dynorm_table)) == ("B2", "A")


def test_an_instance_of_the_default_table_stays_there_inside_another_tables_block(
    dynorm_table: str, second_table: Table
) -> None:
    _twins(dynorm_table, second_table)
    a = TenantTicket.objects.get(tenant="t", id="1")
    with dynorm.using(second_table):
        a.title = "A2"
        a.save()
        a.update(n=1)
        a.refresh_from_db()
    assert (_title(dynorm_table), _title(second_table.name)) == ("A2", "B")
    with dynorm.using(second_table):
        a.delete()
    assert _title(dynorm_table) is None and _title(second_table.name) == "B"


def test_objects_created_through_qs_using_live_in_that_table(
    dynorm_table: str, second_table: Table
) -> None:
    made = TenantTicket.objects.using(second_table).create(tenant="t", id="1", title="B")
    got, created = TenantTicket.objects.using(second_table).get_or_create(tenant="t", id="2")
    upd, _ = TenantTicket.objects.using(second_table).update_or_create(
        tenant="t", id="3", defaults={"title": "B3"}
    )
    [bulk] = TenantTicket.objects.using(second_table).bulk_create(
        [TenantTicket(tenant="t", id="4")]
    )
    assert created
    for obj in (made, got, upd, bulk):
        obj.title = "again"
        obj.save()  # back to tenant B's table
    assert list(TenantTicket.objects.filter(tenant="t")) == []
    stored = TenantTicket.objects.using(second_table).filter(tenant="t")
    assert sorted(t.id for t in stored) == ["1", "2", "3", "4"]
    assert {t.title for t in stored} == {"again"}


def test_a_save_in_a_using_block_inside_a_transaction_commits_to_that_table(
    dynorm_table: str, second_table: Table
) -> None:
    with dynorm.transaction():
        with dynorm.using(second_table):
            TenantTicket(tenant="t", id="1", title="B").save()
        # The using() block has ended: the commit still writes where the save was made.
    assert _title(second_table.name) == "B" and _title(dynorm_table) is None


def test_a_versioned_object_keeps_its_history_in_its_own_table(
    dynorm_table: str, second_table: Table
) -> None:
    TenantPage.objects.create(id="p", body="a1")
    TenantPage.objects.using(second_table).create(id="p", body="b1")
    b = TenantPage.objects.using(second_table).get(id="p")
    b.body = "b2"
    b.save()
    assert [v.body for v in b.history()] == ["b2", "b1"]
    assert b.diff(1) == {"body": ("b2", "b1")}
    b.revert(1)
    assert TenantPage.objects.using(second_table).get(id="p").body == "b1"
    assert [v.body for v in TenantPage.objects.get(id="p").history()] == ["a1"]
    b.delete()
    assert TenantPage.objects.using(second_table).filter(id="p").count() == 0
    assert TenantPage.objects.get(id="p").body == "a1"


def test_transaction_get_of_an_instance_reads_the_instances_table(
    dynorm_table: str, second_table: Table
) -> None:
    _twins(dynorm_table, second_table)
    b = TenantTicket.objects.using(second_table).get(tenant="t", id="1")
    (again,) = dynorm.transaction_get([b])
    assert again is not None and again.title == "B"
    assert again is not None
    again.title = "B2"
    again.save()
    assert (_title(second_table.name), _title(dynorm_table)) == ("B2", "A")


def test_copies_and_pickles_of_an_instance_keep_its_table(
    dynorm_table: str, second_table: Table
) -> None:
    _twins(dynorm_table, second_table)
    b = TenantTicket.objects.using(second_table).get(tenant="t", id="1")
    copies = [
        lambda: b.model_copy(),
        lambda: b.model_copy(deep=True),
        lambda: copy.copy(b),
        lambda: pickle.loads(pickle.dumps(b)),
    ]
    for make in copies:
        other = make()
        assert other == b
        other.n += 1
        other.save()  # to tenant B's table, as b would
        b.refresh_from_db()
    assert b.n == 4 and _title(dynorm_table) == "A"


def test_threads_in_their_tenants_blocks_never_write_each_others_tables(
    dynorm_table: str, second_table: Table
) -> None:
    """Each thread loads, changes and saves its tenant's copy of the same keys, interleaved
    with the other; the objects cross the threads' blocks (saved later in the other's)."""
    for i in range(5):
        TenantTicket.objects.create(tenant="t", id=str(i), title="A")
        TenantTicket.objects.using(second_table).create(tenant="t", id=str(i), title="B")
    loaded: dict[str, list[TenantTicket]] = {}
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def load(name: str, table: Table | str) -> None:
        try:
            with dynorm.using(table):
                barrier.wait()
                loaded[name] = list(TenantTicket.objects.filter(tenant="t"))
                barrier.wait()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def save_others(name: str, table: Table | str, mine: str) -> None:
        try:
            with dynorm.using(table):  # the other tenant's objects, saved in my block
                for obj in loaded[name]:
                    obj.title = f"{obj.title}+{mine}"
                    obj.save()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=load, args=("a", dynorm_table)),
        threading.Thread(target=load, args=("b", second_table)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    threads = [
        threading.Thread(target=save_others, args=("b", dynorm_table, "x")),
        threading.Thread(target=save_others, args=("a", second_table, "y")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {t.title for t in TenantTicket.objects.filter(tenant="t")} == {"A+y"}
    assert {t.title for t in TenantTicket.objects.using(second_table).filter(tenant="t")} == {"B+x"}


_READS = st.sampled_from(["get", "filter", "first", "page", "bulk_get", "slice"])
_WRITES = st.sampled_from(["save", "update", "delete", "refresh"])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)
@given(
    read=_READS,
    write=_WRITES,
    read_in_block=st.booleans(),
    write_block=st.sampled_from([None, "default", "b"]),
)
def test_however_an_instance_is_read_its_writes_go_to_that_table(
    dynorm_table: str,
    second_table: Table,
    read: str,
    write: str,
    read_in_block: bool,
    write_block: str | None,
) -> None:
    TenantTicket.objects.using(second_table).filter(tenant="t").delete()
    TenantTicket.objects.filter(tenant="t").delete()
    _twins(dynorm_table, second_table)
    qs = TenantTicket.objects if read_in_block else TenantTicket.objects.using(second_table)
    block = dynorm.using(second_table) if read_in_block else dynorm.using(dynorm_table)
    with block:
        if read == "get":
            b = qs.get(tenant="t", id="1")
        elif read == "filter":
            (b,) = list(qs.filter(tenant="t"))
        elif read == "first":
            found = qs.filter(tenant="t").first()
            assert found is not None
            b = found
        elif read == "page":
            (b,) = qs.filter(tenant="t").page(5).items
        elif read == "bulk_get":
            (got,) = qs.bulk_get([{"tenant": "t", "id": "1"}])
            assert got is not None
            b = got
        else:
            (b,) = list(qs.filter(tenant="t")[:1])
    assert b.title == "B"
    where = {None: None, "default": dynorm.using(dynorm_table), "b": dynorm.using(second_table)}
    ctx = where[write_block]
    with ctx if ctx is not None else contextlib.nullcontext():
        if write == "save":
            b.title = "B2"
            b.save()
        elif write == "update":
            b.update(title="B2")
        elif write == "delete":
            b.delete()
        else:
            b.refresh_from_db()
    assert _title(dynorm_table) == "A"  # the other table never changes
    expected = {"save": "B2", "update": "B2", "delete": None, "refresh": "B"}[write]
    assert _title(second_table.name) == expected


def test_an_instance_loaded_by_a_query_carries_its_items_write_token(dynorm_table: str) -> None:
    """A stale instance read by a query (the fast decoder) cannot overwrite the item that
    replaced its own under the same key at the same version: its save is conditional on the
    token of the item it read, as for instances read with get()."""
    TenantTicket.objects.create(tenant="t", id="1", title="first")
    (stale,) = list(TenantTicket.objects.filter(tenant="t"))
    TenantTicket.objects.get(tenant="t", id="1").delete()
    TenantTicket.objects.create(tenant="t", id="1", title="second")  # version 1 again
    stale.title = "stale"
    with pytest.raises(VersionConflictError):
        stale.save()
    assert _title(dynorm_table) == "second"
