"""DynamoDB Streams into models: `parse(event)` turns stream records into typed `Change`s.

```python
from dynorm import streams

def handler(event, context):               # an AWS Lambda on the table's stream
    for change in streams.parse(event, Order):
        if change.event_name == "MODIFY" and change.old.status != change.new.status:
            ...
```

Enable the stream with `dynorm.create_table(streams=True)` (NEW_AND_OLD_IMAGES).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Generic, Literal, cast, overload

from typing_extensions import TypeVar

from . import _registry
from ._constants import PK, SK, TYPE_ATTR
from .exceptions import ConfigurationError, InvalidValueError

if TYPE_CHECKING:
    from .models import Model

__all__ = ["Change", "EventName", "parse"]

M = TypeVar("M", bound="Model")
EventName = Literal["INSERT", "MODIFY", "REMOVE"]
_EVENTS = ("INSERT", "MODIFY", "REMOVE")


@dataclass(frozen=True)
class Change(Generic[M]):
    """One stream record of an item of `model`: what changed, and the item before and after.

    `old` is None for an INSERT, `new` for a REMOVE (and both for a stream without images).
    For dynorm's own items (history, ...), asked for with `internal=True`, `model` is the
    model they belong to and `old` / `new` are None: read `old_image` / `new_image`.
    """

    event_name: EventName
    #: The model of the item (for internal items: the model they belong to, or None).
    model: type[M] | None
    #: The stored entity type (`Order`, or `Page#history` for an internal item).
    entity_type: str
    #: The item's primary key as stored: `{"pk": ..., "sk": ...}`.
    keys: dict[str, str]
    old: M | None
    new: M | None
    #: The item before and after as DynamoDB JSON (None when the stream has no such image).
    old_image: dict[str, Any] | None = field(repr=False, default=None)
    new_image: dict[str, Any] | None = field(repr=False, default=None)
    event_id: str | None = None
    sequence_number: str | None = None
    approximate_time: datetime | None = None
    #: True for a REMOVE made by DynamoDB's TTL (not by a delete).
    by_ttl: bool = False

    @property
    def internal(self) -> bool:
        """Whether the item is dynorm's own bookkeeping (a history item, a guard, ...)."""
        return "#" in self.entity_type

    @property
    def instance(self) -> M | None:
        """The item as it is now: `new`, or `old` for a REMOVE."""
        return self.new if self.new is not None else self.old


@overload
def parse(event: Any, *, internal: bool = False) -> list[Change[Model]]: ...


@overload
def parse(
    event: Any, model: type[M], /, *models: type[M], internal: bool = False
) -> list[Change[M]]: ...


def parse(event: Any, *models: type[Any], internal: bool = False) -> list[Change[Any]]:
    """Turn stream records into `Change`s of the given models (default: every registered one).

    Args:
        event: A Lambda stream event (`{"Records": [...]}`), a `GetRecords` response of the
            `dynamodbstreams` client, or a list of their records.
        models: Keep only changes of these models (dispatched by the stored entity type).
        internal: Also return dynorm's own items (version history, ...); they are skipped
            by default. Items of entity types no model is registered for are always skipped.

    Raises:
        ConfigurationError: `event` holds no stream records, a record is not a DynamoDB
            stream record, or a model is mapped onto a table with physical names of its own
            (streams read dynorm's own layout).
    """
    for model in models:
        if not model._meta.layout.is_default:
            raise ConfigurationError(
                f"Cannot parse stream records into {model.__name__}: dynorm.streams reads "
                "dynorm's own layout (pk, sk, _type), and this model is mapped onto a table "
                "with names of its own, so none of its records would be recognised. Decode "
                "its images with Model.from_item(record['dynamodb']['NewImage']) instead.",
                code="config",
            )
    wanted = {m._meta.type_name: m for m in models} if models else None
    out: list[Change[Any]] = []
    for record in _records(event):
        change = _change(record, wanted, internal)
        if change is not None:
            out.append(change)
    return out


