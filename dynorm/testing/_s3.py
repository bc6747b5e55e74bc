"""An S3 server for the tests of blob fields: `$DYNORM_TEST_S3_ENDPOINT`, else moto's server.

moto (`moto[server]`, in the `test` extra) runs as a subprocess in its own process group,
like DynamoDB Local: one per test run, shared by the pytest-xdist workers through the run
directory, stopped by the process that controls the run. moto serves S3 only here; DynamoDB
is always DynamoDB Local.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..exceptions import ConfigurationError
from ._cache import file_lock
from ._local import _free_port, _popen_options, _stop_process, stop_pid

__all__ = ["S3Server", "shared_s3", "start_s3", "stop_shared_s3"]

_INFO = "s3.json"


def s3_ready(endpoint: str) -> bool:
    """Whether an S3 endpoint answers (any HTTP answer counts)."""
    try:
        with urllib.request.urlopen(endpoint, timeout=1) as response:
            return bool(response.status)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@dataclass
class S3Server:
    """A running moto S3 server: its endpoint and process."""

    endpoint: str
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    def stop(self) -> None:
        """Stop the server (a no-op for an external one)."""
        if self.process is not None:
            _stop_process(self.process)
            self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None


def start_s3(log_path: Path | None = None, timeout: float = 60) -> S3Server:
    """Start moto's server on a free local port and wait until it answers.

    Raises:
        ConfigurationError: moto is not installed (`pip install "moto[server]"`), or it did
            not start.
    """
    if importlib.util.find_spec("moto") is None:
        raise ConfigurationError(
            "Cannot start an S3 server for the blob tests: moto is not installed. "
            'pip install "moto[server]" (the dynorm test extra has it), or set '
            "$DYNORM_TEST_S3_ENDPOINT to an S3-compatible endpoint.",
            code="config",
        )
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log: IO[bytes] = open(log_path, "ab") if log_path is not None else open("/dev/null", "ab")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        **_popen_options(detach=True),
    )
    deadline = time.monotonic() + timeout
    while not s3_ready(endpoint):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop_process(process)
            log.close()
            raise ConfigurationError(
                f"Cannot start moto's S3 server on port {port} (exit code {process.returncode}).",
                code="config",
            )
        time.sleep(0.1)
    return S3Server(endpoint, process, log)


def _read(run_dir: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        data: dict[str, Any] = json.loads((run_dir / _INFO).read_text())
        return data
    return {}


def shared_s3(run_dir: Path, started: list[S3Server]) -> str:
    """The run's S3 endpoint: started by the first worker that asks (under a file lock)."""
    with file_lock(run_dir / "s3.lock"):
        info = _read(run_dir)
        if info.get("endpoint"):
            return str(info["endpoint"])
        server = start_s3(log_path=run_dir / "moto-s3.log")
        assert server.process is not None
        (run_dir / _INFO).write_text(
            json.dumps({"endpoint": server.endpoint, "pid": server.process.pid})
        )
        if server.log is not None:
            server.log.close()  # the child keeps its own descriptor
            server.log = None
        if os.environ.get("PYTEST_XDIST_WORKER"):
            # A worker leaves the server to the controller (stopped by pid in
            # stop_shared_s3); without this, Popen warns at the worker's exit that it runs.
            server.process.returncode = 0
        else:
            started.append(server)
        return server.endpoint


def stop_shared_s3(run_dir: Path, started: list[S3Server]) -> None:
    """Stop the run's S3 server, whichever process started it."""
    stopped: set[int] = set()
    while started:
        server = started.pop()
        if server.process is not None:
            stopped.add(server.process.pid)
        server.stop()
    pid = _read(run_dir).get("pid")
    if isinstance(pid, int) and pid > 0 and pid not in stopped:
        stop_pid(pid)
