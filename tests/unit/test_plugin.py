"""The pytest plugin and the DynamoDB Local launcher never break a user's suite.

They run real processes: a fake Docker engine (an HTTP server on loopback answering /_ping),
a `pytest -n 2` run in a scratch project, `dynorm local`, and the real DynamoDB Local jar.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynorm.testing import _cache, _local
from tests.processes import clean_env, java_pids

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers


def _project(tmp_path: Path, tests: str, conftest: str = "") -> Path:
    """A user's project: its own pytest.ini with filterwarnings = error."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")
    (project / "conftest.py").write_text(textwrap.dedent(conftest))
    (project / "test_user.py").write_text(textwrap.dedent(tests))
    return project


def _wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 120) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        if process.poll() is not None:
            raise AssertionError(f"exited early: {process.communicate()}")
        assert time.monotonic() < deadline, "the run never started its test"
        time.sleep(0.1)
    data: dict[str, str] = json.loads(path.read_text())
    return data


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


class _FakeDocker(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"OK"
        self.send_response(200 if self.path == "/_ping" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_docker() -> Iterator[str]:
    """A Docker engine as far as a /_ping can tell, on loopback: its DOCKER_HOST."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeDocker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- Docker fallback


def test_docker_without_testcontainers_falls_back_to_the_jar_with_one_warning(
    fake_docker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", fake_docker)
    monkeypatch.setitem(sys.modules, "testcontainers", None)
    monkeypatch.setitem(sys.modules, "testcontainers.core", None)
    monkeypatch.setitem(sys.modules, "testcontainers.core.container", None)
    assert _local._docker_answers()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        server = _local.start_local()
    try:
        assert server.kind == "jar"
        assert _local.ready(server.endpoint)
        assert [w.category for w in caught] == [_local.DockerFallbackWarning]
        assert "testcontainers is not installed" in str(caught[0].message)
        assert server.notes == [str(caught[0].message)]
    finally:
        server.stop()
    assert java_pids(_port(server.endpoint)) == []


def test_plugin_falls_back_to_the_jar_and_says_so_once_without_failing_a_strict_suite(
    tmp_path: Path, fake_docker: str
) -> None:
    """A user's suite with filterwarnings=error, Docker answering, no testcontainers."""
    project = _project(
        tmp_path,
        """
        import json, os
        from pathlib import Path

        def test_a(dynamodb_local):
            Path(os.environ["OUT"]).write_text(json.dumps({"endpoint": dynamodb_local}))

        def test_b(dynorm_table):
            assert dynorm_table.startswith("dynorm-test-")
        """,
        conftest="""
        import sys
        sys.modules["testcontainers"] = None  # not installed
        """,
    )
    out = tmp_path / "out.json"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-q"],
        cwd=project,
        env=clean_env(DOCKER_HOST=fake_docker, OUT=str(out)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("testcontainers is not installed") == 1, result.stdout
    assert "Warning" not in result.stdout + result.stderr
    assert java_pids(_port(json.loads(out.read_text())["endpoint"])) == []


# --------------------------------------------------------------------------- no fcntl

_NO_FCNTL = """
import sys
sys.modules["fcntl"] = None   # as on Windows
sys.modules["msvcrt"] = None  # and no Windows lock either: the portable fallback
"""


def test_plugin_loads_and_locks_without_fcntl(tmp_path: Path) -> None:
    script = _NO_FCNTL + textwrap.dedent(
        """
        import time
        from pathlib import Path
        import dynorm.testing.plugin
        from dynorm.testing import _local

        lock, log = Path(sys.argv[1]), Path(sys.argv[2])
        for _ in range(20):
            with _local.file_lock(lock):
                with log.open("a") as fh:
                    fh.write("in\\n")
                time.sleep(0.005)
                with log.open("a") as fh:
                    fh.write("out\\n")
        """
    )
    lock, log = tmp_path / "x.lock", tmp_path / "log.txt"
    runs = [subprocess.Popen([sys.executable, "-c", script, str(lock), str(log)]) for _ in range(3)]
    assert [p.wait(timeout=60) for p in runs] == [0, 0, 0]
    lines = log.read_text().split()
    assert lines == ["in", "out"] * 60  # never two holders at once
    assert not lock.with_name("x.lock.pid").exists()


def test_a_pytest_run_without_fcntl_loads_the_plugin(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        """
        import sys

        def test_plugin_is_loaded_without_fcntl(request, dynorm_table):
            assert sys.modules["fcntl"] is None
            assert request.config.pluginmanager.get_plugin("dynorm") is not None
        """,
    )
    script = _NO_FCNTL + "import pytest\nsys.exit(pytest.main(['-q', '-p', 'no:cacheprovider']))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_a_crashed_lock_holder_does_not_block_the_fallback_lock(tmp_path: Path) -> None:
    lock = tmp_path / "y.lock"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    lock.with_name("y.lock.pid").write_text(dead.stdout.strip())
    with _cache._pid_file_lock(lock):
        assert lock.with_name("y.lock.pid").read_text() == str(os.getpid())


# --------------------------------------------------------------------------- signals


_SLEEPER = """
import json, os, time
from pathlib import Path

def test_waits(dynamodb_local):
    Path(os.environ["OUT"]).write_text(json.dumps(
        {"endpoint": dynamodb_local, "run_dir": os.environ["DYNORM_RUN_DIR"]}))
    time.sleep(120)
"""


@pytest.mark.parametrize("group", [False, True], ids=["controller", "process-group"])
def test_sigterm_to_pytest_n2_stops_java_and_removes_the_run_dir(
    tmp_path: Path, group: bool
) -> None:
    project = _project(tmp_path, _SLEEPER)
    out = tmp_path / "out.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-q"],
        cwd=project,
        env=clean_env(OUT=str(out)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        info = _wait_for(out, process)
        port = _port(info["endpoint"])
        assert java_pids(port) and Path(info["run_dir"]).is_dir()
        if group:
            os.killpg(process.pid, signal.SIGTERM)  # a CI timeout: every process of the run
        else:
            process.send_signal(signal.SIGTERM)  # `kill <pid>` of the pytest command
        # Java stops at once, before xdist's worker teardown: `docker stop` and CI runners
        # send SIGKILL a few seconds after SIGTERM.
        deadline = time.monotonic() + 5
        while java_pids(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert java_pids(port) == []
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert java_pids(port) == []
    assert not Path(info["run_dir"]).exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_to_dynorm_local_stops_java_and_removes_its_directory(
    signum: int, tmp_path: Path
) -> None:
    port = _local._free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dynorm", "local", "--port", str(port)],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line, line + process.stderr.read()
        [java] = java_pids(port)
        workdir = Path(os.readlink(f"/proc/{java}/cwd"))
        assert workdir.name.startswith("dynorm-local-")
        process.send_signal(signum)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert not _cache.pid_alive(java)
    assert not workdir.exists()
    assert process.returncode == 0
