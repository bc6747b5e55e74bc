"""`dynorm import`: the JSON Lines of `export_items()`, validated and written back, resumably.

Each line is validated through its model (a bad line is reported with its number and the
rest go on, unless `strict`) and rebuilt by the model's codec, so its keys, index keys and
fields are the ones the models write today. Lines are written in TransactWriteItems
batches, every Put conditional: by default `attribute_not_exists(pk)`, so an item already in
the table is never overwritten but skipped and counted (`overwrite=True` replaces it).

Each line's item carries a write token derived from the run and the line number (`_wtok`).
A checkpoint file records the lines every earlier batch settled; a run killed mid-import
restarts after them, and a batch it had in flight is recognised by its tokens (counted as
`resumed`, not written twice, even with `overwrite`).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .. import _json, _registry
from .._config import get_connection
from .._connection import Connection
from .._constants import TRANSACT_ITEMS_LIMIT, TYPE_ATTR
from .._item_size import _number_bound, item_size
from .._layout import DEFAULT, Layout
from .._proof import Sent
from ..exceptions import (
    ConfigurationError,
    DynormError,
    ImportLineError,
    ServiceError,
    ThrottledError,
    TransactionCanceledError,
)
from ..query._compile_write import model_item
from ..query.placeholders import Placeholders
from ..versioning._history_codec import decode_history
from ..versioning.model import VersionedModel
from ._export import Progress, item_from_json

__all__ = ["ImportProblem", "ImportResult", "import_items"]

_HISTORY_SUFFIX = "#history"
_BATCH_BYTES = 3_500_000  # under TransactWriteItems' 4 MB
#: Cancellation codes a batch is retried on (refused conditions are sorted out first).
_RETRIED_CODES = {"ConditionalCheckFailed", "TransactionConflict", "ThrottlingError"}


@dataclass(frozen=True)
class ImportProblem:
    """A line that was not imported: its number, its model and what is wrong (no value)."""

    line: int
    model: str
    problem: str

    def __str__(self) -> str:
        return f"line {self.line} ({self.model or 'no model'}): {self.problem}"


@dataclass
class ImportResult:
    """What `import_items()` did (counts include the lines of an earlier, interrupted run).

    Attributes:
        lines: Lines read (blank lines excluded).
        written: Items written.
        skipped: Items whose key was already in the table (left unchanged).
        resumed: Items an earlier attempt had written already, recognised by their token:
            an interrupted run's batch in flight, or a write whose response was lost.
        invalid: Lines refused by validation, with their numbers (this run's only).
        dry_run: Nothing was written.
    """

    lines: int = 0
    written: int = 0
    skipped: int = 0
    resumed: int = 0
    invalid: list[ImportProblem] = field(default_factory=list)
    invalid_count: int = 0
    dry_run: bool = False


@dataclass
class _Line:
    number: int
    item: dict[str, Any]
    size: int
    layout: Layout = DEFAULT

    @property
    def token(self) -> str | None:
        """The attribute of the line's write token (None: its model's layout has none)."""
        return self.layout.token


def _size_bound(item: dict[str, Any]) -> int:
    """Never less than the item's DynamoDB size (batches are cut by it), and cheap.

    An item's JSON is never shorter than its DynamoDB size (see `check_item_size`); without
    orjson (or for bytes it cannot write), numbers are sized by an upper bound.
    """
    if _json.FAST:
        try:
            return len(_json.dumps(item))
        except TypeError:
            pass
    return item_size(item, _number_bound)


def _problem(number: int, model: str, text: str) -> ImportProblem:
    return ImportProblem(number, model, text)


def _validation_text(exc: ValidationError) -> str:
    # Field names and error kinds only: pydantic's own message quotes the input.
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'item'}: {e['type']}" for e in exc.errors()]
    return "invalid " + "; ".join(parts)


def _parse(number: int, text: str, token: str) -> _Line | ImportProblem:
    try:
        data = _json.loads(text.encode())
    except ValueError as exc:
        column = getattr(exc, "colno", None)
        return _problem(number, "", f"not JSON (column {column})")
    if not isinstance(data, dict) or not isinstance(data.get("item"), dict):
        return _problem(number, "", 'not an exported item: {"type": ..., "item": {...}}')
    kind = data.get("type")
    kind = kind if isinstance(kind, str) else ""
    try:
        raw = item_from_json(data["item"])
    except (ValueError, TypeError, AttributeError):
        return _problem(number, kind, "an attribute is not DynamoDB JSON")
    history = kind.endswith(_HISTORY_SUFFIX)
    model = _registry.get_model(kind.removesuffix(_HISTORY_SUFFIX) if history else kind)
    if model is None or (history and not issubclass(model, VersionedModel)):
        return _problem(
            number, kind, "no registered model has this entity type: pass its module to --models"
        )
    name = model._meta.model_name
    if not model._meta.layout.is_default:
        return _problem(
            number,
            name,
            "its model is mapped onto a table with names of its own; dynorm import writes "
            "dynorm's own layout (pk, sk, _type, version) only",
        )
    try:
        if history:
            decode_history(model, raw)  # validates the payload through the model
            if raw.get(TYPE_ATTR, {}).get("S") != kind:
                return _problem(number, name, "its _type is not the line's type")
            item = dict(raw)
        else:
            obj = model.from_item(raw)
            item = model_item(model._meta, obj.__dict__, token=None)
    except ValidationError as exc:
        return _problem(number, name, _validation_text(exc))
    except (DynormError, KeyError, ValueError, TypeError) as exc:
        return _problem(number, name, f"cannot be read ({type(exc).__name__})")
    layout = model._meta.layout
    if layout.token is not None:
        item[layout.token] = {"S": token}
    return _Line(number, item, _size_bound(item), layout)


# --------------------------------------------------------------------------- checkpoint


def _fingerprint(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        head = hashlib.sha256(handle.read(1 << 20)).hexdigest()
    return {"size": path.stat().st_size, "head_sha256": head}


class _Checkpoint:
    """Where an import stands: the next line to read, the counts so far, the run's id."""

    def __init__(self, path: Path | None, source: Path) -> None:
        self.path = path
        self.source = _fingerprint(source)
        self.state: dict[str, Any] = {
            "run": secrets.token_hex(8),
            "next_line": 1,
            "written": 0,
            "skipped": 0,
            "resumed": 0,
            "invalid": 0,
        }
        if path is not None and path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
            if saved.get("source") != self.source:
                raise ConfigurationError(
                    f"Cannot resume the import from checkpoint {str(path)!r}: it belongs to "
                    "another input file (or the file changed); delete the checkpoint to "
                    "start over.",
                    code="config",
                )
            self.state.update(saved["state"])

    def token(self, line: int) -> str:
        digest = hashlib.sha256(f"{self.state['run']}:{line}".encode()).hexdigest()
        return digest[:16]

    def save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"source": self.source, "state": self.state}), "utf-8")
        os.replace(tmp, self.path)

    def finish(self) -> None:
        if self.path is not None and self.path.exists():
            self.path.unlink()


