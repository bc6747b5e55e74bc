"""Transitional: the names other modules imported from here, until they import them directly.

The instance writes moved to modules named after what they hold:

- `_write_op`: `WriteOp`;
- `_instance_writes`: the builders (`save_op`, `delete_op`, `update_instance_op`,
  `condition_check_op`), `build_item`, `timestamps`, `call_values`, `take`;
- `_exactly_once`: write tokens, attempts of unknown outcome, refusals (`WriteState`,
  `stored_token`, `new_write_token`, `tracking`, `first_gone`, `already_applied`,
  `disproves`, `set_stored_token`, ...);
- `_write_executor`: sending (`execute`, `write`, `prepare`, `refresh`);
- `query._compile_write`: every condition and update expression.

Delete this module once nothing imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._exactly_once import (
    WriteState,
    already_applied,
    disproves,
    first_gone,
    new_write_token,
    set_stored_token,
    stored_token,
    tracking,
)
from ._instance_writes import (
    build_item,
    call_values,
    delete_op,
    save_op,
    timestamps,
    update_instance_op,
)
from ._write_executor import execute, prepare, refresh, write
from ._write_op import WriteOp
from .fields import utcnow

if TYPE_CHECKING:
    from .models import Model

__all__ = [
    "WriteOp",
    "WriteState",
    "already_applied",
    "build_item",
    "call_values",
    "delete_op",
    "disproves",
    "execute",
    "first_gone",
    "new_write_token",
    "prepare",
    "refresh",
    "save_op",
    "set_stored_token",
    "stored_token",
    "tracking",
    "update_instance_op",
    "write",
]


def _timestamps(instance: Model, creating: bool) -> dict[str, Any]:
    """`timestamps` at the current time (for `bulk_create` until it compiles its writes)."""
    return timestamps(instance, creating, utcnow())
