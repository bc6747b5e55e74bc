"""The lean transport starts without a boto3 client: a process whose requests are all item
operations never builds one nor loads DynamoDB's service model; anything else makes the
client on first use, once, with dynorm's hooks on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from dynorm import _config
from dynorm.exceptions import ItemExistsError
from tests.models import Order

ROOT = Path(__file__).resolve().parents[2]

_PROCESS = """
import json, sys
import botocore.session

made = []
Session = botocore.session.Session
real_create, real_model = Session.create_client, Session.get_service_model
def create_client(self, *a, **k):
    made.append("client")
    return real_create(self, *a, **k)
def get_service_model(self, *a, **k):
    made.append("service model")
    return real_model(self, *a, **k)
Session.create_client = create_client
Session.get_service_model = get_service_model

import dynorm
from dynorm import Model, fields

class Order(Model):
    id: str = fields.ULID()
    customer_id: str
    total: int = 0

    class Meta:
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{id}"

dynorm.configure(table_name=sys.argv[1], endpoint_url=sys.argv[2], transport="http")
order = Order(customer_id="c1", total=3)
order.save()
got = Order.objects.get(customer_id="c1", id=order.id)
assert got.total == 3
steps = [list(made), "boto3" in sys.modules]
try:
    Order(customer_id="c1", id=order.id).save()  # refused: the first error answer
except dynorm.ItemExistsError:
    pass
steps.append(list(made))
print(json.dumps(steps))
"""


def test_a_lean_process_of_item_requests_builds_no_client_and_loads_no_service_model(
    dynorm_table: str,
) -> None:
    endpoint = _config.get_settings().endpoint_url
    assert endpoint is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYNORM_")}
    done = subprocess.run(
        [sys.executable, "-c", _PROCESS, dynorm_table, endpoint],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    before_error, boto3_loaded, after_error = json.loads(done.stdout.strip().splitlines()[-1])
    assert before_error == [] and not boto3_loaded
    # An error answer is parsed with botocore's own parser and model, loaded then: no client.
    assert after_error == ["service model"]


def test_the_client_is_made_once_on_first_need_with_dynorms_hooks(dynorm_table: str) -> None:
    _config.configure(transport="http")
    conn = _config.get_connection()
    order = Order(customer_id="c1", total=1)
    order.save()
    with pytest.raises(ItemExistsError):
        Order(customer_id="c1", id=order.id, total=2).save()
    assert conn._slot.made is None  # item requests and their errors need no client
    clients: list[Any] = []
    barrier = threading.Barrier(8)

    def take() -> None:
        barrier.wait()
        clients.append(conn.client)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(c) for c in clients}) == 1
    client = clients[0]
    assert conn.for_table("other").client is client
    assert conn.endpoint_url == client.meta.endpoint_url  # error messages name it alike
    handlers = client.meta.events._emitter._unique_id_handlers
    # the attempt counter, the raw-body reads and the exactly-once write tracking
    assert {"dynorm-attempts", "dynorm-raw-GetItem", "dynorm-write-attempts"} <= set(handlers)
    # an operation the lean transport does not send goes through that client
    table = conn.send("DescribeTable", {"TableName": dynorm_table})["Table"]
    assert table["TableName"] == dynorm_table
    assert conn._slot.made is client
