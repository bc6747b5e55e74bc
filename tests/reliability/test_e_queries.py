"""E. Queries, pagination, consistency and indexes (scenarios 25-35)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

import dynorm
from dynorm import Index, Model, Q
from dynorm._connection import Connection
from dynorm.exceptions import InvalidCursorError, QueryError
from tests.reliability.conftest import Offline
from tests.reliability.helpers import (
    Faults,
    aws_response,
    decode_cursor_payload,
    raw_client,
    raw_get,
    request_json,
    table_name,
    wire_json,
)


class RelPost(Model):
    thread: str
    seq: int
    body: str = ""
    flag: bool = False
    note: str = ""

    class Meta:
        pk = "RELTHREAD#{thread}"
        sk = "RELPOST#{seq:05d}"


class RelTask(Model):
    id: str
    queue: str | None = None
    prio: int = 0
    title: str = ""

    class Meta:
        pk = "RELTASK#{id}"
        indexes = [Index("rel_by_queue", pk="RELQ#{queue}", sk="RELQS#{prio:03d}")]


class RelLogin(Model):
    user: str
    password: str = ""
    email: str = ""

    class Meta:
        pk = "RELLOGIN#{user}"


KB100 = "x" * (100 * 1024)


def _posts(n: int, thread: str = "t", body: str = "", **values: Any) -> list[RelPost]:
    return RelPost.objects.bulk_create(
        [RelPost(thread=thread, seq=i, body=body, **values) for i in range(n)]
    )


@pytest.fixture
def small_pages(faults: Faults) -> None:
    """DynamoDB evaluates at most 3 items per Query page (Limit=3 on the wire)."""

    def limit(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = 3

    faults.on("before-parameter-build.dynamodb.Query", limit)


@pytest.fixture
def pages(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The number of items in every Query page DynamoDB returned."""
    sizes: list[int] = []
    original = Connection.send_body

    def spy(self: Connection, operation: str, params: Any) -> tuple[bytes | None, dict[str, Any]]:
        body, response = original(self, operation, params)
        if operation == "Query":
            parsed = response if body is None else json.loads(body)
            sizes.append(len(parsed.get("Items", [])))
        return body, response

    monkeypatch.setattr(Connection, "send_body", spy)
    yield sizes


