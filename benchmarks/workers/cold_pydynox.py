"""Cold start, pydynox: a fresh process imports pydynox, defines the Order model, gives it a
client and its table and does one `Order.sync_get(...)`.

Run by benchmarks/cold_start.py (whole-process wall time and peak RSS); see cold_raw_boto3.py
for the environment it reads. Prints the id.
"""

import os
import sys

from pydynox_models import Order, connect

env = os.environ
connect(env["BENCH_ENDPOINT"], env["BENCH_TABLE"])
order = Order.sync_get(pk=f"CUSTOMER#{env['BENCH_CUSTOMER']}", sk=f"ORDER#{env['BENCH_ID']}")
if order is None:
    raise SystemExit("pydynox: the seeded order was not found")
print(order.id)

with open("/proc/self/status") as status:  # peak RSS (VmHWM) for cold_start.py
    sys.stderr.write(status.read())
