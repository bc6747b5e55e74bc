"""Model <-> DynamoDB attribute-value JSON, compiled once per model; value rules."""

from __future__ import annotations

import base64
import enum
import gzip
import json
import math
import types
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Context, Decimal
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr, TypeAdapter

from ._blob_pointer import BlobValue, decode_pointer, encode_pointer
from ._constants import (
    NESTING_DEPTH_LIMIT,
    NUMBER_MAX_EXPONENT,
    NUMBER_MIN_EXPONENT,
    NUMBER_PRECISION,
)
from .exceptions import InvalidValueError

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

_GZIP_MAGIC = b"\x1f\x8b"
_SMALL_INT = 10**NUMBER_PRECISION


def invalid_value(action: str, model: str, field: str, problem: ValueProblem) -> InvalidValueError:
    """The typed error for a value DynamoDB cannot take, naming model and field (no value)."""
    return InvalidValueError(
        f"Cannot {action} {model}.{field}: the value {problem.reason}.", model=model, field=field
    )


class ValueProblem(Exception):
    """A value that DynamoDB cannot store; re-raised with the model and field named."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- scalars


def as_utc(value: datetime) -> datetime:
    """An aware datetime in UTC; ValueProblem for a naive one or one UTC cannot hold."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueProblem(
            "is a naive datetime; use a timezone-aware one such as datetime.now(timezone.utc)"
        )
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueProblem("is outside the datetime range once converted to UTC") from None


def format_datetime(value: datetime) -> str:
    """Render an aware datetime as fixed-width UTC ISO-8601 with microseconds.

    Every value has the same width, so text order is time order (pydantic's own
    serialisation drops zero microseconds and keeps offsets, which misorders keys).
    """
    v = as_utc(value)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:"
        f"{v.second:02d}.{v.microsecond:06d}Z"
    )


#: Wide enough that normalising never rounds (the default context keeps 28 digits).
_WIDE = Context(prec=400, Emax=999_999, Emin=-999_999)


def number_to_wire(value: int | float | Decimal) -> str:
    """Return the DynamoDB N string for a number, checking precision and range."""
    if isinstance(value, int):
        if -_SMALL_INT < value < _SMALL_INT:
            return str(value)
        dec = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueProblem("is NaN or infinite, which DynamoDB cannot store")
        text = repr(value)
        dec = Decimal(text)
        _check_decimal(dec)
        return text
    else:
        dec = value
    _check_decimal(dec)
    if isinstance(value, int):
        # 10**38 has 39 characters but one significant digit: send the normalised form.
        return str(dec.normalize(_WIDE))
    return str(dec)


def _check_decimal(dec: Decimal) -> None:
    if not dec.is_finite():
        raise ValueProblem("is NaN or infinite, which DynamoDB cannot store")
    if dec.is_zero():
        return
    normal = dec.normalize(_WIDE)
    digits = len(normal.as_tuple().digits)
    if digits > NUMBER_PRECISION:
        raise ValueProblem(
            f"has {digits} significant digits; DynamoDB keeps at most {NUMBER_PRECISION}"
        )
    exponent = normal.adjusted()
    if exponent > NUMBER_MAX_EXPONENT or exponent < NUMBER_MIN_EXPONENT:
        raise ValueProblem("is outside DynamoDB's number range (1E-130 to 9.9E+125)")


def number_from_wire(text: str) -> int | Decimal:
    """Return an int for integral wire numbers without exponent, else a Decimal."""
    if "." in text or "e" in text or "E" in text:
        return Decimal(text)
    return int(text)


