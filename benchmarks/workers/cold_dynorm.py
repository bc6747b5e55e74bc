"""Cold start, dynorm: a fresh process imports dynorm, defines the Order model, configures
the table and does one `Order.objects.get(...)`. `$BENCH_TRANSPORT` picks the transport
("boto3", the default, or "http").

Run by benchmarks/cold_start.py (whole-process wall time and peak RSS); see cold_raw_boto3.py
for the environment it reads. Prints the id.
"""

import os
import sys

from dynorm_models import Order

import dynorm

env = os.environ
dynorm.configure(
    table_name=env["BENCH_TABLE"],
    endpoint_url=env["BENCH_ENDPOINT"],
    region_name="us-east-1",
    transport=env.get("BENCH_TRANSPORT", "boto3"),
)
order = Order.objects.get(customer_id=env["BENCH_CUSTOMER"], id=env["BENCH_ID"])
print(order.id)

with open("/proc/self/status") as status:  # peak RSS (VmHWM) for cold_start.py
    sys.stderr.write(status.read())
