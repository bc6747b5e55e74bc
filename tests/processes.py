"""Process helpers for tests that run real commands: DynamoDB Local processes, a user's shell."""

from __future__ import annotations

import os
from pathlib import Path

from dynorm.testing import _cache


def java_pids(port: int) -> list[int]:
    """Pids of live DynamoDB Local processes listening on `port` (read from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"-port" in args
            and str(port).encode() in args
            and any(a.endswith(b"DynamoDBLocal.jar") for a in args)
            and _cache.pid_alive(int(entry.name))
        ):
            pids.append(int(entry.name))
    return pids


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no shared endpoint, no run directory of ours."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DYNORM_", "PYTEST_", "DOCKER_", "COV_"))
    }
    env.update(extra)
    return env