# --------------------------------------------------------------------------- writing


class _Rate:
    """An adaptive write rate: halved on throttling, raised 10% per settled batch."""

    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self.current = limit
        self.lock = threading.Lock()
        self.next_at = time.monotonic()

    def wait(self, items: int) -> None:
        with self.lock:
            if self.current is None:
                return
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + items / self.current
        time.sleep(max(0.0, start - now))

    def throttled(self, observed: float) -> None:
        with self.lock:
            base = self.current if self.current is not None else max(observed, 50.0)
            self.current = max(1.0, base / 2)

    def settled(self) -> None:
        with self.lock:
            if self.current is not None and self.limit != self.current:
                grown = self.current * 1.1
                self.current = grown if self.limit is None else min(self.limit, grown)


@dataclass
class _Outcome:
    written: int = 0
    skipped: int = 0
    resumed: int = 0


def _put(line: _Line, overwrite: bool) -> dict[str, Any]:
    ph = Placeholders()
    if overwrite and line.token is None:
        return {"Item": line.item}  # no token to tell our own write by: sent again, the same
    condition = f"attribute_not_exists({ph.name(line.layout.pk)})"
    if overwrite and line.token is not None:  # anything but this line's own earlier write
        w = ph.name(line.token)
        condition += f" OR attribute_not_exists({w}) OR {w} <> {ph.value(line.item[line.token])}"
    return ph.apply(
        {
            "Item": line.item,
            "ConditionExpression": condition,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    )


def _ours(line: _Line, stored: dict[str, Any] | None) -> bool:
    """Whether a refused line's stored item is its own earlier write (a resumed run).

    By the line's token; with no token attribute, by content: the item is exactly the line's.
    """
    if line.token is None:
        return Sent(line.item, (), whole=True).shows(stored)
    return stored is not None and stored.get(line.token) == line.item[line.token]


def _write_batch(conn: Connection, batch: list[_Line], overwrite: bool, rate: _Rate) -> _Outcome:
    outcome = _Outcome()
    pending = list(batch)
    delay = 0.05
    while pending:
        rate.wait(len(pending))
        actions = [
            {"Put": {**_put(line, overwrite), "TableName": conn.table_name}} for line in pending
        ]
        started = time.monotonic()
        try:
            conn.send("TransactWriteItems", {"TransactItems": actions})
        except TransactionCanceledError as exc:
            reasons = (exc.response or {}).get("CancellationReasons", [])
            refused = [
                (line, reason)
                for line, reason in zip(pending, reasons, strict=False)
                if reason.get("Code") == "ConditionalCheckFailed"
            ]
            codes = {r.get("Code") for r in reasons} - {None, "None"}
            if codes - _RETRIED_CODES:
                raise  # e.g. ValidationError: the same batch would be refused again
            if not refused:  # a conflict with another transaction, or throttled: again
                if any(r.get("Code") == "ThrottlingError" for r in reasons):
                    rate.throttled(len(pending) / max(time.monotonic() - started, 1e-3))
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            for line, reason in refused:
                if _ours(line, reason.get("Item")):
                    outcome.resumed += 1
                else:
                    outcome.skipped += 1
            gone = {id(line) for line, _ in refused}
            pending = [line for line in pending if id(line) not in gone]
            continue
        except ThrottledError:
            rate.throttled(len(pending) / max(time.monotonic() - started, 1e-3))
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
        except ServiceError as exc:
            if not exc.maybe_applied:
                raise
            # Unknown outcome: sent again, our own tokens say which items were stored.
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
        outcome.written += len(pending)
        pending = []
    rate.settled()
    return outcome


def _batches(
    source: Path, checkpoint: _Checkpoint, batch_size: int, result: ImportResult, strict: bool
) -> Iterator[tuple[list[_Line], int]]:
    """(batch, the line after its last) for every batch after the checkpoint's line."""
    start = int(checkpoint.state["next_line"])
    batch: list[_Line] = []
    size = 0
    keys: set[tuple[str, str]] = set()
    number = 0
    with open(source, encoding="utf-8") as handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            result.lines += 1
            if number < start:
                continue
            parsed = _parse(number, text, checkpoint.token(number))
            if isinstance(parsed, ImportProblem):
                if strict:
                    if batch:  # everything before the bad line is written
                        yield batch, number
                        batch = []
                    raise ImportLineError(
                        f"Cannot import {source.name!r}: {parsed}; nothing after it was "
                        "written (without strict, bad lines are reported and skipped).",
                        line=parsed.line,
                        model=parsed.model,
                    )
                result.invalid.append(parsed)
                result.invalid_count += 1
                continue
            key = (parsed.item["pk"]["S"], parsed.item["sk"]["S"])
            if batch and (
                len(batch) >= batch_size or size + parsed.size > _BATCH_BYTES or key in keys
            ):
                yield batch, number
                batch, size, keys = [], 0, set()
            batch.append(parsed)
            size += parsed.size
            keys.add(key)
    yield batch, number + 1


def import_items(
    source: str | Path,
    *,
    strict: bool = False,
    overwrite: bool = False,
    dry_run: bool = False,
    checkpoint: str | Path | None = None,
    batch_size: int = TRANSACT_ITEMS_LIMIT,
    workers: int = 4,
    max_rate: float | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Validate and write the items of a JSON Lines file written by `export_items()`.

    Args:
        source: The file.
        strict: Stop at the first bad line (`ImportLineError`, with its number); every line
            before it is written and the checkpoint points at it. Without it bad lines are
            reported in `invalid`.
        overwrite: Replace an item already stored under the same key (default: leave it
            unchanged and count it in `skipped`).
        dry_run: Validate every line and count; write nothing, touch no checkpoint.
        checkpoint: The checkpoint file (default `<source>.checkpoint`): when it exists the
            import resumes after the lines it records; removed when the import completes.
        batch_size: Items per TransactWriteItems, 1 to 100 (default 100: each
            transaction has a fixed cost, DynamoDB Local's about 25 items' worth).
        workers: Batches in flight at once.
        max_rate: At most this many items per second (None: as fast as DynamoDB accepts;
            throttling lowers the rate either way).
        progress: Called with the number of lines each settled batch covered.

    DynamoDB: TransactWriteItems (conditional Puts), none with `dry_run`.
    """
    if not 1 <= batch_size <= TRANSACT_ITEMS_LIMIT:
        raise ConfigurationError(
            f"Cannot import in batches of {batch_size}: use 1 to {TRANSACT_ITEMS_LIMIT}.",
            code="config",
        )
    path = Path(source)
    marker = None if dry_run else Path(checkpoint or f"{path}.checkpoint")
    state = _Checkpoint(marker, path)
    result = ImportResult(dry_run=dry_run)
    rate = _Rate(max_rate)
    conn = get_connection()  # here: worker threads do not see a using() block
    window: list[tuple[Future[_Outcome], int, int]] = []
    base_invalid = int(state.state["invalid"])

    def settle_first() -> None:
        future, after, covered = window[0]
        outcome = future.result()  # a failed batch stays: the checkpoint stops before it
        window.pop(0)
        for name in ("written", "skipped", "resumed"):
            state.state[name] += getattr(outcome, name)
        state.state["next_line"] = after
        state.state["invalid"] = base_invalid + result.invalid_count
        state.save()
        if progress is not None:
            progress(covered)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        counted = result.lines
        try:
            for batch, after in _batches(path, state, batch_size, result, strict):
                covered, counted = result.lines - counted, result.lines
                if dry_run:
                    state.state["written"] += len(batch)
                    if progress is not None:
                        progress(covered)
                    continue
                window.append(
                    (pool.submit(_write_batch, conn, batch, overwrite, rate), after, covered)
                )
                while len(window) > max(1, workers) or (window and window[0][0].done()):
                    settle_first()
        finally:
            for entry in window:
                entry[0].exception()  # wait for every batch in flight
            while window and window[0][0].exception() is None:
                settle_first()
    if window:
        settle_first()  # raises the first failed batch's error
    result.written = int(state.state["written"])
    result.skipped = int(state.state["skipped"])
    result.resumed = int(state.state["resumed"])
    if not dry_run:
        result.invalid_count = int(state.state["invalid"])
    if not dry_run:
        state.finish()
    return result
