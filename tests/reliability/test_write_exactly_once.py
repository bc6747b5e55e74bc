"""Exactly-once writes: lost responses, the caller's retry, and other writers in between.

For every write kind and every fault point the stored item ends as if the write was applied
exactly once, the instance holds what is stored, and the error raised (if any) is the one
docs/errors.md documents. Faults are botocore `before-send` hooks on dynorm's client: the
request really reaches DynamoDB Local (or does not), and the response is lost.
"""

from __future__ import annotations

import os
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from hypothesis import HealthCheck, given, settings, strategies as st

import dynorm
from dynorm import F, Model
from dynorm.exceptions import (
    ServiceError,
    TransactionCanceledError,
    VersionConflictError,
    WriteOutcomeUnknownError,
)
from tests.reliability.conftest import FakeTime
from tests.reliability.helpers import Faults, raw_client, raw_get, table_name


class OnceDoc(Model):
    id: str
    text: str = ""
    n: int = 0
    tags: set[str] = set()

    class Meta:
        pk = "ONCEDOC#{id}"


class OnceSeat(Model):
    flight: str
    number: str
    text: str = ""
    n: int = 0

    class Meta:
        pk = "ONCEFLIGHT#{flight}"
        sk = "SEAT#{number}"


def _stored(doc_id: str) -> dict[str, Any] | None:
    return raw_get(f"ONCEDOC#{doc_id}", "OnceDoc")


def _state(item: dict[str, Any] | None) -> tuple[Any, ...] | None:
    """What a write decides about a stored OnceDoc: (text, n, tags, version)."""
    if item is None:
        return None
    return (
        item.get("text", {}).get("S", ""),
        int(item.get("n", {"N": "0"})["N"]),
        frozenset(item.get("tags", {}).get("SS", [])),
        int(item["version"]["N"]),
    )


def _instance_state(doc: OnceDoc) -> tuple[Any, ...]:
    return (doc.text, doc.n, frozenset(doc.tags), doc.version)


# --------------------------------------------------------------------------- faults


def _never_sent(faults: Faults, operation: str, times: int = 1) -> list[int]:
    """The first `times` attempts never reach DynamoDB (no connection could be made)."""
    seen: list[int] = []

    def handler(request: Any, **_: Any) -> None:
        if len(seen) < times:
            seen.append(1)
            raise EndpointConnectionError(endpoint_url=request.url)

    faults.on(f"before-send.dynamodb.{operation}", handler)
    return seen


def _lost_then(faults: Faults, operation: str, between: Callable[[], None]) -> list[int]:
    """The first attempt is applied, `between()` runs (another writer), the response is lost."""
    applied: list[int] = []

    def handler(request: Any, **_: Any) -> None:
        if applied:
            return None
        applied.append(faults.send(request).status_code)
        between()
        raise ReadTimeoutError(endpoint_url=request.url)

    faults.on(f"before-send.dynamodb.{operation}", handler)
    return applied


def _other_writer(doc_id: str) -> Callable[[], None]:
    """Another process saves on top of whatever is stored (or re-creates a deleted item)."""

    def write() -> None:
        client = raw_client()
        key = {"pk": {"S": f"ONCEDOC#{doc_id}"}, "sk": {"S": "OnceDoc"}}
        stored = client.get_item(TableName=table_name(), Key=key, ConsistentRead=True).get("Item")
        if stored is None:
            item = {**key, "_type": {"S": "OnceDoc"}, "id": {"S": doc_id}, "version": {"N": "1"}}
            client.put_item(TableName=table_name(), Item={**item, "_wtok": {"S": "theirs"}})
            return
        client.update_item(
            TableName=table_name(),
            Key=key,
            UpdateExpression="SET n = n + :h, version = version + :one, #t = :theirs",
            ExpressionAttributeNames={"#t": "_wtok"},
            ExpressionAttributeValues={
                ":h": {"N": "100"},
                ":one": {"N": "1"},
                ":theirs": {"S": "theirs"},
            },
        )

    return write


# --------------------------------------------------------------------------- write kinds


@dataclass
class Kind:
    """One kind of write of `OnceDoc(id="d")`: how to prepare it, send it, and its result."""

    name: str
    operation: str
    prepare: Callable[[], OnceDoc]
    act: Callable[[OnceDoc], None]


def _created(**values: Any) -> OnceDoc:
    return OnceDoc.objects.create(id="d", text="a", n=1, **values)


