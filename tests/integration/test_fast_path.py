"""The fast read path (raw body, dynorm's decoder) matches botocore's parser on every type."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.config import Config
from pydantic import ValidationError

import dynorm
from dynorm import _config
from dynorm._decode import CollectionDecoder, WireDecoder
from tests.models import Address, Customer, Everything, Order, every_type_sample as sample


def test_raw_and_parsed_decoding_agree_on_every_field_type(dynorm_table: str) -> None:
    e = sample()
    e.save()
    conn = _config.get_connection()
    params = {
        "TableName": conn.table_name,
        "Key": {"pk": {"S": f"EVERY#{e.id}"}, "sk": {"S": "Everything"}},
    }
    parsed = conn.send("GetItem", params)["Item"]
    raw = conn.send_raw("GetItem", params)["Item"]
    assert isinstance(raw["raw"]["B"], str)  # base64 text: botocore did not parse it
    assert isinstance(parsed["raw"]["B"], bytes)
    assert Everything.from_item(raw) == Everything.from_item(parsed) == e
    listed = list(Everything.objects.filter(id=e.id))
    assert listed == [e]


def test_a_user_supplied_client_keeps_working(dynorm_table: str, dynamodb_local: str) -> None:
    client = boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_local,
        region_name="us-east-1",
        aws_access_key_id="dynorm",
        aws_secret_access_key="dynorm",
        config=Config(retries={"mode": "standard", "max_attempts": 2}),
    )
    dynorm.configure(client=client)
    e = sample()
    e.save()
    assert Everything.objects.get(id=e.id) == e
    # the same client still parses normally for its owner
    own = client.get_item(
        TableName=dynorm_table, Key={"pk": {"S": f"EVERY#{e.id}"}, "sk": {"S": "Everything"}}
    )
    assert isinstance(own["Item"]["raw"]["B"], bytes)


def test_empty_map_key_is_refused_before_sending(dynorm_table: str) -> None:
    from dynorm.exceptions import InvalidValueError

    with pytest.raises(InvalidValueError, match="mapping"):
        Everything(mapping={"": 1}).save()


def _record(monkeypatch: pytest.MonkeyPatch, cls: type, *names: str) -> list[Any]:
    """What each call of these decoder methods returned (None: refused), in call order."""
    results: list[Any] = []
    for name in names:
        original = getattr(cls, name)

        def spy(*args: Any, original: Any = original) -> Any:
            got = original(*args)
            results.append(got)
            return got

        monkeypatch.setattr(cls, name, spy)
    return results


def test_collections_validate_pages_with_a_union_of_wire_schemas(
    dynorm_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = Customer.objects.create(email="e@x", name="n", address=Address(city="Oslo"))
    orders = [Order.objects.create(customer_id=customer.id, total=Decimal(i)) for i in range(3)]
    results = _record(monkeypatch, CollectionDecoder, "decode_page")
    group = Customer.objects.filter(id=customer.id).include(Order)
    assert group.one(Customer) == customer
    assert sorted(group.of(Order), key=lambda o: o.id) == sorted(orders, key=lambda o: o.id)
    assert len(results) == 1 and results[0] is not None
    # An item another writer stored with a wrong tag: the general decoder reads the page.
    conn = _config.get_connection()
    conn.client.update_item(
        TableName=conn.table_name,
        Key={"pk": {"S": f"CUSTOMER#{customer.id}"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="SET #n = :v",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":v": {"SS": ["x"]}},
    )
    with pytest.raises(ValidationError):
        Customer.objects.filter(id=customer.id).include(Order).one(Customer)
    assert results[-1] is None


def test_queries_validate_pages_with_the_wire_schema(
    dynorm_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = sample()
    e.save()
    results = _record(monkeypatch, WireDecoder, "decode_page", "decode_item")
    assert list(Everything.objects.filter(id=e.id)) == [e]
    assert Everything.objects.filter(id=e.id).first() == e
    assert Everything.objects.get(id=e.id) == e  # GetItem
    with pytest.raises(Everything.DoesNotExist):
        Everything.objects.get(id="missing")
    assert len(results) == 4 and all(r is not None for r in results)
    assert results[-1] == []


def test_parallel_scan_segments_validate_their_pages_with_the_wire_schema(
    dynorm_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    objs = [sample() for _ in range(6)]
    Everything.objects.bulk_create(objs)
    results = _record(monkeypatch, WireDecoder, "decode_page", "decode_item")
    got = sorted(Everything.objects.scan(segments=3), key=lambda e: e.id)
    assert got == sorted(objs, key=lambda e: e.id)
    assert len(results) >= 3 and all(r is not None for r in results)


def test_a_page_the_wire_schema_refuses_takes_the_general_decoder(
    dynorm_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = sample()
    e.save()
    conn = _config.get_connection()
    key = {"pk": {"S": f"EVERY#{e.id}"}, "sk": {"S": "Everything"}}

    def store_i(value: dict[str, Any]) -> None:  # as another writer would
        conn.client.update_item(
            TableName=conn.table_name,
            Key=key,
            UpdateExpression="SET #i = :v",
            ExpressionAttributeNames={"#i": "i"},
            ExpressionAttributeValues={":v": value},
        )

    # Another writer stored the number as a string: the general decoder still reads it.
    store_i({"S": "42"})
    results = _record(monkeypatch, WireDecoder, "decode_page", "decode_item")
    (got,) = Everything.objects.filter(id=e.id)
    assert Everything.objects.get(id=e.id) == got
    assert results == [None, None]
    assert got.i == 42 and got.model_copy(update={"i": e.i}) == e
    assert got._loaded_key == (key["pk"]["S"], key["sk"]["S"])
    # A value neither path can read fails the same way on both (pydantic's error).
    store_i({"S": "forty-two"})
    with pytest.raises(ValidationError) as listed:
        list(Everything.objects.filter(id=e.id))
    raw = conn.send_raw("GetItem", {"TableName": conn.table_name, "Key": key})["Item"]
    with pytest.raises(ValidationError) as direct:
        Everything.from_item(raw)
    assert listed.value.errors() == direct.value.errors()


def _all_pages(qs: Any, size: int) -> list[tuple[list[Any], str | None]]:
    pages, cursor = [], None
    while True:
        page = qs.page(size=size, cursor=cursor)
        pages.append((page.items, page.next_cursor))
        cursor = page.next_cursor
        if cursor is None:
            return pages


def test_cursor_pages_take_the_wire_schema_with_the_same_cursors(
    dynorm_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Order.objects.bulk_create([Order(customer_id="c", total=Decimal(i)) for i in range(7)])
    by_key = Order.objects.filter(customer_id="c")
    by_index = Order.objects.using_gsi("by_status").filter(status="open")
    calls = _record(monkeypatch, WireDecoder, "decode_keyed_page")
    fast = [_all_pages(by_key, 3), _all_pages(by_index, 3)]
    assert calls and all(c is not None for c in calls)
    assert [len(items) for items, _ in fast[0]] == [3, 3, 1]
    assert [len(items) for items, _ in fast[1]] == [3, 3, 1]
    # The general decoder gives the same instances and the very same cursors.
    monkeypatch.setattr(WireDecoder, "decode_keyed_page", lambda *_: None)
    assert [_all_pages(by_key, 3), _all_pages(by_index, 3)] == fast


def test_bulk_get_takes_the_wire_schema_with_the_same_results(
    dynorm_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    objs = Everything.objects.bulk_create([sample() for _ in range(3)])
    keys = [{"id": o.id} for o in objs] + [{"id": "missing"}, {"id": objs[0].id}]
    calls = _record(monkeypatch, WireDecoder, "decode_batch")
    fast = Everything.objects.bulk_get(keys)
    assert calls and all(c is not None for c in calls)
    assert fast == [*objs, None, objs[0]]
    assert fast[0] is not fast[4]  # a repeated key still gets its own instance
    assert fast[0]._loaded_key == fast[4]._loaded_key is not None
    monkeypatch.setattr(WireDecoder, "decode_batch", lambda *_: None)
    assert Everything.objects.bulk_get(keys) == fast
