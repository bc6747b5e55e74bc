"""Pause the cyclic garbage collector while a page of results is decoded.

Decoding a 1 MB page allocates tens of thousands of small, acyclic objects; CPython's
generation-0 collections triggered by them cost about as much as the decoding itself
(PERFORMANCE.md). Reference counting still frees everything; only cycle detection waits
until the page is done.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic GC for the block (re-entrant and thread-safe)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
