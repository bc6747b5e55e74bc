"""The lean transport's HTTP exchange on the event loop: asyncio's own transports.

`HttpTransport.call` (dynorm/_http.py) builds, signs, checks and retries a request the same
way on both paths; inside a bridge greenlet (dynorm/_bridge.py) only the exchange itself,
`post()`, is awaited here instead of going through the sync exchange of `_wire.py`. It
speaks what that one speaks, with the same code: the request bytes are `Exchange.
request_bytes()` and an answer is read by `_wire.read_answer()`, run over the bytes
received so far and run again when more arrive (a `_Short` read says how many it needs).
So both paths return the same (status, headers, body) for the same bytes, and the same
botocore errors (retries, the attempt counter and dynorm's exceptions do not change):
EndpointConnectionError / ConnectTimeoutError / SSLError while connecting (nothing was
sent), ReadTimeoutError when no byte came for `read_timeout`, ConnectionClosedError when
the answer ended early or is malformed. Nothing is sent again here.

Each event loop has its own pool: at most `pool_size` connections open at once (a request
beyond them waits for one to come back, as aiohttp's connector limit does), the idle ones
reused last-in first-out; a connection the server closed, or that received bytes nobody
asked for, is never reused. A pool is closed when its loop shuts down (`asyncio.run()`
and anyio close the loop's async generators first: a guard generator closes the pool
then), or by `close()`.

Measured against aiohttp carrying the same signed bytes to DynamoDB Local, 32 in flight:
65-80 µs of client CPU per request against aiohttp's 110-175 µs
(benchmarks/async_exchange.py).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Mapping
from typing import Any, cast

from botocore.exceptions import ConnectTimeoutError

from ._wire import Exchange, WireError, _Conn, read_answer

__all__ = ["AsyncExchange"]

_Answer = tuple[int, dict[str, str], bytes, bool]


class _Short(Exception):
    """The bytes received so far end before the answer does: `need` bytes are needed."""

    def __init__(self, need: int) -> None:
        super().__init__(need)
        self.need = need


class _Received(_Conn):
    """The bytes of one answer received so far, read by `read_answer` as a socket's."""

    __slots__ = ("ended",)

    def __init__(self, data: bytes, ended: bool) -> None:
        super().__init__(cast(Any, None))
        self.buf = data
        self.ended = ended  # the server closed the connection: nothing more will come

    def _recv(self, size: int = 0) -> bytes:
        if self.ended:
            raise WireError("the connection closed before the answer was complete")
        raise _Short(len(self.buf) + 1)

    def exactly(self, size: int) -> bytes:
        if len(self.buf) - self.pos < size and not self.ended:
            raise _Short(self.pos + size)
        return super().exactly(size)

    def rest(self) -> bytes:
        if not self.ended:
            raise _Short(len(self.buf) + 1)
        rest = self.buf[self.pos :]
        self.buf, self.pos = b"", 0
        return rest


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer as a future."""

    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout: float) -> None:
        self.loop = loop
        self.read_timeout = read_timeout
        self.transport: Any = None
        self.buf = bytearray()
        self.need = 0
        self.ended = False
        self.closed = False  # never reused: the server closed it, or sent unasked bytes
        self.waiter: asyncio.Future[_Answer] | None = None
        self.last = 0.0  # when the last byte of the current answer came
        self.timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None or self.waiter.done():  # bytes nobody asked for
            self.close()
            return
        self.last = self.loop.time()
        if len(self.buf) >= self.need:
            self._read()

    def eof_received(self) -> bool:
        self.ended = self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self._read()
        return False  # asyncio closes the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self._read()
        self._stop_timer()

    # ------------------------------------------------------------------ one exchange

    async def exchange(self, data: bytes) -> _Answer:
        """Send `data` and return (status, headers, body, whether to keep the connection).

        Raises:
            WireError: The answer ended early or is malformed.
            TimeoutError: No byte came for `read_timeout`.
        """
        self.buf.clear()
        self.need = 0
        waiter: asyncio.Future[_Answer] = self.loop.create_future()
        self.waiter = waiter
        self.transport.write(data)
        self.last = self.loop.time()
        self.timer = self.loop.call_at(self.last + self.read_timeout, self._check_time)
        try:
            return await waiter
        finally:
            self._stop_timer()
            self.waiter = None

    def _read(self) -> None:
        waiter = self.waiter
        assert waiter is not None
        try:
            answer: _Answer = read_answer(_Received(bytes(self.buf), self.ended))
        except _Short as short:
            self.need = short.need
            return
        except WireError as exc:
            waiter.set_exception(exc)
            return
        self.buf.clear()
        waiter.set_result(answer)

    def _check_time(self) -> None:
        self.timer = None
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        due = self.last + self.read_timeout
        if self.loop.time() < due:  # bytes came meanwhile: wait from the last of them
            self.timer = self.loop.call_at(due, self._check_time)
            return
        waiter.set_exception(TimeoutError("no answer within the read timeout"))
        self.close()

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def close(self) -> None:
        """Close now, by an abort (safe on a closed transport).

        A TLS connection's close() would wait for the server's close_notify, which a loop
        that is shutting down never gets to read: its socket would be left open.
        """
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def abandon(self) -> None:
        """Close from outside its (closed) loop: shut the socket down, GC frees it."""
        self.closed = True
        sock = None if self.transport is None else self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.shutdown(2)  # socket.SHUT_RDWR
            except OSError:
                pass


class _Pool:
    """One loop's connections: at most `size` open, idle ones last-in first-out."""

    def __init__(self, wire: Exchange, loop: asyncio.AbstractEventLoop) -> None:
        self.wire = wire
        self.loop = loop
        self.size = wire.pool_size
        self.idle: list[_Connection] = []
        self.every: set[_Connection] = set()  # open or idle: closed with the pool
        self.waiters: deque[asyncio.Future[_Connection | None]] = deque()

    async def checkout(self) -> _Connection:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                return conn
            self._forget(conn)
        if len(self.every) >= self.size:
            waiter: asyncio.Future[_Connection | None] = self.loop.create_future()
            self.waiters.append(waiter)
            try:
                handed = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    got = waiter.result()
                    if got is not None:
                        self.checkin(got)  # handed over as this waiter gave up: pass it on
                    else:
                        self._wake()
                raise
            if handed is not None:
                return handed
        return await self._connect()

    def checkin(self, conn: _Connection) -> None:
        if conn.closed:
            self.discard(conn)
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.idle.append(conn)

    def discard(self, conn: _Connection) -> None:
        conn.close()
        self._forget(conn)

    def _forget(self, conn: _Connection) -> None:
        if conn in self.every:
            self.every.discard(conn)
            self._wake()

    def _wake(self) -> None:
        """A connection slot is free: the first waiter connects anew."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(self) -> _Connection:
        wire = self.wire
        connect_timeout, read_timeout = wire.timeouts
        conn = _Connection(self.loop, read_timeout)
        self.every.add(conn)
        try:
            tls = wire.tls_context() if wire.scheme == "https" else None
            await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: conn,
                    wire.host,
                    wire.port,
                    ssl=tls,
                    server_hostname=wire.host if tls is not None else None,
                ),
                connect_timeout,
            )
            sock = conn.transport.get_extra_info("socket")
            for level, option, value in wire.socket_options:
                sock.setsockopt(level, option, value)
        except BaseException as exc:
            self.discard(conn)
            if isinstance(exc, asyncio.TimeoutError):  # Python 3.10: not a TimeoutError
                raise ConnectTimeoutError(endpoint_url=wire.url, error=exc) from exc
            raise wire.not_connected(exc) from exc
        return conn

    def close(self) -> None:
        """Close every connection (on the pool's loop's thread)."""
        for conn in list(self.every):
            conn.close()
        self.every.clear()
        self.idle.clear()

    def abandon(self) -> None:
        """Close every connection of a loop that is closed."""
        for conn in list(self.every):
            conn.abandon()
        self.every.clear()
        self.idle.clear()


async def _close_at_shutdown(pool: _Pool) -> AsyncGenerator[None, None]:
    """A guard generator: the loop closes it at shutdown, which closes the pool."""
    try:
        yield
    finally:
        pool.close()


class AsyncExchange:
    """POST signed bodies to the endpoint of a sync `Exchange`, from any event loop."""

    def __init__(self, wire: Exchange) -> None:
        self._wire = wire
        #: loop -> its pool, and the guard generator that closes it at the loop's shutdown
        #: (held here, not by the pool: no cycle, so a dropped exchange closes its pools at
        #: once through the loop's finalizer hook, not whenever a GC pass finds the cycle)
        self._pools: dict[asyncio.AbstractEventLoop, tuple[_Pool, Any]] = {}

    def _pool(self) -> _Pool:
        loop = asyncio.get_running_loop()
        got = self._pools.get(loop)
        if got is not None:
            return got[0]
        for old in [lp for lp in self._pools if lp.is_closed()]:
            self._pools.pop(old)[0].abandon()
        pool = _Pool(self._wire, loop)
        guard = _close_at_shutdown(pool)
        try:  # run to its yield: the loop's asyncgen hooks now know it, and close it at shutdown
            guard.__anext__().send(None)
        except StopIteration:
            pass
        self._pools[loop] = (pool, guard)
        return pool

    async def post(
        self, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request; return (status, headers, body), or raise a botocore error.

        Raises:
            EndpointConnectionError: Nothing answered (nothing was sent).
            ConnectTimeoutError, SSLError: The connection was not made (nothing was sent).
            ReadTimeoutError, ConnectionClosedError: Sent, and no (whole) answer came.
        """
        data = self._wire.request_bytes(body, headers)
        pool = self._pool()
        conn = await pool.checkout()
        try:
            status, got, answer, keep = await conn.exchange(data)
        except BaseException as exc:
            pool.discard(conn)
            raise self._wire.lost(exc) from exc
        if keep:
            pool.checkin(conn)
        else:
            pool.discard(conn)
        return status, got, answer

    def close(self) -> None:
        """Close every loop's pool (from any thread; a closed loop's sockets at once)."""
        for loop in list(self._pools):
            pool, _ = self._pools.pop(loop)
            if loop.is_closed():
                pool.abandon()
                continue
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                pool.close()
            else:
                try:
                    loop.call_soon_threadsafe(pool.close)
                except RuntimeError:  # closed meanwhile
                    pool.abandon()
