"""The exception tree for dynorm: every error dynorm raises derives from `DynormError`.

```
DynormError
├── ConfigurationError          a model, index or configuration is defined wrongly (usage error)
│   ├── AbstractModelError      an abstract model was queried or stored (it has no keys)
│   └── TableMismatchError      the live table's keys, GSIs or TTL do not fit the models
├── QueryError                  a query cannot be compiled or would need a scan (usage error)
├── InvalidValueError           a field value cannot be stored in DynamoDB (checked before sending)
│   └── ItemTooLargeError       an item is over DynamoDB's 400 KB limit
├── ObjectDoesNotExist          get() found nothing (per model: `Order.DoesNotExist`)
├── MultipleObjectsReturned     get() found more than one (per model)
├── ConditionFailedError        a conditional write was refused by DynamoDB
│   ├── VersionConflictError    optimistic locking: the stored version is not the loaded one
│   ├── ItemExistsError         a create found an item with the same key (create, bulk_create)
│   └── UniqueViolationError    another object holds the value of a `Meta.unique` constraint
├── TransactionCanceledError    DynamoDB cancelled a transaction (`.reasons` per operation)
├── BatchIncompleteError        a batch still had unprocessed items after every retry
├── ThrottledError              DynamoDB kept throttling after every retry
├── SchemaVersionError          an item's schema version does not fit the code (Meta.schema_version)
├── InvalidCursorError          a pagination cursor was tampered with or belongs to another query
├── ReadOnlyError               a write through a read-only manager, repository or object
├── BlobError                   a blob field (fields.Blob(), stored in S3) cannot be read or written
│   ├── BlobNotLoadedError      an unloaded blob was read where it cannot be loaded
│   ├── BlobIntegrityError      a stored object is corrupted, missing or not this item's
│   └── BlobTooLargeError       a blob value is over its field's max_size
└── ServiceError                any other error DynamoDB or the network reported
    └── WriteOutcomeUnknownError  a write may have been applied, and retrying cannot tell
```

Messages name the model, the field and the fix, and never contain a field value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ._table import TableDifference

__all__ = [
    "AbstractModelError",
    "BatchIncompleteError",
    "BlobError",
    "BlobIntegrityError",
    "BlobNotLoadedError",
    "BlobTooLargeError",
    "ConditionFailedError",
    "ConfigurationError",
    "DynormError",
    "ImportLineError",
    "InvalidCursorError",
    "InvalidValueError",
    "ItemExistsError",
    "ItemTooLargeError",
    "MultipleObjectsReturned",
    "ObjectDoesNotExist",
    "QueryError",
    "ReadOnlyError",
    "SchemaVersionError",
    "ServiceError",
    "TableMismatchError",
    "ThrottledError",
    "TransactionCanceledError",
    "UniqueViolationError",
    "VersionConflictError",
    "WriteOutcomeUnknownError",
]

ErrorCode = Literal[
    "config",
    "model-definition",
    "key-template",
    "index",
    "duplicate-type-name",
    "unknown-field",
    "unknown-lookup",
    "unknown-index",
    "needs-scan",
    "bad-order-by",
    "consistent-gsi",
    "bad-query",
    "no-table",
    "abstract-model",
    "table-mismatch",
]


class DynormError(Exception):
    """Raised for every error dynorm reports; the root of the tree.

    Attributes:
        aws_code: The DynamoDB error code when the error came from DynamoDB, else None.
        response: The parsed botocore error response when there was one, else None.
    """

    aws_code: str | None = None
    response: dict[str, Any] | None = None

    def __init__(
        self,
        message: str,
        *,
        aws_code: str | None = None,
        response: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.aws_code = aws_code
        self.response = response


class _UsageError(DynormError):
    """Base for mistakes in how dynorm is used; these carry a stable `code`."""

    code: ErrorCode

    def __init__(self, message: str, *, code: ErrorCode) -> None:
        super().__init__(message)
        self.code = code


class ConfigurationError(_UsageError):
    """Raised when a model, key template, index or the configuration is invalid."""

    def __init__(self, message: str, *, code: ErrorCode = "config") -> None:
        super().__init__(message, code=code)


class AbstractModelError(ConfigurationError, AttributeError):
    """Raised when an abstract model (`Meta.abstract = True`) is queried or stored.

    Abstract models are bases: they have no keys, no entity type and no `objects`. Use a
    concrete subclass. This is also an `AttributeError`, so `hasattr(Base, "objects")` is
    False, as in Django.

    Attributes:
        model: The abstract model's name.
    """

    def __init__(self, message: str, *, model: str) -> None:
        super().__init__(message, code="abstract-model")
        self.model = model


class TableMismatchError(ConfigurationError):
    """Raised by `create_table()` when the live table does not fit the models.

    Nothing was changed. `differences` lists every mismatch (key schema, GSIs, TTL), each
    a `dynorm.TableDifference`; `dynorm.check_table()` returns the same list without raising.

    Attributes:
        table: The table's name.
        differences: Every difference found, in a stable order.
    """

    def __init__(
        self, message: str, *, table: str, differences: Sequence[TableDifference]
    ) -> None:
        super().__init__(message, code="table-mismatch")
        self.table = table
        self.differences = list(differences)


class QueryError(_UsageError):
    """Raised when a query cannot be compiled into a DynamoDB request; nothing is sent."""

    def __init__(self, message: str, *, code: ErrorCode = "bad-query") -> None:
        super().__init__(message, code=code)


class InvalidValueError(DynormError, ValueError):
    """Raised when a field value cannot be stored in DynamoDB; checked before anything is sent."""

    def __init__(self, message: str, *, model: str | None = None, field: str | None = None):
        super().__init__(message)
        self.model = model
        self.field = field


class ItemTooLargeError(InvalidValueError):
    """Raised when an item is larger than DynamoDB's 400 KB (409,600 byte) limit.

    Attributes:
        size: The item's size in bytes as DynamoDB counts it (None when DynamoDB reported it).
        limit: The limit in bytes.
        largest: The names of the largest attributes, biggest first.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        size: int | None = None,
        limit: int = 409_600,
        largest: Sequence[str] = (),
    ) -> None:
        super().__init__(message, model=model)
        self.size = size
        self.limit = limit
        self.largest = list(largest)


