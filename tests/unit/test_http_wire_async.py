"""The event loop's HTTP exchange (dynorm/_http_async.py) against raw-socket servers.

Invariants: however an answer's bytes arrive (any segmentation), the loop's connection
returns exactly what the sync reader returns for them (the same status, headers, body and
keep-alive verdict); an answer cut anywhere is an error, never a partial body; N tasks
sharing a pool each get the answer to their own request, over at most `pool_size`
connections, none sent twice, and tasks cancelled while waiting for a connection lose none
of them; an idle connection the server closed is never reused; a silent server is a read
timeout; TLS checks the certificate; the loop's end closes every connection.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
    SSLError,
)
from hypothesis import given, settings, strategies as st

from dynorm._http_async import AsyncExchange, _Connection
from dynorm._wire import WireError
from tests.unit.test_http_wire import (
    _echo,
    _read,
    _segments,
    answers,
    certificate,
    exchange,
    serving,
)

__all__ = ["certificate"]  # the module-scoped fixture, shared with the sync exchange's tests


class _Transport:
    """What `_Connection` writes to and closes, without a socket."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abort(self) -> None:
        self.closed = True

    def get_extra_info(self, _: str) -> None:
        return None


def _fed(segments: list[bytes], *, end: bool) -> tuple[Any, bool]:
    """Feed `segments` to a connection (then the server's close, if `end`).

    Returns (the answer or the exception it ended in, whether the transport was closed).
    """

    async def main() -> tuple[Any, bool]:
        conn = _Connection(asyncio.get_running_loop(), read_timeout=5.0)
        transport = _Transport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        answer = asyncio.ensure_future(conn.exchange(b"request"))
        await asyncio.sleep(0)  # sent
        for segment in segments:
            conn.data_received(segment)
        if end:
            conn.connection_lost(None)
        await asyncio.sleep(0)
        if not answer.done():
            answer.cancel()
            return "waiting", transport.closed
        try:
            return answer.result(), transport.closed
        except WireError as exc:
            return exc, transport.closed

    return asyncio.run(main())


@settings(max_examples=60, deadline=None)
@given(answer=answers(), cuts=st.lists(st.integers(0, 10**6), max_size=12))
def test_the_loop_reads_what_the_sync_reader_reads_however_the_bytes_arrive(
    answer: tuple[bytes, int, dict[str, str], bytes], cuts: list[int]
) -> None:
    data, status, headers, body = answer
    got, _ = _fed(_segments(data, cuts), end=False)
    assert got == _read([data]) == (status, headers, body, True)


@settings(max_examples=60, deadline=None)
@given(
    answer=answers(), cut=st.integers(0, 10**6), cuts=st.lists(st.integers(0, 10**6), max_size=12)
)
def test_an_answer_cut_anywhere_waits_then_is_an_error_when_the_server_closes(
    answer: tuple[bytes, int, dict[str, str], bytes], cut: int, cuts: list[int]
) -> None:
    prefix = answer[0][: cut % len(answer[0])]
    assert _fed(_segments(prefix, cuts), end=False)[0] == "waiting"  # never a partial body
    assert isinstance(_fed(_segments(prefix, cuts), end=True)[0], WireError)


def test_an_answer_framed_by_the_close_is_read_to_the_end() -> None:
    got, _ = _fed([b"HTTP/1.1 200 OK\r\n\r\nall", b" of it"], end=True)
    assert got[2:] == (b"all of it", False)


