"""C. Sizes and limits, checked client-side first (scenarios 11-16)."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

import dynorm
from dynorm import Index, Model, Q
from dynorm._item_size import item_size
from dynorm.exceptions import (
    DynormError,
    InvalidValueError,
    ItemTooLargeError,
    QueryError,
)
from tests.reliability.conftest import Offline
from tests.reliability.helpers import Faults, aws_error, loaded, raw_client, raw_get, table_name

LIMIT = 409_600  # 400 KB, binary


class RelBlob(Model):
    id: str
    body: str = ""
    note: str = ""

    class Meta:
        pk = "RELBLOB#{id}"


class RelKeyed(Model):
    part: str
    slug: str
    gkey: str | None = None
    gsort: str = "h"

    class Meta:
        pk = "{part}"
        sk = "RELSK#{slug}"
        indexes = [Index("rel_keyed_by_gkey", pk="{gkey}", sk="RELGSK#{gsort}")]


class RelNest(Model):
    id: str
    data: dict[str, Any] = {}
    items: list[Any] = []

    class Meta:
        pk = "RELNEST#{id}"


class RelTx(Model):
    id: str
    body: str = ""

    class Meta:
        pk = "RELTX#{id}"


# --------------------------------------------------------------------------- scenario 11


def test_s11_item_over_400kb_is_refused_before_any_request(
    dynorm_table: str, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    blob = RelBlob(id="big", body="x" * (401 * 1024), note="small")
    with pytest.raises(ItemTooLargeError) as info:
        blob.save()
    err = info.value
    assert err.limit == LIMIT
    assert err.size is not None and 401 * 1024 < err.size < 401 * 1024 + 200
    assert err.largest[0] == "body"
    assert "RelBlob" in str(err) and str(LIMIT) in str(err).replace(",", "")
    assert "xxxx" not in str(err)
    with pytest.raises(ItemTooLargeError):
        RelBlob.objects.bulk_create([RelBlob(id="big2", body="x" * (401 * 1024))])
    assert sent == []
    assert blob.version == 0


def test_s11_item_of_399kb_is_stored(dynorm_table: str) -> None:
    body = "y" * (399 * 1024)
    RelBlob.objects.create(id="ok", body=body)
    assert RelBlob.objects.get(id="ok").body == body


def test_s11_server_item_size_message_maps_to_item_too_large(faults: Faults) -> None:
    blob = RelBlob.objects.create(id="b1", body="small")
    faults.on(
        "before-send.dynamodb.PutItem",
        lambda **_: aws_error(
            "ValidationException", "Item size has exceeded the maximum allowed size"
        ),
    )
    blob.body = "bigger"
    with pytest.raises(ItemTooLargeError):
        blob.save()
    assert blob.version == 1
    faults.clear()
    # update() cannot know the whole item's size; the server's refusal is still typed.
    with pytest.raises(ItemTooLargeError):
        blob.update(note="z" * (LIMIT + 1))
    assert blob.version == 1


# --------------------------------------------------------------------------- scenario 12


def test_s12_size_formula_matches_the_documented_example() -> None:
    # docs: CapacityUnitCalculations: "shirt-color" = "R", "shirt-size" = "M" is 23 bytes.
    assert item_size({"shirt-color": {"S": "R"}, "shirt-size": {"S": "M"}}) == 23


def _random_value(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    kind = rng.choice(["S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS"])
    if depth > 2 and kind in ("L", "M"):
        kind = "S"
    if kind == "S":
        return {"S": "".join(rng.choice("aé€😀z") for _ in range(rng.randint(0, 20)))}
    if kind == "N":
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 20)))
        number = digits.lstrip("0") or "0"
        if rng.random() < 0.5 and len(number) > 1:
            cut = rng.randint(1, len(number) - 1)
            number = f"{number[:cut]}.{number[cut:]}"
        if rng.random() < 0.5 and number != "0":
            number = "-" + number
        return {"N": number}
    if kind == "B":
        return {"B": rng.randbytes(rng.randint(0, 20))}
    if kind == "BOOL":
        return {"BOOL": rng.random() < 0.5}
    if kind == "NULL":
        return {"NULL": True}
    if kind == "L":
        return {"L": [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]}
    if kind == "M":
        return {"M": {f"k{i}é": _random_value(rng, depth + 1) for i in range(rng.randint(0, 5))}}
    if kind == "SS":
        return {"SS": sorted({f"s{rng.randint(0, 10**6)}" for _ in range(rng.randint(1, 5))})}
    if kind == "NS":
        return {"NS": sorted({str(rng.randint(-(10**9), 10**9)) for _ in range(1, 6)})}
    return {"BS": sorted({rng.randbytes(rng.randint(1, 6)) for _ in range(1, 4)})}


def _random_item_near_limit(rng: random.Random, index: int, slack: int) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": {"S": f"RELSIZE#{index}"}, "sk": {"S": "RelSize"}}
    for n in range(rng.randint(20, 400)):
        item[f"a{n}"] = _random_value(rng)
    item["pad"] = {"S": ""}
    item["pad"] = {"S": "p" * (LIMIT - slack - item_size(item))}
    return item


def test_s12_size_estimator_never_says_ok_when_the_server_rejects(dynorm_table: str) -> None:
    rng = random.Random(20240601)
    client = raw_client()
    table = table_name()
    wrong: list[tuple[int, int]] = []
    for index in range(40):
        item = _random_item_near_limit(rng, index, slack=rng.randint(0, 48))
        estimate = item_size(item)
        assert estimate <= LIMIT  # the estimator says "fits"
        try:
            client.put_item(TableName=table, Item=item)
        except client.exceptions.ClientError as exc:
            assert "Item size" in str(exc), exc
            wrong.append((index, estimate))
    assert wrong == [], f"estimator said ok, DynamoDB refused: {wrong}"


# --------------------------------------------------------------------------- scenario 13


@pytest.mark.parametrize(
    ("values", "field", "size", "limit"),
    [
        ({"part": "a" * 2049, "slug": "x"}, "part", 2049, 2048),
        ({"part": "€" * 683, "slug": "x"}, "part", 2049, 2048),
        ({"part": "a", "slug": "b" * 1019}, "slug", 1025, 1024),  # "RELSK#" is 6 bytes
        ({"part": "a", "slug": "€" * 340}, "slug", 1026, 1024),  # 346 chars, 1026 bytes
        ({"part": "a", "slug": "x", "gkey": "g" * 2049}, "gkey", 2049, 2048),
        ({"part": "a", "slug": "x", "gkey": "g", "gsort": "€" * 340}, "gsort", 1027, 1024),
    ],
    ids=["pk-ascii", "pk-multibyte", "sk-ascii", "sk-multibyte", "gsi-pk", "gsi-sk"],
)
def test_s13_key_over_byte_limit_is_refused_before_sending(
    offline: Offline, values: dict[str, str], field: str, size: int, limit: int
) -> None:
    obj = RelKeyed(**values)
    with pytest.raises(InvalidValueError) as info:
        obj.save()
    message = str(info.value)
    assert re.search(rf"\b{field}\b", message), message
    assert str(size) in message and str(limit) in message, message
    assert "RelKeyed" in message
    assert offline.calls == []


def test_s13_key_limits_apply_to_queries_and_updates(offline: Offline) -> None:
    with pytest.raises(InvalidValueError):
        list(RelKeyed.objects.filter(part="a" * 2049))
    with pytest.raises(InvalidValueError):
        list(RelKeyed.objects.using_gsi("rel_keyed_by_gkey").filter(gkey="g" * 2049))
    saved = loaded(RelKeyed, part="a", slug="x", version=1)
    with pytest.raises(InvalidValueError):
        saved.update(gkey="g" * 2049)
    assert offline.calls == []


def test_s13_keys_at_exactly_the_byte_limit_are_stored(dynorm_table: str) -> None:
    at_limit = RelKeyed(
        part="€" * 682 + "aa", slug="€" * 339 + "a", gkey="g" * 2048, gsort="€" * 339
    )
    assert len(at_limit.dynamo_key["pk"].encode()) == 2048
    assert len(at_limit.dynamo_key["sk"].encode()) == 1024
    at_limit.save()  # DynamoDB accepts keys of exactly 2048 / 1024 bytes (GSI keys too)
    assert RelKeyed.objects.get(part=at_limit.part, slug=at_limit.slug).gkey == "g" * 2048
    found = list(RelKeyed.objects.using_gsi("rel_keyed_by_gkey").filter(gkey="g" * 2048))
    assert [o.slug for o in found] == [at_limit.slug]


# --------------------------------------------------------------------------- scenario 14


def _dict_nest(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


def _list_nest(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def _wire_nest(levels: int, kind: str) -> dict[str, Any]:
    value: dict[str, Any] = {"S": "leaf"}
    for _ in range(levels):
        value = {"M": {"a": value}} if kind == "M" else {"L": [value]}
    return value


def _server_max_levels(kind: str) -> int:
    """The deepest nesting DynamoDB accepts for one attribute (measured, not assumed)."""
    client = raw_client()
    deepest = 0
    for levels in range(28, 40):
        item = {"pk": {"S": "RELNESTPROBE"}, "sk": {"S": kind}, "d": _wire_nest(levels, kind)}
        try:
            client.put_item(TableName=table_name(), Item=item)
        except client.exceptions.ClientError as exc:
            assert "Nesting Levels" in str(exc), exc
            return deepest
        deepest = levels
    raise AssertionError("DynamoDB accepted every depth tried")


@pytest.mark.parametrize(
    ("field", "nest", "kind"), [("data", _dict_nest, "M"), ("items", _list_nest, "L")]
)
def test_s14_nesting_too_deep_is_refused_before_sending(
    dynorm_table: str,
    sent: list[tuple[str, dict[str, Any]]],
    field: str,
    nest: Any,
    kind: str,
) -> None:
    deepest = _server_max_levels(kind)
    ok = RelNest(id="ok", **{field: nest(deepest)})
    ok.save()  # the deepest value DynamoDB accepts is stored
    assert getattr(RelNest.objects.get(id="ok"), field) == nest(deepest)
    sent.clear()
    too_deep = RelNest(id="deep", **{field: nest(deepest + 1)})
    with pytest.raises(InvalidValueError) as info:
        too_deep.save()
    assert field in str(info.value) and "32" in str(info.value)
    with pytest.raises(InvalidValueError):
        ok.update(**{field: nest(deepest + 1)})
    assert sent == []


# --------------------------------------------------------------------------- scenario 15


def test_s15_in_with_more_than_100_values_is_refused_before_sending(offline: Offline) -> None:
    with pytest.raises(QueryError) as info:
        RelBlob.objects.filter(id="x", note__in=[str(i) for i in range(101)])
    assert "100" in str(info.value) and "101" in str(info.value)
    assert RelBlob.objects.filter(id="x", note__in=[str(i) for i in range(100)]).explain()
    assert offline.calls == []


def _or_chain(count: int) -> Q:
    q = Q(note="0")
    for i in range(1, count):
        q = q | Q(note=str(i))
    return q


def _long_and_chain() -> Q:
    # 100 IN lookups of 10 values: 199 operators, but an expression of about 8 KB.
    q = Q(note__in=[f"a{j}" for j in range(10)])
    for i in range(1, 100):
        q = q & Q(note__in=[f"v{i}-{j}" for j in range(10)])
    return q


@pytest.mark.parametrize(
    "build", [lambda: _or_chain(151), _long_and_chain], ids=["301-operators", "8kb"]
)
def test_s15_too_complex_expression_is_refused_before_sending(
    dynorm_table: str, sent: list[tuple[str, dict[str, Any]]], build: Any
) -> None:
    qs = RelBlob.objects.filter(build(), id="x")
    with pytest.raises(QueryError):
        list(qs)
    assert sent == []


def test_s15_expression_just_inside_the_operator_limit_is_accepted(dynorm_table: str) -> None:
    RelBlob.objects.create(id="x", note="148")
    # 149 comparisons and 148 ORs, plus the entity-type filter (AND, =): 299 operators.
    q = _or_chain(149)
    assert [b.note for b in RelBlob.objects.filter(q, id="x")] == ["148"]


# --------------------------------------------------------------------------- scenario 16


def test_s16_transaction_of_101_actions_is_refused_before_sending(offline: Offline) -> None:
    objs = [RelTx(id=str(i)) for i in range(101)]
    with pytest.raises(DynormError):
        with dynorm.transaction():
            for obj in objs:
                obj.save()
    assert offline.calls == []
    assert all(obj.version == 0 for obj in objs)


def test_s16_transaction_over_4mb_of_puts_is_refused_before_sending(offline: Offline) -> None:
    objs = [RelTx(id=str(i), body="x" * (390 * 1024)) for i in range(11)]
    with pytest.raises(DynormError) as info:
        with dynorm.transaction():
            for obj in objs:
                obj.save()
    assert "4" in str(info.value)
    assert offline.calls == []
    assert all(obj.version == 0 for obj in objs)


def test_s16_transaction_over_4mb_of_updates_is_refused_before_sending(
    dynorm_table: str, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    objs = [RelTx.objects.create(id=str(i)) for i in range(11)]
    sent.clear()
    with pytest.raises(QueryError):
        with dynorm.transaction():
            for obj in objs:
                obj.body = "x" * (390 * 1024)
                obj.save(update_fields=["body"])
    assert sent == []


def test_s16_same_item_twice_in_a_transaction_is_refused_before_sending(
    offline: Offline,
) -> None:
    a = loaded(RelTx, id="same", version=1)
    b = loaded(RelTx, id="same", version=1)
    with pytest.raises(DynormError):
        with dynorm.transaction():
            a.body = "one"
            a.save()
            b.delete()
    assert offline.calls == []
    assert a.version == 1 and b.version == 1


def test_s16_exactly_100_actions_commit(dynorm_table: str) -> None:
    objs = [RelTx(id=f"{i:03d}") for i in range(100)]
    with dynorm.transaction():
        for obj in objs:
            obj.save()
    assert all(obj.version == 1 for obj in objs)
    assert raw_get("RELTX#099", "RelTx") is not None
