"""`Meta.audit`: no write lands without its audit entry, and no entry without its write.

The invariant: an object's log holds exactly one entry per version it was written at
(1, 2, ... its current version; a delete adds one more), whatever faults happened.
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import dynorm
from dynorm import AuditEntry, F, Model, _companions
from dynorm.exceptions import (
    ItemExistsError,
    QueryError,
    ServiceError,
    TransactionCanceledError,
    VersionConflictError,
)
from tests.reliability.helpers import Faults, raw_scan


class AuditedAccount(Model):
    id: str
    owner: str = ""
    balance: Decimal = Decimal(0)
    password_hash: str = ""

    class Meta:
        pk = "AACCT#{id}"
        audit = True
        audit_exclude = ["password_hash"]


def _versions(obj: AuditedAccount) -> list[tuple[str, int]]:
    """The object's log, oldest first: (action, version) per entry."""
    return [(e.action, e.object_version) for e in reversed(list(obj.audit_log()))]


def _entries() -> list[dict]:
    return [i for i in raw_scan() if i.get("_type", {}).get("S") == "dynorm_audit"]


def test_every_write_has_one_entry_with_its_changes(dynorm_table: str) -> None:
    with dynorm.actor("user-42"):
        acct = AuditedAccount.objects.create(id="a", owner="ada", password_hash="h1")
        acct.owner = "grace"
        acct.password_hash = "h2"
        acct.save()
        acct.update(balance=F("balance") + 5)
    acct.save(update_fields=["owner"])  # outside a block: no actor
    newest, *_, first = list(acct.audit_log())
    assert (newest.action, newest.actor, newest.object_version) == ("update", None, 4)
    assert (first.action, first.actor, first.changes["owner"]) == (
        "create",
        "user-42",
        [None, "ada"],
    )
    assert _versions(acct) == [("create", 1), ("update", 2), ("update", 3), ("update", 4)]
    third = list(acct.audit_log())[1]
    assert third.changes == {"balance": [0, 5]}  # the F() result, computed from the stored item
    assert [e.object_version for e in AuditEntry.objects.by_actor("user-42")] == [3, 2, 1]
    acct.delete()
    assert _versions(acct)[-1] == ("delete", 4)
    assert list(acct.audit_log())[0].changes["owner"] == ["grace", None]


def test_audit_exclude_keeps_values_out_of_every_entry(dynorm_table: str) -> None:
    acct = AuditedAccount.objects.create(id="a", password_hash="secret-hash-1")
    acct.password_hash = "secret-hash-2"
    acct.save()
    acct.delete()
    assert len(_entries()) == 6  # object log + day log, three writes
    assert "secret-hash" not in repr(_entries())
    assert all("password_hash" not in e.changes for e in AuditEntry.objects.on_day(_today()))


def _today() -> datetime:
    return datetime.now(timezone.utc)


