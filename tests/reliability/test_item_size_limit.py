"""The 400 KB item limit: dynorm refuses a write (ItemTooLargeError, before sending) exactly
when DynamoDB would refuse the item it writes (every attribute dynorm adds counted).

The oracle is DynamoDB Local itself: the same write is first sent with dynorm's check turned
off (to a key of the same length), and DynamoDB's answer says whether the item fits.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import dynorm
from dynorm import F, Model
from dynorm._constants import ITEM_SIZE_LIMIT
from dynorm._item_size import item_size
from dynorm.exceptions import ItemTooLargeError
from dynorm.query import _compile_write
from tests.reliability.helpers import Faults

EXAMPLES = min(25, int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "25")))


class SizeDoc(Model):
    id: str
    body: str = ""
    items: list[str] = []

    class Meta:
        pk = "SIZEDOC#{id}"


#: Bytes of a stored SizeDoc besides the text of `body` (keys, type, version, items, and the
#: write token dynorm adds: "_wtok" and 16 characters), for the ids used here (6 characters).
_OVERHEAD = item_size(
    {
        "pk": {"S": "SIZEDOC#x00000"},
        "sk": {"S": "SizeDoc"},
        "_type": {"S": "SizeDoc"},
        "version": {"N": "1"},
        "id": {"S": "x00000"},
        "body": {"S": ""},
        "items": {"L": []},
        "_wtok": {"S": "0" * 16},
    }
)
_ids = itertools.count()


@contextmanager
def _unchecked(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """dynorm's size check off: DynamoDB alone decides."""
    with monkeypatch.context() as m:
        m.setattr(_compile_write, "check_item_size", lambda item, model: None)
        yield


def _create(doc_id: str, body: str) -> None:
    SizeDoc(id=doc_id, body=body).save()


def _save(doc_id: str, body: str) -> None:
    doc = SizeDoc.objects.create(id=doc_id)
    doc.body = body
    doc.save()


def _update_fields(doc_id: str, body: str) -> None:
    doc = SizeDoc.objects.create(id=doc_id)
    doc.body = body
    doc.save(update_fields=["body"])


def _update(doc_id: str, body: str) -> None:
    SizeDoc.objects.create(id=doc_id).update(body=body)


def _update_append(doc_id: str, body: str) -> None:
    # Most of the body is stored first; the F() append adds the last bytes (a list element
    # costs its text plus 1, so the 14 characters moved from the body add 15 bytes).
    doc = SizeDoc.objects.create(id=doc_id, body=body[:-15])
    doc.update(items=F("items").append([body[-15:-1]]))


def _bulk(doc_id: str, body: str) -> None:
    SizeDoc.objects.bulk_create([SizeDoc(id=doc_id, body=body)])


def _transaction(doc_id: str, body: str) -> None:
    with dynorm.transaction():
        SizeDoc(id=doc_id, body=body).save()


WRITES: dict[str, tuple[Callable[[str, str], None], str]] = {
    "create": (_create, "PutItem"),
    "save": (_save, "PutItem"),
    "update_fields": (_update_fields, "UpdateItem"),
    "update": (_update, "UpdateItem"),
    "update_append": (_update_append, "UpdateItem"),
    "bulk_create": (_bulk, "PutItem"),
    "transaction": (_transaction, "TransactWriteItems"),
}


def _check(
    faults: Faults, monkeypatch: pytest.MonkeyPatch, kind: str, body: str
) -> tuple[bool, bool]:
    """(DynamoDB accepts the item, dynorm accepts it); dynorm refuses before sending."""
    write, operation = WRITES[kind]
    n = next(_ids) % 100_000
    with _unchecked(monkeypatch):
        try:
            write(f"o{n:05d}", body)
            accepted = True
        except ItemTooLargeError as exc:
            assert exc.size is None  # DynamoDB's own refusal
            accepted = False
    attempts = faults.count(operation)
    try:
        write(f"d{n:05d}", body)
        ours = True
    except ItemTooLargeError as exc:
        assert exc.size is not None and exc.size > ITEM_SIZE_LIMIT  # refused by dynorm
        assert "x" * 20 not in str(exc)  # the message names no value
        ours = False
    # The write's own request (a save's setup create is a small PutItem too).
    final = [a for a in attempts if kind != "save" or len(str(a)) > ITEM_SIZE_LIMIT // 2]
    assert len(final) == (1 if ours else 0), "dynorm sent an item it should have refused"
    faults.clear()
    return accepted, ours


@pytest.mark.parametrize("kind", sorted(WRITES))
@pytest.mark.parametrize("delta", [-2, -1, 0, 1, 2, 5, 21, 22])
def test_an_item_is_refused_before_sending_exactly_when_dynamodb_would_refuse_it(
    faults: Faults, monkeypatch: pytest.MonkeyPatch, kind: str, delta: int
) -> None:
    """Bodies `delta` bytes over the limit once every attribute is counted (the write token
    is 21 bytes: a check that leaves it out lets 1..21 through to DynamoDB)."""
    body = "x" * (ITEM_SIZE_LIMIT - _OVERHEAD + delta)
    accepted, ours = _check(faults, monkeypatch, kind, body)
    assert accepted == (delta <= 0)  # the oracle agrees with the bytes counted here
    assert ours == accepted


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(sorted(WRITES)),
    wide=st.sampled_from(["é", "漢", "🎉"]),
    count=st.integers(0, 40),
    delta=st.integers(-12, 12),
)
def test_multibyte_bodies_around_the_limit_are_refused_iff_dynamodb_refuses_them(
    faults: Faults,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    wide: str,
    count: int,
    delta: int,
) -> None:
    head = wide * count
    pad = ITEM_SIZE_LIMIT - _OVERHEAD + delta - len(head.encode())
    body = head + "x" * max(pad, 0)
    accepted, ours = _check(faults, monkeypatch, kind, body)
    assert ours == accepted
