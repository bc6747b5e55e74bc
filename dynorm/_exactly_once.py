"""Exactly-once instance writes: write tokens, attempts of unknown outcome, refusals read.

Exactly once, in four steps:

1. Every save and update stores a random token (`_wtok`, the layout's `token` attribute) with
   the item, and every write of an instance is conditional on the version it was loaded at
   (or on the key not existing). A layout without a token attribute
   (`write_token_attribute=None`) stores none: its writes are recognised by their content
   instead (`_proof`: the stored item holds exactly what the write sent), and a refusal that
   shows neither is never read as proof that the write was not applied.
2. botocore retries a write whose response was lost; a retry that DynamoDB refuses because the
   first attempt was applied gets back the stored item (`ALL_OLD`) carrying our own token:
   dynorm reports success and takes the stored state.
3. A refusal whose stored item is neither at the expected version nor ours, after an attempt
   that may have been applied (a lost response, a 5xx), raises `WriteOutcomeUnknownError`:
   calling it a conflict would invite the caller to apply the change twice.
4. When every attempt failed that way (`ServiceError(maybe_applied=True)`), the instance
   remembers the attempt (`Attempt`: its token, expected version, call and state). The
   caller's next write of the instance is sent as usual; if DynamoDB refuses it and the
   stored item carries a remembered token, that attempt was applied: the instance takes its
   result, and the new call is reported as done (the same call: the retry) or applied on top
   (a different call, or an instance changed since).

This module holds the bookkeeping (`WriteState`, `Attempt`), the attempt tracking of a
client (`tracking`) and the reading of refusals; `_instance_writes` builds the writes and
`_executor` sends them.
"""

from __future__ import annotations

import copy
import secrets
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _bridge
from ._codec import from_wire
from ._config import OWN_TABLE, Table, _OwnTable, binding, connection_for
from ._layout import Layout
from ._proof import sent_for
from ._wire import never_sent
from ._write_op import WriteOp
from .exceptions import DynormError, WriteOutcomeUnknownError

if TYPE_CHECKING:
    from ._connection import Connection
    from .models import Model

#: How many uncertain attempts of one instance are remembered (each retry may add one).
_MAX_REMEMBERED = 8
CCF = "ConditionalCheckFailed"


@dataclass
class Attempt:
    """A write of an instance whose outcome is unknown: every response was lost.

    `group` names the request it was part of (a transaction's writes share one) and `size`
    how many writes that request had; `snapshot` is the instance's state when it was sent and
    `key` the primary key of the item it wrote (or deleted); `owner` the instance it
    belongs to (a shallow copy of the instance shares its bookkeeping, not its attempts).
    """

    token: str | None
    expected: int
    call: tuple[Any, ...] | None
    snapshot: dict[str, Any]
    on_success: Callable[[dict[str, Any]], None]
    deletes: bool
    group: str
    size: int
    key: tuple[str, str] | None = None
    owner: Any = None
    #: What the write stored, for a layout without a token attribute (see `_proof`).
    sent: Any = None

    def same(self, call: tuple[Any, ...] | None, instance: Model) -> bool:
        """Whether `call` on the instance as it is now repeats this attempt exactly.

        An `update(**values)` or a `delete()` writes what the call says, whatever else the
        instance holds: the same call is the same write. A save writes the instance's
        fields: it repeats the attempt only if they are unchanged.
        """
        if self.call != call:
            return False
        return (
            call is not None
            and call[0] in ("update", "delete")
            or (self.snapshot == instance.__dict__)
        )


class WriteState:
    """dynorm's bookkeeping of one instance's writes (`Model._writes`).

    `token` is the write token of the stored item the instance holds, when known; `pending`
    the instance's writes of unknown outcome; `table` the table the instance was read from or
    saved to, when it is not the model's own (`binding`). It never takes part in equality
    (two instances with equal fields are equal whatever dynorm knows about them), copies keep
    the token and the table but not the pending writes (those belong to the original
    instance), and it is never changed in place (a shallow copy of an instance shares it):
    changes replace it.
    """

    __slots__ = ("pending", "table", "token")

    def __init__(
        self,
        token: str | None = None,
        pending: list[Attempt] | None = None,
        table: Table | _OwnTable | None = None,
    ) -> None:
        self.token = token
        self.pending = pending
        self.table = table

    def __eq__(self, other: object) -> bool:
        return other is None or isinstance(other, WriteState)

    __hash__ = None  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]

    def __copy__(self) -> WriteState:
        return WriteState(self.token, None, self.table)

    def __deepcopy__(self, memo: dict[int, Any]) -> WriteState:
        return WriteState(self.token, None, self.table)

    def __reduce__(self) -> tuple[Any, ...]:
        return (WriteState, (self.token, None, self.table))

    def __repr__(self) -> str:
        return f"WriteState(pending={len(self.pending or ())})"


