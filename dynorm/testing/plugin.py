"""The dynorm pytest plugin (registered through the `pytest11` entry point).

Fixtures:
    dynamodb_local: session-scoped endpoint URL of a DynamoDB Local (one per test run, shared by
        pytest-xdist workers).
    dynorm_table: a fresh, uniquely named table on it with dynorm configured to use it; the table
        is deleted and the previous configuration restored afterwards.
    s3_endpoint: session-scoped endpoint URL of an S3 server for blob fields:
        `$DYNORM_TEST_S3_ENDPOINT`, else moto's server (one per run, like DynamoDB Local).
    blob_bucket: a fresh bucket on it, with dynorm configured to store blobs there (use with
        `dynorm_table`); emptied and removed afterwards.

The plugin is loaded by every pytest run once dynorm is installed, so it imports nothing
optional (testcontainers, the Docker SDK, `fcntl`) until a test asks for DynamoDB, and it never
issues a Python warning (suites that run with `filterwarnings = error` would fail): what a user
should know is printed once in the test summary.

The process that controls the run (the xdist controller, or pytest itself without xdist) owns
the DynamoDB Local a worker starts: it stops Java and removes the run directory at exit, and
turns SIGTERM and SIGHUP into an interrupt so that this also happens when the run is killed.
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

from .. import _blob_store, _config
from .._table import create_table, delete_table
from . import _local, _s3

_RUN_DIR = "DYNORM_RUN_DIR"
_STOPPING = "stopping"
_counter = itertools.count()
_detached: list[_local.LocalServer] = []
_s3_started: list[_s3.S3Server] = []
_notes: list[str] = []  # notes of a server this process started without a run directory
_owner_key = pytest.StashKey[str]()
_signals_key = pytest.StashKey[list[tuple[int, Any]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add `--dynorm-fail-on-skip`."""
    parser.addoption(
        "--dynorm-fail-on-skip",
        action="store_true",
        default=False,
        help="dynorm: fail the run when any test was skipped (use in CI).",
    )


def _install_signal_handlers(config: pytest.Config, run_dir: str) -> None:
    """SIGTERM/SIGHUP: stop DynamoDB Local at once, then unwind like Ctrl-C.

    Stopping first matters: pytest-xdist may take ten seconds to tear its workers down, and
    whoever sent SIGTERM (`docker stop`, a CI timeout) may send SIGKILL before that.
    """

    def interrupt(signum: int, frame: Any) -> None:
        _stop_shared(run_dir, remove=False)  # pytest_unconfigure removes it
        raise KeyboardInterrupt(f"signal {signum}")

    saved: list[tuple[int, Any]] = []
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            if signal.getsignal(signum) is signal.SIG_DFL:  # leave a handler someone set alone
                saved.append((signum, signal.signal(signum, interrupt)))
    config.stash[_signals_key] = saved


def pytest_configure(config: pytest.Config) -> None:
    """On the controlling process, make a run directory the workers share."""
    config.addinivalue_line("markers", "integration: needs DynamoDB (Local)")
    if hasattr(config, "workerinput"):
        return
    if os.environ.get("DYNORM_TEST_ENDPOINT") and os.environ.get("DYNORM_TEST_S3_ENDPOINT"):
        return
    if not os.environ.get(_RUN_DIR):
        run_dir = tempfile.mkdtemp(prefix="dynorm-run-")
        os.environ[_RUN_DIR] = run_dir
        config.stash[_owner_key] = run_dir
        _install_signal_handlers(config, run_dir)


