"""`get_or_create()` and `update_or_create()`: reads and conditional creates that race safely."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .._constants import VERSION_ATTR
from .._exactly_once import bind
from ..exceptions import ConditionFailedError, QueryError, VersionConflictError

if TYPE_CHECKING:
    from ..models import Model
    from .queryset import QuerySet

__all__ = ["get_or_create", "update_or_create"]

M = TypeVar("M", bound="Model")

#: How often update_or_create reads and writes again after a concurrent change.
MAX_ATTEMPTS = 5


def _values_to_create(
    qs: QuerySet[M], action: str, lookups: Mapping[str, Any], defaults: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Check the arguments of get_or_create/update_or_create; the values to create with."""
    meta = qs.model._meta
    for where, names in (("lookups", list(lookups)), ("defaults", list(defaults or ()))):
        if any(name.split("__")[0] == VERSION_ATTR for name in names):
            raise QueryError(
                f"Cannot pass version in the {where} of {meta.model_name}.objects."
                f"{action}(): dynorm sets version itself (optimistic locking), so it would "
                "never match or would be overwritten. Leave it out; to change an object "
                "only while it is at a known version, get() it, change it and save().",
                code="bad-query",
            )
    for name in defaults or ():
        meta.check_field(name, "set")
    return {**{k: v for k, v in lookups.items() if "__" not in k}, **(defaults or {})}


def _create_if_absent(qs: QuerySet[M], values: Mapping[str, Any]) -> M | ConditionFailedError:
    """Create the object (PutItem, attribute_not_exists); the refusal if the key is taken."""
    obj = qs.model(**values)
    bind(obj, qs._binding())  # created in the QuerySet's table
    try:
        obj.save()
    except VersionConflictError:
        raise
    except ConditionFailedError as exc:
        return exc
    return obj


def get_or_create(
    qs: QuerySet[M], defaults: Mapping[str, Any] | None, lookups: Mapping[str, Any]
) -> tuple[M, bool]:
    """`qs.get_or_create(defaults, **lookups)` (documented on the QuerySet method)."""
    values = _values_to_create(qs, "get_or_create", lookups, defaults)
    try:
        return qs.get(**lookups), False
    except qs.model.DoesNotExist:
        pass
    created = _create_if_absent(qs, values)
    if isinstance(created, ConditionFailedError):
        # Another writer's item has that key: read it (an index cannot read consistently).
        reader = qs.consistent() if not qs._state.index else qs
        try:
            return reader.get(**lookups), False
        except qs.model.DoesNotExist:
            raise created from None  # an item has the key but does not match the lookups
    return created, True


def update_or_create(
    qs: QuerySet[M], defaults: Mapping[str, Any] | None, lookups: Mapping[str, Any]
) -> tuple[M, bool]:
    """`qs.update_or_create(defaults, **lookups)` (documented on the QuerySet method)."""
    values = _values_to_create(qs, "update_or_create", lookups, defaults)
    taken: ConditionFailedError | None = None
    for _ in range(MAX_ATTEMPTS):
        try:
            obj = qs.consistent().get(**lookups) if not qs._state.index else qs.get(**lookups)
        except qs.model.DoesNotExist:
            if taken is not None:
                raise taken from None  # an item has the key but does not match the lookups
            created = _create_if_absent(qs, values)
            if isinstance(created, ConditionFailedError):
                taken = created
                continue  # created concurrently: read it and update it
            return created, True
        for name, value in (defaults or {}).items():
            setattr(obj, name, value)
        try:
            obj.save()
        except VersionConflictError:
            continue
        return obj, False
    raise VersionConflictError(
        f"Cannot update_or_create {qs.model._meta.model_name}: the item kept changing "
        f"during {MAX_ATTEMPTS} attempts; try again.",
        model=qs.model._meta.model_name,
        expected_version=0,
    )
