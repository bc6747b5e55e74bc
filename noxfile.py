"""The compatibility matrix: Python 3.10-3.13 x the lowest and the newest pydantic and boto3.

Run it from the project's venv: `make matrix` (what CI runs after `make test`), or
`.venv/bin/nox` / `.venv/bin/nox -s "tests-3.12(lowest)"` for one session. Each session gets a
fresh uv venv with dynorm (editable) and the `test` extra, with pydantic, boto3 (and its
botocore) and python-ulid pinned to the versions in `LOWEST` or left to resolve to the newest,
and runs the whole test suite but the docs site check (the unit, integration and reliability
suites and the executed docs examples; not `tests/test_docs_browser.py`, which builds the site
with the `docs` extra and screenshots it in Chromium: that depends on the docs toolchain, not on
these versions, and `make test` runs it) against one DynamoDB Local shared by every session:
`$DYNORM_TEST_ENDPOINT` when it is set, else one this file starts (`python -m dynorm local`)
before the first session and stops when nox exits, also on Ctrl-C, SIGTERM and SIGHUP.

A session checks that these versions work, not the properties at full strength: it runs each
hypothesis property test with `$DYNORM_HYPOTHESIS_EXAMPLES` (default 50; the tests' own default,
up to 2,000, is what `make test` runs). Set the variable to run the matrix with more. The slow
fault-injecting properties whose own budget is below 50 (12 to 40 examples, each a sequence of
writes against DynamoDB Local) never run more than that budget: the variable caps them.

CI runs it after `make test` with `$DYNORM_MATRIX_AFTER_MAKE_TEST` set, which leaves out the
one session `make test` has just run (the venv's own Python with the newest releases).

Both transports: `make test` and every session run the suite on the default boto3-client path;
exactly one session, `tests-3.12(newest)` (`tests-3.13(newest)` when the venv's own Python is
3.12, whose newest session CI leaves out), runs it with `DYNORM_TRANSPORT=http`, the lean path
of `configure(transport="http")`, and says so in its header (`transport=http`). The fault
injectors of the suite (tests/reliability/helpers.py) inject on whichever path sends, so the
whole suite, fault tests included, passes on both without a session more. Tests about one path
(botocore's Stubber, a client of the user's own, botocore events) configure it themselves.

Interpreters are looked up in pyenv (`$PYENV_ROOT`, default ~/.pyenv), then on PATH. With
`$CI` set (CI runs with CI=true) a missing interpreter fails its sessions; without it, a
developer's run skips them and says so.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

import nox

ROOT = Path(__file__).resolve().parent
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

#: The lowest releases that install and pass on each Python: the lower bounds in
#: pyproject.toml, where a Python that needs newer ones has an environment marker. boto3 is
#: pinned with the botocore of the same release, so "lowest" means the lowest of both. Why:
#: - pydantic 2.12.0: before it, a model-level "before" validator sees no `field_name` on
#:   assignment, so `obj.field = x` dropped `version` from the instance (2.10-2.11), and
#:   `pydantic._internal._typing_extra.is_classvar_annotation` is missing before 2.10.
#: - boto3/botocore 1.35.16: botocore's `before-parse` event, which dynorm's raw read path
#:   hooks, first appears there (before it, reads silently took the slower general decoder).
#: - boto3/botocore 1.40.2 on Python 3.12+: older botocore calls `datetime.utcnow()`,
#:   deprecated since 3.12, on every request, which fails suites that turn warnings into
#:   errors (dynorm's, and a user's strict suite that uses the dynorm pytest plugin).
#: - urllib3 1.26.20 on Python 3.10/3.11, a transitive pin (botocore allows urllib3 1.x):
#:   urllib3 1 reports failures differently (any socket error as ProxyError once a proxy is
#:   set), and dynorm's rule for "was the request sent?" (`_wire.never_sent`) must read
#:   both lines right.
_LOW = {"pydantic": "2.12.0", "boto3": "1.35.16", "botocore": "1.35.16", "python-ulid": "2.2.0"}
_LOW_312 = {**_LOW, "boto3": "1.40.2", "botocore": "1.40.2"}
_LOW_URLLIB3_1 = {**_LOW, "urllib3": "1.26.20"}
LOWEST: dict[str, dict[str, str]] = {
    "3.10": _LOW_URLLIB3_1,
    "3.11": _LOW_URLLIB3_1,
    "3.12": _LOW_312,
    "3.13": _LOW_312,
}

#: Examples per hypothesis property test in a session, unless `$DYNORM_HYPOTHESIS_EXAMPLES` says.
EXAMPLES = os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "50")

#: What every session runs: every test but the docs site check (see the module docstring).
PYTEST = [
    "-m",
    "pytest",
    "-n",
    "2",
    "-p",
    "no:cacheprovider",
    "--dynorm-fail-on-skip",
    "--durations=10",
    "tests/unit",
    "tests/integration",
    "tests/reliability",
    "tests/test_docs.py",
]

#: Printed by each session: the versions it really tested.
_VERSIONS = """
import importlib.metadata as m, json, platform, sys
pins = json.loads(sys.argv[1])
names = ["pydantic", "pydantic-core", "boto3", "botocore", "urllib3", "python-ulid"]
got = {n: m.version(n) for n in names}
line = " ".join(f"{n}=={v}" for n, v in got.items())
print("dynorm matrix: Python", platform.python_version(), line)
wrong = {n: (v, got[n]) for n, v in pins.items() if got[n] != v}
if wrong:
    sys.exit(f"dynorm matrix: installed versions differ from the pins (pin, installed): {wrong}")
