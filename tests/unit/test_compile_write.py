"""Offline tests of the pure write compiler (`dynorm.query._compile_write`).

Nothing here talks to DynamoDB. Every write shape dynorm sends is compiled with a fixed clock
(`NOW`) and fixed write tokens, and the whole request is compared with the dict DynamoDB is
to receive (TableName is the executor's, so it is never there). A hypothesis property checks,
for any values, that expressions are made of placeholders and operators only: every value
travels in ExpressionAttributeValues, every name in ExpressionAttributeNames.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dynorm import F, Q, _instance_writes
from dynorm.exceptions import ItemTooLargeError, QueryError
from dynorm.query._compile_write import (
    Absent,
    Check,
    Delete,
    Loaded,
    Matches,
    Put,
    PutItem,
    SetFields,
    StillMatches,
    Unconditional,
    Update,
    compile_transaction,
    compile_write,
    key_of,
    model_item,
    transact_actions,
)
from dynorm.query.compiler import QueryState, Request
from tests.models import Counter, Customer, Order

NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
NOW_TEXT = "2024-01-02T03:04:05.000000Z"
CREATED = datetime(2023, 6, 1, tzinfo=timezone.utc)
CREATED_TEXT = "2023-06-01T00:00:00.000000Z"
TOKEN = "newtoken"  # the token the write stores
STORED = "oldtoken"  # the token of the item the instance holds
KEY = ("CUSTOMER#c1", "ORDER#o1")
KEY_AV = {"pk": {"S": "CUSTOMER#c1"}, "sk": {"S": "ORDER#o1"}}
META = Order._meta


def order_values(**changes: Any) -> dict[str, Any]:
    """The field values of a stored Order at version 3 (changes applied)."""
    values: dict[str, Any] = {
        "version": 3,
        "id": "o1",
        "customer_id": "c1",
        "status": "open",
        "total": Decimal(5),
        "lines": [],
        "tags": set(),
        "note": None,
        "created_at": CREATED,
    }
    values.update(changes)
    return values


def order_item(version: int = 4, token: str | None = TOKEN, **changes: Any) -> dict[str, Any]:
    """The item of `order_values(version=version, **changes)` as dynorm stores it."""
    values = order_values(version=version, **changes)
    item: dict[str, Any] = {
        "pk": {"S": f"CUSTOMER#{values['customer_id']}"},
        "sk": {"S": f"ORDER#{values['id']}"},
        "_type": {"S": "Order"},
        "gsi1pk": {"S": f"STATUS#{values['status']}"},
        "gsi1sk": {"S": CREATED_TEXT},
        "version": {"N": str(version)},
        "id": {"S": values["id"]},
        "customer_id": {"S": values["customer_id"]},
        "status": {"S": values["status"]},
        "total": {"N": str(values["total"])},
        "lines": {"L": []},
        "created_at": {"S": CREATED_TEXT},
    }
    if values["note"] is not None:
        item["note"] = {"S": values["note"]}
    if token is not None:
        item["_wtok"] = {"S": token}
    return item


def loaded_condition_parts(version: int = 3) -> tuple[dict[str, str], dict[str, Any]]:
    """The names and values of `Loaded(version, STORED)`: #n0/#n1, :v0/:v1."""
    return {"#n0": "version", "#n1": "_wtok"}, {":v0": {"N": str(version)}, ":v1": {"S": STORED}}


# --------------------------------------------------------------------------- puts


def test_create_puts_the_whole_item_only_if_no_item_has_its_key() -> None:
    request = compile_write(META, Put(order_values(version=1)), Absent(), token=TOKEN, now=NOW)
    assert request == Request(
        "PutItem",
        {
            "Item": order_item(version=1),
            "ConditionExpression": "attribute_not_exists(#n0)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ExpressionAttributeNames": {"#n0": "pk"},
        },
    )


