"""Blob fields (`fields.Blob()`) on DynamoDB Local and an S3 server over HTTP.

The S3 server is the test rig's (moto's server mode, or `$DYNORM_TEST_S3_ENDPOINT`); each
test gets its own table and bucket (`blob_bucket`). Each guarantee of docs/concepts/blobs.md
has a test named after it.
"""

from __future__ import annotations

import gzip
import json
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from hypothesis import HealthCheck, given, settings, strategies as st
from pydantic import BaseModel

import dynorm
from dynorm import (
    BlobIntegrityError,
    BlobNotLoadedError,
    BlobTooLargeError,
    InvalidValueError,
    Model,
    QueryError,
    VersionConflictError,
    VersionedModel,
    _blob_store,
    blobs,
    fields,
)
from dynorm._blobs import item_prefix
from tests.reliability.helpers import Faults, raw_client, raw_get, table_name


class Chart(BaseModel):
    points: list[int]
    label: str


class BlobDoc(Model):
    id: str = fields.ULID()
    title: str = ""
    body: bytes = fields.Blob()
    note: str | None = fields.Blob(default=None, compress=True)
    chart: Chart | None = fields.Blob(default=None, content_type="application/vnd.chart+json")

    class Meta:
        pk = "BLOBDOC#{id}"


class StrictDoc(Model):
    id: str
    body: bytes = fields.Blob(lazy=False, max_size=64)

    class Meta:
        pk = "STRICTDOC#{id}"


class MovingDoc(Model):
    owner: str
    id: str
    body: bytes = fields.Blob()

    class Meta:
        pk = "MOVING#{owner}"
        sk = "DOC#{id}"


class VersionedDoc(VersionedModel):
    id: str
    body: bytes = fields.Blob()

    class Meta:
        pk = "VDOC#{id}"
        max_versions = 2


def objects(bucket: str) -> dict[str, bytes]:
    client = _blob_store.s3_client()
    return {
        key: client.get_object(Bucket=bucket, Key=key)["Body"].read()
        for key, _ in _blob_store.list_objects(bucket, "")
    }


def pointer_keys(item: dict[str, Any] | None) -> set[str]:
    assert item is not None
    return {v["M"]["key"]["S"] for v in item.values() if "M" in v and "sha256" in v["M"]}


@pytest.fixture
def s3_calls() -> Iterator[list[tuple[str, str]]]:
    """Every S3 call dynorm's client makes: (operation, thread name)."""
    seen: list[tuple[str, str]] = []
    client = _blob_store.s3_client()

    def record(model: Any, **_: Any) -> None:
        seen.append((model.name, threading.current_thread().name))

    unique = f"blob-test-{uuid.uuid4().hex}"
    client.meta.events.register("before-call.s3", record, unique_id=unique)
    yield seen
    client.meta.events.unregister("before-call.s3", unique_id=unique)


@pytest.fixture
def a_minute_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """gc runs a minute after the uploads: `older_than=0` then means every orphan, even where
    S3's LastModified (whole seconds) and a wall clock that steps back disagree by a second."""
    real = blobs._now
    monkeypatch.setattr(blobs, "_now", lambda: real() + timedelta(minutes=1))


@pytest.fixture
def faults() -> Iterator[Faults]:
    f = Faults()
    yield f
    f.clear()
    f.check_fired()


# --------------------------------------------------------------------------- storage


def test_item_holds_a_pointer_and_the_value_lives_in_s3(blob_bucket: str) -> None:
    doc = BlobDoc(body=b"%PDF-1.7 secret", title="q3")
    doc.save()
    item = raw_get(f"BLOBDOC#{doc.id}", "BlobDoc")
    assert item is not None
    pointer = item["body"]["M"]
    assert pointer["bucket"] == {"S": blob_bucket}
    assert pointer["size"] == {"N": str(len(b"%PDF-1.7 secret"))}
    assert pointer["content_type"] == {"S": "application/octet-stream"}
    assert b"secret" not in repr(item).encode()
    key = pointer["key"]["S"]
    assert key.startswith(item_prefix(table_name(), f"BLOBDOC#{doc.id}", "BlobDoc") + "body/")
    assert objects(blob_bucket) == {key: b"%PDF-1.7 secret"}
    assert "note" not in item and "chart" not in item  # None: no object, no attribute


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.binary(max_size=300),
    note=st.none() | st.text(max_size=200),
    points=st.lists(st.integers(-(2**40), 2**40), max_size=20),
)
def test_blob_values_round_trip_bytes_str_and_json(
    blob_bucket: str, body: bytes, note: str | None, points: list[int]
) -> None:
    doc = BlobDoc(body=body, note=note, chart=Chart(points=points, label="é"))
    doc.save()
    lazy = BlobDoc.objects.get(id=doc.id)
    assert (lazy.body, lazy.note, lazy.chart) == (body, note, Chart(points=points, label="é"))
    eager = BlobDoc.objects.with_blobs().get(id=doc.id)
    assert eager.model_dump() == doc.model_dump()


