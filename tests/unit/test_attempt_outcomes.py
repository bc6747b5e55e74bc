"""Which failed attempts may have reached DynamoDB, for the exactly-once bookkeeping.

Invariant: an attempt that ended before any connection to the endpoint (or to its proxy)
was made sent nothing, so it never makes a write "uncertain"; any other failure (a read
timeout, a closed connection, a TLS error, which can come after the request went out)
does.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import Callable
from http.client import RemoteDisconnected
from typing import Any

import pytest
from botocore.awsrequest import AWSRequest
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.httpsession import URLLib3Session
from urllib3.exceptions import (
    ConnectTimeoutError as Urllib3ConnectTimeout,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    SSLError as Urllib3SSLError,
)

from dynorm import _connection, _exactly_once
from dynorm._wire import HandshakeError

URL = "http://dynamodb.invalid/"
PROXY = "http://proxy.invalid:3128"

NOT_SENT = [
    EndpointConnectionError(endpoint_url=URL, error="refused"),
    ConnectTimeoutError(endpoint_url=URL, error="timed out"),
    ProxyConnectionError(proxy_url=PROXY, error=ProxyError("no", NewConnectionError(None, "no"))),
    ProxyConnectionError(proxy_url=PROXY, error=ProxyError("no", Urllib3ConnectTimeout("slow"))),
    HandshakeError(endpoint_url=URL, error=ssl.SSLError("handshake")),  # dynorm's exchange
    SSLError(endpoint_url=URL, error=Urllib3SSLError(ssl.SSLCertVerificationError("bad cert"))),
]
MAYBE_SENT = [
    ReadTimeoutError(endpoint_url=URL, error="timed out"),
    ConnectionClosedError(endpoint_url=URL, error="reset"),
    SSLError(endpoint_url=URL, error="bad record mac"),
    # botocore's session says SSLError for any TLS error, after the request went out too.
    SSLError(endpoint_url=URL, error=Urllib3SSLError(ssl.SSLEOFError(8, "EOF in violation"))),
    # urllib3 also raises ProxyError when the proxy hangs up after the request reached it.
    ProxyConnectionError(proxy_url=PROXY, error=ProxyError("no", RemoteDisconnected("bye"))),
    ProxyConnectionError(proxy_url=PROXY, error=ProxyError("no", ProtocolError("reset"))),
    ProxyConnectionError(proxy_url=PROXY, error="refused"),
]


def _box_after(bookkeeping: Any, hook: Callable[[Any, Exception], None], error: Exception) -> Any:
    """The attempts box of `bookkeeping` (a module) after one attempt failed with `error`."""
    box = bookkeeping._Attempts()
    token = bookkeeping._attempts.set(box)
    try:
        hook(None, error)
    finally:
        bookkeeping._attempts.reset(token)
    return box


def _sent_after(error: Exception) -> bool:
    """What the request bookkeeping (the error's sentence, `maybe_applied`) makes of it."""
    return bool(_box_after(_connection, _connection._count_attempt, error).sent)


def _uncertain_after(error: Exception) -> bool:
    """What the exactly-once write bookkeeping makes of it."""
    return bool(_box_after(_exactly_once, _exactly_once._on_lean_attempt, error).uncertain)


@pytest.mark.parametrize("error", NOT_SENT, ids=lambda e: type(e).__name__)
def test_an_attempt_that_never_connected_leaves_the_write_certain(error: Exception) -> None:
    assert not _uncertain_after(error)
    assert not _sent_after(error)


@pytest.mark.parametrize("error", MAYBE_SENT, ids=lambda e: type(e).__name__)
def test_an_attempt_that_may_have_been_sent_makes_the_write_uncertain(error: Exception) -> None:
    assert _uncertain_after(error)
    assert _sent_after(error)


def _dropping_proxy(after: bytes | None) -> tuple[socket.socket, str]:
    """A proxy that reads one request, then answers `after` (None: a reset) and hangs up."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            seen = b""
            while b"\r\n\r\n" not in seen:
                seen += conn.recv(65536)
            if after is None:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                conn.sendall(after)

    threading.Thread(target=serve, daemon=True).start()
    return server, f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.parametrize(
    "after",
    [None, b"", b"HTTP/1."],
    ids=["reset", "closed", "cut-short"],
)
def test_a_request_that_reached_the_proxy_and_then_failed_is_uncertain(
    after: bytes | None, no_proxy_env: pytest.MonkeyPatch
) -> None:
    server, proxy = _dropping_proxy(after)
    request = AWSRequest("POST", "http://dynamodb.invalid/", data=b"{}").prepare()
    with server:
        with pytest.raises(Exception) as caught:
            URLLib3Session(proxies={"http": proxy}, timeout=5).send(request)
    assert _uncertain_after(caught.value), type(caught.value).__name__
    assert _sent_after(caught.value)


def test_a_proxy_that_refuses_the_connection_leaves_the_write_certain(
    no_proxy_env: pytest.MonkeyPatch,
) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.close()  # nothing listens there now
    request = AWSRequest("POST", "http://dynamodb.invalid/", data=b"{}").prepare()
    with pytest.raises(ProxyConnectionError) as caught:
        URLLib3Session(proxies={"http": f"http://127.0.0.1:{port}"}, timeout=5).send(request)
    assert not _uncertain_after(caught.value)
    assert not _sent_after(caught.value)
