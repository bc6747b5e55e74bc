"""PynamoDB 6.1 tables, mapped by dynorm: both libraries read and write the same items.

PynamoDB (in its own virtualenv, tests/foreign/venvs.py) creates its table the PynamoDB way
(`Model.create_table()` with an LSI and a GSI) and writes items of every attribute type it
has; a dynorm model mapped onto the table (no type attribute, PynamoDB's key and version
attribute names) reads, queries, updates and deletes them; PynamoDB then reads dynorm's
writes and writes again, under its own version check. Each test runs the PynamoDB side in as
few subprocesses as it can (each costs about a second).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pydantic import BaseModel

import dynorm
from dynorm import F, Index, Model, _config, fields
from dynorm.exceptions import ItemExistsError, VersionConflictError
from tests.foreign import venvs
from tests.foreign.scripts.wire import dump, load

pytestmark = pytest.mark.integration

#: PynamoDB's UTCDateTimeAttribute text (what `fields.DateTime(format="pynamodb")` stores).
PYNAMODB_TIME = "%Y-%m-%dT%H:%M:%S.%f+0000"


def pynamodb_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime(PYNAMODB_TIME)


class Profile(BaseModel):
    """PynamoDB's `Profile(MapAttribute)`: a nested model."""

    name: str
    karma: int = 0


def thread_model(table_name: str) -> type[Model]:
    """The dynorm model of the PynamoDB `Thread` in scripts/pynamodb_side.py."""
    legacy = dynorm.Table(
        table_name,
        managed=False,
        pk_attribute="ForumName",
        sk_attribute="Subject",
        type_attribute=None,
        version_attribute="Version",
    )

    class Thread(Model):
        forum: str = fields.Attr("ForumName")
        subject: str = fields.Attr("Subject")
        views: int = fields.Attr("Views", default=0)
        author: str | None = fields.Attr("Author", default=None)
        score: float | None = None
        body: str | None = None
        payload: bytes | None = None
        pinned: bool = False
        last_post: datetime | None = fields.DateTime(
            None, format="pynamodb", attribute="LastPostDateTime"
        )
        tags: set[str] = set()
        ranks: set[int] = set()
        chunks: set[bytes] = set()
        replies: list[str] | None = None
        mixed: list[Any] | None = None
        extra: dict[str, Any] | None = None
        profile: Profile | None = None
        settings: str | None = None  # JSONAttribute: JSON text
        expires: datetime | None = fields.TTL(attribute="expires")

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
                    local=True,
                ),
                Index(
                    "by_author",
                    pk="{author}",
                    sk="{views}",
                    name="AuthorIndex",
                    pk_attribute="Author",
                    sk_attribute="Views",
                ),
            ]

    return Thread


FIELDS = (
    "forum subject views author score body payload pinned last_post tags ranks chunks "
    "replies mixed extra profile settings expires"
).split()


def canonical(values: dict[str, Any]) -> dict[str, Any]:
    """One item as both libraries see it, in one shape (PynamoDB: None for an absent set)."""
    out = {name: values.get(name) for name in FIELDS}
    for name in ("tags", "ranks", "chunks"):
        out[name] = set(out[name] or ())
    if isinstance(out["last_post"], datetime):
        out["last_post"] = pynamodb_time(out["last_post"])
    if isinstance(out["settings"], str):
        out["settings"] = json.loads(out["settings"])
    if isinstance(out["profile"], BaseModel):
        out["profile"] = out["profile"].model_dump()
    out["views"] = out["views"] or 0
    out["pinned"] = bool(out["pinned"])
    return out


def of(thread: Model) -> dict[str, Any]:
    return canonical(thread.model_dump(exclude={"version"}))


NOW = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=timezone.utc)
THREADS: list[dict[str, Any]] = [
    {
        "forum": "python",
        "subject": "how#to $escape",
        "views": 9,
        "author": "ann",
        "score": 4.25,
        "body": "héllo wörld ✓",
        "payload": b"\x00\x01\xff",
        "pinned": True,
        "last_post": NOW,
        "tags": {"faq", "keys"},
        "ranks": {1, 20, 300},
        "chunks": {b"\x00", b"\xfe\xff"},
        "replies": ["first", "second"],
        "mixed": [1, "two", {"three": 3}, [True, None]],
        "extra": {"nested": {"deep": ["x"]}, "n": 7},
        "profile": {"name": "ann", "karma": 12},
        "settings": {"dark": True, "sizes": [1, 2]},
        "expires": datetime(2031, 1, 1, tzinfo=timezone.utc),
    },
    {"forum": "python", "subject": "intro", "views": 10, "author": "bob"},
    {"forum": "python", "subject": "ünïcode 日本", "views": 100, "author": "ann"},
    {"forum": "python", "subject": "how to", "views": 2},
    {"forum": "rust", "subject": "intro", "views": 5, "author": "ann"},
]