def _read_info(run_dir: Path) -> dict[str, Any]:
    info_path = run_dir / "server.json"
    with contextlib.suppress(OSError, ValueError):
        data: dict[str, Any] = json.loads(info_path.read_text())
        return data
    return {}


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the shared DynamoDB Local this run started, if any, and remove the run directory."""
    for signum, previous in config.stash.get(_signals_key, []):
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signum, previous)
    run_dir = config.stash.get(_owner_key, None)
    if run_dir is None:
        return
    os.environ.pop(_RUN_DIR, None)
    _stop_shared(run_dir)


def _stop_shared(run_dir: str, remove: bool = True) -> None:
    """Stop the DynamoDB Local of this run (whoever started it); remove the run directory.

    The "stopping" mark comes first and java.pid is read after it, while a worker writes
    java.pid first and checks the mark after it: so a Java started meanwhile is always
    stopped, by one side or the other.
    """
    with contextlib.suppress(OSError):
        (Path(run_dir) / _STOPPING).touch()
    stopped: set[int] = set()
    while _detached:  # started by this process (no xdist): stop and reap it
        server = _detached.pop()
        if server._process is not None:
            stopped.add(server._process.pid)
        server.stop()
    info = _read_info(Path(run_dir))
    pids = {info.get("pid")}
    with contextlib.suppress(OSError, ValueError):
        pids.add(int((Path(run_dir) / "java.pid").read_text()))
    for pid in pids - stopped:  # started by a worker: Java runs in its own process group
        if isinstance(pid, int) and pid > 0:
            _local.stop_pid(pid)
    with contextlib.suppress(OSError):
        _s3.stop_shared_s3(Path(run_dir), _s3_started)
    if info.get("container"):
        with contextlib.suppress(Exception):
            import docker  # type: ignore[import-untyped, unused-ignore]

            docker.from_env().containers.get(info["container"]).stop()
    if remove:
        shutil.rmtree(run_dir, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Print, once, what the user should know about the DynamoDB Local this run used."""
    run_dir = config.stash.get(_owner_key, None)
    notes = list(_notes)
    if run_dir is not None:
        notes += [n for n in _read_info(Path(run_dir)).get("notes", []) if n not in notes]
    for note in notes:
        terminalreporter.write_line(note, yellow=True)


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
    if not run_dir.is_dir() or (run_dir / _STOPPING).exists():
        raise RuntimeError("dynorm: the test run is stopping")
    with _local.file_lock(run_dir / "server.lock"):
        info = _read_info(run_dir)
        if info.get("endpoint"):
            return str(info["endpoint"])

        def spawned(pid: int) -> None:  # the controller can stop it even if we die starting it
            (run_dir / "java.pid").write_text(str(pid))
            if (run_dir / _STOPPING).exists():
                raise RuntimeError("dynorm: the test run is stopping")

        server = _local.start_local(
            detach=True,
            log_path=run_dir / "dynamodb-local.log",
            workdir=run_dir / "dynamodb-local",
            warn=False,
            on_spawn=spawned,
        )
        info = {"endpoint": server.endpoint, "kind": server.kind, "notes": server.notes}
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
    server = _local.start_local(warn=False)
    _notes.extend(server.notes)
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def dynorm_table(dynamodb_local: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, uniquely named table with dynorm configured to use it; yields the table name."""
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


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The endpoint URL of the S3 server this test run uses for blob fields."""
    env = os.environ.get("DYNORM_TEST_S3_ENDPOINT")
    if env:
        yield env
        return
    run_dir = os.environ.get(_RUN_DIR)
    if run_dir:
        yield _s3.shared_s3(Path(run_dir), _s3_started)
        return
    server = _s3.start_s3()
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def blob_bucket(dynorm_table: str, s3_endpoint: str) -> Iterator[str]:
    """A fresh bucket that blob fields of every model use (for this test); yields its name."""
    name = f"dynorm-test-{uuid.uuid4().hex[:20]}"
    _config.configure(s3_endpoint_url=s3_endpoint, blob_bucket=name, s3_client=None)
    client = _blob_store.s3_client()
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            keys = [key for key, _ in _blob_store.list_objects(name, "")]
            _blob_store.delete_objects(name, keys)
            client.delete_bucket(Bucket=name)
