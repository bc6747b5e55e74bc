"""F. Batch operations (scenarios 36-39)."""

from __future__ import annotations

import random
import statistics
import threading
from types import SimpleNamespace
from typing import Any

import pytest

import dynorm._batch
from dynorm import Model
from dynorm.exceptions import BatchIncompleteError, QueryError
from tests.reliability.conftest import FakeTime, Offline
from tests.reliability.helpers import Faults, aws_response, raw_scan, request_json, table_name


class RelItem(Model):
    id: str
    n: int = 0

    class Meta:
        pk = "RELITEM#{id}"


class RelBig(Model):
    id: str
    body: str = ""

    class Meta:
        pk = "RELBIG#{id}"


def _table() -> str:
    return table_name()


def _stored_ids() -> set[str]:
    return {i["id"]["S"] for i in raw_scan() if i.get("_type") == {"S": "RelItem"}}


# --------------------------------------------------------------------------- scenario 36


def _backoffs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float]]:
    """Record every batch back-off as (attempt, delay): chunks run in parallel threads."""
    taken: list[tuple[int, float]] = []
    original = dynorm._batch.backoff

    def recorded(attempt: int) -> float:
        delay = original(attempt)
        taken.append((attempt, delay))
        return delay

    monkeypatch.setattr(dynorm._batch, "backoff", recorded)
    return taken