def _set_to_wire(value: set[Any] | frozenset[Any]) -> AttributeValue | None:
    if not value:
        return None  # DynamoDB refuses empty sets; the attribute is left off instead
    sample = next(iter(value))
    if isinstance(sample, str):
        if not all(isinstance(v, str) for v in value):
            raise ValueProblem("is a set mixing strings with other types")
        return {"SS": list(value)}
    if isinstance(sample, (bytes, bytearray)):
        if not all(isinstance(v, (bytes, bytearray)) for v in value):
            raise ValueProblem("is a set mixing bytes with other types")
        return {"BS": [bytes(v) for v in value]}
    if all(isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in value):
        wire = [number_to_wire(v) for v in value]
        if len(set(map(Decimal, wire))) != len(wire):
            raise ValueProblem("is a set holding numbers that are equal to DynamoDB")
        return {"NS": wire}
    raise ValueProblem(
        "is a set of a type DynamoDB cannot store, or of mixed types (use one of str, "
        "numbers or bytes)"
    )


def to_wire(value: Any, depth: int = 0) -> AttributeValue | None:
    """Encode any supported Python value as a DynamoDB attribute value.

    Returns None for None and for empty sets (the attribute is then left off the item).
    """
    if depth >= NESTING_DEPTH_LIMIT:  # real DynamoDB refuses 32 containers around a value
        raise ValueProblem(f"nests deeper than DynamoDB's {NESTING_DEPTH_LIMIT} levels")
    if value is None:
        return None
    cls = type(value)
    if cls is str:
        return {"S": value}
    if cls is bool:
        return {"BOOL": value}
    if cls is int or cls is float or cls is Decimal:
        return {"N": number_to_wire(value)}
    if isinstance(value, datetime):
        return {"S": format_datetime(value)}
    if isinstance(value, BaseModel):
        return {"M": _model_to_map(value, depth + 1)}
    if isinstance(value, dict):
        out: dict[str, AttributeValue] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueProblem("is a dict with non-string keys, which DynamoDB cannot store")
            if not k:
                raise ValueProblem("is a dict with an empty key, which DynamoDB cannot store")
            out[k] = _nested(v, depth + 1)
        return {"M": out}
    if isinstance(value, (list, tuple)):
        return {"L": [_nested(v, depth + 1) for v in value]}
    if isinstance(value, (set, frozenset)):
        return _set_to_wire(value)
    if isinstance(value, enum.Enum):
        return to_wire(value.value, depth)
    if isinstance(value, str):
        return {"S": str(value)}
    if isinstance(value, bool):
        return {"BOOL": bool(value)}
    if isinstance(value, (int, float, Decimal)):
        return {"N": number_to_wire(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"B": bytes(value)}
    if isinstance(value, (date, time)):
        return {"S": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"S": str(value)}
    if isinstance(value, SecretStr):
        return {"S": value.get_secret_value()}
    if isinstance(value, SecretBytes):
        return {"B": value.get_secret_value()}
    raise ValueProblem(f"has type {cls.__name__}, which dynorm cannot store")


def _nested(value: Any, depth: int) -> AttributeValue:
    # Inside lists and maps None is kept as NULL so the shape survives the round trip, and
    # an empty set (which DynamoDB refuses) becomes an empty list, which validates as a set.
    av = to_wire(value, depth)
    if av is None:
        return {"L": []} if isinstance(value, (set, frozenset)) else {"NULL": True}
    return av


def _model_to_map(value: BaseModel, depth: int) -> dict[str, AttributeValue]:
    return {name: _nested(getattr(value, name), depth) for name in type(value).model_fields}


def from_wire(av: Mapping[str, Any]) -> Any:
    """Decode a DynamoDB attribute value into plain Python (N -> int or Decimal)."""
    for tag, raw in av.items():
        if tag == "S":
            return raw
        if tag == "N":
            return number_from_wire(raw)
        if tag == "M":
            return {k: from_wire(v) for k, v in raw.items()}
        if tag == "L":
            return [from_wire(v) for v in raw]
        if tag == "BOOL":
            return raw
        if tag == "NULL":
            return None
        if tag == "SS":
            return set(raw)
        if tag == "NS":
            return {number_from_wire(v) for v in raw}
        if tag == "B":
            return wire_bytes(raw)
        if tag == "BS":
            return {wire_bytes(v) for v in raw}
    raise ValueError("empty attribute value")


def wire_bytes(raw: Any) -> bytes:
    """Bytes of a B value: botocore gives bytes, the raw JSON body (fast path) base64 text."""
    if isinstance(raw, str):
        return base64.b64decode(raw)
    return bytes(raw)


# --------------------------------------------------------------------------- per-model codec


def unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """Return (annotation without None, whether None was allowed)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(args) != len(typing.get_args(annotation))
        if len(args) == 1:
            return args[0], nullable
        return typing.Union[tuple(args)], nullable  # noqa: UP007 - built at run time
    if origin is typing.Annotated:
        return unwrap_optional(typing.get_args(annotation)[0])
    return annotation, annotation is Any or annotation is None


def _is_set_type(annotation: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    return origin in (set, frozenset)


@dataclass(frozen=True)
class FieldCodec:
    """How one model field is stored: attribute name, encoder, decoder and read defaults."""

    name: str
    attr: str
    encode: Callable[[Any], AttributeValue | None]
    decode: Callable[[Mapping[str, Any]], Any]
    missing: Callable[[], Any] | None  # value to use when the attribute is absent


def _ttl_encode(value: Any) -> AttributeValue | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueProblem("must be a timezone-aware datetime to be used as a TTL")
    return {"N": str(int(value.timestamp()))}


def _ttl_decode(av: Mapping[str, Any]) -> Any:
    if "N" in av:
        return datetime.fromtimestamp(int(Decimal(av["N"])), tz=timezone.utc)
    return from_wire(av)


def _compressed_codec(annotation: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    base, _ = unwrap_optional(annotation)
    if base is str:

        def enc(v: Any) -> AttributeValue | None:
            return None if v is None else {"B": gzip.compress(v.encode("utf-8"), mtime=0)}

        def dec(av: Mapping[str, Any]) -> Any:
            if "B" in av:
                raw = wire_bytes(av["B"])
                return gzip.decompress(raw).decode("utf-8") if raw[:2] == _GZIP_MAGIC else raw
            return from_wire(av)

        return enc, dec
    if base is bytes:

        def enc_b(v: Any) -> AttributeValue | None:
            return None if v is None else {"B": gzip.compress(bytes(v), mtime=0)}

        def dec_b(av: Mapping[str, Any]) -> Any:
            if "B" in av:
                raw = wire_bytes(av["B"])
                return gzip.decompress(raw) if raw[:2] == _GZIP_MAGIC else raw
            return from_wire(av)

        return enc_b, dec_b
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)

    def enc_j(v: Any) -> AttributeValue | None:
        return None if v is None else {"B": gzip.compress(adapter.dump_json(v), mtime=0)}

    def dec_j(av: Mapping[str, Any]) -> Any:
        if "B" in av:
            raw = wire_bytes(av["B"])
            return json.loads(gzip.decompress(raw) if raw[:2] == _GZIP_MAGIC else raw)
        return from_wire(av)

    return enc_j, dec_j


Decoder = Callable[[Mapping[str, Any]], Any]


def _tagged(tag: str, convert: Callable[[Any], Any] | None = None) -> Decoder:
    """A decoder for values stored under one tag; anything else takes the generic path."""
    if convert is None:

        def plain(av: Mapping[str, Any]) -> Any:
            try:
                return av[tag]
            except KeyError:
                return from_wire(av)

        return plain

    def converted(av: Mapping[str, Any]) -> Any:
        try:
            raw = av[tag]
        except KeyError:
            return from_wire(av)
        return convert(raw)

    return converted


def _int_or_decimal(text: str) -> int | Decimal:
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


def decoder_for(annotation: Any, depth: int = 0) -> Decoder:
    """A decoder specialised for a type (compiled once per model; generic fallback)."""
    base, _ = unwrap_optional(annotation)
    if depth > 8:
        return from_wire
    if base is str:
        return _tagged("S")
    if base is bool:
        return _tagged("BOOL")
    if base is int:
        return _tagged("N", _int_or_decimal)
    if base is Decimal:
        return _tagged("N", Decimal)
    if base is float:
        return _tagged("N", float)
    origin = typing.get_origin(base)
    if isinstance(base, type) and issubclass(base, BaseModel):
        fields = [(n, decoder_for(f.annotation, depth + 1)) for n, f in base.model_fields.items()]

        def to_map(raw: Mapping[str, Any]) -> dict[str, Any]:
            return {n: dec(raw[n]) for n, dec in fields if n in raw}

        return _tagged("M", to_map)
    if origin is list:
        args = typing.get_args(base)
        item = decoder_for(args[0], depth + 1) if args else from_wire
        return _tagged("L", lambda raw: [item(v) for v in raw])
    if origin is dict:
        args = typing.get_args(base)
        value = decoder_for(args[1], depth + 1) if len(args) == 2 else from_wire
        return _tagged("M", lambda raw: {k: value(v) for k, v in raw.items()})
    return from_wire


def _encode_str(v: Any) -> AttributeValue | None:
    """The encoder of a `str` field: the value as an `S` attribute."""
    return None if v is None else {"S": v}


def _blob_encode(v: Any) -> AttributeValue | None:
    if v is None:
        return None
    if isinstance(v, BlobValue):
        return encode_pointer(v)
    raise ValueProblem(
        "is a blob field (fields.Blob()): its value is uploaded to S3 by save() on the "
        "instance; this write cannot upload it (use obj.save())"
    )


def _blob_decode(av: Mapping[str, Any]) -> Any:
    value = decode_pointer(av)
    return value if value is not None else from_wire(av)


def compile_field(name: str, attr: str, annotation: Any, kind: str | None) -> FieldCodec:
    """Build the codec of one field from its annotation and dynorm kind."""
    base, nullable = unwrap_optional(annotation)
    encode: Callable[[Any], AttributeValue | None] = to_wire
    decode: Callable[[Mapping[str, Any]], Any] = decoder_for(annotation)
    if kind == "ttl":
        encode, decode = _ttl_encode, _ttl_decode
    elif kind == "compressed":
        encode, decode = _compressed_codec(annotation)
    elif kind == "blob":
        encode, decode = _blob_encode, _blob_decode
    elif base is str:
        encode = _encode_str

    missing: Callable[[], Any] | None = None
    if nullable:
        missing = _none
    elif _is_set_type(base):
        missing = set
    return FieldCodec(name, attr, encode, decode, missing)


def _none() -> None:
    return None


class ModelCodec:
    """Encode instances of one model to items and decode items to field values."""

    def __init__(self, model_name: str, fields: Iterable[FieldCodec]) -> None:
        self.model_name = model_name
        self.fields = tuple(fields)
        self.by_name = {f.name: f for f in self.fields}
        #: Checks an item's schema version, upgrading an older one (`dynorm._migrations`).
        self.upgrade: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None

    def encode_field(self, name: str, value: Any) -> AttributeValue | None:
        """Encode one field value, naming model and field if DynamoDB cannot store it."""
        codec = self.by_name[name]
        try:
            return codec.encode(value)
        except ValueProblem as exc:
            raise invalid_value("store", self.model_name, name, exc) from None

    def encode(self, instance: BaseModel, overrides: Mapping[str, Any] | None = None) -> Item:
        """Return the item attributes for the instance's fields (keys are added by the caller)."""
        values = instance.__dict__
        item: Item = {}
        for f in self.fields:
            value = overrides[f.name] if overrides and f.name in overrides else values[f.name]
            try:
                av = f.encode(value)
            except ValueProblem as exc:
                raise invalid_value("store", self.model_name, f.name, exc) from None
            if av is not None:
                item[f.attr] = av
        return item

    def decode(self, item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """Return the field values stored in an item, ready for model validation."""
        if self.upgrade is not None:
            item = self.upgrade(item)
        data: dict[str, Any] = {}
        for f in self.fields:
            av = item.get(f.attr)
            if av is not None:
                data[f.name] = f.decode(av)
            elif f.missing is not None:
                data[f.name] = f.missing()
        return data
