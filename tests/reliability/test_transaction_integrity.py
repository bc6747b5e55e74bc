"""Transactions: every instance equals its stored item after the commit, and nested blocks are
savepoints (an inner block that raises contributes nothing)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import dynorm
from dynorm import F, Model
from dynorm.exceptions import TransactionCanceledError
from tests.reliability.helpers import raw_get

EXAMPLES = min(40, int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "40")))


class TxDoc(Model):
    id: str
    text: str = ""
    n: int = 0
    tags: set[str] = set()
    items: list[int] = []

    class Meta:
        pk = "TXDOC#{id}"


class Boom(Exception):
    pass


def _stored(doc_id: str) -> dict[str, Any] | None:
    return raw_get(f"TXDOC#{doc_id}", "TxDoc")


def _fields(doc: TxDoc) -> tuple[Any, ...]:
    return (doc.text, doc.n, frozenset(doc.tags), tuple(doc.items), doc.version)


def _assert_equals_stored(doc: TxDoc) -> None:
    """The instance holds exactly the stored item (or version 0 when there is none)."""
    stored = _stored(doc.id)
    if stored is None:
        assert doc.version == 0
        return
    assert _fields(doc) == _fields(TxDoc.from_item(stored))


# --------------------------------------------------------------------------- update() in a block


def test_an_f_update_in_a_transaction_leaves_the_instance_equal_to_the_stored_item(
    dynorm_table: str,
) -> None:
    doc = TxDoc.objects.create(id="a", n=1, items=[1])
    with dynorm.transaction():
        doc.update(n=F("n") + 1, tags=F("tags").add({"x"}), items=F("items").append([2]))
    assert (doc.n, doc.tags, doc.items, doc.version) == (2, {"x"}, [1, 2], 2)
    _assert_equals_stored(doc)


def test_a_save_after_an_f_update_in_a_transaction_keeps_the_increment(dynorm_table: str) -> None:
    doc = TxDoc.objects.create(id="a", n=1)
    with dynorm.transaction():
        doc.update(n=F("n") + 1)
    doc.text = "later"
    doc.save()  # passes the version check: it must not write the stale n back
    stored = _stored("a")
    assert stored is not None and stored["n"] == {"N": "2"} and stored["text"] == {"S": "later"}


def test_an_f_update_of_an_instance_with_unsaved_changes_holds_the_stored_result(
    dynorm_table: str,
) -> None:
    doc = TxDoc.objects.create(id="a", n=1)
    doc.n = 50  # not saved: F("n") reads the stored 1
    with dynorm.transaction():
        doc.update(n=F("n") + 1)
    assert doc.n == 2
    _assert_equals_stored(doc)


# --------------------------------------------------------------------------- the invariant

_OPS = st.sampled_from(["save", "update_fields", "update_f", "update_plain", "delete", "none"])


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plan=st.lists(
        st.tuples(_OPS, st.integers(-3, 3), st.text("ab", max_size=3), st.booleans()),
        min_size=1,
        max_size=4,
    )
)
def test_after_any_committed_transaction_every_instance_equals_its_stored_item(
    dynorm_table: str, plan: list[tuple[str, int, str, bool]]
) -> None:
    """Each object gets one write (the block touches an item once): a create for new objects,
    else a save, update_fields, F() update, plain update or delete; some objects also carry
    unsaved local changes. After the commit each instance is its stored item, and saving it
    again changes nothing but the version."""
    run = uuid.uuid4().hex[:8]
    docs: list[TxDoc] = []
    for index, (_, amount, text, stored) in enumerate(plan):
        doc = TxDoc(id=f"{run}-{index}", n=amount, text=text)
        if stored:
            doc.save()
        docs.append(doc)
    with dynorm.transaction():
        for doc, (op, amount, text, stored) in zip(docs, plan):
            if not stored:
                doc.save()  # a create
            elif op == "save":
                doc.text = text + "!"
                doc.save()
            elif op == "update_fields":
                doc.text = text + "?"
                doc.save(update_fields=["text"])
            elif op == "update_f":
                doc.n += 1000  # an unsaved change F() must not be based on
                doc.update(n=F("n") + amount, tags=F("tags").add({text or "t"}))
            elif op == "update_plain":
                doc.update(text=text, n=amount)
            elif op == "delete":
                doc.delete()
    for doc in docs:
        _assert_equals_stored(doc)
    for doc in docs:
        if doc.version:
            before = _fields(doc)
            doc.save()
            assert _fields(doc)[:-1] == before[:-1]
            _assert_equals_stored(doc)


# --------------------------------------------------------------------------- savepoints


def test_an_inner_block_that_raises_contributes_nothing(dynorm_table: str) -> None:
    a = TxDoc.objects.create(id="a")
    b = TxDoc.objects.create(id="b")
    c = TxDoc(id="c")
    with dynorm.transaction():
        a.update(n=F("n") + 1)
        try:
            with dynorm.transaction():
                b.update(n=F("n") + 1)
                c.save()
                raise Boom
        except Boom:
            pass
    stored_a, stored_b = _stored("a"), _stored("b")
    assert stored_a is not None and stored_a["n"] == {"N": "1"}
    assert (
        stored_b is not None and stored_b["n"] == {"N": "0"} and stored_b["version"] == {"N": "1"}
    )
    assert _stored("c") is None
    assert (b.version, b.n, c.version) == (1, 0, 0)  # instances of the inner block unchanged
    _assert_equals_stored(a)
    _assert_equals_stored(b)


def test_an_inner_block_that_succeeds_joins_the_outer_transaction(dynorm_table: str) -> None:
    a = TxDoc.objects.create(id="a")
    b = TxDoc.objects.create(id="b")
    with pytest.raises(Boom):
        with dynorm.transaction():
            a.update(n=F("n") + 1)
            with dynorm.transaction():
                b.update(n=F("n") + 1)
            raise Boom  # the outer block fails: nothing is sent, the inner writes included
    assert (a.version, b.version) == (1, 1)
    with dynorm.transaction():
        with dynorm.transaction():
            b.update(n=F("n") + 1)
        a.update(n=F("n") + 1)
    assert (a.n, b.n) == (1, 1)
    _assert_equals_stored(a)
    _assert_equals_stored(b)


def test_savepoints_nest_and_only_the_failed_levels_are_dropped(dynorm_table: str) -> None:
    docs = [TxDoc.objects.create(id=str(i)) for i in range(4)]
    with dynorm.transaction():
        docs[0].update(n=1)
        with dynorm.transaction():
            docs[1].update(n=1)
            try:
                with dynorm.transaction():
                    docs[2].update(n=1)
                    with dynorm.transaction():
                        docs[3].update(n=1)
                    raise Boom  # drops docs[2] and docs[3] (the inner block had joined)
            except Boom:
                pass
    assert [d.n for d in docs] == [1, 1, 0, 0]
    for d in docs:
        _assert_equals_stored(d)


def test_a_write_refused_in_a_caught_inner_block_does_not_cancel_the_outer(
    dynorm_table: str,
) -> None:
    """The checks made before sending (the same item twice) see only the kept writes."""
    a = TxDoc.objects.create(id="a")
    with dynorm.transaction():
        try:
            with dynorm.transaction():
                a.update(n=5)
                raise Boom
        except Boom:
            pass
        a.update(n=7)  # the same item again: fine, the inner write was dropped
    assert a.n == 7
    _assert_equals_stored(a)


def test_a_failed_outer_commit_leaves_every_instance_unchanged(dynorm_table: str) -> None:
    a = TxDoc.objects.create(id="a")
    stale = TxDoc.objects.get(id="a")
    a.update(n=1)
    b = TxDoc.objects.create(id="b")
    with pytest.raises(TransactionCanceledError):
        with dynorm.transaction():
            b.update(n=F("n") + 1)
            stale.update(n=F("n") + 1)
    assert (b.n, b.version, stale.version) == (0, 1, 1)