def test_compressed_blob_is_stored_gzipped_with_its_content_type(blob_bucket: str) -> None:
    text = "lorem ipsum " * 500
    doc = BlobDoc(body=b"x", note=text, chart=Chart(points=[1], label="a"))
    doc.save()
    item = raw_get(f"BLOBDOC#{doc.id}", "BlobDoc")
    assert item is not None
    note, chart = item["note"]["M"], item["chart"]["M"]
    assert note["gzip"] == {"BOOL": True}
    assert int(note["size"]["N"]) < len(text) / 10
    stored = _blob_store.s3_client().head_object(Bucket=blob_bucket, Key=note["key"]["S"])
    assert stored["ContentEncoding"] == "gzip"
    assert stored["ContentType"] == "text/plain; charset=utf-8"
    assert chart["content_type"] == {"S": "application/vnd.chart+json"}
    assert BlobDoc.objects.get(id=doc.id).note == text


def test_presigned_url_serves_the_stored_object(blob_bucket: str) -> None:
    doc = BlobDoc(body=b"%PDF", note="hello " * 50)
    doc.save()
    loaded = BlobDoc.objects.get(id=doc.id)
    with urllib.request.urlopen(loaded.blob_url("body", expires=300)) as response:
        assert response.read() == b"%PDF"
        assert response.headers["Content-Type"] == "application/octet-stream"
    with urllib.request.urlopen(loaded.blob_url("note", expires=300)) as response:
        assert gzip.decompress(response.read()) == ("hello " * 50).encode()
    assert "X-Amz-Expires=300" in loaded.blob_url("body", expires=300)
    with pytest.raises(BlobNotLoadedError):
        BlobDoc(body=b"new").blob_url("body")
    with pytest.raises(QueryError):
        loaded.blob_url("title")


def test_size_limit_is_refused_before_anything_is_sent(blob_bucket: str) -> None:
    doc = StrictDoc(id="big", body=b"x" * 65)
    with pytest.raises(BlobTooLargeError) as caught:
        doc.save()
    assert (caught.value.model, caught.value.field) == ("StrictDoc", "body")
    assert (caught.value.size, caught.value.limit) == (65, 64)
    assert "xxxx" not in str(caught.value)
    assert isinstance(caught.value, InvalidValueError)
    assert raw_get("STRICTDOC#big", "StrictDoc") is None
    assert objects(blob_bucket) == {}


# --------------------------------------------------------------------------- loading


def test_blobs_load_lazily_on_first_access(
    blob_bucket: str, s3_calls: list[tuple[str, str]]
) -> None:
    doc = BlobDoc(body=b"lazy")
    doc.save()
    s3_calls.clear()
    loaded = BlobDoc.objects.get(id=doc.id)
    assert loaded.title == ""
    assert s3_calls == []
    assert loaded.body == b"lazy"
    assert loaded.body == b"lazy"
    assert [op for op, _ in s3_calls] == ["GetObject"]  # once, then cached


def test_unloaded_blob_outside_a_session_that_can_load_it_raises_never_empty(
    blob_bucket: str,
) -> None:
    doc = BlobDoc(body=b"data")
    doc.save()
    loaded = BlobDoc.objects.get(id=doc.id)
    dynorm.configure(blob_bucket=None)  # e.g. another process without the blob settings
    with pytest.raises(BlobNotLoadedError) as caught:
        _ = loaded.body
    assert (caught.value.model, caught.value.field) == ("BlobDoc", "body")
    with pytest.raises(BlobNotLoadedError):
        loaded.model_dump()
    dynorm.configure(blob_bucket=blob_bucket)
    assert loaded.body == b"data"

    StrictDoc(id="s", body=b"strict").save()
    strict = StrictDoc.objects.get(id="s")
    with pytest.raises(BlobNotLoadedError, match="lazy=False"):
        _ = strict.body
    assert StrictDoc.objects.with_blobs().get(id="s").body == b"strict"
    strict.load_blobs()
    assert strict.body == b"strict"


