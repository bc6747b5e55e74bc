"""I. Expression building: reserved words, odd attribute names, placeholders (scenarios 48-50)."""

from __future__ import annotations

import keyword
import re
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, Field

import dynorm
from dynorm import F, Index, Model, Q, VersionedModel
from dynorm.exceptions import ConfigurationError
from tests.reliability.conftest import Offline
from tests.reliability.helpers import bare_words, check_placeholders, loaded, raw_get

# The DynamoDB reserved words (docs: ReservedWords), lower-cased.
RESERVED_WORDS = """
abort absolute action add after agent aggregate all allocate alter analyze and any archive are
array as asc ascii asensitive assertion asymmetric at atomic attach attribute auth authorization
authorize auto avg back backup base batch before begin between bigint binary bit blob block
boolean both breadth bucket bulk by byte call called calling capacity cascade cascaded case cast
catalog char character check class clob close cluster clustered clustering clusters coalesce
collate collation collection column columns combine comment commit compact compile compress
condition conflict connect connection consistency consistent constraint constraints constructor
consumed continue convert copy corresponding count counter create cross cube current cursor cycle
data database date datetime day deallocate dec decimal declare default deferrable deferred define
defined definition delete delimited depth deref desc describe descriptor detach deterministic
diagnostics directories disable disconnect distinct distribute do domain double drop dump
duration dynamic each element else elseif empty enable end equal equals error escape escaped eval
evaluate exceeded except exception exceptions exclusive exec execute exists exit explain explode
export expression extended external extract fail false family fetch fields file filter filtering
final finish first fixed flattern float for force foreign format forward found free from full
function functions general generate get glob global go goto grant greater group grouping handler
hash have having heap hidden hold hour identified identity if ignore immediate import in including
inclusive increment incremental index indexed indexes indicator infinite initially inline inner
innter inout input insensitive insert instead int integer intersect interval into invalidate is
isolation item items iterate join key keys lag language large last lateral lead leading leave left
length less level like limit limited lines list load local localtime localtimestamp location
locator lock locks log loged long loop lower map match materialized max maxlen member merge method
metrics min minus minute missing mod mode modifies modify module month multi multiset name names
national natural nchar nclob new next no none not null nullif number numeric object of offline
offset old on online only opaque open operator option or order ordinality other others out outer
output over overlaps override owner pad parallel parameter parameters partial partition
partitioned partitions path percent percentile permission permissions pipe pipelined plan pool
position precision prepare preserve primary prior private privileges procedure processed project
projection property provisioning public put query quit quorum raise random range rank raw read
reads real rebuild record recursive reduce ref reference references referencing regexp region
reindex relative release remainder rename repeat replace request reset resignal resource response
restore restrict result return returning returns reverse revoke right role roles rollback rollup
routine row rows rule rules sample satisfies save savepoint scan schema scope scroll search second
section segment segments select self semi sensitive separate sequence serializable session set
sets shard share shared short show signal similar size skewed smallint snapshot some source space
spaces sparse specific specifictype split sql sqlcode sqlerror sqlexception sqlstate sqlwarning
start state static status storage store stored stream string struct style sub submultiset
subpartition substring subtype sum super symmetric synonym system table tablesample temp temporary
terminated text than then throughput time timestamp timezone tinyint to token total touch trailing
transaction transform translate translation treat trigger trim true truncate ttl tuple type under
undo union unique unit unknown unlogged unnest unprocessed unsigned until update upper url usage
use user users using uuid vacuum value valued values varchar variable variance varint varying view
views virtual void wait when whenever where while window with within without work wrapped write
year zone
""".split()


class RelReserved(Model):
    id: str
    name: str = ""
    status: str = "new"
    size: int = 0
    type: str = ""
    count: int = 0
    data: dict[str, int] = {}
    ttl: int = 0
    timestamp: str = ""
    value: str = ""
    order: int = 0
    group: str = ""
    user: str = ""
    date: str = ""
    comment: str = ""
    owner: str = ""
    level: int = 0
    token: str = ""

    class Meta:
        pk = "RELRES#{id}"
        indexes = [Index("rel_res_by_status", pk="RELRESST#{status}", sk="RELRESNAME#{name}")]


