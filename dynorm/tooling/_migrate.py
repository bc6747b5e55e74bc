"""`dynorm migrate`: rewrite every item stored under an older `Meta.schema_version`.

Reads upgrade older items on the fly (`@Model.migration`), so migrating is never required
for correctness; it makes the table current so that the upgrade functions can be deleted
one day, partial writes (`update()`) work on every item again, and other readers of the
table (analytics, other services) see one shape. It scans the items of the models that
declare a schema version (an explicit Scan, filtered on their entity types: the command's
purpose), upgrades and validates each older item through its model, and writes it whole with
one PutItem conditional on the stored version and write token: a concurrent writer is never
overwritten. An item changed meanwhile is read again and reconsidered (it may have been
saved whole by new code, and be current already); one deleted meanwhile is left deleted.

Writing only items below the current version makes a run idempotent: run again (or resumed
from a checkpoint, which records each scan segment's position after every page) it writes
nothing twice. The rewrite keeps every field value the upgrade produced (UpdatedAt fields
included), adds one to the version and stores a new write token; it sends no signals and
writes no companion items (audit entries, unique guards, counters).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._config import get_connection
from .._connection import Connection
from .._constants import PK, SK, TYPE_ATTR, VERSION_ATTR
from .._exactly_once import new_write_token
from .._layout import Layout
from .._migrations import stored_schema_version
from .._proof import Sent
from .._table import _chosen
from ..exceptions import ConditionFailedError, ConfigurationError, DynormError
from ..models import Model
from ..query._compile_write import model_item
from ..query.placeholders import Placeholders
from ._import import _Rate
from ._scan_run import ScanRun, check_segments

__all__ = ["MigrateResult", "migrate"]

_COUNTS = ("upgraded", "current", "newer", "skipped", "retried")


@dataclass
class MigrateResult:
    """What `migrate()` did (counts include an interrupted run's, when resumed).

    Attributes:
        upgraded: Items rewritten at their model's current schema version (with `dry_run`:
            items that would be).
        current: Items already at the current version (left as they are).
        newer: Items stamped with a version above the code's (left as they are: written
            by newer code; run the migration with that code).
        skipped: Items deleted by another writer between the read and the write.
        retried: Items changed by another writer between the read and the write, read
            again and reconsidered.
        invalid: Items whose upgrade failed or that the model refuses after it (left
            unchanged), by model name.
    """

    upgraded: int = 0
    current: int = 0
    newer: int = 0
    skipped: int = 0
    retried: int = 0
    invalid: dict[str, int] = field(default_factory=dict)

    def add(self, other: MigrateResult) -> None:
        """Add another result's counts to this one."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for model, n in other.invalid.items():
            self.invalid[model] = self.invalid.get(model, 0) + n


def _versioned(models: Iterable[type[Model]] | None) -> list[type[Model]]:
    chosen = _chosen(models)
    versioned = [m for m in chosen if m._meta.migrations is not None]
    if not versioned:
        names = ", ".join(sorted(m.__name__ for m in chosen)) or "none"
        raise ConfigurationError(
            "Cannot migrate: none of the models declares Meta.schema_version (models: "
            f"{names}); add `schema_version = 2` and its @Model.migration functions first.",
            code="config",
        )
    for model in versioned:
        if not model._meta.layout.is_default:
            raise ConfigurationError(
                f"Cannot migrate {model.__name__}: dynorm migrate scans and rewrites items in "
                "dynorm's own layout (pk, sk, _type, version), and this model is mapped onto "
                "a table with names of its own. Its older items are still upgraded on every "
                "read; to rewrite them, load and save() each one (a whole save stores "
                "today's shape), or leave it out with --type.",
                code="config",
            )
        migrations = model._meta.migrations
        assert migrations is not None
        migrations.check()  # a gap in the chain is reported before anything is read
    return versioned


