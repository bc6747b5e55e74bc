"""Exact requests of versioned writes: saves with history, pruning, deletes, revert.

A versioned write is made of the write compiler's requests (`dynorm.query._compile_write`),
composed by `dynorm.versioning._compile_writes`. With the clock and the write tokens fixed,
every request is compared whole with the dict DynamoDB is to receive: offline for what the
builders compile (TableName is the executor's, so it is not there), and as sent to DynamoDB
Local (TableName included) where the write first reads the table (a delete reads the history
keys, a revert reads the old version).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from dynorm import VersionedModel, _instance_writes, fields
from dynorm._connection import Connection
from dynorm.query._compile_write import (
    Absent,
    Delete,
    Loaded,
    PutItem,
    compile_write,
    model_item,
)
from dynorm.query.compiler import Request
from dynorm.versioning import history_item
from dynorm.versioning._compile_writes import (
    compile_delete,
    compile_guarded_deletes,
    compile_save,
    delete_steps,
)

NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
NOW_TEXT = "2024-01-02T03:04:05.000000Z"
PK_NAME = {"#n0": "pk"}  # the names of `attribute_not_exists(#n0)`


class Essay(VersionedModel):
    """History stored as a map (readable payloads); a sort key with a character escaped."""

    id: str
    title: str
    body: str = ""
    edited_at: datetime = fields.UpdatedAt()

    class Meta:
        pk = "ESSAY#{id}"
        sk = "ESSAY#{id}"
        compress = False


class Memo(VersionedModel):
    """Keeps the newest two versions."""

    id: str
    text: str

    class Meta:
        pk = "MEMO#{id}"
        sk = "MEMO"
        max_versions = 2
        compress = False


class Sealed(VersionedModel):
    """History payloads gzip-compressed (the default)."""

    id: str
    text: str

    class Meta:
        pk = "SEALED#{id}"
        sk = "SEALED"


ESSAY_KEY = {"pk": {"S": "ESSAY#e1"}, "sk": {"S": "ESSAY#e1"}}
#: The history key prefix of that essay: its escaped sort key ('#' is '$23') and '!'.
ESSAY_HISTORY = "_history#ESSAY$23e1!"


def essay_body(version: int, token: str, title: str = "T", body: str = "") -> dict[str, Any]:
    """An Essay's stored attributes but its keys: what its history payload holds."""
    out: dict[str, Any] = {
        "_type": {"S": "Essay"},
        "version": {"N": str(version)},
        "id": {"S": "e1"},
        "title": {"S": title},
        "body": {"S": body},
        "edited_at": {"S": NOW_TEXT},
        "_wtok": {"S": token},
    }
    return out


def essay_item(version: int, token: str, title: str = "T", body: str = "") -> dict[str, Any]:
    """An Essay's current item as stored."""
    return {**ESSAY_KEY, **essay_body(version, token, title, body)}


def essay_history(version: int, token: str, title: str = "T", body: str = "") -> dict[str, Any]:
    """The history item of version `version` of that Essay."""
    return {
        "pk": {"S": "ESSAY#e1"},
        "sk": {"S": f"{ESSAY_HISTORY}{version:012d}"},
        "_type": {"S": "Essay#history"},
        "version": {"N": str(version)},
        "payload": {"M": essay_body(version, token, title, body)},
    }


def history_put(item: dict[str, Any]) -> dict[str, Any]:
    """The transaction action that creates a history item (never over an existing one)."""
    return {
        "Put": {
            "Item": item,
            "ConditionExpression": "attribute_not_exists(#n0)",
            "ExpressionAttributeNames": PK_NAME,
        }
    }


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fix the clock at NOW and make the n-th write token drawn "t<n>" (t1, t2, ...)."""
    drawn = iter(f"t{n}" for n in range(1, 1000))
    monkeypatch.setattr(_instance_writes, "utcnow", lambda: NOW)
    monkeypatch.setattr(_instance_writes, "new_write_token", lambda: next(drawn))
    yield


def with_table(action: dict[str, Any], table: str) -> dict[str, Any]:
    ((kind, body),) = action.items()
    return {kind: {**body, "TableName": table}}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Request]:
    """Every request sent to DynamoDB Local, as sent."""
    requests: list[Request] = []
    original = Connection.send

    def spy(self: Connection, operation: str, params: Any) -> dict[str, Any]:
        requests.append(Request(operation, params))
        return original(self, operation, params)

    monkeypatch.setattr(Connection, "send", spy)
    return requests


def stored_essay(version: int, token: str, **changes: str) -> Essay:
    """An Essay as loaded from the table: at `version`, holding its item's token."""
    return Essay.from_item(essay_item(version, token, **changes))