def pending(instance: Model) -> list[Attempt]:
    """The instance's remembered writes of unknown outcome."""
    state = instance._writes
    return list(state.pending or ()) if state is not None else []


def forget(instance: Model) -> None:
    """Forget the instance's writes of unknown outcome (settled, or the caller reloaded)."""
    state = instance._writes
    if state is not None and state.pending is not None:
        instance._writes = WriteState(state.token, None, state.table)


def stored_token_of(instance: Model) -> str | None:
    """The write token of the stored item the instance holds, when known."""
    state = instance._writes
    return state.token if state is not None else None


def set_stored_token(instance: Model, token: str | None) -> None:
    state = instance._writes
    if state is None and token is None:
        return
    if state is None:
        instance._writes = WriteState(token)
    else:
        instance._writes = WriteState(token, state.pending, state.table)


def bind(instance: Model, table: Table | _OwnTable | None) -> None:
    """Remember the table an instance was read from or saved to.

    None leaves what it knows (an instance read from its model's own table needs nothing:
    see `instance_table`); `OWN_TABLE` says so explicitly (set after a write there).
    """
    state = instance._writes
    if table is None:
        return
    if state is None:
        instance._writes = WriteState(None, None, table)
    elif state.table is not table:
        instance._writes = WriteState(state.token, state.pending, table)


def written_to(op: WriteOp) -> Table | _OwnTable:
    """The table a write of an instance went to, as the instance remembers it."""
    return binding(op.model, op.table) or OWN_TABLE


def bind_all(instances: Iterable[Model], table: Table | None) -> None:
    """`bind` each of `instances` to `table` (nothing to do for the model's own table)."""
    if table is not None:
        for instance in instances:
            bind(instance, table)


def instance_table(instance: Model) -> Table | _OwnTable | None:
    """The table an instance's writes go to.

    The table it was read from or saved to when that is not its model's own; its own table
    (`OWN_TABLE`) when it was loaded or saved there, whatever `using()` block is active at the
    write; None for an instance never stored (its first save follows the usual rule).
    """
    state = instance._writes
    if state is not None and state.table is not None:
        return state.table
    return OWN_TABLE if instance._loaded_key is not None else None


# --------------------------------------------------------------------------- one writer at a time

_locks: dict[int, _bridge.Lock] = {}
_locks_guard = threading.Lock()


def instance_lock(instance: Model) -> _bridge.Lock:
    """The lock that makes one object's writes and reloads run one at a time.

    Threads (or async tasks) sharing one object then save it one after another, each at
    the version the previous one stored, instead of racing with the same loaded version
    and write token. Distinct objects, even of the same item, never wait for each other.
    """
    key = id(instance)
    lock = _locks.get(key)
    if lock is None:
        with _locks_guard:
            lock = _locks.get(key)
            if lock is None:
                lock = _locks[key] = _bridge.Lock()
                weakref.finalize(instance, _locks.pop, key, None)
    return lock


def stored_item(instance: Model, key: tuple[str, str]) -> dict[str, Any] | None:
    """The stored item of an instance (a consistent GetItem in its table), or None.

    Read before a write that needs what it replaces (companion items, an `F()` on an index
    key); the write stays conditional on the loaded version, so the read is what it replaces.
    Under `capture()` nothing is read (None).
    """
    conn = connection_for(type(instance), instance_table(instance))
    response = conn.send(
        "GetItem",
        {
            "TableName": conn.table_name,
            "Key": instance._meta.layout.key_item(key),
            "ConsistentRead": True,
        },
    )
    item: dict[str, Any] | None = response.get("Item")
    if item is None or not instance._meta.layout.is_type(item, instance._meta.type_name):
        return None
    return item


# --------------------------------------------------------------------------- attempts


class _Attempts:
    """What the attempts of one request told: whether any of them may have been applied."""

    __slots__ = ("earlier", "uncertain")

    def __init__(self) -> None:
        self.uncertain = False  # an attempt of this request got no answer, or a 5xx
        self.earlier = False  # an earlier request of the same write may have been applied


_attempts: ContextVar[_Attempts | None] = ContextVar("dynorm_write_attempts", default=None)
_tracked: weakref.WeakSet[Any] = weakref.WeakSet()
_tracked_lock = threading.Lock()


