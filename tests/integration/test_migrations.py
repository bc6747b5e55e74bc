"""Schema migrations on DynamoDB Local: items written by older code upgraded on every read,
newer items refused on every read, partial writes kept off older items, and `dynorm migrate`
(conditional, idempotent, resumable after a real SIGKILL, never over a concurrent writer)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from dynorm import Model, SchemaVersionError, VersionedModel, _config
from dynorm._cli import cli
from dynorm._registry import isolated_registry
from dynorm.exceptions import ConfigurationError, VersionConflictError
from dynorm.tooling import migrate
from tests.processes import assert_resumed_without_rewrites, clean_env
from tests.reliability.helpers import Faults, raw_client, raw_scan

ROOT = Path(__file__).resolve().parents[2]


def define(version: int, type_name: str = "Person", base: type[Model] = Model) -> type[Model]:
    """The model as release `version` of the code defines it (each in its own registry).

    1: `name` ("Ada Lovelace"), no schema version. 2: `first` and `last`. 3: and `initials`.
    """
    fields: dict[str, Any] = {1: {"name": str}, 2: {"first": str, "last": str}}.get(
        version, {"first": str, "last": str, "initials": str}
    )
    meta: dict[str, Any] = {"pk": "P#{id}", "sk": "PERSON", "type_name": type_name}
    if version > 1:
        meta["schema_version"] = version
    namespace = {
        "__annotations__": {"id": str, **fields, "age": int},
        "__module__": __name__,
        "age": 0,
        "Meta": type("Meta", (), meta),
    }
    model: type[Model] = type("Person", (base,), namespace)
    if version > 1:

        @model.migration(from_version=1)
        def split(data: dict[str, Any]) -> dict[str, Any]:
            data["first"], _, data["last"] = data.pop("name").partition(" ")
            return data

    if version > 2:

        @model.migration(from_version=2)
        def initials(data: dict[str, Any]) -> dict[str, Any]:
            data["initials"] = data["first"][:1] + data["last"][:1]
            return data

    return model


def seed(version: int, count: int, type_name: str = "Person", start: int = 0) -> None:
    with isolated_registry():
        model = define(version, type_name)
        objs = []
        for n in range(start, start + count):
            if version == 1:
                objs.append(model(id=f"p{n:04d}", name=f"Ada{n} Lovelace", age=n))
            else:
                objs.append(model(id=f"p{n:04d}", first=f"Ada{n}", last="Lovelace", age=n,
                                  **({"initials": "AL"} if version > 2 else {})))  # fmt: skip
        model.objects.bulk_create(objs)


def stored() -> dict[str, dict[str, Any]]:
    return {i["id"]["S"]: i for i in raw_scan() if "id" in i and i["sk"]["S"] == "PERSON"}


@pytest.fixture
def faults() -> Iterator[Faults]:
    f = Faults()
    try:
        yield f
    finally:
        f.clear()
    f.check_fired()


# --------------------------------------------------------------------------- reads

READS: dict[str, Callable[[type[Model]], list[Model]]] = {
    "get": lambda m: [m.objects.get(id="p0000")],
    "get consistent": lambda m: [m.objects.consistent().get(id="p0000")],
    "filter": lambda m: list(m.objects.filter(id="p0000")),
    "scan": lambda m: list(m.objects.scan()),
    "first": lambda m: [m.objects.filter(id="p0000").first()],
    "page": lambda m: list(m.objects.scan().page(10).items),
    "bulk_get": lambda m: [o for o in m.objects.bulk_get([{"id": "p0000"}]) if o],
    "only": lambda m: list(m.objects.scan().only("first", "last")),
}


def test_items_of_every_older_version_are_upgraded_on_every_read_path(
    dynorm_table: str,
) -> None:
    seed(1, 1)  # p0000: unstamped, version 1
    seed(2, 1, start=1)  # p0001: version 2
    seed(3, 1, start=2)  # p0002: current
    with isolated_registry():
        model = define(3)
        for name, read in READS.items():
            objs = read(model)
            assert objs, name
            for obj in objs:
                assert obj.first.startswith("Ada"), name  # type: ignore[attr-defined]
                assert obj.last == "Lovelace", name  # type: ignore[attr-defined]
                if name != "only":
                    assert obj.initials == "AL", name  # type: ignore[attr-defined]
        values = sorted(model.objects.scan().values_list("id", "initials", "last"))
        assert values == [(f"p000{n}", "AL", "Lovelace") for n in range(3)]
        obj = model.objects.get(id="p0000")
        obj.refresh_from_db()
        assert (obj.first, obj.last, obj.initials) == ("Ada0", "Lovelace", "AL")  # type: ignore[attr-defined]
    # Reading wrote nothing: the stored items keep their shapes.
    items = stored()
    assert "name" in items["p0000"] and "_sv" not in items["p0000"]
    assert items["p0001"]["_sv"] == {"N": "2"} and items["p0002"]["_sv"] == {"N": "3"}


def test_an_item_newer_than_the_code_raises_on_every_read_path(dynorm_table: str) -> None:
    seed(3, 1)
    with isolated_registry():
        old = define(2)
        for name, read in READS.items():
            with pytest.raises(SchemaVersionError, match="Person.*version 3.*up to schema vers"):
                read(old)
            assert name
        with pytest.raises(SchemaVersionError):
            list(old.objects.scan().values_list("first"))
        with pytest.raises(SchemaVersionError):
            old.objects.scan().update(age=5)
    with isolated_registry():
        v1 = define(1)  # a release without a schema version refuses stamped items too
        with pytest.raises(SchemaVersionError, match="declares no Meta.schema_version"):
            v1.objects.get(id="p0000")
    assert stored()["p0000"]["_sv"] == {"N": "3"}  # untouched


def test_refresh_from_db_of_an_item_upgraded_by_newer_code_meanwhile_raises(
    dynorm_table: str,
) -> None:
    seed(2, 1)
    with isolated_registry():
        obj = define(2).objects.get(id="p0000")
        with isolated_registry():
            newer = define(3).objects.get(id="p0000")
            newer.save()  # the next release saves it whole: stamped 3
        with pytest.raises(SchemaVersionError, match="version 3"):
            obj.refresh_from_db()
        with pytest.raises(VersionConflictError):
            obj.save()  # and a whole save of what this code read is refused, as ever


def test_history_of_a_versioned_model_is_upgraded_and_newer_history_refused(
    dynorm_table: str,
) -> None:
    with isolated_registry():
        v1 = define(1, "VPerson", VersionedModel)
        obj = v1.objects.create(id="p0000", name="Ada Lovelace")
        obj.age = 36
        obj.save()
    with isolated_registry():
        v3 = define(3, "VPerson", VersionedModel)
        obj = v3.objects.get(id="p0000")
        versions = list(obj.history())  # type: ignore[attr-defined]
        assert [(v.version, v.initials, v.age) for v in versions] == [(2, "AL", 36), (1, "AL", 0)]
        obj.age = 37
        obj.save()  # a whole save writes the current version (and its history item)
    with isolated_registry():
        v2 = define(2, "VPerson", VersionedModel)
        with pytest.raises(SchemaVersionError):
            v2.objects.get(id="p0000")


def test_a_partial_write_of_an_older_item_is_refused_and_a_whole_save_upgrades_it(
    dynorm_table: str,
) -> None:
    seed(1, 1)
    with isolated_registry():
        model = define(3)
        obj = model.objects.get(id="p0000")
        before = stored()["p0000"]
        for write in (lambda: obj.update(age=1), lambda: obj.save(update_fields=["age"])):
            with pytest.raises(SchemaVersionError, match="Person.*version 1.*save\\(\\) the whole"):
                write()
        assert stored()["p0000"] == before  # nothing half-written
        obj.save()
        item = stored()["p0000"]
        assert item["_sv"] == {"N": "3"} and "name" not in item
        assert (item["first"], item["initials"]) == ({"S": "Ada0"}, {"S": "AL"})
        obj.update(age=2)  # current now: partial writes work
        assert model.objects.filter(id="p0000").update(age=3) == 1
        assert stored()["p0000"]["age"] == {"N": "3"}
    with isolated_registry():
        with pytest.raises(SchemaVersionError):  # the release before: no whole save over it
            define(1).objects.get(id="p0000")


def test_saving_an_upgraded_object_is_conditional_on_the_version_it_was_read_at(
    dynorm_table: str,
) -> None:
    seed(1, 1)
    with isolated_registry():
        model = define(3)
        a = model.objects.get(id="p0000")
        b = model.objects.get(id="p0000")
        a.save()
        with pytest.raises(VersionConflictError):
            b.save()


# --------------------------------------------------------------------------- migrate


def test_migrate_rewrites_every_older_item_once_and_counts_what_it_did(dynorm_table: str) -> None:
    seed(1, 12)
    seed(2, 5, start=12)
    seed(3, 4, start=17)
    raw_client().put_item(TableName=dynorm_table, Item={
        "pk": {"S": "P#bad"}, "sk": {"S": "PERSON"}, "_type": {"S": "Person"},
        "id": {"S": "bad"}, "age": {"N": "1"}})  # fmt: skip  - no name: its upgrade fails
    with isolated_registry():
        define(3, "Other")  # another type with a schema version, no items: untouched
    before = stored()
    with isolated_registry():
        model = define(3)
        dry = migrate([model], dry_run=True, segments=2)
        assert (dry.upgraded, dry.current, dry.invalid) == (17, 4, {"Person": 1})
        assert stored() == before  # a dry run writes nothing
        result = migrate([model], segments=3, page_size=5)
        assert (result.upgraded, result.current, result.retried) == (17, 4, 0)
        assert result.invalid == {"Person": 1}
        again = migrate([model])
        assert (again.upgraded, again.current) == (0, 21)
    for key, item in stored().items():
        if key == "bad":
            assert item == before["bad"]  # refused: left as it was
            continue
        assert item["_sv"] == {"N": "3"} and "name" not in item and item["initials"] == {"S": "AL"}
        old_version = int(before[key]["version"]["N"])
        want = old_version if before[key].get("_sv") == {"N": "3"} else old_version + 1
        assert int(item["version"]["N"]) == want
        assert item["age"] == before[key]["age"]


def test_migrate_needs_a_model_with_a_schema_version(dynorm_table: str) -> None:
    with isolated_registry():
        model = define(1)
        with pytest.raises(ConfigurationError, match="Meta.schema_version.*Person"):
            migrate([model])


def test_a_concurrent_write_between_read_and_rewrite_is_never_lost(
    dynorm_table: str, faults: Faults
) -> None:
    seed(1, 3)
    with isolated_registry():
        model = define(3)
        done: list[int] = []

        def writer(**_: Any) -> None:
            if not done:  # old code saves the first item migrate is about to rewrite
                done.append(1)
                with isolated_registry():
                    old = define(1)
                    obj = old.objects.get(id="p0000")
                    obj.name, obj.age = "Grace Hopper", 85  # type: ignore[attr-defined]
                    obj.save()

        faults.on("before-send.dynamodb.PutItem", writer)
        result = migrate([model], segments=1)
    assert done and result.retried == 1 and result.upgraded == 3
    item = stored()["p0000"]
    assert (item["first"], item["last"], item["age"]) == ({"S": "Grace"}, {"S": "Hopper"},
                                                           {"N": "85"})  # fmt: skip
    assert item["initials"] == {"S": "GH"} and item["_sv"] == {"N": "3"}


def test_concurrent_writer_threads_during_migrate_lose_no_update(dynorm_table: str) -> None:
    seed(1, 40)
    with isolated_registry():
        old = define(1)
    with isolated_registry():
        new = define(3)
    last: dict[str, int] = {}
    versions: dict[str, int] = {}
    recording = threading.Lock()
    stop = threading.Event()

    def write(seed_: int) -> None:
        rng = random.Random(seed_)
        while not stop.is_set():
            key = f"p{rng.randrange(40):04d}"
            model = rng.choice([old, new])  # old code and new code, side by side
            try:
                obj = model.objects.get(id=key)
                obj.age = rng.randrange(10**6)
                obj.save()
            except (VersionConflictError, SchemaVersionError):
                continue  # lost the race (or old code met an item only new code reads)
            with recording:  # the other thread may record an earlier write of key later
                if obj.version > versions.get(key, 0):
                    versions[key] = obj.version
                    last[key] = obj.age

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    try:
        result = migrate([new], segments=4, page_size=5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    items = stored()
    assert last and all(items[k]["age"] == {"N": str(age)} for k, age in last.items())
    final = migrate([new])  # what the old code saved after migrate's turn
    assert final.upgraded + final.current == 40 and final.retried == 0
    assert all(i["_sv"] == {"N": "3"} for i in stored().values())
    assert all(stored()[k]["age"] == {"N": str(age)} for k, age in last.items())
    assert result.upgraded + result.current + result.skipped >= 40


def test_a_killed_migrate_resumes_from_its_checkpoint_and_writes_nothing_twice(
    dynorm_table: str, tmp_path: Path, faults: Faults
) -> None:
    seed(1, 200, type_name="PKill")
    module = tmp_path / "migmodels.py"
    module.write_text(
        textwrap.dedent("""
        from dynorm import Model

        class Person(Model):
            id: str
            first: str
            last: str
            age: int = 0

            class Meta:
                type_name = "PKill"
                pk = "P#{id}"
                sk = "PERSON"
                schema_version = 2

        @Person.migration(from_version=1)
        def split(data):
            data["first"], _, data["last"] = data.pop("name").partition(" ")
            return data
    """)
    )
    checkpoint = tmp_path / "mig.checkpoint"
    endpoint = _config.get_settings().endpoint_url
    assert endpoint is not None
    command = [
        sys.executable, "-m", "dynorm", "migrate", "--models", "migmodels",
        "--table", dynorm_table, "--endpoint-url", endpoint,
        "--checkpoint", str(checkpoint), "--rate", "80", "--segments", "2", "--no-progress",
    ]  # fmt: skip
    env = clean_env(PYTHONPATH=f"{ROOT}:{tmp_path}")
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as err:
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=err)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the migration made no progress"
        if checkpoint.exists() and json.loads(checkpoint.read_text())["counts"]["upgraded"] >= 40:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    old = [i for i in stored().values() if "_sv" not in i]
    assert 0 < len(old) < 200
    sent = faults.count("PutItem")
    considered: list[int] = []
    with isolated_registry():
        model = define(2, "PKill")
        result = migrate([model], segments=2, checkpoint=checkpoint, progress=considered.append)
    assert_resumed_without_rewrites(
        [(r["Item"]["pk"]["S"], r["Item"]["sk"]["S"]) for r in sent],
        {(i["pk"]["S"], i["sk"]["S"]) for i in old},
        segments=2,
    )
    assert sum(considered) < 200  # pages the checkpoint recorded were not read again
    assert result.upgraded + result.current == 200 and result.retried == 0
    assert all(i["_sv"] == {"N": "2"} and "name" not in i for i in stored().values())
    assert not checkpoint.exists()


def test_the_migrate_command_reports_its_counts_and_dry_run_writes_nothing(
    dynorm_table: str, tmp_path: Path
) -> None:
    seed(1, 3)
    seed(2, 2, start=3)
    endpoint = _config.get_settings().endpoint_url
    assert endpoint is not None
    args = ["migrate", "--models", __name__, "--table", dynorm_table, "--endpoint-url", endpoint,
            "--no-progress"]  # fmt: skip
    saved = _config.snapshot()
    try:
        with isolated_registry():
            define(2)
            before = stored()
            dry = CliRunner().invoke(cli, [*args, "--dry-run"], catch_exceptions=False)
            assert dry.exit_code == 0, dry.output
            assert "3 items would be upgraded (dry run), 2 already current" in dry.output
            assert stored() == before
            run = CliRunner().invoke(cli, [*args, "--type", "Person"], catch_exceptions=False)
            assert run.exit_code == 0, run.output
            assert "3 items upgraded, 2 already current, 0 skipped" in run.output
    finally:
        _config.restore(saved)
    assert all(i["_sv"] == {"N": "2"} for i in stored().values())


# --------------------------------------------------------------------------- properties


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from([1, 2, 3]), st.text("ab xyz", min_size=1, max_size=8)),
        min_size=1,
        max_size=6,
    )
)
def test_reads_and_migrate_agree_on_every_mix_of_versions(
    dynorm_table: str, rows: list[tuple[int, str]]
) -> None:
    for item in stored().values():
        raw_client().delete_item(TableName=dynorm_table, Key={"pk": item["pk"], "sk": item["sk"]})
    for n, (version, name) in enumerate(rows):
        with isolated_registry():
            model = define(version)
            first, _, last = name.partition(" ")
            fields = {"name": name} if version == 1 else {"first": first, "last": last}
            if version == 3:
                fields["initials"] = first[:1] + last[:1]
            model.objects.create(id=f"p{n:04d}", age=n, **fields)
    with isolated_registry():
        model = define(3)
        read = sorted(model.objects.scan(), key=lambda o: o.id)  # type: ignore[attr-defined]
        raw = sorted((model.from_item(i) for i in stored().values()), key=lambda o: o.id)  # type: ignore[attr-defined]
        assert read == raw  # the fast decoder (current pages) and the general one agree
        for obj, (_, name) in zip(read, rows):
            first, _, last = name.partition(" ")
            assert (obj.first, obj.last, obj.initials) == (first, last, first[:1] + last[:1])  # type: ignore[attr-defined]
        migrate([model], segments=1)
        after = sorted(model.objects.scan(), key=lambda o: o.id)  # type: ignore[attr-defined]
    assert [o.model_dump(exclude={"version"}) for o in after] == [
        o.model_dump(exclude={"version"}) for o in read
    ]
