"""Versioned models on DynamoDB Local: each object's history is its own, pruning keeps the
window, history keys fit DynamoDB's limit, and deleting never leaves history without its
object."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import dynorm
from dynorm import Model, VersionedModel, _config
from dynorm._connection import Connection
from dynorm._constants import SORT_KEY_LIMIT
from dynorm.exceptions import (
    ConfigurationError,
    InvalidValueError,
    QueryError,
    ServiceError,
    ThrottledError,
    VersionConflictError,
)
from dynorm.versioning import history_sk

pytestmark = pytest.mark.usefixtures("dynorm_table")


class Doc(VersionedModel):
    tenant: str
    slug: str
    body: str = ""

    class Meta:
        pk = "TENANT#{tenant}"
        sk = "DOC#{slug}"


class DocRevision(VersionedModel):
    """Shares Doc's partition; its key extends Doc's key of the same slug."""

    tenant: str
    slug: str
    rev: str
    body: str = ""

    class Meta:
        pk = "TENANT#{tenant}"
        sk = "DOC#{slug}#{rev}"


class Crafted(Model):
    """A plain model in the same partition whose every key field a tenant chooses."""

    tenant: str
    a: str
    b: str
    c: str
    d: str

    class Meta:
        pk = "TENANT#{tenant}"
        sk = "{a}#{b}#{c}#{d}"


class Tagged(VersionedModel):
    """A versioned model whose sort key can start with the history prefix's text."""

    tenant: str
    kind: str
    name: str
    body: str = ""

    class Meta:
        pk = "TENANT#{tenant}"
        sk = "{kind}#{name}"


class Slugged(VersionedModel):
    id: str
    slug: str

    class Meta:
        pk = "SLUGGED#{id}"
        sk = "{slug}"


def partition(pk: str) -> list[dict[str, Any]]:
    """Every item stored under `pk` (a consistent raw Query, all pages)."""
    conn = _config.get_connection()
    params: dict[str, Any] = {
        "TableName": conn.table_name,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": pk}},
        "ConsistentRead": True,
    }
    items: list[dict[str, Any]] = []
    while True:
        response = conn.client.query(**params)
        items += response["Items"]
        if "LastEvaluatedKey" not in response:
            return items
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def history_versions(pk: str, type_name: str) -> list[int]:
    """The versions of every stored history item of `type_name` in a partition, ascending."""
    return sorted(
        int(i["version"]["N"]) for i in partition(pk) if i["_type"]["S"] == f"{type_name}#history"
    )


