"""Re-record lambda_stream_event.json: real writes on DynamoDB Local, read from its stream.

Run from the repository root with DynamoDB Local on $DYNORM_TEST_ENDPOINT:
`python -m tests.integration.data.record_lambda_event`. The records of GetRecords are turned
into the shape Lambda delivers (binaries base64, the time in epoch seconds); the last REMOVE
is marked as DynamoDB's TTL marks its deletes.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3

import dynorm
from dynorm import _config
from tests.models import Order, every_type_sample

ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/shop/stream/2026-12-01T00:00:00.000"


def _lambda(value: dict[str, Any]) -> dict[str, Any]:
    ((tag, inner),) = value.items()
    if tag == "B":
        return {"B": base64.b64encode(inner).decode()}
    if tag == "BS":
        return {"BS": [base64.b64encode(b).decode() for b in inner]}
    if tag == "M":
        return {"M": {k: _lambda(v) for k, v in inner.items()}}
    if tag == "L":
        return {"L": [_lambda(v) for v in inner]}
    return {tag: inner}


def main() -> None:
    endpoint = os.environ.get("DYNORM_TEST_ENDPOINT", "http://127.0.0.1:8000")
    dynorm.configure(table_name=f"record-{uuid.uuid4().hex[:8]}", endpoint_url=endpoint)
    dynorm.create_table(streams=True)
    try:
        order = Order.objects.create(
            customer_id="c1", id="01J0RECORDEDORDER00000000A", total=Decimal("12.50"), tags={"gift"}
        )
        order.status = "paid"
        order.save()
        every = every_type_sample()
        every.id = "01J0RECORDEDEVERYTHING000A"
        every.save()
        order.delete()
        conn = _config.get_connection()
        arn = conn.client.describe_table(TableName=conn.table_name)["Table"]["LatestStreamArn"]
        creds = conn.client._request_signer._credentials.get_frozen_credentials()
        client = boto3.client(
            "dynamodbstreams",
            endpoint_url=endpoint,
            region_name=conn.client.meta.region_name,
            aws_access_key_id=creds.access_key,
            aws_secret_access_key=creds.secret_key,
        )
        records: list[dict[str, Any]] = []
        for shard in client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            iterator = client.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            records += client.get_records(ShardIterator=iterator)["Records"]
    finally:
        dynorm.delete_table()
    out = []
    for record in records:
        body = dict(record["dynamodb"])
        body["ApproximateCreationDateTime"] = body["ApproximateCreationDateTime"].timestamp()
        for part in ("Keys", "NewImage", "OldImage"):
            if part in body:
                body[part] = {a: _lambda(v) for a, v in body[part].items()}
        out.append({**record, "awsRegion": "eu-west-1", "dynamodb": body, "eventSourceARN": ARN})
    out[-1]["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    path = Path(__file__).with_name("lambda_stream_event.json")
    path.write_text(json.dumps({"Records": out}, indent=1, sort_keys=True), encoding="utf-8")


if __name__ == "__main__":
    main()
