"""The raw-body path decodes the same with orjson (the `fast` extra) and with the stdlib."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from dynorm import _connection, _json
from dynorm._connection import Connection


class _Client:
    """A stand-in client whose response carries a raw body, as the before-parse hook leaves it."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.meta = type(
            "Meta",
            (),
            {"events": type("E", (), {"register": staticmethod(lambda *a, **k: None)})()},
        )()

    def get_item(self, **_: Any) -> dict[str, Any]:
        return {_connection._RAW_BODY: self.body, "ResponseMetadata": {"HTTPStatusCode": 200}}


BODY = json.dumps(
    {
        "Item": {
            "pk": {"S": "é"},
            "n": {"N": "1.50"},
            "b": {"B": "AP8="},
            "l": {"L": [{"NULL": True}]},
        }
    }
).encode()


@pytest.mark.parametrize("loads", [json.loads, orjson.loads], ids=["stdlib", "orjson"])
def test_raw_body_parses_identically(monkeypatch: pytest.MonkeyPatch, loads: Any) -> None:
    monkeypatch.setattr(_connection, "_loads", loads)
    conn = Connection(_Client(BODY), "t")
    got = conn.send_raw("GetItem", {})
    assert got["Item"] == json.loads(BODY)["Item"]
    assert got["ResponseMetadata"] == {"HTTPStatusCode": 200}


# --------------------------------------------------------------------------- request bodies

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    (
        "PutItem",
        {
            "TableName": "t",
            "Item": {
                "pk": {"S": "ORDER#é 漢字 🎉"},
                "n": {"N": "-1.50E+3"},
                "b": {"B": b"\x00\xff"},
                "bs": {"BS": [b"a", b"\x00"]},
                "ss": {"SS": ["x", "\u2028"]},
                "m": {"M": {"l": {"L": [{"NULL": True}, {"BOOL": False}, {"S": '"\\'}]}}},
            },
            "ConditionExpression": "#v = :v",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": {":v": {"N": "3"}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
    ),
    (
        "Query",
        {
            "TableName": "t",
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": "pk"},
            "ExpressionAttributeValues": {":p": {"S": "x"}, ":b": {"B": b"\x01"}},
            "Limit": 25,
            "ScanIndexForward": False,
            "ExclusiveStartKey": {"pk": {"S": "x"}, "sk": {"S": "y"}},
        },
    ),
    (
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "sk": {"S": "b"}}}},
                {"Delete": {"TableName": "t", "Key": {"pk": {"S": "c"}, "sk": {"S": "d"}}}},
            ],
            "ClientRequestToken": "token",
        },
    ),
    (
        "BatchWriteItem",
        {"RequestItems": {"t": [{"PutRequest": {"Item": {"pk": {"S": "a"}, "b": {"B": b""}}}}]}},
    ),
]


def _client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(parameter_validation=False),  # as the clients dynorm creates
    )


@pytest.mark.parametrize("encoder", ["stdlib", "orjson"])
@pytest.mark.parametrize(("operation", "params"), REQUESTS, ids=[op for op, _ in REQUESTS])
def test_direct_request_bodies_equal_botocores(
    monkeypatch: pytest.MonkeyPatch, encoder: str, operation: str, params: dict[str, Any]
) -> None:
    if encoder == "stdlib":
        monkeypatch.setattr(_connection, "_dumps", _json.stdlib_dumps)
    client = _client()
    model = client.meta.service_model.operation_model(operation)
    botocore_request = client._serializer.serialize_to_request(params, model)
    direct = _connection.DirectSerializer(client._serializer)
    token = _connection._direct.set(True)
    try:
        ours = direct.serialize_to_request(params, model)
    finally:
        _connection._direct.reset(token)
    assert ours["body"] != botocore_request["body"]  # really ours: botocore's has spaces
    assert json.loads(ours["body"]) == json.loads(botocore_request["body"])
    assert {k: v for k, v in ours.items() if k != "body"} == {
        k: v for k, v in botocore_request.items() if k != "body"
    }


def test_direct_serializer_leaves_other_requests_to_botocore() -> None:
    client = _client()
    model = client.meta.service_model.operation_model("PutItem")
    direct = _connection.DirectSerializer(client._serializer)
    params = {"TableName": "t", "Item": {"s": {"S": "\ud800"}}}  # a lone surrogate
    expected = client._serializer.serialize_to_request(params, model)["body"]
    token = _connection._direct.set(True)
    try:  # the direct encoder cannot write it: botocore's serializer does, as before
        assert direct.serialize_to_request(params, model)["body"] == expected
    finally:
        _connection._direct.reset(token)
    # Outside dynorm's send (the flag unset), every request is botocore's.
    plain = {"TableName": "t", "Item": {"s": {"S": "é"}}}
    assert (
        direct.serialize_to_request(plain, model)["body"]
        == (client._serializer.serialize_to_request(plain, model)["body"])
    )


def test_only_clients_dynorm_creates_get_the_direct_serializer() -> None:
    users = _client()
    Connection(users, "t")
    assert not isinstance(users._serializer, _connection.DirectSerializer)
    ours = _client()
    conn = Connection(ours, "t", direct=True)
    assert isinstance(ours._serializer, _connection.DirectSerializer)
    Connection(ours, "t", direct=True)  # idempotent: wrapped once
    assert not isinstance(ours._serializer.inner, _connection.DirectSerializer)
    assert conn._slot.direct


def test_a_validating_serializer_is_used_as_it_is() -> None:
    import boto3

    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    model = client.meta.service_model.operation_model("PutItem")
    params = {"TableName": "t", "Item": {"s": {"S": "x"}}}
    direct = _connection.DirectSerializer(client._serializer)
    token = _connection._direct.set(True)
    try:
        body = direct.serialize_to_request(params, model)["body"]
    finally:
        _connection._direct.reset(token)
    assert body == client._serializer.serialize_to_request(params, model)["body"]
