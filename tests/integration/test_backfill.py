"""`dynorm backfill --index NAME`: index keys written for items stored before the index (or
its template) existed, only those two attributes, never over a concurrent writer's update,
idempotent, resumable after a real SIGKILL."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dynorm
from dynorm import Index, Model, _config
from dynorm._registry import isolated_registry
from dynorm.exceptions import ConfigurationError, VersionConflictError
from dynorm.tooling import backfill_index
from tests.processes import assert_resumed_without_rewrites, clean_env
from tests.reliability.helpers import Faults, raw_client, raw_scan

ROOT = Path(__file__).resolve().parents[2]


def define(template: str | None, type_name: str = "BfItem") -> type[Model]:
    """The model as one release of the code defines it (each in a registry of its own)."""
    indexes = [] if template is None else [Index("by_color", pk=template, sk="{id}", slot=1)]
    meta = type("Meta", (), {"pk": "BF#{id}", "sk": "ITEM", "indexes": indexes,
                             "type_name": type_name})  # fmt: skip
    namespace = {
        "__annotations__": {"id": str, "color": str, "size": int},
        "__module__": __name__,
        "color": "red",
        "size": 0,
        "Meta": meta,
    }
    model: type[Model] = type("BfItem", (Model,), namespace)
    return model


@pytest.fixture
def faults() -> Iterator[Faults]:
    f = Faults()
    try:
        yield f
    finally:
        f.clear()
    f.check_fired()


def stored() -> dict[str, dict[str, Any]]:
    return {i["id"]["S"]: i for i in raw_scan() if i.get("_type", {}).get("S", "").startswith("Bf")}


def seed(count: int, type_name: str = "BfItem") -> type[Model]:
    with isolated_registry():
        old = define(None, type_name)
        for n in range(count):
            old.objects.create(id=f"i{n:04d}", color=("red", "blue")[n % 2], size=n)
    return old


def test_backfill_writes_the_index_keys_of_items_stored_before_the_index(
    dynorm_table: str,
) -> None:
    seed(30)
    before = stored()
    with isolated_registry():
        new = define("COLOR#{color}")
        dynorm.create_table([new])
        assert new.objects.using_gsi("by_color").filter(color="red").count() == 0
        result = backfill_index("by_color", [new], segments=3)
        assert (result.changed, result.skipped, result.retried) == (30, 0, 0)
        reds = list(new.objects.using_gsi("by_color").filter(color="red"))
        assert sorted(o.id for o in reds) == [f"i{n:04d}" for n in range(0, 30, 2)]
        again = backfill_index("by_color", [new])
        assert (again.changed, again.skipped) == (0, 30)
    after = stored()
    for key, item in after.items():
        # Only the two index attributes were written: version and write token unchanged.
        assert {k: v for k, v in item.items() if k not in ("gsi1pk", "gsi1sk")} == before[key]
        assert item["gsi1pk"] == {"S": f"COLOR#{item['color']['S']}"}


def test_a_changed_template_is_rewritten_and_items_already_right_are_skipped(
    dynorm_table: str,
) -> None:
    with isolated_registry():
        first = define("COLOR#{color}")
        dynorm.create_table([first])
        for n in range(6):
            first.objects.create(id=f"c{n}", color="red")
    with isolated_registry():
        second = define("HUE#{color}")
        second.objects.create(id="new", color="red")  # written by the new code: right already
        result = backfill_index("by_color", [second])
        assert (result.changed, result.skipped) == (6, 1)
        assert second.objects.using_gsi("by_color").filter(color="red").count() == 7
    assert {i["gsi1pk"]["S"] for i in stored().values()} == {"HUE#red"}


def test_an_unknown_index_is_a_configuration_error_naming_the_indexes(dynorm_table: str) -> None:
    with isolated_registry():
        new = define("COLOR#{color}")
        with pytest.raises(ConfigurationError, match="by_colour.*by_color"):
            backfill_index("by_colour", [new])


def test_a_concurrent_write_between_read_and_update_is_never_lost(
    dynorm_table: str, faults: Faults
) -> None:
    old = seed(3)
    with isolated_registry():
        new = define("COLOR#{color}")
        dynorm.create_table([new])
        done: list[int] = []

        def writer(**_: Any) -> None:
            if not done:  # the old code saves the first item the backfill is about to update
                done.append(1)
                obj = old.objects.get(id="i0000")
                obj.size, obj.color = 99, "green"
                obj.save()

        faults.on("before-send.dynamodb.UpdateItem", writer)
        result = backfill_index("by_color", [new], segments=1)
    assert done and result.retried == 1 and result.changed == 3
    item = stored()["i0000"]
    assert (item["size"], item["color"]) == ({"N": "99"}, {"S": "green"})  # the write stands
    assert item["gsi1pk"] == {"S": "COLOR#green"}  # and the index keys fit it


def test_concurrent_writer_threads_during_a_backfill_lose_no_update(dynorm_table: str) -> None:
    old = seed(60)
    with isolated_registry():
        new = define("COLOR#{color}")
        dynorm.create_table([new])
        last: dict[str, tuple[int, str, bool]] = {}
        versions: dict[str, int] = {}  # the version of the write `last` holds
        recording = threading.Lock()
        stop = threading.Event()

        def write() -> None:
            rng = random.Random(7)
            while not stop.is_set():
                key = f"i{rng.randrange(60):04d}"
                model = rng.choice([old, new])  # old code and new code, side by side
                obj = model.objects.get(id=key)
                obj.size, obj.color = rng.randrange(10**6), rng.choice(["red", "blue", "teal"])
                try:
                    obj.save()
                except VersionConflictError:
                    continue
                with recording:  # the other thread may record an earlier write of key later
                    if obj.version > versions.get(key, 0):
                        versions[key] = obj.version
                        last[key] = (obj.size, obj.color, model is new)

        threads = [threading.Thread(target=write) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            result = backfill_index("by_color", [new], segments=4, page_size=10)
        finally:
            stop.set()
            for t in threads:
                t.join()
        items = stored()
        for key, (size, color, _) in last.items():  # every write stands
            assert (items[key]["size"], items[key]["color"]) == ({"N": str(size)}, {"S": color})
        # Index keys fit the values, except where the old code (no index) wrote last.
        for key, item in items.items():
            if key not in last or last[key][2]:
                assert item["gsi1pk"] == {"S": f"COLOR#{item['color']['S']}"}, key
        final = backfill_index("by_color", [new])  # what the old code saved after its turn
    assert all(i["gsi1pk"] == {"S": f"COLOR#{i['color']['S']}"} for i in stored().values())
    assert result.changed + result.skipped >= 60 and final.retried == 0
    assert any(not new_code for *_, new_code in last.values())


def test_a_killed_backfill_resumes_from_its_checkpoint_and_writes_nothing_twice(
    dynorm_table: str, tmp_path: Path, faults: Faults
) -> None:
    seed(400, type_name="BfKill")
    module = tmp_path / "bfmodels.py"
    module.write_text(
        textwrap.dedent("""
        from dynorm import Index, Model

        class BfItem(Model):
            id: str
            color: str = "red"
            size: int = 0

            class Meta:
                type_name = "BfKill"
                pk = "BF#{id}"
                sk = "ITEM"
                indexes = [Index("by_color", pk="COLOR#{color}", sk="{id}", slot=1)]
    """)
    )
    with isolated_registry():
        new = define("COLOR#{color}", "BfKill")
        dynorm.create_table([new])
    checkpoint = tmp_path / "bf.checkpoint"
    endpoint = _config.get_settings().endpoint_url
    assert endpoint is not None
    command = [
        sys.executable, "-m", "dynorm", "backfill", "--models", "bfmodels",
        "--table", dynorm_table, "--endpoint-url", endpoint, "--index", "by_color",
        "--checkpoint", str(checkpoint), "--max-rate", "80", "--segments", "2",
        "--no-progress",
    ]  # fmt: skip
    env = clean_env(PYTHONPATH=f"{ROOT}:{tmp_path}")
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as err:
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=err)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the backfill made no progress"
        saved = json.loads(checkpoint.read_text()) if checkpoint.exists() else None
        recorded = saved["counts"]["changed"] if saved else 0
        # Killed mid-page: the table holds writes the checkpoint does not record yet, which
        # the resumed run must find right and skip (its pages end together, 100 items each).
        if recorded >= 100 and sum("gsi1pk" in i for i in stored().values()) > recorded + 4:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    wrong = [i for i in stored().values() if "gsi1pk" not in i]
    assert 0 < len(wrong) < 400
    sent = faults.count("UpdateItem")
    considered: list[int] = []
    with isolated_registry():
        new = define("COLOR#{color}", "BfKill")
        result = backfill_index("by_color", [new], segments=2, checkpoint=checkpoint,
                                progress=considered.append)  # fmt: skip
    assert_resumed_without_rewrites(
        [(r["Key"]["pk"]["S"], r["Key"]["sk"]["S"]) for r in sent],
        {(i["pk"]["S"], i["sk"]["S"]) for i in wrong},
        segments=2,
    )
    assert sum(considered) < 400  # pages the checkpoint recorded were not read again
    assert result.changed + result.skipped == 400 and result.retried == 0
    assert all(i["gsi1pk"] == {"S": f"COLOR#{i['color']['S']}"} for i in stored().values())
    assert not checkpoint.exists()


def test_an_item_written_by_another_tool_without_a_version_is_backfilled(
    dynorm_table: str,
) -> None:
    item = {"pk": {"S": "BF#raw"}, "sk": {"S": "ITEM"}, "_type": {"S": "BfItem"},
            "id": {"S": "raw"}, "color": {"S": "blue"}}  # fmt: skip
    raw_client().put_item(TableName=dynorm_table, Item=item)
    with isolated_registry():
        new = define("COLOR#{color}")
        dynorm.create_table([new])
        result = backfill_index("by_color", [new])
    assert (result.changed, result.invalid) == (1, {})
    assert stored()["raw"]["gsi1pk"] == {"S": "COLOR#blue"}