def test_save_puts_the_item_at_the_loaded_version_and_token() -> None:
    request = compile_write(META, Put(order_values(version=4)), Loaded(3, STORED), token=TOKEN)
    names, values = loaded_condition_parts()
    assert request == Request(
        "PutItem",
        {
            "Item": order_item(),
            "ConditionExpression": "#n0 = :v0 AND #n1 = :v1",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        },
    )


def test_save_of_an_item_without_a_known_token_is_conditional_on_the_version_alone() -> None:
    request = compile_write(META, Put(order_values(version=4)), Loaded(3), token=TOKEN)
    assert request.params == {
        "Item": order_item(),
        "ConditionExpression": "#n0 = :v0",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ExpressionAttributeNames": {"#n0": "version"},
        "ExpressionAttributeValues": {":v0": {"N": "3"}},
    }


def test_bulk_create_puts_are_create_only_by_default() -> None:
    request = compile_write(META, Put(order_values(version=1)), Absent(), token=TOKEN)
    assert request.params["ConditionExpression"] == "attribute_not_exists(#n0)"
    assert request.params["Item"] == order_item(version=1)


def test_bulk_create_overwrite_puts_are_unconditional() -> None:
    request = compile_write(META, Put(order_values(version=1)), Unconditional(), token=TOKEN)
    assert request == Request("PutItem", {"Item": order_item(version=1)})


def test_a_sparse_index_key_and_a_none_field_are_left_out_of_the_item() -> None:
    values = Customer._meta.field_names
    customer = dict.fromkeys(values)
    customer.update(id="x", email="a@b", name="n", version=1, created_at=NOW, updated_at=NOW)
    item = model_item(Customer._meta, customer, token=None)
    assert item == {
        "pk": {"S": "CUSTOMER#x"},
        "sk": {"S": "PROFILE"},
        "_type": {"S": "Customer"},
        "gsi1pk": {"S": "EMAIL#a@b"},
        "gsi1sk": {"S": "Customer"},
        "version": {"N": "1"},
        "id": {"S": "x"},
        "email": {"S": "a@b"},
        "name": {"S": "n"},
        "created_at": {"S": NOW_TEXT},
        "updated_at": {"S": NOW_TEXT},
    }


def test_an_item_over_400_kb_is_refused_before_sending() -> None:
    with pytest.raises(ItemTooLargeError):
        compile_write(META, Put(order_values(note="x" * 410_000)), Absent(), token=TOKEN)


# --------------------------------------------------------------------------- save(update_fields)


def test_save_update_fields_of_a_whole_object_sets_them_and_rewrites_every_index_key() -> None:
    values = order_values(version=4, status="paid")
    write = SetFields(KEY, values, ["status", "version"])
    request = compile_write(META, write, Loaded(3, STORED), token=TOKEN)
    assert request == Request(
        "UpdateItem",
        {
            "Key": KEY_AV,
            "UpdateExpression": "SET #n2 = :v2, #n0 = :v3, #n3 = :v4, #n4 = :v5, #n1 = :v6",
            "ConditionExpression": "#n0 = :v0 AND #n1 = :v1",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ExpressionAttributeNames": {
                "#n0": "version",
                "#n1": "_wtok",
                "#n2": "status",
                "#n3": "gsi1pk",
                "#n4": "gsi1sk",
            },
            "ExpressionAttributeValues": {
                ":v0": {"N": "3"},
                ":v1": {"S": STORED},
                ":v2": {"S": "paid"},
                ":v3": {"N": "4"},
                ":v4": {"S": "STATUS#paid"},
                ":v5": {"S": CREATED_TEXT},
                ":v6": {"S": TOKEN},
            },
        },
    )


