"""`dynorm export` / `dynorm import`: lossless, validated, never overwriting, resumable.

Each guarantee is a test: a round trip of every field type (hypothesis), versioned
histories in a whole-table export, bad lines reported by number (values never shown),
existing keys skipped (or replaced with overwrite), a real SIGKILL mid-import resumed
without writing anything twice, throttling and lost responses survived, dry runs writing
nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

import dynorm
from dynorm import Table, VersionedModel, _config
from dynorm._cli import cli
from dynorm._connection import Connection
from dynorm.exceptions import ConfigurationError, ImportLineError, TransactionCanceledError
from dynorm.query._compile_write import model_item
from dynorm.tooling import _import, export_items, import_items, item_to_json
from tests.models import Everything, Order
from tests.processes import clean_env
from tests.reliability.helpers import (
    Faults,
    aws_error,
    raw_client,
    raw_scan,
    request_json,
    table_name,
    without_token,
)
from tests.reliability.test_d_roundtrip_property import everything

ROOT = Path(__file__).resolve().parents[2]


class ExpPage(VersionedModel):
    slug: str
    body: str = ""

    class Meta:
        pk = "EXPPAGE#{slug}"
        sk = "PAGE"


@pytest.fixture
def faults() -> Iterator[Faults]:
    f = Faults()
    try:
        yield f
    finally:
        f.clear()
    f.check_fired()


def scan_of(table: Table | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """Every stored item of a table (default: the configured one), by key, minus `_wtok`."""
    if table is None:
        items = raw_scan()
    else:
        with dynorm.using(table):
            items = raw_scan()
    out = {}
    for item in items:
        clean = without_token(item)
        assert clean is not None
        out[(item["pk"]["S"], item["sk"]["S"])] = clean
    return out


def order_lines(path: Path, count: int, customer: str = "c") -> list[dict[str, Any]]:
    """Write `count` export lines of Orders (no table needed); return their items."""
    items = []
    with open(path, "w", encoding="utf-8") as out:
        for i in range(count):
            order = Order(customer_id=f"{customer}{i % 7}", total=Decimal(i), tags={f"t{i}"})
            item = model_item(Order._meta, order.__dict__, token=None)
            items.append(item)
            out.write(json.dumps({"type": "Order", "item": item_to_json(item)}) + "\n")
    return items


def key(item: dict[str, Any]) -> tuple[str, str]:
    return item["pk"]["S"], item["sk"]["S"]


@dataclass
class Writes:
    """The keys of every Put the import sent, and of every one DynamoDB applied, in order."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    stored: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Writes:
    """Record the import's writes at `Connection.send` (a key stored twice: written twice)."""
    log = Writes()
    lock = threading.Lock()
    send = Connection.send

    def recording(self: Connection, operation: str, params: Any) -> dict[str, Any]:
        if operation != "TransactWriteItems":
            return send(self, operation, params)
        keys = [key(action["Put"]["Item"]) for action in params["TransactItems"]]
        with lock:
            log.sent.extend(keys)
        response = send(self, operation, params)  # cancelled (raised): nothing stored
        with lock:
            log.stored.extend(keys)
        return response

    monkeypatch.setattr(Connection, "send", recording)
    return log


# --------------------------------------------------------------------------- lossless


