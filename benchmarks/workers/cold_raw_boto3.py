"""Cold start, raw boto3: a fresh process imports boto3, makes a client, does one GetItem.

Run by benchmarks/cold_start.py (whole-process wall time and peak RSS); the key and the
endpoint come from $BENCH_ENDPOINT, $BENCH_TABLE, $BENCH_CUSTOMER, $BENCH_ID. Prints the id.
"""

import os
import sys

import boto3
from boto3.dynamodb.types import TypeDeserializer

env = os.environ
client = boto3.client("dynamodb", endpoint_url=env["BENCH_ENDPOINT"], region_name="us-east-1")
response = client.get_item(
    TableName=env["BENCH_TABLE"],
    Key={
        "pk": {"S": f"CUSTOMER#{env['BENCH_CUSTOMER']}"},
        "sk": {"S": f"ORDER#{env['BENCH_ID']}"},
    },
)
deserializer = TypeDeserializer()
item = {k: deserializer.deserialize(v) for k, v in response["Item"].items()}
print(item["id"])

with open("/proc/self/status") as status:  # peak RSS (VmHWM) for cold_start.py
    sys.stderr.write(status.read())
