"""get_or_create / update_or_create: what they create from, and that version stays dynorm's."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dynorm import ConditionFailedError, QueryError, VersionConflictError
from tests.models import Counter, Order


def test_update_or_create_refuses_a_version_and_leaves_the_item_alone(dynorm_table: str) -> None:
    stored = Counter.objects.create(name="c", value=1)
    stored.value = 2
    stored.save()  # version 2
    for defaults in ({"version": 1}, {"version": 2, "value": 9}, {"version": 7}):
        with pytest.raises(QueryError, match="version"):
            Counter.objects.update_or_create(name="c", defaults=defaults)
    again = Counter.objects.consistent().get(name="c")
    assert (again.value, again.version) == (2, 2)
    # Without the version the same call applies once, at the next version.
    updated, created = Counter.objects.update_or_create(name="c", defaults={"value": 9})
    assert (updated.value, updated.version, created) == (9, 3, False)


def test_defaults_win_over_exact_lookups_when_creating(dynorm_table: str) -> None:
    # A field in both (Django's rule: defaults win) used to raise a bare TypeError.
    obj, created = Counter.objects.update_or_create(name="n", defaults={"name": "n", "value": 4})
    assert created and (obj.name, obj.value, obj.version) == ("n", 4, 1)
    obj, created = Counter.objects.get_or_create(name="m", defaults={"name": "m", "value": 5})
    assert created and Counter.objects.get(name="m").value == 5


def test_non_exact_lookups_are_not_used_as_values_when_creating(dynorm_table: str) -> None:
    # `status__ne` selects; it is not a value of the new object.
    obj, created = Order.objects.get_or_create(
        customer_id="c1", id="o1", status__ne="cancelled", defaults={"total": Decimal("3")}
    )
    assert created and obj.status == "open" and obj.total == Decimal("3")
    again, created = Order.objects.get_or_create(
        customer_id="c1", id="o1", status__ne="cancelled", defaults={"total": Decimal("4")}
    )
    assert not created and again.total == Decimal("3")


@pytest.mark.parametrize("method", ["get_or_create", "update_or_create"])
@pytest.mark.parametrize("through_index", [False, True], ids=["table", "gsi"])
def test_an_item_with_the_key_that_fails_the_lookups_is_reported_and_left_alone(
    dynorm_table: str, method: str, through_index: bool
) -> None:
    # Nothing matches the lookups, yet the object to create has a stored item's key: that is
    # a refused create (not DoesNotExist, not "the item kept changing", not a QueryError for
    # a consistent read of an index), and the stored item stays as it was.
    Order.objects.create(customer_id="c1", id="o1", status="cancelled", total=Decimal("7"))
    qs = Order.objects.using_gsi("by_status") if through_index else Order.objects
    lookups = {"status": "open"} if through_index else {"status__ne": "cancelled"}
    with pytest.raises(ConditionFailedError) as info:
        getattr(qs, method)(customer_id="c1", id="o1", **lookups, defaults={"total": Decimal("1")})
    assert not isinstance(info.value, VersionConflictError)
    stored = Order.objects.consistent().get(customer_id="c1", id="o1")
    assert (stored.status, stored.total, stored.version) == ("cancelled", Decimal("7"), 1)
