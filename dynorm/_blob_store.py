"""The one boundary to S3: the client blob fields use, and the object calls they make.

The client comes from `configure(s3_client=...)`, else is created (once per configuration)
from `s3_endpoint_url` and the region of the DynamoDB settings. Errors are mapped to
`BlobError` / `BlobIntegrityError`; messages name the model and field, never a value.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from . import _bridge
from ._config import Settings, get_settings
from .exceptions import BlobError, BlobIntegrityError, ConfigurationError

__all__ = [
    "bucket_for",
    "copy_object",
    "delete_objects",
    "get_object",
    "list_objects",
    "presigned_get",
    "put_object",
    "s3_client",
]

_lock = threading.Lock()
_clients: dict[int, tuple[Settings, Any]] = {}
_MISSING = ("NoSuchKey", "404", "NotFound")


def s3_client() -> Any:
    """The S3 client of the current configuration (created on first use)."""
    settings = get_settings()
    if settings.s3_client is not None:
        return settings.s3_client
    with _lock:
        built = _clients.get(id(settings))
        if built is not None and built[0] is settings:
            return built[1]
        session = botocore.session.Session()
        region = (
            settings.region_name
            or session.get_config_variable("region")
            or os.environ.get("AWS_REGION")
        )
        kwargs: dict[str, Any] = {}
        if settings.s3_endpoint_url is not None:
            kwargs["endpoint_url"] = settings.s3_endpoint_url
            region = region or "us-east-1"
            if session.get_credentials() is None:  # a local S3 accepts any credentials
                kwargs.update(aws_access_key_id="dynorm", aws_secret_access_key="dynorm")
        config = Config(
            retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
            s3={"addressing_style": "path"} if settings.s3_endpoint_url else {},
            signature_version="s3v4",
        )
        client = session.create_client("s3", region_name=region, config=config, **kwargs)
        _clients.clear()  # one configuration at a time
        _clients[id(settings)] = (settings, client)
        return client


def bucket_for(meta: Any) -> str | None:
    """The bucket of a model's blobs: `Meta.blob_bucket`, else `configure(blob_bucket=...)`."""
    own = meta.extra.get("raw", {}).get("blob_bucket")
    if own:
        return str(own)
    return get_settings().blob_bucket


def require_bucket(meta: Any, field: str) -> str:
    """The bucket of a model's blobs, or ConfigurationError naming the fix."""
    bucket = bucket_for(meta)
    if bucket is None:
        raise ConfigurationError(
            f"Cannot store or load the blob field {meta.model_name}.{field}: no bucket is "
            "configured. Set `Meta.blob_bucket` on the model or call "
            "dynorm.configure(blob_bucket=...).",
            code="config",
        )
    return bucket


def _error(action: str, model: str, field: str, exc: Exception) -> BlobError:
    code = None
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "")) or None
    if code in _MISSING:
        return BlobIntegrityError(
            f"Cannot {action} the blob {model}.{field}: its object is missing from the bucket "
            "(deleted outside dynorm, or by dynorm blobs gc with too short a grace period).",
            model=model,
            field=field,
            aws_code=code,
        )
    return BlobError(
        f"Cannot {action} the blob {model}.{field}: S3 reported "
        f"{code or type(exc).__name__}. Check the bucket, the endpoint and the credentials.",
        model=model,
        field=field,
        aws_code=code,
    )


def put_object(
    bucket: str,
    key: str,
    body: bytes,
    *,
    content_type: str,
    compressed: bool,
    model: str,
    field: str,
) -> None:
    """Upload one object."""
    extra: dict[str, Any] = {"ContentType": content_type}
    if compressed:
        extra["ContentEncoding"] = "gzip"
    try:
        _bridge.blocking(s3_client().put_object, Bucket=bucket, Key=key, Body=body, **extra)
    except (ClientError, BotoCoreError) as exc:
        raise _error("upload", model, field, exc) from None


def copy_object(bucket: str, source: str, key: str, *, model: str, field: str) -> None:
    """Copy an object inside the bucket (a server-side copy: nothing is downloaded)."""
    try:
        _bridge.blocking(
            s3_client().copy_object,
            Bucket=bucket,
            Key=key,
            CopySource={"Bucket": bucket, "Key": source},
        )
    except (ClientError, BotoCoreError) as exc:
        raise _error("copy", model, field, exc) from None


def get_object(bucket: str, key: str, *, model: str, field: str) -> bytes:
    """Download one object's bytes (as stored: still compressed if it was)."""
    try:
        body: bytes = _bridge.blocking(_download, bucket, key)
    except (ClientError, BotoCoreError) as exc:
        raise _error("load", model, field, exc) from None
    return body


def _download(bucket: str, key: str) -> bytes:
    body: bytes = s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def delete_objects(bucket: str, keys: list[str]) -> list[str]:
    """Delete objects (1000 per request); return the keys S3 did not delete."""
    failed: list[str] = []
    client = s3_client()
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        try:
            response = _bridge.blocking(
                client.delete_objects,
                Bucket=bucket,
                Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
            )
        except (ClientError, BotoCoreError):
            failed.extend(chunk)
            continue
        failed.extend(str(e.get("Key")) for e in response.get("Errors", []))
    return failed


def list_objects(bucket: str, prefix: str) -> Iterator[tuple[str, datetime]]:
    """Every object under `prefix`: (key, last modified)."""
    paginator = s3_client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield str(obj["Key"]), obj["LastModified"]


def presigned_get(bucket: str, key: str, expires: int) -> str:
    """A presigned GET URL of one object, valid for `expires` seconds."""
    url: str = s3_client().generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
    )
    return url
