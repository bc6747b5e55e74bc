"""Tools shared by the reliability scenarios: fault injection, request capture, raw access.

Faults are injected on whichever path sends a request, through one API (`Faults`), with
botocore's event names and handler arguments: `before-send` sees each attempt (it may answer
it, raise a connection error, or apply it with `Faults.send` and lose the answer),
`before-parameter-build` edits a request, `before-call` sees its body, `after-call` edits a
parsed response. A handler is registered on dynorm's boto3 client (botocore's events) and,
when the lean transport (`transport="http"`) is configured, on that transport too (its
per-attempt `before_send` hooks; the per-request events around its `call`); each request
passes through exactly one of them, so the real retry logic of that path runs. Every
injector must fire at least once in its test (the `faults` fixture checks it): a fault that
was never injected would let a test pass without testing anything. Requests are captured
where dynorm hands them to a transport (`Connection.send`).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.exceptions import ReadTimeoutError

from dynorm import _config, _json

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


#: The events `Faults` can inject on both paths (botocore's names and handler arguments).
_PER_REQUEST = ("before-parameter-build", "before-call", "after-call")
_KINDS = ("before-send", *_PER_REQUEST)

#: The sender of the attempt a `before-send` handler runs in (see `Faults.send`).
_sending = threading.local()


@dataclass
class _Injector:
    """One registered handler: how often it ran, and whether it must run at all."""

    event: str
    handler: Callable[..., Any]
    must_fire: bool
    fired: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, **kwargs: Any) -> Any:
        with self._lock:
            self.fired += 1
        return self.handler(**kwargs)

    def wants(self, kind: str, operation: str) -> bool:
        parts = self.event.split(".")
        return parts[0] == kind and (len(parts) < 3 or parts[2] == operation)


@dataclass
class Faults:
    """Fault injectors on dynorm's current client and transport; all removed by `clear()`.

    `on(event, handler)` takes a botocore event name (`before-send.dynamodb.PutItem`,
    `before-parameter-build.dynamodb.Query`, ...); the handler is called with botocore's
    keyword arguments whichever path sends the request.
    """

    _registered: list[tuple[Any, str, str]] = field(default_factory=list)
    _hooks: list[tuple[Any, Any]] = field(default_factory=list)  # (transport, before_send hook)
    _wrapped: list[tuple[Any, Any]] = field(default_factory=list)  # (transport, its own call)
    _active: list[_Injector] = field(default_factory=list)
    injectors: list[_Injector] = field(default_factory=list)

    @property
    def client(self) -> Any:
        return _config.get_connection().client

    @property
    def transport(self) -> Any:
        """The lean transport of dynorm's current table, or None on the boto3 path."""
        return _config.get_connection().transport

    def on(self, event: str, handler: Callable[..., Any], *, must_fire: bool = True) -> None:
        """Run `handler` on `event` for the requests of dynorm's current table.

        `must_fire=False` marks an observer (a recorder that may legitimately see nothing);
        every other handler must run at least once before the test ends (`check_fired`).
        """
        kind, service, *_ = event.split(".") + [""]
        assert service == "dynamodb", f"Faults injects DynamoDB events only, not {event!r}"
        assert kind in _KINDS, f"Faults cannot inject {event!r} on the lean path"
        injector = _Injector(event, handler, must_fire)
        self.injectors.append(injector)
        client = self.client
        unique_id = f"rel-{uuid.uuid4().hex}"
        if kind == "before-send":
            http = client._endpoint.http_session
            client.meta.events.register(
                event, lambda **kw: _sent_by(http.send, injector, kw), unique_id=unique_id
            )
        else:
            client.meta.events.register(event, lambda **kw: injector(**kw), unique_id=unique_id)
        self._registered.append((client, event, unique_id))
        transport = self.transport
        if transport is None:
            return
        if kind == "before-send":

            def hook(operation: str, request: Any) -> Any:
                if not injector.wants("before-send", operation):
                    return None
                kw = {"request": request, "event_name": f"before-send.dynamodb.{operation}"}
                return _sent_by(transport.send, injector, kw)

            transport.before_send.append(hook)
            self._hooks.append((transport, hook))
        else:
            self._active.append(injector)
            self._wrap(transport)

    def _wrap(self, transport: Any) -> None:
        """Emit the per-request events around the lean transport's `call` (once)."""
        if any(t is transport for t, _ in self._wrapped):
            return
        original = transport.call
        service = self.client.meta.service_model

        def call(operation: str, params: Any, *, raw_key: str | None = None) -> Any:
            def emit(kind: str, **kw: Any) -> None:
                for injector in list(self._active):
                    if injector.wants(kind, operation):
                        injector(event_name=f"{kind}.dynamodb.{operation}", **kw)

            model = service.operation_model(operation)
            context: dict[str, Any] = {}
            params = dict(params)
            emit("before-parameter-build", params=params, model=model, context=context)
            request = {"body": _json.dumps(params), "method": "POST", "context": context}
            emit("before-call", params=request, model=model, context=context)
            parsed = original(operation, params, raw_key=raw_key)
            emit("after-call", http_response=None, parsed=parsed, model=model, context=context)
            return parsed

        self._wrapped.append((transport, transport.__dict__.get("call")))
        transport.call = call

    def clear(self) -> None:
        """Remove every handler (what fired is still counted for `check_fired`)."""
        while self._registered:
            client, event, unique_id = self._registered.pop()
            client.meta.events.unregister(event, unique_id=unique_id)
        while self._hooks:
            transport, hook = self._hooks.pop()
            transport.before_send.remove(hook)
        while self._wrapped:
            transport, previous = self._wrapped.pop()
            if previous is None:
                transport.__dict__.pop("call", None)
            else:
                transport.call = previous
        self._active.clear()

    def check_fired(self) -> None:
        """Every injector ran at least once (else its test tested nothing)."""
        idle = [i.event for i in self.injectors if i.must_fire and not i.fired]
        assert not idle, f"fault injectors that never fired (the fault was never injected): {idle}"

    @staticmethod
    def send(request: Any) -> AWSResponse:
        """Send the attempt a `before-send` handler holds, for real, on the path it came from.

        Raises:
            ReadTimeoutError, EndpointConnectionError, ...: As that path's HTTP layer does.
        """
        sender = getattr(_sending, "send", None)
        assert sender is not None, "Faults.send is only for the attempt a before-send hook holds"
        response: AWSResponse = sender(request)
        return response

    def count(self, operation: str) -> list[dict[str, Any]]:
        """Record the body of every attempt of `operation` that reaches the wire (or a fault)."""
        bodies: list[dict[str, Any]] = []

        def record(request: Any, **_: Any) -> None:
            bodies.append(request_json(request))

        self.on(f"before-send.dynamodb.{operation}", record, must_fire=False)
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

        By default the loss is a read timeout (both paths retry it); `answer(request)` may
        instead return a replacement response (e.g. a 500) or raise something else.
        Returns the HTTP status codes DynamoDB really answered.
        """
        applied: list[int] = []

        def handler(request: Any, **_: Any) -> Any:
            if len(applied) >= times:
                return None
            response = self.send(request)
            applied.append(response.status_code)
            if answer is not None:
                return answer(request)
            raise ReadTimeoutError(endpoint_url=request.url)

        self.on(f"before-send.dynamodb.{operation}", handler)
        return applied


def _sent_by(send: Callable[[Any], Any], injector: _Injector, kwargs: dict[str, Any]) -> Any:
    """Run a before-send injector with `Faults.send` bound to the path of its attempt."""
    previous = getattr(_sending, "send", None)
    _sending.send = send
    try:
        return injector(**kwargs)
    finally:
        _sending.send = previous


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
