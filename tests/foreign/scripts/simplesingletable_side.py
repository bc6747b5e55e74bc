"""simplesingletable 22 side of the foreign-table proof (runs in its own virtualenv).

Reads `{"endpoint", "table", "region", "ops": [...]}` on stdin, prints one JSON result per op.
Its layout, read from its source (models.py, utils.py): the table has `pk`/`sk` (S) and the
GSIs `gsitype` (`gsitype`/`gsitypesk`), `gsi1` and `gsi2` (`gsi1pk`/`gsi2pk`, range `pk`) and
`gsi3`. A resource is one item, pk = sk = "<ClassName>#<resource_id>", its fields as
attributes (datetimes as `isoformat()` text, floats as numbers, empty sets left off),
`gsitype` = the class name and `gsitypesk` = `updated_at.isoformat()`. A versioned resource
(compression off here, see below) is one item per version, sk = "v<n>", plus the latest copy at
sk = "v0" (which alone has `gsitype` and the gsi attributes); `version` (N) is its lock: an
update puts v<n+1> (absent) and v0 (`version = n`) in one transaction.

`Doc` sets `compress_data=False`: a versioned resource is compressed by default (the whole
resource as gzip'd JSON in `data`), which dynorm can map only as one field (see
docs/migrating.md).

Ops (kind is "Task" or "Doc"):
- `{"op": "create_table"}`: `create_standard_dynamodb_table`.
- `{"op": "create", "kind", "items": [{"id", "data"}]}`: `create_new(..., override_id=id)`.
- `{"op": "read", "kind", "ids": [...], "version": 0}`: each resource as JSON, or null.
- `{"op": "update", "kind", "id", "data", "version": n?}`: `update_existing` from the stored
  resource (or, with `version`, from that version: stale on purpose); result: the new resource
  or the error class name.
- `{"op": "versions", "id"}`: `get_all_versions` of a Doc: its version numbers and bodies.
- `{"op": "by_status", "status"}`: Task ids found on gsi1; `{"op": "by_type", "kind"}`:
  ids from `list_type_by_updated_at`.
- `{"op": "delete", "kind", "ids"}`: `delete_existing` each.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from simplesingletable import DynamoDbMemory, DynamoDbResource, DynamoDbVersionedResource
from simplesingletable.models import ResourceConfig
from simplesingletable.utils import create_standard_dynamodb_table
from wire import dump, load


# The resources as simplesingletable declares them, unmodified: they forbid unknown attributes
# (`extra="forbid"`), so the dynorm side maps the table with `write_token_attribute=None`.
class Task(DynamoDbResource):
    title: str
    status: str = "open"
    points: int = 0
    ratio: Decimal | None = None
    done: bool = False
    tags: set[str] = set()
    blob: bytes | None = None
    due: datetime | None = None
    meta: dict[str, Any] = {}
    steps: list[str] = []

    def db_get_gsi1pk(self) -> str | None:
        return f"t|{self.status}"


class Doc(DynamoDbVersionedResource):
    body: str
    words: int = 0

    resource_config = ResourceConfig(compress_data=False)


KINDS: dict[str, Any] = {"Task": Task, "Doc": Doc}


def memory(request: dict[str, Any]) -> DynamoDbMemory:
    logger = logging.getLogger("foreign.simplesingletable")
    logger.setLevel(logging.WARNING)
    return DynamoDbMemory(
        logger=logger,
        table_name=request["table"],
        endpoint_url=request["endpoint"],
        connection_params={"region_name": request["region"]},
        track_stats=False,
    )


def as_json(resource: Any) -> Any:
    return None if resource is None else dump(resource.model_dump())


def run(mem: DynamoDbMemory, request: dict[str, Any], op: dict[str, Any]) -> Any:
    kind = op["op"]
    cls = KINDS.get(op.get("kind", ""))
    if kind == "create_table":
        resource = boto3.resource(
            "dynamodb", endpoint_url=request["endpoint"], region_name=request["region"]
        )
        create_standard_dynamodb_table(request["table"], resource)
        return True
    if kind == "create":
        return [
            as_json(mem.create_new(cls, load(item["data"]), override_id=item["id"]))
            for item in op["items"]
        ]
    if kind == "read":
        version = op.get("version", 0)
        return [
            as_json(mem.get_existing(i, cls, version=version, consistent_read=True))
            for i in op["ids"]
        ]
    if kind == "update":
        start = mem.get_existing(op["id"], cls, version=op.get("version", 0), consistent_read=True)
        try:
            return as_json(mem.update_existing(start, load(op["data"])))
        except Exception as exc:  # noqa: BLE001 - the test asserts on the class name
            return {"error": type(exc).__name__}
    if kind == "versions":
        found = mem.get_all_versions(op["id"], Doc)
        return [[d.version, d.body] for d in found]
    if kind == "by_status":
        page = mem.paginated_dynamodb_query(
            key_condition=Key("gsi1pk").eq(f"t|{op['status']}"),
            index_name="gsi1",
            resource_class=Task,
            results_limit=1000,
        )
        return [t.resource_id for t in page]
    if kind == "by_type":
        return [r.resource_id for r in mem.list_type_by_updated_at(cls, results_limit=1000)]
    if kind == "delete":
        for i in op["ids"]:
            mem.delete_existing(mem.get_existing(i, cls, consistent_read=True))
        return True
    raise ValueError(f"unknown op {kind!r}")


def main() -> None:
    request = json.load(sys.stdin)
    mem = memory(request)
    json.dump([run(mem, request, op) for op in request["ops"]], sys.stdout)


if __name__ == "__main__":
    main()
