"""The lean request path (`transport="http"`) against DynamoDB Local.

Invariants: whatever path wrote an item, the other reads it identically; errors map to
the same dynorm exceptions; throttling is retried with backoff up to `max_attempts`; a
write whose answer was lost is applied once; nothing listening is "not sent"; a body
whose CRC32 does not match is never used; credentials are read for every request.
Faults are injected at the transport's exchange (`HttpTransport._post`), where this path
sends.
"""

from __future__ import annotations

import asyncio
import os
import threading
import zlib
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from hypothesis import HealthCheck, given, settings, strategies as st

import dynorm
from dynorm import F, _config
from dynorm._http import HttpTransport, _Body
from dynorm.exceptions import (
    ServiceError,
    ThrottledError,
    TransactionCanceledError,
    VersionConflictError,
)
from tests.models import Everything, Order
from tests.proxies import forwarding_proxy
from tests.reliability.helpers import Faults, raw_get

lean_url = "http://dynamodb.invalid/"  # where an injected answer says it came from


@pytest.fixture
def lean(dynorm_table: str) -> HttpTransport:
    """dynorm configured with the lean transport; returns it."""
    _config.configure(transport="http")
    transport = _config.get_connection().transport
    assert isinstance(transport, HttpTransport)
    return transport


@pytest.fixture
def wire(lean: HttpTransport, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Route the transport's exchanges through `faults` (callables run in order), whichever
    carries them (dynorm's own `_wire`, or the botocore HTTP session where that does not
    apply)."""
    real = lean._post
    faults: list[Any] = []

    def patched(body: bytes, headers: Any) -> AWSResponse:
        if faults:
            answer: AWSResponse = faults.pop(0)(real, body, headers)
            return answer
        return real(body, headers)

    monkeypatch.setattr(lean, "_post", patched)
    yield faults


def _answer(status: int, body: bytes, crc: int | None = None) -> AWSResponse:
    checksum = zlib.crc32(body) & 0xFFFFFFFF if crc is None else crc
    headers: Any = {"x-amz-crc32": str(checksum), "content-type": "application/x-amz-json-1.0"}
    return AWSResponse(lean_url, status, headers, _Body(body))


def _error(code: str) -> Callable[..., AWSResponse]:
    body = f'{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"injected"}}'
    return lambda *_: _answer(400, body.encode())


values = st.fixed_dictionaries(
    {
        "s": st.text(max_size=30),
        "i": st.integers(-(2**63), 2**63),
        "d": st.decimals(allow_nan=False, allow_infinity=False, places=4, max_value=10**9),
        "raw": st.binary(max_size=40),
        "ss": st.sets(st.text(min_size=1, max_size=8), max_size=4),
        "bs": st.sets(st.binary(min_size=1, max_size=8), max_size=4),
        "mapping": st.dictionaries(
            st.text(min_size=1, max_size=8), st.integers(-(10**38) + 1, 10**38 - 1), max_size=4
        ),
    }
)


def _stored(obj: Everything, names: Any) -> dict[str, Any]:
    item = raw_get(obj.dynamo_key["pk"], obj.dynamo_key["sk"])
    assert item is not None
    return {k: v for k, v in item.items() if k in names}


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=values)
def test_either_path_reads_what_the_other_wrote(
    lean: HttpTransport, values: dict[str, Any]
) -> None:
    by_lean = Everything.objects.create(**values)
    _config.configure(transport="boto3")
    try:
        assert Everything.objects.get(id=by_lean.id) == by_lean
        by_boto3 = Everything.objects.create(**values)
    finally:
        _config.configure(transport="http")
    assert Everything.objects.get(id=by_boto3.id) == by_boto3
    assert _stored(by_lean, values) == _stored(by_boto3, values)


def test_errors_map_to_the_same_exceptions(lean: HttpTransport) -> None:
    o = Order.objects.create(customer_id="c1", total=Decimal(1))
    stale = Order.objects.get(customer_id="c1", id=o.id)
    o.save()
    with pytest.raises(VersionConflictError, match="stored version is 2"):
        stale.save()  # the refusal's Item (ALL_OLD) came through botocore's error parser
    with pytest.raises(TransactionCanceledError) as caught:
        with dynorm.transaction():
            Order(customer_id="c1", total=Decimal(2)).save()
            stale.save()
    assert caught.value.reasons == [None, "ConditionalCheckFailed"]


def test_throttling_is_retried_then_raised_after_max_attempts(
    lean: HttpTransport, wire: list[Any]
) -> None:
    o = Order.objects.create(customer_id="c1", total=Decimal(1))
    wire.extend([_error("ProvisionedThroughputExceededException")] * 2)
    assert Order.objects.get(customer_id="c1", id=o.id) == o  # third attempt answered
    assert wire == []
    wire.extend([_error("ProvisionedThroughputExceededException")] * 5)
    with pytest.raises(ThrottledError) as caught:
        Order.objects.get(customer_id="c1", id=o.id)
    assert caught.value.attempts == 3  # configure(max_attempts=3), the default
    assert len(wire) == 2


def test_a_write_whose_answer_was_lost_is_applied_once(
    lean: HttpTransport, wire: list[Any]
) -> None:
    o = Order.objects.create(customer_id="c1", total=Decimal(1))

    def lose(real: Any, body: bytes, headers: Any) -> Any:
        real(body, headers)  # DynamoDB applies it ...
        raise ReadTimeoutError(endpoint_url=lean_url)  # injected: the answer was lost

    wire.append(lose)
    o.update(total=F("total") + 1)
    assert wire == []
    stored = Order.objects.get(customer_id="c1", id=o.id)
    assert (stored.total, stored.version) == (Decimal(2), 2) == (o.total, o.version)
    wire.append(lose)
    o.total = Decimal(10)
    o.save()  # retried by the transport; the retry's refusal shows the write token: applied
    assert Order.objects.get(customer_id="c1", id=o.id).version == o.version == 3


def test_a_body_with_a_bad_checksum_is_never_used(lean: HttpTransport, wire: list[Any]) -> None:
    o = Order.objects.create(customer_id="c1", total=Decimal(1))

    def corrupt(real: Any, body: bytes, headers: Any) -> Any:
        good = real(body, headers).content
        return _answer(200, good.replace(b'"1"', b'"9"'), crc=zlib.crc32(good))

    wire.append(corrupt)
    assert Order.objects.get(customer_id="c1", id=o.id).total == Decimal(1)  # retried


def test_nothing_listening_is_a_not_sent_error(dynorm_table: str) -> None:
    nowhere = dynorm.Table(
        dynorm_table, endpoint_url="http://127.0.0.1:9", transport="http", max_attempts=2
    )
    with dynorm.using(nowhere), pytest.raises(ServiceError) as caught:
        Order.objects.create(customer_id="c1", total=Decimal(1))
    assert caught.value.maybe_applied is False
    assert "nothing was sent" in str(caught.value)


def test_credentials_are_read_for_every_request(
    lean: HttpTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = lean._credentials_source
    reads: list[int] = []

    class Counting:
        def get_frozen_credentials(self) -> Any:
            reads.append(1)
            return source.get_frozen_credentials()

    monkeypatch.setattr(lean, "_credentials_source", Counting())
    o = Order.objects.create(customer_id="c1", total=Decimal(1))
    Order.objects.get(customer_id="c1", id=o.id)
    assert len(reads) == 2  # refreshable credentials refresh themselves on each read


def test_a_client_of_your_own_keeps_the_boto3_path(dynorm_table: str) -> None:
    client = _config.get_connection().client
    _config.configure(client=client, transport="http")
    assert _config.get_connection().transport is None


def test_bad_transport_options_are_refused() -> None:
    with pytest.raises(dynorm.ConfigurationError, match="transport"):
        dynorm.Table("t-x", transport="curl")
    with pytest.raises(dynorm.ConfigurationError, match="max_pool_connections"):
        dynorm.Table("t-x", max_pool_connections=0)
    with pytest.raises(dynorm.ConfigurationError, match="read_timeout"):
        dynorm.Table("t-x", read_timeout=-1)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_calls_on_the_lean_path(lean: HttpTransport, anyio_backend: str) -> None:
    made = await asyncio.gather(
        *(Order.objects.acreate(customer_id="c1", total=Decimal(i)) for i in range(40))
    )
    got = await asyncio.gather(*(Order.objects.aget(customer_id="c1", id=o.id) for o in made))
    assert got == list(made)
    assert await Order.objects.filter(customer_id="c1").acount() == 40


def test_the_test_tables_follow_dynorm_transport(dynorm_table: str) -> None:
    """The suite runs on the transport $DYNORM_TRANSPORT names (CI runs it on both): the
    `dynorm_table` fixture's client, and a Table that shares it, use that path."""
    lean = os.environ.get("DYNORM_TRANSPORT") == "http"
    assert (_config.get_connection().transport is not None) == lean
    assert (dynorm.Table("t-other").connection().transport is not None) == lean


def test_a_transaction_keeps_one_client_request_token_across_retries(lean: HttpTransport) -> None:
    """As botocore does, the lean path fills TransactWriteItems' idempotency token once per
    call: a retry after a lost answer is the same transaction to DynamoDB, not a new one."""
    faults = Faults()
    bodies = faults.count("TransactWriteItems")
    applied = faults.lose_response("TransactWriteItems")
    try:
        with dynorm.transaction():
            Order(customer_id="c1", total=Decimal(1)).save()
    finally:
        faults.clear()
    faults.check_fired()
    tokens = [body.get("ClientRequestToken") for body in bodies]
    assert applied == [200] and len(tokens) == 2
    assert tokens[0] and tokens[0] == tokens[1]


def test_the_sync_lean_path_sends_over_dynorms_own_exchange(
    lean: HttpTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No proxy, no client certificate: the bytes go over `_wire`, never through the
    botocore HTTP session."""
    assert lean.wire is not None

    def not_here(request: Any) -> Any:
        raise AssertionError("sent through the botocore HTTP session")

    monkeypatch.setattr(lean.http_session, "send", not_here)
    o = Order.objects.create(customer_id="c1", total=Decimal(1))
    assert Order.objects.get(customer_id="c1", id=o.id) == o
    assert lean.wire.idle() == 1  # one keep-alive socket served both, sequentially


def test_a_proxy_for_the_endpoint_carries_the_lean_path_sync_and_on_the_loop(
    dynorm_table: str, dynamodb_local: str, no_proxy_env: pytest.MonkeyPatch
) -> None:
    """Where the environment names a proxy for the endpoint, every lean request goes
    through it, as the boto3 client's would: the endpoint's host does not even resolve,
    so an answer can only have come through the proxy."""
    monkeypatch = no_proxy_env
    # Plain http to the proxy whatever the real endpoint's scheme (it forwards over that).
    behind = f"http://dynamodb-behind-a-proxy.invalid:{urlsplit(dynamodb_local).port or 80}"
    with forwarding_proxy(dynamodb_local) as (proxy, seen):
        monkeypatch.setenv("HTTP_PROXY", proxy)
        _config.configure(transport="http", endpoint_url=behind)
        try:
            transport = _config.get_connection().transport
            assert isinstance(transport, HttpTransport)
            assert transport.wire is None  # dynorm's own exchange does not speak to proxies
            threads: list[int] = []
            real = transport._through_session

            def noted(body: bytes, headers: Any) -> Any:
                threads.append(threading.get_ident())
                return real(body, headers)

            monkeypatch.setattr(transport, "_through_session", noted)
            o = Order.objects.create(customer_id="c1", total=Decimal(1))
            assert Order.objects.get(customer_id="c1", id=o.id) == o

            async def on_the_loop() -> Order:
                return await Order.objects.aget(customer_id="c1", id=o.id)

            assert asyncio.run(on_the_loop()) == o
            main = threading.get_ident()
            # The sync calls sent from this thread, the awaited one from a worker thread
            # (the session blocks; the event loop must not).
            assert threads[:2] == [main, main] and threads[2] != main and len(threads) == 3
            transport.close()
        finally:  # the table fixture deletes its table at the real endpoint
            _config.configure(endpoint_url=dynamodb_local)
    assert [line.split()[:2] for line in seen] == [["POST", f"{behind}/"]] * 3


def test_the_response_metadata_shows_the_headers_a_before_send_hook_left(
    lean: HttpTransport, dynorm_table: str
) -> None:
    """A hook may send the request itself and edit the answer's headers: the response
    metadata then lists the headers as the hook left them, as botocore's would."""

    def edit(operation: str, request: Any) -> AWSResponse:
        answer = lean.send(request)
        answer.headers["X-Injected"] = "yes"
        del answer.headers["x-amzn-RequestId"]
        return answer

    lean.before_send.append(edit)
    try:
        key = {"pk": {"S": "nope"}, "sk": {"S": "nope"}}
        got = lean.call("GetItem", {"TableName": dynorm_table, "Key": key})
    finally:
        lean.before_send.remove(edit)
    headers = got["ResponseMetadata"]["HTTPHeaders"]
    assert headers["X-Injected"] == "yes"
    assert all(name.lower() != "x-amzn-requestid" for name in headers)
    assert got["ResponseMetadata"]["RequestId"] == ""