def test_with_blobs_loads_every_result_concurrently(
    blob_bucket: str, s3_calls: list[tuple[str, str]]
) -> None:
    docs = [BlobDoc(id=f"d{i:02d}", body=f"body {i}".encode()) for i in range(24)]
    for doc in docs:
        doc.save()
    s3_calls.clear()
    found = list(BlobDoc.objects.scan().with_blobs())
    gets = [thread for op, thread in s3_calls if op == "GetObject"]
    assert len(gets) == 24
    assert len(set(gets)) > 1  # a thread pool, not one after the other
    assert threading.current_thread().name not in gets
    s3_calls.clear()
    assert sorted(d.body for d in found) == sorted(d.body for d in docs)
    assert s3_calls == []  # loaded already


def test_corrupted_object_is_a_typed_error(blob_bucket: str) -> None:
    doc = BlobDoc(body=b"original")
    doc.save()
    key = next(iter(pointer_keys(raw_get(f"BLOBDOC#{doc.id}", "BlobDoc"))))
    _blob_store.s3_client().put_object(Bucket=blob_bucket, Key=key, Body=b"tampered")
    with pytest.raises(BlobIntegrityError, match="SHA-256") as caught:
        _ = BlobDoc.objects.get(id=doc.id).body
    assert "tampered" not in str(caught.value) and "original" not in str(caught.value)
    _blob_store.s3_client().delete_object(Bucket=blob_bucket, Key=key)
    with pytest.raises(BlobIntegrityError, match="missing"):
        _ = BlobDoc.objects.get(id=doc.id).body


def test_blob_fields_refuse_filters_updates_and_bulk_writes(blob_bucket: str) -> None:
    doc = BlobDoc(body=b"x")
    doc.save()
    with pytest.raises(QueryError, match="blob field"):
        BlobDoc.objects.filter(body=b"x")
    with pytest.raises(QueryError, match="save"):
        doc.update(body=b"y")
    (created,) = BlobDoc.objects.bulk_create([BlobDoc(body=b"z")])  # each one a save
    assert BlobDoc.objects.get(id=created.id).body == b"z"


# --------------------------------------------------------------------------- write order


def test_save_unchanged_blob_uploads_nothing_and_keeps_the_object(
    blob_bucket: str, s3_calls: list[tuple[str, str]]
) -> None:
    doc = BlobDoc(body=b"keep")
    doc.save()
    before = objects(blob_bucket)
    loaded = BlobDoc.objects.get(id=doc.id)
    s3_calls.clear()
    loaded.title = "renamed"
    loaded.save()
    assert s3_calls == []
    assert objects(blob_bucket) == before
    assert BlobDoc.objects.get(id=doc.id).body == b"keep"


def test_replaced_blob_object_is_deleted_after_the_write(blob_bucket: str) -> None:
    doc = BlobDoc(body=b"v1")
    doc.save()
    doc.body = b"v2"
    doc.save()
    stored = pointer_keys(raw_get(f"BLOBDOC#{doc.id}", "BlobDoc"))
    assert set(objects(blob_bucket)) == stored
    assert list(objects(blob_bucket).values()) == [b"v2"]


def test_refused_write_deletes_what_it_uploaded(blob_bucket: str) -> None:
    doc = BlobDoc(body=b"first")
    doc.save()
    stale = BlobDoc.objects.get(id=doc.id)
    doc.body = b"second"
    doc.save()
    stale.body = b"stale change"
    with pytest.raises(VersionConflictError):
        stale.save()
    stored = pointer_keys(raw_get(f"BLOBDOC#{doc.id}", "BlobDoc"))
    assert set(objects(blob_bucket)) == stored
    assert BlobDoc.objects.get(id=doc.id).body == b"second"
    # a create refused because the key exists
    with pytest.raises(dynorm.ItemExistsError):
        BlobDoc(id=doc.id, body=b"intruder").save()
    assert set(objects(blob_bucket)) == stored


def test_concurrent_saves_never_leave_a_dangling_pointer(blob_bucket: str) -> None:
    doc = BlobDoc(id="hot", body=b"start")
    doc.save()
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        mine = BlobDoc.objects.get(id="hot")
        mine.body = f"writer {n}".encode()
        barrier.wait()
        try:
            mine.save()
        except VersionConflictError:
            pass
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = BlobDoc.objects.get(id="hot")
    assert final.body.startswith(b"writer ")
    assert set(objects(blob_bucket)) == pointer_keys(raw_get("BLOBDOC#hot", "BlobDoc"))


