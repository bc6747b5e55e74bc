"""The greenlet bridge: dynorm's one sync request path, driven on an event loop.

An `a`-method on the lean transport runs its sync twin in a greenlet on the event loop's
thread (the design of SQLAlchemy 2's asyncio support). The sync code is unchanged; only
its few blocking seams ask this module how to wait:

- `wait(awaitable)`: inside a bridge greenlet, hand the awaitable to the loop and resume
  with its result (the lean transport's HTTP exchange on the loop is awaited this way);
- `sleep(seconds)`: a backoff sleep (`asyncio.sleep` in a bridge, `time.sleep` elsewhere);
- `blocking(fn, ...)`: a call that would block the loop (a botocore client request, S3)
  runs on a worker thread while the loop goes on;
- `gather(tasks)`: tasks that run in parallel threads on the sync path run as concurrent
  bridge greenlets;
- `Lock`: one object's writes take turns across threads *and* across the greenlets of one
  thread (a `threading.RLock` would let every greenlet of the loop's thread in at once).

Outside a bridge greenlet (every sync call, on any thread) each seam is what it was:
nothing here imports asyncio or greenlet unless a bridge runs.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

from .exceptions import ConfigurationError

# asyncio and greenlet are imported where a bridge runs (an `a`-method on the event loop,
# which has imported asyncio already); a sync program never loads them.

T = TypeVar("T")

#: The bridge greenlet this context was created for (a context copied into a worker thread
#: carries it along, so `current()` also checks that it is the running greenlet).
_bridge: ContextVar[Any] = ContextVar("dynorm_bridge", default=None)


def current() -> Any:
    """The running bridge greenlet, or None (a sync call, a worker thread)."""
    g = _bridge.get()
    if g is None:
        return None
    import greenlet

    return g if greenlet.getcurrent() is g else None


def wait(awaitable: Awaitable[T]) -> T:
    """Await `awaitable` on the event loop from inside a bridge greenlet."""
    g = current()
    if g is None:
        raise RuntimeError("dynorm._bridge.wait() outside a bridge greenlet")
    result: T = g.parent.switch(awaitable)
    return result


def sleep(seconds: float, sync_sleep: Callable[[float], None] = time.sleep) -> None:
    """Sleep without blocking the event loop inside a bridge greenlet; else `sync_sleep`.

    Callers pass their own module's `time.sleep`, so a test that replaces a module's `time`
    still sees (and fakes) the sync path's sleeps.
    """
    if current() is None:
        sync_sleep(seconds)
        return
    import asyncio

    wait(asyncio.sleep(seconds))


def blocking(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Call `fn`; inside a bridge, on a worker thread (in a copy of this context)."""
    if current() is None:
        return fn(*args, **kwargs)
    import asyncio

    context = contextvars.copy_context()  # this greenlet's, not the awaiting task's
    loop = asyncio.get_running_loop()
    return wait(loop.run_in_executor(None, lambda: context.run(fn, *args, **kwargs)))


async def spawn(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run `fn(*args, **kwargs)` in a bridge greenlet, in a copy of this context.

    Cancellation: a request already handed to the loop is let finish, and so is the rest of
    the call (as on a worker thread); the cancellation is raised when the call has ended, so
    no request of the cancelled task is still in flight afterwards.
    """
    return await _drive(contextvars.copy_context(), fn, *args, **kwargs)


async def _drive(
    context: contextvars.Context, fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    import asyncio

    import greenlet

    g = greenlet.greenlet(lambda: fn(*args, **kwargs), parent=greenlet.getcurrent())
    context.run(_bridge.set, g)
    g.gr_context = context
    cancelled = False
    try:
        asked: Any = g.switch()
        while not g.dead:
            future = asyncio.ensure_future(asked)
            while not future.done():
                try:
                    await asyncio.shield(future)
                except asyncio.CancelledError:
                    if future.cancelled():  # the awaited thing itself was cancelled
                        break
                    cancelled = True  # this task was: let the call finish first
                except BaseException:  # noqa: BLE001, S110 - the future's error, thrown below
                    pass
            try:
                result = future.result()
            except BaseException as exc:  # noqa: BLE001 - raised inside the greenlet
                asked = g.throw(exc)
            else:
                asked = g.switch(result)
    except BaseException as exc:
        if cancelled and not isinstance(exc, asyncio.CancelledError):
            raise asyncio.CancelledError() from exc
        raise
    if cancelled:
        raise asyncio.CancelledError()
    value: T = asked
    return value


def gather(tasks: Sequence[Callable[[], T]], workers: int) -> list[T | Exception]:
    """Inside a bridge: run every task as its own bridge greenlet, `workers` at once.

    Returns each one's result or exception, in order, as `_batch.in_parallel` does.
    """
    import asyncio

    slots = asyncio.Semaphore(workers)
    context = contextvars.copy_context()  # this greenlet's: each task runs in a copy of it

    async def each(task: Callable[[], T]) -> T | Exception:
        async with slots:
            try:
                return await _drive(context.copy(), task)
            except Exception as exc:  # noqa: BLE001 - handed back to the caller
                return exc

    async def run_all() -> list[T | Exception]:
        return list(await asyncio.gather(*(each(t) for t in tasks)))

    return wait(run_all())


class Lock:
    """A reentrant lock owned by a thread, or by a bridge greenlet on the loop's thread.

    A bridge greenlet that finds it taken waits on the event loop (the loop goes on); a
    thread waits as on a `threading.Lock`. Release wakes both kinds of waiter.
    """

    __slots__ = ("_depth", "_guard", "_inner", "_owner", "_thread", "_waiters")

    def __init__(self) -> None:
        self._inner = threading.Lock()
        self._guard = threading.Lock()
        self._owner: Any = None  # a thread's ident, or a bridge greenlet
        self._thread = 0  # the thread the owner runs on
        self._depth = 0
        self._waiters: list[tuple[Any, Any]] = []  # (loop, future) of waiting greenlets

    def acquire(self) -> None:
        g = current()
        me: Any = g if g is not None else threading.get_ident()
        if self._owner == me:
            self._depth += 1
            return
        if g is None:
            if self._owner is not None and self._thread == me:  # a greenlet of this thread
                raise ConfigurationError(
                    "Cannot write or reload this object with a sync method on the event "
                    "loop's thread while an awaited call on the same object runs there: it "
                    "would wait forever. Await its a-method instead, or call the sync method "
                    "in a worker thread (asyncio.to_thread).",
                    code="config",
                )
            self._inner.acquire()
        else:
            self._acquire_on_loop()
        self._thread = threading.get_ident()  # before the owner: see the check above
        self._owner, self._depth = me, 1

    def _acquire_on_loop(self) -> None:
        import asyncio

        while not self._inner.acquire(blocking=False):
            loop = asyncio.get_running_loop()
            woken = loop.create_future()
            with self._guard:
                self._waiters.append((loop, woken))
            if self._inner.acquire(blocking=False):  # released before we were listed
                with self._guard:
                    if (loop, woken) in self._waiters:
                        self._waiters.remove((loop, woken))
                return
            wait(woken)

    def release(self) -> None:
        self._depth -= 1
        if self._depth:
            return
        self._owner = None
        self._inner.release()
        with self._guard:
            waiters, self._waiters = self._waiters, []
        for loop, woken in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_wake, woken)

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def _wake(woken: Any) -> None:
    if not woken.done():
        woken.set_result(None)
