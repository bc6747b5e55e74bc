"""Cold start, PynamoDB: a fresh process imports PynamoDB, defines the Order model, points it
at the table and does one `Order.get(...)`.

Run by benchmarks/cold_start.py (whole-process wall time and peak RSS); see cold_raw_boto3.py
for the environment it reads. Prints the id.
"""

import os
import sys

from pynamodb_models import Order

env = os.environ
Order.Meta.host = env["BENCH_ENDPOINT"]
Order.Meta.table_name = env["BENCH_TABLE"]
order = Order.get(f"CUSTOMER#{env['BENCH_CUSTOMER']}", f"ORDER#{env['BENCH_ID']}")
print(order.id)

with open("/proc/self/status") as status:  # peak RSS (VmHWM) for cold_start.py
    sys.stderr.write(status.read())