def test_bytes_nobody_asked_for_close_an_idle_connection() -> None:
    async def main() -> tuple[bool, bool]:
        conn = _Connection(asyncio.get_running_loop(), read_timeout=5.0)
        transport = _Transport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        conn.data_received(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
        return conn.closed, transport.closed

    assert asyncio.run(main()) == (True, True)


# ----------------------------------------------------------------------------- real sockets


def _loop_exchange(url: str, **kw: Any) -> AsyncExchange:
    return AsyncExchange(exchange(url, **kw))


def _wait_until(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + 5
    while not check() and time.monotonic() < deadline:
        time.sleep(0.01)
    return check()


def test_tasks_sharing_a_pool_get_their_own_answers_over_at_most_pool_size_sockets() -> None:
    tasks, pool_size = 60, 4
    with serving(_echo) as server:
        loop_wire = _loop_exchange(server.url, pool_size=pool_size)
        most_open = 0

        async def one(i: int) -> bool:
            nonlocal most_open
            body = f'{{"id":{i}}}'.encode()
            status, headers, got = await loop_wire.post(body, {"X-Id": str(i)})
            most_open = max(most_open, server.open)
            return (status, headers["X-Id"], got) == (200, str(i), body)

        async def main() -> list[bool]:
            first = await asyncio.gather(*(one(i) for i in range(tasks)))
            second = await asyncio.gather(*(one(i) for i in range(tasks)))
            return first + second

        assert all(asyncio.run(main()))
        assert len(server.requests) == 2 * tasks  # none sent twice, none lost
        assert server.connections <= pool_size and most_open <= pool_size
        assert _wait_until(lambda: server.open == 0)  # the loop's end closed them


def test_tasks_cancelled_while_waiting_for_a_connection_lose_none() -> None:
    pool_size = 2

    def slow_echo(head: bytes, body: bytes) -> tuple[list[bytes], bool]:
        time.sleep(0.02)
        return _echo(head, body)

    with serving(slow_echo) as server:
        loop_wire = _loop_exchange(server.url, pool_size=pool_size)

        async def one(i: int) -> str:
            return (await loop_wire.post(b"{}", {"X-Id": str(i)}))[1]["X-Id"]

        async def main() -> list[str]:
            waiting = [asyncio.ensure_future(one(i)) for i in range(12)]
            await asyncio.sleep(0.01)  # two are on the wire, ten wait for a connection
            for task in waiting[2:]:
                task.cancel()
            done = await asyncio.gather(*waiting, return_exceptions=True)
            assert [d for d in done if not isinstance(d, asyncio.CancelledError)] == ["0", "1"]
            pool = next(iter(loop_wire._pools.values()))[0]
            assert len(pool.every) <= pool_size
            return await asyncio.gather(*(one(i) for i in range(100, 110)))

        assert asyncio.run(main()) == [str(i) for i in range(100, 110)]
        assert server.connections <= pool_size


def test_an_idle_connection_the_server_closed_is_never_reused() -> None:
    def answer_then_close(head: bytes, body: bytes) -> tuple[list[bytes], bool]:
        return _echo(head, body)[0], True  # no Connection: close, as an idle timeout does

    with serving(answer_then_close) as server:
        loop_wire = _loop_exchange(server.url)

        async def main() -> list[str]:
            got = []
            for i in range(5):
                server.closed.clear()
                got.append((await loop_wire.post(b"{}", {"X-Id": str(i)}))[1]["X-Id"])
                deadline = time.monotonic() + 30
                while not server.closed.is_set():
                    assert time.monotonic() < deadline, "the server never closed it"
                    await asyncio.sleep(0.005)
                await asyncio.sleep(0.02)  # the FIN reaches the client
            return got

        assert asyncio.run(main()) == ["0", "1", "2", "3", "4"]
        assert len(server.requests) == 5 == server.connections


def test_a_server_that_closes_mid_answer_is_a_connection_error_sent_once() -> None:
    with serving(lambda *_: ([b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\npart"], True)) as s:
        loop_wire = _loop_exchange(s.url)
        with pytest.raises(ConnectionClosedError):
            asyncio.run(loop_wire.post(b"{}", {}))
        assert len(s.requests) == 1


def test_no_answer_in_time_is_a_read_timeout_and_the_connection_is_closed() -> None:
    with serving(lambda *_: ([], False)) as server:
        loop_wire = _loop_exchange(server.url, read_timeout=0.2)
        with pytest.raises(ReadTimeoutError):
            asyncio.run(loop_wire.post(b"{}", {}))
        assert len(server.requests) == 1
        assert _wait_until(lambda: server.open == 0)


def test_a_slow_answer_that_keeps_coming_is_not_a_timeout() -> None:
    def trickle(head: bytes, body: bytes) -> tuple[list[bytes], bool]:
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n"], False

    with serving(trickle) as server:
        loop_wire = _loop_exchange(server.url, read_timeout=1.0)

        async def main() -> bytes:
            # The server sends the head; its body comes from here, a byte each 0.25 s: no
            # silence is as long as the read timeout, though the whole answer takes 1.5 s.
            task = asyncio.ensure_future(loop_wire.post(b"{}", {}))
            deadline = time.monotonic() + 30
            while True:  # until the head has come (the body's bytes must follow it)
                pools = list(loop_wire._pools.values())
                conns = list(pools[0][0].every) if pools else []
                if conns and b"\r\n\r\n" in conns[0].buf:
                    break
                assert time.monotonic() < deadline and not task.done()
                await asyncio.sleep(0.005)
            for byte in b"slowly":
                await asyncio.sleep(0.25)
                conns[0].data_received(bytes([byte]))
            return (await task)[2]

        assert asyncio.run(main()) == b"slowly"


def test_nothing_listening_is_an_endpoint_connection_error() -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    with pytest.raises(EndpointConnectionError):
        asyncio.run(_loop_exchange(url).post(b"{}", {}))


def test_tls_checks_the_certificate_against_the_bundle_botocore_would_use(
    certificate: Path,
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate)

    def wrap(sock: Any) -> Any:
        return context.wrap_socket(sock, server_side=True)

    with serving(_echo, wrap=wrap) as server:
        url = f"https://127.0.0.1:{server.port}/"

        async def post(wire: AsyncExchange, rid: str) -> str:
            return (await wire.post(b"{}", {"X-Id": rid}))[1]["X-Id"]

        async def main() -> list[str]:
            with pytest.raises(SSLError):  # self-signed: not in certifi's bundle
                await post(_loop_exchange(url), "1")
            with pytest.raises(SSLError):  # a CA bundle that is not there
                await post(_loop_exchange(url, verify="/nonexistent/ca.pem"), "0")
            trusted = _loop_exchange(url, verify=str(certificate.with_suffix(".crt")))
            unchecked = _loop_exchange(url, verify=False)
            return [await post(trusted, "2"), await post(trusted, "3"), await post(unchecked, "4")]

        assert asyncio.run(main()) == ["2", "3", "4"]  # and no TLS socket is left open:
    assert _wait_until(lambda: server.open == 0)  # a close would wait for close_notify
    assert len(server.requests) == 3  # the refused handshakes sent nothing
    # The missing CA bundle fails before connecting; "3" went over the connection "2" opened.
    assert server.connections == 3


def test_close_from_another_thread_closes_a_running_loops_connections() -> None:
    import threading

    with serving(_echo) as server:
        loop_wire = _loop_exchange(server.url)

        async def main() -> None:
            await loop_wire.post(b"{}", {"X-Id": "1"})
            assert server.open == 1
            closer = threading.Thread(target=loop_wire.close)
            closer.start()
            while closer.is_alive():
                await asyncio.sleep(0.01)
            for _ in range(100):
                if server.open == 0:
                    return
                await asyncio.sleep(0.01)

        asyncio.run(main())
        assert server.open == 0