@pytest.mark.usefixtures("a_minute_later")
def test_crash_between_upload_and_write_leaves_only_an_orphan(
    blob_bucket: str, faults: Faults
) -> None:
    def crash(**_: Any) -> None:
        raise KeyboardInterrupt("crash after the upload")

    faults.on("before-send.dynamodb.PutItem", crash)
    doc = BlobDoc(id="crash", body=b"orphaned")
    with pytest.raises(KeyboardInterrupt):
        doc.save()
    faults.clear()
    assert raw_get("BLOBDOC#crash", "BlobDoc") is None  # no item, so no dangling pointer
    assert list(objects(blob_bucket).values()) == [b"orphaned"]  # at most an orphan
    live = BlobDoc(id="live", body=b"live")
    live.save()
    young = blobs.gc()  # the orphan is younger than the grace period: kept
    assert (young.orphans, young.recent) == ([], 1)
    result = blobs.gc(older_than=0)
    assert len(result.orphans) == 1 and result.referenced == 1
    assert list(objects(blob_bucket).values()) == [b"live"]
    assert BlobDoc.objects.get(id="live").body == b"live"


def test_delete_removes_the_objects_after_the_item(blob_bucket: str, faults: Faults) -> None:
    doc = BlobDoc(body=b"gone", note="also gone")
    doc.save()
    order: list[str] = []
    faults.on("before-send.dynamodb.DeleteItem", lambda **_: order.append("item"))
    client = _blob_store.s3_client()
    unique = f"order-{uuid.uuid4().hex}"
    client.meta.events.register(
        "before-call.s3.DeleteObjects", lambda **_: order.append("objects"), unique_id=unique
    )
    try:
        doc.delete()
    finally:
        client.meta.events.unregister("before-call.s3.DeleteObjects", unique_id=unique)
    assert order == ["item", "objects"]
    assert objects(blob_bucket) == {}
    assert doc.body == b"gone"  # the loaded value stays on the instance
    doc.save()  # saved again: uploaded again, never the deleted object
    assert BlobDoc.objects.get(id=doc.id).body == b"gone"


@pytest.mark.usefixtures("a_minute_later")
def test_crash_between_item_delete_and_object_delete_leaves_only_an_orphan(
    blob_bucket: str,
) -> None:
    doc = BlobDoc(body=b"left behind")
    doc.save()
    client = _blob_store.s3_client()
    unique = f"crash-{uuid.uuid4().hex}"

    def crash(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="http://s3.invalid")

    client.meta.events.register("before-call.s3.DeleteObjects", crash, unique_id=unique)
    try:
        doc.delete()  # the item is gone; the object's removal failed (logged)
    finally:
        client.meta.events.unregister("before-call.s3.DeleteObjects", unique_id=unique)
    assert raw_get(f"BLOBDOC#{doc.id}", "BlobDoc") is None
    assert len(objects(blob_bucket)) == 1
    assert len(blobs.gc(older_than=0).orphans) == 1
    assert objects(blob_bucket) == {}


def test_lost_response_retry_never_points_at_a_deleted_object(
    blob_bucket: str, faults: Faults
) -> None:
    doc = BlobDoc(body=b"v1")
    doc.save()
    doc.body = b"v2"
    # every attempt of the first save is applied, every response lost
    applied = faults.lose_response("PutItem", times=10)
    with pytest.raises(dynorm.ServiceError) as caught:
        doc.save()
    assert caught.value.maybe_applied and applied
    faults.clear()
    doc.save()  # the retry: settled as applied, not written twice
    stored = raw_get(f"BLOBDOC#{doc.id}", "BlobDoc")
    keys = pointer_keys(stored)
    assert keys <= set(objects(blob_bucket))  # the stored pointer names an existing object
    assert BlobDoc.objects.get(id=doc.id).body == b"v2"
    assert blobs.gc(older_than=0, dry_run=True).referenced == 1


def test_key_change_moves_the_blob_under_the_new_key(blob_bucket: str) -> None:
    doc = MovingDoc(owner="a", id="1", body=b"moving")
    doc.save()
    loaded = MovingDoc.objects.get(owner="a", id="1")
    loaded.owner = "b"
    loaded.save()  # unloaded blob: copied server-side under the new key
    item = raw_get("MOVING#b", "DOC#1")
    (key,) = pointer_keys(item)
    assert key.startswith(item_prefix(table_name(), "MOVING#b", "DOC#1"))
    assert set(objects(blob_bucket)) == {key}
    assert MovingDoc.objects.get(owner="b", id="1").body == b"moving"