def test_save_update_fields_removes_a_field_set_to_none() -> None:
    write = SetFields(KEY, order_values(version=4), ["note", "version"], partial=True)
    request = compile_write(META, write, Loaded(3), token=TOKEN)
    assert request.params == {
        "Key": KEY_AV,
        "UpdateExpression": "SET #n0 = :v1, #n2 = :v2 REMOVE #n1",
        "ConditionExpression": "#n0 = :v0",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ExpressionAttributeNames": {"#n0": "version", "#n1": "note", "#n2": "_wtok"},
        "ExpressionAttributeValues": {":v0": {"N": "3"}, ":v1": {"N": "4"}, ":v2": {"S": TOKEN}},
    }


def test_save_update_fields_of_a_partial_object_leaves_untouched_index_keys_alone() -> None:
    # Loaded with only("total"): the index (status, created_at) is not built from it.
    values = {"version": 4, "total": Decimal(6)}
    write = SetFields(KEY, values, ["total", "version"], partial=True)
    request = compile_write(META, write, Loaded(3, STORED), token=TOKEN)
    assert request.params == {
        "Key": KEY_AV,
        "UpdateExpression": "SET #n2 = :v2, #n0 = :v3, #n1 = :v4",
        "ConditionExpression": "#n0 = :v0 AND #n1 = :v1",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ExpressionAttributeNames": {"#n0": "version", "#n1": "_wtok", "#n2": "total"},
        "ExpressionAttributeValues": {
            ":v0": {"N": "3"},
            ":v1": {"S": STORED},
            ":v2": {"N": "6"},
            ":v3": {"N": "4"},
            ":v4": {"S": TOKEN},
        },
    }


def test_save_update_fields_of_a_partial_object_refuses_an_index_it_cannot_rebuild() -> None:
    values = {"version": 4, "status": "paid"}
    write = SetFields(KEY, values, ["status", "version"], partial=True)
    with pytest.raises(QueryError, match=r"index 'by_status'.*load created_at with only\(\)"):
        compile_write(META, write, Loaded(3), token=TOKEN)


# --------------------------------------------------------------------------- update()


def update_request(changes: dict[str, Any], **current: Any) -> Request:
    write = Update(KEY, changes, order_values(**current), version=4, return_new=True)
    return compile_write(META, write, Loaded(3, STORED), token=TOKEN, now=NOW)