def _on_attempt(response: Any = None, caught_exception: Any = None, **_: Any) -> None:
    """Note an attempt that may have been applied unseen (botocore `needs-retry` hook)."""
    box = _attempts.get()
    if box is None:
        return None
    if caught_exception is not None:
        if not never_sent(caught_exception):
            box.uncertain = True
    elif response is not None and response[0] is not None and response[0].status_code >= 500:
        box.uncertain = True
    return None


def _on_lean_attempt(response: Any, caught: BaseException | None) -> None:
    """`_on_attempt` for the lean transport's attempts."""
    _on_attempt(response=None if response is None else (response, None), caught_exception=caught)


def _register_attempt_hook(client: Any) -> None:
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is not None:
        events.register("needs-retry.dynamodb", _on_attempt, unique_id="dynorm-write-attempts")


def _track(conn: Connection) -> None:
    # Keyed by the client's slot, not the client: on the lean transport the client may not
    # exist yet (it gets the hook when it is made).
    key = conn.client_key
    if key in _tracked:
        return
    with _tracked_lock:
        if key in _tracked:
            return
        conn.on_client(_register_attempt_hook)
        if conn.transport is not None:
            conn.transport.listeners.append(_on_lean_attempt)
        _tracked.add(key)


@contextmanager
def tracking(conn: Connection) -> Iterator[_Attempts]:
    """Record, for the requests sent inside, whether an attempt may have been applied."""
    _track(conn)
    box = _Attempts()
    token = _attempts.set(box)
    try:
        yield box
    finally:
        _attempts.reset(token)


def may_have_applied() -> bool:
    """Whether the write being sent may have been applied by an attempt whose answer was lost."""
    box = _attempts.get()
    return box is not None and (box.uncertain or box.earlier)


def new_write_token() -> str:
    """A random token stored with each write (`_wtok`), to recognise our own earlier write."""
    return secrets.token_hex(8)


def stored_token(item: Mapping[str, Any], layout: Layout) -> str | None:
    """The write token of a stored item (None for items written without one)."""
    if layout.token is None:
        return None
    token = item.get(layout.token, {}).get("S")
    return None if token is None else str(token)


# --------------------------------------------------------------------------- refusals


def refused_items(exc: DynormError) -> list[dict[str, Any]]:
    """Every stored item a refusal returned (`ALL_OLD`), for any action of the request."""
    response = exc.response or {}
    if "CancellationReasons" in response:
        return [dict(r["Item"]) for r in response["CancellationReasons"] if r.get("Item")]
    return [dict(response["Item"])] if response.get("Item") else []


def carrying(
    items: Iterable[Mapping[str, Any]], token: str | None, layout: Layout
) -> dict[str, Any] | None:
    """The item that carries this write token (the write was applied), if any.

    Tokens are random per write, so a match proves our write. A layout without a token
    attribute compares content instead (`_proof.Sent.shows`): the stored item holds exactly
    what the write with this token sent. That cannot tell our write from another writer's
    identical one (two read-modify-write increments from one version store equal items):
    the price of storing no token, said in the docs.
    """
    if token is None:
        return None
    if layout.token is None:
        sent = sent_for(token)
        if sent is None:
            return None
        return next((dict(item) for item in items if sent.shows(item)), None)
    for item in items:
        if item.get(layout.token, {}).get("S") == token:
            return dict(item)
    return None


def already_applied(old: Mapping[str, Any] | None, token: str | None, layout: Layout) -> bool:
    """Whether the stored item (ALL_OLD of a refused write) shows this write was applied."""
    return old is not None and carrying([old], token, layout) is not None


def old_item(exc: DynormError) -> dict[str, Any] | None:
    response = exc.response or {}
    if "Item" in response:
        return dict(response["Item"])
    for reason in response.get("CancellationReasons", []):
        if reason.get("Code") == CCF:
            return dict(reason["Item"]) if "Item" in reason else None
    return None


def first_gone(exc: DynormError) -> bool:
    """Whether a refusal says that the write's (first) item does not exist."""
    response = exc.response or {}
    reasons = response.get("CancellationReasons")
    if reasons is not None:
        first = reasons[0] if reasons else {}
        return bool(first.get("Code") == CCF and not first.get("Item"))
    return not response.get("Item")


def stored_version(old: Mapping[str, Any] | None, attr: str | None) -> int | None:
    """The version a stored item holds (None: none, or no version attribute)."""
    if old and attr is not None and attr in old:
        return int(from_wire(old[attr]))
    return None


