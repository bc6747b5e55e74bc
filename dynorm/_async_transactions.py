"""`atransaction()` and `atransaction_get()`: the transaction API, awaited.

The block is the sync one's (`Block`: savepoints, the context's transaction); only the
commit is awaited, on a dynorm worker thread. A task cancelled inside the block, like
any block that raises, sends nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._async import run
from ._transactions import Block, Transaction, _Key, transaction_get

if TYPE_CHECKING:
    from .models import Model

__all__ = ["atransaction", "atransaction_get"]

_M = TypeVar("_M", bound="Model")
_A = TypeVar("_A", bound="Model")
_B = TypeVar("_B", bound="Model")
_C = TypeVar("_C", bound="Model")


@asynccontextmanager
async def atransaction() -> AsyncIterator[Transaction]:
    """`transaction()` for async code: `async with dynorm.atransaction(): await o.asave()`.

    The writes of the block (`asave()`, `acreate()`, `adelete()`, `aupdate()`, and the sync
    methods too) are collected and sent as one TransactWriteItems when the block ends;
    nested blocks are savepoints, as with `transaction()`. Tasks started inside the block
    (they copy its context) add their writes to it.

    Raises:
        TransactionCanceledError: DynamoDB cancelled it; `.reasons` has one entry per
            operation in the order written.
    """
    block = Block()
    try:
        yield block.tx
    except BaseException:
        block.failed()
        raise
    tx = block.finished()
    if tx is not None:
        await run(tx.commit)
        await tx.arun_on_commit()  # on the loop: async callbacks and receivers are awaited


@overload
async def atransaction_get(keys: tuple[_Key[_A]]) -> tuple[_A | None]: ...
@overload
async def atransaction_get(keys: tuple[_Key[_A], _Key[_B]]) -> tuple[_A | None, _B | None]: ...
@overload
async def atransaction_get(
    keys: tuple[_Key[_A], _Key[_B], _Key[_C]],
) -> tuple[_A | None, _B | None, _C | None]: ...
@overload
async def atransaction_get(keys: tuple[_Key[_M], ...]) -> tuple[_M | None, ...]: ...
@overload
async def atransaction_get(
    keys: list[tuple[type[_M], Mapping[str, Any]]],
) -> list[_M | None]: ...
@overload
async def atransaction_get(keys: list[_M]) -> list[_M | None]: ...
@overload
async def atransaction_get(keys: Sequence[_Key[_M]]) -> Sequence[_M | None]: ...


async def atransaction_get(keys: Sequence[Any]) -> Sequence[Any]:
    """`transaction_get()`, awaited: up to 100 items read atomically (TransactGetItems)."""
    return await run(transaction_get, keys)