def _records(event: Any) -> Sequence[Mapping[str, Any]]:
    records = event.get("Records") if isinstance(event, Mapping) else event
    if not isinstance(records, Sequence) or isinstance(records, (str, bytes)):
        raise ConfigurationError(
            "Cannot parse a stream event without records: pass the Lambda event, a "
            "GetRecords response or its list of records.",
            code="config",
        )
    return cast("Sequence[Mapping[str, Any]]", records)


def _change(
    record: Mapping[str, Any], wanted: dict[str, type[Model]] | None, internal: bool
) -> Change[Any] | None:
    body = record.get("dynamodb")
    name = record.get("eventName")
    if not isinstance(body, Mapping) or name not in _EVENTS:
        raise ConfigurationError(
            "Cannot parse a record that is not a DynamoDB stream record (it needs "
            "'eventName' and 'dynamodb'); pass the records of a DynamoDB stream.",
            code="config",
        )
    new_image = _image(body.get("NewImage"))
    old_image = _image(body.get("OldImage"))
    keys_image = _image(body.get("Keys")) or {}
    image = new_image or old_image or keys_image
    pk, sk = _text(image.get(PK)), _text(image.get(SK))
    if pk is None or sk is None:
        return None  # not an item of a pk/sk table dynorm writes
    entity = _text(image.get(TYPE_ATTR))
    model: type[Model] | None
    if entity is None:  # a KEYS_ONLY stream: find the model whose key templates fit
        model = _by_key(pk, sk, wanted)
        if model is None:
            return None
        entity = model._meta.type_name
    else:
        owner = entity.split("#", 1)[0]
        model = _registry.get_model(owner)
        if model is None or (wanted is not None and wanted.get(owner) is not model):
            return None
    is_internal = "#" in entity
    if is_internal and not internal:
        return None
    old = new = None
    if not is_internal:
        old = None if old_image is None else _decode(model, old_image)
        new = None if new_image is None else _decode(model, new_image)
    identity = record.get("userIdentity") or {}
    return Change(
        event_name=name,
        model=model,
        entity_type=entity,
        keys={PK: pk, SK: sk},
        old=old,
        new=new,
        old_image=old_image,
        new_image=new_image,
        event_id=record.get("eventID"),
        sequence_number=body.get("SequenceNumber"),
        approximate_time=_time(body.get("ApproximateCreationDateTime")),
        by_ttl=identity.get("principalId") == "dynamodb.amazonaws.com",
    )


def _by_key(pk: str, sk: str, wanted: dict[str, type[Model]] | None) -> type[Model] | None:
    candidates: Iterable[type[Model]] = (
        wanted.values() if wanted is not None else _registry.all_models()
    )
    for model in candidates:
        if not model._meta.layout.is_default:
            continue  # streams read dynorm's own layout (a plain-value key fits any text)
        try:
            model.parse_key(pk, sk)
        except InvalidValueError:
            continue
        return model
    return None


def _decode(model: type[Model], image: dict[str, Any]) -> Model:
    return model.from_item(image)


def _text(value: Any) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("S"), str):
        return str(value["S"])
    return None


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):  # boto3's GetRecords
        utc = value.astimezone(timezone.utc) if value.tzinfo else None
        return utc or value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):  # a Lambda event: epoch seconds
        return datetime.fromtimestamp(value, tz=timezone.utc)
    return None


def _image(image: Any) -> dict[str, Any] | None:
    """An image as botocore returns items: a Lambda event's base64 binaries decoded."""
    if not isinstance(image, Mapping):
        return None
    return {name: _value(value) for name, value in image.items()}


def _value(value: Any) -> Any:
    if not isinstance(value, Mapping) or len(value) != 1:
        return value
    ((tag, inner),) = value.items()
    if tag == "B" and isinstance(inner, str):
        return {"B": base64.b64decode(inner)}
    if tag == "BS" and isinstance(inner, list):
        return {"BS": [base64.b64decode(v) if isinstance(v, str) else v for v in inner]}
    if tag == "M" and isinstance(inner, Mapping):
        return {"M": {k: _value(v) for k, v in inner.items()}}
    if tag == "L" and isinstance(inner, list):
        return {"L": [_value(v) for v in inner]}
    return {tag: inner}