def _queries(sent: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [params for op, params in sent if op == "Query"]


# --------------------------------------------------------------------------- scenario 25


def test_s25_iteration_and_count_follow_pages_past_1mb(
    dynorm_table: str, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    _posts(30, body=KB100)
    sent.clear()
    got = list(RelPost.objects.filter(thread="t"))
    assert [p.seq for p in got] == list(range(30))
    assert len({p.seq for p in got}) == 30
    assert len(_queries(sent)) >= 3  # 3 MB cannot come back in one 1 MB page
    sent.clear()
    assert RelPost.objects.filter(thread="t").count() == 30
    counts = _queries(sent)
    assert len(counts) >= 3 and all(p["Select"] == "COUNT" for p in counts)


# --------------------------------------------------------------------------- scenario 26


@pytest.mark.parametrize("body", ["", KB100], ids=["small-items", "100kb-items"])
def test_s26_limit_cutting_a_page_resumes_without_skip_or_duplicate(
    dynorm_table: str, body: str
) -> None:
    _posts(30, body=body)
    assert [p.seq for p in RelPost.objects.filter(thread="t")[:25]] == list(range(25))
    first = RelPost.objects.filter(thread="t").page(size=25)
    assert [p.seq for p in first.items] == list(range(25))
    assert first.next_cursor is not None
    # The cursor is the key of the 25th item, not the LastEvaluatedKey of the page it was in.
    assert decode_cursor_payload(first.next_cursor)["k"] == {
        "pk": {"S": "RELTHREAD#t"},
        "sk": {"S": "RELPOST#00024"},
    }
    second = RelPost.objects.filter(thread="t").page(size=25, cursor=first.next_cursor)
    assert [p.seq for p in second.items] == list(range(25, 30))
    assert second.next_cursor is None


def test_s26_slice_sends_a_limit_that_stops_at_the_cut(offline: Offline) -> None:
    request = RelPost.objects.filter(thread="t").explain()[0]
    assert "Limit" not in request.params  # nothing to cut: DynamoDB pages by size

    def answer(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        items = [
            {
                "pk": {"S": "RELTHREAD#t"},
                "sk": {"S": f"RELPOST#{i:05d}"},
                "_type": {"S": "RelPost"},
                "thread": {"S": "t"},
                "seq": {"N": str(i)},
                "version": {"N": "1"},
            }
            for i in range(params.get("Limit", 100))
        ]
        return {"Items": items, "Count": len(items)}

    offline.responder = answer
    assert len(RelPost.objects.filter(thread="t")[:25]) == 25
    ((_, params),) = offline.calls
    if "FilterExpression" not in params:  # with a filter, Limit would count unmatched items
        assert params["Limit"] == 25


# --------------------------------------------------------------------------- scenario 27


def test_s27_empty_filtered_pages_are_followed_to_the_end(
    dynorm_table: str, small_pages: None, pages: list[int]
) -> None:
    _posts(29)
    RelPost.objects.create(thread="t", seq=29, flag=True)
    qs = RelPost.objects.filter(thread="t", flag=True)
    first = qs.first()
    assert first is not None and first.seq == 29  # not None after the first empty page
    assert pages.count(0) >= 3  # it really walked through empty pages
    assert qs.exists()
    assert [p.seq for p in qs[:1]] == [29]
    assert qs.get().seq == 29
    assert [p.seq for p in qs.page(size=1).items] == [29]
    assert qs.count() == 1
    assert RelPost.objects.filter(thread="t", flag=True, seq__lt=29).first() is None


def test_s27_injected_empty_pages_with_last_evaluated_key(faults: Faults) -> None:
    """ElectroDB's test: three empty pages that still carry a LastEvaluatedKey."""
    RelPost.objects.create(thread="t", seq=7, flag=True)
    served: list[int] = []
    lek = {"pk": {"S": "RELTHREAD#t"}, "sk": {"S": "RELPOST#00000"}}

    def empty_pages(request: Any, **_: Any) -> Any:
        if len(served) < 3:
            served.append(1)
            return aws_response(
                200, {"Items": [], "Count": 0, "ScannedCount": 3, "LastEvaluatedKey": lek}
            )
        assert request_json(request)["ExclusiveStartKey"] == lek
        return None

    faults.on("before-send.dynamodb.Query", empty_pages)
    assert RelPost.objects.filter(thread="t", flag=True).first() is not None
    assert len(served) == 3


# --------------------------------------------------------------------------- scenario 28


def test_s28_gsi_cursor_holds_index_and_table_keys_and_resumes_exactly(
    dynorm_table: str, small_pages: None
) -> None:
    # 20 tasks, only 3 distinct GSI sort keys: resuming needs the table key too.
    RelTask.objects.bulk_create([RelTask(id=f"t{i:02d}", queue="q", prio=i % 3) for i in range(20)])
    RelTask.objects.create(id="other", queue="elsewhere")
    qs = RelTask.objects.using_gsi("rel_by_queue").filter(queue="q")
    seen: list[str] = []
    cursor: str | None = None
    cursors: list[str] = []
    while True:
        page = qs.page(size=4, cursor=cursor)
        seen += [t.id for t in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        cursors.append(cursor)
    assert len(seen) == len(set(seen)) == 20
    assert sorted(seen) == [f"t{i:02d}" for i in range(20)]
    key = decode_cursor_payload(cursors[0])["k"]
    slot = RelTask._meta.indexes["rel_by_queue"].slot
    assert set(key) == {"pk", "sk", f"gsi{slot}pk", f"gsi{slot}sk"}


# --------------------------------------------------------------------------- scenarios 29, 30


def test_s29_unknown_index_is_refused_before_sending(offline: Offline) -> None:
    with pytest.raises(QueryError) as info:
        RelTask.objects.using_gsi("gsi9")
    assert info.value.code == "unknown-index"
    assert "gsi9" in str(info.value) and "rel_by_queue" in str(info.value)
    with pytest.raises(QueryError) as close:
        RelTask.objects.using_gsi("rel_by_queu")
    assert "rel_by_queue" in str(close.value)
    assert offline.calls == []


def test_s30_consistent_read_on_a_gsi_is_refused_before_sending(offline: Offline) -> None:
    with pytest.raises(QueryError) as info:
        RelTask.objects.using_gsi("rel_by_queue").consistent()
    assert info.value.code == "consistent-gsi"
    with pytest.raises(QueryError):
        RelTask.objects.consistent().using_gsi("rel_by_queue")
    assert offline.calls == []


def test_s30_consistent_reads_on_the_table_send_consistent_read(offline: Offline) -> None:
    with pytest.raises(RelTask.DoesNotExist):
        RelTask.objects.consistent().get(id="t1")
    list(RelPost.objects.consistent().filter(thread="t"))
    (get_op, get_params), (query_op, query_params) = offline.calls
    assert get_op == "GetItem" and get_params["ConsistentRead"] is True
    assert query_op == "Query" and query_params["ConsistentRead"] is True


# --------------------------------------------------------------------------- scenario 31


def test_s31_gsi_lag_is_not_papered_over_and_refresh_reads_the_table(
    faults: Faults, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    task = RelTask.objects.create(id="t1", queue="q", title="v1")
    stale_image = wire_json(raw_get("RELTASK#t1", "RelTask") or {})

    def index_lags(request: Any, **_: Any) -> Any:
        if "IndexName" in request_json(request):
            return aws_response(200, {"Items": [], "Count": 0, "ScannedCount": 0})
        return None

    faults.on("before-send.dynamodb.Query", index_lags)
    sent.clear()
    assert list(RelTask.objects.using_gsi("rel_by_queue").filter(queue="q")) == []
    assert [op for op, _ in sent] == ["Query"]  # no hidden base-table read to "fix" it
    faults.clear()

    task.title = "v2"
    task.save()  # the table has v2; the index still serves v1

    def index_serves_old_image(request: Any, **_: Any) -> Any:
        if "IndexName" in request_json(request):
            return aws_response(200, {"Items": [stale_image], "Count": 1, "ScannedCount": 1})
        return None

    faults.on("before-send.dynamodb.Query", index_serves_old_image)
    hit = RelTask.objects.using_gsi("rel_by_queue").filter(queue="q").first()
    assert hit is not None and hit.version == 1 and hit.title == "v1"  # returned as served
    sent.clear()
    hit.refresh_from_db()
    assert [op for op, _ in sent] == ["GetItem"]
    params = sent[0][1]
    assert params["ConsistentRead"] is True and "IndexName" not in params
    assert hit.version == 2 and hit.title == "v2"


# --------------------------------------------------------------------------- scenario 32


@pytest.mark.parametrize("how", ["save", "update_fields", "update"])
def test_s32_none_gsi_key_removes_the_attribute_and_leaves_the_index(
    dynorm_table: str, sent: list[tuple[str, dict[str, Any]]], how: str
) -> None:
    task = RelTask.objects.create(id="t1", queue="q")
    slot = RelTask._meta.indexes["rel_by_queue"].slot
    gsi_attrs = {f"gsi{slot}pk", f"gsi{slot}sk"}
    stored = raw_get("RELTASK#t1", "RelTask")
    assert stored is not None and gsi_attrs <= set(stored)
    sent.clear()
    if how == "update":
        task.update(queue=None)
    else:
        task.queue = None
        task.save(update_fields=["queue"] if how == "update_fields" else None)
    stored = raw_get("RELTASK#t1", "RelTask")
    assert stored is not None and not gsi_attrs & set(stored) and "queue" not in stored
    assert not any("NULL" in value for value in stored.values())
    (op, params), *_ = sent
    if op == "UpdateItem":
        removed = params["UpdateExpression"].split(" REMOVE ")[1]
        names = params["ExpressionAttributeNames"]
        assert {names[t] for t in re.findall(r"#\w+", removed)} >= gsi_attrs
    assert list(RelTask.objects.using_gsi("rel_by_queue").filter(queue="q")) == []
    task.queue = "q"
    task.save()
    assert [t.id for t in RelTask.objects.using_gsi("rel_by_queue").filter(queue="q")] == ["t1"]


# --------------------------------------------------------------------------- scenario 33


def test_s33_unknown_filter_field_is_refused_with_a_suggestion(offline: Offline) -> None:
    with pytest.raises(QueryError) as info:
        RelLogin.objects.filter(user="u", passwrd="x")
    assert info.value.code == "unknown-field"
    message = str(info.value)
    assert "passwrd" in message and "password" in message and "RelLogin" in message
    for attr in ("pk", "sk", "_type", "gsi1pk"):
        with pytest.raises(QueryError):
            RelLogin.objects.filter(**{attr: "x"})
    assert offline.calls == []


QUERIES = {
    "get": lambda: RelPost.objects.filter(thread="t", seq=3),
    "range": lambda: RelPost.objects.filter(thread="t", seq__gte=3, seq__lt=9),
    "range+filter": lambda: RelPost.objects.filter(thread="t", seq__gte=3, note="n"),
    "or": lambda: RelPost.objects.filter(Q(seq=1) | Q(seq=2), thread="t"),
    "exclude": lambda: RelPost.objects.filter(thread="t").exclude(seq=4),
    "between": lambda: RelPost.objects.filter(thread="t", seq__between=(2, 5)),
    "gsi": lambda: RelTask.objects.using_gsi("rel_by_queue").filter(queue="q", prio__gte=1),
    "gsi+filter": lambda: RelTask.objects.using_gsi("rel_by_queue").filter(queue="q", id="t1"),
    "only": lambda: RelPost.objects.filter(thread="t", seq__gt=1).only("seq", "note"),
}


@pytest.mark.parametrize("name", list(QUERIES))
def test_s33_key_attributes_never_appear_in_a_filter_expression(
    dynorm_table: str, name: str
) -> None:
    _posts(10, note="n")
    RelTask.objects.bulk_create([RelTask(id=f"t{i}", queue="q", prio=i) for i in range(3)])
    qs = QUERIES[name]()
    (request,) = qs.explain()
    params = request.params
    key_attrs = {"pk", "sk"}
    if "IndexName" in params:
        slot = RelTask._meta.indexes["rel_by_queue"].slot
        key_attrs |= {f"gsi{slot}pk", f"gsi{slot}sk"}
    names = params.get("ExpressionAttributeNames", {})
    in_filter = {names[t] for t in re.findall(r"#\w+", params.get("FilterExpression", ""))}
    assert not in_filter & key_attrs, (name, params)
    list(qs)  # and DynamoDB accepts it (it refuses key attributes in a filter)


# --------------------------------------------------------------------------- scenario 34


def test_s34_two_sort_key_conditions_become_one_key_condition(dynorm_table: str) -> None:
    _posts(12)
    qs = RelPost.objects.filter(thread="t", seq__gt=2, seq__lte=8)
    (request,) = qs.explain()
    params = request.params
    names = params["ExpressionAttributeNames"]
    key = params["KeyConditionExpression"]
    sk_token = next(t for t, n in names.items() if n == "sk")
    assert key.count(sk_token) == 1 and " OR " not in key
    assert [p.seq for p in qs] == [3, 4, 5, 6, 7, 8]


def test_s34_or_on_the_partition_key_is_refused_before_sending(offline: Offline) -> None:
    for qs in (
        RelPost.objects.filter(Q(thread="a") | Q(thread="b")),
        RelPost.objects.filter(thread__in=["a", "b"]),
        RelPost.objects.filter(thread__begins_with="a"),
        RelPost.objects.filter(thread__gt="a"),
    ):
        with pytest.raises(QueryError) as info:
            list(qs)
        assert ".scan()" in str(info.value)
    for qs in (
        RelPost.objects.filter(Q(seq=1) | Q(seq=2), thread="a"),
        RelPost.objects.filter(Q(thread="a") | Q(thread="a", seq=1), thread="a"),
    ):
        (request,) = qs.explain()
        assert " OR " not in request.params["KeyConditionExpression"]
    assert offline.calls == []


# --------------------------------------------------------------------------- scenario 35


def _flip(text: str, index: int) -> str:
    char = text[index]
    return text[:index] + ("A" if char != "A" else "B") + text[index + 1 :]


def test_s35_tampered_or_foreign_cursors_are_refused_before_sending(
    dynorm_table: str, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    _posts(6, thread="t")
    _posts(6, thread="u")
    good = RelPost.objects.filter(thread="t").page(size=2).next_cursor
    other_partition = RelPost.objects.filter(thread="u").page(size=2).next_cursor
    other_filter = RelPost.objects.filter(thread="t", seq__gte=0).page(size=2).next_cursor
    RelTask.objects.bulk_create([RelTask(id=f"x{i}", queue="q") for i in range(3)])
    other_query = RelTask.objects.using_gsi("rel_by_queue").filter(queue="q").page(size=1)
    assert good and other_partition and other_filter and other_query.next_cursor
    payload, signature = good.split(".")
    forged_payload = decode_cursor_payload(good)
    assert forged_payload["k"]["pk"] == {"S": "RELTHREAD#t"}
    bad = [
        _flip(good, 3),
        _flip(good, len(good) - 3),
        good[:-4],
        payload,
        f"{payload}.",
        ".",
        "",
        "not-a-cursor",
        good + "x",
        "é" * 40,
        other_partition,  # valid signature, another partition: refused client-side
        other_filter,
        other_query.next_cursor,
    ]
    sent.clear()
    for cursor in bad:
        with pytest.raises(InvalidCursorError):
            RelPost.objects.filter(thread="t").page(size=2, cursor=cursor)
    assert sent == []
    dynorm.configure(cursor_secret="another secret of 32 bytes......")
    with pytest.raises(InvalidCursorError):
        RelPost.objects.filter(thread="t").page(size=2, cursor=good)
    assert sent == []
    assert RelPost.objects.filter(thread="t").page(size=2).items  # fresh cursors still work


def test_s35_raw_client_rejects_foreign_start_key_so_client_side_check_matters(
    dynorm_table: str,
) -> None:
    """Control arm: without dynorm's check DynamoDB itself fails the request."""
    _posts(2, thread="t")
    client = raw_client()
    with pytest.raises(client.exceptions.ClientError) as info:
        client.query(
            TableName=table_name(),
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "RELTHREAD#t"}},
            ExclusiveStartKey={"pk": {"S": "RELTHREAD#u"}, "sk": {"S": "RELPOST#00001"}},
        )
    assert "starting key" in str(info.value).lower()
