"""The requests of versioned writes, composed from the write compiler's (pure).

A versioned save, a delete with its history and the guarded deletes of history are made of
the write compiler's requests (`query._compile_write`): nothing here writes expression text,
reads a clock, draws a token or knows a table name. The caller passes the compiled request
of the current item (a save's PutItem, a delete's DeleteItem, both with their condition) and
the history keys it read; these functions add the history writes and split what does not fit
one transaction (`TRANSACT_ITEMS_LIMIT`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._constants import TRANSACT_ITEMS_LIMIT
from .._options import Options
from .._request import Request
from ..query._compile_write import (
    Absent,
    Check,
    Delete,
    Expectation,
    PutItem,
    Unconditional,
    compile_transaction,
    compile_write,
)

__all__ = [
    "Key",
    "compile_delete",
    "compile_guarded_deletes",
    "compile_save",
    "delete_steps",
]

#: A primary key as stored: (pk, sk).
Key = tuple[str, str]


def _deletes(meta: Options, keys: Iterable[Key]) -> list[Request]:
    """Unconditional deletes of history items (what they delete is guarded elsewhere)."""
    return [compile_write(meta, Delete(key), Unconditional()) for key in keys]


def compile_save(
    meta: Options, save: Request, history: dict[str, Any], prune: Sequence[Key]
) -> Request:
    """The TransactWriteItems of a versioned save.

    `save` is the compiled PutItem of the current item (create-only, or conditional on the
    loaded version); `history` the history item of the version it stores, put only if no
    item has its key; `prune` the keys of the history versions that fall out of
    `Meta.max_versions`, deleted in the same transaction.
    """
    return compile_transaction(
        [
            save,
            compile_write(meta, PutItem(history), Absent(), return_old=False),
            *_deletes(meta, prune),
        ]
    )


def delete_steps(history: Sequence[Key]) -> list[tuple[int, Sequence[Key]]]:
    """How one object's history (oldest first) is split over the transactions deleting it.

    Each step is (how many versions the earlier steps delete, the keys this one deletes).
    One transaction holds the current item and up to 99 versions; a longer history takes
    several, oldest versions first, and the last step, which deletes the current item, takes
    the newest versions.
    """
    room = TRANSACT_ITEMS_LIMIT - 1
    split = max(0, len(history) - room)
    steps = [(start, history[start : min(start + room, split)]) for start in range(0, split, room)]
    return [*steps, (split, history[split:])]


def compile_delete(meta: Options, current: Request, history: Sequence[Key]) -> list[Request]:
    """The TransactWriteItems that delete one object and its whole history, in sending order.

    `current` is the compiled conditional DeleteItem of the current item. Every step but the
    last checks `current`'s condition on the current item (a ConditionCheck of the same key
    and condition) and deletes the oldest versions; the last deletes the current item and the
    newest versions (see `delete_steps`).
    """
    steps = delete_steps(history)
    guard = Request("ConditionCheck", current.params)
    return [
        compile_transaction([current if n == len(steps) - 1 else guard, *_deletes(meta, part)])
        for n, (_, part) in enumerate(steps)
    ]


def compile_guarded_deletes(
    meta: Options, key: Key, expect: Expectation, keys: Sequence[Key]
) -> list[Request]:
    """Delete history `keys` in transactions of 99, each checking `expect` on the item at `key`.

    Used to prune after a commit (`Loaded`: the current item is still the one the save
    stored) and to clean up the history of an object that is gone (`Absent`).
    """
    check = compile_write(meta, Check(key), expect, return_old=False)
    room = TRANSACT_ITEMS_LIMIT - 1
    return [
        compile_transaction([check, *_deletes(meta, keys[start : start + room])])
        for start in range(0, len(keys), room)
    ]