def _key(thread: dict[str, Any]) -> list[str]:
    return [thread["forum"], thread["subject"]]


def _pynamodb(table: str, ops: list[dict[str, Any]]) -> list[Any]:
    return [load(result) for result in venvs.run("pynamodb", table, ops)]


def test_dynorm_reads_and_queries_what_pynamodb_wrote(foreign_table: str) -> None:
    created, saved = _pynamodb(
        foreign_table,
        [{"op": "create_table"}, {"op": "save", "items": [dump(t) for t in THREADS]}],
    )
    assert created is True and saved == [{"version": 1}] * len(THREADS)
    Thread = thread_model(foreign_table)  # noqa: N806 - a model class
    # The table PynamoDB created (keys, LSI, GSI, projections, TTL) is the one the model declares.
    with dynorm.using(foreign_table):
        assert dynorm.check_table() == []

    for written in THREADS:
        found = Thread.objects.get(forum=written["forum"], subject=written["subject"])
        assert of(found) == canonical(written)
        assert found.version == 1  # PynamoDB's VersionAttribute, read as dynorm's version

    # A datetime field in PynamoDB's format: filters compare in that text, in time order.
    assert [t.subject for t in Thread.objects.filter(forum="python", last_post__gte=NOW)] == [
        "how#to $escape"
    ]
    later = NOW + timedelta(microseconds=1)
    assert Thread.objects.filter(forum="python", last_post__gte=later).count() == 0
    assert Thread.objects.filter(forum="python", last_post=NOW).count() == 1

    python = sorted(t["subject"] for t in THREADS if t["forum"] == "python")
    assert [t.subject for t in Thread.objects.filter(forum="python")] == python
    assert Thread.objects.filter(forum="python").count() == len(python)
    assert [
        t.subject for t in Thread.objects.filter(forum="python", subject__begins_with="how")
    ] == [
        "how to",
        "how#to $escape",
    ]
    assert [t.subject for t in Thread.objects.filter(forum="python", subject="how")] == []
    # The LSI sorts by Views as a number (2 < 9 < 10 < 100), not as text.
    by_views = Thread.objects.using_gsi("by_views").filter(forum="python", views__gt=2)
    assert [t.subject for t in by_views] == ["how#to $escape", "intro", "ünïcode 日本"]
    by_author = Thread.objects.using_gsi("by_author").filter(author="ann", views__gte=9)
    assert [(t.forum, t.subject) for t in by_author] == [
        ("python", "how#to $escape"),
        ("python", "ünïcode 日本"),
    ]


