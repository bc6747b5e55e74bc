"""Blob fields (`fields.Blob()`): uploads before the write, loads, deletes after it.

The guarantees, and where each is kept:

1. Upload first, then the conditional write. `blob_overrides` (called by `save_op` while it
   builds the write) uploads every new or changed value under a key no other write uses
   (`<prefix><field>/<version>-<ulid>`), so a refused, retried or concurrent write can never
   overwrite or delete an object another item's pointer names.
2. On a refused write, delete what was uploaded (`saving`, around `Model.save`): a definite
   refusal (a condition, a bad value) deletes this call's uploads; an outcome that is not
   known (a lost response, a crash) keeps them, since the item may point at them. After a
   success, uploads the stored item does not name (an earlier attempt was the one applied)
   and the objects the save replaced are deleted.
3. Deletes remove the objects after the item (`deleted_blobs`, run by the delete's
   `on_success`). A crash between the steps leaves at most an orphan object, never an item
   pointing at a missing one; `dynorm.blobs.gc()` removes orphans.
4. A pointer read from the table is only used for the item it was read from: its bucket must
   be the model's and its key must start with that item's prefix (`_owned`), else
   `BlobIntegrityError`. Loads check the size and SHA-256 of the stored bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import TypeAdapter

from . import _blob_store as store, _bridge
from ._blob_pointer import BlobPointer, BlobValue
from ._capture import captured
from ._codec import unwrap_optional
from ._config import table_name_for
from ._exactly_once import instance_table
from ._transaction_context import current_transaction
from .exceptions import (
    BlobIntegrityError,
    BlobNotLoadedError,
    BlobTooLargeError,
    ConditionFailedError,
    ConfigurationError,
    InvalidValueError,
    QueryError,
    ServiceError,
    TransactionCanceledError,
)
from .fields import BlobSpec, new_ulid

if TYPE_CHECKING:
    from ._options import Options
    from .models import Model

__all__ = [
    "OBJECT_ROOT",
    "after_save",
    "blob_fields",
    "blob_overrides",
    "blob_url",
    "delete_objects_of",
    "deleted_blobs",
    "item_prefix",
    "load_blobs",
    "read_blob",
    "saving",
    "stored_pointers",
]

logger = logging.getLogger("dynorm.blobs")

#: Every object key starts with this, then the table name: `dynorm/<table>/...`.
OBJECT_ROOT = "dynorm/"
#: Threads `with_blobs()` / `load_blobs()` load with.
LOAD_WORKERS = 8
_KEY_BUDGET = 900  # S3 keys are at most 1024 bytes; the rest is field, version and ULID

_uploads: ContextVar[list[tuple[str, str]] | None] = ContextVar("dynorm_blob_uploads", default=None)
_adapters: dict[tuple[type[Any], str], TypeAdapter[Any]] = {}


def blob_fields(meta: Options) -> dict[str, BlobSpec]:
    """The blob fields of a model and their options (empty for most models)."""
    found: dict[str, BlobSpec] = meta.extra.get("blobs", {})
    return found


# --------------------------------------------------------------------------- keys


def item_prefix(table: str, pk: str, sk: str) -> str:
    """The key prefix of one item's objects, derived from its stored key.

    Each part is percent-encoded (so no part contains `/` and the prefix names one item); a
    key too long for S3 is replaced by its SHA-256 under `#h/` (which no encoded key starts
    with).
    """
    readable = f"{OBJECT_ROOT}{quote(table, safe='')}/{quote(pk, safe='')}/{quote(sk, safe='')}/"
    if len(readable.encode("utf-8")) <= _KEY_BUDGET:
        return readable
    digest = hashlib.sha256(f"{pk}\x00{sk}".encode()).hexdigest()
    return f"{OBJECT_ROOT}{quote(table, safe='')}/#h/{digest}/"


def _field_prefix(table: str, pk: str, sk: str, name: str) -> str:
    return f"{item_prefix(table, pk, sk)}{quote(name, safe='')}/"


def _table_of(instance: Model) -> str:
    return table_name_for(type(instance), instance_table(instance))


def _owned(instance: Model, name: str, value: BlobValue, action: str) -> BlobPointer:
    """The pointer of `value` if it belongs to the item it was read from, else raise."""
    meta = instance._meta
    pointer = value.pointer
    owner = value.owner
    bucket = store.require_bucket(meta, name)
    if owner is not None:
        pk, sk = owner
        table = _table_of(instance)
        if bucket == pointer.bucket and pointer.key.startswith(_field_prefix(table, pk, sk, name)):
            return pointer
    raise BlobIntegrityError(
        f"Cannot {action} the blob {meta.model_name}.{name}: the stored pointer does not name "
        "an object of this item (another item's key or another bucket). The item was written "
        "outside dynorm or tampered with; save a new value to replace it.",
        model=meta.model_name,
        field=name,
    )


# --------------------------------------------------------------------------- values


def _content_type(meta: Options, name: str, spec: BlobSpec) -> str:
    if spec.content_type:
        return spec.content_type
    base, _ = unwrap_optional(meta.extra["annotations"][name])
    if base is bytes:
        return "application/octet-stream"
    if base is str:
        return "text/plain; charset=utf-8"
    return "application/json"


def _adapter(model: type[Any], name: str) -> TypeAdapter[Any]:
    adapter = _adapters.get((model, name))
    if adapter is None:
        base, _ = unwrap_optional(model._meta.extra["annotations"][name])
        adapter = _adapters.setdefault((model, name), TypeAdapter(base))
    return adapter


def _to_bytes(model: type[Any], name: str, value: Any) -> bytes:
    base, _ = unwrap_optional(model._meta.extra["annotations"][name])
    if base is bytes:
        return bytes(value)
    if base is str:
        return str(value).encode("utf-8")
    return _adapter(model, name).dump_json(value)


def _from_bytes(model: type[Any], name: str, raw: bytes) -> Any:
    base, _ = unwrap_optional(model._meta.extra["annotations"][name])
    if base is bytes:
        return raw
    if base is str:
        return raw.decode("utf-8")
    return _adapter(model, name).validate_json(raw)


def _load(instance: Model, name: str, value: BlobValue) -> Any:
    """Download, check and decode one blob; cache it on the BlobValue."""
    meta = instance._meta
    model = meta.model_name
    pointer = _owned(instance, name, value, "load")
    raw = store.get_object(pointer.bucket, pointer.key, model=model, field=name)
    if len(raw) != pointer.size or hashlib.sha256(raw).hexdigest() != pointer.sha256:
        raise BlobIntegrityError(
            f"Cannot load the blob {model}.{name}: the stored object does not match its "
            "pointer (size or SHA-256 differ); it was changed or corrupted outside dynorm.",
            model=model,
            field=name,
        )
    if pointer.compressed:
        raw = gzip.decompress(raw)
    value.value = _from_bytes(type(instance), name, raw)
    return value.value


def read_blob(instance: Model, name: str, value: BlobValue) -> Any:
    """The value of an unloaded blob read by attribute access: load it, or raise."""
    meta = instance._meta
    spec = blob_fields(meta)[name]
    if not spec.lazy or store.bucket_for(meta) is None:
        why = (
            "the field is Blob(lazy=False)"
            if not spec.lazy
            else "no blob bucket is configured here (Meta.blob_bucket or "
            "configure(blob_bucket=...))"
        )
        raise BlobNotLoadedError(
            f"Cannot read {meta.model_name}.{name}: the blob is not loaded and {why}. Load "
            "it with Model.objects.with_blobs() or obj.load_blobs().",
            model=meta.model_name,
            field=name,
        )
    return _load(instance, name, value)


def load_blobs(instances: Sequence[Model], names: Iterable[str] | None = None) -> None:
    """Load the unloaded blobs of `instances` concurrently (at most LOAD_WORKERS threads)."""
    jobs: list[tuple[Model, str, BlobValue]] = []
    wanted = None if names is None else set(names)
    for instance in instances:
        for name in blob_fields(instance._meta):
            if wanted is not None and name not in wanted:
                continue
            value = instance.__dict__.get(name)
            if isinstance(value, BlobValue) and not value.loaded:
                jobs.append((instance, name, value))
    if not jobs:
        return
    if len(jobs) == 1:
        _load(*jobs[0])
        return
    _bridge.blocking(_load_in_threads, jobs)


def _load_in_threads(jobs: list[tuple[Model, str, BlobValue]]) -> None:
    with ThreadPoolExecutor(max_workers=min(LOAD_WORKERS, len(jobs))) as pool:
        for future in [pool.submit(_load, *job) for job in jobs]:
            future.result()  # the first error is raised


def blob_url(instance: Model, name: str, expires: int = 3600) -> str:
    """A presigned GET URL of a stored blob's object."""
    meta = instance._meta
    if name not in blob_fields(meta):
        raise QueryError(
            f"Cannot presign {meta.model_name}.{name}: it is not a blob field (fields.Blob()).",
            code="unknown-field",
        )
    value = instance.__dict__.get(name)
    if not isinstance(value, BlobValue):
        raise BlobNotLoadedError(
            f"Cannot presign {meta.model_name}.{name}: its value is not stored yet (or is "
            "None); save() the object first.",
            model=meta.model_name,
            field=name,
        )
    pointer = _owned(instance, name, value, "presign")
    return store.presigned_get(pointer.bucket, pointer.key, expires)