def saved(obj: VersionedModel, versions: int) -> VersionedModel:
    obj.save()
    for n in range(2, versions + 1):
        obj.body = f"v{n}"  # type: ignore[attr-defined]
        obj.save()
    return obj


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The operations dynorm sends from now on."""
    operations: list[str] = []
    original = Connection.send

    def spy(self: Connection, operation: str, params: Any) -> dict[str, Any]:
        operations.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(Connection, "send", spy)
    return operations


# --------------------------------------------------------------------------- history is its own


def test_history_and_delete_reach_only_their_own_object() -> None:
    slugs = ["a", "a#b", "a!b", "a$23b", "a#", "a$"]
    docs = {s: saved(Doc(tenant="t", slug=s, body="v1"), 3) for s in slugs}
    for slug, doc in docs.items():
        history = list(doc.history())
        assert [(h.slug, h.version) for h in history] == [(slug, 3), (slug, 2), (slug, 1)]
        assert doc.history().count() == 3
        assert Doc.objects.get(tenant="t", slug=slug, version=1).slug == slug
    docs["a"].delete()
    assert history_versions("TENANT#t", "Doc") == sorted([1, 2, 3] * (len(slugs) - 1))
    for slug in slugs[1:]:
        assert [h.version for h in docs[slug].history()] == [3, 2, 1]


def test_a_key_that_extends_another_models_key_keeps_its_history_apart() -> None:
    doc = saved(Doc(tenant="t", slug="a", body="v1"), 2)
    revision = saved(DocRevision(tenant="t", slug="a", rev="1", body="v1"), 3)
    assert [(type(h), h.version) for h in doc.history()] == [(Doc, 2), (Doc, 1)]
    assert revision.history().count() == 3
    doc.delete()
    assert history_versions("TENANT#t", "DocRevision") == [1, 2, 3]
    assert [h.version for h in revision.history()] == [3, 2, 1]


def test_listings_never_return_history_items() -> None:
    saved(Tagged(tenant="t", kind="_history", name="x", body="v1"), 3)
    saved(Tagged(tenant="t", kind="plain", name="y", body="v1"), 2)
    # "_history#" is both this object's key prefix and the prefix of every history key.
    listed = Tagged.objects.filter(tenant="t", kind="_history")
    assert [(o.name, o.version) for o in listed] == [("x", 3)]
    assert listed.count() == 1 and listed.exists()
    assert sorted(o.name for o in Tagged.objects.filter(tenant="t")) == ["x", "y"]
    assert Tagged.objects.filter(tenant="t").count() == 2
    assert sorted(o.name for o in Tagged.objects.scan().filter(tenant="t")) == ["x", "y"]
    assert Tagged.objects.filter(tenant="t", kind__begins_with="_").count() == 1
    assert Tagged.objects.filter(tenant="t", kind="_history").delete() == 1
    assert history_versions("TENANT#t", "Tagged") == [1, 2]


def test_field_values_can_neither_take_nor_reach_a_history_key() -> None:
    # A tenant who controls every key field of another model in the partition spells out
    # history keys of Doc "x" (of this format and of the earlier "_history#<sk>#<n>" one).
    spellings = [
        ("_history", "DOC", "x", "000000000001"),
        ("_history", "DOC", "x", "000000000002"),
        ("_history", "DOC$23x!000000000001", "y", "z"),
        ("_history", "DOC#x!000000000002", "y", "z"),
        ("_history", "DOC", "x!000000000003", "z"),
    ]
    forged = [Crafted.objects.create(tenant="t", a=a, b=b, c=c, d=d) for a, b, c, d in spellings]
    doc = saved(Doc(tenant="t", slug="x", body="v1"), 3)  # no history key is taken
    assert [h.version for h in doc.history()] == [3, 2, 1]
    doc.delete()
    stored = {i["sk"]["S"] for i in partition("TENANT#t")}
    assert stored == {o.dynamo_key["sk"] for o in forged}  # and none was deleted


# --------------------------------------------------------------------------- pruning


def wiki_model(keep: int | None) -> type[VersionedModel]:
    """The same model (same name, same entity type) deployed with another max_versions."""

    class Wiki(VersionedModel):
        id: str
        body: str = ""

        class Meta:
            pk = "WIKI#{id}"
            max_versions = keep

    return Wiki


def test_lowering_max_versions_prunes_all_older_history_on_the_next_save(
    sent: list[str],
) -> None:
    saved(wiki_model(None)(id="w", body="v1"), 10)
    assert history_versions("WIKI#w", "Wiki") == list(range(1, 11))
    obj = wiki_model(3).objects.get(id="w")
    sent.clear()
    obj.body = "v11"
    obj.save()
    assert sent == ["Query", "TransactWriteItems"]  # found and pruned in the transaction
    assert history_versions("WIKI#w", "Wiki") == [9, 10, 11]
    assert [h.version for h in obj.history()] == [11, 10, 9]


def test_pruning_a_history_longer_than_a_transaction_finishes_after_the_commit() -> None:
    saved(wiki_model(None)(id="long", body="v1"), 110)
    obj = wiki_model(3).objects.get(id="long")
    obj.body = "v111"
    obj.save()  # 107 versions fall out of the window: 97 in the transaction, 10 after it
    assert history_versions("WIKI#long", "Wiki") == [109, 110, 111]


def test_pruning_inside_a_transaction_happens_after_the_commit() -> None:
    saved(wiki_model(None)(id="tx", body="v1"), 6)
    obj = wiki_model(2).objects.get(id="tx")
    with dynorm.transaction():
        obj.body = "v7"
        obj.save()
        assert history_versions("WIKI#tx", "Wiki") == list(range(1, 7))  # nothing sent yet
    assert history_versions("WIKI#tx", "Wiki") == [6, 7]


def test_pruning_that_fails_after_the_commit_is_logged_and_finished_by_the_next_save(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    saved(wiki_model(None)(id="f", body="v1"), 110)
    obj = wiki_model(3).objects.get(id="f")
    original = Connection.send
    transactions: list[int] = []

    def throttled(self: Connection, operation: str, params: Any) -> dict[str, Any]:
        if operation == "TransactWriteItems":
            transactions.append(1)
            if len(transactions) == 2:  # the save's commit went through; the pruning after it
                raise ThrottledError("injected", operation=operation)
        return original(self, operation, params)

    monkeypatch.setattr(Connection, "send", throttled)
    obj.body = "v111"
    with caplog.at_level(logging.WARNING, logger="dynorm"):
        obj.save()  # the save itself succeeded
    assert obj.version == 111
    assert "pruning the older history of Wiki failed" in caplog.text
    assert len(history_versions("WIKI#f", "Wiki")) == 13  # longer than the window, not shorter
    monkeypatch.setattr(Connection, "send", original)
    obj.body = "v112"
    obj.save()
    assert history_versions("WIKI#f", "Wiki") == [110, 111, 112]


def test_pruning_after_the_commit_never_reaches_a_new_object_under_the_same_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    saved(wiki_model(None)(id="re", body="v1"), 6)
    obj = wiki_model(2).objects.get(id="re")
    original = Connection.send
    raced: list[bool] = []

    def recreate_after_commit(self: Connection, operation: str, params: Any) -> dict[str, Any]:
        response = original(self, operation, params)
        if operation == "TransactWriteItems" and not raced:
            raced.append(True)
            # Between the commit and its pruning: the object is deleted and a new one is
            # created under the same key, with versions 1 to 3 (below the window).
            monkeypatch.setattr(Connection, "send", original)
            conn = _config.get_connection()
            for item in partition("WIKI#re"):
                key = {"pk": item["pk"], "sk": item["sk"]}
                conn.client.delete_item(TableName=conn.table_name, Key=key)
            saved(wiki_model(None)(id="re", body="new"), 3)
        return response

    monkeypatch.setattr(Connection, "send", recreate_after_commit)
    with dynorm.transaction():  # inside a block, what falls out of the window goes after it
        obj.body = "v7"
        obj.save()
    assert raced
    assert history_versions("WIKI#re", "Wiki") == [1, 2, 3]  # the new object's, untouched


def test_max_versions_must_be_a_positive_whole_number() -> None:
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ConfigurationError, match="max_versions"):

            class Bad(VersionedModel):
                id: str

                class Meta:
                    pk = "BAD#{id}"
                    max_versions = bad


# --------------------------------------------------------------------------- key limits


def history_key_bytes(slug: str) -> int:
    """Bytes of the history sort key of Slugged(slug=slug), as dynorm renders it."""
    _, sk = Slugged._meta.primary_key({"id": "s", "slug": slug})
    return len(history_sk(sk, 1).encode("utf-8"))


@pytest.mark.parametrize("unit", ["a", "é", "🎉", "#", "$", "!"])
def test_the_longest_sort_key_whose_history_key_fits_is_stored_and_one_byte_more_is_refused(
    sent: list[str], unit: str
) -> None:
    slug = ""
    while history_key_bytes(slug + unit) <= SORT_KEY_LIMIT:
        slug += unit
    while history_key_bytes(slug + "a") <= SORT_KEY_LIMIT:
        slug += "a"
    assert history_key_bytes(slug) == SORT_KEY_LIMIT  # the exact boundary
    obj = Slugged(id="s", slug=slug)
    obj.save()
    obj.save()
    assert [h.version for h in obj.history()] == [2, 1]
    assert Slugged.objects.get(id="s", slug=slug, version=1).slug == slug
    obj.delete()
    assert partition("SLUGGED#s") == []

    sent.clear()
    too_long = Slugged(id="t", slug=slug + "a")  # one byte more
    with pytest.raises(InvalidValueError) as info:
        too_long.save()
    message = str(info.value)
    assert "Slugged" in message and "slug" in message and "shorten" in message
    assert unit * 3 not in message and "aaa" not in message  # never the value
    with pytest.raises(InvalidValueError):
        list(too_long.history())
    assert sent == []  # refused before any request


# --------------------------------------------------------------------------- deleting


def long_history(doc_id: str, versions: int = 120) -> VersionedModel:
    return saved(Doc(tenant="long", slug=doc_id, body="v1"), versions)


def test_a_delete_interrupted_midway_leaves_the_object_with_its_newest_versions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = long_history("cut")
    original = Connection.send
    transactions: list[int] = []

    def crash_on_the_last(self: Connection, operation: str, params: Any) -> dict[str, Any]:
        if operation == "TransactWriteItems":
            transactions.append(len(params["TransactItems"]))
            if len(transactions) == 2:
                raise ServiceError("injected crash", maybe_applied=False)
        return original(self, operation, params)

    monkeypatch.setattr(Connection, "send", crash_on_the_last)
    with pytest.raises(ServiceError):
        doc.delete()
    assert transactions == [22, 100]  # check + 21 oldest versions, then the item + 99 newest
    assert Doc.objects.get(tenant="long", slug="cut").version == 120
    assert history_versions("TENANT#long", "Doc") == list(range(22, 121))  # a suffix: no gap
    monkeypatch.setattr(Connection, "send", original)
    doc.delete()  # calling it again finishes the job
    assert partition("TENANT#long") == []


def test_a_save_during_a_long_delete_stops_it_and_says_what_was_deleted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = long_history("race")
    other = Doc.objects.get(tenant="long", slug="race")
    original = Connection.send
    transactions: list[int] = []

    def save_between(self: Connection, operation: str, params: Any) -> dict[str, Any]:
        if operation == "TransactWriteItems":
            transactions.append(1)
            if len(transactions) == 2:  # after the first step of the delete
                monkeypatch.setattr(Connection, "send", original)
                other.body = "concurrent"
                other.save()
        return original(self, operation, params)

    monkeypatch.setattr(Connection, "send", save_between)
    with pytest.raises(VersionConflictError) as info:
        doc.delete()
    assert "21 oldest history versions were already deleted" in str(info.value)
    assert "concurrent" not in str(info.value)
    assert Doc.objects.get(tenant="long", slug="race").body == "concurrent"
    assert history_versions("TENANT#long", "Doc") == list(range(22, 122))


def test_a_history_too_long_for_one_transaction_is_refused_inside_one(sent: list[str]) -> None:
    doc = long_history("tx", versions=100)
    sent.clear()
    with pytest.raises(QueryError, match="inside a transaction"):
        with dynorm.transaction():
            doc.delete()
    assert "TransactWriteItems" not in sent
    assert len(history_versions("TENANT#long", "Doc")) == 100
    doc.delete()
    assert partition("TENANT#long") == []


@pytest.mark.parametrize(("change", "deleted"), [("v2", 2), ("edited", 1)])
def test_a_queryset_delete_removes_only_what_still_matches_with_all_its_history(
    monkeypatch: pytest.MonkeyPatch, change: str, deleted: int
) -> None:
    saved(Doc(tenant="q", slug="raced", body="v1"), 2)
    saved(Doc(tenant="q", slug="plain", body="v1"), 2)
    other = Doc.objects.get(tenant="q", slug="raced")
    original = Connection.send
    reads: list[str] = []

    def change_after_the_read(self: Connection, operation: str, params: Any) -> dict[str, Any]:
        response = original(self, operation, params)
        if operation == "Query" and not reads:  # the QuerySet's read of the matches
            reads.append(operation)
            other.body = change  # version 3: still body "v2", or no longer
            other.save()
        return response

    monkeypatch.setattr(Connection, "send", change_after_the_read)
    assert Doc.objects.filter(tenant="q", body="v2").delete() == deleted
    if deleted == 2:  # still matching: deleted with its new version's history too
        assert partition("TENANT#q") == []
    else:  # no longer matching: left whole
        assert Doc.objects.get(tenant="q", slug="raced").body == "edited"
        assert history_versions("TENANT#q", "Doc") == [1, 2, 3]


def test_deleting_an_object_already_gone_also_removes_history_left_without_it() -> None:
    doc = saved(Doc(tenant="o", slug="x", body="v1"), 3)
    conn = _config.get_connection()
    # What an interrupted delete of an earlier build (current item first) could leave.
    key = {"pk": {"S": "TENANT#o"}, "sk": {"S": "DOC#x"}}
    conn.client.delete_item(TableName=conn.table_name, Key=key)
    assert history_versions("TENANT#o", "Doc") == [1, 2, 3]
    doc.delete()  # gone counts as deleted, and its history goes with it
    assert doc.version == 0
    assert partition("TENANT#o") == []


def test_a_lost_response_on_a_long_delete_is_applied_once() -> None:
    from tests.reliability.helpers import Faults

    doc = long_history("lost")
    faults = Faults()
    try:
        applied = faults.lose_response("TransactWriteItems", times=2)  # both steps
        doc.delete()  # botocore's retries carry the same ClientRequestToken: idempotent
    finally:
        faults.clear()
    faults.check_fired()
    assert len(applied) == 2
    assert doc.version == 0
    assert partition("TENANT#long") == []
