"""Fixtures of the reliability scenarios, and the suite-wide operation spy of scenario 54."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import botocore.endpoint
import pytest

import dynorm
import dynorm._batch
import dynorm._http
import dynorm._transactions
from dynorm import _config
from dynorm._connection import Connection
from dynorm.query.queryset import QuerySet
from tests.reliability.helpers import CONTROL_PLANE_ACTIONS, RUNTIME_ACTIONS, Faults

# --------------------------------------------------------------------------- scenario 54 spy


@dataclass
class _Spy:
    in_call: bool = False
    scan_called: bool = False
    operations: list[str] = field(default_factory=list)


_spy = _Spy()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Record operations only while the test body runs (not table setup and teardown)."""
    _spy.in_call = True
    try:
        yield
    finally:
        _spy.in_call = False


@pytest.fixture(autouse=True)
def _operation_allow_list(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Scenario 54, suite-wide: every request dynorm sends from a test body is a documented
    runtime action; no control-plane call; a Scan only after `.scan()` was called."""
    _spy.operations.clear()
    _spy.scan_called = False
    original_send = Connection.send
    original_scan = QuerySet.scan

    def send(self: Connection, operation: str, params: Any) -> dict[str, Any]:
        if _spy.in_call:
            _spy.operations.append(operation)
        return original_send(self, operation, params)

    def scan(self: QuerySet[Any], *args: Any, **kwargs: Any) -> Any:
        _spy.scan_called = True
        return original_scan(self, *args, **kwargs)

    monkeypatch.setattr(Connection, "send", send)
    monkeypatch.setattr(QuerySet, "scan", scan)
    yield
    used = set(_spy.operations)
    assert not used & CONTROL_PLANE_ACTIONS, f"control-plane calls from runtime paths: {used}"
    assert used <= RUNTIME_ACTIONS, f"undocumented actions: {used - RUNTIME_ACTIONS}"
    if "Scan" in used:
        assert _spy.scan_called, "dynorm sent a Scan although .scan() was never called"


def spied_operations() -> list[str]:
    """The operations recorded so far in the running test (scenario 54's own test reads it)."""
    return list(_spy.operations)


# --------------------------------------------------------------------------- capture


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every request dynorm hands to boto3: (operation, a deep copy of its parameters)."""
    calls: list[tuple[str, dict[str, Any]]] = []
    original = Connection.send

    def spy(self: Connection, operation: str, params: Any) -> dict[str, Any]:
        calls.append((operation, copy.deepcopy(dict(params))))
        return original(self, operation, params)

    monkeypatch.setattr(Connection, "send", spy)
    return calls


@dataclass
class Offline:
    """A configured dynorm whose `Connection.send` never reaches the network."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    responder: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None

    @property
    def operations(self) -> list[str]:
        return [op for op, _ in self.calls]


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[Offline]:
    """Unit tests: requests are recorded and answered by `responder` (default `{}`)."""
    saved = _config.snapshot()
    dynorm.configure(
        table_name="rel-offline",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        client=None,
    )
    box = Offline()

    def fake(self: Connection, operation: str, params: Any) -> dict[str, Any]:
        box.calls.append((operation, copy.deepcopy(dict(params))))
        if box.responder is None:
            return {}
        return box.responder(operation, dict(params))

    monkeypatch.setattr(Connection, "send", fake)
    try:
        yield box
    finally:
        _config.restore(saved)


@pytest.fixture
def faults(dynorm_table: str) -> Iterator[Faults]:
    """Fault injectors on dynorm's client and transport for this test, removed afterwards;
    each must have fired."""
    box = Faults()
    try:
        yield box
    finally:
        box.clear()
    box.check_fired()


# --------------------------------------------------------------------------- fake clocks


class FakeTime:
    """Stands in for the `time` module of one library: `sleep` is recorded, not slept."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture
def retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    """The retry back-off delays of both paths (botocore's endpoint, the lean transport),
    recorded instead of slept."""
    fake = FakeTime()
    monkeypatch.setattr(botocore.endpoint, "time", fake)
    monkeypatch.setattr(dynorm._http, "time", fake)
    return fake


@pytest.fixture
def dynorm_sleeps(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    """dynorm's own back-off delays (batch and transaction-conflict retries), recorded."""
    fake = FakeTime()
    monkeypatch.setattr(dynorm._batch, "time", fake)
    monkeypatch.setattr(dynorm._transactions, "time", fake)
    return fake