def updated(expression: str, names: dict[str, str], values: dict[str, Any]) -> Request:
    """The UpdateItem of `obj.update(...)` at Loaded(3, STORED): its own clauses, then
    the version (4) and the token, whose placeholders follow the given ones."""
    v = len(values) + 2
    return Request(
        "UpdateItem",
        {
            "Key": KEY_AV,
            "UpdateExpression": expression.format(version=f"#n0 = :v{v}", token=f"#n1 = :v{v + 1}"),
            "ConditionExpression": "#n0 = :v0 AND #n1 = :v1",
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ExpressionAttributeNames": {"#n0": "version", "#n1": "_wtok", **names},
            "ExpressionAttributeValues": {
                ":v0": {"N": "3"},
                ":v1": {"S": STORED},
                **values,
                f":v{v}": {"N": "4"},
                f":v{v + 1}": {"S": TOKEN},
            },
        },
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"total": Decimal("7.5")},
            updated("SET #n2 = :v2, {version}, {token}", {"#n2": "total"}, {":v2": {"N": "7.5"}}),
            id="plain value",
        ),
        pytest.param(
            {"note": None},
            updated("SET {version}, {token} REMOVE #n2", {"#n2": "note"}, {}),
            id="None removes",
        ),
        pytest.param(
            {"note": F("customer_id")},
            updated("SET #n2 = #n3, {version}, {token}", {"#n2": "note", "#n3": "customer_id"}, {}),
            id="F reference",
        ),
        pytest.param(
            {"total": F("total") + 2},
            updated(
                "SET #n2 = #n2 + :v2, {version}, {token}", {"#n2": "total"}, {":v2": {"N": "2"}}
            ),
            id="F add",
        ),
        pytest.param(
            {"total": F("total") - Decimal("0.5")},
            updated(
                "SET #n2 = #n2 - :v2, {version}, {token}", {"#n2": "total"}, {":v2": {"N": "0.5"}}
            ),
            id="F subtract",
        ),
        pytest.param(
            {"lines": F("lines").append([{"sku": "s", "qty": 1, "price": 2}])},
            updated(
                "SET #n2 = list_append(#n2, :v2), {version}, {token}",
                {"#n2": "lines"},
                {
                    ":v2": {
                        "L": [{"M": {"sku": {"S": "s"}, "qty": {"N": "1"}, "price": {"N": "2"}}}]
                    }
                },
            ),
            id="F append",
        ),
        pytest.param(
            {"lines": F("lines").prepend([])},
            updated(
                "SET #n2 = list_append(:v2, #n2), {version}, {token}",
                {"#n2": "lines"},
                {":v2": {"L": []}},
            ),
            id="F prepend",
        ),
        pytest.param(
            {"note": F("note").if_not_exists("first")},
            updated(
                "SET #n2 = if_not_exists(#n2, :v2), {version}, {token}",
                {"#n2": "note"},
                {":v2": {"S": "first"}},
            ),
            id="F if_not_exists",
        ),
        pytest.param(
            {"tags": F("tags").add({"gift"})},
            updated(
                "SET {version}, {token} ADD #n2 :v2", {"#n2": "tags"}, {":v2": {"SS": ["gift"]}}
            ),
            id="F add to set",
        ),
        pytest.param(
            {"tags": F("tags").remove({"gift"})},
            updated(
                "SET {version}, {token} DELETE #n2 :v2", {"#n2": "tags"}, {":v2": {"SS": ["gift"]}}
            ),
            id="F remove from set",
        ),
        pytest.param(
            {"status": "paid"},
            updated(
                "SET #n2 = :v2, #n3 = :v3, #n4 = :v4, {version}, {token}",
                {"#n2": "status", "#n3": "gsi1pk", "#n4": "gsi1sk"},
                {":v2": {"S": "paid"}, ":v3": {"S": "STATUS#paid"}, ":v4": {"S": CREATED_TEXT}},
            ),
            id="index field rewrites the index key",
        ),
    ],
)
def test_update_compiles_each_kind_of_change(changes: dict[str, Any], expected: Request) -> None:
    assert update_request(changes) == expected


def test_update_sets_updated_at_fields_to_now() -> None:
    meta = Customer._meta
    current = {"id": "x", "email": "a@b", "name": "n", "version": 1}
    write = Update(("CUSTOMER#x", "PROFILE"), {"name": "m"}, current, version=2)
    request = compile_write(meta, write, Loaded(1), token=TOKEN, now=NOW)
    assert request.params == {
        "Key": {"pk": {"S": "CUSTOMER#x"}, "sk": {"S": "PROFILE"}},
        "UpdateExpression": "SET #n1 = :v1, #n2 = :v2, #n0 = :v3, #n3 = :v4",
        "ConditionExpression": "#n0 = :v0",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ExpressionAttributeNames": {
            "#n0": "version",
            "#n1": "name",
            "#n2": "updated_at",
            "#n3": "_wtok",
        },
        "ExpressionAttributeValues": {
            ":v0": {"N": "1"},
            ":v1": {"S": "m"},
            ":v2": {"S": NOW_TEXT},
            ":v3": {"N": "2"},
            ":v4": {"S": TOKEN},
        },
    }


def test_update_without_a_version_increments_it_atomically() -> None:
    write = Update(("COUNTER#a", "Counter"), {"value": F("value") + 1}, {}, version=None)
    request = compile_write(Counter._meta, write, Unconditional(), now=NOW)
    assert request.params == {
        "Key": {"pk": {"S": "COUNTER#a"}, "sk": {"S": "Counter"}},
        "UpdateExpression": "SET #n0 = #n0 + :v0, #n1 = #n1 + :v1",
        "ExpressionAttributeNames": {"#n0": "value", "#n1": "version"},
        "ExpressionAttributeValues": {":v0": {"N": "1"}, ":v1": {"N": "1"}},
    }


