"""`_proof.Sent`: how a layout without a write token recognises its own write by content."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from hypothesis import given, settings, strategies as st

from dynorm._proof import Sent, register, sent_for, sent_of

_names = st.text(alphabet="abcdefgh", min_size=1, max_size=4)
_numbers = st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str)
_scalars = st.one_of(
    st.text(max_size=8).map(lambda s: {"S": s}),
    _numbers.map(lambda n: {"N": n}),
    st.binary(max_size=6).map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.sets(st.text(min_size=1, max_size=4), min_size=1, max_size=3).map(
        lambda s: {"SS": sorted(s)}
    ),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda v: {"L": v}),
        st.dictionaries(_names, inner, max_size=3).map(lambda v: {"M": v}),
    ),
    max_leaves=4,
)
_items = st.dictionaries(_names, _values, min_size=1, max_size=5)


def _as_stored(av: Any) -> Any:
    """What DynamoDB hands back: numbers normalised, sets reordered, binary as base64 text."""
    ((tag, value),) = av.items()
    if tag == "N":
        return {"N": str(Decimal(value).normalize())}
    if tag == "SS":
        return {"SS": list(reversed(value))}
    if tag == "B":
        return {"B": base64.b64encode(value).decode()}
    if tag == "L":
        return {"L": [_as_stored(v) for v in value]}
    if tag == "M":
        return {"M": {k: _as_stored(v) for k, v in value.items()}}
    return av


@settings(max_examples=50, deadline=None)
@given(_items)
def test_a_put_is_recognised_in_the_item_dynamodb_stored(item: dict[str, Any]) -> None:
    sent = sent_of("PutItem", {"Item": item})
    assert sent is not None
    assert sent.shows({k: _as_stored(v) for k, v in item.items()})


@settings(max_examples=50, deadline=None)
@given(_items, st.data())
def test_a_put_is_not_recognised_in_any_other_item(item: dict[str, Any], data: Any) -> None:
    sent = sent_of("PutItem", {"Item": item})
    assert sent is not None
    name = data.draw(st.sampled_from(sorted(item)))
    assert not sent.shows({**item, name: {"NULL": True}})  # one value differs (no NULL drawn)
    assert not sent.shows({k: v for k, v in item.items() if k != name})  # one is missing
    assert not sent.shows({**item, name + "_extra": {"S": "x"}})  # a PutItem replaced the item


def test_an_update_is_recognised_by_its_key_sets_and_removes() -> None:
    params = {
        "Key": {"pk": {"S": "k"}},
        "UpdateExpression": "SET #n0 = :v0, #n1 = :v1 REMOVE #n2",
        "ExpressionAttributeNames": {"#n0": "text", "#n1": "version", "#n2": "gone"},
        "ExpressionAttributeValues": {":v0": {"S": "b"}, ":v1": {"N": "2"}},
    }
    sent = sent_of("UpdateItem", params)
    assert sent is not None
    stored = {"pk": {"S": "k"}, "text": {"S": "b"}, "version": {"N": "2"}, "kept": {"N": "1"}}
    assert sent.shows(stored)  # an update keeps the attributes it does not name
    assert not sent.shows({**stored, "gone": {"S": "x"}})
    assert not sent.shows({**stored, "version": {"N": "3"}})
    assert not sent.shows({**stored, "pk": {"S": "other"}})


def test_a_value_computed_in_dynamodb_needs_the_writers_own_result() -> None:
    params = {
        "Key": {"pk": {"S": "k"}},
        "UpdateExpression": "SET #n0 = #n0 + :v0, #n1 = list_append(#n1, :v1) ADD #n2 :v2",
        "ExpressionAttributeNames": {"#n0": "n", "#n1": "log", "#n2": "tags"},
        "ExpressionAttributeValues": {":v0": {"N": "1"}, ":v1": {"L": []}, ":v2": {"SS": ["t"]}},
    }
    assert sent_of("UpdateItem", params) is None  # cannot be recognised: never a guess
    result = {"n": {"N": "2"}, "log": {"L": []}, "tags": {"SS": ["t"]}}
    sent = sent_of("UpdateItem", params, result)
    assert sent is not None
    assert sent.shows({"pk": {"S": "k"}, **result})
    assert not sent.shows({"pk": {"S": "k"}, **result, "n": {"N": "3"}})


def test_a_transactions_own_item_is_its_first_write_or_the_put_of_a_move() -> None:
    put = {"Put": {"Item": {"pk": {"S": "new"}}}}
    move = {"TransactItems": [{"Delete": {"Key": {"pk": {"S": "old"}}}}, put]}
    sent = sent_of("TransactWriteItems", move)
    assert sent is not None and sent.shows({"pk": {"S": "new"}})
    assert sent_of("DeleteItem", {"Key": {"pk": {"S": "old"}}}) is None


def test_a_registered_sent_lives_as_long_as_its_write() -> None:
    sent = Sent({"pk": {"S": "k"}}, (), whole=True)
    register("token-1", sent)
    assert sent_for("token-1") is sent
    del sent
    assert sent_for("token-1") is None