def test_pynamodb_reads_dynorm_writes_and_both_keep_the_version_lock(foreign_table: str) -> None:
    first, gone = THREADS[0], THREADS[1]
    _pynamodb(
        foreign_table,
        [{"op": "create_table"}, {"op": "save", "items": [dump(first), dump(gone)]}],
    )
    Thread = thread_model(foreign_table)  # noqa: N806 - a model class

    mine = Thread.objects.get(forum=first["forum"], subject=first["subject"])
    stale = Thread.objects.get(forum=first["forum"], subject=first["subject"])
    mine.views = 42
    mine.author = "bob"  # an index key: AuthorIndex finds it under bob now
    mine.tags = {"edited"}
    mine.ranks = set()  # an empty set: the attribute is removed, PynamoDB reads None
    mine.profile = Profile(name="bob", karma=3)
    mine.payload = b"\xff\x00dynorm"
    mine.last_post = NOW + timedelta(days=1)
    mine.settings = json.dumps({"dark": False})
    mine.expires = datetime(2032, 6, 1, tzinfo=timezone.utc)
    mine.save()
    assert mine.version == 2
    stale.body = "a stale edit"
    with pytest.raises(VersionConflictError):
        stale.save()
    mine.update(views=F("views") + 1)
    assert (mine.views, mine.version) == (43, 3)

    new = Thread(
        forum="python",
        subject="new ✓ #1",
        views=7,
        author="bob",
        score=-0.5,
        body="written by dynorm",
        payload=b"\x00",
        last_post=NOW.astimezone(timezone(timedelta(hours=-5))),  # stored in UTC
        tags={"a", "b"},
        ranks={5},
        chunks={b"\x01"},
        replies=["r"],
        mixed=[1, "x", {"k": [None]}],
        extra={"m": {"n": 1}},
        profile=Profile(name="cy"),
        settings=json.dumps([1, {"a": None}]),
        expires=datetime(2030, 1, 1, tzinfo=timezone.utc),
    )
    new.save()
    assert new.version == 1
    with pytest.raises(ItemExistsError):
        Thread(forum="python", subject="new ✓ #1").save()
    Thread.objects.get(forum=gone["forum"], subject=gone["subject"]).delete()

    # The item is PynamoDB's shape: its attribute names, no dynorm key/type attributes.
    client = _config.get_connection().client
    raw = client.get_item(
        TableName=foreign_table, Key={"ForumName": {"S": "python"}, "Subject": {"S": "new ✓ #1"}}
    )["Item"]
    assert raw["Version"] == {"N": "1"} and raw["Views"] == {"N": "7"}
    assert raw["LastPostDateTime"] == {"S": "2026-12-01T09:30:15.123456+0000"}
    assert not {"pk", "sk", "_type", "version"} & set(raw)

    got, lsi, gsi, stale_save, updated, again = _pynamodb(
        foreign_table,
        [
            {"op": "get", "keys": [_key(first), ["python", "new ✓ #1"], _key(gone)]},
            {"op": "query_lsi", "forum": "python", "views_gt": 6},
            {"op": "query_gsi", "author": "bob"},
            # PynamoDB saving an object loaded at version 2 (before dynorm's update): refused.
            {"op": "save", "items": [dump({**first, "views": 1, "version": 2})]},
            {"op": "update", "key": _key(first), "set": {"body": "edited by PynamoDB"}},
            {"op": "get", "keys": [_key(first)]},
        ],
    )
    assert canonical(got[0]) == of(mine) and got[0]["version"] == 3
    assert canonical(got[1]) == of(new) and got[1]["version"] == 1
    assert got[2] is None
    assert lsi == ["new ✓ #1", "how#to $escape"]  # Views 7 and 43
    assert gsi == ["new ✓ #1", "how#to $escape"]
    assert stale_save == [{"error": "PutError", "code": "ConditionalCheckFailedException"}]
    assert updated == {"version": 4}
    assert again[0]["body"] == "edited by PynamoDB" and again[0]["views"] == 43

    fresh = Thread.objects.get(forum=first["forum"], subject=first["subject"])
    assert (fresh.version, fresh.body, fresh.views) == (4, "edited by PynamoDB", 43)
    mine.body = "too late"
    with pytest.raises(VersionConflictError):
        mine.save()  # dynorm's copy is at version 3: PynamoDB's save moved the item on


_KEY_TEXT = st.lists(
    st.one_of(
        st.sampled_from(["#", "$", "$23", "##", "a#b", "é", "日本", "✓", " ", "~", "\x7f"]),
        st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=4),
    ),
    min_size=1,
    max_size=4,
).map("".join)


def test_keys_written_by_pynamodb_are_found_by_dynorm_byte_for_byte(foreign_table: str) -> None:
    Thread = thread_model(foreign_table)  # noqa: N806 - a model class
    client = _config.get_connection().client
    seen: dict[str, set[str]] = {}
    create = [{"op": "create_table"}]  # sent with the first example's writes

    @settings(
        max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        keys=st.lists(st.tuples(_KEY_TEXT, _KEY_TEXT), min_size=5, max_size=15, unique=True),
    )
    def check(keys: list[tuple[str, str]]) -> None:
        new = [k for k in keys if k[1] not in seen.get(k[0], set())]
        items = [{"forum": f, "subject": s, "views": i, "body": s} for i, (f, s) in enumerate(new)]
        # One PynamoDB subprocess per example writes all of its keys.
        ops = [*create, {"op": "save", "items": [dump(i) for i in items]}]
        saved = _pynamodb(foreign_table, ops)[-1]
        create.clear()
        assert all("version" in r for r in saved), saved
        for forum, subject in new:
            seen.setdefault(forum, set()).add(subject)
        for forum, subject in keys:
            found = Thread.objects.get(forum=forum, subject=subject)
            assert (found.forum, found.subject) == (forum, subject)
            assert [t.subject for t in Thread.objects.filter(forum=forum, subject=subject)] == [
                subject
            ]
        for forum in {f for f, _ in keys}:
            listed = [t.subject for t in Thread.objects.filter(forum=forum)]
            assert sorted(listed) == sorted(seen[forum])
            assert len(listed) == len(seen[forum])
        # dynorm's own writes of such keys are stored as they are, too.
        forum, subject = keys[0]
        mine = Thread(forum=forum + "/dynorm", subject=subject, views=1)
        mine.save()
        raw = client.get_item(
            TableName=foreign_table,
            Key={"ForumName": {"S": forum + "/dynorm"}, "Subject": {"S": subject}},
        )
        assert raw["Item"]["Views"] == {"N": "1"}
        mine.delete()

    check()
