"""History keys and payloads: the codec of a versioned model's history items.

Layout in the table (same partition as the current item):

- current item: the model's own `pk`/`sk`, index keys, every field;
- history item per version n: `sk = "_history#" + escape(current sk) + "!" + n` (n
  zero-padded to 12 digits), entity type `"<type>#history"`, and a `payload` holding the
  stored attributes, gzip-compressed JSON as binary when `Meta.compress` (default), else a
  map. History items carry no index keys.

The current sort key is embedded with the key codec's escape (`dynorm._keys.escape`), whose
output never holds a character up to `$` other than its own `$XX` escapes. So:

- the first `!` after the prefix ends the embedded key: one object's history prefix is never
  a prefix of another object's history keys (`"a"` and `"a#b"` included), and a history key
  parses back into exactly one (current sk, version);
- no item rendered from field values can take a history key: values never hold a raw `!`,
  and key templates follow each field with `#`, never `!` (a template would have to spell
  the object's escaped key, `!` included, as literal text).
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from .._codec import wire_bytes
from .._constants import PK, SK, SORT_KEY_LIMIT, TYPE_ATTR, VERSION_ATTR
from .._item_size import check_item_size
from .._keys import SEPARATOR, escape, unescape
from ..exceptions import InvalidValueError
from ..models import Model

M = TypeVar("M", bound=Model)

_HISTORY = "_history" + SEPARATOR
#: Ends the embedded current sort key: escaped text never holds it, templates never render it.
_END = "!"
_DIGITS = 12
_PAYLOAD = "payload"
_GZIP_MAGIC = b"\x1f\x8b"
#: Bytes a history sort key adds to the escaped current sort key ("_history#", "!", digits).
HISTORY_KEY_OVERHEAD = len(_HISTORY) + len(_END) + _DIGITS

# --------------------------------------------------------------------------- history keys


def history_prefix(current_sk: str) -> str:
    """The sort-key prefix of every history item of one current item (and of no other)."""
    return f"{_HISTORY}{escape(current_sk)}{_END}"


def history_sk(current_sk: str, version: int) -> str:
    """The sort key of version `version` (zero-padded: text order is numeric order)."""
    if not 0 <= version < 10**_DIGITS:
        raise ValueError(f"a history version must be between 0 and {10**_DIGITS - 1}")
    return f"{history_prefix(current_sk)}{version:0{_DIGITS}d}"


def parse_history_sk(text: str) -> tuple[str, int]:
    """Split a history sort key into (current sk, version); ValueError if it is not one."""
    if not text.startswith(_HISTORY):
        raise ValueError("not a history sort key")
    escaped, end, digits = text[len(_HISTORY) :].partition(_END)
    if not end or len(digits) != _DIGITS or not (digits.isascii() and digits.isdigit()):
        raise ValueError("not a history sort key")
    current = unescape(escaped)
    if escape(current) != escaped:  # a text escape() never writes (e.g. a bare "$")
        raise ValueError("not a history sort key")
    return current, int(digits)


def _checked_history_sk(model: type[Model], current_sk: str, version: int) -> str:
    """`history_sk`, refused (before anything is sent) when it is over DynamoDB's limit."""
    text = history_sk(current_sk, version)
    size = len(text.encode("utf-8"))
    if size > SORT_KEY_LIMIT:
        meta = model._meta
        assert meta.sk is not None
        fields = ", ".join(meta.sk.fields) or "the sort key template"
        raise InvalidValueError(
            f"Cannot build the history sort key of {meta.model_name}: it would be "
            f"{size} bytes, over DynamoDB's {SORT_KEY_LIMIT}-byte limit. A versioned model's "
            f"history key is the sort key escaped (each character up to '$' takes 3 bytes) "
            f"plus {HISTORY_KEY_OVERHEAD} bytes, so its sort key must stay about "
            f"{HISTORY_KEY_OVERHEAD} bytes (or more, once escaped) under the limit; shorten "
            f"{fields}.",
            model=meta.model_name,
        )
    return text


def _history_type(model: type[Model]) -> str:
    return f"{model._meta.type_name}#history"


# --------------------------------------------------------------------------- payloads


def _to_json(av: Mapping[str, Any]) -> dict[str, Any]:
    """One attribute value as JSON: its type tag kept, bytes as base64 text.

    The tag says how to read the value back, so no content is ever taken for a marker (a
    map key such as "__b64__" is just a key): `_from_json(_to_json(av)) == av` for every
    attribute value.
    """
    ((tag, value),) = av.items()
    if tag == "B":
        return {"B": base64.b64encode(wire_bytes(value)).decode("ascii")}
    if tag == "BS":
        return {"BS": [base64.b64encode(wire_bytes(v)).decode("ascii") for v in value]}
    if tag == "M":
        return {"M": {k: _to_json(v) for k, v in value.items()}}
    if tag == "L":
        return {"L": [_to_json(v) for v in value]}
    return {tag: value}


def _from_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """The attribute value `_to_json` wrote."""
    ((tag, value),) = data.items()
    if tag == "B":
        return {"B": base64.b64decode(value)}
    if tag == "BS":
        return {"BS": [base64.b64decode(v) for v in value]}
    if tag == "M":
        return {"M": {k: _from_json(v) for k, v in value.items()}}
    if tag == "L":
        return {"L": [_from_json(v) for v in value]}
    return {tag: value}


def _payload_json(body: Mapping[str, Any]) -> bytes:
    return json.dumps({k: _to_json(v) for k, v in body.items()}, separators=(",", ":")).encode()


def _payload_body(raw: bytes) -> dict[str, Any]:
    return {k: _from_json(v) for k, v in json.loads(raw).items()}


def history_item(model: type[Model], item: dict[str, Any], version: int) -> dict[str, Any]:
    """Build the history item of one version from the current item as it will be stored."""
    meta = model._meta
    # Leave out exactly the keys (a field may well be named "gsize": it is kept).
    keys = {PK, SK, *(a for i in meta.indexes.values() for a in (i.pk_attr, i.sk_attr))}
    body = {k: v for k, v in item.items() if k not in keys}
    if meta.extra["raw"].get("compress", True):
        payload: dict[str, Any] = {"B": gzip.compress(_payload_json(body), mtime=0)}
    else:
        payload = {"M": body}
    out = {
        PK: item[PK],
        SK: {"S": _checked_history_sk(model, item[SK]["S"], version)},
        TYPE_ATTR: {"S": _history_type(model)},
        VERSION_ATTR: {"N": str(version)},
        _PAYLOAD: payload,
    }
    check_item_size(out, f"{meta.model_name} (history)")
    return out


def decode_history(model: type[M], item: dict[str, Any]) -> M:
    """Turn a history item back into a model instance of that version."""
    payload = item[_PAYLOAD]
    if "B" in payload:
        data = wire_bytes(payload["B"])
        if data[:2] == _GZIP_MAGIC:
            data = gzip.decompress(data)
        body = _payload_body(data)
    else:
        body = dict(payload["M"])
    current_sk, _ = parse_history_sk(item[SK]["S"])
    body[PK], body[SK] = item[PK], {"S": current_sk}
    return model.from_item(body)
