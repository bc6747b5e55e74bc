"""dynorm's own HTTP/1.1 exchange (dynorm/_wire.py) against raw-socket servers of its own.

Invariants: whatever headers (any case, order, repetition, folded lines), body, framing
(Content-Length or chunks cut anywhere, with trailers), interim 1xx answers and recv
segmentation a server sends, the exchange returns exactly that status, those headers and
that body; an answer cut anywhere before its end is a botocore connection error, never a
partial body; N threads sharing one pool each get the answer to their own request, and no
more than `pool_size` sockets stay open; an idle socket the server closed is discarded
before reuse, with no error and no request sent twice; nothing is resent once a request
was handed to the kernel; TLS checks the certificate; a proxy or a client certificate
leaves the request to the botocore HTTP session.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.httpsession import URLLib3Session
from hypothesis import given, settings, strategies as st

from dynorm import _wire
from dynorm._http import _Answer
from dynorm._wire import Exchange, WireError, _Conn, read_answer

# ----------------------------------------------------------------------------- servers


def _read_request(conn: socket.socket, buf: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(head, body, what follows) of the next request on `conn`, or None at its end."""
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    head, _, buf = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(buf) < length:
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    return head, buf[:length], buf[length:]


#: A server's answer to one request: (request head, request body) -> byte segments to send,
#: and whether to close the connection after them.
Respond = Callable[[bytes, bytes], tuple[list[bytes], bool]]


class Server:
    """A thread accepting connections and answering each request with `respond`."""

    def __init__(self, respond: Respond, wrap: Callable[[socket.socket], Any] | None = None):
        self.respond = respond
        self.wrap = wrap
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []  # every request head received, in order
        self.connections = 0
        self.open = 0
        self.closed = threading.Event()  # set each time the server closes a connection
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self.open += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        conn = raw
        buf = b""
        try:
            if self.wrap is not None:
                conn = self.wrap(raw)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                got = _read_request(conn, buf)
                if got is None:
                    return
                head, body, buf = got
                with self._lock:
                    self.requests.append(head)
                segments, close = self.respond(head, body)
                for segment in segments:
                    conn.sendall(segment)
                if close:
                    return
        except OSError:
            return
        finally:
            conn.close()
            with self._lock:
                self.open -= 1
            self.closed.set()

    def close(self) -> None:
        # Wake the accept() first and wait for its thread: a thread still blocked in accept()
        # on a closed socket's descriptor number would take the next server's connections
        # once that number is reused.
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        self._acceptor.join(timeout=30)


@contextmanager
def serving(respond: Respond, **kw: Any) -> Iterator[Server]:
    server = Server(respond, **kw)
    try:
        yield server
    finally:
        server.close()


def exchange(url: str, *, pool_size: int = 4, read_timeout: float = 5.0, **kw: Any) -> Exchange:
    return Exchange(url, pool_size=pool_size, connect_timeout=2.0, read_timeout=read_timeout, **kw)


# ----------------------------------------------------------------------------- answers

_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_!#$%&'*+.^`|~"
_FRAMING = {"content-length", "transfer-encoding", "connection", "content-encoding"}
names = st.text(_NAME_CHARS, min_size=1, max_size=12).filter(lambda n: n.lower() not in _FRAMING)
#: A header value: visible latin-1 characters with inner spaces, no outer whitespace.
words = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x7f"),
    min_size=1,
    max_size=10,
)
values = st.lists(words, max_size=3).map(" ".join)
spaces = st.sampled_from(["", " ", "  ", "\t", " \t"])