@settings(
    max_examples=int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES_TOOLING", "12")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(objs=st.lists(everything, min_size=1, max_size=4))
def test_export_then_import_into_a_new_table_is_lossless_for_every_field_type(
    dynorm_table: str, second_table: Table, objs: list[Everything]
) -> None:
    for obj in objs:
        obj.id = str(uuid.uuid4())
        obj.save()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "everything.jsonl"
        exported = export_items(path, [Everything], segments=3)
        with dynorm.using(second_table):
            result = import_items(path)
            for obj in objs:
                assert Everything.objects.get(id=obj.id) == obj
    assert result.invalid == [] and result.written + result.skipped == exported.items
    source, target = scan_of(), scan_of(second_table)
    for obj in objs:
        (k,) = [k for k, item in source.items() if item.get("id") == {"S": obj.id}]
        assert target[k] == source[k]  # the stored attributes, byte for byte


def test_a_whole_table_export_carries_versioned_histories(
    dynorm_table: str, second_table: Table, tmp_path: Path
) -> None:
    page = ExpPage.objects.create(slug="home", body="v1")
    for body in ("v2", "v3"):
        page.body = body
        page.save()
    Order.objects.create(customer_id="c1", total=Decimal("9.5"))
    path = tmp_path / "all.jsonl"
    exported = export_items(path)  # models=None: the whole table
    assert exported.by_type == {"ExpPage": 1, "ExpPage#history": 3, "Order": 1}
    with dynorm.using(second_table):
        result = import_items(path)
        assert (result.written, result.invalid) == (5, [])
        copy = ExpPage.objects.get(slug="home")
        assert [p.body for p in copy.history()] == ["v3", "v2", "v1"]
        assert ExpPage.objects.get(slug="home", version=1).body == "v1"
    assert scan_of(second_table) == scan_of()


def test_export_of_chosen_models_filters_on_the_entity_type(
    dynorm_table: str, tmp_path: Path
) -> None:
    ExpPage.objects.create(slug="a")
    Order.objects.create(customer_id="c1", total=Decimal(1))
    only = export_items(tmp_path / "p.jsonl", [ExpPage], history=False)
    assert only.by_type == {"ExpPage": 1}
    with_history = export_items(tmp_path / "h.jsonl", [ExpPage])
    assert with_history.by_type == {"ExpPage": 1, "ExpPage#history": 1}
    lines = (tmp_path / "p.jsonl").read_text().splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["ExpPage"]


# --------------------------------------------------------------------------- validation


def test_a_bad_line_is_reported_with_its_number_and_the_rest_are_imported(
    dynorm_table: str, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    items = order_lines(path, 3)
    lines = path.read_text().splitlines()
    bad_total = json.loads(lines[1])
    bad_total["item"]["total"] = {"S": "not-a-number-SECRET"}
    lines[1] = json.dumps(bad_total)
    lines.insert(2, '{"type": "Order", "item": {"pk": ')  # not JSON
    lines.append(json.dumps({"type": "Nobody", "item": {"pk": {"S": "x"}}}))
    path.write_text("\n".join(lines) + "\n")

    result = import_items(path)
    assert [p.line for p in result.invalid] == [2, 3, 5]
    assert result.invalid_count == 3 and result.written == 2
    assert [p.model for p in result.invalid] == ["Order", "", "Nobody"]
    assert "total" in result.invalid[0].problem
    assert all("SECRET" not in str(p) for p in result.invalid)
    assert set(scan_of()) == {key(items[0]), key(items[2])}


def test_strict_stops_at_the_first_bad_line_having_written_every_line_before_it(
    dynorm_table: str, tmp_path: Path
) -> None:
    path = tmp_path / "strict.jsonl"
    items = order_lines(path, 6)
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace('"Order"', '"Ghost"', 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportLineError) as info:
        import_items(path, strict=True, batch_size=2)
    assert info.value.line == 4 and "line 4" in str(info.value)
    assert set(scan_of()) == {key(i) for i in items[:3]}


def test_dry_run_validates_and_counts_and_writes_nothing(
    dynorm_table: str, tmp_path: Path, faults: Faults
) -> None:
    path = tmp_path / "dry.jsonl"
    order_lines(path, 30)
    sent = faults.count("TransactWriteItems")
    result = import_items(path, dry_run=True)
    assert (result.dry_run, result.written, result.invalid_count) == (True, 30, 0)
    assert sent == [] and scan_of() == {}
    assert not Path(f"{path}.checkpoint").exists()


# --------------------------------------------------------------------------- existing keys


def test_an_item_already_stored_is_skipped_and_counted_never_overwritten(
    dynorm_table: str, tmp_path: Path
) -> None:
    path = tmp_path / "orders.jsonl"
    items = order_lines(path, 5)
    mine = Order.from_item(items[2])
    mine.note = "edited in the table"
    mine.save()
    before = scan_of()[key(items[2])]
    result = import_items(path)
    assert (result.written, result.skipped) == (4, 1)
    assert scan_of()[key(items[2])] == before

    replaced = import_items(path, overwrite=True)
    assert replaced.written == 5
    assert scan_of()[key(items[2])] == without_token(items[2])


# --------------------------------------------------------------------------- resuming


def test_a_killed_import_resumes_from_its_checkpoint_and_writes_nothing_twice(
    dynorm_table: str, second_table: Table, tmp_path: Path, writes: Writes
) -> None:
    path = tmp_path / "big.jsonl"
    items = order_lines(path, 1500)
    checkpoint = tmp_path / "big.checkpoint"
    endpoint = _config.get_settings().endpoint_url
    assert endpoint is not None
    command = [
        sys.executable, "-m", "dynorm", "import", "--models", "tests.models",
        "--table", second_table.name, "--endpoint-url", endpoint, str(path),
        "--checkpoint", str(checkpoint), "--max-rate", "600", "--batch-size", "10",
        "--workers", "3", "--no-progress",
    ]  # fmt: skip
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as err:
        proc = subprocess.Popen(command, cwd=ROOT, env=clean_env(), stderr=err)
    deadline = time.monotonic() + 60
    settled = 0
    while settled < 300:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the import made no progress"
        if checkpoint.exists():
            settled = json.loads(checkpoint.read_text())["state"]["next_line"]
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = json.loads(checkpoint.read_text())["state"]
    done = state["next_line"] - 1
    assert 300 <= done < 1500 and state["written"] == done

    before = set(scan_of(second_table))
    with dynorm.using(second_table):
        result = import_items(path, checkpoint=checkpoint, batch_size=10, workers=3)
    assert not {key(i) for i in items[:done]} & set(writes.sent)  # settled lines: not sent
    # Nothing written twice, nothing lost: the resumed run (batches in flight again) stored
    # exactly what the killed one had not; the batches in flight at the kill were sent
    # again and recognised as its own writes by their tokens.
    # (A batch the killed process had sent may still commit after `before` was read: it is
    # then refused as this import's own write, counted in `resumed`.)
    assert len(writes.stored) == len(set(writes.stored)) == result.written - done
    assert not set(writes.stored) & before
    assert result.written + result.resumed == 1500 and result.skipped == 0
    assert result.resumed <= 3 * 10 * 2
    assert scan_of(second_table) == {key(i): without_token(i) for i in items}
    assert not checkpoint.exists()


def test_a_checkpoint_of_another_file_is_refused(dynorm_table: str, tmp_path: Path) -> None:
    first, other = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    order_lines(first, 3)
    order_lines(other, 4)
    checkpoint = tmp_path / "cp"
    checkpoint.write_text(
        json.dumps({"source": {"size": 1, "head_sha256": "0"}, "state": {"next_line": 2}})
    )
    with pytest.raises(ConfigurationError, match="another input file"):
        import_items(other, checkpoint=checkpoint)
    assert scan_of() == {}


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("code", ["ThrottlingException", "ProvisionedThroughputExceededException"])
def test_import_rides_out_throttling_without_losing_or_doubling_an_item(
    dynorm_table: str, tmp_path: Path, faults: Faults, code: str
) -> None:
    path = tmp_path / "t.jsonl"
    items = order_lines(path, 40)
    refused = faults.fail("TransactWriteItems", code, times=7)  # > botocore's 3 attempts
    result = import_items(path, batch_size=10, workers=2)
    assert len(refused) > 7
    assert (result.written, result.resumed, result.skipped) == (40, 0, 0)
    assert scan_of() == {key(i): without_token(i) for i in items}


def test_a_batch_cancelled_for_throttling_is_sent_again_and_lowers_the_rate(
    dynorm_table: str, tmp_path: Path, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.jsonl"
    items = order_lines(path, 30)
    cancelled: list[int] = []

    def throttle(request: Any, **_: Any) -> Any:
        if len(cancelled) >= 3:
            return None
        actions = request_json(request)["TransactItems"]
        cancelled.append(len(actions))
        reasons = [{"Code": "ThrottlingError", "Message": "injected"}] * len(actions)
        return aws_error("TransactionCanceledException", "injected", CancellationReasons=reasons)

    lowered: list[float] = []
    throttled = _import._Rate.throttled

    def spy(rate: Any, observed: float) -> None:
        lowered.append(observed)
        throttled(rate, observed)

    monkeypatch.setattr(_import._Rate, "throttled", spy)
    faults.on("before-send.dynamodb.TransactWriteItems", throttle)
    result = import_items(path, batch_size=10, workers=1)
    assert cancelled == [10, 10, 10] and len(lowered) == 3
    assert (result.written, result.resumed, result.skipped) == (30, 0, 0)
    assert scan_of() == {key(i): without_token(i) for i in items}


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_lost_response_is_recognised_by_the_write_tokens(
    dynorm_table: str, tmp_path: Path, faults: Faults, overwrite: bool
) -> None:
    path = tmp_path / "lost.jsonl"
    items = order_lines(path, 10)
    applied = faults.lose_response("TransactWriteItems", times=1)
    result = import_items(path, batch_size=10, workers=1, overwrite=overwrite)
    assert applied == [200]
    # Sent again (botocore's retry carries the same ClientRequestToken): never twice.
    assert (result.written + result.resumed, result.skipped) == (10, 0)
    assert scan_of() == {key(i): without_token(i) for i in items}


def test_an_item_another_writer_creates_during_the_import_is_never_overwritten(
    dynorm_table: str, tmp_path: Path, faults: Faults
) -> None:
    path = tmp_path / "race.jsonl"
    items = order_lines(path, 120)
    other, table = raw_client(), table_name()
    theirs: dict[tuple[str, str], dict[str, Any]] = {}
    lock = threading.Lock()

    seen: set[tuple[str, str]] = set()

    def race(request: Any, **_: Any) -> None:
        # Between validating a batch and writing it (its first attempt), someone else
        # creates every third of its keys.
        puts = [action["Put"]["Item"] for action in request_json(request)["TransactItems"]]
        with lock:
            if key(puts[0]) in seen:
                return  # the batch sent again, minus the refused items
            seen.update(key(put) for put in puts)
        for put in puts[::3]:
            item = {**put, "note": {"S": "written by someone else"}}
            del item["_wtok"]
            other.put_item(
                TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
            with lock:
                theirs[key(item)] = item

    faults.on("before-send.dynamodb.TransactWriteItems", race)
    result = import_items(path, batch_size=10, workers=4)
    assert len(theirs) == 12 * 4  # 12 batches of 10: actions 0, 3, 6 and 9 of each
    assert (result.written, result.skipped, result.resumed) == (120 - 48, 48, 0)
    assert scan_of() == {**{key(i): without_token(i) for i in items}, **theirs}


# --------------------------------------------------------------------------- the commands


def test_export_and_import_commands(dynorm_table: str, second_table: Table, tmp_path: Path) -> None:
    Order.objects.create(customer_id="c1", total=Decimal(3))
    ExpPage.objects.create(slug="x")
    endpoint = _config.get_settings().endpoint_url
    assert endpoint is not None
    saved = _config.snapshot()
    runner = CliRunner()
    out = tmp_path / "orders.jsonl"
    try:
        conn = ["--endpoint-url", endpoint, "--models", "tests.models"]
        exported = runner.invoke(
            cli, ["export", *conn, "--table", dynorm_table, "--type", "Order", "-o", str(out)]
        )
        assert exported.exit_code == 0, exported.output
        assert "exported 1 items (Order: 1)" in exported.output
        with open(out, "a") as handle:
            handle.write("{broken\n")
        dry = runner.invoke(cli, ["import", *conn, "--table", second_table.name, str(out),
                                  "--dry-run"])  # fmt: skip
        assert dry.exit_code == 1 and "would write 1 items" in dry.output
        assert "line 2 (no model): not JSON" in dry.output
        imported = runner.invoke(cli, ["import", *conn, "--table", second_table.name, str(out)])
        assert imported.exit_code == 1
        assert (
            "wrote 1 items; 0 skipped" in imported.output and "1 invalid lines" in imported.output
        )
    finally:
        _config.restore(saved)
    assert len(scan_of(second_table)) == 1


def test_a_batch_refused_for_another_reason_raises_instead_of_retrying_forever(
    dynorm_table: str, tmp_path: Path, faults: Faults
) -> None:
    path = tmp_path / "v.jsonl"
    order_lines(path, 3)
    reasons = [{"Code": "ValidationError", "Message": "injected"}] + [{"Code": "None"}] * 2
    refused: list[int] = []

    def refuse(**_: Any) -> Any:
        refused.append(1)
        return aws_error("TransactionCanceledException", "injected", CancellationReasons=reasons)

    faults.on("before-send.dynamodb.TransactWriteItems", refuse)
    with pytest.raises(TransactionCanceledError):
        import_items(path, workers=1)
    assert len(refused) == 1  # sent once, not retried in a loop
    assert scan_of() == {}
