"""Models mapped onto tables dynorm did not create, on DynamoDB Local: physical key, type and
version attribute names, `fields.Attr`, plain-value keys, existing indexes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pydantic import Field

import dynorm
from dynorm import F, Index, Model, VersionedModel, _config, fields
from dynorm._descriptions import describe_json
from dynorm._registry import isolated_registry
from dynorm.exceptions import (
    ConfigurationError,
    QueryError,
    UniqueViolationError,
    VersionConflictError,
)

pytestmark = pytest.mark.usefixtures("dynorm_table")

SUFFIX = uuid.uuid4().hex[:8]
FORUM = f"legacy-forum-{SUFFIX}"
PLAIN = f"legacy-plain-{SUFFIX}"
EVENTS = f"legacy-events-{SUFFIX}"
SINGLE = f"legacy-single-{SUFFIX}"
NOTES = f"legacy-notes-{SUFFIX}"

legacy = dynorm.Table(
    FORUM,
    managed=False,
    pk_attribute="ForumName",
    sk_attribute="Subject",
    type_attribute=None,
    version_attribute=None,
)


class Thread(Model):
    forum: str = fields.Attr("ForumName")
    subject: str = fields.Attr("Subject")
    views: int = 0
    last_post: datetime | None = fields.Attr("LastPostDateTime", default=None)

    class Meta:
        table = legacy
        pk = "{forum}"
        sk = "{subject}"
        version_attribute = "Version"
        indexes = [
            Index(
                "by_views",
                pk="{forum}",
                sk="{views}",
                name="ViewsIndex",
                pk_attribute="ForumName",
                sk_attribute="Views",
                projection="ALL",
                local=True,
            ),
        ]


# Locking off (last writer wins). Its own table: with no type attribute and the same plain
# keys, a Thread in its key range would be read (and saved over) as a LegacyNote, so one
# table for both is refused (test_an_untyped_model_sharing_a_key_range_is_refused).
notes = dynorm.Table(
    NOTES,
    managed=False,
    pk_attribute="ForumName",
    sk_attribute="Subject",
    type_attribute=None,
    version_attribute=None,
)


class LegacyNote(Model):
    forum: str = fields.Attr("ForumName")
    subject: str = fields.Attr("Subject")
    text: str = ""

    class Meta:
        table = notes
        pk = "{forum}"
        sk = "{subject}"


plain = dynorm.Table(PLAIN, managed=False, pk_attribute="id", sk_attribute=None)


class LegacyDoc(Model):  # a partition key only, the id stored as it is
    id: str
    body: str = ""

    class Meta:
        table = plain
        pk = "{id}"
        type_attribute = None
        version_attribute = None


events = dynorm.Table(EVENTS, managed=False, pk_attribute="Owner", sk_attribute="Seq")


class LegacyEvent(Model):  # a numeric sort key
    owner: str = fields.Attr("Owner")
    seq: int = fields.Attr("Seq")
    kind: str = ""

    class Meta:
        table = events
        pk = "{owner}"
        sk = "{seq}"


single = dynorm.Table(SINGLE, managed=False, pk_attribute="PK", sk_attribute="SK")


class Member(Model):  # companions (unique guards, counter shards) under the table's names
    id: str
    email: str

    class Meta:
        table = single
        pk = "MEMBER#{id}"
        unique = [("email",)]
        counted = True


def _client() -> Any:
    return _config.get_connection().client


def _create_table(
    name: str,
    hash_key: tuple[str, str],
    range_key: tuple[str, str] | None = None,
    more: dict[str, str] | None = None,
    *,
    lsi: dict[str, Any] | None = None,
) -> None:
    """Create a table the way another tool would: (attribute, type) keys, an optional LSI."""
    keys = [(hash_key, "HASH")] + ([(range_key, "RANGE")] if range_key else [])
    types = {attr: kind for (attr, kind), _ in keys} | (more or {})
    params: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [{"AttributeName": a, "KeyType": role} for (a, _), role in keys],
        "AttributeDefinitions": [
            {"AttributeName": a, "AttributeType": t} for a, t in types.items()
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if lsi is not None:
        params["LocalSecondaryIndexes"] = [lsi]
    _client().create_table(**params)


@pytest.fixture(autouse=True)
def foreign_tables(dynorm_table: str) -> Iterator[None]:
    client = _client()
    lsi = {
        "IndexName": "ViewsIndex",
        "KeySchema": [
            {"AttributeName": "ForumName", "KeyType": "HASH"},
            {"AttributeName": "Views", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    _create_table(FORUM, ("ForumName", "S"), ("Subject", "S"), {"Views": "N"}, lsi=lsi)
    _create_table(NOTES, ("ForumName", "S"), ("Subject", "S"))
    _create_table(PLAIN, ("id", "S"))
    _create_table(EVENTS, ("Owner", "S"), ("Seq", "N"))
    _create_table(SINGLE, ("PK", "S"), ("SK", "S"))
    try:
        yield
    finally:
        for name in (FORUM, NOTES, PLAIN, EVENTS, SINGLE):
            client.delete_table(TableName=name)


def _raw(table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    item: dict[str, Any] | None = _client().get_item(TableName=table, Key=key).get("Item")
    return item


def test_a_foreign_item_is_read_and_written_under_its_physical_names() -> None:
    _client().put_item(
        TableName=FORUM,
        Item={
            "ForumName": {"S": "DynamoDB"},
            "Subject": {"S": "How do I #1?"},
            "views": {"N": "3"},
            "Version": {"N": "1"},
        },
    )
    thread = Thread.objects.get(forum="DynamoDB", subject="How do I #1?")
    assert (thread.views, thread.version, thread.last_post) == (3, 1, None)
    thread.views = 4
    thread.last_post = datetime(2024, 1, 2, tzinfo=timezone.utc)
    thread.save()
    item = _raw(FORUM, {"ForumName": {"S": "DynamoDB"}, "Subject": {"S": "How do I #1?"}})
    assert item is not None
    assert item["Version"] == {"N": "2"}
    assert item["views"] == {"N": "4"}
    assert item["Views"] == {"N": "4"}  # the LSI's own sort key
    assert item["LastPostDateTime"]["S"].startswith("2024-01-02T00:00:00")
    assert not {"pk", "sk", "_type", "version", "forum", "subject"} & set(item)


def test_pynamodb_style_locking_refuses_a_stale_copy() -> None:
    first = Thread.objects.create(forum="f", subject="s")
    stored = _raw(FORUM, {"ForumName": {"S": "f"}, "Subject": {"S": "s"}})
    assert stored is not None and stored["Version"] == {"N": "1"}  # first save writes 1
    stale = Thread.objects.get(forum="f", subject="s")
    first.views = 1
    first.save()
    stale.views = 2
    with pytest.raises(VersionConflictError):
        stale.save()
    assert Thread.objects.get(forum="f", subject="s").views == 1


def test_with_no_version_attribute_save_is_last_writer_wins() -> None:
    LegacyNote.objects.create(forum="f", subject="n", text="a")
    one = LegacyNote.objects.get(forum="f", subject="n")
    two = LegacyNote.objects.get(forum="f", subject="n")
    one.text = "one"
    one.save()
    two.text = "two"
    two.save()  # no conflict: locking is off for LegacyNote
    item = _raw(NOTES, {"ForumName": {"S": "f"}, "Subject": {"S": "n"}})
    assert item is not None and item["text"] == {"S": "two"}
    assert "Version" not in item and "version" not in item


def test_an_lsi_with_a_numeric_sort_key_orders_numerically() -> None:
    for n in (2, 10, 9, 100):
        Thread.objects.create(forum="g", subject=f"s{n}", views=n)
    got = Thread.objects.using_gsi("by_views").filter(forum="g", views__gt=5)
    assert [t.views for t in got] == [9, 10, 100]


_key_text = st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ids=st.lists(_key_text, min_size=1, max_size=4, unique=True), data=st.data())
def test_a_plain_key_is_stored_as_the_value_and_finds_exactly_it(
    ids: list[str], data: st.DataObject
) -> None:
    run = uuid.uuid4().hex[:6]  # examples share the table: each writes its own ids
    ids = [f"{value}{run}" if i % 2 else f"{run}{value}" for i, value in enumerate(ids)]
    for i, value in enumerate(ids):
        LegacyDoc.objects.create(id=value, body=str(i))
    for i, value in enumerate(ids):
        item = _raw(PLAIN, {"id": {"S": value}})
        assert item is not None and item["body"] == {"S": str(i)}  # stored == value
        assert LegacyDoc.objects.get(id=value).body == str(i)
        assert [d.body for d in LegacyDoc.objects.filter(id=value)] == [str(i)]
    gone = data.draw(st.sampled_from(ids))
    LegacyDoc.objects.get(id=gone).delete()
    assert _raw(PLAIN, {"id": {"S": gone}}) is None
    for value in ids:
        if value != gone:
            assert _raw(PLAIN, {"id": {"S": value}}) is not None  # no other item matched
            LegacyDoc.objects.get(id=value).delete()


def test_a_numeric_sort_key_takes_range_lookups_in_numeric_order() -> None:
    for n in (1, 2, 9, 10, 11, 100):
        LegacyEvent.objects.create(owner="o", seq=n)
    LegacyEvent.objects.create(owner="p", seq=5)
    assert [e.seq for e in LegacyEvent.objects.filter(owner="o", seq__gt=9)] == [10, 11, 100]
    assert [e.seq for e in LegacyEvent.objects.filter(owner="o", seq__lte=9)] == [1, 2, 9]
    assert [e.seq for e in LegacyEvent.objects.filter(owner="o", seq__between=(2, 10))] == [
        2,
        9,
        10,
    ]
    assert LegacyEvent.objects.get(owner="o", seq=11).seq == 11
    item = _raw(EVENTS, {"Owner": {"S": "o"}, "Seq": {"N": "10"}})
    assert item is not None and item["Seq"] == {"N": "10"}  # stored once, as a number
    assert "seq" not in item and "owner" not in item


def test_an_untyped_model_sharing_a_key_range_is_refused() -> None:
    # LegacyDoc has no type attribute: a typed model whose items could fall in its key range
    # would be read and deleted through LegacyDoc as its own, so the pair is refused, either
    # way round, before any item exists.
    with pytest.raises(ConfigurationError, match=r"TypedDoc.*LegacyDoc.*no type attribute"):

        class TypedDoc(Model):
            id: str
            body: str = ""

            class Meta:
                table = plain
                pk = "{id}"

    with pytest.raises(ConfigurationError, match=r"Cannot register LooseThread.*Thread"):

        class LooseThread(Model):  # both untyped, the same plain keys
            forum: str = fields.Attr("ForumName")
            subject: str = fields.Attr("Subject")

            class Meta:
                table = legacy
                pk = "{forum}"
                sk = "{subject}"


def test_untyped_models_with_disjoint_key_prefixes_share_a_table_and_never_meet() -> None:
    # simplesingletable's layout: one table, no type attribute, the key prefix is the type.
    name = f"legacy-prefixed-{SUFFIX}"
    _create_table(name, ("id", "S"))
    shared = dynorm.Table(
        name, managed=False, pk_attribute="id", sk_attribute=None, type_attribute=None
    )
    try:

        class PrefixedA(Model):
            rid: str
            body: str = ""

            class Meta:
                table = shared
                pk = "A#{rid}"

        class PrefixedB(Model):
            rid: str
            body: str = ""

            class Meta:
                table = shared
                pk = "B#{rid}"

        PrefixedA.objects.create(rid="x", body="a")
        PrefixedB.objects.create(rid="x", body="b")
        assert PrefixedA.objects.get(rid="x").body == "a"
        assert PrefixedB.objects.get(rid="x").body == "b"
        PrefixedA.objects.get(rid="x").delete()
        assert PrefixedB.objects.get(rid="x").body == "b"  # untouched
    finally:
        _client().delete_table(TableName=name)


def test_a_field_stored_over_a_key_attribute_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"Subject.*exactly"):

        class ClashThread(Model):
            forum: str = fields.Attr("ForumName")
            title: str = fields.Attr("Subject")
            subject: str = ""

            class Meta:
                table = legacy
                pk = "{forum}"
                sk = "{subject}"


def test_an_index_projection_that_lacks_a_field_is_refused() -> None:
    # A variant of Thread over the same items: alone in the registry (two untyped models over
    # one key range are refused), as a second release of the model would be.
    with isolated_registry():
        _slim_thread_is_refused_a_field_the_projection_lacks()


def _slim_thread_is_refused_a_field_the_projection_lacks() -> None:
    class SlimThread(Model):
        forum: str = fields.Attr("ForumName")
        subject: str = fields.Attr("Subject")
        views: int = 0
        body: str = ""

        class Meta:
            table = legacy
            pk = "{forum}"
            sk = "{subject}"
            indexes = [
                Index(
                    "by_views",
                    pk="{forum}",
                    sk="{views}",
                    name="ViewsIndex",
                    pk_attribute="ForumName",
                    sk_attribute="Views",
                    projection=["views"],
                    local=True,
                )
            ]

    with pytest.raises(QueryError, match=r"body.*only\("):
        list(SlimThread.objects.using_gsi("by_views").filter(forum="f"))
    # only() the projected fields reads them.
    assert list(SlimThread.objects.using_gsi("by_views").filter(forum="f").only("views")) == []


def test_create_and_delete_table_refuse_a_table_dynorm_does_not_manage() -> None:
    with dynorm.using(legacy):
        with pytest.raises(ConfigurationError, match=r"not managed by dynorm.*check"):
            dynorm.create_table()
        with pytest.raises(ConfigurationError, match=r"not managed by dynorm"):
            dynorm.delete_table()
    with pytest.raises(ConfigurationError, match=r"Thread"):
        dynorm.create_table([Thread])
    assert _client().describe_table(TableName=FORUM)["Table"]["TableStatus"] == "ACTIVE"


def test_pydantic_alias_is_refused_with_a_pointer_to_fields_attr() -> None:
    with pytest.raises(ConfigurationError, match=r"fields\.Attr"):

        class Aliased(Model):
            id: str = Field(alias="Id")

            class Meta:
                pk = "{id}"


def test_check_table_compares_an_unmanaged_table_with_its_models_layout() -> None:
    with dynorm.using(legacy):
        assert dynorm.check_table([Thread]) == []
        assert dynorm.check_table() == []  # default: the models declared on this table

    with isolated_registry():  # a variant of Thread: alone, as a later release would be
        _misnamed_index_is_reported()


def _misnamed_index_is_reported() -> None:
    class Misnamed(Model):
        forum: str = fields.Attr("ForumName")
        subject: str = fields.Attr("Subject")
        views: int = 0

        class Meta:
            table = dynorm.Table(
                FORUM, managed=False, pk_attribute="ForumName", sk_attribute="Subject"
            )
            pk = "{forum}"
            sk = "{subject}"
            type_attribute = None
            indexes = [
                Index(
                    "by_views",
                    pk="{forum}",
                    sk="{views}",
                    name="ByViews",
                    local=True,
                    sk_attribute="Views",
                ),
            ]

    with dynorm.using(legacy):
        (difference,) = dynorm.check_table([Misnamed])
    assert difference.part == "index ByViews" and difference.found == "no such index"
    assert not difference.fixable
    with dynorm.using(plain):
        assert [d.part for d in dynorm.check_table([LegacyEvent])] == ["key schema"]


def test_cursors_and_filters_use_the_stored_names_of_plain_number_keys() -> None:
    for n in range(1, 8):
        LegacyEvent.objects.create(owner="c", seq=n, kind="odd" if n % 2 else "even")
    seen: list[int] = []
    page = LegacyEvent.objects.filter(owner="c").page(size=3)
    seen += [e.seq for e in page.items]
    while page.next_cursor is not None:
        page = LegacyEvent.objects.filter(owner="c").page(size=3, cursor=page.next_cursor)
        seen += [e.seq for e in page.items]
    assert seen == list(range(1, 8))
    odd = LegacyEvent.objects.filter(owner="c", kind="odd").only("seq")
    assert [e.seq for e in odd] == [1, 3, 5, 7]
    LegacyEvent.objects.get(owner="c", seq=3).update(kind="three")
    assert LegacyEvent.objects.get(owner="c", seq=3).kind == "three"
    assert LegacyEvent.objects.filter(owner="c", seq__gte=6).delete() == 2
    assert [e.seq for e in LegacyEvent.objects.filter(owner="c")] == [1, 2, 3, 4, 5]


def test_unique_guards_and_counters_live_under_the_tables_key_names() -> None:
    Member.objects.create(id="1", email="a@x")
    with pytest.raises(UniqueViolationError):
        Member.objects.create(id="2", email="a@x")
    with dynorm.transaction():
        Member.objects.create(id="3", email="c@x")
        Member.objects.create(id="4", email="d@x")
    assert Member.objects.stats().count == 3
    items = _client().scan(TableName=SINGLE)["Items"]
    assert all({"PK", "SK"} <= set(item) and "pk" not in item for item in items)
    Member.objects.get(id="1").delete()
    Member.objects.create(id="5", email="a@x")  # the guard went with its owner
    assert Member.objects.stats().count == 3


def test_a_versioned_model_needs_dynorms_own_names_for_its_history() -> None:
    with pytest.raises(ConfigurationError, match="VersionedModel.*own names"):

        class Revisioned(VersionedModel):
            id: str

            class Meta:
                table = single
                pk = "R#{id}"


class Score(Model):
    id: str
    points: int = fields.Attr("Points", default=0)
    label: str = fields.Attr("Label", default="")

    class Meta:
        table = single
        pk = "SCORE#{id}"


def test_filters_only_and_f_updates_use_the_stored_attribute_names() -> None:
    Score.objects.create(id="a", points=1, label="x")
    Score.objects.create(id="b", points=5, label="y")
    Score.objects.get(id="a").update(points=F("points") + 10)
    raw = _raw(SINGLE, {"PK": {"S": "SCORE#a"}, "SK": {"S": "Score"}})
    assert raw is not None and raw["Points"] == {"N": "11"} and "points" not in raw
    (query,) = Score.objects.filter(id="a", points__gt=3).explain()
    assert "Points" in query.params["ExpressionAttributeNames"].values()
    assert [s.points for s in Score.objects.filter(id="a", points__gt=3)] == [11]
    partial = Score.objects.filter(id="b").only("label").get()
    assert partial.label == "y"
    assert Score.objects.filter(id="b", label="y").update(label="z") == 1
    assert Score.objects.get(id="b").label == "z"


def test_describe_shows_one_tables_models_under_its_own_names() -> None:
    forum = describe_json(FORUM)
    assert {m["name"] for m in forum["models"]} == {"Thread"}
    assert forum["table"]["attributes"]["partition_key"] == "ForumName"
    assert forum["table"]["attributes"]["sort_key"] == "Subject"
    assert forum["table"]["attributes"]["type"] is None
    assert forum["table"]["indexes"] == [
        {
            "index_name": "ViewsIndex",
            "partition_key": "ForumName",
            "sort_key": "Views",
            "projection": "ALL",
        }
    ]
    [thread] = forum["models"]
    assert thread["pk"]["attribute"] == "ForumName" and thread["sk"]["attribute"] == "Subject"
    # The default table's description never lists a model mapped onto another table.
    default = describe_json(_config.get_settings().table_name)
    assert not {"Thread", "LegacyNote", "LegacyDoc", "LegacyEvent"} & {
        m["name"] for m in default["models"]
    }
    assert "ForumName" not in str(default["table"]["create_table"])


def test_streams_export_and_import_refuse_a_model_on_its_own_physical_names(
    tmp_path: Any,
) -> None:
    """The tools that read dynorm's own layout refuse a mapped model instead of finding
    nothing (streams, export) or writing it in the wrong shape (import)."""
    from dynorm import streams
    from dynorm.tooling import export_items, import_items

    record = {
        "eventName": "INSERT",
        "dynamodb": {"Keys": {"ForumName": {"S": "f"}, "Subject": {"S": "s"}}},
    }
    with pytest.raises(ConfigurationError, match="Thread.*own layout"):
        streams.parse([record], Thread)
    assert streams.parse([record]) == []  # unasked, a foreign table's record is not ours
    with pytest.raises(ConfigurationError, match="Cannot export Thread"):
        export_items(tmp_path / "out.jsonl", models=[Thread])
    line = {"type": Thread._meta.type_name, "item": {"ForumName": {"S": "f"}}}
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(line) + "\n")
    result = import_items(source)
    assert (result.written, result.invalid_count) == (0, 1)
    assert "names of its own" in result.invalid[0].problem