def test_entries_are_found_by_object_actor_and_time(
    dynorm_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The entries' clock is stopped at chosen instants (this VM's wall clock steps back at
    # times, so a window around two reads of it need not hold a write made between them).
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    stamps = iter([t0, t0 + timedelta(seconds=2), t0 + timedelta(seconds=5)])
    monkeypatch.setattr(_companions, "utcnow", lambda: next(stamps))
    with dynorm.actor("ops"):
        a = AuditedAccount.objects.create(id="a")
    b = AuditedAccount.objects.create(id="b")
    c = AuditedAccount.objects.create(id="c")  # at t0 + 5 s: outside the window
    found = AuditEntry.objects.between(t0, t0 + timedelta(seconds=5))  # [start, end)
    assert {(e.object_pk, e.action) for e in found} == {
        (a.dynamo_key["pk"], "create"),
        (b.dynamo_key["pk"], "create"),
    }
    assert c.dynamo_key["pk"] not in {e.object_pk for e in found}
    assert [e.at for e in found] == sorted((e.at for e in found), reverse=True)
    assert [e.object_pk for e in AuditEntry.objects.by_actor("ops")] == [a.dynamo_key["pk"]]
    assert len(list(b.audit_log())) == 1


def test_the_actor_belongs_to_its_own_thread(dynorm_table: str) -> None:
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        with dynorm.actor(name):
            barrier.wait()
            AuditedAccount.objects.create(id=name)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("t1", "t2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in ("t1", "t2"):
        (entry,) = AuditedAccount.objects.get(id=name).audit_log()
        assert entry.actor == name


def test_a_refused_or_cancelled_write_writes_no_entry(dynorm_table: str) -> None:
    acct = AuditedAccount.objects.create(id="a")
    stale = AuditedAccount.objects.get(id="a")
    acct.owner = "x"
    acct.save()
    stale.owner = "y"
    with pytest.raises(VersionConflictError):
        stale.save()
    with pytest.raises(VersionConflictError):
        stale.delete()
    with pytest.raises(ItemExistsError):
        AuditedAccount.objects.create(id="a")
    with pytest.raises(TransactionCanceledError):
        with dynorm.transaction():
            AuditedAccount.objects.create(id="b")
            AuditedAccount.objects.create(id="a")  # exists: the block is cancelled
    assert not AuditedAccount.objects.filter(id="b").exists()
    assert _versions(acct) == [("create", 1), ("update", 2)]
    assert len(_entries()) == 4


def test_an_injected_cancellation_writes_neither(dynorm_table: str, faults: Faults) -> None:
    faults.fail("TransactWriteItems", "TransactionCanceledException", times=None)
    with pytest.raises(TransactionCanceledError):
        AuditedAccount.objects.create(id="a")
    faults.clear()
    assert _entries() == [] and not AuditedAccount.objects.filter(id="a").exists()


def test_lost_responses_write_one_entry_per_write(dynorm_table: str, faults: Faults) -> None:
    faults.lose_response("TransactWriteItems")
    acct = AuditedAccount.objects.create(id="a")  # botocore retries: applied once
    faults.clear()
    faults.lose_response("TransactWriteItems", times=100)
    acct.owner = "x"
    with pytest.raises(ServiceError):
        acct.save()
    faults.clear()
    acct.save()  # the documented retry: the same call, applied once, audited once
    assert acct.version == 2
    faults.lose_response("TransactWriteItems")
    acct.delete()
    faults.clear()
    assert _versions(acct) == [("create", 1), ("update", 2), ("delete", 2)]


def test_queryset_writes_that_would_skip_the_log_are_refused(dynorm_table: str) -> None:
    AuditedAccount.objects.create(id="a")
    with pytest.raises(QueryError, match="audit"):
        AuditedAccount.objects.filter(id="a").update(owner="x")
    with pytest.raises(QueryError, match="audit"):
        AuditedAccount.objects.filter(id="a").delete()
    with pytest.raises(QueryError, match="overwrite"):
        AuditedAccount.objects.bulk_create([AuditedAccount(id="b")], overwrite=True)
    AuditedAccount.objects.bulk_create([AuditedAccount(id="c"), AuditedAccount(id="d")])
    assert len(_entries()) == 6


@settings(
    max_examples=min(12, int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "12"))),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["save", "update", "delete", "stale"]),
            st.sampled_from(["none", "lost_once", "all_lost"]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_sequence_of_writes_and_faults_keeps_one_entry_per_version(
    faults: Faults, steps: list[tuple[str, str]]
) -> None:
    acct = AuditedAccount.objects.create(id=uuid.uuid4().hex[:10])
    deleted = False
    try:
        for kind, fault in steps:
            if deleted:
                break
            if fault == "lost_once":
                faults.lose_response("TransactWriteItems")
            elif fault == "all_lost":
                faults.lose_response("TransactWriteItems", times=100)

            def call(kind: str = kind) -> None:
                if kind == "save":
                    acct.owner = f"o{acct.version}"
                    acct.save()
                elif kind == "update":
                    acct.update(balance=F("balance") + 1)
                elif kind == "delete":
                    acct.delete()
                else:
                    stale = AuditedAccount.objects.get(id=acct.id)
                    stale.update(owner="other")  # another writer
                    acct.refresh_from_db()

            try:
                call()
            except ServiceError:
                faults.clear()
                call()  # the documented retry
            faults.clear()
            deleted = kind == "delete"
    finally:
        faults.clear()
    versions = _versions(acct)
    if deleted:
        assert versions[-1][0] == "delete"
        versions = versions[:-1]
    assert [v for _, v in versions] == list(range(1, len(versions) + 1))