# --------------------------------------------------------------------------- saves


@pytest.mark.usefixtures("tokens")
def test_a_versioned_create_puts_the_item_and_its_first_history_item_only_if_new() -> None:
    op = Essay(id="e1", title="T")._save_op(None)
    assert op.request == Request(
        "TransactWriteItems",
        {
            "TransactItems": [
                {
                    "Put": {
                        "Item": essay_item(1, "t1"),
                        "ConditionExpression": "attribute_not_exists(#n0)",
                        "ExpressionAttributeNames": PK_NAME,
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
                history_put(essay_history(1, "t1")),
            ]
        },
    )
    assert op.token == "t1"


@pytest.mark.usefixtures("tokens")
def test_a_versioned_save_puts_the_item_at_the_loaded_version_and_the_new_history_item() -> None:
    essay = stored_essay(4, "old")
    essay.body = "more"
    assert essay._save_op(None).request == Request(
        "TransactWriteItems",
        {
            "TransactItems": [
                {
                    "Put": {
                        "Item": essay_item(5, "t1", body="more"),
                        "ConditionExpression": "#n0 = :v0 AND #n1 = :v1",
                        "ExpressionAttributeNames": {"#n0": "version", "#n1": "_wtok"},
                        "ExpressionAttributeValues": {":v0": {"N": "4"}, ":v1": {"S": "old"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
                history_put(essay_history(5, "t1", body="more")),
            ]
        },
    )


def test_compile_save_joins_the_compiled_put_the_history_put_and_the_prunes_in_order() -> None:
    meta = Essay._meta
    values = {"id": "e1", "title": "T", "body": "", "edited_at": NOW, "version": 9}
    put = compile_write(meta, PutItem(model_item(meta, values, token="t")), Loaded(8))
    history = history_item(Essay, put.params["Item"], 9)
    prune = [("ESSAY#e1", f"{ESSAY_HISTORY}{n:012d}") for n in (4, 2, 3)]
    assert compile_save(meta, put, history, prune) == Request(
        "TransactWriteItems",
        {
            "TransactItems": [
                {
                    "Put": {
                        "Item": essay_item(9, "t"),
                        "ConditionExpression": "#n0 = :v0",
                        "ExpressionAttributeNames": {"#n0": "version"},
                        "ExpressionAttributeValues": {":v0": {"N": "8"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
                history_put(essay_history(9, "t")),
                {"Delete": {"Key": {"pk": {"S": "ESSAY#e1"}, "sk": {"S": prune[0][1]}}}},
                {"Delete": {"Key": {"pk": {"S": "ESSAY#e1"}, "sk": {"S": prune[1][1]}}}},
                {"Delete": {"Key": {"pk": {"S": "ESSAY#e1"}, "sk": {"S": prune[2][1]}}}},
            ]
        },
    )


@pytest.mark.usefixtures("tokens")
def test_a_save_past_max_versions_deletes_the_version_leaving_the_window_in_its_transaction() -> (
    None
):
    memo = Memo.from_item(
        {
            "pk": {"S": "MEMO#m1"},
            "sk": {"S": "MEMO"},
            "_type": {"S": "Memo"},
            "version": {"N": "2"},
            "id": {"S": "m1"},
            "text": {"S": "two"},
            "_wtok": {"S": "old"},
        }
    )
    memo.text = "three"
    body = {
        "_type": {"S": "Memo"},
        "version": {"N": "3"},
        "id": {"S": "m1"},
        "text": {"S": "three"},
        "_wtok": {"S": "t1"},
    }
    assert memo._save_op(None).request == Request(
        "TransactWriteItems",
        {
            "TransactItems": [
                {
                    "Put": {
                        "Item": {"pk": {"S": "MEMO#m1"}, "sk": {"S": "MEMO"}, **body},
                        "ConditionExpression": "#n0 = :v0 AND #n1 = :v1",
                        "ExpressionAttributeNames": {"#n0": "version", "#n1": "_wtok"},
                        "ExpressionAttributeValues": {":v0": {"N": "2"}, ":v1": {"S": "old"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
                history_put(
                    {
                        "pk": {"S": "MEMO#m1"},
                        "sk": {"S": "_history#MEMO!000000000003"},
                        "_type": {"S": "Memo#history"},
                        "version": {"N": "3"},
                        "payload": {"M": body},
                    }
                ),
                # Versions 2 and 3 stay: version 1 leaves the window of two.
                {
                    "Delete": {
                        "Key": {"pk": {"S": "MEMO#m1"}, "sk": {"S": "_history#MEMO!000000000001"}}
                    }
                },
            ]
        },
    )


@pytest.mark.usefixtures("tokens")
def test_a_compressed_history_payload_is_the_gzip_of_the_type_tagged_json() -> None:
    op = Sealed(id="s1", text="hi")._save_op(None)
    history = op.params["TransactItems"][1]["Put"]["Item"]
    text = (
        b'{"_type":{"S":"Sealed"},"version":{"N":"1"},"id":{"S":"s1"},"text":{"S":"hi"},'
        b'"_wtok":{"S":"t1"}}'
    )
    assert history == {
        "pk": {"S": "SEALED#s1"},
        "sk": {"S": "_history#SEALED!000000000001"},
        "_type": {"S": "Sealed#history"},
        "version": {"N": "1"},
        "payload": {"B": gzip.compress(text, mtime=0)},
    }
    assert gzip.decompress(history["payload"]["B"]) == text


def jot_model(keep: int | None) -> type[VersionedModel]:
    """The same model (same entity type) deployed with another `Meta.max_versions`."""

    class Jot(VersionedModel):
        id: str
        text: str = ""

        class Meta:
            pk = "JOT#{id}"
            sk = "JOT"
            max_versions = keep
            compress = False

    return Jot


def jot_item(version: int, token: str) -> dict[str, Any]:
    return {
        "pk": {"S": "JOT#j1"},
        "sk": {"S": "JOT"},
        "_type": {"S": "Jot"},
        "version": {"N": str(version)},
        "id": {"S": "j1"},
        "text": {"S": f"v{version}"},
        "_wtok": {"S": token},
    }


def jot_history_key(version: int) -> dict[str, Any]:
    return {"pk": {"S": "JOT#j1"}, "sk": {"S": f"_history#JOT!{version:012d}"}}


@pytest.mark.usefixtures("tokens")
def test_a_save_after_max_versions_was_lowered_finds_the_older_history_and_prunes_it_too(
    dynorm_table: str, sent: list[Request]
) -> None:
    unlimited = jot_model(None)(id="j1")
    for n in range(1, 7):
        unlimited.text = f"v{n}"
        unlimited.save()  # versions 1 to 6, tokens t1 to t6
    jot = jot_model(2).from_item(jot_item(6, "t6"))
    sent.clear()
    jot.text = "v7"
    jot.save()
    table = {"TableName": dynorm_table}
    body = {k: v for k, v in jot_item(7, "t7").items() if k not in ("pk", "sk")}
    assert sent == [
        # Version 5 leaves the window of two; the versions older than it, keys only, at
        # most as many as the transaction has room for, plus one (to know if any are left).
        Request(
            "Query",
            {
                "KeyConditionExpression": "#n1 = :v2 AND #n0 BETWEEN :v0 AND :v1",
                "FilterExpression": "#n2 = :v3",
                "ProjectionExpression": "#n1, #n0",
                "ExpressionAttributeNames": {"#n0": "sk", "#n1": "pk", "#n2": "_type"},
                "ExpressionAttributeValues": {
                    ":v0": jot_history_key(0)["sk"],
                    ":v1": jot_history_key(4)["sk"],
                    ":v2": {"S": "JOT#j1"},
                    ":v3": {"S": "Jot#history"},
                },
                "Limit": 98,
                **table,
            },
        ),
        Request(
            "TransactWriteItems",
            {
                "TransactItems": [
                    {
                        "Put": {
                            "Item": jot_item(7, "t7"),
                            "ConditionExpression": "#n0 = :v0 AND #n1 = :v1",
                            "ExpressionAttributeNames": {"#n0": "version", "#n1": "_wtok"},
                            "ExpressionAttributeValues": {":v0": {"N": "6"}, ":v1": {"S": "t6"}},
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                            **table,
                        }
                    },
                    with_table(
                        history_put(
                            {
                                **jot_history_key(7),
                                "_type": {"S": "Jot#history"},
                                "version": {"N": "7"},
                                "payload": {"M": body},
                            }
                        ),
                        dynorm_table,
                    ),
                    *({"Delete": {"Key": jot_history_key(n), **table}} for n in (5, 1, 2, 3, 4)),
                ]
            },
        ),
    ]
    assert [h.version for h in jot.history()] == [7, 6]


# --------------------------------------------------------------------------- deletes


def essay_delete() -> Request:
    """The compiled conditional DeleteItem of the Essay loaded at version 3 (token "t3")."""
    return compile_write(Essay._meta, Delete(("ESSAY#e1", "ESSAY#e1")), Loaded(3, "t3"))


CURRENT_CONDITION = {
    "Key": ESSAY_KEY,
    "ConditionExpression": "#n0 = :v0 AND #n1 = :v1",
    "ExpressionAttributeNames": {"#n0": "version", "#n1": "_wtok"},
    "ExpressionAttributeValues": {":v0": {"N": "3"}, ":v1": {"S": "t3"}},
    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
}


def history_keys(count: int) -> list[tuple[str, str]]:
    return [("ESSAY#e1", f"{ESSAY_HISTORY}{n:012d}") for n in range(1, count + 1)]


def deletes(keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [{"Delete": {"Key": {"pk": {"S": pk}, "sk": {"S": sk}}}} for pk, sk in keys]


def test_a_delete_removes_the_current_item_at_its_version_with_its_history_in_one_transaction() -> (
    None
):
    keys = history_keys(3)
    assert compile_delete(Essay._meta, essay_delete(), keys) == [
        Request(
            "TransactWriteItems",
            {"TransactItems": [{"Delete": CURRENT_CONDITION}, *deletes(keys)]},
        )
    ]


def test_a_long_history_is_deleted_oldest_first_each_step_checking_the_current_item() -> None:
    keys = history_keys(250)
    assert delete_steps(keys) == [(0, keys[:99]), (99, keys[99:151]), (151, keys[151:])]
    assert compile_delete(Essay._meta, essay_delete(), keys) == [
        Request(
            "TransactWriteItems",
            {"TransactItems": [{"ConditionCheck": CURRENT_CONDITION}, *deletes(keys[:99])]},
        ),
        Request(
            "TransactWriteItems",
            {"TransactItems": [{"ConditionCheck": CURRENT_CONDITION}, *deletes(keys[99:151])]},
        ),
        # The current item goes last, with the newest 99 versions.
        Request(
            "TransactWriteItems",
            {"TransactItems": [{"Delete": CURRENT_CONDITION}, *deletes(keys[151:])]},
        ),
    ]


def test_pruning_after_a_commit_checks_the_saved_version_and_token_in_each_transaction() -> None:
    keys = history_keys(100)
    check = {
        "ConditionCheck": {
            "Key": ESSAY_KEY,
            "ConditionExpression": "#n0 = :v0 AND #n1 = :v1",
            "ExpressionAttributeNames": {"#n0": "version", "#n1": "_wtok"},
            "ExpressionAttributeValues": {":v0": {"N": "7"}, ":v1": {"S": "t7"}},
        }
    }
    key = ("ESSAY#e1", "ESSAY#e1")
    assert compile_guarded_deletes(Essay._meta, key, Loaded(7, "t7"), keys) == [
        Request("TransactWriteItems", {"TransactItems": [check, *deletes(keys[:99])]}),
        Request("TransactWriteItems", {"TransactItems": [check, *deletes(keys[99:])]}),
    ]


def test_the_history_of_a_gone_object_is_deleted_only_while_its_key_stays_free() -> None:
    keys = history_keys(2)
    key = ("ESSAY#e1", "ESSAY#e1")
    check = {
        "ConditionCheck": {
            "Key": ESSAY_KEY,
            "ConditionExpression": "attribute_not_exists(#n0)",
            "ExpressionAttributeNames": PK_NAME,
        }
    }
    assert compile_guarded_deletes(Essay._meta, key, Absent(), keys) == [
        Request("TransactWriteItems", {"TransactItems": [check, *deletes(keys)]})
    ]


# ------------------------------------------------------------- deletes and reverts, as sent


@pytest.mark.usefixtures("tokens")
def test_deleting_a_stored_object_sends_one_transaction_of_it_and_every_version(
    dynorm_table: str, sent: list[Request]
) -> None:
    essay = Essay(id="e1", title="T")
    essay.save()
    essay.save()
    essay.save()  # version 3, token t3
    sent.clear()
    essay.delete()
    current = with_table({"Delete": CURRENT_CONDITION}, dynorm_table)
    assert sent == [
        # The history keys, read consistently: with the version condition, no version this
        # read missed can exist.
        Request(
            "Query",
            {
                "KeyConditionExpression": "#n1 = :v1 AND begins_with(#n0, :v0)",
                "FilterExpression": "#n2 = :v2",
                "ProjectionExpression": "#n1, #n0",
                "ConsistentRead": True,
                "ExpressionAttributeNames": {"#n0": "sk", "#n1": "pk", "#n2": "_type"},
                "ExpressionAttributeValues": {
                    ":v0": {"S": ESSAY_HISTORY},
                    ":v1": {"S": "ESSAY#e1"},
                    ":v2": {"S": "Essay#history"},
                },
                "TableName": dynorm_table,
            },
        ),
        Request(
            "TransactWriteItems",
            {
                "TransactItems": [
                    current,
                    *(with_table(d, dynorm_table) for d in deletes(history_keys(3))),
                ]
            },
        ),
    ]
    assert essay.version == 0


@pytest.mark.usefixtures("tokens")
def test_revert_saves_the_old_content_as_a_new_version_at_the_loaded_version(
    dynorm_table: str, sent: list[Request]
) -> None:
    essay = Essay(id="e1", title="T", body="first")
    essay.save()  # version 1, token t1
    essay.title, essay.body = "U", "second"
    essay.save()  # version 2, token t2
    sent.clear()
    essay.revert(1)
    assert sent == [
        Request(
            "GetItem",
            {
                "TableName": dynorm_table,
                "Key": {"pk": {"S": "ESSAY#e1"}, "sk": {"S": f"{ESSAY_HISTORY}000000000001"}},
                "ConsistentRead": True,
            },
        ),
        Request(
            "TransactWriteItems",
            {
                "TransactItems": [
                    {
                        "Put": {
                            "Item": essay_item(3, "t3", body="first"),
                            "ConditionExpression": "#n0 = :v0 AND #n1 = :v1",
                            "ExpressionAttributeNames": {"#n0": "version", "#n1": "_wtok"},
                            "ExpressionAttributeValues": {":v0": {"N": "2"}, ":v1": {"S": "t2"}},
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                            "TableName": dynorm_table,
                        }
                    },
                    with_table(history_put(essay_history(3, "t3", body="first")), dynorm_table),
                ]
            },
        ),
    ]
    assert (essay.version, essay.title, essay.body) == (3, "T", "first")


@pytest.mark.usefixtures("tokens")
def test_a_queryset_delete_removes_each_match_at_its_read_version_if_it_still_matches(
    dynorm_table: str, sent: list[Request]
) -> None:
    Essay(id="e1", title="T").save()  # version 1, token t1
    sent.clear()
    assert Essay.objects.filter(id="e1", title="T").delete() == 1
    table = {"TableName": dynorm_table}
    assert [r.operation for r in sent] == ["Query", "Query", "TransactWriteItems"]
    assert sent[-1] == Request(
        "TransactWriteItems",
        {
            "TransactItems": [
                {
                    "Delete": {
                        "Key": ESSAY_KEY,
                        # The version it was read at, every filter, and the entity type.
                        "ConditionExpression": "#n0 = :v0 AND #n1 = :v1 AND #n2 = :v2 AND "
                        "#n3 = :v3",
                        "ExpressionAttributeNames": {
                            "#n0": "version",
                            "#n1": "id",
                            "#n2": "title",
                            "#n3": "_type",
                        },
                        "ExpressionAttributeValues": {
                            ":v0": {"N": "1"},
                            ":v1": {"S": "e1"},
                            ":v2": {"S": "T"},
                            ":v3": {"S": "Essay"},
                        },
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        **table,
                    }
                },
                {
                    "Delete": {
                        "Key": {"pk": {"S": "ESSAY#e1"}, "sk": {"S": f"{ESSAY_HISTORY}{1:012d}"}},
                        **table,
                    }
                },
            ]
        },
    )
