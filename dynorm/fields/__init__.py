"""Special fields: generated ids, timestamps, TTL, compressed values and S3 blobs.

Use them as defaults in a model body; each returns a pydantic field that dynorm recognises::

    class Order(Model):
        id: str = fields.ULID()
        created_at: datetime = fields.CreatedAt()
        expires_at: datetime | None = fields.TTL()
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

__all__ = [
    "TTL",
    "Attr",
    "ULID",
    "Blob",
    "BlobSpec",
    "Compressed",
    "CreatedAt",
    "DateTime",
    "DynormField",
    "UpdatedAt",
    "new_ulid",
]

FieldKind = Literal["ulid", "created_at", "updated_at", "ttl", "compressed", "blob"]

#: The default `max_size` of a blob field: 64 MiB (one PutObject takes up to 5 GB).
DEFAULT_BLOB_MAX_SIZE = 64 * 1024 * 1024


#: Crockford's base32 alphabet, the one ULIDs are written in.
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid() -> str:
    """Return a new ULID as its 26-character Crockford base32 string (sortable by time).

    The ULID spec's layout (48 bits of Unix milliseconds, then 80 random bits), written here
    rather than through python-ulid, whose import reads package metadata (~a third of
    `import dynorm`'s cold start).
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -5, -5))


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class BlobSpec:
    """The options of one blob field (see `Blob`)."""

    compress: bool = False
    max_size: int = DEFAULT_BLOB_MAX_SIZE
    content_type: str | None = None
    lazy: bool = True


