"""`dynorm backfill --index NAME`: (re)write one index's key attributes on every item.

After an index is added, or its key template changed, the items stored before have no (or
stale) index keys: DynamoDB indexes only what is stored. Backfill scans the items of the
models that declare the index (an explicit Scan, filtered on their entity types), computes
each item's index keys from its fields with today's templates, and for each item whose
stored keys differ sends one UpdateItem of only those two attributes, conditional on the
stored version (and write token): a concurrent writer is never overwritten. An item changed
meanwhile is read again and reconsidered; one deleted meanwhile is left deleted.

Writing nothing the item already has makes a run idempotent: run again (or resumed from a
checkpoint, which records each scan segment's position after every page) it skips every
item already right.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._config import get_connection
from .._connection import Connection
from .._constants import TYPE_ATTR
from .._options import Options
from .._table import _chosen
from ..exceptions import ConditionFailedError, ConfigurationError
from ..models import Model
from ..query.placeholders import Placeholders
from ._import import _Rate
from ._scan_run import ScanRun, check_segments

__all__ = ["BackfillResult", "backfill_index"]


@dataclass
class BackfillResult:
    """What `backfill_index()` did (counts include an interrupted run's, when resumed).

    Attributes:
        changed: Items whose index keys were written.
        skipped: Items whose index keys were already right.
        retried: Items changed (or deleted) by another writer between the read and the
            write, read again and reconsidered.
        invalid: Items their model refuses (left unchanged), by model name.
    """

    changed: int = 0
    skipped: int = 0
    retried: int = 0
    invalid: dict[str, int] = field(default_factory=dict)


def _affected(index: str, models: Iterable[type[Model]] | None) -> list[type[Model]]:
    chosen = _chosen(models)
    affected = [m for m in chosen if index in m._meta.indexes]
    if not affected:
        known = sorted({name for m in chosen for name in m._meta.indexes})
        raise ConfigurationError(
            f"Cannot backfill index {index!r}: no model declares it; the models' indexes "
            f"are: {', '.join(known) or 'none'}.",
            code="unknown-index",
        )
    return affected


class _Backfill(ScanRun[BackfillResult]):
    def __init__(
        self,
        conn: Connection,
        index: str,
        models: list[type[Model]],
        rate: _Rate,
        checkpoint: Path | None,
        segments: int,
    ) -> None:
        super().__init__(
            conn,
            rate,
            checkpoint,
            segments,
            {"index": index, "segments": segments},
            BackfillResult(),
            f"Cannot resume the backfill from checkpoint {str(checkpoint)!r}: it belongs to "
            "another index or segment count; delete it to start over.",
        )
        self.index = index
        self.by_type = {m._meta.type_name: m for m in models}

    def item(self, item: dict[str, Any], page: BackfillResult) -> None:
        """Bring one stored item's index keys up to date (reading it again on a conflict)."""
        current: dict[str, Any] | None = item
        while current is not None:
            model = self.by_type.get(current.get(TYPE_ATTR, {}).get("S", ""))
            if model is None:
                return
            meta = model._meta
            try:
                obj = model.from_item(current)
                keys = meta.index_keys(obj.__dict__)
            except (ValidationError, ValueError, KeyError, TypeError):
                page.invalid[meta.model_name] = page.invalid.get(meta.model_name, 0) + 1
                return
            spec = meta.indexes[self.index]
            wanted = {
                a: None if (text := keys[a]) is None else meta.layout.av(a, text)
                for a in spec.writes
            }
            stored = {a: current.get(a) for a in wanted}
            if stored == wanted:
                page.skipped += 1
                return
            self.rate.wait(1)
            try:
                self.conn.send("UpdateItem", self._update(meta, current, wanted))
            except ConditionFailedError:
                page.retried += 1
                current = self._reread(meta, current)
                continue
            page.changed += 1
            return

    def _update(
        self, meta: Options, item: dict[str, Any], wanted: dict[str, dict[str, str] | None]
    ) -> dict[str, Any]:
        ph = Placeholders()
        sets = [f"{ph.name(a)} = {ph.value(v)}" for a, v in wanted.items() if v]
        removes = [ph.name(a) for a, v in wanted.items() if not v]
        update = " ".join(
            part
            for part in (
                "SET " + ", ".join(sets) if sets else "",
                "REMOVE " + ", ".join(removes) if removes else "",
            )
            if part
        )
        layout = meta.layout
        if layout.version is None:
            condition = f"attribute_exists({ph.name(layout.pk)})"
        else:
            v = ph.name(layout.version)
            version = item.get(layout.version)  # absent on an item another tool wrote
            condition = f"{v} = {ph.value(version)}" if version else f"attribute_not_exists({v})"
        if layout.token is not None:  # unchanged since read: the version and the write token
            token = item.get(layout.token)
            w = ph.name(layout.token)
            condition += (
                f" AND {w} = {ph.value(token)}" if token else f" AND attribute_not_exists({w})"
            )
        return ph.apply(
            {
                "TableName": self.conn.table_name,
                "Key": {a: item[a] for a in layout.key_attrs},
                "UpdateExpression": update,
                "ConditionExpression": condition,
            }
        )

    def _reread(self, meta: Options, item: dict[str, Any]) -> dict[str, Any] | None:
        return self.reread({a: item[a] for a in meta.layout.key_attrs})


def backfill_index(
    index: str,
    models: Iterable[type[Model]] | None = None,
    *,
    segments: int = 4,
    max_rate: float | None = None,
    checkpoint: str | Path | None = None,
    page_size: int = 100,
    progress: Any = None,
) -> BackfillResult:
    """Write the index `index`'s key attributes on every item of the models declaring it.

    Args:
        index: The index name (`Index("by_status", ...)`).
        models: The models to consider (default every registered one); those declaring
            `index` are backfilled.
        segments: Parallel scan segments (threads), 1 to 64.
        max_rate: At most this many UpdateItems per second (None: unlimited; throttling
            lowers the rate either way).
        checkpoint: A file recording each segment's scan position after every page: a run
            killed midway, started again with the same file, resumes there. Removed when
            the backfill completes.
        page_size: Items read per Scan page (the checkpoint's step).
        progress: Called with the number of items of each page considered.

    Returns:
        Counts of items changed, skipped (already right), retried (changed by another
        writer meanwhile) and invalid (refused by their model; left unchanged).

    DynamoDB: Scan (filtered on `_type`, consistent), UpdateItem of the two index key
    attributes (conditional on `version` and `_wtok`), GetItem after a refused condition.
    """
    check_segments(segments, "backfill")
    affected = _affected(index, models)
    conn = get_connection()  # here: worker threads do not see a using() block
    path = None if checkpoint is None else Path(checkpoint)
    run = _Backfill(conn, index, affected, _Rate(max_rate), path, segments)
    return run.run(affected, page_size, progress)
