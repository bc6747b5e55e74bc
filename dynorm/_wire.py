"""The lean transport's own HTTP/1.1 exchange: one POST, one answer, keep-alive sockets.

`HttpTransport` (dynorm/_http.py) signs, checks and retries a request; this module only
carries its bytes on the sync path (inside a bridge greenlet `_http_async.py` carries them
on the event loop, with this module's request bytes and answer reader). urllib3 and
http.client cost about 45% of a lean GetItem's client CPU (their header parsing goes
through the `email` package); this exchange writes the request line, the headers and the
body in one `sendall` and parses the answer with plain bytes operations.

What it speaks: HTTP/1.1 to one endpoint (scheme, host, port), plain or TLS (`ssl`, the CA
bundle botocore would use: the client's `verify`, `$AWS_CA_BUNDLE`, certifi; SNI and
hostname checking on); answers framed by Content-Length, by `Transfer-Encoding: chunked`
(trailers read and dropped) or by the end of the connection; 1xx interim answers skipped;
`Connection: close` and HTTP/1.0 answers close the socket after the body. It asks for no
compression (`Accept-Encoding: identity`) and decodes gzip / deflate if a server sends them
anyway, as urllib3 does. What it does not speak (a proxy for the endpoint: client config
`proxies` or `$HTTPS_PROXY` / `$HTTP_PROXY` not excluded by `$NO_PROXY`; a client
certificate; an HTTP session that is not botocore's own) makes `for_session()` return None,
once, when the transport is built: that transport sends through the botocore HTTP session
instead (its proxies, client certificate and TLS settings, as the boto3 client's).

The pool: up to `pool_size` idle connections, last used first; a connection belongs to one
thread from checkout to checkin and no lock is held during I/O. An idle socket that is
readable (the server closed it, or sent something unasked) is discarded before reuse, as
urllib3 does. A connection goes back only after a complete answer that allows keep-alive
with nothing left over; beyond `pool_size` idle ones it is closed (urllib3's block=False).

Errors are the botocore exceptions the urllib3 exchange is mapped to, so the transport's
retries and the exactly-once write tokens see no difference: EndpointConnectionError /
ConnectTimeoutError / SSLError while connecting (nothing was sent), ReadTimeoutError when a
read (or a send) times out, ConnectionClosedError when the answer ends before it is
complete, is malformed, or the socket fails after the request was (possibly) sent.

Retries: one, and only one, case is retried here, silently: the `sendall` of a request on a
*reused* idle socket raised before it returned. The request was then not wholly handed to
the kernel, so the server holds at most a prefix of it, shorter than its Content-Length,
which no HTTP server acts on; it is sent again once, on a new connection. A `sendall` that
returned proves nothing either way (the server may close right after reading it), so any
failure after it is surfaced to the transport's retry loop, which knows the exactly-once
rules. (urllib3 under botocore retries nothing itself; this one case is what http.client's
and requests' authors call safe.)
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import threading
import weakref
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.httpsession import URLLib3Session, get_cert_path
from urllib3.exceptions import ConnectTimeoutError as Urllib3ConnectTimeout, NewConnectionError

__all__ = ["Exchange", "HandshakeError", "WireError", "for_client", "for_session", "never_sent"]

#: Longest status or header line, and most header lines, accepted (http.client's limits).
_MAX_LINE = 65536
_MAX_HEADERS = 100
_RECV = 65536
_MAX_RECV = 1 << 20
_SKIPPED = frozenset({"host", "content-length", "accept-encoding", "connection"})


class WireError(Exception):
    """The answer could not be read: it ended early, or is not HTTP/1.x as this reads it."""


class HandshakeError(SSLError):
    """botocore's SSLError, raised by dynorm's exchange for a TLS handshake that failed."""


#: Wrapped errors that mean the connection was never made.
_NOT_CONNECTED = (NewConnectionError, Urllib3ConnectTimeout, ssl.SSLCertVerificationError)


def never_sent(error: BaseException | None) -> bool:
    """Whether a failed attempt's error proves its request never left (no connection made).

    True where nothing listened or resolved, the connect timed out, the TLS handshake failed
    (dynorm's exchange tells; botocore's session only for a refused certificate), or the
    proxy was not reached. Not otherwise: urllib3 raises SSLError for any TLS error, one
    after the request went out too, and ProxyError also when the proxy hangs up after the
    request reached it.
    """
    if isinstance(error, (EndpointConnectionError, ConnectTimeoutError, HandshakeError)):
        return True
    if isinstance(error, (ProxyConnectionError, SSLError)):
        return any(isinstance(inner, _NOT_CONNECTED) for inner in _wrapped(error))
    return False


def _wrapped(error: BaseException) -> list[BaseException]:
    """The errors `error` wraps, named explicitly.

    That is botocore's `error=`, urllib3's arguments and `original_error`, and
    `raise ... from`; never the implicit context.
    """
    found: list[BaseException] = []
    todo: list[Any] = [error]
    while todo and len(found) < 16:
        current = todo.pop()
        if not isinstance(current, BaseException) or any(current is f for f in found):
            continue
        found.append(current)
        kwargs = getattr(current, "kwargs", None)
        if isinstance(kwargs, dict):
            todo.append(kwargs.get("error"))
        todo.extend((getattr(current, "original_error", None), current.__cause__, *current.args))
    return found[1:]


def for_client(
    client: Any, url: str, *, pool_size: int, connect_timeout: float, read_timeout: float
) -> Exchange | None:
    """The exchange for a boto3 client's endpoint, or None if its HTTP session must carry it."""
    return for_session(
        getattr(getattr(client, "_endpoint", None), "http_session", None),
        url,
        pool_size=pool_size,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )


