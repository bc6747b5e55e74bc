"""PynamoDB 6.1 side of the foreign-table proof (runs in its own virtualenv, see venvs.py).

Reads a JSON request on stdin: `{"endpoint", "table", "region", "ops": [...]}` and prints one
JSON result per op. The model is PynamoDB's own, declared the PynamoDB way: a hash and range
key under other attribute names, a GSI and an LSI, every attribute type of the library, a
`VersionAttribute` and a `TTLAttribute`.

Ops:
- `{"op": "create_table"}`: `Thread.create_table()` (the table, its GSI and its LSI).
- `{"op": "save", "items": [{...}]}`: `Thread(**item).save()` each (an item with a `version`
  is saved conditional on that version, as PynamoDB does); result: each saved version, or the
  error class name and its cause's code.
- `{"op": "get", "keys": [[forum, subject], ...]}`: each item as JSON, or null.
- `{"op": "update", "key": [forum, subject], "set": {...}}`: get, assign, `save()` (version
  checked); result as for save.
- `{"op": "query_lsi", "forum": f, "views_gt": n}` / `{"op": "query_gsi", "author": a}`:
  the subjects found, in index order.
- `{"op": "delete", "keys": [...]}`: `Thread.get(...).delete()` (version checked).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    BinarySetAttribute,
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    NumberSetAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.exceptions import PynamoDBException
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex
from pynamodb.models import Model
from wire import dump, load


class Profile(MapAttribute[str, Any]):
    name = UnicodeAttribute()
    karma = NumberAttribute(default=0)


def build(request: dict[str, Any]) -> type[Model]:
    class ViewsIndex(LocalSecondaryIndex[Any]):
        class Meta:
            index_name = "ViewsIndex"
            projection = AllProjection()

        forum = UnicodeAttribute(hash_key=True, attr_name="ForumName")
        views = NumberAttribute(range_key=True, attr_name="Views")

    class AuthorIndex(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "AuthorIndex"
            projection = AllProjection()
            billing_mode = "PAY_PER_REQUEST"

        author = UnicodeAttribute(hash_key=True, attr_name="Author")
        views = NumberAttribute(range_key=True, attr_name="Views")

    class Thread(Model):
        class Meta:
            table_name = request["table"]
            host = request["endpoint"]
            region = request["region"]
            billing_mode = "PAY_PER_REQUEST"

        forum = UnicodeAttribute(hash_key=True, attr_name="ForumName")
        subject = UnicodeAttribute(range_key=True, attr_name="Subject")
        views = NumberAttribute(default=0, attr_name="Views")
        author = UnicodeAttribute(null=True, attr_name="Author")
        score = NumberAttribute(null=True)
        body = UnicodeAttribute(null=True)
        payload = BinaryAttribute(null=True, legacy_encoding=False)
        pinned = BooleanAttribute(default=False)
        last_post = UTCDateTimeAttribute(null=True, attr_name="LastPostDateTime")
        tags = UnicodeSetAttribute(null=True)
        ranks = NumberSetAttribute(null=True)
        chunks = BinarySetAttribute(null=True, legacy_encoding=False)
        replies = ListAttribute(of=UnicodeAttribute, null=True)
        mixed = ListAttribute(null=True)
        extra = MapAttribute(null=True)
        profile = Profile(null=True)
        settings = JSONAttribute(null=True)
        version = VersionAttribute(attr_name="Version")
        expires = TTLAttribute(null=True)

        views_index = ViewsIndex()
        author_index = AuthorIndex()

    return Thread


def as_json(thread: Model | None) -> Any:
    if thread is None:
        return None
    out: dict[str, Any] = {}
    for name in type(thread).get_attributes():
        value = getattr(thread, name)
        if isinstance(value, MapAttribute):
            value = value.as_dict()
        elif isinstance(value, list):
            value = [v.as_dict() if isinstance(v, MapAttribute) else v for v in value]
        out[name] = dump(value)
    return out


def _assign(thread: Model, values: dict[str, Any]) -> None:
    for name, value in values.items():
        if name == "profile" and value is not None:
            value = Profile(**value)
        setattr(thread, name, value)


def saved(thread: Model) -> dict[str, Any]:
    try:
        thread.save()
    except PynamoDBException as exc:
        return {"error": type(exc).__name__, "code": exc.cause_response_code}
    return {"version": thread.version}


def run(thread_cls: Any, op: dict[str, Any]) -> Any:
    kind = op["op"]
    if kind == "create_table":
        thread_cls.create_table(wait=True)
        return True
    if kind == "save":
        results = []
        for raw in op["items"]:
            thread = thread_cls()
            _assign(thread, load(raw))
            results.append(saved(thread))
        return results
    if kind == "get":
        out = []
        for key in op["keys"]:
            try:
                out.append(as_json(thread_cls.get(*key, consistent_read=True)))
            except thread_cls.DoesNotExist:
                out.append(None)
        return out
    if kind == "update":
        thread = thread_cls.get(*op["key"], consistent_read=True)
        _assign(thread, load(op["set"]))
        return saved(thread)
    if kind == "query_lsi":
        found = thread_cls.views_index.query(op["forum"], thread_cls.views > op["views_gt"])
        return [t.subject for t in found]
    if kind == "query_gsi":
        return [t.subject for t in thread_cls.author_index.query(op["author"])]
    if kind == "delete":
        results = []
        for key in op["keys"]:
            try:
                thread_cls.get(*key).delete()
                results.append({"deleted": True})
            except PynamoDBException as exc:
                results.append({"error": type(exc).__name__})
        return results
    raise ValueError(f"unknown op {kind!r}")


def main() -> None:
    request = json.load(sys.stdin)
    thread_cls = build(request)
    json.dump([run(thread_cls, op) for op in request["ops"]], sys.stdout)


if __name__ == "__main__":
    main()
