"""Export / import throughput: `dynorm.tooling` against a plain boto3 scan + batch_write.

    python benchmarks/export_import.py                       # 50,000 items (the issue's run)
    python benchmarks/export_import.py --items 500           # a smoke run

Fills a source table with N Order-like items (boto3 batch_write_item), then times, in the
same run and on the same DynamoDB Local:

- export: `dynorm.tooling.export_items()` (parallel segments) vs a plain boto3 `scan`
  loop writing the same JSON Lines;
- import: `dynorm.tooling.import_items()` in its default mode (validated through the
  model, conditional: an item already stored is never overwritten, checkpointed) into an
  empty table vs a plain `batch_write_item` loop of the exported items into another empty
  table (no validation, no conditions: it would overwrite);
- import with overwrite: `import_items(overwrite=True)` over the table it just filled
  (every item replaced, each still recognised when a resumed run sent it before) vs the
  same `batch_write_item` loop over its filled table;
- the round trip: export + import (default mode) against the baseline's scan + batch_write.

Reports items/s for each and the ratio (dynorm's throughput / the baseline's). dynorm
creates its own client (its default); the baseline uses a plain boto3 client. Starts
DynamoDB Local (dynorm's launcher) unless $DYNORM_ENDPOINT_URL or --endpoint names one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import boto3  # noqa: E402

import dynorm  # noqa: E402
from dynorm import Index, Model, fields  # noqa: E402
from dynorm.query._compile_write import model_item  # noqa: E402
from dynorm.tooling import export_items, import_items, item_to_json  # noqa: E402


class BenchOrder(Model):
    id: str = fields.ULID()
    customer_id: str
    status: str = "open"
    total: Decimal
    tags: set[str] = set()
    note: str = ""

    class Meta:
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{id}"
        indexes = [Index("by_status", pk="STATUS#{status}", sk="{id}")]


# DynamoDB Local keeps one database per access key and region: dynorm's own client and the
# baseline's must share them (both read these from the environment).
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def client(endpoint: str) -> Any:
    """The baseline's plain boto3 client."""
    return boto3.client("dynamodb", endpoint_url=endpoint)


def fill(raw: Any, table: str, count: int) -> None:
    batch: list[dict[str, Any]] = []
    for n in range(count):
        order = BenchOrder(
            customer_id=f"c{n % 500}", total=Decimal(n) / 100, tags={"a", f"t{n % 7}"},
            note="x" * 200, status=("open", "paid")[n % 2],
        )  # fmt: skip
        batch.append({"PutRequest": {"Item": model_item(BenchOrder._meta, order.__dict__,
                                                          token=None)}})  # fmt: skip
        if len(batch) == 25 or n == count - 1:
            pending = {table: batch}
            while pending:
                pending = raw.batch_write_item(RequestItems=pending).get("UnprocessedItems")
            batch = []


def boto3_export(raw: Any, table: str, path: Path) -> int:
    n = 0
    params: dict[str, Any] = {"TableName": table}
    with open(path, "w", encoding="utf-8") as out:
        while True:
            page = raw.scan(**params)
            for item in page["Items"]:
                out.write(json.dumps({"type": "BenchOrder", "item": item_to_json(item)}) + "\n")
                n += 1
            if "LastEvaluatedKey" not in page:
                return n
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def boto3_import(raw: Any, table: str, path: Path) -> int:
    from dynorm.tooling import item_from_json

    n = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        pending: Any = {table: batch}
        while pending:
            pending = raw.batch_write_item(RequestItems=pending).get("UnprocessedItems")

    with open(path, encoding="utf-8") as lines:
        for line in lines:
            batch.append({"PutRequest": {"Item": item_from_json(json.loads(line)["item"])}})
            n += 1
            if len(batch) == 25:
                flush()
                batch = []
    if batch:
        flush()
    return n


def timed(label: str, func: Any) -> tuple[int, float]:
    start = time.perf_counter()
    n = func()
    seconds = time.perf_counter() - start
    print(f"  {label:<44} {n:>7} items  {seconds:7.2f} s  {n / seconds:9,.0f} items/s")
    return n, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--endpoint", default=os.environ.get("DYNORM_ENDPOINT_URL"))
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()

    server = None
    endpoint = args.endpoint
    if not endpoint:
        from dynorm.testing import _local

        server = _local.start_local(warn=False)
        endpoint = server.endpoint
    raw = client(endpoint)
    prefix = f"bench-ei-{uuid.uuid4().hex[:6]}"
    names = {k: f"{prefix}-{k}" for k in ("source", "dynorm", "boto3")}

    def use(table: str) -> None:  # dynorm's own client: what `dynorm import` runs on
        dynorm.configure(table_name=table, endpoint_url=endpoint)

    def importing(**options: Any) -> int:
        result = import_items(ours, workers=args.workers, batch_size=args.batch_size, **options)
        assert not result.invalid_count and result.written == args.items, result
        return result.written

    try:
        for name in names.values():
            use(name)
            dynorm.create_table([BenchOrder])
        print(f"filling {names['source']} with {args.items} items ...")
        fill(raw, names["source"], args.items)
        with tempfile.TemporaryDirectory() as tmp:
            ours, theirs = Path(tmp) / "dynorm.jsonl", Path(tmp) / "boto3.jsonl"
            use(names["source"])
            print("export")
            _, d_exp = timed(
                f"dynorm export_items ({args.segments} segments)",
                lambda: export_items(ours, [BenchOrder], segments=args.segments).items,
            )
            _, b_exp = timed("boto3 scan loop", lambda: boto3_export(raw, names["source"], theirs))
            print("import into an empty table")
            use(names["dynorm"])
            label = f"dynorm import_items ({args.workers} workers, {args.batch_size}/batch)"
            _, d_imp = timed(label, importing)
            _, b_imp = timed(
                "boto3 batch_write_item loop", lambda: boto3_import(raw, names["boto3"], theirs)
            )
            print("import over the filled table, replacing every item")
            _, d_over = timed(
                "dynorm import_items(overwrite=True)", lambda: importing(overwrite=True)
            )
            _, b_over = timed(
                "boto3 batch_write_item loop", lambda: boto3_import(raw, names["boto3"], theirs)
            )
        rows = [
            ("export", b_exp / d_exp),
            ("import (default: never overwrites)", b_imp / d_imp),
            ("import --overwrite over stored items", b_over / d_over),
            ("round trip (export + import)", (b_exp + b_imp) / (d_exp + d_imp)),
        ]
        print("dynorm's throughput / the boto3 loop's")
        for what, ratio in rows:
            print(f"  {what:<44} {ratio:5.2f}x")
    finally:
        for name in names.values():
            try:
                raw.delete_table(TableName=name)
            except Exception:  # noqa: BLE001 - cleanup of a benchmark table
                pass
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