def test_update_needs_the_time() -> None:
    with pytest.raises(TypeError, match="needs `now`"):
        compile_write(META, Update(KEY, {"total": 1}, {}, version=4), Loaded(3))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "o2"}, "part of the primary key"),
        ({"version": 9}, "or the version"),
        ({"nope": 1}, "no such field"),
        ({"status": F("note")}, "index key is built from it"),
        ({"tags": F("tags").add(set())}, "an empty set"),
    ],
)
def test_update_refuses_what_it_cannot_write(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        compile_write(META, Update(KEY, changes, order_values(), version=4), Loaded(3), now=NOW)


# --------------------------------------------------------------------------- deletes, checks


def test_delete_is_conditional_on_the_loaded_item() -> None:
    names, values = loaded_condition_parts()
    assert compile_write(META, Delete(KEY), Loaded(3, STORED)) == Request(
        "DeleteItem",
        {
            "Key": KEY_AV,
            "ConditionExpression": "#n0 = :v0 AND #n1 = :v1",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        },
    )


def test_condition_check_renders_filter_lookups() -> None:
    expect = Matches({"status": "open", "total__gt": 3, "note__exists": False})
    assert compile_write(META, Check(KEY), expect) == Request(
        "ConditionCheck",
        {
            "Key": KEY_AV,
            "ConditionExpression": "#n0 = :v0 AND #n1 > :v1 AND attribute_not_exists(#n2)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ExpressionAttributeNames": {"#n0": "status", "#n1": "total", "#n2": "note"},
            "ExpressionAttributeValues": {":v0": {"S": "open"}, ":v1": {"N": "3"}},
        },
    )


def test_condition_check_without_lookups_requires_the_item_to_exist() -> None:
    assert compile_write(META, Check(KEY), Matches()).params == {
        "Key": KEY_AV,
        "ConditionExpression": "attribute_exists(#n0)",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ExpressionAttributeNames": {"#n0": "pk"},
    }


# --------------------------------------------------------------------------- QuerySet writes

STATE = QueryState(Order, where=(Q(customer_id="c1") & Q(status="open"),))


def test_queryset_update_of_one_item_is_conditional_on_its_read_version_and_the_filters() -> None:
    write = Update(KEY, {"total": F("total") + 1}, order_values(), version=4)
    request = compile_write(META, write, StillMatches(STATE, 3), token=TOKEN, now=NOW)
    assert request == Request(
        "UpdateItem",
        {
            "Key": KEY_AV,
            "UpdateExpression": "SET #n4 = #n4 + :v4, #n0 = :v5, #n5 = :v6",
            "ConditionExpression": "#n0 = :v0 AND #n1 = :v1 AND #n2 = :v2 AND #n3 = :v3",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ExpressionAttributeNames": {
                "#n0": "version",
                "#n1": "customer_id",
                "#n2": "status",
                "#n3": "_type",
                "#n4": "total",
                "#n5": "_wtok",
            },
            "ExpressionAttributeValues": {
                ":v0": {"N": "3"},
                ":v1": {"S": "c1"},
                ":v2": {"S": "open"},
                ":v3": {"S": "Order"},
                ":v4": {"N": "1"},
                ":v5": {"N": "4"},
                ":v6": {"S": TOKEN},
            },
        },
    )