def test_s36_unprocessed_items_are_retried_until_all_are_written(
    faults: Faults, dynorm_sleeps: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partial-batch injector makes DynamoDB process only half of every request.

    Chunks are in flight at once, so the injector keeps what it held back in each request's
    own botocore context (thread-safe), not in a shared list.
    """
    sizes: list[int] = []
    taken = _backoffs(monkeypatch)

    def process_half(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        ((table, requests),) = params["RequestItems"].items()
        sizes.append(len(requests))
        keep = (len(requests) + 1) // 2
        params["RequestItems"] = {table: requests[:keep]}
        context["held_back"] = requests[keep:]

    def report_unprocessed(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if rest := context.get("held_back"):
            parsed["UnprocessedItems"] = {_table(): rest}

    faults.on("before-parameter-build.dynamodb.BatchWriteItem", process_half)
    faults.on("after-call.dynamodb.BatchWriteItem", report_unprocessed)
    # One seeded generator per back-off cap (so per round): the 40 delays of a round are the
    # same whichever chunk's thread draws first.
    rounds: dict[float, random.Random] = {}
    drawing = threading.Lock()

    def uniform(low: float, high: float) -> float:
        with drawing:
            return rounds.setdefault(high, random.Random(f"round-{high}")).uniform(low, high)

    monkeypatch.setattr(dynorm._batch, "random", SimpleNamespace(uniform=uniform))
    objs = [RelItem(id=f"{i:04d}", n=i) for i in range(1000)]
    RelItem.objects.bulk_create(objs, overwrite=True)  # the BatchWriteItem path

    assert _stored_ids() == {f"{i:04d}" for i in range(1000)}  # nothing lost
    assert all(o.version == 1 for o in objs)
    assert max(sizes) <= 25
    assert sizes.count(25) == 40  # 1,000 items, chunked 25 a request
    # Each chunk of 25 took 5 rounds (25 -> 12 -> 6 -> 3 -> 1 left): 4 back-offs per chunk.
    assert len(dynorm_sleeps.sleeps) == len(taken) == 40 * 4
    assert sorted(dynorm_sleeps.sleeps) == sorted(delay for _, delay in taken)
    per_round = [[d for attempt, d in taken if attempt == r] for r in range(1, 5)]
    assert [len(delays) for delays in per_round] == [40] * 4
    for earlier, later in zip(per_round, per_round[1:]):
        # Exponential: each round's largest delay is about twice the previous round's.
        assert 1.5 < max(later) / max(earlier) < 2.5
        assert statistics.mean(later) > statistics.mean(earlier)
    for delays in per_round:
        assert len(set(delays)) > 30  # jittered, not a fixed delay
        assert min(delays) < max(delays) / 4  # full jitter reaches well below the cap
    assert sum(dynorm_sleeps.sleeps) < 60


# --------------------------------------------------------------------------- scenario 37


def test_s37_batch_that_never_clears_raises_with_every_unprocessed_key(
    faults: Faults, dynorm_sleeps: FakeTime
) -> None:
    """30 items: the first round of the chunk of 25 writes 16; nothing else is ever processed.

    The injector decides by request size, so it is the same whichever chunk goes first.
    """
    calls: list[int] = []

    def first_round_writes_16(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        requests = params["RequestItems"][_table()]
        calls.append(len(requests))
        if len(requests) == 25:  # only the first attempt of the first chunk has 25
            params["RequestItems"] = {_table(): requests[:16]}
            context["rest"] = requests[16:]

    def unprocessed_after(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if rest := context.get("rest"):
            parsed["UnprocessedItems"] = {_table(): list(rest)}

    def nothing_processed(request: Any, **_: Any) -> Any:
        items = request_json(request)["RequestItems"]
        if len(items[_table()]) != 16:  # every other request: DynamoDB processes nothing
            return aws_response(200, {"UnprocessedItems": items})
        return None

    faults.on("before-parameter-build.dynamodb.BatchWriteItem", first_round_writes_16)
    faults.on("after-call.dynamodb.BatchWriteItem", unprocessed_after)
    faults.on("before-send.dynamodb.BatchWriteItem", nothing_processed)
    objs = [RelItem(id=f"{i:02d}") for i in range(30)]
    with pytest.raises(BatchIncompleteError) as info:
        RelItem.objects.bulk_create(objs, overwrite=True)  # the BatchWriteItem path
    err = info.value
    stored = _stored_ids()
    assert len(stored) == 16
    unprocessed = [k["pk"].removeprefix("RELITEM#") for k in err.unprocessed]
    assert len(err.unprocessed) == 14  # 9 of the first chunk + the 5 of the second
    assert unprocessed == sorted(unprocessed)  # in request order
    assert stored | set(unprocessed) == {o.id for o in objs}  # nothing dropped silently
    assert not stored & set(unprocessed)
    assert all(o.version == 0 for o in objs)  # none is reported as written
    assert calls.count(25) == 1 and 5 in calls
    assert len(calls) == 2 * dynorm._batch.MAX_BATCH_ATTEMPTS  # each chunk tried them all
    assert len(dynorm_sleeps.sleeps) == len(calls) - 2  # each chunk backed off between rounds
    assert "14" in str(err) and "RELITEM#" not in str(err)


# --------------------------------------------------------------------------- scenario 38


def test_s38_batch_get_follows_unprocessed_keys_and_keeps_request_order(
    dynorm_table: str, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    body = "b" * (390 * 1024)
    RelBig.objects.bulk_create([RelBig(id=f"{i:02d}", body=body) for i in range(60)])
    order = [f"{i:02d}" for i in range(60)]
    random.Random(38).shuffle(order)
    keys: list[dict[str, Any]] = [{"id": i} for i in order]
    keys.insert(10, {"id": "missing"})
    keys.insert(20, {"id": order[0]})  # a duplicate
    sent.clear()
    got = RelBig.objects.bulk_get(keys)
    assert len(got) == len(keys)
    assert [o.id if o is not None else None for o in got] == [
        k["id"] if k["id"] != "missing" else None for k in keys
    ]
    assert all(o is None or o.body == body for o in got)
    requests = [params for op, params in sent if op == "BatchGetItem"]
    assert len(requests) >= 2  # 60 x 390 KB > 16 MB: the rest came back as UnprocessedKeys
    first_keys = next(iter(requests[0]["RequestItems"].values()))["Keys"]
    assert len(first_keys) == 61  # 60 distinct + the missing one; the duplicate sent once
    assert len({k["pk"]["S"] for k in first_keys}) == len(first_keys)


# --------------------------------------------------------------------------- scenario 39


def test_s39_duplicate_keys_in_a_batch_write_are_refused_before_sending(
    offline: Offline,
) -> None:
    objs = [RelItem(id="a", n=1), RelItem(id="b"), RelItem(id="a", n=2)]
    with pytest.raises(QueryError) as info:
        RelItem.objects.bulk_create(objs)
    assert "RelItem" in str(info.value)
    assert offline.calls == []
    assert all(o.version == 0 for o in objs)
