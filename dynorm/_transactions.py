"""Write collectors: while a transaction block is active, writes join it instead of sending."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._persistence import WriteOp


class WriteCollector(Protocol):
    """Anything that collects writes instead of sending them (a transaction)."""

    def add(self, op: WriteOp) -> None:
        """Collect one write."""


_current: ContextVar[WriteCollector | None] = ContextVar("dynorm_transaction", default=None)


def current_transaction() -> WriteCollector | None:
    """Return the collector of the innermost active transaction block, if any."""
    return _current.get()
