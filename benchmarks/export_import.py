"""Export / import throughput: `dynorm.tooling` against a plain boto3 scan + batch_write.

    python benchmarks/export_import.py                       # 50,000 items (the issue's run)
    python benchmarks/export_import.py --items 500           # a smoke run

Fills a source table with N Order-like items (boto3 batch_write_item), then times, in the
same run and on the same DynamoDB Local:

- export: `dynorm.tooling.export_items()` (parallel segments) vs a plain boto3 `scan`
  loop writing the same JSON Lines;
- import: `dynorm.tooling.import_items()` (validated through the model, conditional
  TransactWriteItems batches, checkpointed) vs a plain `batch_write_item` loop of the
  exported items (no validation, no conditions: it overwrites).

Reports items/s for each and the ratio. Starts DynamoDB Local (dynorm's launcher) unless
$DYNORM_ENDPOINT_URL or --endpoint names one. The target of the issue is >= 2x for export
(parallel segments); import does strictly more work per item than the baseline (validation,
conditions, transactions), so its ratio is reported as it is.
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


def client(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "bench"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "bench"),
    )


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
    print(f"  {label:<34} {n:>7} items  {seconds:7.2f} s  {n / seconds:9,.0f} items/s")
    return n, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--endpoint", default=os.environ.get("DYNORM_ENDPOINT_URL"))
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
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
    try:
        for name in names.values():
            dynorm.configure(table_name=name, endpoint_url=endpoint, client=raw)
            dynorm.create_table([BenchOrder])
        print(f"filling {names['source']} with {args.items} items ...")
        fill(raw, names["source"], args.items)
        with tempfile.TemporaryDirectory() as tmp:
            ours, theirs = Path(tmp) / "dynorm.jsonl", Path(tmp) / "boto3.jsonl"
            dynorm.configure(table_name=names["source"], endpoint_url=endpoint, client=raw)
            print("export")
            _, d_exp = timed(
                f"dynorm export_items ({args.segments} segments)",
                lambda: export_items(ours, [BenchOrder], segments=args.segments).items,
            )
            _, b_exp = timed("boto3 scan loop", lambda: boto3_export(raw, names["source"], theirs))
            print("import")
            dynorm.configure(table_name=names["dynorm"], endpoint_url=endpoint, client=raw)
            _, d_imp = timed(
                f"dynorm import_items ({args.workers} workers)",
                lambda: import_items(ours, workers=args.workers).written,
            )
            _, b_imp = timed(
                "boto3 batch_write_item loop", lambda: boto3_import(raw, names["boto3"], theirs)
            )
        print(f"export: dynorm is {b_exp / d_exp:.2f}x the boto3 loop's throughput")
        print(f"import: dynorm is {b_imp / d_imp:.2f}x the boto3 loop's throughput")
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
