"""The async API's executor: dynorm's one request path, run off the event loop.

Every `a`-method runs the same code as its sync twin (the same compilers, codec, decoder,
key codec, exactly-once write tokens and exceptions) on a worker thread of one bounded
pool, with the caller's contextvars (`using()`, `transaction()`, `dynorm.actor()` blocks)
copied in. Only where the request waits differs: the event loop never blocks. Why threads
and not an async HTTP client is measured on the Async page (benchmarks/async_run.py).

Cancellation: a call still queued for a thread is dropped (nothing is sent); a call
already sending is let finish, so that when the cancelled task goes on, no request of
its own is still in flight and the objects it wrote hold the outcome (a write whose
answer was lost is retried exactly once by dynorm's write tokens, as on the sync path).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import TYPE_CHECKING, ParamSpec, TypeVar

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


async def run(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
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
