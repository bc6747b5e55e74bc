"""Exactly once without a write token (`write_token_attribute=None`).

A model mapped onto a table whose other readers refuse unknown attributes stores no `_wtok`.
Its write whose response was lost is then recognised by content: the stored item (the
refusal's ALL_OLD, a consistent view) holds exactly what the write sent. Anything else after
a lost response reads as "may have been applied" (`WriteOutcomeUnknownError`, a
`ServiceError(maybe_applied=True)`), never as a conflict to re-apply or a silent success.
Faults are botocore `before-send` hooks on dynorm's client (see test_write_exactly_once.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from hypothesis import HealthCheck, given, settings, strategies as st

import dynorm
from dynorm import F, Model
from dynorm.exceptions import (
    QueryError,
    ServiceError,
    VersionConflictError,
    WriteOutcomeUnknownError,
)
from tests.reliability.conftest import FakeTime
from tests.reliability.helpers import Faults, raw_client, raw_get, table_name


class BareDoc(Model):
    """dynorm's own key, type and version names; no write token stored."""

    id: str
    text: str = ""
    n: int = 0
    tags: set[str] = set()

    class Meta:
        pk = "BAREDOC#{id}"
        write_token_attribute = None


class BareNote(Model):
    """Neither a version nor a write token: last writer wins."""

    id: str
    text: str = ""
    n: int = 0

    class Meta:
        pk = "BARENOTE#{id}"
        version_attribute = None
        write_token_attribute = None


class NamedTokenDoc(Model):
    id: str
    n: int = 0

    class Meta:
        pk = "NTDOC#{id}"
        write_token_attribute = "dynormWriteToken"


def _stored(doc_id: str = "d") -> dict[str, Any] | None:
    return raw_get(f"BAREDOC#{doc_id}", "BareDoc")


def _state(item: dict[str, Any] | None) -> tuple[Any, ...] | None:
    if item is None:
        return None
    return (
        item.get("text", {}).get("S", ""),
        int(item.get("n", {"N": "0"})["N"]),
        frozenset(item.get("tags", {}).get("SS", [])),
        int(item["version"]["N"]),
    )


def _check_instance(doc: BareDoc) -> None:
    stored = _stored(doc.id)
    if stored is None:
        assert doc.version == 0
    else:
        assert (doc.text, doc.n, frozenset(doc.tags), doc.version) == _state(stored)


def _lost_then(faults: Faults, operation: str, between: Callable[[], None]) -> list[int]:
    """The first attempt is applied, `between()` runs (another writer), the response is lost."""
    http = faults.client._endpoint.http_session
    applied: list[int] = []

    def handler(request: Any, **_: Any) -> None:
        if applied:
            return None
        applied.append(http.send(request).status_code)
        between()
        raise ReadTimeoutError(endpoint_url=request.url)

    faults.on(f"before-send.dynamodb.{operation}", handler)
    return applied


def _other_writer(doc_id: str = "d") -> None:
    """Another process (no token either) adds 100 to `n` and bumps the version."""
    raw_client().update_item(
        TableName=table_name(),
        Key={"pk": {"S": f"BAREDOC#{doc_id}"}, "sk": {"S": "BareDoc"}},
        UpdateExpression="SET n = n + :h, version = version + :one",
        ExpressionAttributeValues={":h": {"N": "100"}, ":one": {"N": "1"}},
    )


@dataclass
class Kind:
    name: str
    operation: str
    prepare: Callable[[], BareDoc]
    act: Callable[[BareDoc], None]


def _created() -> BareDoc:
    return BareDoc.objects.create(id="d", text="a", n=1)


def _changed(doc: BareDoc) -> BareDoc:
    doc.text = "b"
    return doc


def _tx(doc: BareDoc) -> None:
    with dynorm.transaction():
        doc.save()


KINDS = [
    Kind("create", "PutItem", lambda: BareDoc(id="d", text="a", n=1), lambda d: d.save()),
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
    Kind("transaction", "TransactWriteItems", lambda: _changed(_created()), _tx),
]
ONCE = {
    "create": ("a", 1, frozenset(), 1),
    "save": ("b", 1, frozenset(), 2),
    "update_fields": ("b", 1, frozenset(), 2),
    "update_f": ("a", 2, frozenset({"t"}), 2),
    "delete": None,
    "transaction": ("b", 1, frozenset(), 2),
}


