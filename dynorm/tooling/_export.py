"""`dynorm export`: every item of the chosen models (or of the whole table) as JSON Lines.

Export is an explicit Scan (that is what it is): parallel segments, each paging on its own
thread. One line per item, `{"type": "<entity type>", "item": {<DynamoDB JSON>}}`: the
stored attributes with their type tags (bytes as base64), so the file is lossless for every
field type and `import_items()` validates each line through its model before writing it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .._config import get_connection
from .._constants import TYPE_ATTR
from .._table import _chosen
from ..exceptions import ConfigurationError, ThrottledError
from ..models import Model
from ..query.placeholders import Placeholders
from ..versioning._history_codec import _from_json, _to_json
from ..versioning.model import VersionedModel

__all__ = ["ExportResult", "Progress", "export_items", "item_from_json", "item_to_json"]

#: Called with the number of items just handled (export, import, backfill).
Progress = Callable[[int], None]

_HISTORY_SUFFIX = "#history"


def item_to_json(item: Mapping[str, Any]) -> dict[str, Any]:
    """A stored item as JSON: every attribute with its type tag, bytes as base64 text."""
    return {name: _to_json(value) for name, value in item.items()}


def item_from_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """The item `item_to_json` wrote (bytes back as bytes)."""
    return {name: _from_json(value) for name, value in data.items()}


@dataclass
class ExportResult:
    """What `export_items()` wrote.

    Attributes:
        items: Lines written (one per item).
        by_type: Lines per entity type (`"Order"`, `"Doc#history"`, ...; `""` for items
            without one).
    """

    items: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


def _types(models: Iterable[type[Model]], history: bool) -> list[str]:
    names: list[str] = []
    for model in models:
        names.append(model._meta.type_name)
        if history and issubclass(model, VersionedModel):
            names.append(model._meta.type_name + _HISTORY_SUFFIX)
    return names


@contextmanager
def _opened(out: str | Path | IO[str]) -> Iterator[IO[str]]:
    if isinstance(out, (str, Path)):
        with open(out, "w", encoding="utf-8") as handle:
            yield handle
    else:
        yield out


def export_items(
    out: str | Path | IO[str],
    models: Iterable[type[Model]] | None = None,
    *,
    segments: int = 4,
    history: bool = True,
    progress: Progress | None = None,
) -> ExportResult:
    """Write every item of the models (default: the whole table) to `out` as JSON Lines.

    Args:
        out: A path, or a text file open for writing.
        models: Export only the items of these models (a filter on the entity type);
            None exports every item of the table, whatever its type, history items of
            versioned models included.
        segments: Parallel scan segments (threads), 1 to 64.
        history: With `models`, also export the history items of the versioned ones.
        progress: Called with the number of items of each page written.

    Returns:
        How many items were written, per entity type.

    DynamoDB: Scan (consistent reads, `segments` in parallel), with a FilterExpression on
    `_type` when `models` is given.
    """
    if not 1 <= segments <= 64:
        raise ConfigurationError(
            f"Cannot export with {segments} scan segments: use 1 to 64.", code="config"
        )
    params: dict[str, Any] = {"ConsistentRead": True}
    if models is not None:
        ph = Placeholders()
        chosen = _chosen(models)
        for model in chosen:
            if not model._meta.layout.is_default:
                raise ConfigurationError(
                    f"Cannot export {model.__name__}: dynorm export reads dynorm's own layout "
                    "(pk, sk, _type, version), and this model is mapped onto a table with "
                    "names of its own, so its items would not be found. Export that table "
                    "with the AWS tools (or iterate `Model.objects.scan()`), or "
                    "leave the model out.",
                    code="config",
                )
        names = _types(chosen, history)
        values = ", ".join(ph.value({"S": n}) for n in names)
        params["FilterExpression"] = f"{ph.name(TYPE_ATTR)} IN ({values})"
        ph.apply(params)
    conn = get_connection()
    params["TableName"] = conn.table_name
    result = ExportResult()
    lock = threading.Lock()

    def segment(number: int, handle: IO[str]) -> None:
        request = {**params, "Segment": number, "TotalSegments": segments}
        delay = 0.05
        while True:
            try:
                page = conn.send_raw("Scan", request)
            except ThrottledError:  # botocore retried already: back off, then again
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.05
            lines = []
            counts: dict[str, int] = {}
            for item in page.get("Items", []):
                kind = str(item.get(TYPE_ATTR, {}).get("S", ""))
                counts[kind] = counts.get(kind, 0) + 1
                line = {"type": kind, "item": item_to_json(item)}
                lines.append(json.dumps(line, separators=(",", ":"), ensure_ascii=False))
            with lock:
                if lines:
                    handle.write("\n".join(lines) + "\n")
                result.items += len(lines)
                for kind, n in counts.items():
                    result.by_type[kind] = result.by_type.get(kind, 0) + n
            if progress is not None and lines:
                progress(len(lines))
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = item_from_json(last)

    with _opened(out) as handle, ThreadPoolExecutor(segments) as pool:
        for future in [pool.submit(segment, n, handle) for n in range(segments)]:
            future.result()
    return result