"""


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


# --------------------------------------------------------------------------- interpreters


def _works(python: str, version: str) -> bool:
    """Whether `python` runs and is `version` (a pyenv shim for another version does not)."""
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def _find_python(version: str) -> str | None:
    """The newest pyenv install of `version`, else `python{version}` on PATH, if it runs."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    patch = re.compile(rf"^{re.escape(version)}\.(\d+)$")  # 3.13.0, not 3.13.0t or 3.13-dev
    installs = sorted(
        (int(m.group(1)), path)
        for path in (root.iterdir() if root.is_dir() else [])
        if (m := patch.match(path.name))
    )
    candidates = [str(path / "bin" / f"python{version}") for _, path in reversed(installs)]
    candidates.append(shutil.which(f"python{version}") or "")
    return next((c for c in candidates if c and _works(c, version)), None)


def _put_pythons_on_path() -> None:
    """Put the interpreters found first on PATH, where nox and uv look for `python3.X`."""
    found = {v: _find_python(v) for v in PYTHONS}
    missing = [v for v, path in found.items() if path is None]
    dirs = [str(Path(p).parent) for p in found.values() if p is not None]
    os.environ["PATH"] = os.pathsep.join([*dict.fromkeys(dirs), os.environ.get("PATH", "")])
    if missing:
        what = "fail (CI is set)" if _ci() else "be SKIPPED (set CI=true to fail instead)"
        print(
            f"dynorm matrix: no interpreter for Python {', '.join(missing)} in pyenv or on PATH; "
            f"its sessions will {what}. Install it (e.g. `pyenv install {missing[0]}`).",
            file=sys.stderr,
        )


_put_pythons_on_path()
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")  # only the interpreters found above

nox.options.default_venv_backend = "uv"
nox.options.download_python = "never"
nox.options.error_on_missing_interpreters = _ci()
nox.options.reuse_venv = "no"  # a fresh venv per run: "newest" means newest today


def _default_sessions() -> list[str]:
    """Every session; after `make test` (CI), less the one it has just run.

    `make test` runs these same suites on the project's venv, freshly installed with the newest
    releases, with the interpreter that runs this file: with `$DYNORM_MATRIX_AFTER_MAKE_TEST`
    set (.ci/run sets it), that Python's "newest" session would repeat it and is left out.
    """
    names = [f"tests-{py}({deps})" for py in PYTHONS for deps in ("lowest", "newest")]
    if os.environ.get("DYNORM_MATRIX_AFTER_MAKE_TEST"):
        done = f"tests-{sys.version_info[0]}.{sys.version_info[1]}(newest)"
        if done in names:
            names.remove(done)
            print(f"dynorm matrix: {done} left out: `make test` has just run it", file=sys.stderr)
    return names


nox.options.sessions = _default_sessions()


def _lean_session() -> str:
    """The one session that runs the suite on the lean transport (`DYNORM_TRANSPORT=http`).

    `tests-3.12(newest)`, unless CI leaves that one out after `make test` (the venv's Python is
    3.12): then `tests-3.13(newest)`, so that CI always runs one.
    """
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return "tests-3.13(newest)" if here == "3.12" else "tests-3.12(newest)"


#: The session that sends dynorm's item requests over `transport="http"` (see the docstring).
LEAN_SESSION = _lean_session()


# --------------------------------------------------------------------------- DynamoDB Local


