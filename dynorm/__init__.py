"""dynorm: a Django-style ORM for DynamoDB single-table design, on pydantic v2 and boto3.

What a request path never needs (transactions, table management, versioned and singleton
models) loads on first use of its name (`__getattr__`), so that a cold start (a Lambda's
first request) does not import it; every name of `__all__` stays importable and typed.
"""

import typing as _typing

from . import fields
from ._audit import actor
from ._capture import capture
from ._config import Table, configure, using
from ._counters import Stats
from ._options import Index
from ._request import Request
from .audit import AuditEntry
from .exceptions import (
    AbstractModelError,
    BatchIncompleteError,
    BlobError,
    BlobIntegrityError,
    BlobNotLoadedError,
    BlobTooLargeError,
    ConditionFailedError,
    ConfigurationError,
    DynormError,
    ImportLineError,
    InvalidCursorError,
    InvalidValueError,
    ItemExistsError,
    ItemTooLargeError,
    MultipleObjectsReturned,
    ObjectDoesNotExist,
    QueryError,
    ReadOnlyError,
    SchemaVersionError,
    ServiceError,
    TableMismatchError,
    ThrottledError,
    TransactionCanceledError,
    UniqueViolationError,
    VersionConflictError,
    WriteOutcomeUnknownError,
)
from .models import Model
from .query import F, Q
from .query.aggregates import Avg, Count, Max, Min, Sum
from .query.collection import Collection
from .query.pagination import Page
from .query.queryset import Manager, QuerySet

if _typing.TYPE_CHECKING:
    from ._async_transactions import atransaction, atransaction_get
    from ._table import TableDifference, check_table, create_table, delete_table
    from ._transactions import Transaction, transaction, transaction_get
    from .singleton import SingletonModel
    from .versioning import VersionedModel

__version__ = "0.1.0"

#: The names loaded on first use, by the module that defines them.
_LAZY = {
    "atransaction": "_async_transactions",
    "atransaction_get": "_async_transactions",
    "TableDifference": "_table",
    "check_table": "_table",
    "create_table": "_table",
    "delete_table": "_table",
    "Transaction": "_transactions",
    "transaction": "_transactions",
    "transaction_get": "_transactions",
    "SingletonModel": "singleton",
    "VersionedModel": "versioning",
}


def __getattr__(name: str) -> _typing.Any:
    home = _LAZY.get(name)
    if home == "_async_transactions":
        from . import _async_transactions

        value = getattr(_async_transactions, name)
    elif home == "_table":
        from . import _table

        value = getattr(_table, name)
    elif home == "_transactions":
        from . import _transactions

        value = getattr(_transactions, name)
    elif home == "singleton":
        from . import singleton

        value = getattr(singleton, name)
    elif home == "versioning":
        from . import versioning

        value = getattr(versioning, name)
    else:
        raise AttributeError(f"module 'dynorm' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "__version__",
    "AbstractModelError",
    "actor",
    "atransaction",
    "atransaction_get",
    "AuditEntry",
    "Avg",
    "BatchIncompleteError",
    "BlobError",
    "BlobIntegrityError",
    "BlobNotLoadedError",
    "BlobTooLargeError",
    "capture",
    "check_table",
    "Collection",
    "ConditionFailedError",
    "ConfigurationError",
    "configure",
    "Count",
    "create_table",
    "delete_table",
    "DynormError",
    "F",
    "fields",
    "ImportLineError",
    "Index",
    "InvalidCursorError",
    "InvalidValueError",
    "ItemExistsError",
    "ItemTooLargeError",
    "Manager",
    "Max",
    "Min",
    "Model",
    "MultipleObjectsReturned",
    "ObjectDoesNotExist",
    "Page",
    "Q",
    "QueryError",
    "QuerySet",
    "ReadOnlyError",
    "Request",
    "SchemaVersionError",
    "ServiceError",
    "SingletonModel",
    "Stats",
    "Sum",
    "Table",
    "TableDifference",
    "TableMismatchError",
    "ThrottledError",
    "Transaction",
    "transaction",
    "transaction_get",
    "TransactionCanceledError",
    "UniqueViolationError",
    "using",
    "VersionConflictError",
    "VersionedModel",
    "WriteOutcomeUnknownError",
]
