"""Cold start: what a fresh process (a Lambda) loads before and for its first request.

Invariants (behaviour, never timings): `import dynorm` loads nothing optional (no asyncio,
no boto3 and so no s3transfer, no CLI, tooling, streams or contrib, no python-ulid, no
transactions, table management, versioned or singleton models until their names are used); a
process that defines a model, configures a table and does one GetItem, on either transport,
never imports boto3 (only botocore's pieces); and the in-house ULIDs are valid ULIDs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings, strategies as st
from ulid import ULID

import dynorm
from dynorm.fields import new_ulid
from tests.models import Order

ROOT = Path(__file__).resolve().parents[2]

#: Modules (and packages: any of their submodules counts) `import dynorm` must not load.
NOT_AT_IMPORT = (
    "asyncio",
    "boto3",
    "s3transfer",
    "multiprocessing",
    "ulid",
    "click",
    "rich",
    "dynorm.tooling",
    "dynorm.streams",
    "dynorm.contrib",
    "dynorm.cli",
    "dynorm._cli",
    # loaded on first use of their names (dynorm.__getattr__): no request path needs them
    "dynorm._table",
    "dynorm._transactions",
    "dynorm._async_transactions",
    "dynorm.singleton",
    "dynorm.versioning",
    "dynorm.blobs",
)

_REPORT = """
import json, sys
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules a fresh interpreter has loaded after running `code`."""
    result = subprocess.run(
        [sys.executable, "-c", code + _REPORT],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return set(json.loads(result.stdout.splitlines()[-1]))


def _among(loaded: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if any(m == n or m.startswith(n + ".") for n in names))


def test_import_dynorm_loads_nothing_optional() -> None:
    assert _among(_loaded("import dynorm"), NOT_AT_IMPORT) == []


_GET = """
import os
import dynorm
from tests.models import Order
dynorm.configure(table_name=os.environ["T_TABLE"], endpoint_url=os.environ["T_ENDPOINT"],
                 region_name="us-east-1", transport=os.environ["T_TRANSPORT"])
order = Order.objects.get(customer_id=os.environ["T_CUSTOMER"], id=os.environ["T_ID"])
assert order.id == os.environ["T_ID"]
"""


def _get_in_fresh_process(dynorm_table: str, dynamodb_local: str, transport: str) -> set[str]:
    order = Order(customer_id="c1", id="o1", total=1)
    order.save()
    env = {
        "T_TABLE": dynorm_table,
        "T_ENDPOINT": dynamodb_local,
        "T_TRANSPORT": transport,
        "T_CUSTOMER": "c1",
        "T_ID": "o1",
    }
    return _loaded(_GET, env)


def test_a_lean_transport_get_item_loads_no_boto3(dynorm_table: str, dynamodb_local: str) -> None:
    loaded = _get_in_fresh_process(dynorm_table, dynamodb_local, "http")
    assert "botocore.auth" in loaded  # the request was signed by botocore
    assert _among(loaded, ("boto3", "s3transfer", "asyncio", "multiprocessing")) == []


def test_a_boto3_transport_get_item_loads_no_boto3_package(
    dynorm_table: str, dynamodb_local: str
) -> None:
    """The default transport is a botocore client too: s3transfer never comes in."""
    loaded = _get_in_fresh_process(dynorm_table, dynamodb_local, "boto3")
    assert "botocore.client" in loaded
    assert _among(loaded, ("boto3", "s3transfer", "asyncio", "multiprocessing")) == []


def _clock_at(monkeypatch: pytest.MonkeyPatch, ns: list[int]) -> None:
    """Stop the clock new_ulid reads at `ns[0]` (this VM's wall clock steps backwards at
    times, so bracketing it between two reads of the real clock is not a test)."""
    monkeypatch.setattr(dynorm.fields, "time", SimpleNamespace(time_ns=lambda: ns[0]))


@settings(max_examples=int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "200")), deadline=None)
@given(ms=st.integers(0, 2**48 - 1), sub=st.integers(0, 999_999))
def test_new_ulids_are_valid_ulids_of_now(ms: int, sub: int) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _clock_at(monkeypatch, [ms * 1_000_000 + sub])
        value = new_ulid()
    parsed = ULID.from_str(value)  # python-ulid, the reference implementation
    assert str(parsed) == value and len(value) == 26
    assert int.from_bytes(parsed.bytes[:6], "big") == ms  # the clock's milliseconds


def test_new_ulids_sort_by_time_and_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_700_000_000_000 * 1_000_000]
    _clock_at(monkeypatch, now)
    first = new_ulid()
    now[0] += 1_000_000  # one millisecond later
    values = [new_ulid() for _ in range(200)]  # within one millisecond: random, all differ
    assert len(set(values)) == 200
    assert all(first < v for v in values)
    assert dynorm.fields.new_ulid is new_ulid
