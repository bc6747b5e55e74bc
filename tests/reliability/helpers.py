"""Tools shared by the reliability scenarios: fault injection, request capture, raw access.

Faults are injected with botocore's event system on dynorm's own client (`before-send`
short-circuits the HTTP call, `before-parameter-build` edits a request, `after-call` edits a
parsed response), so botocore's real retry logic runs. Requests are captured where dynorm hands
them to boto3 (`Connection.send`).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.exceptions import ReadTimeoutError

from dynorm import _config

SENTINEL = "S3NT1NEL"

EXPRESSION_KEYS = (
    "KeyConditionExpression",
    "FilterExpression",
    "ProjectionExpression",
    "ConditionExpression",
    "UpdateExpression",
)

#: Words that may appear in a DynamoDB expression besides placeholders and operators.
EXPRESSION_WORDS = frozenset(
    {
        "AND",
        "OR",
        "NOT",
        "BETWEEN",
        "IN",
        "SET",
        "REMOVE",
        "ADD",
        "DELETE",
        "attribute_exists",
        "attribute_not_exists",
        "attribute_type",
        "begins_with",
        "contains",
        "size",
        "list_append",
        "if_not_exists",
    }
)

#: The runtime DynamoDB actions docs/concepts/configuration.md ("IAM permissions") documents.
RUNTIME_ACTIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "TransactGetItems",
        "DescribeTable",
    }
)
CONTROL_PLANE_ACTIONS = frozenset(
    {"CreateTable", "UpdateTable", "DeleteTable", "DescribeTimeToLive", "UpdateTimeToLive"}
)


# --------------------------------------------------------------------------- responses


class _Body:
    """The raw body of an injected response (what urllib3 would stream)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def aws_response(status: int, body: Mapping[str, Any]) -> AWSResponse:
    """An HTTP response as DynamoDB would send it; returning it from `before-send` skips HTTP."""
    headers = HeadersDict(
        {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "rel-injected"}
    )
    return AWSResponse("http://dynorm.invalid/", status, headers, _Body(json.dumps(body).encode()))


def aws_error(code: str, message: str = "injected fault", status: int = 400, **extra: Any) -> Any:
    """A DynamoDB error response (`__type` is how botocore reads the error code)."""
    return aws_response(
        status, {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, **extra}
    )


def request_json(request: Any) -> dict[str, Any]:
    """The JSON body of a prepared botocore request."""
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    data: dict[str, Any] = json.loads(body)
    return data


def wire_json(item: Mapping[str, Any]) -> dict[str, Any]:
    """A low-level boto3 item as DynamoDB's JSON (binary as base64 text)."""

    def conv(value: Any) -> Any:
        if isinstance(value, (bytes, bytearray)):
            return base64.b64encode(bytes(value)).decode("ascii")
        if isinstance(value, dict):
            return {k: conv(v) for k, v in value.items()}
        if isinstance(value, list):
            return [conv(v) for v in value]
        return value

    out: dict[str, Any] = conv(dict(item))
    return out


# --------------------------------------------------------------------------- fault injection


@dataclass
class Faults:
    """Register botocore event handlers on dynorm's current client; all removed at teardown."""

    _registered: list[tuple[Any, str, str]] = field(default_factory=list)

    @property
    def client(self) -> Any:
        return _config.get_connection().client

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        client = self.client
        unique_id = f"rel-{uuid.uuid4().hex}"
        client.meta.events.register(event, handler, unique_id=unique_id)
        self._registered.append((client, event, unique_id))

    def clear(self) -> None:
        while self._registered:
            client, event, unique_id = self._registered.pop()
            client.meta.events.unregister(event, unique_id=unique_id)

    def count(self, operation: str) -> list[dict[str, Any]]:
        """Record the body of every attempt of `operation` that reaches the wire (or a fault)."""
        bodies: list[dict[str, Any]] = []

        def record(request: Any, **_: Any) -> None:
            bodies.append(request_json(request))

        self.on(f"before-send.dynamodb.{operation}", record)
        return bodies

    def fail(
        self, operation: str, code: str, *, times: int | None = None, status: int = 400
    ) -> list[int]:
        """Answer the first `times` attempts (None: every attempt) with an error."""
        seen: list[int] = []

        def handler(**_: Any) -> Any:
            seen.append(1)
            if times is None or len(seen) <= times:
                return aws_error(code, f"injected {code}", status)
            return None

        self.on(f"before-send.dynamodb.{operation}", handler)
        return seen

    def lose_response(
        self,
        operation: str,
        *,
        times: int = 1,
        answer: Callable[[Any], Any] | None = None,
    ) -> list[int]:
        """Apply the first `times` attempts for real, then lose their responses.

        By default the loss is a read timeout (botocore retries it); `answer(request)` may
        instead return a replacement response (e.g. a 500) or raise something else.
        Returns the HTTP status codes DynamoDB really answered.
        """
        applied: list[int] = []
        client = self.client
        http = client._endpoint.http_session

        def handler(request: Any, **_: Any) -> Any:
            if len(applied) >= times:
                return None
            response = http.send(request)
            applied.append(response.status_code)
            if answer is not None:
                return answer(request)
            raise ReadTimeoutError(endpoint_url=request.url)

        self.on(f"before-send.dynamodb.{operation}", handler)
        return applied


