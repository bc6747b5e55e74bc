"""Repositories: a model's CRUD behind input and patch schemas, shaped for web APIs.

```python
repo = Repository(Report, create=ReportIn, update=ReportPatch)
report = repo.create({"title": "Q3", ...})          # validated by ReportIn, then saved
repo.update(report.id, {"title": "Q4"}, expected_version=report.version)
page = repo.list(size=20, cursor=None, owner="u1")    # a Page: items and next_cursor
```

A read-only repository (`read_only=True`, or `ReadOnlyRepository`) reads through
`objects.read_only()`: its writes, and the writes of the objects it returns, raise
`ReadOnlyError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from ..exceptions import QueryError, VersionConflictError
from ..models import Model
from ..query.pagination import Page
from ..query.queryset import QuerySet

__all__ = ["ReadOnlyRepository", "Repository"]

M = TypeVar("M", bound=Model)


class Repository(Generic[M]):
    """Create, get, update, delete and list one model's objects.

    Args:
        model: The model.
        create: The schema `create()` validates its input with (None: the model's fields).
        update: The schema `update()` validates patches with; only the fields a patch sets
            are changed (None: any of the model's non-key fields).
        read_only: Every write raises `ReadOnlyError` (see `ReadOnlyRepository`).
    """

    def __init__(
        self,
        model: type[M],
        *,
        create: type[BaseModel] | None = None,
        update: type[BaseModel] | None = None,
        read_only: bool = False,
    ) -> None:
        self.model = model
        self.create_schema = create
        self.update_schema = update
        self.read_only = read_only

    @property
    def objects(self) -> QuerySet[M]:
        """The QuerySet the repository reads through (read-only for a read-only one)."""
        qs: QuerySet[M] = self.model.objects.all()
        return qs.read_only() if self.read_only else qs

    def _key(self, key: Any) -> dict[str, Any]:
        meta = self.model._meta
        if isinstance(key, Mapping):
            return dict(key)
        if len(meta.key_fields) == 1:
            return {next(iter(meta.key_fields)): key}
        raise QueryError(
            f"Cannot use a single value as the key of {meta.model_name}: its key has the fields "
            f"{', '.join(sorted(meta.key_fields))}; pass a mapping of them.",
            code="bad-query",
        )

    @staticmethod
    def _values(
        schema: type[BaseModel] | None, data: BaseModel | Mapping[str, Any]
    ) -> dict[str, Any]:
        if schema is not None:
            data = data if isinstance(data, schema) else schema.model_validate(data)
        if isinstance(data, BaseModel):
            return data.model_dump(exclude_unset=True)
        return dict(data)

    def create(self, data: BaseModel | Mapping[str, Any]) -> M:
        """Validate `data` with the create schema, build the object and save it (a create).

        Fields the input did not set take the model's defaults.

        Raises:
            pydantic.ValidationError: The input does not validate.
            ItemExistsError: An object with the same key exists.
            ReadOnlyError: A read-only repository.
        """
        if self.read_only:
            return self.objects.create()  # raises ReadOnlyError
        obj = self.model(**self._values(self.create_schema, data))
        obj.save()
        return obj

    def get(self, key: Any) -> M:
        """The object with this key (a value for a one-field key, else a mapping); consistent.

        Raises:
            DoesNotExist: No object has that key.
        """
        return self.objects.consistent().get(**self._key(key))

    def _expect(self, obj: M, expected_version: int | None, action: str) -> None:
        if expected_version is not None and obj.version != expected_version:
            name = self.model._meta.model_name
            raise VersionConflictError(
                f"Cannot {action} {name}: the stored version is {obj.version}, not the expected "
                f"version {expected_version}. Reload it and apply the change again.",
                model=name,
                expected_version=expected_version,
                current_version=obj.version,
            )

    def update(
        self,
        key: Any,
        patch: BaseModel | Mapping[str, Any],
        *,
        expected_version: int | None = None,
    ) -> M:
        """Apply the fields `patch` sets, conditional on the version (optimistic locking).

        DynamoDB: a consistent GetItem, then one UpdateItem of those fields, conditional on the
        version read (which must be `expected_version` when given).

        Raises:
            DoesNotExist: No object has that key.
            VersionConflictError: The stored version is not `expected_version`, or the object
                changed between the read and the write.
            QueryError: The patch changes a key field.
            ReadOnlyError: A read-only repository.
        """
        obj = self.get(key)
        changes = self._values(self.update_schema, patch)
        keys = sorted(set(changes) & self.model._meta.key_fields)
        if keys:
            raise QueryError(
                f"Cannot change the key field(s) {', '.join(keys)} of {self.model._meta.model_name}"
                " through a patch; create a new object instead.",
                code="bad-query",
            )
        self._expect(obj, expected_version, "update")
        if not changes:
            return obj
        for name, value in changes.items():
            setattr(obj, name, value)
        obj.save(update_fields=list(changes))
        return obj

    def delete(self, key: Any, *, expected_version: int | None = None) -> None:
        """Delete the object with this key, conditional on the version read.

        Raises:
            DoesNotExist: No object has that key.
            VersionConflictError: The stored version is not `expected_version`, or it changed.
            ReadOnlyError: A read-only repository.
        """
        obj = self.get(key)
        self._expect(obj, expected_version, "delete")
        obj.delete()

    def list(
        self, *, size: int = 50, cursor: str | None = None, scan: bool = False, **filters: Any
    ) -> Page[M]:
        """One page of the objects matching `filters`: `items` and the signed `next_cursor`.

        The filters must name a key (or index) the query can use, as for any QuerySet;
        `scan=True` asks for a Scan explicitly.

        Raises:
            QueryError: The filters would need a scan and `scan=True` was not given.
            InvalidCursorError: The cursor was tampered with or belongs to another query.
        """
        qs = self.objects.filter(**filters) if filters else self.objects
        if scan:
            qs = qs.scan()
        return qs.page(size, cursor)


class ReadOnlyRepository(Repository[M]):
    """A `Repository` whose writes raise `ReadOnlyError` (reads as `objects.read_only()`)."""

    def __init__(
        self,
        model: type[M],
        *,
        create: type[BaseModel] | None = None,
        update: type[BaseModel] | None = None,
    ) -> None:
        super().__init__(model, create=create, update=update, read_only=True)
