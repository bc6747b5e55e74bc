"""The one boto3 boundary: every request dynorm makes goes through `Connection.send`."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError as BotoConnectionError,
    NoCredentialsError,
)

from . import _bridge, _json
from ._aws_errors import WRITES as _WRITES, translate_client_error
from ._capture import record
from ._endpoint import ClientSlot, client_region, lean_endpoint, lean_http_session, session_for
from ._http import LEAN_OPERATIONS, HttpTransport
from ._wire import never_sent
from .exceptions import (
    ConfigurationError,
    DynormError,
    ServiceError,
)

if TYPE_CHECKING:
    from ._config import Settings

logger = logging.getLogger("dynorm")

T = TypeVar("T")

_CONFLICT_ATTEMPTS = 4
#: Operations that take ReturnConsumedCapacity (asked for only when DEBUG logging is on).
_CAPACITY_OPERATIONS = frozenset(
    {*_WRITES, "GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
)

_METHODS = {
    "GetItem": "get_item",
    "PutItem": "put_item",
    "UpdateItem": "update_item",
    "DeleteItem": "delete_item",
    "Query": "query",
    "Scan": "scan",
    "BatchGetItem": "batch_get_item",
    "BatchWriteItem": "batch_write_item",
    "TransactWriteItems": "transact_write_items",
    "TransactGetItems": "transact_get_items",
    "CreateTable": "create_table",
    "DeleteTable": "delete_table",
    "DescribeTable": "describe_table",
    "UpdateTable": "update_table",
    "UpdateTimeToLive": "update_time_to_live",
    "DescribeTimeToLive": "describe_time_to_live",
}


_loads = _json.loads
_dumps = _json.dumps

_direct: ContextVar[bool] = ContextVar("dynorm_direct", default=False)


class DirectSerializer:
    """botocore's request serializer, minus its walk over the input shape for dynorm's requests.

    dynorm builds every request in DynamoDB's wire format and checks DynamoDB's limits
    itself; botocore's JSON serializer would walk each attribute value through the service
    model again (about 60 µs per 1 KB item). For dynorm's own requests the body is encoded
    directly (binary values as base64, as botocore does); method, target and content type
    still come from botocore. Anything else (other callers of the client, a body the direct
    encoder cannot write, a host prefix) goes through botocore's serializer unchanged.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def serialize_to_request(self, parameters: Any, operation_model: Any) -> Any:
        if _direct.get():
            try:
                body = _dumps(parameters)
            except (TypeError, ValueError):
                body = None
            if body is not None:
                try:
                    serialized: dict[str, Any] = self.inner.serialize_to_request(
                        {}, operation_model
                    )
                except BotoCoreError:  # a validating serializer: use it as it is
                    serialized = {"host_prefix": None}
                if "host_prefix" not in serialized:
                    serialized["body"] = body
                    return serialized
        return self.inner.serialize_to_request(parameters, operation_model)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def install_direct_serializer(client: Any) -> bool:
    """Wrap the serializer of a client dynorm created (idempotent); False if it cannot."""
    serializer = getattr(client, "_serializer", None)
    if isinstance(serializer, DirectSerializer):
        return True
    if serializer is None or not hasattr(serializer, "serialize_to_request"):
        return False
    client._serializer = DirectSerializer(serializer)
    return True


class _Attempts:
    """What botocore's attempts of one request did (filled by the `needs-retry` hook)."""

    __slots__ = ("count", "sent")

    def __init__(self) -> None:
        self.count = 0  # HTTP attempts made (0: failed before sending, e.g. no credentials)
        self.sent = False  # an attempt may have reached DynamoDB (not a connect failure)


_attempts: ContextVar[_Attempts | None] = ContextVar("dynorm_attempts", default=None)


