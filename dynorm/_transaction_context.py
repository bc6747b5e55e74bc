"""The open `transaction()` block of the running thread or task (a context variable).

Low on purpose: writes ask it whether to join a transaction, and the transaction module sets
it, so neither has to import the other.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._transactions import Transaction

__all__ = ["current_transaction"]

#: The innermost open transaction (set by `dynorm.transaction()`).
active: ContextVar[Transaction | None] = ContextVar("dynorm_transaction", default=None)


def current_transaction() -> Transaction | None:
    """Return the innermost active transaction, if any."""
    return active.get()
