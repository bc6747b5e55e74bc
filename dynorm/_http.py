"""The lean request path: dynorm's item requests over pooled keep-alive connections.

botocore's request pipeline (endpoint rules, event hooks, serializer, signer setup, its
HTTP adapter) is most of a single GetItem's client time. For the item operations dynorm
compiles itself, this transport sends the compiler's body straight to the endpoint resolved
once (`_endpoint.lean_endpoint`, else the boto3 client's), signed with botocore's own SigV4
signer and credentials (so profiles, SSO, assumed roles and refreshing credentials keep
working), retried with
botocore's "standard" retry components (throttling backoff, the retry quota,
`total_max_attempts`, the CRC32 check of DynamoDB responses), over `max_pool_connections`
keep-alive connections of dynorm's own HTTP/1.1 exchange (`_wire.py`), or, where that
exchange does not apply (a proxy, a client certificate), through the botocore HTTP session
the boto3 client would send through: its proxies (and their TLS and headers), client
certificate, TLS verification, pool and timeouts, as that client honours them.

It answers as the boto3 method would: the parsed response (binary values as bytes), or a
botocore exception (`ClientError` built by botocore's own error parser, a botocore
connection error), so `Connection` maps errors and counts attempts exactly as on the boto3
path. User hooks on the boto3 client's events (and botocore's Stubber) do not see these
requests: a client given to `configure(client=...)` always uses the boto3 path.
"""

from __future__ import annotations

import base64
import random
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Mapping
from typing import Any, cast

from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HeadersDict
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.parsers import create_parser
from botocore.retries import quota, standard

from . import _bridge, _json, _wire
from ._signing import RequestSigner

#: The operations sent on the lean path; everything else goes through the boto3 client.
LEAN_OPERATIONS = frozenset(
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
    }
)

#: The members botocore fills with a fresh token when the caller leaves them out (the
#: service model's `idempotencyToken` members of the lean operations; a unit test checks
#: this against the model).
IDEMPOTENT_MEMBERS: dict[str, tuple[str, ...]] = {"TransactWriteItems": ("ClientRequestToken",)}

_TARGET = "DynamoDB_20120810."
_CONTENT_TYPE = "application/x-amz-json-1.0"

#: botocore's standard mode: at most 20 s between attempts.
_MAX_BACKOFF = 20.0

#: A per-attempt hook (see `HttpTransport.before_send`): (operation, the signed request) ->
#: an answer that replaces the wire, or None to send it.
BeforeSend = Callable[[str, AWSPreparedRequest], AWSResponse | None]


class _Retrying:
    """botocore's standard retry decision, backoff and retry quota for one transport."""

    def __init__(self, max_attempts: int) -> None:
        self.conditions = standard.StandardRetryConditions(max_attempts=max_attempts)
        self.backoff = standard.ExponentialBackoff(
            max_backoff=int(_MAX_BACKOFF), random=random.random
        )
        self.quota = standard.RetryQuotaChecker(quota.RetryQuota())
        self._lock = threading.Lock()  # the quota is shared by every thread's requests

    def delay(self, context: standard.RetryContext) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if not self.conditions.is_retryable(context):
            return None
        with self._lock:
            if not self.quota.acquire_retry_quota(context):
                return None
        return float(self.backoff.delay_amount(context))

    def succeeded(self, context: Mapping[str, Any], response: AWSResponse) -> None:
        with self._lock:  # botocore passes the request context dict here (stubs say otherwise)
            self.quota.release_retry_quota(cast(Any, context), response)


