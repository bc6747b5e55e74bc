"""What an item stores for a blob field, and what an instance holds for it.

A blob field's value lives in S3; the item holds a `BlobPointer` (bucket, key, size, SHA-256
of the stored bytes, content type, whether it is gzip-compressed) as a map attribute. An
instance loaded from the table holds a `BlobValue` in its `__dict__`: the pointer and, once
loaded, the value. A value the user assigned is held as is until `save()` uploads it.

Wire floor: the codec encodes and decodes pointers through this module; reading S3 is
`_blobs.py`'s business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["UNLOADED", "BlobPointer", "BlobValue", "decode_pointer", "encode_pointer"]


class _Unloaded:
    def __repr__(self) -> str:
        return "UNLOADED"


#: The value of a `BlobValue` whose object has not been read.
UNLOADED: Any = _Unloaded()


@dataclass(frozen=True)
class BlobPointer:
    """Where a blob's object is and what it must be (checked on every load)."""

    bucket: str
    key: str
    size: int
    sha256: str
    content_type: str
    compressed: bool = False


@dataclass(eq=False)
class BlobValue:
    """A stored blob as an instance holds it: its pointer and, once loaded, its value.

    `owner` is the (pk, sk) of the item it was read from or saved to: a pointer is only ever
    used (read, copied, deleted, presigned) for the item it belongs to.
    """

    pointer: BlobPointer
    owner: tuple[str, str] | None = None
    value: Any = field(default=UNLOADED)

    @property
    def loaded(self) -> bool:
        """Whether the value has been read."""
        return self.value is not UNLOADED

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BlobValue):
            return self.pointer == other.pointer
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.pointer)

    def __repr__(self) -> str:  # never the value
        state = "loaded" if self.loaded else "not loaded"
        return f"<blob {self.pointer.size} bytes, {state}>"


def encode_pointer(value: BlobValue) -> dict[str, Any]:
    """The map attribute an item stores for a blob."""
    p = value.pointer
    return {
        "M": {
            "bucket": {"S": p.bucket},
            "key": {"S": p.key},
            "size": {"N": str(p.size)},
            "sha256": {"S": p.sha256},
            "content_type": {"S": p.content_type},
            "gzip": {"BOOL": p.compressed},
        }
    }


def decode_pointer(av: Mapping[str, Any]) -> BlobValue | None:
    """The BlobValue of a stored pointer attribute; None if it is not a pointer."""
    raw = av.get("M")
    if not isinstance(raw, Mapping):
        return None
    try:
        pointer = BlobPointer(
            bucket=str(raw["bucket"]["S"]),
            key=str(raw["key"]["S"]),
            size=int(raw["size"]["N"]),
            sha256=str(raw["sha256"]["S"]),
            content_type=str(raw["content_type"]["S"]),
            compressed=bool(raw.get("gzip", {}).get("BOOL", False)),
        )
    except (KeyError, TypeError, ValueError):
        return None
    return BlobValue(pointer)