# --------------------------------------------------------------------------- raw access


def raw_client() -> Any:
    """A separate boto3 client on the same endpoint, region and credentials as dynorm's.

    DynamoDB Local keeps one database per access key and region, so the credentials must match;
    hooks registered on dynorm's client do not apply to this one.
    """
    client = _config.get_connection().client
    creds = client._request_signer._credentials.get_frozen_credentials()
    return boto3.client(
        "dynamodb",
        endpoint_url=client.meta.endpoint_url,
        region_name=client.meta.region_name,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
    )


def table_name() -> str:
    return _config.get_connection().table_name


def raw_get(pk: str, sk: str) -> dict[str, Any] | None:
    """The stored item (low-level boto3 form) read consistently, or None."""
    response = raw_client().get_item(
        TableName=table_name(), Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
    )
    item: dict[str, Any] | None = response.get("Item")
    return item


def raw_partition(pk: str) -> list[dict[str, Any]]:
    client = raw_client()
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {
        "TableName": table_name(),
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": pk}},
        "ConsistentRead": True,
    }
    while True:
        response = client.query(**params)
        items += response["Items"]
        if "LastEvaluatedKey" not in response:
            return items
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def raw_scan() -> list[dict[str, Any]]:
    client = raw_client()
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"TableName": table_name(), "ConsistentRead": True}
    while True:
        response = client.scan(**params)
        items += response["Items"]
        if "LastEvaluatedKey" not in response:
            return items
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def without_token(item: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An item minus dynorm's per-write token attribute (`_wtok`), for comparisons."""
    if item is None:
        return None
    return {k: v for k, v in item.items() if k != "_wtok"}


# --------------------------------------------------------------------------- request checks

_TOKEN = re.compile(r"[#:][A-Za-z0-9_]+")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def request_bodies(params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The parts of a request that carry expressions (the request, or each transact action)."""
    bodies: list[Mapping[str, Any]] = [params]
    for action in params.get("TransactItems", []):
        bodies.extend(action.values())
    return bodies


def check_placeholders(params: Mapping[str, Any]) -> None:
    """Every EAN/EAV key is used by an expression, and every token used is defined."""
    for body in request_bodies(params):
        text = " ".join(str(body[k]) for k in EXPRESSION_KEYS if k in body)
        used = set(_TOKEN.findall(text))
        names = set(body.get("ExpressionAttributeNames", {}))
        values = set(body.get("ExpressionAttributeValues", {}))
        assert {t for t in used if t.startswith("#")} == names, (text, names)
        assert {t for t in used if t.startswith(":")} == values, (text, values)


def bare_words(params: Mapping[str, Any]) -> set[str]:
    """Identifiers in the expressions that are neither placeholders nor expression syntax."""
    out: set[str] = set()
    for body in request_bodies(params):
        for key in EXPRESSION_KEYS:
            if key in body:
                text = _TOKEN.sub(" ", str(body[key]))
                out |= {w for w in _WORD.findall(text) if w not in EXPRESSION_WORDS}
    return out


def without(params: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in params.items() if k not in keys}


def contains_empty_set(value: Any) -> bool:
    """Whether a request holds an empty SS/NS/BS anywhere (DynamoDB refuses those)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ("SS", "NS", "BS") and isinstance(v, list) and not v:
                return True
            if contains_empty_set(v):
                return True
    if isinstance(value, list):
        return any(contains_empty_set(v) for v in value)
    return False


def decode_cursor_payload(cursor: str) -> dict[str, Any]:
    """Read (not verify) the JSON payload of a dynorm cursor: `<b64 payload>.<b64 signature>`."""
    body = cursor.split(".")[0]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return data


def loaded(model: Any, **values: Any) -> Any:
    """An instance as if loaded from the table at `values["version"]` (no request sent).

    The public constructor ignores `version` (mass-assignment protection, scenario 53), so
    tests that simulate a loaded object validate with dynorm's trusted context.
    """
    return model.model_validate(values, context={"dynorm_trusted": True})
