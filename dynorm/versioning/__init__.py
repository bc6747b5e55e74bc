"""Versioned models: the current item plus one immutable history item per version.

- `_history_codec`: history sort keys and payloads (the layout is described there);
- `_history_reads`: reading one version, one object's history keys, `HistoryQuerySet`;
- `_querysets`: `VersionedQuerySet` (`get(version=)`, guarded deletes) and its manager;
- `_compile_writes`: the requests of versioned saves, deletes and pruning, composed from the
  write compiler's (pure: exact-dict tested);
- `_writes`: sending them: deleting an object with its whole history, pruning (in a save's
  transaction and after its commit), reading refusals;
- `model`: `VersionedModel` and its metaclass (saves with history, revert, diff).
"""

from ._history_codec import (
    HISTORY_KEY_OVERHEAD as HISTORY_KEY_OVERHEAD,
    _from_json as _from_json,
    _to_json as _to_json,
    decode_history as decode_history,
    history_item as history_item,
    history_prefix as history_prefix,
    history_sk as history_sk,
    parse_history_sk as parse_history_sk,
)
from ._history_reads import HistoryQuerySet, read_version as read_version
from ._querysets import VersionedQuerySet
from .model import VersionedModel, VersionedModelMeta as VersionedModelMeta

__all__ = ["HistoryQuerySet", "VersionedModel", "VersionedQuerySet"]
