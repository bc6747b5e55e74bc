"""dynorm: a Django-style ORM for DynamoDB single-table design, on pydantic v2 and boto3."""

from . import fields
from ._async_transactions import atransaction, atransaction_get
from ._audit import actor
from ._capture import capture
from ._config import Table, configure, using
from ._counters import Stats
from ._options import Index
from ._request import Request
from ._table import TableDifference, check_table, create_table, delete_table
from ._transactions import Transaction, transaction, transaction_get
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
from .singleton import SingletonModel
from .versioning import VersionedModel

__version__ = "0.1.0"

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
