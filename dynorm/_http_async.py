"""The lean transport's HTTP exchange on the event loop: aiohttp, one pool per loop.

`HttpTransport.call` (dynorm/_http.py) builds, signs, checks and retries a request the same
way on both paths; inside a bridge greenlet (dynorm/_bridge.py) only the exchange itself,
`post()`, is awaited here instead of going through urllib3. Errors come back as the
botocore exceptions the urllib3 exchange maps its own to, so retries, the attempt counter
and dynorm's exceptions do not change.

Each event loop gets its own `aiohttp.ClientSession` (a session belongs to one loop) with a
pool of `max_pool_connections` keep-alive connections. It is closed when the loop shuts
down (`asyncio.run()` and anyio close the loop's async generators first: a guard generator
closes the session then), or by `close()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import aiohttp
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    SSLError,
)

__all__ = ["AsyncExchange"]


async def _close_at_shutdown(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    """A guard generator: the loop closes it at shutdown, which closes the session."""
    try:
        yield
    finally:
        await session.close()


def _close_soon(loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession) -> None:
    loop.create_task(session.close())


class AsyncExchange:
    """POST a signed body to an endpoint from the event loop, over a pooled session."""

    def __init__(self, *, pool_size: int, connect_timeout: float, read_timeout: float) -> None:
        self._pool_size = pool_size
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        #: loop -> (its session, the guard generator that closes it at the loop's shutdown)
        self._sessions: dict[asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, Any]] = {}

    async def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        got = self._sessions.get(loop)
        if got is not None and not got[0].closed:
            return got[0]
        for old in [lp for lp in self._sessions if lp.is_closed()]:
            self._forget(old)
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0),
            timeout=self._timeout,
            auto_decompress=False,  # DynamoDB's CRC32 is of the body as sent
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )
        guard = _close_at_shutdown(session)
        await guard.__anext__()  # now the loop knows it, and closes it at shutdown
        self._sessions[loop] = (session, guard)
        return session

    def _forget(self, loop: asyncio.AbstractEventLoop) -> None:
        session, _ = self._sessions.pop(loop)
        connector = session.connector
        if connector is not None and not connector.closed:
            try:
                connector._close()  # the loop is gone: close the sockets without it
            except RuntimeError:  # its transports cannot reach the closed loop: GC closes them
                pass

    async def post(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request; return (status, headers, body), or raise a botocore error.

        Raises:
            EndpointConnectionError: Nothing answered (nothing was sent).
            ConnectTimeoutError, SSLError: The connection was not made (nothing was sent).
            ReadTimeoutError, ConnectionClosedError: Sent, and no (whole) answer came.
        """
        session = await self._session()
        try:
            async with session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as answer:
                data = await answer.read()
                return answer.status, dict(answer.headers), data
        except aiohttp.ConnectionTimeoutError as exc:
            raise ConnectTimeoutError(endpoint_url=url, error=exc) from exc
        except (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch) as exc:
            raise SSLError(endpoint_url=url, error=exc) from exc
        except aiohttp.ClientConnectorError as exc:
            raise EndpointConnectionError(endpoint_url=url, error=exc) from exc
        except (aiohttp.ServerTimeoutError, asyncio.TimeoutError) as exc:
            raise ReadTimeoutError(endpoint_url=url, error=exc) from exc
        except aiohttp.ClientError as exc:
            raise ConnectionClosedError(endpoint_url=url, error=exc) from exc

    def close(self) -> None:
        """Close every loop's session (from any thread; a closed loop's sockets at once)."""
        for loop in list(self._sessions):
            if loop.is_closed():
                self._forget(loop)
                continue
            session, _ = self._sessions.pop(loop)
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                loop.create_task(session.close())
            else:
                loop.call_soon_threadsafe(_close_soon, loop, session)
