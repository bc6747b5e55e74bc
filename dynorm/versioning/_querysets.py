"""The QuerySet and Manager of versioned models: `get(version=)`, guarded bulk deletes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, TypeVar

from .._constants import PK, SK, VERSION_ATTR
from .._executor import execute
from .._transaction_context import current_transaction
from ..exceptions import QueryError, VersionConflictError
from ..models import Model
from ..query._compile_write import Delete, StillMatches, compile_write
from ..query.lookups import _coerce
from ..query.queryset import Manager, QuerySet
from ._history_reads import read_version
from ._writes import (
    _MAX_DELETE_ATTEMPTS,
    _delete_writes,
    _nothing,
    _partly_deleted,
    _Refused,
    _refused,
    _send_older,
)

V = TypeVar("V", bound=Model)


class VersionedQuerySet(QuerySet[V]):
    """The QuerySet of versioned models: `get(<key>, version=n)` reads one version."""

    def get(self, /, *args: Any, version: int | None = None, **lookups: Any) -> V:
        """Return the current object, or version `version` of it when given.

        Raises:
            DoesNotExist: No such object (or no such version).
        """
        if version is None:
            return super().get(*args, **lookups)
        meta = self.model._meta
        missing = sorted(f for f in meta.key_fields if f not in lookups)
        if args or missing or set(lookups) - meta.key_fields:
            raise QueryError(
                f"Cannot get a version of {meta.model_name} without exactly its key fields "
                f"({', '.join(sorted(meta.key_fields))}).",
                code="bad-query",
            )
        pk, sk = meta.primary_key({f: _coerce(meta, f, v) for f, v in lookups.items()})
        return read_version(self.model, pk, sk, version, self._state.table)

    def update(self, /, **values: Any) -> int:
        """Refused: versioned objects change through save(), which writes their history."""
        raise QueryError(
            f"Cannot update {self.model.__name__} objects in bulk: each change must write a "
            "history item. Load each object, change it and save() it.",
            code="bad-query",
        )

    def delete(self) -> int:
        """Delete the matching objects and all their history; return how many objects.

        Each object is deleted like `obj.delete()`, conditional on the version read and on
        the filters. One changed since it was read is deleted if it still matches (its new
        version is taken from the refusal); one that no longer matches, or is gone, is left
        alone and not counted.

        DynamoDB: the Query of the matches, then per object one consistent Query of its
        history keys and one TransactWriteItems (several for a history over 99 versions).

        Raises:
            VersionConflictError: A history over 99 versions was partly deleted when the
                object stopped matching; the message says how many oldest versions are gone.
        """
        self._refuse_sliced("delete")
        if not self._state.where and not self._state.explicit_all:
            return super().delete()  # raises: an unfiltered delete needs .all()
        plan = self._plan(dataclasses.replace(self._state, projection=()))
        matches = [
            (item[PK]["S"], item[SK]["S"], int(item[VERSION_ATTR]["N"]))
            for item, _ in self._raw(plan)
        ]
        return sum(self._delete_match(pk, sk, version) for pk, sk, version in matches)

    def _delete_match(self, pk: str, sk: str, version: int) -> bool:
        """Delete one matched object if it still matches; True if this call deleted it."""
        model = self.model
        name = model._meta.model_name
        done = 0
        for _ in range(_MAX_DELETE_ATTEMPTS):
            expect = StillMatches(self._state, version)
            current = compile_write(model._meta, Delete((pk, sk)), expect)
            ops = _delete_writes(model, current, _refused, _nothing, self._state.table)
            tx = current_transaction()
            try:
                if len(ops) > 1:
                    done += _send_older(ops, name)
                    continue  # list what is left: normally one last step
                if tx is not None:
                    tx.add(ops[0])
                    return True  # committed (or not at all) with the block
                execute(ops[0])
                return True
            except _Refused as refused:
                stored = refused.stored_version
                if stored is None or stored == version:
                    if done:  # it no longer matches, but its oldest versions are gone
                        raise _partly_deleted(name, version, stored, done) from refused
                    return False  # gone, or no longer matches the filters
                version = stored  # changed since the read: delete it if it still matches
        raise VersionConflictError(
            f"Cannot delete {name}: an object kept changing during {_MAX_DELETE_ATTEMPTS} "
            "attempts; try again.",
            model=name,
            expected_version=version,
        )

    def bulk_create(self, objs: Iterable[V], *, overwrite: bool = False) -> list[V]:
        """Refused: use create() / save(), which write the first history item atomically."""
        raise QueryError(
            f"Cannot bulk_create {self.model.__name__}: a versioned object and its first "
            "history item are written in one transaction; use create() for each.",
            code="bad-query",
        )


class _VersionedManager(Manager[VersionedQuerySet[Any]]):
    """`VersionedModel.objects`: typed per model (`Doc.objects` is a `VersionedQuerySet[Doc]`)."""

    def __init__(self, queryset_class: type[VersionedQuerySet[Any]] | None = None) -> None:
        super().__init__(queryset_class or VersionedQuerySet)

    # Binds the model type from the owner, which Manager[QS] cannot do for a generic QS:
    # this manager is only ever set on versioned models.
    def __get__(self, instance: None, owner: type[V]) -> VersionedQuerySet[V]:
        qs: VersionedQuerySet[V] = super().__get__(instance, owner)
        return qs