def _record_attempt(caught_exception: BaseException | None = None, **_: Any) -> None:
    """Botocore `needs-retry` hook: count an attempt; note whether it may have been applied.

    An attempt that failed to connect (no listener, a connect timeout, a TLS handshake) sent
    nothing; any other outcome (a response, a read timeout, a reset, a TLS error or a
    proxy's hang-up after connecting) may have reached DynamoDB (`_wire.never_sent`).
    """
    box = _attempts.get()
    if box is not None:
        box.count += 1
        if not never_sent(caught_exception):
            box.sent = True


def _count_attempt(response: object, caught: BaseException | None) -> None:
    """The lean transport's attempt counter (what `_record_attempt` is for botocore)."""
    _record_attempt(caught_exception=caught)


def install_request_hooks(client: Any) -> None:
    """Register the attempt counter on a client (idempotent; inert for other callers)."""
    client.meta.events.register(
        "needs-retry.dynamodb", _record_attempt, unique_id="dynorm-attempts"
    )


_CAPACITY_KEY = b'"ConsumedCapacity":'


def _capacity_total(value: Any) -> float | None:
    """Sum the CapacityUnits of a ConsumedCapacity value (one entry or a list), else None."""
    entries = value if isinstance(value, list) else [value]
    total = 0.0
    for entry in entries:
        if not isinstance(entry, dict):
            return None
        units = entry.get("CapacityUnits")
        if isinstance(units, bool) or not isinstance(units, (int, float)):
            return None
        total += units
    return total if entries else None


def _body_capacity(body: bytes) -> float | None:
    """ConsumedCapacity from a raw response body, without parsing the items.

    The key is searched from the end; inside a JSON string a quote is escaped, so the match
    is a real object key: DynamoDB's own, or an attribute named ConsumedCapacity, whose typed
    value ({"S": ...}, {"M": ...}) has no numeric CapacityUnits and is skipped. Nothing but
    the number is kept.
    """
    end = len(body)
    while (at := body.rfind(_CAPACITY_KEY, 0, end)) >= 0:
        start = at + len(_CAPACITY_KEY)
        chunk = body[start : start + 4096].decode("utf-8", "ignore")
        try:
            value, _ = json.JSONDecoder().raw_decode(chunk)
        except ValueError:
            value = None
        total = _capacity_total(value)
        if total is not None:
            return total
        end = at
    return None


def _request_log(
    operation: str,
    table: str,
    started: float,
    box: _Attempts,
    capacity: float | None = None,
    error: str | None = None,
) -> None:
    """Log one request: operation, table, duration, attempts, capacity or error code; no value."""
    duration = (time.perf_counter() - started) * 1000
    extra: dict[str, Any] = {
        "operation": operation,
        "table": table,
        "duration_ms": round(duration, 3),
        "attempts": box.count,
        "consumed_capacity": capacity,
        "error": error,
    }
    tail = ""
    if capacity is not None:
        tail += f" consumed_capacity={capacity:g}"
    if error is not None:
        tail += f" error={error}"
    logger.debug(
        "%s table=%s duration_ms=%.1f attempts=%d%s",
        operation,
        table,
        duration,
        box.count,
        tail,
        extra=extra,
    )


#: Operations whose successful response bodies dynorm decodes itself (see `send_raw`).
FAST_OPERATIONS = ("Query", "Scan", "GetItem", "BatchGetItem")
_RAW_BODY = "__dynorm_raw_body__"
_raw_wanted: ContextVar[bool] = ContextVar("dynorm_raw_wanted", default=False)