# --------------------------------------------------------------------------- writes


def after_save(instance: Model, written: Iterable[str] | None) -> None:
    """After a save's success: the instance's stored pointers are the ones it wrote."""
    fields = blob_fields(instance._meta)
    if not fields:
        return
    names = set(fields) if written is None else set(written) & set(fields)
    old = instance._blobs or {}
    now = stored_pointers(instance)
    instance._blobs = {
        name: pointer
        for name in fields
        if (pointer := now.get(name) if name in names else old.get(name)) is not None
    } or None


def stored_pointers(instance: Model) -> dict[str, BlobPointer]:
    """The pointers the instance's fields hold now (a BlobValue each)."""
    return {
        name: value.pointer
        for name in blob_fields(instance._meta)
        if isinstance(value := instance.__dict__.get(name), BlobValue)
    }


def _upload(
    instance: Model,
    name: str,
    spec: BlobSpec,
    body: bytes | None,
    source: BlobValue | None,
    prefix: str,
    owner: tuple[str, str],
    version: int,
    bucket: str,
) -> BlobValue:
    meta = instance._meta
    model = meta.model_name
    key = f"{prefix}{version:09d}-{new_ulid()}"
    if body is None:  # a stored object under another item's key: copy it server-side
        assert source is not None
        old = _owned(instance, name, source, "copy")
        pointer = BlobPointer(bucket, key, old.size, old.sha256, old.content_type, old.compressed)
        if not captured():
            _record(bucket, key)
            store.copy_object(bucket, old.key, key, model=model, field=name)
        return BlobValue(pointer, owner, source.value)
    stored = gzip.compress(body, mtime=0) if spec.compress else body
    if len(stored) > spec.max_size:
        raise BlobTooLargeError(
            f"Cannot store {model}.{name}: the value is {len(stored)} bytes"
            f"{' compressed' if spec.compress else ''}, over the field's max_size of "
            f"{spec.max_size} bytes. Raise Blob(max_size=...) or store less.",
            model=model,
            field=name,
            size=len(stored),
            limit=spec.max_size,
        )
    content_type = _content_type(meta, name, spec)
    digest = hashlib.sha256(stored).hexdigest()
    pointer = BlobPointer(bucket, key, len(stored), digest, content_type, spec.compress)
    if not captured():
        _record(bucket, key)
        store.put_object(
            bucket,
            key,
            stored,
            content_type=content_type,
            compressed=spec.compress,
            model=model,
            field=name,
        )
    return BlobValue(pointer, owner)


