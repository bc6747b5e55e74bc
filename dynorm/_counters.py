"""Per-type counts (`Meta.counted`): sharded counter items written with each create and delete.

A counted model's count lives in `SHARDS` counter items, one partition key each
(`_COUNT#<type>#<n>`, sort key `_COUNT`, attribute `_count`). Every create adds 1 to one
shard and every delete adds -1, in the same TransactWriteItems as the object (see
`_companions`): a refused or cancelled write changes no count, and a retried write whose
first attempt was applied is refused by its own condition, so it is never counted twice.
An object always counts on the same shard (a hash of its key), so a create and a delete
of one object touch one item. `stats()` reads every shard in one BatchGetItem; `stats_of`
sums them.

Why 10 shards: DynamoDB serves at most 1,000 write units a second per partition key, and a
transactional write of a small counter item costs 2, so one counter item takes about 500
counted writes a second; ten take about 5,000 counted creates and deletes a second of one
type, more than most tables' provisioned or on-demand warm capacity, while a read of the
count stays one small BatchGetItem (10 keys, 10 read units when consistent).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._keys import KeyTemplate
from ._options import Options
from ._request import Request
from .query._compile_write import Add, Unconditional, compile_write

__all__ = [
    "COUNT_ATTR",
    "SHARDS",
    "Stats",
    "count_write",
    "merge_counts",
    "stats_of",
    "shard_keys",
]

#: How many counter items a counted model's count is spread over (see the module docstring).
SHARDS = 10
COUNT_ATTR = "_count"
_SHARD_SK = "_COUNT"
_TEMPLATES: dict[str, KeyTemplate] = {}


@dataclass(frozen=True)
class Stats:
    """What `objects.stats()` reads: the number of stored objects of the model."""

    count: int


def _template(meta: Options) -> KeyTemplate:
    template = _TEMPLATES.get(meta.type_name)
    if template is None:
        template = KeyTemplate(
            f"_COUNT#{meta.type_name}#{{shard}}", meta.model_name, ["shard"], "counter shard"
        )
        _TEMPLATES[meta.type_name] = template
    return template


def counter_type(meta: Options) -> str:
    """The entity type of a model's counter items (`<type>#count`: never a model's own)."""
    return f"{meta.type_name}#count"


def shard_keys(meta: Options) -> list[tuple[str, str]]:
    """The keys of every counter shard of a counted model."""
    keys = []
    for shard in range(SHARDS):
        pk = meta.key_value(_template(meta), {"shard": str(shard)}, "counter shard")
        assert pk is not None
        keys.append((pk, _SHARD_SK))
    return keys


def shard_of(key: tuple[str, str]) -> int:
    """The shard an object counts on: a stable hash of its primary key."""
    digest = hashlib.blake2b(f"{key[0]}\x00{key[1]}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % SHARDS


def count_write(meta: Options, key: tuple[str, str], delta: int) -> Request:
    """The counter write of one create (+1) or delete (-1) of the object under `key`."""
    shard = shard_keys(meta)[shard_of(key)]
    sets = {"_type": {"S": counter_type(meta)}}
    return compile_write(meta, Add(shard, {COUNT_ATTR: delta}, sets), Unconditional())


def stats_of(found: Mapping[tuple[str, str], Any]) -> Stats:
    """The stats of a counted model from its shards as read (by key; missing: 0)."""
    total = 0
    for item in found.values():
        if isinstance(item, dict) and COUNT_ATTR in item:
            total += int(item[COUNT_ATTR]["N"])
    return Stats(count=total)


def _is_counter(body: Mapping[str, Any]) -> bool:
    """A counter shard's write: key `(_COUNT#..., _SHARD_SK)` under any key attribute names."""
    texts = [str(v.get("S", "")) for v in body.get("Key", {}).values()]
    return (
        "UpdateExpression" in body
        and "ConditionExpression" not in body
        and len(texts) == 2
        and _SHARD_SK in texts
        and any(t.startswith("_COUNT#") for t in texts)
    )


def _delta_token(body: Mapping[str, Any]) -> str:
    """The placeholder of a counter write's delta: its last value (see `count_write`)."""
    return str(max(body["ExpressionAttributeValues"], key=lambda t: int(t[2:])))


def merge_counts(items: list[dict[str, Any]], owner: list[int]) -> None:
    """Merge a transaction's counter writes of one shard into one action (in place).

    Several creates or deletes in one block may count on the same shard; DynamoDB refuses
    a transaction that touches an item twice, so their deltas are added into the first.
    """
    first: dict[tuple[str, str, str], dict[str, Any]] = {}
    keep: list[int] = []
    for index, action in enumerate(items):
        body = action.get("Update")
        if body is None or not _is_counter(body):
            keep.append(index)
            continue
        pk, sk = sorted(str(v["S"]) for v in body["Key"].values())
        where = (body["TableName"], pk, sk)
        earlier = first.get(where)
        if earlier is None:
            first[where] = body
            keep.append(index)
            continue
        token = _delta_token(earlier)
        total = int(earlier["ExpressionAttributeValues"][token]["N"])
        total += int(body["ExpressionAttributeValues"][_delta_token(body)]["N"])
        values = dict(earlier["ExpressionAttributeValues"])
        values[token] = {"N": str(total)}
        earlier["ExpressionAttributeValues"] = values
    items[:] = [items[i] for i in keep]
    owner[:] = [owner[i] for i in keep]
