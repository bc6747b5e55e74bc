"""`Meta.unique`: guard items written in the same transaction as the object, on DynamoDB Local.

The invariant every test checks: the guard items stored are exactly those of the stored
objects' values, each naming its object, and no two objects hold the same values.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import dynorm
from dynorm import F, Model, VersionedModel
from dynorm._unique import guard_key
from dynorm.exceptions import (
    QueryError,
    UniqueViolationError,
    VersionConflictError,
)
from tests.reliability.helpers import Faults, raw_scan


class UniqueUser(Model):
    id: str
    email: str | None = None
    tenant: str = "t1"
    slug: str = "s"
    logins: int = 0

    class Meta:
        pk = "UUSER#{id}"
        unique = [("email",), ("tenant", "slug")]


class UniqueDoc(VersionedModel):
    id: str
    title: str

    class Meta:
        pk = "UDOC#{id}"
        unique = [("title",)]


def _guards(type_name: str = "UniqueUser") -> dict[str, tuple[str, str]]:
    """Every stored guard of the type: guard pk -> its owner's (pk, sk)."""
    return {
        item["pk"]["S"]: (item["_opk"]["S"], item["_osk"]["S"])
        for item in raw_scan()
        if item.get("_type", {}).get("S") == f"{type_name}#unique"
    }


def _expected_guards() -> dict[str, tuple[str, str]]:
    """The guards the stored UniqueUser objects must hold, computed from their values."""
    out: dict[str, tuple[str, str]] = {}
    for item in raw_scan():
        if item.get("_type", {}).get("S") != "UniqueUser":
            continue
        user = UniqueUser.from_item(item)
        owner = (item["pk"]["S"], item["sk"]["S"])
        for constraint in UniqueUser._meta.unique:
            key = guard_key(UniqueUser._meta, constraint, user.__dict__)
            if key is not None:
                out[key[0]] = owner
    return out


def _assert_guards_match_objects() -> None:
    assert _guards() == _expected_guards()


def test_a_unique_value_is_held_by_one_object_only(dynorm_table: str) -> None:
    UniqueUser.objects.create(id="a", email="x@example.com", slug="a")
    with pytest.raises(UniqueViolationError) as caught:
        UniqueUser.objects.create(id="b", email="x@example.com", slug="b")
    assert caught.value.model == "UniqueUser" and caught.value.fields == ("email",)
    assert "x@example.com" not in str(caught.value)  # never the value
    assert "email" in str(caught.value)
    assert not UniqueUser.objects.filter(id="b").exists()  # nothing written
    with pytest.raises(UniqueViolationError) as composite:
        UniqueUser.objects.create(id="c", email="y@example.com", slug="a")
    assert composite.value.fields == ("tenant", "slug")
    _assert_guards_match_objects()


def test_twenty_threads_creating_one_email_exactly_one_wins(dynorm_table: str) -> None:
    barrier = threading.Barrier(20)
    results: list[str] = []
    lock = threading.Lock()

    def create(n: int) -> None:
        barrier.wait()
        try:
            UniqueUser.objects.create(id=f"u{n}", email="same@example.com", slug=f"s{n}")
            outcome = "won"
        except UniqueViolationError:
            outcome = "violation"
        except Exception as exc:  # noqa: BLE001 - any other outcome fails the test below
            outcome = type(exc).__name__
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["violation"] * 19 + ["won"]
    assert UniqueUser.objects.get_by_unique(email="same@example.com").version == 1
    _assert_guards_match_objects()


def test_a_changed_value_moves_its_guard_atomically(dynorm_table: str) -> None:
    user = UniqueUser.objects.create(id="a", email="old@example.com")
    user.email = "new@example.com"
    user.save()
    _assert_guards_match_objects()
    UniqueUser.objects.create(id="b", email="old@example.com", slug="b")  # released
    user.email = "old@example.com"
    with pytest.raises(UniqueViolationError):
        user.save()
    stored = UniqueUser.objects.get(id="a")
    assert stored.email == "new@example.com" and stored.version == 2  # nothing written
    user.refresh_from_db()
    user.save(update_fields=["logins"])  # no unique value changes: no guard written
    user.update(email=None, logins=F("logins") + 1)  # None takes no guard
    assert user.email is None and user.logins == 1
    _assert_guards_match_objects()
    user.save(update_fields=["email"])
    _assert_guards_match_objects()


def test_delete_releases_the_guards(dynorm_table: str) -> None:
    user = UniqueUser.objects.create(id="a", email="x@example.com")
    user.delete()
    assert _guards() == {}
    UniqueUser.objects.create(id="b", email="x@example.com")
    _assert_guards_match_objects()


def test_a_refused_write_changes_no_guard(dynorm_table: str) -> None:
    user = UniqueUser.objects.create(id="a", email="x@example.com")
    stale = UniqueUser.objects.get(id="a")
    user.save()
    stale.email = "y@example.com"
    with pytest.raises(VersionConflictError):
        stale.save()
    with pytest.raises(VersionConflictError):
        stale.delete()
    _assert_guards_match_objects()


def test_a_key_move_repoints_the_guard(dynorm_table: str) -> None:
    user = UniqueUser.objects.create(id="a", email="x@example.com")
    user.id = "b"
    user.save()
    assert UniqueUser.objects.get_by_unique(email="x@example.com").id == "b"
    _assert_guards_match_objects()


