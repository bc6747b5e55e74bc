"""DynamoDB Streams into models: real stream records from DynamoDB Local, and a Lambda event."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import dynorm
from dynorm import ConfigurationError, Model, VersionedModel, _config, fields, streams
from tests.models import Customer, Everything, Order, every_type_sample

FIXTURE = HealthCheck.function_scoped_fixture
EVENT = Path(__file__).parent / "data" / "lambda_stream_event.json"


class StreamPage(VersionedModel):
    id: str = fields.ULID()
    body: str

    class Meta:
        pk = "SPAGE#{id}"


class StreamMember(Model):
    id: str = fields.ULID()
    email: str

    class Meta:
        pk = "SMEMBER#{id}"
        unique = [("email",)]


def _records() -> list[dict[str, Any]]:
    """Every record of the configured table's stream, read with the dynamodbstreams client."""
    conn = _config.get_connection()
    arn = conn.client.describe_table(TableName=conn.table_name)["Table"]["LatestStreamArn"]
    creds = conn.client._request_signer._credentials.get_frozen_credentials()
    client = boto3.client(
        "dynamodbstreams",
        endpoint_url=conn.client.meta.endpoint_url,
        region_name=conn.client.meta.region_name,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
    )
    records: list[dict[str, Any]] = []
    for shard in client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = client.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = client.get_records(ShardIterator=iterator)
            records += page["Records"]
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return sorted(records, key=lambda r: int(r["dynamodb"]["SequenceNumber"]))


@pytest.fixture
def streamed(dynorm_table: str) -> str:
    """The test table with its stream enabled (UpdateTable on the existing table)."""
    dynorm.create_table(streams=True)
    return dynorm_table


def test_create_table_streams_enables_new_and_old_images(dynorm_table: str) -> None:
    conn = _config.get_connection()
    fresh = f"{dynorm_table}-s"
    with dynorm.using(fresh):
        dynorm.create_table(streams=True)  # CreateTable with the stream
        try:
            desc = conn.client.describe_table(TableName=fresh)["Table"]
            assert desc["StreamSpecification"] == {
                "StreamEnabled": True,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            }
            dynorm.create_table(streams=True)  # idempotent
        finally:
            dynorm.delete_table()
    dynorm.create_table(streams=True)  # the existing table: UpdateTable
    spec = conn.client.describe_table(TableName=dynorm_table)["Table"]["StreamSpecification"]
    assert spec["StreamViewType"] == "NEW_AND_OLD_IMAGES"


def test_a_table_streaming_another_view_type_is_refused(dynorm_table: str) -> None:
    conn = _config.get_connection()
    conn.client.update_table(
        TableName=dynorm_table,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
    )
    with pytest.raises(ConfigurationError, match="KEYS_ONLY"):
        dynorm.create_table(streams=True)


def test_real_writes_come_back_as_typed_changes(streamed: str) -> None:
    order = Order.objects.create(customer_id="c1", total=Decimal("12.50"), tags={"gift"})
    order.status = "paid"
    order.save()
    Customer.objects.create(id="c1", email="a@example.com", name="Ada")
    stored = Order.objects.get(customer_id="c1", id=order.id)
    order.delete()
    changes = streams.parse({"Records": _records()}, Order)
    assert [c.event_name for c in changes] == ["INSERT", "MODIFY", "REMOVE"]
    insert, modify, remove = changes
    assert insert.old is None and insert.new is not None and insert.new.status == "open"
    assert modify.old == insert.new and modify.new == stored
    assert remove.old == stored and remove.new is None and remove.instance == stored
    assert all(c.model is Order and c.keys == order.dynamo_key for c in changes)
    assert all(c.approximate_time is not None and not c.by_ttl for c in changes)
    every = streams.parse(_records())  # a list of records; every registered model
    assert [c.model for c in every] == [Order, Order, Customer, Order]