@dataclass(frozen=True)
class DynormField:
    """A field marker the model metaclass turns into a pydantic field and remembers by kind."""

    kind: FieldKind | None
    default: Any = PydanticUndefined
    default_factory: Callable[[], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    blob: BlobSpec | None = None
    #: The attribute name the field is stored under (None: the field's own name).
    attribute: str | None = None
    #: A datetime field's storage format (a preset name or a pattern; None: dynorm's own).
    datetime_format: str | None = None

    def to_field_info(self) -> FieldInfo:
        """Return the pydantic FieldInfo this marker stands for."""
        if self.default_factory is not None:
            info: FieldInfo = Field(default_factory=self.default_factory, **self.extra)
        else:
            info = Field(default=self.default, **self.extra)
        return info


def Attr(  # noqa: N802 - reads like a type, as in the API contract
    attribute: str, default: Any = PydanticUndefined, **kwargs: Any
) -> Any:
    """Declare a field stored under another attribute name: `fields.Attr("createdAt")`.

    Filters, projections, updates, cursors and both decoders use the stored name; the
    Python name stays the field's. `**kwargs` go to pydantic's `Field` (`default_factory`...).
    """
    factory = kwargs.pop("default_factory", None)
    return DynormField(
        None, default=default, default_factory=factory, extra=kwargs, attribute=attribute
    )


def stored_names(namespace: dict[str, Any]) -> dict[str, str]:
    """The attribute names a class body's fields declare (`fields.Attr`, `attribute=`)."""
    return {
        name: value.attribute
        for name, value in namespace.items()
        if isinstance(value, DynormField) and value.attribute is not None
    }


def declared_names(namespace: dict[str, Any]) -> dict[str, dict[str, str]]:
    """What a class body's fields declare, as `Meta` options the model's subclasses inherit.

    `_attributes`: the attribute names (`fields.Attr`, `attribute=`); `_formats`: the
    storage formats of datetime fields (`fields.DateTime(format=...)`).
    """
    formats = {
        name: value.datetime_format
        for name, value in namespace.items()
        if isinstance(value, DynormField) and value.datetime_format is not None
    }
    return {"_attributes": stored_names(namespace), "_formats": formats}


def DateTime(  # noqa: N802 - reads like a type, as in the API contract
    default: Any = PydanticUndefined,
    *,
    format: str = "dynorm",  # noqa: A002 - the option's name in the docs
    attribute: str | None = None,
    **kwargs: Any,
) -> Any:
    """Declare a datetime field stored as text in another format.

    `format` is a preset (`"dynorm"`: `2026-12-01T10:00:00.000000Z`, the default;
    `"pynamodb"`: `2026-12-01T10:00:00.000000+0000`, PynamoDB's `UTCDateTimeAttribute`;
    `"iso"`: `2026-12-01T10:00:00.000000+00:00`) or a pattern of `%Y %m %d %H %M %S %f %z`
    (see docs/concepts/existing-tables.md). Items, filters, key templates, updates and both
    decoders use it; it is checked when the class is created. `attribute` stores the field
    under another name (as `fields.Attr`); `**kwargs` go to pydantic's `Field`.
    """
    factory = kwargs.pop("default_factory", None)
    return DynormField(
        None,
        default=default,
        default_factory=factory,
        extra=kwargs,
        attribute=attribute,
        datetime_format=format,
    )


def ULID(*, attribute: str | None = None, **kwargs: Any) -> Any:  # noqa: N802
    """Declare a string id that defaults to a new ULID (time-ordered, 26 characters)."""
    return DynormField("ulid", default_factory=new_ulid, extra=kwargs, attribute=attribute)


def CreatedAt(  # noqa: N802
    *,
    attribute: str | None = None,
    format: str | None = None,  # noqa: A002 - as fields.DateTime(format=...)
    **kwargs: Any,
) -> Any:
    """Declare a UTC datetime set when the object is first saved (unless given explicitly).

    `format` stores it in another datetime format (see `DateTime`).
    """
    return DynormField(
        "created_at",
        default_factory=utcnow,
        extra=kwargs,
        attribute=attribute,
        datetime_format=format,
    )


def UpdatedAt(  # noqa: N802
    *,
    attribute: str | None = None,
    format: str | None = None,  # noqa: A002 - as fields.DateTime(format=...)
    **kwargs: Any,
) -> Any:
    """Declare a UTC datetime set on every successful save (`format`: see `DateTime`)."""
    return DynormField(
        "updated_at",
        default_factory=utcnow,
        extra=kwargs,
        attribute=attribute,
        datetime_format=format,
    )


def TTL(default: Any = None, *, attribute: str | None = None, **kwargs: Any) -> Any:  # noqa: N802
    """Declare an expiry datetime, stored as epoch seconds in the table's TTL attribute.

    `dynorm.create_table()` enables DynamoDB's time to live on it. DynamoDB deletes expired
    items lazily (typically within a few days), so filter on the field if that matters.
    `attribute` names the TTL attribute of an existing table (default `_ttl`).
    """
    return DynormField("ttl", default=default, extra=kwargs, attribute=attribute)


def Compressed(  # noqa: N802
    default: Any = PydanticUndefined, *, attribute: str | None = None, **kwargs: Any
) -> Any:
    """Declare a str, bytes or JSON-able value stored gzip-compressed as binary.

    Compressed fields cannot be used in key templates or filters (DynamoDB sees only bytes).
    """
    return DynormField("compressed", default=default, extra=kwargs, attribute=attribute)


def Blob(  # noqa: N802
    default: Any = PydanticUndefined,
    *,
    compress: bool = False,
    max_size: int = DEFAULT_BLOB_MAX_SIZE,
    content_type: str | None = None,
    lazy: bool = True,
    attribute: str | None = None,
    **kwargs: Any,
) -> Any:
    """Declare a `bytes`, `str` or JSON-able value stored as an S3 object, not in the item.

    The item holds a small pointer (bucket, key, size, SHA-256, content type). The object is
    uploaded before the item is written and removed after the item is deleted; loads are lazy
    (on first access) unless the queryset asks for `.with_blobs()`. The bucket comes from
    `Meta.blob_bucket` or `dynorm.configure(blob_bucket=...)`.

    Args:
        default: The value of a new object that was not given one (none: the field is required).
        compress: Store the object gzip-compressed (served with `Content-Encoding: gzip`).
        max_size: The largest object (in bytes, after compression) a save uploads; larger
            values raise `BlobTooLargeError` before anything is sent.
        content_type: The object's Content-Type (default: `application/octet-stream` for
            bytes, `text/plain; charset=utf-8` for str, `application/json` otherwise).
        attribute: The attribute name the pointer is stored under (default: the field's).
        lazy: Load on first access (default). `False`: reading an unloaded value raises
            `BlobNotLoadedError`; load it with `.with_blobs()` or `obj.load_blobs()`.
        **kwargs: Passed to pydantic's `Field`.
    """
    if max_size < 1:
        raise ValueError("Blob(max_size=...) must be at least 1 byte")
    spec = BlobSpec(compress=compress, max_size=max_size, content_type=content_type, lazy=lazy)
    return DynormField("blob", default=default, extra=kwargs, blob=spec, attribute=attribute)
