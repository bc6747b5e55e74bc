"""DynamoDB's hard limits and dynorm's physical attribute names, as named constants."""

from __future__ import annotations

# Item and key sizes count UTF-8 bytes; 1 KB = 1024 B (DynamoDB developer guide, "Quotas").
ITEM_SIZE_LIMIT = 400 * 1024
PARTITION_KEY_LIMIT = 2048
SORT_KEY_LIMIT = 1024
NESTING_DEPTH_LIMIT = 32
# Attribute names: under 64 KB (UTF-8); the key attributes of a secondary index at most 255
# characters (developer guide, "Supported data types and naming rules").
ATTRIBUTE_NAME_LIMIT = 64 * 1024 - 1
KEY_ATTRIBUTE_NAME_LIMIT = 255
NUMBER_PRECISION = 38
NUMBER_MAX_EXPONENT = 125  # largest magnitude 9.99..E+125
NUMBER_MIN_EXPONENT = -130  # smallest magnitude 1E-130

BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100
TRANSACT_ITEMS_LIMIT = 100
TRANSACT_SIZE_LIMIT = 4 * 1024 * 1024
IN_OPERANDS_LIMIT = 100
EXPRESSION_LENGTH_LIMIT = 4096
EXPRESSION_OPERATOR_LIMIT = 300

# Physical attribute names dynorm owns in every item.
PK = "pk"
SK = "sk"
TYPE_ATTR = "_type"
VERSION_ATTR = "version"
TTL_ATTR = "_ttl"
#: A random token written with every save, to recognise a retried write that already applied.
WRITE_TOKEN_ATTR = "_wtok"
#: The schema version an item was written at (`Meta.schema_version`; absent: version 1).
SCHEMA_VERSION_ATTR = "_sv"
#: A companion item's owner: the primary key of the object it belongs to (unique guards).
OWNER_PK_ATTR = "_opk"
OWNER_SK_ATTR = "_osk"
#: The sort key of every unique guard item (its partition key renders the values).
GUARD_SK = "_UNIQUE"


def gsi_name(slot: int) -> str:
    """Return the physical GSI name for an index slot."""
    return f"gsi{slot}"


def gsi_pk(slot: int) -> str:
    """Return the partition-key attribute name of an index slot."""
    return f"gsi{slot}pk"


def gsi_sk(slot: int) -> str:
    """Return the sort-key attribute name of an index slot."""
    return f"gsi{slot}sk"