def _take_body(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    """Botocore `before-parse` hook: keep a successful body for dynorm, parse nothing.

    botocore's response parser is most of a read's client time (it walks every attribute
    value through the service model); dynorm decodes the DynamoDB JSON straight into
    models instead. Credentials, signing, retries and the CRC32 check stay botocore's (the
    checksum is verified on the HTTP response, not on this dict). Errors parse as usual.
    """
    if _raw_wanted.get() and response_dict.get("status_code") == 200:
        customized_response_dict[_RAW_BODY] = response_dict["body"]
        response_dict["body"] = b"{}"


def install_fast_path(client: Any) -> None:
    """Register the raw-body hook on a client (idempotent; inert for other callers)."""
    events = client.meta.events
    for operation in FAST_OPERATIONS:
        events.register(
            f"before-parse.dynamodb.{operation}", _take_body, unique_id=f"dynorm-raw-{operation}"
        )


def _prepare(client: Any, direct: bool) -> bool:
    """Install dynorm's hooks on a client; whether the direct serializer is installed."""
    # Only for clients dynorm created: a user's client keeps botocore's serializer.
    direct = direct and install_direct_serializer(client)
    install_fast_path(client)
    install_request_hooks(client)
    return direct


class Connection:
    """A DynamoDB client bound to dynorm's table.

    Args:
        client: A boto3 DynamoDB client (low-level, not the resource), or a `ClientSlot`
            that makes it on first use.
        table_name: The single table every model is stored in.
    """

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        direct: bool = False,
        transport: HttpTransport | None = None,
    ) -> None:
        if not isinstance(client, ClientSlot):
            client = ClientSlot(client, _prepare, direct=direct)
        self._slot = client
        self.table_name = table_name
        self.transport = transport
        self._bound: dict[str, Callable[..., Any]] = {}
        #: Whether dynorm created the client (a user's may carry hooks that expect one
        #: request at a time, so batch chunks are sent one after another on it).
        self.owns_client = direct

    @property
    def client(self) -> Any:
        """The boto3 client (made now if the lean transport has not needed it yet)."""
        return self._slot.get()

    @property
    def client_key(self) -> object:
        """What identifies this Connection's client before it exists (shared by `for_table`)."""
        return self._slot

    def same_client(self, other: Connection) -> bool:
        """Whether both Connections send through one client."""
        if self._slot is other._slot:
            return True
        made = self._slot.made
        return made is not None and made is other._slot.made

    def on_client(self, callback: Callable[[Any], None]) -> None:
        """Run `callback(client)` on the boto3 client, now or when it is made."""
        self._slot.on_client(callback)

    @property
    def endpoint_url(self) -> str:
        """Where requests go: the lean transport's endpoint, else the client's."""
        if self.transport is not None:  # as the client's `meta.endpoint_url` reads
            return self.transport.endpoint_url.rstrip("/")
        return str(getattr(self.client.meta, "endpoint_url", "") or "")

    def for_table(self, table_name: str) -> Connection:
        """A Connection to another table through the same client."""
        other = object.__new__(Connection)
        other._slot = self._slot
        other.table_name = table_name
        other.transport = self.transport
        other._bound = self._bound
        other.owns_client = self.owns_client
        return other

    @classmethod
    def from_settings(cls, settings: Settings) -> Connection:
        """Create the client described by `settings` (or take the one given).

        With `transport="http"` the client is made only when something needs it (an
        operation the lean transport does not send, or `Connection.client`), if the
        endpoint is known without it (`_endpoint.lean_endpoint`).
        """
        if settings.client is not None:
            return cls(settings.client, settings.table_name)
        session = session_for(settings.transport)
        region = client_region(session, settings)
        config = Config(
            # total_max_attempts counts the first attempt; botocore's max_attempts does not.
            retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
            # dynorm builds every request itself and checks DynamoDB's limits first;
            # botocore's parameter validation would walk each request again (~80 µs).
            parameter_validation=False,
            max_pool_connections=settings.max_pool_connections,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
        )
        credentials = session.get_credentials()
        kwargs: dict[str, Any] = {}
        if settings.endpoint_url is not None and credentials is None:
            # DynamoDB Local accepts any credentials; AWS itself never sees these.
            kwargs = {"aws_access_key_id": "dynorm", "aws_secret_access_key": "dynorm"}
            credentials = Credentials(kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"])

        def make() -> Any:
            return session.create_client(
                "dynamodb",
                endpoint_url=settings.endpoint_url,
                region_name=region,
                config=config,
                **kwargs,
            )

        if settings.transport != "http":
            return cls(make(), settings.table_name, direct=True)
        endpoint = lean_endpoint(session, region, settings.endpoint_url, settings.table_name)
        slot = ClientSlot(None, _prepare, make, direct=True)
        if endpoint is None:  # only the client's own endpoint resolution knows
            client = slot.get()
            endpoint = str(client.meta.endpoint_url)
            http = client._endpoint.http_session
        else:
            http = lean_http_session(session, endpoint, settings)
        transport = HttpTransport(
            endpoint,
            region,
            credentials,
            service_model=lambda: session.get_service_model("dynamodb"),
            http_session=http,
            max_attempts=settings.max_attempts,
            pool_size=settings.max_pool_connections,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
        )
        transport.listeners.append(_count_attempt)
        conn = cls(slot, settings.table_name, direct=True, transport=transport)
        return conn

    def send(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Send one DynamoDB request and return botocore's parsed response.

        Raises:
            ConditionFailedError: A condition expression was false.
            TransactionCanceledError: DynamoDB cancelled a transaction.
            ThrottledError: DynamoDB kept throttling after botocore's retries.
            ItemTooLargeError: DynamoDB reported an item over 400 KB.
            ConfigurationError: The table does not exist.
            ServiceError: Any other DynamoDB or network error.
        """
        if (empty := record(operation, params)) is not None:
            return empty  # inside dynorm.capture(): recorded, not sent
        method = self._bound.get(operation)
        if method is None:
            method = self._method(operation)
            self._bound[operation] = method
        debug = logger.isEnabledFor(logging.DEBUG)
        if debug and operation in _CAPACITY_OPERATIONS and "ReturnConsumedCapacity" not in params:
            params = {**params, "ReturnConsumedCapacity": "TOTAL"}
        box = _Attempts()
        started = time.perf_counter()
        direct = _direct.set(self._slot.direct)
        attempts = _attempts.set(box)
        try:
            response = self._send(operation, method, params, box)
        except DynormError as exc:
            if debug:
                _request_log(
                    operation, self.table_name, started, box, error=exc.aws_code or _code(exc)
                )
            raise
        finally:
            _attempts.reset(attempts)
            _direct.reset(direct)
        if debug:
            body = response.get(_RAW_BODY)
            capacity = (
                _body_capacity(body)
                if isinstance(body, bytes)
                else _capacity_total(response.get("ConsumedCapacity"))
            )
            _request_log(operation, self.table_name, started, box, capacity=capacity)
        return response

    def _method(self, operation: str) -> Callable[..., Any]:
        """What sends `operation`: the lean transport for item requests, else boto3."""
        transport = self.transport
        if transport is None or operation not in LEAN_OPERATIONS:
            method: Callable[..., Any] = getattr(self.client, _METHODS[operation])

            def boto3(**params: Any) -> dict[str, Any]:
                # Inside the async bridge the botocore client's request runs on a worker
                # thread (its HTTP layer blocks); anywhere else, right here.
                response: dict[str, Any] = _bridge.blocking(method, **params)
                return response

            return boto3

        def lean(**params: Any) -> dict[str, Any]:
            return transport.call(
                operation, params, raw_key=_RAW_BODY if _raw_wanted.get() else None
            )

        return lean

    def _send(
        self,
        operation: str,
        method: Callable[..., Any],
        params: Mapping[str, Any],
        box: _Attempts,
    ) -> dict[str, Any]:
        attempt = 0
        while True:
            attempt += 1
            try:
                response: dict[str, Any] = method(**params)
                return response
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code == "TransactionConflictException" and attempt < _CONFLICT_ATTEMPTS:
                    # The item is locked by a running transaction; nothing was applied, and
                    # botocore does not retry this code.
                    _bridge.sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)), time.sleep)
                    continue
                raise translate_client_error(exc, operation, self.table_name) from exc
            except NoCredentialsError as exc:
                raise ConfigurationError(
                    f"Cannot send {operation} to table {self.table_name!r}: no AWS credentials "
                    "were found, so nothing was sent. Set $AWS_PROFILE or $AWS_ACCESS_KEY_ID "
                    "and $AWS_SECRET_ACCESS_KEY, use an SSO/instance/container role, or pass "
                    "dynorm.configure(client=...).",
                    code="config",
                ) from exc
            except BotoCoreError as exc:
                raise self._network_error(operation, exc, box) from exc

    def _network_error(self, operation: str, exc: BotoCoreError, box: _Attempts) -> ServiceError:
        """The ServiceError for a botocore error that is not a DynamoDB answer."""
        where = f"{operation} on table {self.table_name!r}"
        url = self.endpoint_url
        if not box.sent and isinstance(exc, BotoConnectionError):
            host = urlsplit(url).hostname or ""
            if host.endswith((".amazonaws.com", ".amazonaws.com.cn")):
                hint = "Check the network connection and the region (configure(region_name=...))."
            else:
                hint = (
                    "Is DynamoDB Local running? Start it with `dynorm local`, or check "
                    "dynorm.configure(endpoint_url=...) / $DYNORM_ENDPOINT_URL."
                )
            return ServiceError(
                f"Cannot connect to DynamoDB at {url} for {where}: nothing answered "
                f"({type(exc).__name__} after {box.count} attempt(s)), so nothing was sent. "
                f"{hint}",
                maybe_applied=False,
            )
        if operation in _WRITES and box.sent:
            return ServiceError(
                f"Cannot complete {where}: {type(exc).__name__} after {box.count} attempt(s) "
                f"at {url}. The write may or may not have been applied; retry it if it is "
                "idempotent or conditional.",
                maybe_applied=True,
            )
        return ServiceError(
            f"Cannot complete {where}: {type(exc).__name__} after {box.count} attempt(s) at "
            f"{url}. Nothing was changed; retrying is safe.",
            maybe_applied=False,
        )

    def send_body(
        self, operation: str, params: Mapping[str, Any]
    ) -> tuple[bytes | None, dict[str, Any]]:
        """Send a read and return (the raw JSON body, the response without it).

        The body is None when botocore parsed the response itself (a stubbed client, or a
        hook that answered); the response then holds the parsed result. Errors are parsed
        and mapped exactly as in `send`.
        """
        token = _raw_wanted.set(True)
        try:
            response = self.send(operation, params)
        finally:
            _raw_wanted.reset(token)
        return response.pop(_RAW_BODY, None), response

    def send_raw(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Send a read and return the response as DynamoDB's own JSON (B values base64 text).

        Skips botocore's response parser for successful responses (see `_take_body`);
        errors are parsed and mapped exactly as in `send`.
        """
        body, response = self.send_body(operation, params)
        if body is None:
            return response
        return self.loads(body, response)

    def read(
        self,
        operation: str,
        params: Mapping[str, Any],
        wire: Callable[[bytes], T | None],
        general: Callable[[dict[str, Any]], T],
    ) -> T:
        """Send a read and decode it: `wire` on the raw body, else `general` on the parsed one.

        `general` decodes what the wire schema refused (`wire` returned None), and responses
        botocore parsed itself (a stubbed client).
        """
        body, response = self.send_body(operation, params)
        if body is not None:
            got = wire(body)
            if got is not None:
                return got
            response = self.loads(body, response)  # a shape the wire schema refused
        return general(response)

    @staticmethod
    def loads(body: bytes, response: Mapping[str, Any]) -> dict[str, Any]:
        """Parse a raw body kept by `send_body` into DynamoDB JSON."""
        data: dict[str, Any] = _loads(body)
        data["ResponseMetadata"] = response.get("ResponseMetadata", {})
        return data


def _code(exc: DynormError) -> str:
    code = getattr(exc, "code", None)
    return str(code) if code else type(exc).__name__