def test_save_in_a_transaction_writes_a_valid_pointer(blob_bucket: str) -> None:
    doc = BlobDoc(body=b"in tx")
    with dynorm.transaction():
        doc.save()
    assert BlobDoc.objects.get(id=doc.id).body == b"in tx"


# --------------------------------------------------------------------------- tenants


def test_pointer_of_another_item_cannot_read_or_delete_its_object(blob_bucket: str) -> None:
    victim = BlobDoc(id="victim", body=b"victim's secret")
    victim.save()
    attacker = BlobDoc(id="attacker", body=b"mine")
    attacker.save()
    stolen = raw_get("BLOBDOC#victim", "BlobDoc")
    forged = raw_get("BLOBDOC#attacker", "BlobDoc")
    assert stolen is not None and forged is not None
    forged["body"] = stolen["body"]  # the attacker writes the victim's pointer into its item
    raw_client().put_item(TableName=table_name(), Item=forged)
    loaded = BlobDoc.objects.get(id="attacker")
    with pytest.raises(BlobIntegrityError, match="does not name an object of this item"):
        _ = loaded.body
    with pytest.raises(BlobIntegrityError):
        BlobDoc.objects.with_blobs().get(id="attacker")
    with pytest.raises(BlobIntegrityError):
        loaded.blob_url("body")
    loaded.delete()
    assert BlobDoc.objects.get(id="victim").body == b"victim's secret"  # not deleted
    # another bucket, same key shape
    other = dict(stolen["body"]["M"])
    other["bucket"] = {"S": "someone-elses-bucket"}
    forged["body"] = {"M": other}
    forged["pk"] = {"S": "BLOBDOC#victim"}
    forged["id"] = {"S": "victim"}
    raw_client().put_item(TableName=table_name(), Item=forged)
    with pytest.raises(BlobIntegrityError):
        _ = BlobDoc.objects.get(id="victim").body


def test_copied_object_gets_its_own_blob(blob_bucket: str) -> None:
    original = BlobDoc(id="orig", body=b"shared?")
    original.save()
    loaded = BlobDoc.objects.get(id="orig")
    copy = loaded.model_copy(update={"id": "copy", "version": 0})
    copy._loaded_key = None
    copy.save()
    assert BlobDoc.objects.get(id="copy").body == b"shared?"
    BlobDoc.objects.get(id="orig").delete()
    assert BlobDoc.objects.get(id="copy").body == b"shared?"


# --------------------------------------------------------------------------- versioned


@pytest.mark.usefixtures("a_minute_later")
def test_each_version_keeps_its_blob_and_gc_removes_pruned_ones(blob_bucket: str) -> None:
    doc = VersionedDoc(id="v", body=b"one")
    doc.save()
    doc.body = b"two"
    doc.save()
    assert VersionedDoc.objects.get(id="v", version=1).body == b"one"
    assert VersionedDoc.objects.get(id="v", version=2).body == b"two"
    doc.body = b"three"
    doc.save()  # max_versions=2: version 1 is pruned
    assert sorted(objects(blob_bucket).values()) == [b"one", b"three", b"two"]
    result = blobs.gc(older_than=0)
    assert len(result.orphans) == 1
    assert sorted(objects(blob_bucket).values()) == [b"three", b"two"]
    assert VersionedDoc.objects.get(id="v", version=2).body == b"two"
    doc.delete()
    blobs.gc(older_than=0)
    assert objects(blob_bucket) == {}


@pytest.mark.usefixtures("a_minute_later")
def test_dynorm_blobs_gc_command_removes_orphans(blob_bucket: str, faults: Faults) -> None:
    from click.testing import CliRunner

    from dynorm._cli import cli

    def crash(**_: Any) -> None:
        raise KeyboardInterrupt("crash after the upload")

    faults.on("before-send.dynamodb.PutItem", crash)
    with pytest.raises(KeyboardInterrupt):
        BlobDoc(id="orphan", body=b"orphaned").save()
    faults.clear()
    BlobDoc(id="kept", body=b"kept").save()
    runner = CliRunner()
    args = ["blobs", "gc", "--models", __name__, "--older-than", "0"]
    dry = runner.invoke(cli, [*args, "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert len(json.loads(dry.output)["orphans"]) == 1
    assert len(objects(blob_bucket)) == 2
    done = runner.invoke(cli, args)
    assert done.exit_code == 0, done.output
    assert "deleted 1 orphan(s)" in done.output
    assert list(objects(blob_bucket).values()) == [b"kept"]
