"""create_table() and check_table() against live tables on DynamoDB Local that do or do not fit.

Mismatched tables are made with raw boto3 calls, as an operator (or another tool) would make
them. A table that does not fit is refused with TableMismatchError naming every difference,
and create_table() changes nothing on it; a table that fits passes, however often it is
checked.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

import dynorm
from dynorm import (
    ConfigurationError,
    Index,
    Model,
    TableDifference,
    TableMismatchError,
    _config,
    check_table,
    fields,
)
from dynorm._registry import isolated_registry

ALL = {"ProjectionType": "ALL"}


@pytest.fixture
def models() -> Iterator[list[type[Model]]]:
    """Two models: gsi1 and gsi2 (pinned), and a TTL field."""
    with isolated_registry():

        class Ticket(Model):
            id: str
            status: str = "open"
            expires: datetime | None = fields.TTL()

            class Meta:
                pk = "TICKET#{id}"
                indexes = [Index("by_status", pk="STATUS#{status}")]

        class Note(Model):
            id: str
            owner: str = ""
            size: int = 0

            class Meta:
                pk = "NOTE#{id}"
                indexes = [Index("by_owner", pk="OWNER#{owner}", slot=2)]

        yield [Ticket, Note]


@pytest.fixture
def table(dynamodb_local: str) -> Iterator[str]:
    """A unique table name, configured; the table (if made) is deleted afterwards."""
    saved = _config.snapshot()
    name = f"dynorm-check-{uuid.uuid4().hex[:10]}"
    dynorm.configure(table_name=name, endpoint_url=dynamodb_local, client=None)
    try:
        yield name
    finally:
        try:
            dynorm.delete_table(wait=False)
        finally:
            _config.restore(saved)


def client() -> Any:
    return _config.get_connection().client


def key(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"AttributeName": a, "KeyType": k} for a, k in pairs]


def gsi(name: str, *pairs: tuple[str, str], projection: dict[str, Any] = ALL) -> dict[str, Any]:
    return {"IndexName": name, "KeySchema": key(*pairs), "Projection": projection}


def make(
    name: str,
    keys: list[dict[str, str]],
    indexes: list[dict[str, Any]] | None = None,
    *,
    ttl: str | None = None,
    types: dict[str, str] | None = None,
    provisioned: bool = False,
) -> None:
    """Create a table with raw boto3; key attributes are strings unless `types` says otherwise."""
    used = [k["AttributeName"] for k in keys]
    used += [k["AttributeName"] for g in indexes or () for k in g["KeySchema"]]
    params: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PROVISIONED" if provisioned else "PAY_PER_REQUEST",
        "KeySchema": keys,
        "AttributeDefinitions": [
            {"AttributeName": a, "AttributeType": (types or {}).get(a, "S")}
            for a in dict.fromkeys(used)
        ],
    }
    if provisioned:
        params["ProvisionedThroughput"] = {"ReadCapacityUnits": 3, "WriteCapacityUnits": 2}
    if indexes:
        params["GlobalSecondaryIndexes"] = list(indexes)
    client().create_table(**params)
    client().get_waiter("table_exists").wait(TableName=name)
    if ttl is not None:
        client().update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
        )


TABLE_KEY = key(("pk", "HASH"), ("sk", "RANGE"))
FITTING_INDEXES = [
    gsi("gsi1", ("gsi1pk", "HASH"), ("gsi1sk", "RANGE")),
    gsi("gsi2", ("gsi2pk", "HASH"), ("gsi2sk", "RANGE")),
]


def described(name: str) -> tuple[Any, Any]:
    desc = client().describe_table(TableName=name)["Table"]
    ttl = client().describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    indexes = sorted(
        (g["IndexName"], repr(g["KeySchema"]), repr(g["Projection"]))
        for g in desc.get("GlobalSecondaryIndexes", [])
    )
    return (desc["KeySchema"], indexes), ttl


def refused(models: list[type[Model]], name: str) -> TableMismatchError:
    """create_table() must raise, and leave the table exactly as it was."""
    before = described(name)
    with pytest.raises(TableMismatchError) as info:
        dynorm.create_table(models)
    assert described(name) == before
    error = info.value
    assert isinstance(error, ConfigurationError) and error.code == "table-mismatch"
    assert error.table == name and name in str(error)
    # Every difference is in the message, with its fix; check_table() reports the same.
    for difference in error.differences:
        assert str(difference) in str(error) and difference.fix in str(error)
    assert check_table(models) == error.differences
    return error


def parts(differences: list[TableDifference]) -> list[str]:
    return [d.part for d in differences]


# --------------------------------------------------------------------------- fitting tables


def test_a_table_made_by_create_table_fits_and_create_table_is_idempotent(
    models: list[type[Model]], table: str
) -> None:
    assert parts(check_table(models)) == ["table"]
    dynorm.create_table(models)
    assert check_table(models) == []
    before = described(table)
    dynorm.create_table(models)
    dynorm.create_table(models)
    assert described(table) == before and check_table(models) == []


def test_an_exactly_fitting_table_made_by_hand_passes_unchanged(
    models: list[type[Model]], table: str
) -> None:
    make(table, TABLE_KEY, FITTING_INDEXES, ttl="_ttl")
    before = described(table)
    assert check_table(models) == []
    dynorm.create_table(models)
    dynorm.create_table(models)
    assert described(table) == before


def test_extra_indexes_and_attributes_the_models_do_not_use_are_not_differences(
    models: list[type[Model]], table: str
) -> None:
    indexes = [*FITTING_INDEXES, gsi("gsi7", ("gsi7pk", "HASH")), gsi("mine", ("other", "HASH"))]
    make(table, TABLE_KEY, indexes, ttl="_ttl", types={"gsi7pk": "N"})
    assert check_table(models) == []
    dynorm.create_table(models)


def test_missing_indexes_and_disabled_ttl_are_fixed_by_create_table(
    models: list[type[Model]], table: str
) -> None:
    make(table, TABLE_KEY)
    differences = check_table(models)
    assert parts(differences) == ["index gsi1", "index gsi2", "TTL"]
    assert all(d.fixable for d in differences)
    assert "Ticket.by_status" in differences[0].expected
    assert "Note.by_owner" in differences[1].expected
    assert "Ticket.expires" in differences[2].expected
    dynorm.create_table(models)
    assert check_table(models) == []


def test_indexes_added_to_a_provisioned_table_get_its_throughput(
    models: list[type[Model]], table: str
) -> None:
    make(table, TABLE_KEY, ttl="_ttl", provisioned=True)
    dynorm.create_table(models)
    assert check_table(models) == []
    desc = client().describe_table(TableName=table)["Table"]
    for index in desc["GlobalSecondaryIndexes"]:
        throughput = index["ProvisionedThroughput"]
        assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (3, 2)


def test_concurrent_create_table_calls_on_a_table_missing_indexes_all_succeed(
    models: list[type[Model]], table: str
) -> None:
    make(table, TABLE_KEY)
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def deploy() -> None:
        barrier.wait()
        try:
            dynorm.create_table(models)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deploy) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert check_table(models) == []


# --------------------------------------------------------------------------- refused tables


def test_wrong_key_names_are_refused(models: list[type[Model]], table: str) -> None:
    make(table, key(("PK", "HASH"), ("SK", "RANGE")))
    error = refused(models, table)
    assert parts(error.differences) == ["key schema", "index gsi1", "index gsi2", "TTL"]
    schema = error.differences[0]
    assert not schema.fixable
    assert schema.expected == "HASH pk (S), RANGE sk (S)"
    assert schema.found == "HASH PK (S), RANGE SK (S)"


@pytest.mark.parametrize(
    ("keys", "types", "found"),
    [
        (key(("pk", "HASH")), {}, "HASH pk (S)"),
        (TABLE_KEY, {"pk": "N"}, "HASH pk (N), RANGE sk (S)"),
        (key(("sk", "HASH"), ("pk", "RANGE")), {}, "HASH sk (S), RANGE pk (S)"),
        (TABLE_KEY, {"sk": "B"}, "HASH pk (S), RANGE sk (B)"),
    ],
)
def test_a_key_schema_of_other_shape_or_types_is_refused(
    models: list[type[Model]], table: str, keys: Any, types: dict[str, str], found: str
) -> None:
    make(table, keys, FITTING_INDEXES, ttl="_ttl", types=types)
    error = refused(models, table)
    assert [(d.part, d.found) for d in error.differences] == [("key schema", found)]


def test_missing_index_next_to_ttl_on_another_attribute_is_refused_whole(
    models: list[type[Model]], table: str
) -> None:
    # The missing gsi2 alone would be fixable; with TTL on another attribute, nothing is
    # changed (no half-fixed table).
    make(table, TABLE_KEY, FITTING_INDEXES[:1], ttl="expires_at")
    error = refused(models, table)
    assert parts(error.differences) == ["index gsi2", "TTL"]
    index, ttl = error.differences
    assert index.fixable and index.found == "no such index"
    assert not ttl.fixable
    assert ttl.expected == "TTL enabled on _ttl (for Ticket.expires)"
    assert ttl.found == "TTL enabled on expires_at"
    assert "expires_at" in ttl.fix


def test_indexes_with_other_keys_or_projections_are_refused(
    models: list[type[Model]], table: str
) -> None:
    make(
        table,
        TABLE_KEY,
        [
            gsi("gsi1", ("gsi1pk", "HASH"), projection={"ProjectionType": "KEYS_ONLY"}),
            gsi(
                "gsi2",
                ("gsi2pk", "HASH"),
                ("gsi2sk", "RANGE"),
                projection={"ProjectionType": "INCLUDE", "NonKeyAttributes": ["owner"]},
            ),
        ],
        ttl="_ttl",
        types={"gsi2sk": "N"},
    )
    error = refused(models, table)
    assert [(d.part, d.found, d.fixable) for d in error.differences] == [
        ("index gsi1", "HASH gsi1pk (S), projecting KEYS_ONLY", False),
        ("index gsi2", "HASH gsi2pk (S), RANGE gsi2sk (N), projecting INCLUDE (owner)", False),
    ]
    assert error.differences[0].expected == (
        "HASH gsi1pk (S), RANGE gsi1sk (S), projecting ALL (for Ticket.by_status)"
    )


def test_a_missing_index_whose_key_attribute_has_another_type_is_not_fixable(
    models: list[type[Model]], table: str
) -> None:
    # gsi2's sort-key attribute is already defined as a number by another index.
    make(
        table,
        TABLE_KEY,
        [FITTING_INDEXES[0], gsi("legacy", ("gsi2sk", "HASH"))],
        ttl="_ttl",
        types={"gsi2sk": "N"},
    )
    error = refused(models, table)
    assert [(d.part, d.fixable) for d in error.differences] == [("index gsi2", False)]
    assert "gsi2sk is defined as N" in error.differences[0].found


def test_ttl_on_an_attribute_the_models_store_is_refused_even_without_ttl_fields(
    table: str,
) -> None:
    # TTL on `version` (a number in every item) would let DynamoDB delete every item.
    with isolated_registry():

        class Plain(Model):
            id: str

            class Meta:
                pk = "PLAIN#{id}"

        make(table, TABLE_KEY, ttl="version")
        error = refused([Plain], table)
        [difference] = error.differences
        assert (difference.part, difference.fixable) == ("TTL", False)
        assert "Plain.version" in difference.found


def test_ttl_on_an_attribute_no_model_stores_is_not_a_difference(table: str) -> None:
    with isolated_registry():

        class Plain(Model):
            id: str

            class Meta:
                pk = "PLAIN#{id}"

        make(table, TABLE_KEY, ttl="gone_at")
        assert check_table([Plain]) == []
        dynorm.create_table([Plain])