def _changed(doc: OnceDoc) -> OnceDoc:
    doc.text = "b"
    return doc


KINDS = [
    Kind("create", "PutItem", lambda: OnceDoc(id="d", text="a", n=1), lambda d: d.save()),
    Kind("save", "PutItem", lambda: _changed(_created()), lambda d: d.save()),
    Kind(
        "update_fields",
        "UpdateItem",
        lambda: _changed(_created()),
        lambda d: d.save(update_fields=["text"]),
    ),
    Kind(
        "update_f",
        "UpdateItem",
        _created,
        lambda d: d.update(n=F("n") + 1, tags=F("tags").add({"t"})),
    ),
    Kind("delete", "DeleteItem", _created, lambda d: d.delete()),
    Kind("transaction", "TransactWriteItems", lambda: _changed(_created()), lambda d: _tx(d)),
]
#: The stored state (text, n, tags, version) after each kind applied once (None: gone).
ONCE = {
    "create": ("a", 1, frozenset(), 1),
    "save": ("b", 1, frozenset(), 2),
    "update_fields": ("b", 1, frozenset(), 2),
    "update_f": ("a", 2, frozenset({"t"}), 2),
    "delete": None,
    "transaction": ("b", 1, frozenset(), 2),
}


def _tx(doc: OnceDoc) -> None:
    with dynorm.transaction():
        doc.save()


def _kind(name: str) -> Kind:
    return next(k for k in KINDS if k.name == name)