def disproves(old: Mapping[str, Any] | None, expected: int, layout: Layout) -> bool:
    """Whether a stored item without our token proves that our write was never applied.

    Every write of an instance is conditional on the version `expected` and stores
    `expected + 1`; only one writer can store that version. So another writer's item at
    exactly `expected + 1` means ours never was (a genuine conflict). At a later version (or
    gone) ours may have been stored and then changed: that cannot be told. Without a token
    attribute nothing disproves it: an item at `expected + 1` that differs from what we sent
    may be ours, changed since by a writer that keeps the version.
    """
    if layout.version is None or layout.token is None:
        return False
    return stored_version(old, layout.version) == expected + 1


def unknown(
    model: str, action: str, keys: str, expected: int, current: int | None, exc: DynormError
) -> WriteOutcomeUnknownError:
    """The error of an instance's write that may have been applied and cannot be told."""
    state = (
        f"is at version {current}, written by someone else"
        if current is not None
        else "no longer exists"
    )
    return WriteOutcomeUnknownError(
        f"Cannot tell whether the {action} of {model} (key fields: {keys}) was applied: an "
        f"earlier attempt got no answer (a lost response, or a server error), and the stored "
        f"item now {state}, not version {expected} and not ours. Nothing was applied twice. "
        "Reload it with refresh_from_db() and check whether your change is there before "
        "applying it again.",
        model=model,
        expected_version=expected,
        current_version=current,
        aws_code=exc.aws_code,
        response=exc.response,
    )


# --------------------------------------------------------------------------- remembered attempts


def live_attempts(instance: Model) -> list[Attempt]:
    """The instance's remembered attempts that may still be stored (at its version)."""
    return [a for a in pending(instance) if a.owner is instance and a.expected == instance.version]


def remember(instance: Model, op: WriteOp, group: str | None = None, size: int = 1) -> None:
    """Remember an attempt of `op` whose outcome is unknown, for the next write to settle."""
    attempt = Attempt(
        token=op.token,
        expected=instance.version,
        call=_copied(op.call),
        snapshot=_snapshot(instance),
        on_success=op.on_success,
        deletes=bool(op.call and op.call[0] == "delete"),
        group=group or uuid.uuid4().hex,
        size=size,
        key=written_key(op),
        owner=instance,
        sent=op.sent,
    )
    attempts = [*live_attempts(instance), attempt][-_MAX_REMEMBERED:]
    # Where it was sent: the retry (and the read that settles it) must go there too.
    table = written_to(op)
    instance._writes = WriteState(stored_token_of(instance), attempts, table)


def _snapshot(instance: Model) -> dict[str, Any]:
    snapshot: dict[str, Any] = _copied(instance.__dict__)
    return snapshot


def _copied(value: Any) -> Any:
    """A deep copy to compare a later call with (values the caller may mutate meanwhile)."""
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - a value that cannot be copied: compare what is there
        return copy.copy(value)


def written_key(op: WriteOp) -> tuple[str, str] | None:
    """The primary key of the item a write of an instance stores (or deletes).

    A transaction of an instance holds its item's Put (a move puts the new key after
    deleting the old one; a versioned save puts the item first), or, for a delete, the
    item's Delete first.
    """
    body: Mapping[str, Any] = op.params
    if op.operation == "TransactWriteItems":
        actions = op.params["TransactItems"]
        puts = [a["Put"] for a in actions if "Put" in a]
        body = puts[0] if puts else next(iter(actions[0].values()), {})
    key = body.get("Item") or body.get("Key")
    layout = op.model._meta.layout
    if key and layout.has_key(key):
        return layout.key_of(key)
    return None


def settle(instance: Model, attempt: Attempt, item: Mapping[str, Any] | None) -> None:
    """An earlier attempt was applied: give the instance its result, forget the others."""
    attempt.on_success({"Attributes": dict(item)} if item is not None else {})
    forget(instance)


def earlier_attempt(
    attempts: Iterable[Attempt], exc: DynormError, gone: bool, layout: Layout
) -> tuple[Attempt, dict[str, Any] | None] | None:
    """The remembered attempt a refusal shows applied, with the item that proves it.

    Its token is stored, or it was a delete and the item no longer exists (`gone`).
    """
    attempts = list(attempts)
    items = refused_items(exc)
    for attempt in attempts:
        item = carrying(items, attempt.token, layout)
        if item is not None:
            return attempt, item
    for attempt in attempts:
        if attempt.deletes and gone:
            return attempt, None
    return None
