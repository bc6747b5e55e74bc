"""The dynorm pytest plugin (registered through the `pytest11` entry point).

Fixtures:
    dynamodb_local: session-scoped endpoint URL of a DynamoDB Local (one per test run, shared by
        pytest-xdist workers).
    dynorm_table: a fresh, uniquely named table on it with dynorm configured to use it; the table
        is deleted and the previous configuration restored afterwards.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import _local

_RUN_DIR = "DYNORM_RUN_DIR"
_counter = itertools.count()
_detached: list[_local.LocalServer] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add `--dynorm-fail-on-skip`."""
    parser.addoption(
        "--dynorm-fail-on-skip",
        action="store_true",
        default=False,
        help="dynorm: fail the run when any test was skipped (use in CI).",
    )


def pytest_configure(config: pytest.Config) -> None:
    """On the controlling process, make a run directory the workers share."""
    config.addinivalue_line("markers", "integration: needs DynamoDB (Local)")
    if hasattr(config, "workerinput") or os.environ.get("DYNORM_TEST_ENDPOINT"):
        return
    if not os.environ.get(_RUN_DIR):
        run_dir = tempfile.mkdtemp(prefix="dynorm-run-")
        os.environ[_RUN_DIR] = run_dir
        config.stash[_owner_key] = run_dir


_owner_key = pytest.StashKey[str]()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the shared DynamoDB Local this run started, if any."""
    run_dir = config.stash.get(_owner_key, None)
    if run_dir is None:
        return
    os.environ.pop(_RUN_DIR, None)
    while _detached:
        _detached.pop().stop()
    info_path = Path(run_dir) / "server.json"
    if info_path.exists():
        info = json.loads(info_path.read_text())
        if info.get("pid"):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(info["pid"], signal.SIGTERM)
        if info.get("container"):
            with contextlib.suppress(Exception):
                import docker  # type: ignore[import-untyped, unused-ignore]

                docker.from_env().containers.get(info["container"]).stop()
    shutil.rmtree(run_dir, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With --dynorm-fail-on-skip, a skipped test fails the run."""
    if not session.config.getoption("--dynorm-fail-on-skip"):
        return
    if hasattr(session.config, "workerinput"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if skipped:
        if reporter is not None:
            reporter.write_line(
                f"dynorm: {skipped} test(s) skipped; --dynorm-fail-on-skip fails the run.",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _shared_endpoint(run_dir: Path) -> str:
    info_path = run_dir / "server.json"
    with _local._file_lock(run_dir / "server.lock"):
        if info_path.exists():
            return str(json.loads(info_path.read_text())["endpoint"])
        server = _local.start_local(detach=True, log_path=run_dir / "dynamodb-local.log")
        info: dict[str, Any] = {"endpoint": server.endpoint, "kind": server.kind}
        if server._process is not None:
            info["pid"] = server._process.pid
        if server._container is not None:
            info["container"] = server._container.get_wrapped_container().id
        info_path.write_text(json.dumps(info))
        _detached.append(server)  # stopped by the controller in pytest_unconfigure
        return server.endpoint


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[str]:
    """The endpoint URL of the DynamoDB Local this test run uses."""
    env = os.environ.get("DYNORM_TEST_ENDPOINT")
    if env:
        yield env
        return
    run_dir = os.environ.get(_RUN_DIR)
    if run_dir:
        yield _shared_endpoint(Path(run_dir))
        return
    server = _local.start_local()
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def dynorm_table(dynamodb_local: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, uniquely named table with dynorm configured to use it; yields the table name."""
    from .. import _config
    from .._table import create_table, delete_table

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"dynorm-test-{worker}-{next(_counter)}-{uuid.uuid4().hex[:8]}"
    saved = _config.snapshot()
    _config.configure(table_name=name, endpoint_url=dynamodb_local, client=None)
    try:
        create_table()
        yield name
    finally:
        try:
            delete_table(wait=False)
        finally:
            _config.restore(saved)