@st.composite
def header_lines(draw: Any, most: int = 6) -> tuple[bytes, dict[str, str]]:
    """Header lines as sent (random case, order, repeats, obs-fold) and what they mean."""
    sent: list[str] = []
    meant: dict[str, str] = {}
    first: dict[str, str] = {}  # lower-case name -> as first sent
    for name, value in draw(st.lists(st.tuples(names, values), max_size=most)):
        case = draw(st.integers(0, 2**12 - 1))  # which letters are upper case
        name = "".join(c.upper() if case >> i & 1 else c.lower() for i, c in enumerate(name))
        parts = value.split(" ") if value and draw(st.booleans()) else [value]
        line = f"{name}:{draw(spaces)}{parts[0]}{draw(spaces)}"
        for part in parts[1:]:  # folded: each further word on a continuation line
            fold = draw(st.sampled_from([" ", "\t", "   "]))
            line += f"\r\n{fold}{part}{draw(spaces)}"
        sent.append(line + "\r\n")
        key = first.setdefault(name.lower(), name)
        meant[key] = f"{meant[key]}, {value}" if key in meant else value
    return "".join(sent).encode("latin-1"), meant


@st.composite
def answers(draw: Any) -> tuple[bytes, int, dict[str, str], bytes]:
    """A whole answer's bytes, and the (status, headers, body) it carries."""
    status = draw(st.integers(200, 599).filter(lambda s: s not in (204, 304)))
    lines, headers = draw(header_lines())
    body = draw(st.binary(max_size=1500))
    interim = b"".join(
        f"HTTP/1.1 {code} Whatever\r\n".encode() + draw(header_lines(2))[0] + b"\r\n"
        for code in draw(st.lists(st.sampled_from([100, 102, 103]), max_size=2))
    )
    head = f"HTTP/1.1 {status} {draw(st.sampled_from(['OK', 'Some Reason', '']))}\r\n"
    if draw(st.booleans()):
        framed = f"Content-Length: {len(body)}\r\n".encode() + lines + b"\r\n" + body
        headers = {**headers, "Content-Length": str(len(body))}
    else:
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=6)))
        chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        framed = b"Transfer-Encoding: chunked\r\n" + lines + b"\r\n"
        for chunk in chunks:
            if chunk:  # a zero-size chunk would end the body
                ext = draw(st.sampled_from(["", ";x=1", ";name"]))
                framed += f"{len(chunk):{draw(st.sampled_from(['x', 'X']))}}{ext}\r\n".encode()
                framed += chunk + b"\r\n"
        framed += b"0\r\n" + draw(header_lines(2))[0] + b"\r\n"  # trailers, dropped
        headers = {**headers, "Transfer-Encoding": "chunked"}
    return interim + head.encode() + framed, status, headers, body


def _segments(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if a < b]


class _Segmented:
    """A socket whose recv returns exactly the given segments, then the end."""

    def __init__(self, segments: list[bytes]) -> None:
        self.segments = list(segments)

    def recv(self, _: int) -> bytes:
        return self.segments.pop(0) if self.segments else b""


def _read(segments: list[bytes]) -> tuple[int, dict[str, str], bytes, bool]:
    sock: Any = _Segmented(segments)
    return read_answer(_Conn(sock))


@settings(max_examples=60, deadline=None)
@given(answer=answers(), cuts=st.lists(st.integers(0, 10**6), max_size=12))
def test_the_reader_returns_exactly_what_was_sent_however_it_is_split(
    answer: tuple[bytes, int, dict[str, str], bytes], cuts: list[int]
) -> None:
    data, status, headers, body = answer
    got_status, got_headers, got_body, keep = _read(_segments(data, cuts))
    assert (got_status, got_headers, got_body) == (status, headers, body)
    assert keep  # HTTP/1.1, no Connection: close, nothing left over


@settings(max_examples=60, deadline=None)
@given(answer=answers())
def test_the_response_metadata_headers_are_the_ones_botocore_would_list(
    answer: tuple[bytes, int, dict[str, str], bytes],
) -> None:
    # The transport's metadata reads the plain dict it kept (`_Answer.fields`) instead of
    # walking botocore's HeadersDict: for any headers the reader returns, the same entries.
    status, headers, body, _ = _read([answer[0]])
    got = _Answer("http://127.0.0.1/", status, headers, body)
    assert got.fields == dict(got.headers.items())
    assert list(got.fields) == [str(k) for k in got.headers]