def _record(bucket: str, key: str) -> None:
    uploads = _uploads.get()
    if uploads is not None:
        uploads.append((bucket, key))


def blob_overrides(
    instance: Model, names: Iterable[str] | None, version: int, key: tuple[str, str]
) -> dict[str, Any]:
    """Upload the new or changed blobs a save of `names` (None: all) writes at `key`.

    Returns the field values to write instead (a BlobValue per uploaded blob). A stored
    blob of this very item is written again as its pointer, nothing uploaded; a stored blob
    of another item (a copy, a changed key, an object saved again after its delete) is
    copied under this item's key.
    """
    meta = instance._meta
    fields = blob_fields(meta)
    if not fields:
        return {}
    wanted = fields if names is None else [n for n in names if n in fields]
    table = _table_of(instance)
    owner = key
    stored = instance._blobs or {}
    out: dict[str, Any] = {}
    for name in wanted:
        spec = fields[name]
        value = instance.__dict__.get(name)
        if value is None:
            continue
        bucket = store.require_bucket(meta, name)
        prefix = _field_prefix(table, key[0], key[1], name)
        if isinstance(value, BlobValue):
            if (
                instance.version > 0
                and value.owner == owner
                and stored.get(name) == value.pointer
                and value.pointer.bucket == bucket
            ):
                continue  # this item's stored object: written again as its pointer
            if value.loaded:
                body = _to_bytes(type(instance), name, value.value)
                uploaded = _upload(instance, name, spec, body, None, prefix, owner, version, bucket)
                uploaded.value = value.value
            else:
                uploaded = _upload(
                    instance, name, spec, None, value, prefix, owner, version, bucket
                )
            out[name] = uploaded
            continue
        body = _to_bytes(type(instance), name, value)
        uploaded = _upload(instance, name, spec, body, None, prefix, owner, version, bucket)
        uploaded.value = value
        out[name] = uploaded
    return out


