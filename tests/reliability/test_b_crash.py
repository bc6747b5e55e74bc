"""B. Crash or timeout midway through a versioned save (scenarios 6-10)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

import dynorm
from dynorm import Model, VersionedModel
from dynorm.exceptions import (
    DynormError,
    ServiceError,
    TransactionCanceledError,
    VersionConflictError,
)
from dynorm.versioning import history_sk
from tests.reliability.helpers import (
    Faults,
    raw_client,
    raw_get,
    raw_partition,
    request_json,
    table_name,
    without_token,
)


class RelDoc(Model):
    id: str
    text: str
    hits: int = 0

    class Meta:
        pk = "RELDOC#{id}"


class RelWiki(VersionedModel):
    id: str
    body: str

    class Meta:
        pk = "RELWIKI#{id}"


class RelMember(Model):
    id: str
    email: str
    name: str = ""

    class Meta:
        pk = "RELMEMBER#{id}"


class RelEmailClaim(Model):
    """A uniqueness item: one per e-mail address, created only if absent."""

    email: str
    member_id: str

    class Meta:
        pk = "RELEMAIL#{email}"


def _history_versions(pk: str) -> list[int]:
    return sorted(
        int(i["version"]["N"]) for i in raw_partition(pk) if i["sk"]["S"].startswith("_history#")
    )


# --------------------------------------------------------------------------- scenario 6


def test_s06_lost_response_on_create_is_reported_as_success(faults: Faults) -> None:
    attempts = faults.count("PutItem")
    applied = faults.lose_response("PutItem")
    doc = RelDoc(id="d1", text="one")
    doc.save()  # attempt 1 applied, response lost; botocore's retry gets ConditionalCheckFailed
    assert applied == [200] and len(attempts) == 2
    assert doc.version == 1
    stored = raw_get("RELDOC#d1", "RelDoc")
    assert stored is not None and stored["version"] == {"N": "1"} and stored["text"] == {"S": "one"}


@pytest.mark.parametrize("how", ["save", "update_fields", "update"])
def test_s06_lost_response_on_versioned_update_is_reported_as_success(
    faults: Faults, how: str
) -> None:
    doc = RelDoc.objects.create(id="d1", text="one")
    operation = "PutItem" if how == "save" else "UpdateItem"
    attempts = faults.count(operation)
    applied = faults.lose_response(operation)
    if how == "update":
        doc.update(text="two")
    else:
        doc.text = "two"
        doc.save(update_fields=["text"] if how == "update_fields" else None)
    assert applied == [200] and len(attempts) == 2
    assert doc.version == 2 and doc.text == "two"
    stored = raw_get("RELDOC#d1", "RelDoc")
    assert stored is not None and stored["version"] == {"N": "2"} and stored["text"] == {"S": "two"}


def test_s06_conflict_from_another_writer_with_same_content_is_a_version_conflict(
    faults: Faults,
) -> None:
    """Attempt 1 never arrives; meanwhile another writer stores the very same content at the
    very same version. The retry's ConditionalCheckFailed carries an item equal to ours except
    for the per-save token: that is a genuine conflict, not our own lost write."""
    doc = RelDoc.objects.create(id="d1", text="one")
    other = raw_client()
    table = table_name()
    intercepted: list[int] = []

    def competitor_then_timeout(request: Any, **_: Any) -> None:
        if intercepted:
            return None
        intercepted.append(1)
        item = request_json(request)["Item"]
        competing = {**item, "_wtok": {"S": "someone-else"}}
        other.put_item(TableName=table, Item=competing)
        raise ReadTimeoutError(endpoint_url=request.url)

    faults.on("before-send.dynamodb.PutItem", competitor_then_timeout)
    doc.text = "two"
    with pytest.raises(VersionConflictError) as info:
        doc.save()
    assert info.value.current_version == 2
    assert doc.version == 1
    stored = raw_get("RELDOC#d1", "RelDoc")
    assert stored is not None and stored["_wtok"] == {"S": "someone-else"}


# --------------------------------------------------------------------------- scenario 7


def test_s07_transactional_save_with_lost_response_is_idempotent(faults: Faults) -> None:
    attempts = faults.count("TransactWriteItems")
    applied: list[int] = []
    tokens_seen: set[str] = set()

    def lose_first_attempt_of_each_save(request: Any, **_: Any) -> None:
        token = request_json(request)["ClientRequestToken"]
        if token in tokens_seen:
            return None
        tokens_seen.add(token)
        applied.append(faults.send(request).status_code)
        raise ReadTimeoutError(endpoint_url=request.url)

    faults.on("before-send.dynamodb.TransactWriteItems", lose_first_attempt_of_each_save)
    wiki = RelWiki.objects.create(id="w1", body="v1")  # create: item + history, one transaction
    wiki.body = "v2"
    wiki.save()
    assert applied == [200, 200]
    # Each save was sent twice with the same ClientRequestToken; DynamoDB applied it once.
    assert len(attempts) == 4
    tokens = [body["ClientRequestToken"] for body in attempts]
    assert tokens[0] == tokens[1] and tokens[2] == tokens[3] and tokens[0] != tokens[2]
    assert wiki.version == 2
    stored = raw_get("RELWIKI#w1", "RelWiki")
    assert stored is not None and stored["version"] == {"N": "2"}
    assert _history_versions("RELWIKI#w1") == [1, 2]
    assert [h.body for h in wiki.history()] == ["v2", "v1"]


def test_s07_transaction_block_with_lost_response_is_idempotent(faults: Faults) -> None:
    attempts = faults.count("TransactWriteItems")
    applied = faults.lose_response("TransactWriteItems")
    a, b = RelDoc(id="a", text="A"), RelDoc(id="b", text="B")
    with dynorm.transaction():
        a.save()
        b.save()
    assert applied == [200] and len(attempts) == 2
    assert attempts[0]["ClientRequestToken"] == attempts[1]["ClientRequestToken"]
    assert a.version == 1 and b.version == 1
    for key in ("a", "b"):
        stored = raw_get(f"RELDOC#{key}", "RelDoc")
        assert stored is not None and stored["version"] == {"N": "1"}


# --------------------------------------------------------------------------- scenario 8


def test_s08_crash_before_send_is_a_typed_error_and_changes_nothing(faults: Faults) -> None:
    dynorm.configure(max_attempts=1)  # retries off; the fixture restores the configuration
    doc = RelDoc.objects.create(id="d1", text="one")
    before = raw_get("RELDOC#d1", "RelDoc")

    def crash(request: Any, **_: Any) -> None:
        raise ConnectionClosedError(endpoint_url=request.url)

    faults.on("before-send.dynamodb.PutItem", crash)
    doc.text = "two"
    with pytest.raises(ServiceError) as info:
        doc.save()
    assert isinstance(info.value.__cause__, ConnectionClosedError)
    assert "PutItem" in str(info.value) and "two" not in str(info.value)
    assert doc.version == 1 and doc.text == "two"
    assert raw_get("RELDOC#d1", "RelDoc") == before
    faults.clear()
    doc.save()  # the same object saves fine once the network is back
    assert doc.version == 2
    stored = raw_get("RELDOC#d1", "RelDoc")
    assert stored is not None and stored["text"] == {"S": "two"} and stored["version"] == {"N": "2"}


# --------------------------------------------------------------------------- scenario 9


def test_s09_item_and_uniqueness_item_are_written_all_or_nothing(dynorm_table: str) -> None:
    RelEmailClaim.objects.create(email="taken@example.com", member_id="someone")
    member = RelMember.objects.create(id="m1", email="old@example.com", name="Ann")
    member_before = raw_get("RELMEMBER#m1", "RelMember")
    claim_before = raw_get("RELEMAIL#taken@example.com", "RelEmailClaim")

    member.email = "taken@example.com"
    claim = RelEmailClaim(email="taken@example.com", member_id="m1")
    with pytest.raises(TransactionCanceledError) as info:
        with dynorm.transaction():
            member.save()  # action 1: fine on its own
            claim.save()  # action 2: attribute_not_exists fails
    assert info.value.reasons == [None, "ConditionalCheckFailed"]
    assert raw_get("RELMEMBER#m1", "RelMember") == member_before
    assert raw_get("RELEMAIL#taken@example.com", "RelEmailClaim") == claim_before
    assert member.version == 1 and member.email == "taken@example.com"
    assert claim.version == 0


def test_s09_versioned_save_writes_item_and_history_all_or_nothing(dynorm_table: str) -> None:
    wiki = RelWiki.objects.create(id="w1", body="v1")
    # A history item for version 2 already exists, so action 2 of the save fails.
    orphan = {
        "pk": {"S": "RELWIKI#w1"},
        "sk": {"S": history_sk("RelWiki", 2)},
        "_type": {"S": "RelWiki#history"},
        "version": {"N": "2"},
        "payload": {"M": {}},
    }
    raw_client().put_item(TableName=table_name(), Item=orphan)
    before = raw_partition("RELWIKI#w1")
    wiki.body = "v2"
    with pytest.raises(DynormError) as info:
        wiki.save()
    response = info.value.response or {}
    codes = [r.get("Code") for r in response.get("CancellationReasons", [])]
    assert codes == ["None", "ConditionalCheckFailed"]
    assert sorted(map(str, raw_partition("RELWIKI#w1"))) == sorted(map(str, before))
    assert wiki.version == 1 and wiki.body == "v2"


# --------------------------------------------------------------------------- scenario 10


class ProcessDied(BaseException):
    """The process stopped right after DynamoDB applied the write (nothing ran afterwards)."""


def test_s10_process_death_after_apply_then_an_older_copy_cannot_overwrite(
    faults: Faults,
) -> None:
    RelDoc.objects.create(id="d1", text="base")
    dying = RelDoc.objects.get(id="d1")
    older = RelDoc.objects.get(id="d1")

    def die(request: Any) -> None:
        raise ProcessDied

    applied = faults.lose_response("PutItem", answer=die)
    dying.text = "applied"
    with pytest.raises(ProcessDied):
        dying.save()
    assert applied == [200]
    del dying  # the local object is gone with the process
    faults.clear()

    older.text = "overwrite"
    with pytest.raises(VersionConflictError):
        older.save()
    fresh = RelDoc.objects.consistent().get(id="d1")
    assert fresh.version == 2 and fresh.text == "applied"  # exactly one change applied
    stored = without_token(raw_get("RELDOC#d1", "RelDoc"))
    assert stored is not None and stored["text"] == {"S": "applied"}
