"""Model signals, as Django's: pre_save, post_save, pre_delete, post_delete, post_update.

```python
from dynorm import signals

@signals.receiver(signals.post_save, sender=Order)
def on_order_saved(sender, instance, created, **kwargs): ...
```

Post signals are sent only once the write succeeded; inside a `transaction()` block, once
the whole transaction was committed (they are `on_commit` callbacks). A pre signal receiver
that raises stops the write: nothing is sent. Receivers run in the thread (or task) that
writes, in the order they were connected.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from ._transaction_context import current_transaction
from .exceptions import ConfigurationError

__all__ = [
    "Signal",
    "post_delete",
    "post_save",
    "post_update",
    "pre_delete",
    "pre_save",
    "receiver",
]

Receiver = Callable[..., Any]
R = TypeVar("R", bound=Receiver)


def _ref(func: Receiver, weak: bool) -> Callable[[], Receiver | None]:
    if not weak:
        return lambda: func
    if inspect.ismethod(func):
        return weakref.WeakMethod(func)
    return weakref.ref(func)


class Signal:
    """A signal: receivers connected to it are called with `(sender, **kwargs)` on `send()`.

    Args:
        name: Shown in `repr()` and in error messages.
    """

    def __init__(self, name: str = "signal") -> None:
        self.name = name
        self._lock = threading.Lock()
        # (lookup key, sender or None, reference to the receiver)
        self._receivers: list[tuple[Any, Any, Callable[[], Receiver | None]]] = []

    def __repr__(self) -> str:
        return f"<Signal {self.name}>"

    def connect(
        self,
        receiver: Receiver,
        sender: Any = None,
        *,
        weak: bool = True,
        dispatch_uid: str | None = None,
    ) -> None:
        """Call `receiver(sender, **kwargs)` on every send (from `sender` only, if given).

        Args:
            receiver: A function or method taking `sender` and `**kwargs`; a coroutine
                function is awaited by `asend()` (and refused by `send()`).
            sender: Only sends from this sender (a model class) reach the receiver.
            weak: Hold the receiver by a weak reference (Django's default): a receiver that
                is garbage collected is disconnected. Pass False for lambdas and closures.
            dispatch_uid: A key that connects the receiver only once however often this runs.
        """
        if not callable(receiver):
            raise TypeError(f"Cannot connect a non-callable receiver to {self!r}.")
        key = dispatch_uid if dispatch_uid is not None else (id(receiver), id(sender))
        ref = _ref(receiver, weak)
        with self._lock:
            if not any(k == key and s is sender for k, s, _ in self._receivers):
                self._receivers.append((key, sender, ref))

    def disconnect(
        self, receiver: Receiver | None = None, sender: Any = None, dispatch_uid: str | None = None
    ) -> bool:
        """Disconnect a receiver (or the one connected with `dispatch_uid`); True if it was."""
        key = dispatch_uid if dispatch_uid is not None else (id(receiver), id(sender))
        with self._lock:
            before = len(self._receivers)
            self._receivers = [r for r in self._receivers if not (r[0] == key and r[1] is sender)]
            return len(self._receivers) != before

    def has_listeners(self, sender: Any = None) -> bool:
        """Whether any receiver would be called by a send from `sender`."""
        return bool(self._live(sender))

    def _live(self, sender: Any) -> list[Receiver]:
        with self._lock:
            found, dead = [], False
            for _, wanted, ref in self._receivers:
                func = ref()
                if func is None:
                    dead = True
                elif wanted is None or wanted is sender:
                    found.append(func)
            if dead:
                self._receivers = [r for r in self._receivers if r[2]() is not None]
        return found

    def send(self, sender: Any, **kwargs: Any) -> list[tuple[Receiver, Any]]:
        """Call every receiver for `sender`; return `[(receiver, its result), ...]`.

        A receiver that raises stops the send (and, for a pre signal, the write).

        Raises:
            ConfigurationError: A receiver is a coroutine function: a sync write cannot
                await it. Use the async API (`asave()`, ...), which sends with `asend()`, or
                make the receiver a plain function.
        """
        out: list[tuple[Receiver, Any]] = []
        for func in self._live(sender):
            if _is_async(func):
                raise ConfigurationError(
                    f"Cannot send {self.name} to the coroutine receiver "
                    f"{getattr(func, '__qualname__', func)!r} from a sync write: it would "
                    "never be awaited. Use the async API (asave(), adelete(), aupdate()), "
                    "which awaits it, or make the receiver a plain function.",
                    code="config",
                )
            out.append((func, func(sender, signal=self, **kwargs)))
        return out

    async def asend(self, sender: Any, **kwargs: Any) -> list[tuple[Receiver, Any]]:
        """As `send()`, awaiting coroutine receivers (sync ones are called in place)."""
        out: list[tuple[Receiver, Any]] = []
        for func in self._live(sender):
            result = func(sender, signal=self, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            out.append((func, result))
        return out


def _is_async(func: Receiver) -> bool:
    call = getattr(func, "__call__", None)  # noqa: B004 - an instance with async __call__
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(call)


def receiver(
    signal: Signal | list[Signal] | tuple[Signal, ...],
    *,
    sender: Any = None,
    weak: bool = True,
    dispatch_uid: str | None = None,
) -> Callable[[R], R]:
    """Connect the decorated function to `signal` (or to each of several signals)."""
    signals = [signal] if isinstance(signal, Signal) else list(signal)

    def decorate(func: R) -> R:
        for each in signals:
            each.connect(func, sender, weak=weak, dispatch_uid=dispatch_uid)
        return func

    return decorate


#: Sent before `save()` writes: `(sender=Model class, instance, update_fields)`.
pre_save = Signal("pre_save")
#: Sent after `save()` succeeded: `(sender, instance, created, update_fields)`.
post_save = Signal("post_save")
#: Sent before `delete()` writes: `(sender, instance)`.
pre_delete = Signal("pre_delete")
#: Sent after `delete()` succeeded: `(sender, instance)`.
post_delete = Signal("post_delete")
#: Sent after `instance.update(...)` succeeded: `(sender, instance, values)`.
post_update = Signal("post_update")


def send_after_write(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send a post signal now, or at the commit of the open transaction (`on_commit`)."""
    tx = current_transaction()
    if tx is None:
        signal.send(sender, **kwargs)
    else:
        tx.on_commit(lambda: signal.send(sender, **kwargs))


async def asend_after_write(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """As `send_after_write`, for the async API: coroutine receivers are awaited.

    Inside a transaction the callback returns the awaitable of `asend()`;
    `Transaction.arun_on_commit()` awaits it.
    """
    tx = current_transaction()
    if tx is None:
        await signal.asend(sender, **kwargs)
    else:
        tx.on_commit(lambda: signal.asend(sender, **kwargs))
