"""Which failed attempts may have reached DynamoDB, for the exactly-once bookkeeping.

Invariant: an attempt that ended before any connection to the endpoint (or to its proxy)
was made sent nothing, so it never makes a write "uncertain"; any other failure (a read
timeout, a closed connection, a TLS error, which can come after the request went out)
does.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)

from dynorm import _exactly_once

URL = "http://dynamodb.invalid/"

NOT_SENT = [
    EndpointConnectionError(endpoint_url=URL, error="refused"),
    ConnectTimeoutError(endpoint_url=URL, error="timed out"),
    ProxyConnectionError(proxy_url="http://proxy.invalid:3128", error="refused"),
]
MAYBE_SENT = [
    ReadTimeoutError(endpoint_url=URL, error="timed out"),
    ConnectionClosedError(endpoint_url=URL, error="reset"),
    SSLError(endpoint_url=URL, error="bad record mac"),
]


def _uncertain_after(error: Exception) -> bool:
    box = _exactly_once._Attempts()
    token = _exactly_once._attempts.set(box)
    try:
        _exactly_once._on_lean_attempt(None, error)
    finally:
        _exactly_once._attempts.reset(token)
    return box.uncertain


@pytest.mark.parametrize("error", NOT_SENT, ids=lambda e: type(e).__name__)
def test_an_attempt_that_never_connected_leaves_the_write_certain(error: Exception) -> None:
    assert not _uncertain_after(error)


@pytest.mark.parametrize("error", MAYBE_SENT, ids=lambda e: type(e).__name__)
def test_an_attempt_that_may_have_been_sent_makes_the_write_uncertain(error: Exception) -> None:
    assert _uncertain_after(error)