class ObjectDoesNotExist(DynormError):
    """Raised by `get()` when no item matches; each model has its own `Model.DoesNotExist`."""


class MultipleObjectsReturned(DynormError):
    """Raised by `get()` when more than one item matches; per model too."""


class ConditionFailedError(DynormError):
    """Raised when DynamoDB refused a conditional write (the condition was false)."""


class ItemExistsError(ConditionFailedError):
    """Raised when a create finds an item with the same key already stored.

    `create()`, `save()` of a new object and `bulk_create()` (create-only unless
    `overwrite=True`) never replace a stored item. `bulk_create` writes every other object
    first, then raises this once for all the objects it did not create.

    Attributes:
        model: The model's name.
        keys: The primary keys (`{"pk": ..., "sk": ...}`) that already existed.
        objects: The objects that were not created (their `version` is still 0).
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        keys: Sequence[dict[str, str]] = (),
        objects: Sequence[Any] = (),
        aws_code: str | None = None,
        response: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, aws_code=aws_code, response=response)
        self.model = model
        self.keys = list(keys)
        self.objects = list(objects)


class UniqueViolationError(ConditionFailedError):
    """Raised when a write would give two objects the same value of a `Meta.unique` constraint.

    Nothing was written (the object and its guard items are written in one transaction).
    The message names the model and the fields, never the value.

    Attributes:
        model: The model's name.
        fields: The fields of the constraint, in declaration order.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        fields: Sequence[str],
        aws_code: str | None = None,
        response: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, aws_code=aws_code, response=response)
        self.model = model
        self.fields = tuple(fields)


class VersionConflictError(ConditionFailedError):
    """Raised when a save or delete finds a stored version other than the one loaded.

    Attributes:
        model: The model's name.
        expected_version: The version the instance was loaded at.
        current_version: The stored version when DynamoDB returned it, else None.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        expected_version: int,
        current_version: int | None = None,
        aws_code: str | None = None,
        response: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, aws_code=aws_code, response=response)
        self.model = model
        self.expected_version = expected_version
        self.current_version = current_version


class TransactionCanceledError(DynormError):
    """Raised when DynamoDB cancels a transaction.

    Attributes:
        reasons: One entry per operation, in the order written: None for an operation that
            was fine, else DynamoDB's cancellation code (e.g. "ConditionalCheckFailed").
    """

    def __init__(
        self,
        message: str,
        *,
        reasons: Sequence[str | None] = (),
        aws_code: str | None = None,
        response: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, aws_code=aws_code, response=response)
        self.reasons = list(reasons)


class BatchIncompleteError(DynormError):
    """Raised when a batch still had unprocessed items after every retry; nothing is dropped.

    Attributes:
        unprocessed: The keys (as dicts of key attribute names to strings) not processed.
    """

    def __init__(self, message: str, *, unprocessed: Sequence[dict[str, str]] = ()) -> None:
        super().__init__(message)
        self.unprocessed = list(unprocessed)


class ThrottledError(DynormError):
    """Raised when DynamoDB kept throttling a request after every retry.

    Attributes:
        operation: The DynamoDB operation name.
        attempts: How many attempts were made.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        attempts: int | None = None,
        aws_code: str | None = None,
        response: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, aws_code=aws_code, response=response)
        self.operation = operation
        self.attempts = attempts


