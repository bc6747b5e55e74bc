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


def assert_resumed_without_rewrites(
    written: list[tuple[str, str]], stale: set[tuple[str, str]], segments: int
) -> None:
    """Check a resumed scan run wrote each still-stale item once and nothing already right.

    `stale` is the items (pk, sk) left unwritten when the first run was SIGKILLed, read
    just after; `written` is what the resumed run sent. The killed run may have had one
    write on the wire per segment: DynamoDB can apply it after that read, so the resumed
    run finds the item right and skips it. Hence at most `segments` fewer writes, never
    one outside `stale`, never one twice.
    """
    assert len(written) == len(set(written)), "the resumed run wrote an item twice"
    assert set(written) <= stale, "the resumed run rewrote an item already right"
    assert len(stale) - len(written) <= segments, (len(stale), len(written))