def test_get_by_unique_reads_the_guard_then_the_object(dynorm_table: str, sent: Any) -> None:
    UniqueUser.objects.create(id="a", email="x@example.com", tenant="t2", slug="home")
    sent.clear()
    assert UniqueUser.objects.get_by_unique(tenant="t2", slug="home").id == "a"
    assert [op for op, _ in sent] == ["GetItem", "GetItem"]  # never a query or a scan
    with pytest.raises(UniqueUser.DoesNotExist):
        UniqueUser.objects.get_by_unique(email="nobody@example.com")
    with pytest.raises(QueryError):
        UniqueUser.objects.get_by_unique(tenant="t2")  # not a whole constraint


def test_a_lost_create_response_is_applied_once(dynorm_table: str, faults: Faults) -> None:
    applied = faults.lose_response("TransactWriteItems")
    user = UniqueUser.objects.create(id="a", email="x@example.com")
    assert applied == [200] and user.version == 1
    _assert_guards_match_objects()


def test_a_lost_save_and_delete_response_is_applied_once(dynorm_table: str, faults: Faults) -> None:
    user = UniqueUser.objects.create(id="a", email="x@example.com")
    faults.lose_response("TransactWriteItems")
    user.email = "y@example.com"
    user.save()  # botocore retries: no false conflict, no false violation
    assert user.version == 2
    _assert_guards_match_objects()
    faults.clear()
    faults.lose_response("TransactWriteItems")
    user.delete()
    assert _guards() == {}


def test_a_retried_create_after_every_response_was_lost_is_applied_once(
    dynorm_table: str, faults: Faults
) -> None:
    faults.lose_response("TransactWriteItems", times=100)
    user = UniqueUser(id="a", email="x@example.com")
    with pytest.raises(dynorm.ServiceError):
        user.save()
    faults.clear()
    user.save()  # the documented retry: the same call; our own guard is no violation
    assert user.version == 1
    _assert_guards_match_objects()


def test_a_transaction_block_writes_the_guards_with_its_objects(dynorm_table: str) -> None:
    with dynorm.transaction():
        UniqueUser.objects.create(id="a", email="x@example.com", slug="a")
        UniqueUser.objects.create(id="b", email="y@example.com", slug="b")
    _assert_guards_match_objects()
    with pytest.raises(UniqueViolationError):
        with dynorm.transaction():
            UniqueUser.objects.create(id="c", email="z@example.com", slug="c")
            UniqueUser.objects.create(id="d", email="x@example.com", slug="d")
    assert not UniqueUser.objects.filter(id="c").exists()  # all or nothing
    _assert_guards_match_objects()


def test_bulk_create_takes_each_objects_guards(dynorm_table: str) -> None:
    users = [UniqueUser(id=f"u{n}", email=f"{n}@example.com", slug=f"s{n}") for n in range(5)]
    UniqueUser.objects.bulk_create(users)
    _assert_guards_match_objects()
    with pytest.raises(UniqueViolationError):
        UniqueUser.objects.bulk_create([UniqueUser(id="v", email="1@example.com", slug="v")])
    with pytest.raises(QueryError, match="overwrite"):
        UniqueUser.objects.bulk_create([UniqueUser(id="w", slug="w")], overwrite=True)
    _assert_guards_match_objects()


def test_queryset_writes_that_would_skip_the_guards_are_refused(dynorm_table: str) -> None:
    UniqueUser.objects.create(id="a", email="x@example.com")
    with pytest.raises(QueryError, match="unique"):
        UniqueUser.objects.filter(id="a").delete()
    with pytest.raises(QueryError, match="email"):
        UniqueUser.objects.filter(id="a").update(email="y@example.com")
    assert UniqueUser.objects.filter(id="a").update(logins=5) == 1  # no unique field
    with pytest.raises(QueryError, match="F\\(\\)"):
        UniqueUser.objects.get(id="a").update(email=F("slug"))
    _assert_guards_match_objects()


def test_versioned_models_keep_their_guards(dynorm_table: str) -> None:
    doc = UniqueDoc.objects.create(id="a", title="Plan")
    doc.title = "Plan B"
    doc.save()
    with pytest.raises(UniqueViolationError):
        UniqueDoc.objects.create(id="b", title="Plan B")
    UniqueDoc.objects.create(id="c", title="Plan")
    (constraint,) = UniqueDoc._meta.unique

    def key(title: str) -> str:
        found = guard_key(UniqueDoc._meta, constraint, {"title": title})
        assert found is not None
        return found[0]

    assert set(_guards("UniqueDoc")) == {key("Plan B"), key("Plan")}
    doc.delete()
    assert set(_guards("UniqueDoc")) == {key("Plan")}


_EMAILS = st.sampled_from(["a@x", "b@x", "c@x", None])


@settings(
    max_examples=min(15, int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "15"))),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["create", "save", "update", "delete"]), st.integers(0, 2), _EMAILS
        ),
        min_size=1,
        max_size=8,
    )
)
def test_any_sequence_of_writes_keeps_guards_and_objects_in_step(
    dynorm_table: str, steps: list[tuple[str, int, str | None]]
) -> None:
    run = uuid.uuid4().hex[:8]
    objects: dict[int, UniqueUser] = {}
    for kind, n, email in steps:
        user = objects.get(n)
        try:
            if kind == "create" and user is None:
                objects[n] = UniqueUser.objects.create(
                    id=f"{run}{n}", email=email, slug=f"{run}{n}"
                )
            elif user is not None and kind == "save":
                user.email = email
                user.save()
            elif user is not None and kind == "update":
                user.update(email=email)
            elif user is not None and kind == "delete":
                user.delete()
                del objects[n]
        except UniqueViolationError:
            if user is not None:
                user.refresh_from_db()
    _assert_guards_match_objects()
    emails = [u.email for u in UniqueUser.objects.all().scan() if u.email is not None]
    assert len(emails) == len(set(emails))
