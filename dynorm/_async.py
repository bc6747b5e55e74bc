"""The async API's executor: dynorm's one request path, driven on the loop or off it.

Every `a`-method runs the same code as its sync twin (the same compilers, codec, decoder,
key codec, exactly-once write tokens and exceptions), with the caller's contextvars
(`using()`, `transaction()`, `dynorm.actor()` blocks) copied in. Only where it waits
differs, and the event loop never blocks:

- on the lean transport (`transport="http"`, a client dynorm creates, the `async` extra
  installed) it runs in a greenlet on the loop's thread (dynorm/_bridge.py) and awaits the
  HTTP exchange on asyncio's transports (dynorm/_http_async.py), its backoff sleeps and the few
  botocore-client requests (on a worker thread);
- otherwise (the boto3 transport, a client of your own) on a worker thread of one bounded
  pool: botocore's HTTP layer blocks the thread it runs on.

The Async page says which is faster where, measured (benchmarks/async_run.py).

Cancellation: a call not started yet is dropped (nothing is sent); a call already sending
is let finish, so that when the cancelled task goes on, no request of its own is still in
flight and the objects it wrote hold the outcome (a write whose answer was lost is retried
exactly once by dynorm's write tokens, as on the sync path).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from importlib.util import find_spec
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from . import _bridge
from ._config import get_settings

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

# asyncio and concurrent.futures are imported where they are first needed (an `a`-method
# running, so the event loop has already imported asyncio): a sync program, a Lambda's cold
# start, never pays for them (tests/unit/test_import_graph.py's LAZY allow-list).

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def _threads() -> ThreadPoolExecutor:
    """The worker pool, sized by `configure(max_pool_connections=...)` when first used."""
    global _pool, _pool_size
    pool = _pool
    size = get_settings().max_pool_connections
    if pool is not None and _pool_size == size:
        return pool
    from concurrent.futures import ThreadPoolExecutor

    with _lock:
        if _pool is None or _pool_size != size:
            old, _pool = _pool, ThreadPoolExecutor(size, thread_name_prefix="dynorm-async")
            _pool_size = size
            if old is not None:
                old.shutdown(wait=False)  # its running calls finish; new ones go to the new pool
        return _pool


def on_loop() -> bool:
    """Whether `a`-methods run on the event loop (the greenlet bridge) or on worker threads.

    On the loop when the configured transport is `"http"` on a client dynorm creates and
    the `async` extra (greenlet) is installed: the lean transport's exchange is
    then awaited on the loop. A client of your own, or the boto3 transport, runs on the
    worker threads: every botocore request blocks a thread (see the Async page).
    """
    settings = get_settings()
    return settings.transport == "http" and settings.client is None and _bridge_installed()


def _bridge_installed() -> bool:
    global _installed
    if _installed is None:
        _installed = find_spec("greenlet") is not None
    return _installed


_installed: bool | None = None


async def run(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `fn(*args, **kwargs)` in a copy of this context: on the loop, or a worker thread."""
    if on_loop():
        return await _bridge.spawn(fn, *args, **kwargs)
    return await in_thread(fn, *args, **kwargs)


async def in_thread(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `fn(*args, **kwargs)` on a dynorm worker thread, in a copy of this context."""
    import asyncio

    context = contextvars.copy_context()
    future = _threads().submit(lambda: context.run(fn, *args, **kwargs))
    waiting = asyncio.wrap_future(future)
    try:
        return await asyncio.shield(waiting)
    except asyncio.CancelledError:
        if not future.cancel():  # already sending: let it finish, then stop the task
            await asyncio.wait([waiting])
        raise


async def iterate(pages: Callable[[], Iterator[list[T]]]) -> AsyncGenerator[list[T], None]:
    """Yield the lists of a sync page generator, each fetched on a worker thread.

    The generator is created, advanced and closed on worker threads, never on the loop;
    it is closed when the iteration ends, breaks, raises or is cancelled.
    """
    source = await run(pages)
    try:
        while True:
            page = await run(next, source, None)
            if page is None:
                return
            yield page
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            await run(close)