@settings(max_examples=60, deadline=None)
@given(
    answer=answers(), cut=st.integers(0, 10**6), cuts=st.lists(st.integers(0, 10**6), max_size=12)
)
def test_an_answer_cut_anywhere_is_an_error_never_a_partial_body(
    answer: tuple[bytes, int, dict[str, str], bytes], cut: int, cuts: list[int]
) -> None:
    data = answer[0]
    prefix = data[: cut % len(data)]
    with pytest.raises(WireError):
        _read(_segments(prefix, cuts))


@settings(max_examples=25, deadline=None)
@given(answer=answers(), cut=st.integers(0, 10**6), whole=st.booleans())
def test_the_exchange_returns_what_a_server_sent_or_a_connection_error(
    answer: tuple[bytes, int, dict[str, str], bytes], cut: int, whole: bool
) -> None:
    data, status, headers, body = answer
    sent = data if whole else data[: cut % len(data)]
    with serving(lambda *_: (_segments(sent, [cut, cut // 7, cut // 3]), not whole)) as server:
        wire = exchange(server.url)
        try:
            if whole:
                assert wire.post(b"{}", {}) == (status, headers, body)
                assert wire.idle() == 1
            else:
                with pytest.raises(ConnectionClosedError):
                    wire.post(b"{}", {})
                assert wire.idle() == 0
        finally:
            wire.close()
        assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("answer", "keep"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", True),
        (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", False),
        (b"HTTP/1.1 204 No Content\r\n\r\n", True),
    ],
)
def test_a_connection_is_kept_only_after_an_answer_that_allows_it(
    answer: bytes, keep: bool
) -> None:
    assert _read([answer])[3] is keep


def test_an_answer_that_ends_with_the_connection_is_read_to_the_end() -> None:
    assert _read([b"HTTP/1.1 200 OK\r\n\r\nall", b" of it"])[2:] == (b"all of it", False)


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/2 200 OK\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded first: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nokk",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ],
)
def test_a_malformed_answer_is_an_error(answer: bytes) -> None:
    with pytest.raises(WireError):
        _read([answer])


def test_request_bytes_carry_the_signed_headers_once_and_nothing_that_breaks_lines() -> None:
    wire = exchange("https://dynamodb.us-east-1.amazonaws.com/")
    sent = wire.request_bytes(b"{}", {"X-Amz-Target": "T", "Host": "evil", "content-length": "9"})
    assert sent == (
        b"POST / HTTP/1.1\r\nHost: dynamodb.us-east-1.amazonaws.com\r\nContent-Length: 2\r\n"
        b"Accept-Encoding: identity\r\nX-Amz-Target: T\r\n\r\n{}"
    )
    assert (
        exchange("http://[::1]:8000/")
        .request_bytes(b"", {})
        .startswith(b"POST / HTTP/1.1\r\nHost: [::1]:8000\r\n")
    )
    for bad in ({"X-A": "v\r\nX-B: w"}, {"X-A\r\nX-B": "w"}, {"X-A": "v\n"}):
        with pytest.raises(ValueError, match="break the request"):
            wire.request_bytes(b"", bad)


# ----------------------------------------------------------------------------- the pool


def _echo(head: bytes, body: bytes) -> tuple[list[bytes], bool]:
    """Answer with the request's X-Id header and body (split in two segments)."""
    request_id = next(
        line.split(b":", 1)[1].strip() for line in head.split(b"\r\n") if line.startswith(b"X-Id")
    )
    answer = b"HTTP/1.1 200 OK\r\nX-Id: " + request_id + b"\r\n"
    answer += f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    return [answer[:20], answer[20:]], False


def test_threads_sharing_a_pool_each_get_their_own_answer_and_few_sockets_stay_open() -> None:
    threads, each, pool_size = 8, 25, 3
    with serving(_echo) as server:
        wire = exchange(server.url, pool_size=pool_size)
        wrong: list[str] = []

        def work(t: int) -> None:
            for i in range(each):
                rid = f"{t}-{i}"
                status, headers, body = wire.post(f'{{"id":"{rid}"}}'.encode(), {"X-Id": rid})
                if (status, headers["X-Id"], body) != (200, rid, f'{{"id":"{rid}"}}'.encode()):
                    wrong.append(rid)

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert wrong == []
        assert len(server.requests) == threads * each  # none sent twice, none lost
        assert wire.idle() <= pool_size
        deadline = time.monotonic() + 5
        while server.open != wire.idle() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.open == wire.idle() <= pool_size  # the extras were closed
        wire.close()
        while server.open and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.open == 0


def test_an_idle_socket_the_server_closed_is_discarded_without_error_or_resend() -> None:
    def answer_then_close(head: bytes, body: bytes) -> tuple[list[bytes], bool]:
        return _echo(head, body)[0], True  # no Connection: close, as an idle timeout does

    with serving(answer_then_close) as server:
        wire = exchange(server.url)
        for i in range(5):
            server.closed.clear()
            assert wire.post(b"{}", {"X-Id": str(i)})[1]["X-Id"] == str(i)
            assert server.closed.wait(5)
            time.sleep(0.01)  # the FIN reaches the client's socket
        assert len(server.requests) == 5 == server.connections
        assert wire.idle() <= 1


class _FailingSend:
    """A socket whose next sendall fails as a connection the server reset does."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sends = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def sendall(self, _: bytes) -> None:
        self.sends += 1
        raise BrokenPipeError(32, "Broken pipe")

    def close(self) -> None:
        self.sock.close()


def test_a_reused_socket_that_fails_to_send_is_sent_again_once_on_a_new_one() -> None:
    with serving(_echo) as server:
        wire = exchange(server.url)
        wire.post(b"{}", {"X-Id": "1"})
        failing = _FailingSend(wire._idle[0].sock)
        wire._idle[0].sock = failing  # type: ignore[assignment]
        assert wire.post(b"{}", {"X-Id": "2"})[1]["X-Id"] == "2"
        assert failing.sends == 1
        assert len(server.requests) == 2 == server.connections
        wire.close()


def test_nothing_is_sent_again_once_the_request_was_handed_over() -> None:
    answered = 0

    def first_only(head: bytes, body: bytes) -> tuple[list[bytes], bool]:
        nonlocal answered
        answered += 1
        return (_echo(head, body)[0], False) if answered == 1 else ([], True)

    with serving(first_only) as server:
        wire = exchange(server.url)
        wire.post(b"{}", {"X-Id": "1"})
        with pytest.raises(ConnectionClosedError):  # on the reused socket
            wire.post(b"{}", {"X-Id": "2"})
        with pytest.raises(ConnectionClosedError):  # on a new one
            wire.post(b"{}", {"X-Id": "3"})
        assert len(server.requests) == 3
        assert wire.idle() == 0


def test_no_answer_in_time_is_a_read_timeout() -> None:
    with serving(lambda *_: ([], False)) as server:
        wire = exchange(server.url, read_timeout=0.2)
        with pytest.raises(ReadTimeoutError):
            wire.post(b"{}", {})
        assert len(server.requests) == 1 and wire.idle() == 0


def test_nothing_listening_is_an_endpoint_connection_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    with pytest.raises(EndpointConnectionError):
        exchange(f"http://127.0.0.1:{port}/").post(b"{}", {})


# ----------------------------------------------------------------------------- TLS, proxies


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate (and its key) for 127.0.0.1, in one PEM file."""
    pem = tmp_path_factory.mktemp("tls") / "server.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(pem), "-out", str(pem.with_suffix(".crt")), "-days", "2",
         "-subj", "/CN=dynorm-test", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    pem.write_bytes(pem.read_bytes() + pem.with_suffix(".crt").read_bytes())
    return pem


def test_tls_checks_the_certificate_against_the_bundle_botocore_would_use(
    certificate: Path,
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate)

    def wrap(sock: socket.socket) -> Any:
        return context.wrap_socket(sock, server_side=True)

    with serving(_echo, wrap=wrap) as server:
        url = f"https://127.0.0.1:{server.port}/"
        with pytest.raises(SSLError):  # self-signed: not in certifi's bundle
            exchange(url).post(b"{}", {"X-Id": "1"})
        with pytest.raises(SSLError):  # a CA bundle that is not there (as urllib3 says)
            exchange(url, verify="/nonexistent/ca.pem").post(b"{}", {"X-Id": "0"})
        trusted = exchange(url, verify=str(certificate.with_suffix(".crt")))
        assert trusted.post(b"{}", {"X-Id": "2"})[1]["X-Id"] == "2"
        assert trusted.post(b"{}", {"X-Id": "3"})[1]["X-Id"] == "3"  # over the same socket
        unchecked = exchange(url, verify=False)
        assert unchecked.post(b"{}", {"X-Id": "4"})[1]["X-Id"] == "4"
        trusted.close()
        unchecked.close()
    assert len(server.requests) == 3  # the refused handshakes sent nothing
    assert server.connections == 4


def test_only_a_refused_handshake_counts_as_never_sent_over_tls(certificate: Path) -> None:
    """A handshake that failed sent nothing (dynorm's exchange, botocore's session with a
    refused certificate); a TLS connection lost after the request went out may have been
    applied, whichever error it surfaces as (botocore says SSLError for some)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate)
    answers = iter([([], True), ([b"HTTP/1."], True)])

    def wrap(sock: socket.socket) -> Any:
        return context.wrap_socket(sock, server_side=True)

    with serving(lambda head, body: next(answers), wrap=wrap) as server:
        url = f"https://127.0.0.1:{server.port}/"
        request = AWSRequest("POST", url, data=b"{}").prepare()
        with pytest.raises(SSLError) as refused:  # self-signed: not in certifi's bundle
            exchange(url).post(b"{}", {})
        assert _wire.never_sent(refused.value)
        with pytest.raises(SSLError) as refused:
            URLLib3Session().send(request)
        assert _wire.never_sent(refused.value)
        assert server.requests == []
        trusting = URLLib3Session(verify=str(certificate.with_suffix(".crt")))
        for _ in range(2):  # hung up without an answer; then within its status line
            with pytest.raises(Exception) as lost:
                trusting.send(request)
            assert not _wire.never_sent(lost.value), repr(lost.value)
        assert len(server.requests) == 2


_session = botocore.session.Session()


def _client(**config: Any) -> Any:
    return _session.create_client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:8000",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(**config),
    )


def _wire_for(client: Any) -> Exchange | None:
    url = "http://127.0.0.1:8000/"
    return _wire.for_client(client, url, pool_size=2, connect_timeout=1, read_timeout=1)


def test_a_proxy_or_a_client_certificate_leaves_it_to_the_botocore_session(
    no_proxy_env: pytest.MonkeyPatch,
) -> None:
    monkeypatch = no_proxy_env
    assert _wire_for(_client()) is not None
    assert _wire_for(_client(proxies={"http": "http://proxy.invalid:3128"})) is None
    assert _wire_for(_client(client_cert="/nonexistent/cert.pem")) is None
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    assert _wire_for(_client()) is None  # botocore reads the environment for a new client
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert _wire_for(_client()) is not None


@pytest.mark.parametrize(
    "url",
    [
        "https://dynamodb.eu-west-1.amazonaws.com/",
        "https://DynamoDB.EU-West-1.amazonaws.com:443/",
        "https://vpce-1.dynamodb.us-east-1.vpce.amazonaws.com:8443/",
        "http://localhost:8000/",
        "http://127.0.0.1:80/",
        "http://[::1]:8000/",
    ],
)
def test_the_host_sent_is_the_host_sigv4_signed(url: str) -> None:
    """DynamoDB checks the signature over the Host header (DynamoDB Local does not)."""
    signer = SigV4Auth(Credentials("x", "y"), "dynamodb", "us-east-1")
    signed = signer.headers_to_sign(AWSRequest(method="POST", url=url))["host"]
    head = exchange(url).request_bytes(b"", {}).split(b"\r\n")
    assert head[1] == f"Host: {signed}".encode()