def _kind(name: str) -> Kind:
    return next(k for k in KINDS if k.name == name)


def test_a_layout_without_a_write_token_stores_none(dynorm_table: str) -> None:
    doc = _created()
    doc.text = "b"
    doc.save()
    doc.save(update_fields=["text"])
    doc.update(n=F("n") + 1)
    with dynorm.transaction():
        doc.save()
    stored = _stored()
    assert stored is not None and "_wtok" not in stored
    assert _state(stored) == ("b", 2, frozenset(), 5)


def test_a_renamed_write_token_is_stored_under_its_name(dynorm_table: str) -> None:
    doc = NamedTokenDoc.objects.create(id="x")
    doc.update(n=F("n") + 1)
    stored = raw_get("NTDOC#x", "NamedTokenDoc")
    assert stored is not None and "_wtok" not in stored
    assert set(stored["dynormWriteToken"]) == {"S"}
    again = NamedTokenDoc.objects.get(id="x")
    stale = NamedTokenDoc.objects.get(id="x")
    again.save()
    with pytest.raises(VersionConflictError):
        stale.save()


@pytest.mark.parametrize("kind", [k.name for k in KINDS])
def test_without_a_token_a_write_whose_response_was_lost_is_applied_once_and_reported_done(
    faults: Faults, retry_sleeps: FakeTime, kind: str
) -> None:
    k = _kind(kind)
    doc = k.prepare()
    applied = faults.lose_response(k.operation)
    k.act(doc)
    assert applied == [200]
    assert _state(_stored()) == ONCE[kind]
    _check_instance(doc)


@pytest.mark.parametrize("kind", [k.name for k in KINDS])
def test_without_a_token_the_callers_retry_after_every_response_was_lost_is_applied_once(
    faults: Faults, retry_sleeps: FakeTime, kind: str
) -> None:
    k = _kind(kind)
    doc = k.prepare()
    applied = faults.lose_response(k.operation, times=100)
    with pytest.raises(ServiceError) as info:
        k.act(doc)
    assert info.value.maybe_applied
    assert applied[0] == 200
    assert _state(_stored()) == ONCE[kind]
    faults.clear()
    k.act(doc)  # the retry the docs advise: recognised by content, nothing applied twice
    assert _state(_stored()) == ONCE[kind]
    _check_instance(doc)


@pytest.mark.parametrize("kind", ["create", "save", "update_fields", "update_f"])
def test_without_a_token_a_lost_write_changed_by_another_writer_is_an_unknown_outcome(
    faults: Faults, retry_sleeps: FakeTime, kind: str
) -> None:
    """Applied, response lost, a second writer changes it, then botocore's retry is refused:
    the stored item is no longer what was sent, so the outcome is unknown (never a conflict
    inviting a second apply, never a silent success)."""
    k = _kind(kind)
    doc = k.prepare()
    version = doc.version
    applied = _lost_then(faults, k.operation, _other_writer)
    with pytest.raises(WriteOutcomeUnknownError) as info:
        k.act(doc)
    assert applied == [200]
    err = info.value
    assert isinstance(err, ServiceError) and err.maybe_applied
    assert not isinstance(err, VersionConflictError)
    assert err.model == "BareDoc" and "BareDoc" in str(err) and "refresh_from_db" in str(err)
    once = ONCE[kind]
    assert once is not None
    text, n, tags, v = once
    assert _state(_stored()) == (text, n + 100, tags, v + 1)  # ours once, theirs on top
    assert doc.version == version
    faults.clear()
    with pytest.raises(WriteOutcomeUnknownError):
        k.act(doc)  # still cannot tell, and never applies it twice
    assert _state(_stored()) == (text, n + 100, tags, v + 1)


