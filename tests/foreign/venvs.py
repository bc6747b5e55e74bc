"""Virtualenvs of foreign libraries (PynamoDB, simplesingletable), built at test time.

Each library runs in its own virtualenv, never in dynorm's: their pins (and simplesingletable's
`ulid` module, which clashes with dynorm's python-ulid) stay out of the project. A virtualenv
lives in dynorm's user cache (`dynorm.testing._cache.cache_dir()`, `$DYNORM_CACHE_DIR`
overrides it), under a key made of the Python version and the hash of the requirements file
(`tests/foreign/requirements-<name>.txt`), so editing a pin builds a new one and every other
run reuses it. A file lock makes xdist workers (and parallel runs) build each key once: the
first takes the lock and builds, the others wait and then find the finished stamp.

`run(name, script, ops)` runs one of the scripts in `tests/foreign/scripts/` with the
library's interpreter: a JSON request on stdin (the DynamoDB endpoint, table and region, and
a list of operations), a JSON list of results on stdout. One subprocess costs about a second,
so a test sends all its operations in one call.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from dynorm import _config
from dynorm.testing._cache import cache_dir, file_lock

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "scripts"
_STAMP = ".dynorm-foreign-stamp"
_built: dict[str, Path] = {}


def requirements_file(name: str) -> Path:
    return HERE / f"requirements-{name}.txt"


def cache_key(name: str, requirements: Path | None = None) -> str:
    """`<name>-py<major>.<minor>-<hash>`: what a virtualenv is reused under."""
    text = (requirements or requirements_file(name)).read_bytes()
    digest = hashlib.sha256(sys.version.encode() + b"\n" + text).hexdigest()[:16]
    return f"{name}-py{sys.version_info.major}.{sys.version_info.minor}-{digest}"


def _python(venv: Path) -> Path:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def venv_root() -> Path:
    return cache_dir() / "foreign-venvs"


def ensure(name: str, requirements: Path | None = None) -> Path:
    """The interpreter of the `name` virtualenv, built once per cache key.

    `requirements` defaults to `tests/foreign/requirements-<name>.txt`.
    """
    requirements = requirements or requirements_file(name)
    key = cache_key(name, requirements)
    if key in _built:
        return _built[key]
    venv = venv_root() / key
    stamp = venv / _STAMP
    if not (stamp.exists() and _python(venv).exists()):
        with file_lock(venv_root() / f".{key}.lock"):
            if not (stamp.exists() and _python(venv).exists()):
                _build(venv, requirements)
                stamp.write_text(key)
    _built[key] = _python(venv)
    return _built[key]


def _build(venv: Path, requirements: Path) -> None:
    if venv.exists():  # a build that died half-way (no stamp): start again
        shutil.rmtree(venv)
    with open(venv_root() / "builds.log", "a", encoding="utf-8") as log:
        log.write(f"{venv.name} {os.getpid()}\n")  # one line per build (the tests count them)
    pins = [ln.split("#")[0].strip() for ln in requirements.read_text().splitlines()]
    if not any(pins):  # nothing to install: no pip either
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        return
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run([*pip, "-r", str(requirements)], capture_output=True, text=True)
    if done.returncode:
        shutil.rmtree(venv, ignore_errors=True)
        raise RuntimeError(
            f"pip could not build the {venv.name} virtualenv from {requirements.name}:\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )


def _client_settings() -> tuple[str, str, str, str]:
    """Endpoint, region and credentials of dynorm's client: the foreign side uses the same.

    DynamoDB Local keeps one database per access key and region (unless it runs with
    -sharedDb), so a foreign library must sign as dynorm does to see the same tables.
    """
    client = _config.get_connection().client
    frozen = client._request_signer._credentials.get_frozen_credentials()
    return client.meta.endpoint_url, client.meta.region_name, frozen.access_key, frozen.secret_key


def run(name: str, table: str, ops: list[dict[str, Any]]) -> list[Any]:
    """Run `scripts/<name>_side.py` in its virtualenv on `table`; return one result per op.

    The endpoint, region and credentials are those of dynorm's configured client.
    """
    python = ensure(name)
    endpoint, region, key, secret = _client_settings()
    request = {"endpoint": endpoint, "table": table, "region": region, "ops": ops}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON", "DYNORM_"))}
    env.update(
        AWS_ACCESS_KEY_ID=key,
        AWS_SECRET_ACCESS_KEY=secret,
        AWS_DEFAULT_REGION=region,
        PYTHONDONTWRITEBYTECODE="1",
    )
    done = subprocess.run(
        [str(python), str(SCRIPTS / f"{name}_side.py")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if done.returncode:
        raise AssertionError(f"{name} script failed:\n{done.stderr[-6000:]}")
    results: list[Any] = json.loads(done.stdout)
    return results
