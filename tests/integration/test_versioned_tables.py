"""Versioned querysets on another table: `qs.using(table)` reads and deletes history there.

Each test keeps an object under the same key in the default table, with its own history, and
checks that it is left exactly as it was.
"""

from __future__ import annotations

from typing import Any

import pytest

import dynorm
from dynorm import Table, VersionedModel, _config

pytestmark = pytest.mark.usefixtures("dynorm_table")


class Ledger(VersionedModel):
    id: str
    text: str = ""

    class Meta:
        pk = "LEDGER#{id}"


def stored(table: str) -> list[dict[str, Any]]:
    """Every item of the table (a consistent scan; the tables here are tiny)."""
    conn = _config.get_connection()
    items: list[dict[str, Any]] = conn.client.scan(TableName=table, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def ledger(texts: list[str]) -> Ledger:
    obj = Ledger(id="x")
    for text in texts:
        obj.text = text
        obj.save()
    return obj


def test_get_of_a_version_through_using_reads_it_from_that_table(
    dynorm_table: str, second_table: Table
) -> None:
    ledger(["default 1", "default 2"])
    with dynorm.using(second_table):
        ledger(["other 1", "other 2", "other 3"])
    assert Ledger.objects.using(second_table).get(id="x", version=1).text == "other 1"
    assert Ledger.objects.using(second_table).get(id="x", version=3).text == "other 3"
    assert Ledger.objects.get(id="x", version=1).text == "default 1"
    with pytest.raises(Ledger.DoesNotExist):
        Ledger.objects.get(id="x", version=3)


def test_queryset_delete_through_using_deletes_the_object_and_its_history_in_that_table(
    dynorm_table: str, second_table: Table
) -> None:
    ledger(["default 1", "default 2"])
    with dynorm.using(second_table):
        ledger(["other 1", "other 2", "other 3"])
    before = stored(dynorm_table)
    assert len(before) == 3  # the object and its two versions
    assert Ledger.objects.using(second_table).filter(id="x").delete() == 1
    assert stored(second_table.name) == []
    assert stored(dynorm_table) == before


def test_queryset_delete_through_using_inside_a_transaction_deletes_in_that_table(
    dynorm_table: str, second_table: Table
) -> None:
    ledger(["default 1"])
    with dynorm.using(second_table):
        ledger(["other 1", "other 2"])
    before = stored(dynorm_table)
    with dynorm.transaction():
        assert Ledger.objects.using(second_table).filter(id="x").delete() == 1
    assert stored(second_table.name) == []
    assert stored(dynorm_table) == before