def _theirs_on_top(once: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """The stored state after ours applied once and the other writer's change on top."""
    if once is None:
        return ("", 0, frozenset(), 1)  # ours deleted it, theirs re-created it
    text, n, tags, version = once
    return (text, n + 100, tags, version + 1)


def _check_instance(doc: OnceDoc) -> None:
    stored = _stored("d")
    if stored is None:
        assert doc.version == 0
    else:
        assert _instance_state(doc) == _state(stored)


# --------------------------------------------------------------------------- fault points


@pytest.mark.parametrize("kind", [k.name for k in KINDS])
def test_a_write_never_sent_is_retried_and_applied_once(
    faults: Faults, retry_sleeps: FakeTime, kind: str
) -> None:
    k = _kind(kind)
    doc = k.prepare()
    attempts = faults.count(k.operation)
    seen = _never_sent(faults, k.operation)
    k.act(doc)
    assert seen == [1] and len(attempts) == 2
    assert _state(_stored("d")) == ONCE[kind]
    _check_instance(doc)


@pytest.mark.parametrize("kind", [k.name for k in KINDS])
def test_a_write_whose_response_was_lost_is_applied_once_and_reported_as_done(
    faults: Faults, retry_sleeps: FakeTime, kind: str
) -> None:
    k = _kind(kind)
    doc = k.prepare()
    applied = faults.lose_response(k.operation)
    k.act(doc)
    assert applied == [200]
    assert _state(_stored("d")) == ONCE[kind]
    _check_instance(doc)


@pytest.mark.parametrize("kind", [k.name for k in KINDS])
def test_the_callers_retry_after_every_response_was_lost_is_applied_once(
    faults: Faults, retry_sleeps: FakeTime, kind: str
) -> None:
    """docs/errors.md: after ServiceError(maybe_applied=True), call the same write again."""
    k = _kind(kind)
    doc = k.prepare()
    applied = faults.lose_response(k.operation, times=100)
    with pytest.raises(ServiceError) as info:
        k.act(doc)
    assert info.value.maybe_applied
    assert not isinstance(info.value, WriteOutcomeUnknownError)
    assert applied[0] == 200 and len(applied) == 3  # every attempt reached DynamoDB
    assert _state(_stored("d")) == ONCE[kind]  # the first attempt was applied
    faults.clear()
    k.act(doc)  # the retry the docs advise: success, nothing applied twice
    assert _state(_stored("d")) == ONCE[kind]
    _check_instance(doc)


def test_a_further_call_after_the_settled_retry_is_a_new_write(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    k = _kind("update_f")
    doc = k.prepare()
    faults.lose_response(k.operation, times=100)
    with pytest.raises(ServiceError):
        k.act(doc)
    faults.clear()
    k.act(doc)  # the retry: settled
    k.act(doc)  # called again once it succeeded: a second increment
    assert _state(_stored("d")) == ("a", 3, frozenset({"t"}), 3)
    _check_instance(doc)


@pytest.mark.parametrize("kind", [k.name for k in KINDS])
def test_the_callers_retry_after_requests_that_never_arrived_is_applied_once(
    faults: Faults, retry_sleeps: FakeTime, kind: str
) -> None:
    k = _kind(kind)
    doc = k.prepare()
    before = _state(_stored("d"))
    _never_sent(faults, k.operation, times=100)
    with pytest.raises(ServiceError):
        k.act(doc)
    assert _state(_stored("d")) == before
    faults.clear()
    k.act(doc)
    assert _state(_stored("d")) == ONCE[kind]
    _check_instance(doc)


@pytest.mark.parametrize("kind", [k.name for k in KINDS if k.name != "transaction"])
def test_a_write_applied_then_overwritten_before_the_retry_says_its_outcome_is_unknown(
    faults: Faults, retry_sleeps: FakeTime, kind: str
) -> None:
    """Applied, response lost, another writer saves on top, then botocore's retry is refused:
    not a VersionConflictError (the caller would apply the change again)."""
    k = _kind(kind)
    doc = k.prepare()
    version = doc.version
    applied = _lost_then(faults, k.operation, _other_writer("d"))
    with pytest.raises(WriteOutcomeUnknownError) as info:
        k.act(doc)
    assert applied == [200]
    err = info.value
    assert not isinstance(err, VersionConflictError) and err.maybe_applied
    assert err.model == "OnceDoc" and err.expected_version == version
    assert "OnceDoc" in str(err) and "theirs" not in str(err)
    assert _state(_stored("d")) == _theirs_on_top(ONCE[kind])  # ours once, theirs on top
    assert doc.version == version  # the instance is not changed
    faults.clear()
    with pytest.raises(WriteOutcomeUnknownError):
        k.act(doc)  # retrying cannot tell either, and never applies it twice
    assert _state(_stored("d")) == _theirs_on_top(ONCE[kind])
    doc.refresh_from_db()  # reload: the unknown attempt is forgotten
    assert _instance_state(doc) == _state(_stored("d"))


def test_a_transaction_applied_then_overwritten_before_the_retry_is_applied_once(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    """botocore's retry carries the same ClientRequestToken: DynamoDB answers with the first
    attempt's success and applies nothing again, whatever was written in between."""
    doc = _changed(_created())
    applied = _lost_then(faults, "TransactWriteItems", _other_writer("d"))
    _tx(doc)
    assert applied == [200]
    assert _state(_stored("d")) == _theirs_on_top(ONCE["transaction"])
    assert doc.version == 2  # our write, applied once (the other writer's is newer)


def test_a_conflict_after_a_request_that_never_arrived_is_a_version_conflict(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    doc = _changed(_created())
    seen: list[int] = []

    def refuse_connection_once(request: Any, **_: Any) -> None:
        if not seen:
            seen.append(1)
            _other_writer("d")()
            raise EndpointConnectionError(endpoint_url=request.url)

    faults.on("before-send.dynamodb.PutItem", refuse_connection_once)
    with pytest.raises(VersionConflictError) as info:
        doc.save()
    assert not isinstance(info.value, WriteOutcomeUnknownError)
    assert info.value.current_version == 2
    assert _state(_stored("d")) == ("a", 101, frozenset(), 2)


def test_a_conflict_at_the_next_version_proves_the_lost_write_was_not_applied(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    """Only one writer can store version n+1: another writer's n+1 means ours never was."""
    doc = _changed(_created())
    seen: list[int] = []

    def other_first_then_timeout(request: Any, **_: Any) -> None:
        if not seen:  # the request is lost on the way, after another writer saved
            seen.append(1)
            _other_writer("d")()
            raise ReadTimeoutError(endpoint_url=request.url)

    faults.on("before-send.dynamodb.PutItem", other_first_then_timeout)
    with pytest.raises(VersionConflictError):
        doc.save()


# --------------------------------------------------------------------------- caller retries


@pytest.mark.parametrize("kind", ["create", "save", "update_fields"])
def test_a_change_made_between_attempts_is_applied_on_top_of_the_earlier_write(
    faults: Faults, retry_sleeps: FakeTime, kind: str
) -> None:
    k = _kind(kind)
    doc = k.prepare()
    faults.lose_response(k.operation, times=100)
    with pytest.raises(ServiceError):
        k.act(doc)
    faults.clear()
    doc.text = "c"
    k.act(doc)
    text, n, tags, version = ONCE[kind]
    assert _state(_stored("d")) == ("c", n, tags, version + 1)
    _check_instance(doc)


def test_a_different_update_after_an_unknown_one_is_applied_on_top_never_twice(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    doc = _created()
    faults.lose_response("UpdateItem", times=100)
    with pytest.raises(ServiceError):
        doc.update(n=F("n") + 1)
    faults.clear()
    doc.update(n=F("n") + 10)  # another call: the earlier +1 was stored, so +10 on top
    assert _state(_stored("d")) == ("a", 12, frozenset(), 3)
    _check_instance(doc)


def test_a_delete_after_an_unknown_save_settles_it_and_deletes(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    doc = _changed(_created())
    faults.lose_response("PutItem", times=100)
    with pytest.raises(ServiceError):
        doc.save()
    faults.clear()
    doc.delete()  # refused at version 1; our save is stored at 2: settled, then deleted
    assert _stored("d") is None and doc.version == 0


def test_an_update_after_an_unknown_create_settles_it_first(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    doc = OnceDoc(id="d", text="a", n=1)
    faults.lose_response("PutItem", times=100)
    with pytest.raises(ServiceError):
        doc.save()
    assert doc.version == 0
    faults.clear()
    doc.update(n=F("n") + 1)  # the create was stored: read, settled, then updated
    assert _state(_stored("d")) == ("a", 2, frozenset(), 2)
    _check_instance(doc)


def test_a_moved_item_whose_responses_were_lost_is_moved_once(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    seat = OnceSeat.objects.create(flight="F1", number="1A", text="x")
    seat.number = "2B"
    faults.lose_response("TransactWriteItems", times=100)
    with pytest.raises(ServiceError):
        seat.save()
    faults.clear()
    seat.save()
    assert raw_get("ONCEFLIGHT#F1", "SEAT#1A") is None
    stored = raw_get("ONCEFLIGHT#F1", "SEAT#2B")
    assert stored is not None and stored["version"] == {"N": "2"}
    assert seat.version == 2


def test_the_retry_of_a_whole_transaction_block_is_applied_once(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    a = OnceDoc.objects.create(id="a", n=1)
    b = OnceDoc.objects.create(id="b", n=1)
    a.text = "A"

    def block() -> None:
        with dynorm.transaction():
            a.save()
            b.update(n=F("n") + 1)

    faults.lose_response("TransactWriteItems", times=100)
    with pytest.raises(ServiceError):
        block()
    faults.clear()
    block()  # the same calls on unchanged objects: recognised as the stored transaction
    assert _state(_stored("a")) == ("A", 1, frozenset(), 2)
    assert _state(_stored("b")) == ("", 2, frozenset(), 2)
    assert _instance_state(a) == _state(_stored("a"))
    assert _instance_state(b) == _state(_stored("b"))


def test_a_changed_transaction_block_after_an_unknown_one_is_refused_then_applies_on_top(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    a = OnceDoc.objects.create(id="a", n=1)
    b = OnceDoc.objects.create(id="b", n=1)

    def block(amount: int) -> None:
        with dynorm.transaction():
            a.update(n=F("n") + amount)
            b.update(n=F("n") - amount)

    faults.lose_response("TransactWriteItems", times=100)
    with pytest.raises(ServiceError):
        block(5)
    faults.clear()
    with pytest.raises(TransactionCanceledError) as info:
        block(7)  # not the same block: nothing of it written, the objects hold the stored 5
    assert "earlier transaction" in str(info.value)
    assert (a.n, a.version, b.n, b.version) == (6, 2, -4, 2)
    block(7)
    assert _state(_stored("a")) == ("", 13, frozenset(), 3)
    assert _state(_stored("b")) == ("", -11, frozenset(), 3)


def test_a_transaction_retry_after_another_writer_says_its_outcome_is_unknown(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    doc = _changed(_created())
    faults.lose_response("TransactWriteItems", times=100)
    with pytest.raises(ServiceError):
        _tx(doc)
    faults.clear()
    _other_writer("d")()  # stored: ours at 2, theirs at 3
    with pytest.raises(WriteOutcomeUnknownError):
        _tx(doc)
    assert _state(_stored("d")) == ("b", 101, frozenset(), 3)


# --------------------------------------------------------------------------- threads


def test_concurrent_increments_under_lost_responses_are_never_lost_or_doubled(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    """Two writers increment one counter with F() while a third of the responses are lost.

    Each increment also adds its own tag in the same UpdateItem, so the stored tags say which
    increments were applied: n == len(tags) (none twice), every increment reported done is
    there, every one reported as a conflict is not.
    """
    OnceDoc.objects.create(id="c")
    rng = random.Random(7)
    lock = threading.Lock()

    def lose_some(request: Any, **_: Any) -> None:
        with lock:
            lose = rng.random() < 0.35
        if not lose:
            return None
        faults.send(request)
        raise ReadTimeoutError(endpoint_url=request.url)

    faults.on("before-send.dynamodb.UpdateItem", lose_some)
    done: list[str] = []
    unknown: list[str] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            doc = OnceDoc.objects.consistent().get(id="c")
            for _ in range(12):
                tag = uuid.uuid4().hex
                while True:
                    try:
                        doc.update(n=F("n") + 1, tags=F("tags").add({tag}))
                    except VersionConflictError:
                        doc.refresh_from_db()  # genuinely not applied: apply it again
                        continue
                    except WriteOutcomeUnknownError:
                        with lock:
                            unknown.append(tag)
                        doc.refresh_from_db()
                        break
                    except ServiceError as exc:
                        assert exc.maybe_applied
                        continue  # the documented retry: the same call again
                    with lock:
                        done.append(tag)
                    break
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    stored = _stored("c")
    assert stored is not None
    tags = set(stored.get("tags", {}).get("SS", []))
    assert int(stored["n"]["N"]) == len(tags)  # no increment applied twice
    assert set(done) <= tags  # none reported done was lost
    assert tags <= set(done) | set(unknown)  # nothing applied that nobody wrote
    assert len(done) + len(unknown) == 24


def test_a_create_of_unknown_outcome_then_a_key_change_moves_the_stored_item(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    """The first create was stored under the old key: the save after the key change moves
    it (no orphan left under the old key), it does not create a second item."""
    seat = OnceSeat(flight="F1", number="1A", text="x")
    faults.lose_response("PutItem", times=100)
    with pytest.raises(ServiceError):
        seat.save()
    faults.clear()
    seat.number = "2B"
    seat.save()
    assert raw_get("ONCEFLIGHT#F1", "SEAT#1A") is None
    stored = raw_get("ONCEFLIGHT#F1", "SEAT#2B")
    assert stored is not None and stored["version"] == {"N": "2"} and seat.version == 2


def test_a_write_lost_then_throttled_until_it_gives_up_is_settled_by_the_retry(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    """Attempt 1 is applied and its response lost; the retries are throttled to the end. The
    error is a throttling error, but the write may have been applied: the retry settles it."""
    doc = _created()
    seen: list[int] = []

    def apply_then_throttle(request: Any, **_: Any) -> Any:
        seen.append(1)
        if len(seen) == 1:
            faults.send(request)
            raise ReadTimeoutError(endpoint_url=request.url)
        from tests.reliability.helpers import aws_error

        return aws_error("ThrottlingException")

    faults.on("before-send.dynamodb.UpdateItem", apply_then_throttle)
    with pytest.raises(dynorm.ThrottledError):
        doc.update(n=F("n") + 1)
    faults.clear()
    doc.update(n=F("n") + 1)  # the same call: the stored first attempt is recognised
    assert _state(_stored("d")) == ("a", 2, frozenset(), 2)
    _check_instance(doc)


def test_bookkeeping_of_writes_never_changes_equality_or_leaks_into_copies(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    doc = _created()
    assert doc == OnceDoc.objects.get(id="d")  # it knows its write token; the loaded one not
    _changed(doc)
    faults.lose_response("PutItem", times=100)
    with pytest.raises(ServiceError):
        doc.save()
    faults.clear()
    copy = doc.model_copy()
    assert copy == doc
    copy.text = "copy"
    with pytest.raises(VersionConflictError):
        copy.save()  # the copy's own write at version 1: it has no earlier attempt
    assert doc.version == 1 and doc.text == "b"  # the original is not touched by it
    doc.save()  # the original still recognises its own stored attempt
    assert _state(_stored("d")) == ("b", 1, frozenset(), 2) and doc.version == 2


class OnceWiki(dynorm.VersionedModel):
    id: str
    body: str = ""

    class Meta:
        pk = "ONCEWIKI#{id}"


def test_the_callers_retry_of_a_versioned_save_writes_one_version(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    wiki = OnceWiki.objects.create(id="w", body="v1")
    wiki.body = "v2"
    faults.lose_response("TransactWriteItems", times=100)
    with pytest.raises(ServiceError):
        wiki.save()
    faults.clear()
    wiki.save()  # recognised: the item and its history item were stored once
    assert wiki.version == 2
    assert [h.version for h in wiki.history()] == [2, 1]
    assert OnceWiki.objects.get(id="w").body == "v2"
    wiki.body = "v3"
    wiki.save()
    assert [(h.version, h.body) for h in wiki.history()] == [(3, "v3"), (2, "v2"), (1, "v1")]


# --------------------------------------------------------------------------- sequences

_FAULTS = ["none", "not_sent", "lost_once", "all_lost", "interleaved"]


def _call(doc: OnceDoc, kind: str, tag: str) -> None:
    if kind == "increment":
        doc.update(n=F("n") + 1, tags=F("tags").add({tag}))
    elif kind == "save":
        doc.save()
    else:
        doc.save(update_fields=["text"])


@settings(
    max_examples=min(30, int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "30"))),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["increment", "save", "update_fields"]), st.sampled_from(_FAULTS)
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_sequence_of_writes_and_faults_applies_each_write_at_most_once(
    faults: Faults, retry_sleeps: FakeTime, steps: list[tuple[str, str]]
) -> None:
    """Each increment adds 1 and its own tag in one UpdateItem; another writer adds 100 and
    its tag. Following the documented recovery (retry the same call after ServiceError,
    reload after WriteOutcomeUnknownError), the stored count always equals what the stored
    tags say was applied: nothing twice, nothing reported done and lost."""
    doc_id = uuid.uuid4().hex[:10]
    doc = OnceDoc.objects.create(id=doc_id)
    done: set[str] = set()
    refused: set[str] = set()
    others: list[str] = []

    def other_writer() -> None:
        others.append(f"other-{len(others)}")
        raw_client().update_item(
            TableName=table_name(),
            Key={"pk": {"S": f"ONCEDOC#{doc_id}"}, "sk": {"S": "OnceDoc"}},
            UpdateExpression="SET n = n + :h, version = version + :one, #t = :theirs ADD tags :tag",
            ExpressionAttributeNames={"#t": "_wtok"},
            ExpressionAttributeValues={
                ":h": {"N": "100"},
                ":one": {"N": "1"},
                ":theirs": {"S": others[-1]},
                ":tag": {"SS": [others[-1]]},
            },
        )

    try:
        for kind, fault in steps:
            tag = uuid.uuid4().hex
            operation = "PutItem" if kind == "save" else "UpdateItem"
            if fault == "not_sent":
                _never_sent(faults, operation)
            elif fault == "lost_once":
                faults.lose_response(operation)
            elif fault == "all_lost":
                faults.lose_response(operation, times=100)
            elif fault == "interleaved":
                _lost_then(faults, operation, other_writer)
            if kind != "increment":
                doc.text = tag
            try:
                try:
                    _call(doc, kind, tag)
                except WriteOutcomeUnknownError:
                    raise
                except ServiceError:
                    faults.clear()
                    _call(doc, kind, tag)  # the documented retry: the same call
                if kind == "increment":
                    done.add(tag)
            except WriteOutcomeUnknownError:
                doc.refresh_from_db()  # the documented recovery: reload and look
            except VersionConflictError:
                refused.add(tag)
                doc.refresh_from_db()
            faults.clear()
    finally:
        faults.clear()  # (hypothesis runs many examples in one test)
    stored = _stored(doc_id)
    assert stored is not None
    tags = set(stored.get("tags", {}).get("SS", []))
    ours = {t for t in tags if not t.startswith("other-")}
    assert int(stored["n"]["N"]) == len(ours) + 100 * len(others)  # nothing applied twice
    assert tags - ours == set(others)
    assert done <= ours and not refused & ours  # reported done: there; refused: not
    doc.refresh_from_db()
    assert _instance_state(doc) == _state(stored)


def test_the_same_update_retried_after_an_unrelated_local_change_is_applied_once(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    """An update writes what the call says: a field changed meanwhile on the object does not
    make the retry a new increment."""
    doc = _created()
    faults.lose_response("UpdateItem", times=100)
    with pytest.raises(ServiceError):
        doc.update(n=F("n") + 1)
    faults.clear()
    doc.text = "edited locally"
    doc.update(n=F("n") + 1)
    stored = _state(_stored("d"))
    assert stored is not None and stored[1] == 2 and stored[3] == 2  # +1 once, version 2