def _definitely_refused(exc: BaseException) -> bool:
    """Whether a failed write is known not to have been applied (its uploads are unused)."""
    if isinstance(exc, ServiceError):
        return not exc.maybe_applied
    return isinstance(
        exc,
        (
            ConditionFailedError,
            TransactionCanceledError,
            InvalidValueError,
            QueryError,
            ConfigurationError,
            BlobTooLargeError,
        ),
    )


def _delete(keys: Iterable[tuple[str, str]], model: str) -> None:
    by_bucket: dict[str, list[str]] = {}
    for bucket, key in keys:
        by_bucket.setdefault(bucket, []).append(key)
    for bucket, chunk in by_bucket.items():
        failed = store.delete_objects(bucket, chunk)
        if failed:
            logger.warning(
                "%d blob object(s) of %s could not be deleted; dynorm.blobs.gc() removes them",
                len(failed),
                model,
            )


@contextmanager
def saving(instance: Model) -> Iterator[None]:
    """Around a save: delete the uploads a refused write left, and what a success replaced."""
    meta = instance._meta
    if not blob_fields(meta):
        yield
        return
    before = dict(instance._blobs or {})
    uploads: list[tuple[str, str]] = []
    reset = _uploads.set(uploads)
    try:
        yield
    except BaseException as exc:
        if _definitely_refused(exc) and uploads:
            keep = {(p.bucket, p.key) for p in stored_pointers(instance).values()}
            _delete([u for u in uploads if u not in keep], meta.model_name)
        raise
    finally:
        _uploads.reset(reset)
    if current_transaction() is not None or captured():
        return  # the write is sent at commit: what it replaces is left to gc
    keep = {(p.bucket, p.key) for p in (instance._blobs or {}).values()}
    unused = [u for u in uploads if u not in keep]
    if not getattr(type(instance), "__dynorm_versioned__", False):
        # Versioned models keep each version's object (history points at it).
        unused += [(p.bucket, p.key) for p in before.values() if (p.bucket, p.key) not in keep]
    if unused:
        _delete(unused, meta.model_name)


def deleted_blobs(instance: Model) -> dict[str, BlobPointer]:
    """The stored objects a delete of `instance` removes after the item (verified as its own)."""
    out: dict[str, BlobPointer] = {}
    for name, pointer in (instance._blobs or {}).items():
        value = instance.__dict__.get(name)
        if isinstance(value, BlobValue) and value.pointer == pointer:
            try:
                out[name] = _owned(instance, name, value, "delete")
            except BlobIntegrityError:
                logger.warning(
                    "skipped deleting a blob of %s not owned by the item", type(instance).__name__
                )
    return out


def delete_objects_of(instance: Model, pointers: dict[str, BlobPointer]) -> None:
    """After the item's delete: remove its objects; keep loaded values as plain values."""
    for name in pointers:
        value = instance.__dict__.get(name)
        if isinstance(value, BlobValue):
            vars(instance)[name] = value.value if value.loaded else value
    instance._blobs = None
    if pointers and not captured():
        _delete([(p.bucket, p.key) for p in pointers.values()], instance._meta.model_name)