def test_queryset_delete_of_one_item_is_conditional_on_its_read_version_and_the_filters() -> None:
    assert compile_write(META, Delete(KEY), StillMatches(STATE, 3)) == Request(
        "DeleteItem",
        {
            "Key": KEY_AV,
            "ConditionExpression": "#n0 = :v0 AND #n1 = :v1 AND #n2 = :v2 AND #n3 = :v3",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ExpressionAttributeNames": {
                "#n0": "version",
                "#n1": "customer_id",
                "#n2": "status",
                "#n3": "_type",
            },
            "ExpressionAttributeValues": {
                ":v0": {"N": "3"},
                ":v1": {"S": "c1"},
                ":v2": {"S": "open"},
                ":v3": {"S": "Order"},
            },
        },
    )


# --------------------------------------------------------------------------- transactions


def test_key_move_deletes_the_loaded_item_and_creates_the_new_key_in_one_transaction() -> None:
    moved = order_values(version=4, id="o2")
    request = compile_transaction(
        [
            compile_write(META, Delete(KEY), Loaded(3, STORED)),
            compile_write(META, Put(moved), Absent(), token=TOKEN),
        ]
    )
    names, values = loaded_condition_parts()
    assert request == Request(
        "TransactWriteItems",
        {
            "TransactItems": [
                {
                    "Delete": {
                        "Key": KEY_AV,
                        "ConditionExpression": "#n0 = :v0 AND #n1 = :v1",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                },
                {
                    "Put": {
                        "Item": order_item(id="o2"),
                        "ConditionExpression": "attribute_not_exists(#n0)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        "ExpressionAttributeNames": {"#n0": "pk"},
                    }
                },
            ]
        },
    )
    assert key_of(compile_write(META, Put(moved), Absent())) == ("CUSTOMER#c1", "ORDER#o2")


def test_transaction_joins_writes_in_order_flattening_transactions_and_dropping_return_values() -> (
    None
):
    update = update_request({"total": Decimal(1)})
    check = compile_write(META, Check(("CUSTOMER#c1", "ORDER#o9")), Matches())
    move = compile_transaction([compile_write(META, Delete(KEY), Unconditional())])
    request = compile_transaction([update, check, move])
    update_body = {k: v for k, v in update.params.items() if k != "ReturnValues"}
    assert request == Request(
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Update": update_body},
                {"ConditionCheck": check.params},
                {"Delete": {"Key": KEY_AV}},
            ]
        },
    )
    assert transact_actions(request) == request.params["TransactItems"]


def test_versioned_save_shapes_history_put_and_pruning_delete() -> None:
    history = {"pk": {"S": "CUSTOMER#c1"}, "sk": {"S": "_history#ORDER$23o1!000000000004"}}
    put = compile_write(META, PutItem(history), Absent(), return_old=False)
    prune = compile_write(META, Delete(("CUSTOMER#c1", "h1")), Unconditional())
    assert put == Request(
        "PutItem",
        {
            "Item": history,
            "ConditionExpression": "attribute_not_exists(#n0)",
            "ExpressionAttributeNames": {"#n0": "pk"},
        },
    )
    assert prune == Request("DeleteItem", {"Key": {"pk": {"S": "CUSTOMER#c1"}, "sk": {"S": "h1"}}})


def test_guard_check_at_the_saved_version_and_token() -> None:
    guard = compile_write(META, Check(KEY), Loaded(4, TOKEN), return_old=False)
    assert guard == Request(
        "ConditionCheck",
        {
            "Key": KEY_AV,
            "ConditionExpression": "#n0 = :v0 AND #n1 = :v1",
            "ExpressionAttributeNames": {"#n0": "version", "#n1": "_wtok"},
            "ExpressionAttributeValues": {":v0": {"N": "4"}, ":v1": {"S": TOKEN}},
        },
    )


# --------------------------------------------------------------------------- any values

_EXPRESSION_TOKEN = re.compile(
    r"\s*(?P<tok>#n\d+|:v\d+|=|<>|<=|>=|<|>|\+|-|\(|\)|,"
    r"|(?:SET|REMOVE|ADD|DELETE|AND|OR|NOT|BETWEEN|IN|attribute_exists|attribute_not_exists"
    r"|begins_with|contains|size|list_append|if_not_exists)\b)"
)


