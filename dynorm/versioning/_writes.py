"""Versioned write plans beyond a save: deleting with history, pruning after a commit.

An object is deleted with its whole history (in several transactions, oldest first, when it
is long); history a save's transaction had no room to prune is deleted after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from .._codec import from_wire
from .._config import TableChoice, connection_for
from .._constants import TRANSACT_ITEMS_LIMIT, VERSION_ATTR
from .._exactly_once import first_gone
from .._executor import execute
from .._request import Request
from .._transaction_context import current_transaction
from .._write_op import Conflict, WriteOp
from ..exceptions import DynormError, QueryError, TransactionCanceledError, VersionConflictError
from ..models import Model
from ..query._compile_write import Absent, Expectation, Loaded, key_of
from ._compile_writes import Key, compile_delete, compile_guarded_deletes, delete_steps
from ._history_codec import _checked_history_sk
from ._history_reads import _history_keys

logger = logging.getLogger("dynorm")


def _nothing(_: dict[str, Any]) -> None:
    return None


def max_versions(model: type[Model]) -> int | None:
    """`Meta.max_versions` of a versioned model (None: every version is kept)."""
    keep = model._meta.extra["raw"].get("max_versions")
    return None if keep is None else int(keep)


def prune_plan(
    model: type[Model], key: Key, new: int, used: int, table: TableChoice = None
) -> tuple[list[Key], int | None]:
    """The history a save of version `new` prunes in its transaction, and what is left.

    The version leaving the `Meta.max_versions` window is always deleted. Older ones exist
    only after `max_versions` was lowered (or set): a keys-only Query finds them, and as many
    as fit beside the transaction's `used` actions are deleted with it. Returns those keys
    and the newest version still to prune after the commit (None when nothing is left).
    """
    keep = max_versions(model)
    if keep is None or new <= keep:
        return [], None
    pk, sk = key
    leaving = new - keep
    prune = [(pk, _checked_history_sk(model, sk, leaving))]
    if leaving == 1:
        return prune, None
    if current_transaction() is not None:
        return prune, leaving - 1  # the block's other writes need the room: prune after it
    room = TRANSACT_ITEMS_LIMIT - used - len(prune)
    older = _history_keys(model, pk, sk, upto=leaving - 1, limit=room + 1, table=table)
    return prune + older[:room], (leaving - 1 if len(older) > room else None)


def _delete_guarded(
    model: type[Model],
    key: Key,
    expect: Expectation,
    keys: list[Key],
    table: TableChoice = None,
) -> None:
    """Delete history `keys` in transactions of 99, each checking `expect` on the item at `key`.

    Sent as they are: outside any open `transaction()` block (they run after a commit, or
    while a refusal is read).

    Raises:
        TransactionCanceledError: The expectation was false (nothing more is deleted).
    """
    conn = connection_for(model, table)
    for request in compile_guarded_deletes(model._meta, key, expect, keys):
        actions = request.params["TransactItems"]
        conn.send(
            request.operation,
            {
                "TransactItems": [
                    {kind: {**body, "TableName": conn.table_name} for kind, body in a.items()}
                    for a in actions
                ]
            },
        )


def _after_partial(conflict: Conflict, done: int) -> Conflict:
    """Say, in the conflict of a later step, that the oldest `done` versions are gone."""
    if not done:
        return conflict

    def wrapped(exc: DynormError) -> Exception | None:
        error = conflict(exc)
        if type(error) is not VersionConflictError:
            return error
        return VersionConflictError(
            f"{error} Its {done} oldest history versions were already deleted (a history "
            "this long is deleted in several transactions, oldest first, each conditional "
            "on the version); the object and its newer versions are intact.",
            model=error.model,
            expected_version=error.expected_version,
            current_version=error.current_version,
            aws_code=error.aws_code,
            response=error.response,
        )

    return wrapped


def _clean_if_gone(
    model: type[Model],
    key: Key,
    conflict: Conflict,
    keys: Sequence[Key],
    table: TableChoice = None,
) -> Conflict:
    """A step refused because the current item is gone deletes its history items anyway.

    Without their object they belong to nothing (dynorm deletes the current item last, so
    only an interrupted delete of an earlier build or a manual delete leaves them). The
    deletes check that the current item is still absent: a new object created under the key
    meanwhile keeps its history.
    """

    def wrapped(exc: DynormError) -> Exception | None:
        if first_gone(exc) and keys:
            try:
                _delete_guarded(model, key, Absent(), list(keys), table)
            except TransactionCanceledError:
                pass  # a new object took the key: what is there is its history
        return conflict(exc)

    return wrapped


def _delete_writes(
    model: type[Model],
    current: Request,
    conflict_after: Callable[[int], Conflict],
    on_success: Callable[[dict[str, Any]], None],
    table: TableChoice = None,
) -> list[WriteOp]:
    """The writes that delete one object and its whole history, in the order to send them.

    `current` is the compiled conditional DeleteItem of the current item. The current item
    and its history normally go in one transaction. A history longer than one transaction
    holds (99 versions) is deleted in several, oldest versions first, each one guarded by a
    ConditionCheck of `current`'s condition, and the current item goes in the last one with
    the newest versions: whatever step fails, the object is still stored with its newest
    versions (as if pruned), never a history without its object. `conflict_after(n)` reads
    the refusal of a step sent after `n` of the listed versions were deleted. Everything
    is read from and written to `table` when given (`qs.using(...)`), else the model's table.
    """
    key = key_of(current, model._meta)
    # Consistent: with the version condition, no version this read missed can exist.
    history = _history_keys(model, *key, consistent=True, table=table)
    steps = delete_steps(history)
    requests = compile_delete(model._meta, current, history)
    return [
        WriteOp.of(
            request,
            model,
            _clean_if_gone(model, key, conflict_after(done), part, table),
            on_success if n == len(steps) - 1 else _nothing,
            table=table,
        )
        for n, (request, (done, part)) in enumerate(zip(requests, steps))
    ]


def _versions(ops: list[WriteOp]) -> int:
    return sum(len(op.params["TransactItems"]) - 1 for op in ops)


def _send_older(ops: list[WriteOp], model: str) -> int:
    """Send every step of a long delete but the last; return how many versions they deleted.

    Refused inside a transaction: there the object and its history must fit into it.
    """
    if current_transaction() is not None:
        raise QueryError(
            f"Cannot delete {model} inside a transaction: its history holds {_versions(ops)} "
            f"versions, and an object is deleted with its history in one transaction only "
            f"up to {TRANSACT_ITEMS_LIMIT - 1} versions. Delete it outside the transaction() "
            "block (dynorm then deletes the history in several transactions, oldest first).",
            code="bad-query",
        )
    for op in ops[:-1]:
        execute(op)
    return _versions(ops[:-1])


_MAX_DELETE_ATTEMPTS = 5


class _Refused(DynormError):
    """A QuerySet delete's condition was refused; `stored_version` of the item, if any."""

    def __init__(self, stored_version: int | None) -> None:
        super().__init__("refused")
        self.stored_version = stored_version


