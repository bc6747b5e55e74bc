"""Batch chunks in flight at once: bounded, in request order, and nothing lost or doubled.

`bulk_create(overwrite=True)` and `bulk_get` split a call into BatchWriteItem chunks of 25 and
BatchGetItem chunks of 100 and send up to `BATCHES_IN_FLIGHT` of them at once, on a client
dynorm created. A client the user gave, and `dynorm.capture()`, get one request at a time.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

import dynorm
from dynorm import Model
from dynorm._batch import BATCHES_IN_FLIGHT
from dynorm.exceptions import DynormError
from tests.reliability.helpers import Faults, aws_error, raw_client, raw_scan, request_json


class RelChunked(Model):
    id: str
    n: int = 0

    class Meta:
        pk = "RELCHUNK#{id}"


class _InFlight:
    """A before-send hook that holds each request briefly and records how many overlap."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.requests = 0

    def __call__(self, **_: Any) -> None:
        with self.lock:
            self.now += 1
            self.requests += 1
            self.most = max(self.most, self.now)
        time.sleep(0.03)  # a slow network: the next chunks start meanwhile
        with self.lock:
            self.now -= 1


def _stored() -> dict[str, int]:
    return {
        i["id"]["S"]: int(i["n"]["N"]) for i in raw_scan() if i["_type"] == {"S": "RelChunked"}
    }


@pytest.mark.parametrize("operation", ["BatchWriteItem", "BatchGetItem"])
def test_chunks_of_one_call_are_in_flight_at_once_but_never_more_than_the_bound(
    faults: Faults, operation: str
) -> None:
    objs = [RelChunked(id=f"{i:04d}", n=i) for i in range(450)]  # 18 write / 5 read chunks
    if operation == "BatchGetItem":
        RelChunked.objects.bulk_create(objs, overwrite=True)
    spy = _InFlight()
    faults.on(f"before-send.dynamodb.{operation}", spy)
    if operation == "BatchWriteItem":
        RelChunked.objects.bulk_create(objs, overwrite=True)
        assert spy.requests == 18
    else:
        got = RelChunked.objects.bulk_get([{"id": o.id} for o in objs])
        assert [o.id for o in got if o is not None] == [o.id for o in objs]
        assert spy.requests == 5
    assert 2 <= spy.most <= BATCHES_IN_FLIGHT
    assert _stored() == {o.id: o.n for o in objs}


def test_a_users_own_client_gets_one_chunk_at_a_time(dynorm_table: str) -> None:
    client = raw_client()  # hooks on a user's client may expect one request at a time
    spy = _InFlight()
    client.meta.events.register("before-send.dynamodb.BatchWriteItem", spy)
    objs = [RelChunked(id=f"{i:04d}") for i in range(100)]
    with dynorm.using(dynorm.Table(dynorm_table, client=client)):
        RelChunked.objects.bulk_create(objs, overwrite=True)
    assert spy.requests == 4 and spy.most == 1
    assert set(_stored()) == {o.id for o in objs}


def test_captured_chunks_are_recorded_in_request_order(dynorm_table: str) -> None:
    objs = [RelChunked(id=f"{i:04d}") for i in range(260)]
    with dynorm.capture() as requests:
        RelChunked.objects.bulk_create(objs, overwrite=True)
        RelChunked.objects.bulk_get([{"id": o.id} for o in objs])
    writes = [r.params for r in requests if r.operation == "BatchWriteItem"]
    sent = [
        put["PutRequest"]["Item"]["id"]["S"]
        for params in writes
        for put in params["RequestItems"][dynorm_table]
    ]
    assert sent == [o.id for o in objs]  # 11 chunks, in order
    reads = [r.params for r in requests if r.operation == "BatchGetItem"]
    asked = [k["pk"]["S"] for p in reads for k in p["RequestItems"][dynorm_table]["Keys"]]
    assert asked == [f"RELCHUNK#{o.id}" for o in objs]
    assert _stored() == {}  # captured: nothing sent


def test_a_chunk_that_fails_raises_its_error_and_chunks_not_started_are_not_sent(
    faults: Faults,
) -> None:
    """The first chunk is refused at once (a 400 botocore does not retry): the call raises it.

    Chunks already in flight finish (their items are written, as a sequential run's earlier
    chunks were); chunks not yet started are skipped, not sent; no object is marked written
    (version 0), so the caller retries the whole call, which `overwrite=True` makes safe.
    """
    objs = [RelChunked(id=f"{i:04d}", n=1) for i in range(400)]  # 16 chunks
    doomed = objs[0].id
    seen: list[list[str]] = []

    def fail_first_chunk(request: Any, **_: Any) -> Any:
        items = request_json(request)["RequestItems"]
        ids = [r["PutRequest"]["Item"]["id"]["S"] for r in next(iter(items.values()))]
        seen.append(ids)
        if doomed in ids:
            return aws_error("ValidationException", status=400)
        time.sleep(0.05)  # the others are slow: the failure is known before they finish
        return None

    faults.on("before-send.dynamodb.BatchWriteItem", fail_first_chunk)
    with pytest.raises(DynormError):
        RelChunked.objects.bulk_create(objs, overwrite=True)
    assert all(o.version == 0 for o in objs)
    assert len(seen) <= BATCHES_IN_FLIGHT  # the 12+ chunks queued behind it were skipped
    stored = _stored()
    # exactly the items of the chunks that were sent and not refused
    assert set(stored) == {i for ids in seen if doomed not in ids for i in ids}
    assert doomed not in stored
    faults.clear()
    RelChunked.objects.bulk_create(objs, overwrite=True)  # the retry the caller makes
    assert _stored() == {o.id: 1 for o in objs}
    assert all(o.version == 1 for o in objs)


def test_bulk_get_over_many_chunks_keeps_request_order_with_duplicates_and_misses(
    dynorm_table: str,
) -> None:
    objs = [RelChunked(id=f"{i:04d}", n=i) for i in range(330)]
    RelChunked.objects.bulk_create(objs, overwrite=True)
    rng = random.Random(7)
    wanted = [o.id for o in objs] + [f"missing-{i}" for i in range(20)]
    wanted += rng.sample(wanted, 40)  # duplicates
    rng.shuffle(wanted)
    got = RelChunked.objects.bulk_get([{"id": i} for i in wanted])
    by_id = {o.id: o.n for o in objs}
    assert [None if o is None else (o.id, o.n) for o in got] == [
        (i, by_id[i]) if i in by_id else None for i in wanted
    ]
