"""The virtualenvs of the foreign libraries: one build per cache key, whoever asks first."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from tests.foreign import venvs


def test_a_cache_key_is_built_once_when_workers_ask_at_the_same_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Threads stand in for xdist workers: each takes the lock through its own open file, and
    # flock() excludes open files of one process as it does those of two.
    monkeypatch.setenv("DYNORM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(venvs, "_built", {})
    requirements = tmp_path / "requirements-nothing.txt"
    requirements.write_text("# no pins: a virtualenv with nothing installed\n")
    start = threading.Barrier(3)
    pythons: list[Path] = []

    def worker() -> None:
        start.wait()
        pythons.append(venvs.ensure("nothing", requirements))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(pythons) == 3 and len(set(pythons)) == 1
    python = pythons[0]
    assert python.exists() and python.is_relative_to(tmp_path / "cache" / "foreign-venvs")
    log = tmp_path / "cache" / "foreign-venvs" / "builds.log"
    assert len(log.read_text().splitlines()) == 1
    # A later run (a fresh process: nothing remembered) finds the stamp and builds nothing.
    monkeypatch.setattr(venvs, "_built", {})
    assert venvs.ensure("nothing", requirements) == python
    assert len(log.read_text().splitlines()) == 1
    # A build that died half-way (no stamp) is started again.
    (python.parent.parent / ".dynorm-foreign-stamp").unlink()
    monkeypatch.setattr(venvs, "_built", {})
    assert venvs.ensure("nothing", requirements) == python
    assert len(log.read_text().splitlines()) == 2


def test_the_cache_key_follows_the_pins_and_the_python_version(tmp_path: Path) -> None:
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    one.write_text("pynamodb==6.1.0\n")
    two.write_text("pynamodb==6.1.1\n")
    key = venvs.cache_key("pynamodb", one)
    assert key != venvs.cache_key("pynamodb", two)
    assert key == venvs.cache_key("pynamodb", one)
    assert key.startswith(f"pynamodb-py{sys.version_info.major}.{sys.version_info.minor}-")
    # The pins of the real virtualenvs live in the repository, beside this test.
    for name in ("pynamodb", "simplesingletable"):
        assert venvs.requirements_file(name).read_text().count("==") >= 2
