"""A resumable parallel Scan, shared by `backfill_index()` and `migrate()`.

A run scans the table in `segments` parallel segments, hands every item to `item()` (which
the command defines) and counts what it did in a result dataclass (int counts and an
`invalid` dict by model name). After every page it saves, under one lock, the page's counts
and the segment's position after it into the checkpoint file, so a run killed midway and
started again with the same file resumes where each segment stopped and counts what the
earlier run did. Throttled pages are retried with the adaptive rate lowered.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._connection import Connection
from .._constants import TYPE_ATTR
from ..exceptions import ConfigurationError, ThrottledError
from ..query.placeholders import Placeholders
from ._import import _Rate

if TYPE_CHECKING:
    from ..models import Model

__all__ = ["ScanRun", "check_segments"]


def check_segments(segments: int, doing: str) -> None:
    """Refuse a segment count DynamoDB's parallel Scan would not take usefully."""
    if not 1 <= segments <= 64:
        raise ConfigurationError(
            f"Cannot {doing} with {segments} scan segments: use 1 to 64.", code="config"
        )

R = TypeVar("R")


def _counts(result: Any) -> dict[str, Any]:
    return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}


def _add(into: Any, page: Any) -> None:
    """Add one page's counts into a run's result (ints summed, dicts merged by key)."""
    for f in dataclasses.fields(into):
        mine, theirs = getattr(into, f.name), getattr(page, f.name)
        if isinstance(mine, dict):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n
        else:
            setattr(into, f.name, mine + theirs)


class ScanRun(Generic[R]):
    """The segments, checkpoint and counts of one run; `item()` is the command's own.

    Args:
        conn: The table's connection.
        rate: The adaptive write rate (lowered by throttling).
        checkpoint: The checkpoint file, or None (a run that cannot resume).
        segments: Parallel scan segments.
        what: What the run is of (saved in the checkpoint; a checkpoint of another run is
            refused), e.g. `{"index": "by_status", "segments": 4}`.
        result: The empty result dataclass; restored from the checkpoint when it exists.
        refusal: The sentence refusing a checkpoint that belongs to another run.
    """

    def __init__(
        self,
        conn: Connection,
        rate: _Rate,
        checkpoint: Path | None,
        segments: int,
        what: Mapping[str, Any],
        result: R,
        refusal: str,
    ) -> None:
        self.conn = conn
        self.rate = rate
        self.lock = threading.Lock()
        self.checkpoint = checkpoint
        self.segments = segments
        self.what = dict(what)
        self.result = result
        self.positions: dict[str, Any] = {}
        if checkpoint is not None and checkpoint.exists():
            saved = json.loads(checkpoint.read_text(encoding="utf-8"))
            if {k: saved.get(k) for k in self.what} != self.what:
                raise ConfigurationError(refusal, code="config")
            self.positions = dict(saved["positions"])
            for name, value in saved["counts"].items():
                setattr(self.result, name, dict(value) if isinstance(value, dict) else int(value))

    @property
    def saves(self) -> bool:
        """Whether pages are checkpointed (a dry run overrides this: it writes nothing)."""
        return self.checkpoint is not None

    def save(self) -> None:
        """Write the positions and counts atomically (a temporary file, then a rename)."""
        if self.checkpoint is None or not self.saves:
            return
        state = {**self.what, "positions": self.positions, "counts": _counts(self.result)}
        tmp = self.checkpoint.with_name(self.checkpoint.name + ".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.checkpoint)

    def new_counts(self) -> R:
        """An empty result for one page's counts."""
        return type(self.result)()

    def item(self, item: dict[str, Any], page: R) -> None:
        """Handle one scanned item, counting what was done in `page` (the command's own)."""
        raise NotImplementedError

    def reread(self, key: dict[str, Any]) -> dict[str, Any] | None:
        """The item at `key` now (consistent), or None when it was deleted."""
        response = self.conn.send(
            "GetItem", {"TableName": self.conn.table_name, "Key": key, "ConsistentRead": True}
        )
        found: dict[str, Any] | None = response.get("Item")
        return found

    def segment(self, number: int, params: dict[str, Any], progress: Any) -> None:
        """Scan one segment from its saved position to its end."""
        position = self.positions.get(str(number))
        if position == "done":
            return
        request = {**params, "Segment": number, "TotalSegments": self.segments}
        if position is not None:
            request["ExclusiveStartKey"] = position
        delay = 0.05
        while True:
            try:
                page = self.conn.send("Scan", request)
            except ThrottledError:
                self.rate.throttled(1.0)
                threading.Event().wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            items = page.get("Items", [])
            counts = self.new_counts()
            for item in items:
                self.item(item, counts)
            self.rate.settled()
            last = page.get("LastEvaluatedKey")
            with self.lock:  # a page's counts and the position after it, saved together
                _add(self.result, counts)
                self.positions[str(number)] = last if last else "done"
                self.save()
            if progress is not None and items:
                progress(len(items))
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def run(self, models: list[type[Model]], page_size: int, progress: Any) -> R:
        """Scan the items of `models` (filtered on their entity types) in every segment.

        The checkpoint is removed once every segment is done (a dry run keeps it).
        """
        ph = Placeholders()
        values = ", ".join(ph.value({"S": m._meta.type_name}) for m in models)
        params = ph.apply(
            {
                "TableName": self.conn.table_name,
                "ConsistentRead": True,
                "Limit": page_size,
                "FilterExpression": f"{ph.name(TYPE_ATTR)} IN ({values})",
            }
        )
        with ThreadPoolExecutor(self.segments) as pool:
            futures = [pool.submit(self.segment, n, params, progress) for n in range(self.segments)]
            for future in futures:
                future.result()
        if self.saves and self.checkpoint is not None and self.checkpoint.exists():
            self.checkpoint.unlink()
        return self.result