def for_session(
    found: Any, url: str, *, pool_size: int, connect_timeout: float, read_timeout: float
) -> Exchange | None:
    """The exchange for a botocore HTTP session's endpoint, or None if the session must carry it.

    None when the session is not botocore's own `URLLib3Session`, uses a proxy for `url`, a
    client certificate, or `url` is not plain http(s).
    """
    if type(found) is not URLLib3Session:
        return None
    session: Any = found
    try:
        proxy = session._proxy_config.proxy_url_for(url)
        verify = session._verify
        client_cert = session._cert_file
        options = list(session._socket_options or [])
    except AttributeError:  # a botocore whose session this does not know
        return None
    if proxy or client_cert or urlsplit(url).scheme not in ("http", "https"):
        return None
    return Exchange(
        url,
        pool_size=pool_size,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        verify=verify,
        socket_options=options,
    )


def _tls_context(verify: Any) -> ssl.SSLContext:
    """The TLS context botocore would use: `verify` False, True (its CA bundle) or a path."""
    context = ssl.create_default_context(cafile=get_cert_path(verify) if verify else None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _Conn:
    """One socket and the bytes read from it that are not yet used (`buf[pos:]`)."""

    __slots__ = ("buf", "pos", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.pos = 0

    def _recv(self, size: int = _RECV) -> bytes:
        data = self.sock.recv(size)
        if not data:
            raise WireError("the connection closed before the answer was complete")
        return data

    def line(self) -> bytes:
        """The next line, without its CRLF (or bare LF)."""
        while True:
            end = self.buf.find(b"\n", self.pos)
            if end >= 0:
                line = self.buf[self.pos : end]
                self.pos = end + 1
                return line[:-1] if line.endswith(b"\r") else line
            if len(self.buf) - self.pos > _MAX_LINE:
                raise WireError("a status or header line is too long")
            self.buf = self.buf[self.pos :] + self._recv()
            self.pos = 0

    def exactly(self, size: int) -> bytes:
        """The next `size` bytes (a body is gathered in parts: no quadratic copying)."""
        start = self.pos
        have = len(self.buf) - start
        if have >= size:
            self.pos = start + size
            return self.buf[start : self.pos]
        parts = [self.buf[start:]]
        while have < size:
            data = self._recv(min(max(size - have, _RECV), _MAX_RECV))
            parts.append(data)
            have += len(data)
        joined = b"".join(parts)
        self.buf, self.pos = joined, size
        return joined[:size]

    def rest(self) -> bytes:
        """Everything until the server closes the connection."""
        parts = [self.buf[self.pos :]]
        while data := self.sock.recv(_RECV):
            parts.append(data)
        self.buf, self.pos = b"", 0
        return b"".join(parts)

    def leftover(self) -> bool:
        """Whether bytes past the answer were read (then the socket is not reused)."""
        return self.pos < len(self.buf)


def _headers(conn: _Conn) -> dict[str, str]:
    """Header lines up to the blank one; repeated names joined with ", " (as urllib3)."""
    got: dict[str, str] = {}
    lower: dict[str, str] = {}  # lower-case name -> the name as first received
    last = ""
    for _ in range(_MAX_HEADERS + 1):
        line = conn.line()
        if not line:
            return got
        if line[0] in b" \t":  # obs-fold: the previous header's value goes on
            if not last:
                raise WireError("a header continuation line comes first")
            more = line.strip().decode("latin-1")
            got[last] = f"{got[last]} {more}" if got[last] else more
            continue
        name, colon, value = line.partition(b":")
        key = name.decode("latin-1")
        if not colon or not key or key != key.strip():
            raise WireError("a header line is not `name: value`")
        text = value.strip().decode("latin-1")
        folded = key.lower()
        seen = lower.get(folded)
        if seen is None:
            lower[folded] = last = key
            got[key] = text
        else:
            last = seen
            got[seen] = f"{got[seen]}, {text}"
    raise WireError("too many header lines")


def _chunked(conn: _Conn) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = conn.line().split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise WireError("a chunk size is not hexadecimal") from None
        if size < 0 or not size_line.isalnum():
            raise WireError("a chunk size is not hexadecimal")
        if size == 0:
            _headers(conn)  # the trailers: read, dropped
            return b"".join(parts)
        parts.append(conn.exactly(size))
        if conn.exactly(2) != b"\r\n":
            raise WireError("a chunk does not end in CRLF")


def read_answer(conn: _Conn) -> tuple[int, dict[str, str], bytes, bool]:
    """Read one answer: (status, headers, body, whether the connection may be reused).

    Raises:
        WireError: The answer ended early or is malformed.
        OSError: The socket failed (`TimeoutError` on a read timeout).
    """
    while True:
        version, _, rest = conn.line().partition(b" ")
        code = rest[:3]
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
            raise WireError("the status line is not HTTP/1.x")
        if rest[3:4] not in (b"", b" "):
            raise WireError("the status line is not HTTP/1.x")
        status = int(code)
        headers = _headers(conn)
        if status < 100:
            raise WireError("the status code is not HTTP's")
        if status >= 200:
            break
        if status == 101:
            raise WireError("the server switched protocols")
    fields = {k.lower(): v for k, v in headers.items()}
    tokens = {t.strip().lower() for t in fields.get("connection", "").split(",")}
    keep = version == b"HTTP/1.1" and "close" not in tokens
    coding = fields.get("transfer-encoding")
    if status in (204, 304):
        body = b""
    elif coding is not None:
        if coding.strip().lower() != "chunked":
            raise WireError("a transfer coding other than chunked")
        body = _chunked(conn)
    elif (length := fields.get("content-length")) is not None:
        sizes = {v.strip() for v in length.split(",")}
        size = sizes.pop() if len(sizes) == 1 else ""
        if not size.isdigit():
            raise WireError("the Content-Length is not one number")
        body = conn.exactly(int(size))
    else:
        body, keep = conn.rest(), False
    encoding = fields.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        try:
            body = zlib.decompress(body, 47 if encoding != "deflate" else 15)
        except zlib.error as exc:
            raise WireError(f"the {encoding} body does not decode") from exc
    if conn.leftover():
        keep = False
    conn.buf, conn.pos = b"", 0
    return status, headers, body, keep


def _dropped(sock: socket.socket) -> bool:
    """Whether an idle socket is readable now: closed by the server (or sent unasked)."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


class Exchange:
    """POST signed bodies to one endpoint over a pool of keep-alive sockets. Thread-safe."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int,
        connect_timeout: float,
        read_timeout: float,
        verify: Any = True,
        socket_options: list[tuple[int, int, Any]] | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.url = url
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        default = 443 if self.scheme == "https" else 80
        self.port = parts.port or default
        self.pool_size = pool_size
        self.timeouts = (connect_timeout, read_timeout)
        self.socket_options = socket_options or [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        self._verify = verify
        self._tls: ssl.SSLContext | None = None  # made at the first https connection
        host = f"[{self.host}]" if ":" in self.host else self.host
        authority = host if self.port == default else f"{host}:{self.port}"
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        #: The request line and Host, as urllib3 sends them (SigV4 signed this Host).
        self._head = f"POST {path} HTTP/1.1\r\nHost: {authority}\r\n"
        self._idle: list[_Conn] = []  # changed in place only: the finalizer holds it
        self._lock = threading.Lock()
        self._pid = os.getpid()
        weakref.finalize(self, _close_all, self._idle)

    # ------------------------------------------------------------------ the pool

    def idle(self) -> int:
        """How many connections wait in the pool."""
        return len(self._idle)

    def _checkout(self) -> _Conn | None:
        """An idle connection that still looks open, or None."""
        while True:
            with self._lock:
                if self._pid != os.getpid():  # a forked child never uses its parent's sockets
                    _close_all(self._idle)  # (its copies: the parent's stay open)
                    self._pid = os.getpid()
                if not self._idle:
                    return None
                conn = self._idle.pop()
            if not _dropped(conn.sock):
                return conn
            conn.sock.close()

    def _checkin(self, conn: _Conn) -> None:
        with self._lock:
            if len(self._idle) < self.pool_size and self._pid == os.getpid():
                self._idle.append(conn)
                return
        conn.sock.close()

    def tls_context(self) -> ssl.SSLContext:
        """The TLS context, made at the first https connection (not at start).

        Loading a CA bundle takes milliseconds.
        """
        tls = self._tls
        if tls is None:
            tls = self._tls = _tls_context(self._verify)
        return tls

    def _connect(self) -> _Conn:
        """A new connection (TLS for https).

        Raises:
            EndpointConnectionError, ConnectTimeoutError, SSLError: Nothing was sent.
        """
        connect_timeout, read_timeout = self.timeouts
        try:
            sock = socket.create_connection((self.host, self.port), timeout=connect_timeout)
        except OSError as exc:
            raise self.not_connected(exc) from exc
        try:
            for level, option, value in self.socket_options:
                sock.setsockopt(level, option, value)
            if self.scheme == "https":
                sock = self.tls_context().wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(read_timeout)
        except BaseException as exc:
            sock.close()
            raise self.not_connected(exc) from exc
        return _Conn(sock)

    # ------------------------------------------------------------------ one exchange

    def request_bytes(self, body: bytes, headers: Mapping[str, str]) -> bytes:
        """The request as sent: request line, Host, Content-Length, `headers`, body."""
        lines = [self._head, f"Content-Length: {len(body)}\r\nAccept-Encoding: identity\r\n"]
        for name, value in headers.items():
            if name.lower() in _SKIPPED:
                continue
            if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
                raise ValueError(f"a header that would break the request: {name!r}")
            lines.append(f"{name}: {value}\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1") + body

    def post(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Send one request and read its answer: (status, headers, body).

        Raises:
            EndpointConnectionError, ConnectTimeoutError, SSLError: No connection was made;
                nothing was sent.
            ReadTimeoutError: Sent (perhaps), and no answer came in time.
            ConnectionClosedError: Sent (perhaps), and no whole answer came.
        """
        data = self.request_bytes(body, headers)
        conn = self._checkout()
        if conn is not None:
            try:
                conn.sock.sendall(data)
            except OSError:  # not wholly sent: safe to send again, once, on a new socket
                conn.sock.close()
                conn = None
            else:
                return self._answer(conn)
        conn = self._connect()
        try:
            conn.sock.sendall(data)
        except BaseException as exc:
            conn.sock.close()
            raise self.lost(exc) from exc
        return self._answer(conn)

    def _answer(self, conn: _Conn) -> tuple[int, dict[str, str], bytes]:
        try:
            status, headers, body, keep = read_answer(conn)
        except BaseException as exc:
            conn.sock.close()
            raise self.lost(exc) from exc
        if keep:
            self._checkin(conn)
        else:
            conn.sock.close()
        return status, headers, body

    def not_connected(self, exc: BaseException) -> BaseException:
        """The botocore error for a connection that was not made (nothing was sent)."""
        if isinstance(exc, TimeoutError):
            return ConnectTimeoutError(endpoint_url=self.url, error=exc)
        if isinstance(exc, (ssl.SSLError, ssl.CertificateError, FileNotFoundError)):
            return HandshakeError(endpoint_url=self.url, error=exc)  # a missing CA bundle too
        if isinstance(exc, OSError):
            return EndpointConnectionError(endpoint_url=self.url, error=exc)
        raise exc  # anything else (KeyboardInterrupt, a bug) as it is

    def lost(self, exc: BaseException) -> BaseException:
        """The botocore error for a failure after the request was (perhaps) sent."""
        if isinstance(exc, TimeoutError):
            return ReadTimeoutError(endpoint_url=self.url, error=exc)
        if isinstance(exc, (OSError, WireError)):
            return ConnectionClosedError(endpoint_url=self.url, error=exc)
        raise exc  # anything else (KeyboardInterrupt, a bug) as it is

    def close(self) -> None:
        """Close every idle connection (one in use closes when its answer is read)."""
        with self._lock:
            _close_all(self._idle)


def _close_all(idle: list[_Conn]) -> None:
    """Close and forget the idle connections (also when the exchange is collected)."""
    while idle:
        idle.pop().sock.close()