def only_placeholders(params: dict[str, Any]) -> None:
    """Every expression is placeholders and operators; every placeholder defined is used."""
    used: set[str] = set()
    for name, text in params.items():
        if not name.endswith("Expression"):
            continue
        pos = 0
        while pos < len(text):
            match = _EXPRESSION_TOKEN.match(text, pos)
            assert match is not None, f"foreign text at {pos} in {name}: {text!r}"
            if match.group("tok")[0] in "#:":
                used.add(match.group("tok"))
            pos = match.end()
    defined = set(params.get("ExpressionAttributeNames", {})) | set(
        params.get("ExpressionAttributeValues", {})
    )
    assert used == defined


def requests_for(text: str, number: Decimal) -> list[Request]:
    """One request of every shape, each carrying `text` and `number` as values."""
    values = order_values(
        version=4, id=text or "x", customer_id=text or "y", note=text, total=number, tags={text}
    )
    key = (f"CUSTOMER#{text}", f"ORDER#{text}")
    state = QueryState(Order, where=(Q(note=text) | ~Q(total__lt=number),))
    changes: dict[str, Any] = {
        "note": text,
        "status": "paid",
        "total": F("total") + number,
        "tags": F("tags").add({text}),
        "lines": F("lines").append([{"sku": text, "qty": 1, "price": number}]),
    }
    return [
        compile_write(META, Put(values), Absent(), token=text),
        compile_write(META, Put(values), Loaded(3, text), token=text),
        compile_write(META, SetFields(key, values, ["note", "total"]), Loaded(3, text), token=text),
        compile_write(META, Update(key, changes, values, version=4), Loaded(3, text), now=NOW),
        compile_write(
            META, Update(key, {"note": text}, values, version=4), StillMatches(state, 3), now=NOW
        ),
        compile_write(META, Delete(key), StillMatches(state, 3)),
        compile_write(META, Check(key), Matches({"note": text, "note__begins_with": text})),
        compile_write(META, Check(key), Matches({"total__between": (number, number)})),
    ]


@settings(
    max_examples=int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    text=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40),
    number=st.decimals(
        allow_nan=False, allow_infinity=False, places=3, min_value=-(10**6), max_value=10**6
    ),
)
def test_values_travel_only_as_expression_attribute_values(text: str, number: Decimal) -> None:
    requests = requests_for(text, number)
    for request in requests:
        only_placeholders(request.params)
    for request in requests[1:-1]:  # not the create (all in its Item), nor the number check
        assert {"S": text} in request.params["ExpressionAttributeValues"].values()


# --------------------------------------------------------------------------- the builders


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """The instance-write builders read the clock and draw the token once: fix both."""
    monkeypatch.setattr(_instance_writes, "utcnow", lambda: NOW)
    monkeypatch.setattr(_instance_writes, "new_write_token", lambda: TOKEN)


def stored_order(**changes: Any) -> Order:
    """An Order as loaded from the table at version 3, holding the item's token."""
    return Order.from_item(order_item(version=3, token=STORED, **changes))