class _Body:
    """A read body, as botocore's AWSResponse reads it (`raw.stream()`)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self) -> list[bytes]:
        return [self.data]


class _Answer(AWSResponse):
    """An answer from dynorm's exchange or the HTTP session, its headers also as a dict.

    `fields` is what `dict(answer.headers.items())` gives (one entry per header, as it came),
    without walking botocore's case-insensitive `HeadersDict` for every response. Read only
    where no `before_send` hook could have edited `headers` since.
    """

    def __init__(self, url: str, status: int, headers: dict[str, str], body: bytes) -> None:
        answer: Any = headers  # HeadersDict takes any mapping
        super().__init__(url, status, answer, _Body(body))
        self.fields = headers


def _bytes_values(node: Any) -> Any:
    """Turn the base64 text of B and BS attribute values into bytes, as botocore does."""
    if isinstance(node, dict):
        if len(node) == 1:
            if isinstance(b := node.get("B"), str):
                return {"B": base64.b64decode(b)}
            if isinstance(bs := node.get("BS"), list) and all(isinstance(v, str) for v in bs):
                return {"BS": [base64.b64decode(v) for v in bs]}
        return {k: _bytes_values(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_bytes_values(v) for v in node]
    return node


class HttpTransport:
    """Send dynorm's item requests to one DynamoDB endpoint over pooled connections.

    Built for a table from what a boto3 client of dynorm's would use: the resolved endpoint,
    the region, the session's credentials and (loaded when first needed) the service model.
    `http_session` is the botocore HTTP session such a client sends through (its TLS
    verification, proxies and socket options; `_endpoint.lean_http_session` builds it when
    there is no client); it carries the requests where dynorm's own exchange does not
    apply. Thread-safe; no lock is held while a request is on the wire (each thread takes a
    connection of its own from the pool).
    """

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        credentials: Any,
        *,
        service_model: Callable[[], Any],
        http_session: Any,
        max_attempts: int,
        pool_size: int,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self.endpoint_url = endpoint_url.rstrip("/") + "/"
        self.region = region
        self._credentials_source = credentials
        self._signer = RequestSigner(self.endpoint_url, self.region, _CONTENT_TYPE)
        #: DynamoDB's botocore service model, loaded on first need (an error answer or a
        #: retry decision; see `_operation_model`): a successful request never needs it.
        self._load_service = service_model
        self._service: Any = None
        self._operations: dict[str, Any] = {}
        self._parser = create_parser("json")
        self._retrying = _Retrying(max_attempts)
        self._on_loop: Any = None  # the event loops' exchange (`_http_async`), made on first use
        #: The botocore HTTP session that carries the bytes where `wire` does not apply.
        self.http_session = http_session
        #: dynorm's own HTTP/1.1 exchange (`_wire`) for the sync path, or None where it
        #: does not apply (a proxy, a client certificate): then `http_session` sends.
        self.wire = _wire.for_session(
            http_session,
            self.endpoint_url,
            pool_size=pool_size,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        #: Called after each attempt with (the HTTP answer or None, the exception it ended
        #: in or None), as botocore's `needs-retry` event: the request log and the
        #: exactly-once bookkeeping learn of every attempt through it.
        self.listeners: list[Callable[[AWSResponse | None, BaseException | None], None]] = []
        #: Called before each attempt with (operation, the signed AWSPreparedRequest), as
        #: botocore's `before-send` event: every hook runs, in order; the first AWSResponse one
        #: returns answers the attempt instead of the wire; a hook that raises ends the attempt
        #: in that error (retried as botocore's retry rules say). A hook may apply the request
        #: itself with `send()`. Fault injectors in tests use it; empty (and free) otherwise.
        self.before_send: list[BeforeSend] = []

    # ------------------------------------------------------------------ signing

    def _credentials(self) -> Any:
        # The session's credentials object, as the boto3 client uses it: refreshable
        # credentials (SSO, assumed roles, instance/container roles) refresh themselves.
        creds = self._credentials_source
        if creds is None:
            raise NoCredentialsError()
        return creds.get_frozen_credentials()

    def _signed_headers(self, operation: str, body: bytes) -> dict[str, str]:
        return self._signer.headers(self._credentials(), _TARGET + operation, body)

    def _service_model(self) -> Any:
        service = self._service
        if service is None:
            service = self._service = self._load_service()
        return service

    def _operation_model(self, operation: str) -> Any:
        model = self._operations.get(operation)
        if model is None:
            model = self._service_model().operation_model(operation)
            self._operations[operation] = model
        return model

    # ------------------------------------------------------------------ sending

    def call(
        self, operation: str, params: Mapping[str, Any], *, raw_key: str | None = None
    ) -> dict[str, Any]:
        """Send one request and return the parsed response (binary values as bytes).

        With `raw_key`, a successful body is not parsed: it is returned under that key (with
        `ResponseMetadata`) for dynorm's own decoder.

        Raises:
            ClientError: DynamoDB answered with an error (after the retries it allows).
            EndpointConnectionError: Nothing answered at the endpoint.
            ReadTimeoutError, ConnectionClosedError: A request was sent and no answer came.
        """
        # botocore fills an idempotency token the caller left out (TransactWriteItems'
        # ClientRequestToken) once per call, so that every retry carries the same one.
        missing = [m for m in IDEMPOTENT_MEMBERS.get(operation, ()) if m not in params]
        if missing:
            params = {**params, **{m: str(uuid.uuid4()) for m in missing}}
        body = _json.dumps(params)
        attempt = 0
        request_context: dict[str, Any] = {"retries": {}}
        while True:
            attempt += 1
            headers = self._signed_headers(operation, body)
            response: AWSResponse | None = None
            parsed: dict[str, Any] | None = None
            caught: Exception | None = None
            try:
                response = self._attempt(operation, body, headers)
            except Exception as exc:  # as botocore's endpoint: the attempt ends in this error
                caught = exc
            if response is not None and (response.status_code != 200 or not self._crc_ok(response)):
                parsed = self._parse_error(operation, response)
            for listener in self.listeners:
                listener(response, caught)
            if response is not None and parsed is None:
                self._retrying.succeeded(request_context, response)
                return self._success(response, attempt, raw_key)
            context = standard.RetryContext(
                attempt_number=attempt,
                operation_model=self._operation_model(operation),
                parsed_response=parsed,
                http_response=response,
                caught_exception=caught,
                request_context=request_context,
            )
            delay = self._retrying.delay(context)
            if delay is None:
                if caught is not None:
                    raise caught
                assert parsed is not None
                parsed.setdefault("ResponseMetadata", {})["RetryAttempts"] = attempt - 1
                raise ClientError(cast(Any, parsed), operation)
            _bridge.sleep(delay, time.sleep)

    def _post(self, body: bytes, headers: Mapping[str, str]) -> AWSResponse:
        """One exchange: on the event loop inside a bridge greenlet, else on this thread."""
        wire = self.wire
        if _bridge.current() is not None:
            if wire is None:  # botocore's session carries it (a proxy...): on a thread
                return _bridge.blocking(self._through_session, body, headers)
            status, got_headers, data = _bridge.wait(
                self._loop_exchange(wire).post(body, headers)
            )
        elif wire is not None:
            status, got_headers, data = wire.post(body, headers)
        else:
            return self._through_session(body, headers)
        return _Answer(self.endpoint_url, status, got_headers, data)

    def _through_session(self, body: bytes, headers: Mapping[str, str]) -> AWSResponse:
        """One exchange through the botocore HTTP session (a proxy, a client certificate).

        It raises botocore's own connection errors (ProxyConnectionError among them), as
        the boto3 client's requests do.
        """
        got = self.http_session.send(self._prepared(body, headers))
        return _Answer(self.endpoint_url, got.status_code, dict(got.headers.items()), got.content)

    def _loop_exchange(self, wire: _wire.Exchange) -> Any:
        exchange = self._on_loop
        if exchange is None:
            from ._http_async import AsyncExchange

            exchange = self._on_loop = AsyncExchange(wire)
        return exchange

    def _prepared(self, body: bytes, headers: Mapping[str, str]) -> AWSPreparedRequest:
        """The signed request as botocore's own requests carry it (a `HeadersDict`)."""
        signed: Any = HeadersDict(headers)
        return AWSPreparedRequest("POST", self.endpoint_url, signed, body, False)

    def _attempt(self, operation: str, body: bytes, headers: dict[str, str]) -> AWSResponse:
        """One attempt: through the `before_send` hooks if there are any, else the wire."""
        if not self.before_send:
            return self._post(body, headers)
        request = self._prepared(body, headers)
        answer: AWSResponse | None = None
        for hook in tuple(self.before_send):  # every hook runs, as botocore emits the event
            # A hook is sync code that may block (or send): never on the event loop's thread.
            got = _bridge.blocking(hook, operation, request)
            if answer is None:
                answer = got
        return answer if answer is not None else self.send(request)

    def send(self, request: AWSPreparedRequest) -> AWSResponse:
        """Send one signed request and return DynamoDB's answer, unparsed.

        What an attempt does on the wire (a `before_send` hook may call it to apply a
        request and then lose the answer).

        Raises:
            EndpointConnectionError, ReadTimeoutError, ConnectionClosedError: As the boto3
                client's HTTP layer raises them.
        """
        body = request.body
        data = bytes(body) if isinstance(body, (bytes, bytearray)) else str(body or "").encode()
        return self._post(data, dict(request.headers.items()))

    @staticmethod
    def _crc_ok(response: AWSResponse) -> bool:
        expected = response.headers.get("x-amz-crc32")
        return expected is None or (zlib.crc32(response.content) & 0xFFFFFFFF) == int(expected)

    def _metadata(self, response: AWSResponse, attempt: int) -> dict[str, Any]:
        # With hooks, an answer is any AWSResponse (or one of ours they edited): walked.
        fields: Any = response.headers.items()
        if isinstance(response, _Answer) and not self.before_send:
            fields = response.fields
        return {
            "RequestId": response.headers.get("x-amzn-RequestId", ""),
            "HTTPStatusCode": response.status_code,
            "HTTPHeaders": dict(fields),
            "RetryAttempts": attempt - 1,
        }

    def _success(self, response: AWSResponse, attempt: int, raw_key: str | None) -> dict[str, Any]:
        content = response.content
        metadata = self._metadata(response, attempt)
        if raw_key is not None:
            return {raw_key: content, "ResponseMetadata": metadata}
        data: dict[str, Any] = _json.loads(content) if content else {}
        if b'"B' in content:
            data = _bytes_values(data)
        data["ResponseMetadata"] = metadata
        return data

    def _parse_error(self, operation: str, response: AWSResponse) -> dict[str, Any]:
        """The error answer as botocore parses it (or a checksum mismatch)."""
        if response.status_code == 200:  # a body whose CRC32 does not match
            return {
                "Error": {"Code": "CRC32CheckFailed", "Message": "CRC32 mismatch"},
                "ResponseMetadata": {"HTTPStatusCode": 200},
            }
        answer = {
            "status_code": response.status_code,
            "headers": dict(response.headers.items()),
            "body": response.content,
        }
        parsed: dict[str, Any] = self._parser.parse(
            answer, self._operation_model(operation).output_shape
        )
        # The modeled error's fields (CancellationReasons, the Item of a failed condition),
        # as botocore's endpoint adds them.
        code = parsed.get("Error", {}).get("Code")
        shape = self._service_model().shape_for_error_code(code) if code else None
        if shape is not None:
            parsed.update(self._parser.parse(answer, shape))
        parsed.setdefault("ResponseMetadata", {})["HTTPStatusCode"] = response.status_code
        return parsed

    def close(self) -> None:
        """Close every pooled connection (the event loops' and the HTTP session's too)."""
        self.http_session.close()
        if self.wire is not None:
            self.wire.close()
        if self._on_loop is not None:
            self._on_loop.close()