def _refused(_: int) -> Conflict:
    def conflict(exc: DynormError) -> Exception | None:
        reasons = (exc.response or {}).get("CancellationReasons") or [{}]
        stored = (reasons[0].get("Item") or {}).get(VERSION_ATTR)
        return _Refused(None if stored is None else int(from_wire(stored)))

    return conflict


def _partly_deleted(model: str, expected: int, stored: int | None, done: int) -> Exception:
    return VersionConflictError(
        f"Cannot finish deleting {model}: while its long history was being deleted it was "
        f"changed (and no longer matches the filters) or deleted by another writer. Its {done} "
        "oldest history versions were already deleted; if it is still stored, it and its "
        "newer versions are intact.",
        model=model,
        expected_version=expected,
        current_version=stored,
    )


def _prune_after_commit(
    model: type[Model],
    pk: str,
    sk: str,
    upto: int,
    version: int,
    token: str | None,
    table: TableChoice = None,
) -> None:
    """Delete the history up to version `upto` that the save's transaction had no room for.

    Each batch of deletes is a transaction guarded by a ConditionCheck that the current
    item is still the one this save stored (its version and write token): if the object
    changed meanwhile (saved again, or deleted and created anew under the same key, whose
    history these keys may then name), nothing is deleted and the next save prunes.

    Best effort: the save has succeeded, so a failure here is logged, not raised, and the
    history is then longer than `Meta.max_versions`, never shorter.
    """
    try:
        keys = _history_keys(model, pk, sk, upto=upto, table=table)
        _delete_guarded(model, (pk, sk), Loaded(version, token), keys, table)
    except TransactionCanceledError:
        logger.debug(
            "%s changed before its older history was pruned; its next save prunes it",
            model.__name__,
        )
    except DynormError as exc:
        logger.warning(
            "pruning the older history of %s failed (%s); the next save prunes it",
            model.__name__,
            type(exc).__name__,
        )