class ImportLineError(DynormError):
    """Raised by a strict import (`import_items(strict=True)`) at the first bad line.

    Every line before it is written. Once the line is fixed (the file changed: delete the
    checkpoint), run the import again: the items already stored are skipped, not
    overwritten. The message names the line, its model and what is wrong, never a value.

    Attributes:
        line: The line number (1-based) in the input file.
        model: The model the line names ("" when it names none).
    """

    def __init__(self, message: str, *, line: int, model: str) -> None:
        super().__init__(message)
        self.line = line
        self.model = model


class SchemaVersionError(DynormError):
    """Raised when a stored item's schema version (`Meta.schema_version`) does not fit.

    On a read: the item was written by newer code (its stamp is above the model's
    `schema_version`); decoding it would drop what that code stored, so nothing is decoded.
    On a partial write (`update()`, `save(update_fields=...)`, `qs.update()`): the stored
    item is at an older version, and changing some of its attributes without upgrading the
    rest would mix two shapes; `save()` the whole object or run `dynorm migrate` first.
    The message names the model and the versions, never a value.

    Attributes:
        model: The model's name.
        stored_version: The item's stamp (None when it is not a whole number).
        current_version: The model's `Meta.schema_version`.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        stored_version: int | None,
        current_version: int,
        aws_code: str | None = None,
        response: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, aws_code=aws_code, response=response)
        self.model = model
        self.stored_version = stored_version
        self.current_version = current_version


class InvalidCursorError(DynormError):
    """Raised when a pagination cursor was tampered with or belongs to another query."""


class ReadOnlyError(DynormError):
    """Raised before anything is sent by a write through a read-only manager or repository.

    `objects.read_only()`, a read-only `Repository`, and the objects read through either.

    Attributes:
        model: The model's name.
    """

    def __init__(self, message: str, *, model: str) -> None:
        super().__init__(message)
        self.model = model


class BlobError(DynormError):
    """Raised when a blob field (`fields.Blob()`) cannot be read from or written to S3.

    Attributes:
        model: The model's name.
        field: The blob field's name.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        field: str | None = None,
        aws_code: str | None = None,
    ) -> None:
        DynormError.__init__(self, message, aws_code=aws_code)
        self.model = model
        self.field = field


class BlobNotLoadedError(BlobError):
    """Raised when an unloaded blob is read and cannot be loaded here.

    A blob loads lazily on first access when its model's blob bucket is configured (and the
    field is not `Blob(lazy=False)`); otherwise load it with `qs.with_blobs()` or
    `obj.load_blobs()`. dynorm never returns an empty value in its place.
    """


class BlobIntegrityError(BlobError):
    """Raised when a blob's stored object is missing, corrupted or not the item's own.

    Corrupted: its size or SHA-256 differ from the pointer's. Not its own: the pointer names
    another item's key or another bucket (an item written outside dynorm, or tampered with).
    """


class BlobTooLargeError(BlobError, InvalidValueError):
    """Raised before anything is sent when a blob value is over its field's `max_size`.

    Attributes:
        size: The value's size in bytes (as stored, after compression).
        limit: The field's `max_size` in bytes.
    """

    def __init__(self, message: str, *, model: str, field: str, size: int, limit: int) -> None:
        BlobError.__init__(self, message, model=model, field=field)
        self.size = size
        self.limit = limit


class ServiceError(DynormError):
    """Raised for any other error reported by DynamoDB or the network.

    Attributes:
        maybe_applied: True when a write failed in a way (network error, server error) that
            leaves open whether DynamoDB applied it; reload before retrying an unconditional
            write. dynorm's own conditional saves recognise their earlier success by a token.
    """

    def __init__(
        self,
        message: str,
        *,
        maybe_applied: bool = False,
        aws_code: str | None = None,
        response: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, aws_code=aws_code, response=response)
        self.maybe_applied = maybe_applied


class WriteOutcomeUnknownError(ServiceError):
    """Raised when a write may have been applied and the stored item cannot tell.

    An earlier attempt of this write (a response lost on the network, or a
    `ServiceError(maybe_applied=True)` the caller is retrying) may have been applied, and
    the stored item now holds another writer's change (or is gone). Retrying cannot settle
    it, and treating it as a conflict would apply the change twice. It is never a
    `VersionConflictError`. Reload (`refresh_from_db()`, which also forgets the uncertain
    attempt) and check whether the change is there before applying it again.

    Attributes:
        model: The model's name.
        expected_version: The version the write was conditional on.
        current_version: The stored version (None when the item is gone or unknown).
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        expected_version: int | None = None,
        current_version: int | None = None,
        aws_code: str | None = None,
        response: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, maybe_applied=True, aws_code=aws_code, response=response)
        self.model = model
        self.expected_version = expected_version
        self.current_version = current_version