class _Migrate(ScanRun[MigrateResult]):
    def __init__(
        self,
        conn: Connection,
        models: list[type[Model]],
        rate: _Rate,
        checkpoint: Path | None,
        segments: int,
        dry_run: bool,
    ) -> None:
        self.by_type = {m._meta.type_name: m for m in models}
        self.dry_run = dry_run
        super().__init__(
            conn,
            rate,
            checkpoint,
            segments,
            {"migrate": sorted(self.by_type), "segments": segments},
            MigrateResult(),
            f"Cannot resume the migration from checkpoint {str(checkpoint)!r}: it belongs "
            "to other models or another segment count; delete it to start over.",
        )

    @property
    def saves(self) -> bool:
        return self.checkpoint is not None and not self.dry_run

    def item(self, item: dict[str, Any], page: MigrateResult) -> None:
        """Upgrade one stored item, reading it again after a concurrent write."""
        current: dict[str, Any] | None = item
        while current is not None:
            model = self.by_type.get(current.get(TYPE_ATTR, {}).get("S", ""))
            if model is None:
                return
            meta = model._meta
            migrations = meta.migrations
            assert migrations is not None
            version = stored_schema_version(current)
            if version == migrations.current:
                page.current += 1
                return
            if version is None or version > migrations.current:
                page.newer += 1
                return
            token = new_write_token()
            new: dict[str, Any] = {}
            try:
                obj = model.from_item(current)
                new = model_item(meta, {**obj.__dict__, "version": obj.version + 1}, token=token)
                fits = (new[PK], new[SK]) == (current[PK], current[SK])
            except (ValidationError, DynormError, ValueError, KeyError, TypeError):
                fits = False
            if not fits:  # a failed upgrade, or one that would change the key: left as it is
                page.invalid[meta.model_name] = page.invalid.get(meta.model_name, 0) + 1
                return
            if self.dry_run:
                page.upgraded += 1
                return
            self.rate.wait(1)
            try:
                self.conn.send("PutItem", self._put(current, new, meta.layout))
            except ConditionFailedError as exc:
                old = (exc.response or {}).get("Item")
                if _ours(meta.layout, old, new):
                    page.upgraded += 1  # ours: a retry after a lost response
                    return
                page.retried += 1
                current = self._reread(current)
                continue
            page.upgraded += 1
            return
        page.skipped += 1  # deleted meanwhile

    def _put(self, stored: dict[str, Any], item: dict[str, Any], layout: Layout) -> dict[str, Any]:
        ph = Placeholders()
        v = ph.name(VERSION_ATTR)
        version = stored.get(VERSION_ATTR)  # absent on an item another tool wrote
        condition = f"{v} = {ph.value(version)}" if version else f"attribute_not_exists({v})"
        if layout.token is not None:  # unchanged since read: the version and the write token
            token = stored.get(layout.token)
            w = ph.name(layout.token)
            condition += (
                f" AND {w} = {ph.value(token)}" if token else f" AND attribute_not_exists({w})"
            )
        return ph.apply(
            {
                "TableName": self.conn.table_name,
                "Item": item,
                "ConditionExpression": condition,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        )

    def _reread(self, item: dict[str, Any]) -> dict[str, Any] | None:
        return self.reread({PK: item[PK], SK: item[SK]})

def _ours(layout: Layout, old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Whether a refused upgrade's stored item is this very upgrade (a retried PutItem).

    By its write token; with no token attribute, by content: the item is exactly `new`.
    """
    if layout.token is None:
        return Sent(new, (), whole=True).shows(old)
    return old is not None and old.get(layout.token) == new.get(layout.token)


def migrate(
    models: Iterable[type[Model]] | None = None,
    *,
    dry_run: bool = False,
    segments: int = 4,
    max_rate: float | None = None,
    checkpoint: str | Path | None = None,
    page_size: int = 100,
    progress: Any = None,
) -> MigrateResult:
    """Rewrite every item stored under an older schema version at its model's current one.

    Args:
        models: The models to consider (default every registered one); those declaring
            `Meta.schema_version` are migrated.
        dry_run: Read, upgrade and validate every older item, count, write nothing.
        segments: Parallel scan segments (threads), 1 to 64.
        max_rate: At most this many PutItems per second (None: unlimited; throttling lowers
            the rate either way).
        checkpoint: A file recording each segment's scan position after every page: a run
            killed midway, started again with the same file, resumes there. Removed when
            the migration completes.
        page_size: Items read per Scan page (the checkpoint's step).
        progress: Called with the number of items of each page considered.

    Returns:
        Counts of items upgraded, already current, newer than the code, skipped (deleted
        meanwhile), retried (changed by another writer meanwhile) and invalid.

    Raises:
        ConfigurationError: No model declares a schema version, a model's migrations skip
            a version, or the checkpoint belongs to another run.

    DynamoDB: Scan (filtered on `_type`, consistent), PutItem of each older item
    (conditional on `version` and `_wtok`), GetItem after a refused condition.
    """
    check_segments(segments, "migrate")
    versioned = _versioned(models)
    conn = get_connection()  # here: worker threads do not see a using() block
    path = None if checkpoint is None else Path(checkpoint)
    run = _Migrate(conn, versioned, _Rate(max_rate), path, segments, dry_run)
    return run.run(versioned, page_size, progress)