WORDS = ("name", "status", "size", "type", "count", "data", "ttl", "timestamp", "value")
WORDS += ("order", "group", "user", "date", "comment", "owner", "level", "token")


def _check_requests(sent: list[tuple[str, dict[str, Any]]]) -> None:
    assert sent
    for _, params in sent:
        check_placeholders(params)
        assert not bare_words(params), params  # every name went through #nN


def test_s48_reserved_word_fields_work_in_every_operation(
    dynorm_table: str, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    values: dict[str, Any] = {
        "name": "ann",
        "status": "new",
        "size": 3,
        "type": "t",
        "count": 1,
        "data": {"k": 1},
        "ttl": 60,
        "timestamp": "2024",
        "value": "v",
        "order": 2,
        "group": "g",
        "user": "u",
        "date": "d",
        "comment": "c",
        "owner": "o",
        "level": 4,
        "token": "tok",
    }
    obj = RelReserved.objects.create(id="r1", **values)
    other = RelReserved.objects.create(id="r2", **{**values, "status": "other"})
    assert RelReserved.objects.get(id="r1") == obj
    obj.value = "v2"
    obj.save()
    obj.save(update_fields=list(WORDS))
    obj.update(count=F("count") + 1, size=F("size") - 1, order=5, data={"k": 2})
    assert (obj.count, obj.size, obj.order) == (2, 2, 5)
    filters = {
        "name": "ann",
        "status": "new",
        "size__gte": 1,
        "type": "t",
        "count__lt": 10,
        "data__k": 2,
        "ttl__between": (0, 100),
        "timestamp__begins_with": "20",
        "value__in": ["v2", "x"],
        "order__ne": 1,
        "group__exists": True,
        "user__contains": "u",
        "date__gt": "a",
        "comment": "c",
        "owner": "o",
        "level__lte": 4,
        "token": "tok",
    }
    assert [r.id for r in RelReserved.objects.filter(id="r1", **filters)] == ["r1"]
    assert [r.id for r in RelReserved.objects.filter(Q(size=2) | Q(count=0), id="r1")] == ["r1"]
    projected = RelReserved.objects.filter(id="r1").only(*WORDS).first()
    assert projected is not None and projected.token == "tok"
    on_gsi = RelReserved.objects.using_gsi("rel_res_by_status").filter(status="new", name="ann")
    assert [r.id for r in on_gsi] == ["r1"]
    assert RelReserved.objects.using_gsi("rel_res_by_status").filter(status="new").count() == 1
    with dynorm.transaction() as tx:
        obj.status = "done"
        obj.save()
        tx.check(other, status="other", size=3)
    assert RelReserved.objects.filter(id="r1").update(status="x", level=F("level") + 1) == 1
    assert RelReserved.objects.get(id="r1").level == 5
    _check_requests(sent)


def _reserved_field_names() -> list[str]:
    return [
        w
        for w in RESERVED_WORDS
        if not keyword.iskeyword(w)
        and not hasattr(Model, w)
        and not hasattr(VersionedModel, w)
        and w not in ("id", "version", "self")  # `self`: see test_s48_field_named_self
    ]


def test_s48_generated_model_with_every_reserved_word(
    dynorm_table: str, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    names = _reserved_field_names()
    assert len(RESERVED_WORDS) > 560 and len(names) > 500
    namespace: dict[str, Any] = {
        "__annotations__": {"id": str, **{n: str for n in names}},
        "__module__": __name__,
        "Meta": type("Meta", (), {"pk": "RELALLRES#{id}"}),
        **{n: "" for n in names},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        generated: Any = type("RelAllReserved", (Model,), namespace)
    values = {n: f"v-{n}" for n in names}
    obj = generated(id="g1", **values)
    obj.save()
    assert generated.objects.get(id="g1") == obj
    stored = raw_get("RELALLRES#g1", "RelAllReserved")
    assert stored is not None and all(stored[n] == {"S": f"v-{n}"} for n in names)
    for start in range(0, len(names), 40):
        chunk = names[start : start + 40]
        assert [
            o.id for o in generated.objects.filter(id="g1", **{n: values[n] for n in chunk})
        ] == ["g1"]
        assert generated.objects.filter(id="g1").only(*chunk).first() is not None
        obj.update(**{n: f"w-{n}" for n in chunk})
    assert generated.objects.get(id="g1").zone == "w-zone"
    _check_requests(sent)


def test_s48_field_named_key(dynorm_table: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")

        class RelKeyField(Model):
            id: str
            key: str = ""

            class Meta:
                pk = "RELKEYFIELD#{id}"

    RelKeyField.objects.create(id="k1", key="a")
    assert RelKeyField.objects.filter(id="k1", key="a").first() is not None


def test_s48_field_named_self(dynorm_table: str) -> None:
    namespace: dict[str, Any] = {
        "__annotations__": {"id": str, "self": str},
        "__module__": __name__,
        "Meta": type("Meta", (), {"pk": "RELSELF#{id}"}),
        "self": "",
    }
    generated: Any = type("RelSelfField", (Model,), namespace)
    generated(id="s1", self="me").save()
    assert generated.objects.filter(id="s1", self="me").first() is not None
    generated.objects.create(id="s2", self="you")


# --------------------------------------------------------------------------- scenario 49

ODD_NAMES = ["a.b", "a-b", "1st", "with space", "#hash", ":colon"]


class RelCity(BaseModel):
    city: str
    zip: str = ""


class RelOddKeys(Model):
    id: str
    attrs: dict[str, int] = {}
    address: RelCity | None = None

    class Meta:
        pk = "RELODD#{id}"


def test_s49_special_character_map_keys_are_literal_names(
    dynorm_table: str, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    attrs = {name: n for n, name in enumerate(ODD_NAMES)}
    RelOddKeys.objects.create(id="o1", attrs=attrs, address=RelCity(city="Oslo"))
    stored = raw_get("RELODD#o1", "RelOddKeys")
    assert stored is not None and set(stored["attrs"]["M"]) == set(ODD_NAMES)
    assert RelOddKeys.objects.get(id="o1").attrs == attrs
    for name, n in attrs.items():
        qs = RelOddKeys.objects.filter(id="o1", **{f"attrs__{name}": n})
        (request,) = qs.explain()
        params = request.params
        eans = params["ExpressionAttributeNames"]
        path = re.search(r"(#\w+)\.(#\w+) = ", params["FilterExpression"])
        assert path, params["FilterExpression"]
        assert (eans[path.group(1)], eans[path.group(2)]) == ("attrs", name)
        assert [o.id for o in qs] == ["o1"]
        assert list(RelOddKeys.objects.filter(id="o1", **{f"attrs__{name}": n + 100})) == []
    nested = RelOddKeys.objects.filter(id="o1", address__city="Oslo")
    (request,) = nested.explain()
    path = re.search(r"(#n\d+)\.(#n\d+)", request.params["FilterExpression"])
    assert path is not None
    names = request.params["ExpressionAttributeNames"]
    assert (names[path.group(1)], names[path.group(2)]) == ("address", "city")
    assert [o.id for o in nested] == ["o1"]
    _check_requests(sent)


def test_s49_aliased_fields_are_literal_attributes_or_refused(dynorm_table: str) -> None:
    try:

        class RelAliased(Model):
            id: str
            dotted: int = Field(0, alias="a.b")
            dashed: int = Field(0, alias="a-b")
            first: int = Field(0, alias="1st")
            spaced: int = Field(0, alias="with space")
            hashed: int = Field(0, alias="#hash")
            coloned: int = Field(0, alias=":colon")

            class Meta:
                pk = "RELALIASED#{id}"

    except ConfigurationError:
        return  # refusing aliases at class creation is an acceptable policy
    payload = {"id": "x", **{name: n + 1 for n, name in enumerate(ODD_NAMES)}}
    RelAliased.model_validate(payload).save()
    stored = raw_get("RELALIASED#x", "RelAliased")
    assert stored is not None and set(ODD_NAMES) <= set(stored)
    got = RelAliased.objects.get(id="x")
    assert got.dotted == 1 and got.coloned == 6
    assert [o.id for o in RelAliased.objects.filter(id="x", dotted=1)] == ["x"]


# --------------------------------------------------------------------------- scenario 50


class RelVersioned(VersionedModel):
    id: str
    body: str = ""
    tags: set[str] = set()

    class Meta:
        pk = "RELVER#{id}"
        max_versions = 2


def _wire_reserved(version: int = 1) -> dict[str, Any]:
    return {
        "pk": {"S": "RELRES#r1"},
        "sk": {"S": "RelReserved"},
        "_type": {"S": "RelReserved"},
        "id": {"S": "r1"},
        "status": {"S": "new"},
        "name": {"S": "ann"},
        "count": {"N": "1"},
        "version": {"N": str(version)},
    }


QUERYSETS: dict[str, Callable[[], Any]] = {
    "get": lambda: RelReserved.objects.filter(id="r1"),
    "filters": lambda: RelReserved.objects.filter(id="r1", size__gt=1, name__begins_with="a"),
    "q-or-not": lambda: RelReserved.objects.filter(Q(size=1) | ~Q(type="x"), id="r1"),
    "exclude": lambda: RelReserved.objects.filter(id="r1").exclude(status="done"),
    "in": lambda: RelReserved.objects.filter(id="r1", value__in=["a", "b", "c"]),
    "exists": lambda: RelReserved.objects.filter(id="r1", group__exists=False, user=None),
    "size": lambda: RelReserved.objects.filter(id="r1", data__size__gte=1),
    "nested": lambda: RelReserved.objects.filter(id="r1", data__k=1),
    "only": lambda: RelReserved.objects.filter(id="r1").only("name", "size"),
    "gsi": lambda: RelReserved.objects.using_gsi("rel_res_by_status").filter(status="new"),
    "gsi-range": lambda: RelReserved.objects.using_gsi("rel_res_by_status").filter(
        status="new", name__gte="a"
    ),
    "gsi-desc": lambda: (
        RelReserved.objects.using_gsi("rel_res_by_status")
        .filter(status="new", name__between=("a", "m"))
        .order_by("-name")
    ),
    "scan": lambda: RelReserved.objects.scan().filter(size__lt=3),
    "scan-segments": lambda: RelReserved.objects.scan(segments=3).filter(count=1),
    "consistent": lambda: RelReserved.objects.consistent().filter(id="r1", order=1),
    "history": lambda: loaded(RelVersioned, id="v", version=2).history(),
}


@pytest.mark.parametrize("name", list(QUERYSETS))
def test_s50_compiled_queries_define_and_use_every_placeholder(offline: Offline, name: str) -> None:
    requests = QUERYSETS[name]().explain()
    assert requests
    for request in requests:
        check_placeholders(request.params)
        assert not bare_words(request.params)
    assert offline.calls == []


def test_s50_every_write_defines_and_uses_every_placeholder(offline: Offline) -> None:
    def answer(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "Query":
            return {"Items": [_wire_reserved()], "Count": 1}
        return {}

    offline.responder = answer
    obj = RelReserved(id="r1", status="new", name="ann")
    obj.save()  # create
    obj.name = "bob"
    obj.save()  # versioned put
    obj.save(update_fields=["name", "status"])
    obj.status = "moved"
    obj.save(update_fields=["status"])  # index key recomputed
    obj.update(count=F("count") + 1, size=F("size") - 2, data={"a": 1}, user=None)
    obj.update(token=F("token").if_not_exists("t"), comment=F("owner"))
    with dynorm.transaction() as tx:
        obj.name = "cid"
        obj.save()
        tx.check(loaded(RelReserved, id="r2", version=1), status="new", size__gt=1)
        tx.check(loaded(RelReserved, id="r3", version=1))
        loaded(RelReserved, id="r4", version=3).delete()
    RelReserved.objects.filter(id="r1", status="new").update(level=F("level") + 1, owner="o")
    RelReserved.objects.filter(id="r1").delete()  # conditional DeleteItems
    RelReserved.objects.bulk_create([RelReserved(id="b1", status="new")])  # conditional puts
    RelReserved.objects.bulk_create([RelReserved(id="b2", status="new")], overwrite=True)
    moved = loaded(RelReserved, id="r1", version=2)
    moved.id = "r9"
    moved.save()  # a key change: delete + put in one transaction
    doc = RelVersioned(id="v")
    doc.save()
    doc.tags = {"x"}
    doc.save()
    doc.body = "three"
    doc.save()  # prunes the oldest history item in the same transaction
    ops = offline.operations
    assert {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "Query"} <= set(ops)
    assert "BatchWriteItem" in ops
    for _, params in offline.calls:
        check_placeholders(params)
        assert not bare_words(params), params
