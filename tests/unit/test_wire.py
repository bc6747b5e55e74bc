"""The page schema (dynorm._page_schema, dynorm._decode) decodes as the general decoder, or refuses.

Every test compares `WireDecoder.decode_page` on a DynamoDB JSON body with the
straightforward path (`json.loads` + `Model.from_item`): same values, same types, same
fields-set, same private state. A page the wire schema refuses returns None, which sends
it to the general decoder (tested end to end in tests/integration/test_fast_path.py).
"""

from __future__ import annotations

import base64
import json
import os
from decimal import Decimal
from typing import Any, Optional

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import BaseModel, PrivateAttr, field_validator, model_validator
from pydantic_core import SchemaError

from dynorm import Model, _page_schema
from dynorm._decode import CollectionDecoder, WireDecoder
from dynorm._instance_writes import build_item
from dynorm._registry import isolated_registry
from tests.models import (
    Address,
    Customer,
    Everything,
    Order,
    OrderLine,
    every_type_sample as sample,
)


def wire_json(value: Any) -> Any:
    """An item as DynamoDB sends it in JSON: binary values as base64 text."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: wire_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire_json(v) for v in value]
    return value


def body_of(*items: dict[str, Any], last_key: dict[str, Any] | None = None) -> bytes:
    page: dict[str, Any] = {"Items": list(items), "Count": len(items), "ScannedCount": 9}
    if last_key is not None:
        page["LastEvaluatedKey"] = last_key
    return json.dumps(page).encode()


def stored(obj: Model) -> dict[str, Any]:
    return wire_json(build_item(obj, {}))


def assert_same(fast: Model, slow: Model) -> None:
    assert type(fast) is type(slow)
    assert fast == slow
    for name in type(slow).model_fields:
        assert type(getattr(fast, name)) is type(getattr(slow, name)), name
    assert fast.__pydantic_fields_set__ == slow.__pydantic_fields_set__
    assert fast.__pydantic_private__ == slow.__pydantic_private__
    assert set(fast.__dict__) == set(type(slow).model_fields)  # nothing but the fields


def decode_both(model: type[Model], item: dict[str, Any]) -> tuple[Model, Model]:
    got = WireDecoder(model).decode_page(body_of(item))
    assert got is not None, "the wire schema refused the page"
    (fast,) = got[0]
    return fast, model.from_item(json.loads(json.dumps(item)))


def test_every_field_type_decodes_as_the_general_decoder_does() -> None:
    fast, slow = decode_both(Everything, stored(sample()))
    assert_same(fast, slow)
    assert fast._loaded_key == slow._loaded_key is not None


def test_defaults_and_absent_attributes() -> None:
    # None is left off the item and empty sets too: both paths read them back as such.
    fast, slow = decode_both(Everything, stored(Everything()))
    assert_same(fast, slow)
    assert fast.maybe is None and fast.ss == set() and fast.line is None


def test_nested_models_lists_sets_and_none_inside_maps() -> None:
    order = Order(
        customer_id="c",
        total=Decimal("10.50"),
        lines=[OrderLine(sku="a", qty=1, price=Decimal("1")), OrderLine(sku="b", qty=2, price=0)],
        tags={"x", "y"},
    )
    assert_same(*decode_both(Order, stored(order)))
    customer = Customer(email="e@x", name="n", address=Address(city="Oslo"))  # zip: NULL
    item = stored(customer)
    assert item["address"]["M"]["zip"] == {"NULL": True}
    assert_same(*decode_both(Customer, item))


def test_a_page_keeps_its_last_evaluated_key_and_order() -> None:
    objs = [Order(customer_id="c", total=Decimal(i)) for i in range(3)]
    last = {"pk": {"S": "CUSTOMER#c"}, "sk": {"S": "ORDER#x"}}
    got = WireDecoder(Order).decode_page(body_of(*map(stored, objs), last_key=last))
    assert got is not None
    assert [o.total for o in got[0]] == [0, 1, 2]
    assert got[1] == last
    empty = WireDecoder(Order).decode_page(b'{"Items": [], "Count": 0}')
    assert empty == ([], None)


def test_nullable_field_with_another_default_reads_absent_as_none() -> None:
    with isolated_registry():

        class Prefs(Model):
            id: str
            nickname: str | None = "anon"
            labels: set[str] = {"default"}

            class Meta:
                pk = "PREFS#{id}"

        prefs = Prefs(id="1", nickname=None, labels=set())
        fast, slow = decode_both(Prefs, stored(prefs))
        assert_same(fast, slow)
        assert fast.nickname is None and fast.labels == set()


@pytest.mark.parametrize(
    ("attr", "value"),
    [
        ("i", {"S": "5"}),  # a number stored as a string
        ("s", {"N": "5"}),  # a string stored as a number
        ("s", {"NULL": True}),  # NULL at the top level (another writer)
        ("ss", {"L": [{"S": "a"}]}),  # a set stored as a list
        ("line", {"NULL": True}),  # a nested model stored as NULL
        ("line", {"S": "x"}),
        ("when", {"N": "1"}),
    ],
)
def test_a_value_under_an_unexpected_tag_is_refused_not_defaulted(
    attr: str, value: dict[str, Any]
) -> None:
    item = stored(sample())
    item[attr] = value
    assert WireDecoder(Everything).decode_page(body_of(item)) is None


def test_a_stored_value_pydantic_rejects_is_refused() -> None:
    item = stored(sample())
    item["kind"] = {"S": "not-a-literal"}
    assert WireDecoder(Everything).decode_page(body_of(item)) is None


def test_a_refused_item_refuses_the_whole_page() -> None:
    good, bad = stored(sample()), stored(sample())
    bad["i"] = {"S": "x"}
    assert WireDecoder(Everything).decode_page(body_of(good, bad)) is None


def test_after_validators_run_and_private_state_is_fresh() -> None:
    with isolated_registry():

        class Shouty(Model):
            id: str
            name: str
            _seen: list[str] = PrivateAttr(default_factory=list)

            class Meta:
                pk = "SHOUTY#{id}"

            @field_validator("name")
            @classmethod
            def upper(cls, value: str) -> str:
                return value.upper()

        item = stored(Shouty(id="1", name="quiet"))
        item["name"] = {"S": "quiet"}
        fast, slow = decode_both(Shouty, item)
        assert_same(fast, slow)
        assert fast.name == "QUIET"
        fast._seen.append("x")  # a factory default: each instance has its own
        other, _ = decode_both(Shouty, item)
        assert other._seen == []


def test_a_user_before_validator_keeps_the_general_decoder() -> None:
    with isolated_registry():

        class Legacy(Model):
            id: str
            size: int = 0

            class Meta:
                pk = "LEGACY#{id}"

            @model_validator(mode="before")
            @classmethod
            def rename(cls, data: Any) -> Any:
                if isinstance(data, dict) and "old_size" in data:
                    data = {**data, "size": data.pop("old_size")}
                return data

        decoder = WireDecoder(Legacy)
        assert decoder.page is None
        assert decoder.decode_page(body_of(stored(Legacy(id="1")))) is None


def test_before_field_validators_and_unions_use_dynorm_decoders() -> None:
    class Box(BaseModel):
        width: int
        label: str | None = None

    with isolated_registry():

        class Crate(Model):
            id: str
            size: int | str = 0
            count: int = 0
            boxes: list[Box] = []
            spare: Optional[Box] = None  # noqa: UP045
            notes: dict[str, list[int]] = {}

            class Meta:
                pk = "CRATE#{id}"

            @field_validator("count", mode="before")
            @classmethod
            def seen(cls, value: Any) -> Any:
                assert isinstance(value, int), "the before-validator sees the decoded value"
                return value

        crate = Crate(id="1", size="big", count=3, boxes=[Box(width=1), Box(width=2, label="l")])
        crate.notes = {"a": [1, 2]}
        assert_same(*decode_both(Crate, stored(crate)))
        assert WireDecoder(Crate).page is not None


def test_self_referencing_models_decode() -> None:
    class Node(BaseModel):
        name: str
        children: list[Node] = []

    with isolated_registry():

        class Tree(Model):
            id: str
            root: Node

            class Meta:
                pk = "TREE#{id}"

        tree = Tree(
            id="1", root=Node(name="a", children=[Node(name="b", children=[Node(name="c")])])
        )
        assert_same(*decode_both(Tree, stored(tree)))


def test_a_model_with_its_own_post_init_keeps_it() -> None:
    with isolated_registry():

        class Counted(Model):
            id: str
            _loads: int = PrivateAttr(default=0)

            class Meta:
                pk = "COUNTED#{id}"

            def model_post_init(self, context: Any, /) -> None:
                super().model_post_init(context)
                self._loads += 1

        fast, slow = decode_both(Counted, stored(Counted(id="1")))
        assert_same(fast, slow)
        assert fast._loads == 1


@settings(
    max_examples=int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "100")),
    deadline=None,
    database=None,
)
@given(
    s=st.text(max_size=20),
    i=st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1),
    f=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e125, max_value=1e125).filter(
        lambda x: x == 0 or abs(x) >= 1e-125
    ),
    d=st.decimals(min_value=-(10**20), max_value=10**20, allow_nan=False, places=6),
    ns=st.sets(st.integers(min_value=-(10**20), max_value=10**20), max_size=3),
)
def test_numbers_and_text_agree_with_the_general_decoder(
    s: str, i: int, f: float, d: Decimal, ns: set[int]
) -> None:
    obj = Everything(s=s, i=i, f=f, d=d, ns=ns)
    assert_same(*decode_both(Everything, stored(obj)))


def test_a_schema_pydantic_core_will_not_build_costs_speed_not_the_query(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(schema: Any) -> Any:
        raise SchemaError("unforeseen")

    monkeypatch.setattr(_page_schema, "SchemaValidator", refuse)
    decoder = WireDecoder(Everything)
    assert decoder.page is None
    assert decoder.decode_page(body_of(stored(sample()))) is None


def test_a_get_item_body_decodes_as_the_general_decoder_does() -> None:
    item = stored(sample())
    got = WireDecoder(Everything).decode_item(json.dumps({"Item": item}).encode())
    assert got is not None
    (fast,) = got
    assert_same(fast, Everything.from_item(json.loads(json.dumps(item))))


def test_a_get_item_body_without_an_item_of_the_model_finds_nothing() -> None:
    decoder = WireDecoder(Everything)
    assert decoder.decode_item(b"{}") == []
    other = stored(sample())
    other["_type"] = {"S": "SomethingElse"}  # same shape, another entity type
    assert decoder.decode_item(json.dumps({"Item": other}).encode()) == []
    untyped = stored(sample())
    del untyped["_type"]
    assert decoder.decode_item(json.dumps({"Item": untyped}).encode()) == []
    broken = stored(sample())
    broken["i"] = {"S": "x"}
    assert decoder.decode_item(json.dumps({"Item": broken}).encode()) is None


def test_a_collection_page_decodes_each_entity_type_as_the_general_decoder_does() -> None:
    customer = Customer(email="e@x", name="n", address=Address(city="Oslo"))
    orders = [Order(customer_id=customer.id, total=Decimal(i), tags={"t"}) for i in range(2)]
    items = [stored(customer), *map(stored, orders)]
    decoder = CollectionDecoder((Customer, Order))
    got = decoder.decode_page(body_of(*items))
    assert got is not None
    assert [type(o) for o in got[0]] == [Customer, Order, Order]
    for fast, item in zip(got[0], items):
        assert_same(fast, type(fast).from_item(json.loads(json.dumps(item))))


def test_a_collection_page_with_another_entity_type_is_refused() -> None:
    decoder = CollectionDecoder((Customer,))
    order = stored(Order(customer_id="c", total=Decimal(1)))
    assert decoder.decode_page(body_of(order)) is None
    untyped = stored(Customer(email="e@x", name="n"))
    del untyped["_type"]
    assert decoder.decode_page(body_of(untyped)) is None


def test_after_model_validators_see_only_the_fields() -> None:
    seen: list[set[str]] = []
    with isolated_registry():

        class Span(Model):
            id: str
            low: int = 0
            high: int = 0

            class Meta:
                pk = "SPAN#{id}"

            @model_validator(mode="after")
            def ordered(self) -> Span:
                seen.append(set(self.__dict__))
                if self.low > self.high:
                    raise ValueError("low is above high")
                return self

        decoder = WireDecoder(Span)
        assert decoder.page is not None  # an after-validator keeps the wire schema
        fast, slow = decode_both(Span, stored(Span(id="1", low=1, high=2)))
        assert_same(fast, slow)
        assert seen and all(keys == set(Span.model_fields) for keys in seen)
        bad = stored(Span(id="2", low=1, high=2))
        bad["low"] = {"N": "5"}
        assert decoder.decode_page(body_of(bad)) is None  # refused: the general decoder raises


def test_a_refusal_is_logged_with_names_and_never_values(caplog: pytest.LogCaptureFixture) -> None:
    item = stored(sample())
    item["i"] = {"S": "secret-4711"}
    item["mapping"] = {"M": {"private-key-name": {"S": "not a number"}}}
    with caplog.at_level("DEBUG", logger="dynorm"):
        assert WireDecoder(Everything).decode_page(body_of(item)) is None
    text = caplog.text
    assert "Everything" in text and " in i" in text and " in mapping" in text
    assert "secret-4711" not in text and "private-key-name" not in text
    assert "not a number" not in text


def test_a_batch_get_body_decodes_per_key_and_keeps_unprocessed_keys() -> None:
    mine, other = stored(sample()), stored(sample())
    other["_type"] = {"S": "SomethingElse"}
    unprocessed = {"t": {"Keys": [{"pk": {"S": "p"}, "sk": {"S": "s"}}]}}
    body = json.dumps({"Responses": {"t": [mine, other]}, "UnprocessedKeys": unprocessed})
    got = WireDecoder(Everything).decode_batch(body.encode(), "t")
    assert got is not None
    found, left = got
    assert left == unprocessed
    assert found[(other["pk"]["S"], other["sk"]["S"])] is None  # another entity type
    fast = found[(mine["pk"]["S"], mine["sk"]["S"])]
    assert fast is not None
    assert_same(fast, Everything.from_item(json.loads(json.dumps(mine))))
    broken = dict(mine, i={"S": "x"})
    bad = json.dumps({"Responses": {"t": [broken]}}).encode()
    assert WireDecoder(Everything).decode_batch(bad, "t") is None