@settings(max_examples=5, deadline=None, suppress_health_check=[FIXTURE])
@given(totals=st.lists(st.decimals(-10**6, 10**6, places=3), min_size=1, max_size=4))
def test_each_write_is_one_change_equal_to_the_stored_object(
    streamed: str, totals: list[Decimal]
) -> None:
    before = len(_records())
    saved = [Order.objects.create(customer_id="h", total=t) for t in totals]
    changes = streams.parse(_records()[before:], Order)
    assert [c.new for c in changes] == saved
    assert all(c.event_name == "INSERT" for c in changes)


def test_every_field_type_round_trips_through_the_stream(streamed: str) -> None:
    obj = every_type_sample()
    obj.save()
    (change,) = streams.parse(_records(), Everything)
    assert change.new == Everything.objects.get(id=obj.id)


def test_history_items_are_skipped_unless_asked_for(streamed: str) -> None:
    page = StreamPage.objects.create(body="one")
    page.body = "two"
    page.save()
    records = _records()
    changes = streams.parse(records, StreamPage)
    assert [(c.event_name, c.new.body if c.new else None) for c in changes] == [
        ("INSERT", "one"),
        ("MODIFY", "two"),
    ]
    everything = streams.parse(records, StreamPage, internal=True)
    internal = [c for c in everything if c.internal]
    assert len(internal) == 2 and all(c.entity_type == "StreamPage#history" for c in internal)
    assert all(c.model is StreamPage and c.new is None and c.new_image for c in internal)


def test_unique_guard_items_are_internal(streamed: str) -> None:
    member = StreamMember.objects.create(email="a@example.com")
    records = _records()
    assert [c.new for c in streams.parse(records)] == [member]
    (guard,) = [c for c in streams.parse(records, internal=True) if c.internal]
    assert guard.entity_type == "StreamMember#unique" and guard.model is StreamMember


def test_items_of_unknown_entity_types_are_skipped(streamed: str) -> None:
    conn = _config.get_connection()
    conn.client.put_item(
        TableName=streamed,
        Item={"pk": {"S": "X"}, "sk": {"S": "Y"}, "_type": {"S": "NotAModel"}},
    )
    conn.client.put_item(TableName=streamed, Item={"pk": {"S": "X"}, "sk": {"S": "Z"}})
    assert streams.parse(_records()) == []
    assert streams.parse(_records(), internal=True) == []


def test_a_recorded_lambda_event_parses_into_changes() -> None:
    """Records of real writes on DynamoDB Local, in the shape Lambda delivers them."""
    event = json.loads(EVENT.read_text(encoding="utf-8"))
    changes = streams.parse(event)
    assert [(c.event_name, c.model) for c in changes] == [
        ("INSERT", Order),
        ("MODIFY", Order),
        ("INSERT", Everything),
        ("REMOVE", Order),
    ]
    insert, modify, every, remove = changes
    assert modify.old == insert.new and modify.new is not None and modify.new.status == "paid"
    assert insert.new is not None and insert.new.total == Decimal("12.50")
    assert every.new is not None
    expected = every_type_sample()
    assert every.new.raw == expected.raw and every.new.bs == expected.bs  # base64 decoded
    assert every.new.line == expected.line and every.new.when == expected.when
    assert remove.by_ttl and remove.old == modify.new and remove.new is None
    assert remove.approximate_time is not None and remove.approximate_time.tzinfo is not None
    assert streams.parse(event, Everything) == [every]


def test_keys_only_records_are_dispatched_by_their_key_templates() -> None:
    event = json.loads(EVENT.read_text(encoding="utf-8"))
    for record in event["Records"]:
        record["dynamodb"].pop("NewImage", None)
        record["dynamodb"].pop("OldImage", None)
    changes = streams.parse(event, Order, Everything)
    assert [c.model for c in changes] == [Order, Order, Everything, Order]
    assert all(c.old is None and c.new is None for c in changes)
    assert changes[0].keys["pk"] == "CUSTOMER#c1"


def test_what_is_not_a_stream_event_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="without records"):
        streams.parse({"body": "x"})
    with pytest.raises(ConfigurationError, match="not a DynamoDB stream record"):
        streams.parse([{"eventName": "ObjectCreated:Put", "s3": {}}])
    assert streams.parse({"Records": []}) == []
