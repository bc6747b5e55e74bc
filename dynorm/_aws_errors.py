"""DynamoDB's error answers, as the dynorm exceptions that describe them.

Messages name the operation, the table and the fix, never an item value: DynamoDB's own
message (which can quote values) stays in `exc.response` and `exc.__cause__`.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from .exceptions import (
    ConditionFailedError,
    ConfigurationError,
    DynormError,
    ItemTooLargeError,
    ServiceError,
    ThrottledError,
    TransactionCanceledError,
)

_THROTTLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)

#: The operations that change items (a 5xx answer to one may have been applied).
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


def translate_client_error(exc: ClientError, operation: str, table: str) -> DynormError:
    """Map a botocore ClientError to the dynorm exception that describes it."""
    response: dict[str, Any] = dict(exc.response)
    error = response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    aws_message = str(error.get("Message", ""))
    if code == "ConditionalCheckFailedException":
        return ConditionFailedError(
            f"DynamoDB refused {operation} on table {table!r}: its condition was false.",
            aws_code=code,
            response=response,
        )
    if code in _THROTTLE_CODES:
        attempts = int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) + 1
        return ThrottledError(
            f"DynamoDB throttled {operation} on table {table!r} ({code}) after {attempts} "
            "attempt(s); slow down, raise the table's capacity, or configure more attempts "
            "with dynorm.configure(max_attempts=...).",
            operation=operation,
            attempts=attempts,
            aws_code=code,
            response=response,
        )
    if code == "TransactionCanceledException":
        reasons = [
            None if r.get("Code") in (None, "None") else str(r.get("Code"))
            for r in response.get("CancellationReasons", [])
        ]
        return TransactionCanceledError(
            f"DynamoDB cancelled the transaction on table {table!r}; see .reasons for "
            "the operation(s) that failed.",
            reasons=reasons,
            aws_code=code,
            response=response,
        )
    if code == "ResourceNotFoundException":
        err = ConfigurationError(
            f"Cannot find table {table!r} (or one of its indexes) for {operation}; "
            "call dynorm.create_table() or check dynorm.configure(table_name=...).",
            code="no-table",
        )
        err.aws_code, err.response = code, response
        return err
    if code == "ValidationException" and "Item size" in aws_message:
        too_large = ItemTooLargeError(
            f"DynamoDB rejected {operation} on table {table!r}: an item is over 400 KB. "
            "Store large values in S3 or mark them fields.Compressed().",
        )
        too_large.aws_code, too_large.response = code, response
        return too_large
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
    maybe = status >= 500 and operation in WRITES
    suffix = " The write may or may not have been applied." if maybe else ""
    # DynamoDB's message can quote stored values ("Input collection [...] contains
    # duplicates"): it stays in exc.response and exc.__cause__, never in this message.
    return ServiceError(
        f"DynamoDB rejected {operation} on table {table!r} with {code} (HTTP {status}).{suffix} "
        "DynamoDB's own message, which may quote item values, is in "
        "exc.response['Error']['Message'].",
        maybe_applied=maybe,
        aws_code=code,
        response=response,
    )