class _Server:
    """The DynamoDB Local every session uses, started once (lazily) and stopped at exit."""

    process: subprocess.Popen[bytes] | None = None
    endpoint: str | None = None
    failure: str | None = None
    log: IO[bytes] | None = None

    @classmethod
    def get(cls) -> str:
        """The endpoint; starts the server on first use. Raises RuntimeError if it cannot."""
        env = os.environ.get("DYNORM_TEST_ENDPOINT")
        if env:
            return env
        if cls.endpoint is None and cls.failure is None:
            try:
                cls.endpoint = cls._start()
            except RuntimeError as exc:
                cls.failure = str(exc)
                cls.stop()
        if cls.failure is not None:
            raise RuntimeError(cls.failure)
        assert cls.endpoint is not None
        return cls.endpoint

    @classmethod
    def _start(cls, timeout: float = 180) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        endpoint = f"http://127.0.0.1:{port}"
        cls.log = tempfile.TemporaryFile()
        # From the interpreter running nox (the project's venv, where dynorm is installed), in
        # its own process group, told to stop if nox dies without running its exit handlers.
        cls.process = subprocess.Popen(
            [sys.executable, "-m", "dynorm", "local", "--port", str(port)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=cls.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        atexit.register(cls.stop)
        deadline = time.monotonic() + timeout
        while not _answers(endpoint):
            if cls.process.poll() is not None or time.monotonic() > deadline:
                cls.log.seek(0)
                tail = cls.log.read().decode(errors="replace")[-2000:]
                why = (
                    "exited" if cls.process.poll() is not None else f"did not answer in {timeout}s"
                )
                raise RuntimeError(
                    f"dynorm matrix: `{sys.executable} -m dynorm local --port {port}` {why}; "
                    f"its output:\n{tail}"
                )
            time.sleep(0.25)
        print(f"dynorm matrix: DynamoDB Local on {endpoint} for every session", file=sys.stderr)
        return endpoint

    @classmethod
    def stop(cls) -> None:
        """Stop the server (SIGTERM to its group, SIGKILL after 20 s) and close its log."""
        process, cls.process = cls.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if cls.log is not None:
            cls.log.close()
            cls.log = None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    """Linux: SIGTERM `dynorm local` when nox dies, even by SIGKILL (PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def _answers(endpoint: str) -> bool:
    """Whether a DynamoDB endpoint answers ListTables (any HTTP answer counts)."""
    request = urllib.request.Request(
        endpoint,
        data=b"{}",
        headers={
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": (
                "AWS4-HMAC-SHA256 Credential=matrix/20200101/us-east-1/dynamodb/aws4_request, "
                "SignedHeaders=host, Signature=0"
            ),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(response.status)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM/SIGHUP: unwind like Ctrl-C (nox stops the running session; atexit stops Java)."""
    raise KeyboardInterrupt(f"signal {signum}")


for _name in ("SIGTERM", "SIGHUP"):
    if hasattr(signal, _name) and signal.getsignal(getattr(signal, _name)) is signal.SIG_DFL:
        signal.signal(getattr(signal, _name), _interrupt)


# --------------------------------------------------------------------------- sessions


def _declared_lower_bounds(python: str) -> dict[str, str] | None:
    """The `>=` bounds of pyproject.toml's dependencies on `python` (None: nox on 3.10)."""
    if sys.version_info < (3, 11):  # no tomllib
        return None
    import tomllib  # type: ignore[import-not-found, unused-ignore]  # mypy checks as 3.10
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = {"python_version": python, "python_full_version": f"{python}.0"}
    bounds: dict[str, str] = {}
    for dependency in project["dependencies"]:
        req = Requirement(dependency)
        if req.marker is None or req.marker.evaluate(env):
            for spec in req.specifier:
                if spec.operator == ">=":
                    bounds[req.name] = spec.version
    return bounds


def _check_pins(session: nox.Session, python: str) -> None:
    """Fail unless `LOWEST` pins exactly the lower bounds pyproject.toml declares."""
    from packaging.version import Version

    declared = _declared_lower_bounds(python)
    if declared is None:
        session.warn("dynorm matrix: no tomllib here; pins not compared with pyproject.toml")
        return
    pins = LOWEST[python]
    wrong = {
        n: (pins.get(n), v) for n, v in declared.items() if Version(pins.get(n, "0")) != Version(v)
    }
    if wrong:
        session.error(
            f"dynorm matrix: LOWEST[{python!r}] and pyproject.toml's lower bounds differ "
            f"(pin, declared): {wrong}; keep them equal"
        )


@nox.session(python=PYTHONS)
@nox.parametrize("deps", ["lowest", "newest"], ids=["lowest", "newest"])
def tests(session: nox.Session, deps: str) -> None:
    """The test suite (but the docs site check) on the lowest or the newest dependencies."""
    assert isinstance(session.python, str)
    started = time.monotonic()
    pins = LOWEST[session.python] if deps == "lowest" else {}
    if deps == "lowest":
        _check_pins(session, session.python)
    session.install("-e", ".[test]", *(f"{name}=={v}" for name, v in pins.items()))
    script = Path(session.create_tmp()) / "versions.py"
    script.write_text(_VERSIONS)
    session.log(session.run("python", str(script), json.dumps(pins), silent=True))
    try:
        endpoint = _Server.get()
    except RuntimeError as exc:
        session.error(str(exc))
    env = {"DYNORM_TEST_ENDPOINT": endpoint, "DYNORM_HYPOTHESIS_EXAMPLES": EXAMPLES}
    transport = "http" if session.name == LEAN_SESSION else "boto3"
    env["DYNORM_TRANSPORT"] = transport
    session.log(f"dynorm matrix: {session.name}: transport={transport}")
    try:
        session.run("python", *PYTEST, env=env)
    finally:
        session.log(f"dynorm matrix: {session.name}: {time.monotonic() - started:.0f} s")