@pytest.mark.usefixtures("frozen")
def test_builders_send_exactly_what_the_compiler_compiles_from_the_instance() -> None:
    new = Order(id="o1", customer_id="c1", total=Decimal(5), created_at=CREATED)
    create = _instance_writes.save_op(new)
    assert create.request == compile_write(
        META, Put(order_values(version=1)), Absent(), token=TOKEN
    )
    assert create.token == TOKEN

    save = _instance_writes.save_op(stored_order())
    assert save.request == compile_write(
        META, Put(order_values(version=4)), Loaded(3, STORED), token=TOKEN
    )

    fields = stored_order()
    fields.status = "paid"
    assert _instance_writes.save_op(fields, ["status"]).request == compile_write(
        META,
        SetFields(KEY, order_values(version=4, status="paid"), ["status", "version"]),
        Loaded(3, STORED),
        token=TOKEN,
    )

    moved = stored_order()
    moved.id = "o2"
    assert _instance_writes.save_op(moved).request == compile_transaction(
        [
            compile_write(META, Delete(KEY), Loaded(3, STORED)),
            compile_write(META, Put(order_values(version=4, id="o2")), Absent(), token=TOKEN),
        ]
    )

    assert _instance_writes.delete_op(stored_order()).request == compile_write(
        META, Delete(KEY), Loaded(3, STORED)
    )
    changes = {"total": F("total") + 1}
    update = Update(KEY, changes, order_values(), version=4, return_new=True)
    assert _instance_writes.update_instance_op(stored_order(), changes).request == (
        compile_write(META, update, Loaded(3, STORED), token=TOKEN, now=NOW)
    )
    check = _instance_writes.condition_check_op(stored_order(), {"status": "open"})
    assert check.request == compile_write(META, Check(KEY), Matches({"status": "open"}))


@pytest.mark.usefixtures("frozen")
def test_a_create_stamps_created_at_and_updated_at_with_the_one_clock_reading() -> None:
    op = _instance_writes.save_op(Customer(id="x", email="a@b", name="n"))
    item = op.params["Item"]
    assert item["created_at"] == item["updated_at"] == {"S": NOW_TEXT}


@pytest.mark.usefixtures("frozen")
def test_an_update_inside_a_transaction_takes_the_values_it_compiled() -> None:
    customer = Customer.from_item(
        {
            **model_item(
                Customer._meta,
                {"id": "x", "email": "a@b", "name": "n", "address": None, "version": 1}
                | {"created_at": CREATED, "updated_at": CREATED},
                token=STORED,
            )
        }
    )
    op = _instance_writes.update_instance_op(customer, {"name": "m"})
    op.on_success({})  # as after a transaction's commit: no Attributes returned
    assert (customer.name, customer.updated_at, customer.version) == ("m", NOW, 2)
    assert op.extra == {"refresh": False}


# --------------------------------------------------------------------------- companions


def test_a_write_with_companions_is_one_transaction_its_own_actions_first() -> None:
    from dynorm.query._compile_write import Add, Owned, compile_with_companions

    meta = Order._meta
    main = compile_write(meta, Delete(("P", "S")), Loaded(3, "tok"))
    assert compile_with_companions(main, []) is main  # no companion: the write as it is
    release = compile_write(meta, Delete(("G", "_UNIQUE")), Owned((("P", "S"),)), return_old=False)
    count = compile_write(
        meta, Add(("C", "_COUNT"), {"_count": -1}, {"_type": {"S": "T#count"}}), Unconditional()
    )
    joined = compile_with_companions(main, [release, count])
    assert joined.operation == "TransactWriteItems"
    assert [next(iter(a)) for a in joined.params["TransactItems"]] == ["Delete", "Delete", "Update"]
    assert joined.params["TransactItems"][0] == {"Delete": main.params}
    assert release.params == {
        "Key": {"pk": {"S": "G"}, "sk": {"S": "_UNIQUE"}},
        "ConditionExpression": "attribute_not_exists(#n0) OR (#n1 = :v0 AND #n2 = :v1)",
        "ExpressionAttributeNames": {"#n0": "pk", "#n1": "_opk", "#n2": "_osk"},
        "ExpressionAttributeValues": {":v0": {"S": "P"}, ":v1": {"S": "S"}},
    }
    assert count.params == {
        "Key": {"pk": {"S": "C"}, "sk": {"S": "_COUNT"}},
        "UpdateExpression": "SET #n0 = :v0 ADD #n1 :v1",
        "ExpressionAttributeNames": {"#n0": "_type", "#n1": "_count"},
        "ExpressionAttributeValues": {":v0": {"S": "T#count"}, ":v1": {"N": "-1"}},
    }
