"""`AuditEntry`: the entries audited models (`Meta.audit = True`) write with every change.

Each write of an audited object puts one entry in the object's log, one in the day's log
(UTC) and, inside a `dynorm.actor(...)` block, one in the actor's log, in the same
transaction as the object. Read them newest first:

- `order.audit_log()` (or `AuditEntry.objects.for_object(order)`): one Query;
- `AuditEntry.objects.by_actor("user-42")`: one Query;
- `AuditEntry.objects.on_day(date)` and `.between(start, end)`: one Query per day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

from typing_extensions import Self

from ._audit import set_entry_model
from ._config import table_name_for
from ._exactly_once import instance_table
from .models import Model
from .query.queryset import QuerySet

__all__ = ["AuditEntry", "AuditQuerySet"]


class AuditQuerySet(QuerySet["AuditEntry"]):
    """`AuditEntry.objects`: the logs by object, actor and day, newest first."""

    def for_object(self, obj: Model) -> Self:
        """Every entry of one object (its current key), newest first."""
        meta = obj._meta
        pk, sk = obj._loaded_key or meta.primary_key(obj.__dict__)
        qs = self.filter(log=f"object#{meta.type_name}#{pk}#{sk}").reverse()
        # The entries are in the object's table (written in its transaction).
        return qs.using(table_name_for(type(obj), instance_table(obj)))

    def by_actor(self, actor: str) -> Self:
        """Every entry written inside `dynorm.actor(actor)` blocks, newest first."""
        return self.filter(log=f"actor#{actor}").reverse()

    def on_day(self, day: date) -> Self:
        """Every entry of one UTC day, newest first."""
        return self.filter(log=f"day#{day.isoformat()}").reverse()

    def between(self, start: datetime, end: datetime) -> list[AuditEntry]:
        """Every entry written in [start, end), newest first: one Query per UTC day."""
        start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
        out: list[AuditEntry] = []
        day = end.date()
        while day >= start.date():
            out += [e for e in self.on_day(day).filter(at__gte=start, at__lt=end)]
            day -= timedelta(days=1)
        return out


class AuditEntry(Model):
    """One audit entry: what changed in an object, who changed it and when.

    `changes` maps each changed field to `[old, new]` as stored (numbers as Decimal,
    datetimes as their ISO text); a create has old None, a delete new None;
    `Meta.audit_exclude` fields never appear. `object_version` is the version the write
    stored (a delete: the version deleted).
    """

    log: str
    at: datetime
    entry_id: str
    entity: str
    object_pk: str
    object_sk: str
    action: Literal["create", "update", "delete"]
    object_version: int
    actor: str | None = None
    changes: dict[str, list[Any]] = {}

    objects = AuditQuerySet.as_manager()

    class Meta:
        """One partition per log (object, actor, day); entries sorted by time."""

        type_name = "dynorm_audit"
        pk = "_AUDIT#{log}"
        sk = "AT#{at}#{entry_id}"


set_entry_model(AuditEntry)