def test_without_a_token_another_writers_next_version_is_not_taken_as_proof(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    """With a token, another writer's item at version n+1 proves ours never was stored; with
    none it may be ours changed since by a writer that keeps the version: unknown."""
    doc = _changed(_created())
    seen: list[int] = []

    def other_first_then_timeout(request: Any, **_: Any) -> None:
        if not seen:
            seen.append(1)
            _other_writer()
            raise ReadTimeoutError(endpoint_url=request.url)

    faults.on("before-send.dynamodb.PutItem", other_first_then_timeout)
    with pytest.raises(WriteOutcomeUnknownError):
        doc.save()
    assert _state(_stored()) == ("a", 101, frozenset(), 2)


def test_without_a_token_a_plain_conflict_is_still_a_version_conflict(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    doc = _changed(_created())
    _other_writer()
    with pytest.raises(VersionConflictError):
        doc.save()


def test_without_a_token_a_different_update_after_an_unknown_one_is_applied_on_top(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    doc = _created()
    faults.lose_response("UpdateItem", times=100)
    with pytest.raises(ServiceError):
        doc.update(n=F("n") + 1)
    faults.clear()
    doc.update(n=F("n") + 10)  # the earlier +1 is recognised as stored: +10 on top, once
    assert _state(_stored()) == ("a", 12, frozenset(), 3)
    _check_instance(doc)


def test_without_a_token_a_queryset_update_whose_response_was_lost_is_applied_once(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    _created()
    applied = faults.lose_response("UpdateItem")
    assert BareDoc.objects.filter(id="d").update(text="q") == 1
    assert applied == [200]
    assert _state(_stored()) == ("q", 1, frozenset(), 2)


def test_with_neither_version_nor_token_an_f_update_is_refused(dynorm_table: str) -> None:
    """Nothing could make its retry after a lost response harmless: refused, not sent."""
    note = BareNote.objects.create(id="n1", n=1)
    with pytest.raises(QueryError, match=r"BareNote\.n .*version_attribute"):
        note.update(n=F("n") + 1)
    with pytest.raises(QueryError, match="write_token_attribute"):
        BareNote.objects.filter(id="n1").update(n=F("n") + 1)
    note.update(n=5)  # a plain value: a retry stores the same value again
    stored = raw_get("BARENOTE#n1", "BareNote")
    assert stored is not None and stored["n"] == {"N": "5"} and "_wtok" not in stored


def test_with_neither_version_nor_token_a_lost_save_is_applied_once(
    faults: Faults, retry_sleeps: FakeTime
) -> None:
    note = BareNote.objects.create(id="n2", text="a")
    note.text = "b"
    applied = faults.lose_response("PutItem")
    note.save()
    assert applied == [200]
    stored = raw_get("BARENOTE#n2", "BareNote")
    assert stored is not None and stored["text"] == {"S": "b"}


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    text=st.text(max_size=20),
    n=st.integers(min_value=-(10**12), max_value=10**12),
    tags=st.sets(st.text(min_size=1, max_size=5), max_size=3),
    lost=st.sampled_from(["PutItem", "UpdateItem"]),
)
def test_without_a_token_any_lost_save_is_recognised_by_its_content(
    faults: Faults, retry_sleeps: FakeTime, text: str, n: int, tags: set[str], lost: str
) -> None:
    """Whatever the values, a save (whole, or update_fields) whose every response was lost is
    recognised by the caller's retry: stored once, the instance holds what is stored."""
    faults.clear()
    raw_client().delete_item(
        TableName=table_name(), Key={"pk": {"S": "BAREDOC#h"}, "sk": {"S": "BareDoc"}}
    )
    doc = BareDoc.objects.create(id="h", text="start")
    doc.text, doc.n, doc.tags = text, n, tags
    faults.lose_response(lost, times=100)
    save: Callable[[], None] = (
        doc.save if lost == "PutItem" else lambda: doc.save(update_fields=["text", "n", "tags"])
    )
    with pytest.raises(ServiceError) as info:
        save()
    assert info.value.maybe_applied
    faults.clear()
    save()
    assert _state(_stored("h")) == (text, n, frozenset(tags), 2)
    _check_instance(doc)
