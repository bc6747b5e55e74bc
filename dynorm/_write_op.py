"""`WriteOp`: one compiled write with what to do when it succeeds or is refused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._proof import register, sent_of
from ._request import Request

if TYPE_CHECKING:
    from .exceptions import DynormError
    from .models import Model

__all__ = ["Conflict", "WriteOp"]

#: How a refused condition reads: the exception to raise, or None when the refusal proves
#: that this very write was applied earlier (a retry after a lost response).
Conflict = Callable[["DynormError"], "Exception | None"]


@dataclass
class WriteOp:
    """One write ready to send alone or to join a transaction.

    `operation` and `params` are the compiled request (`request`), without TableName;
    `conflict` maps a refused condition to the exception to raise (None: the refusal proves
    that this very write was applied earlier, e.g. a retry after a lost response);
    `on_success` updates the instance.

    `token` is the write token the write stores (None for deletes and checks; drawn but not
    stored for a layout without a token attribute, where `sent` is the write's content). `instance`,
    `call` and `rebuild` are set for the writes of an instance (`save`, `update`, `delete`):
    the instance, what was called (to recognise a retry of the same call) and how to build
    the write again from the instance's state.
    """

    operation: str
    params: dict[str, Any]
    model: type[Model]
    conflict: Conflict
    on_success: Callable[[dict[str, Any]], None]
    extra: dict[str, Any] = field(default_factory=dict)
    #: The Table (or name) to write to (`qs.using(...)`); None: the model's table.
    table: Any = None
    token: str | None = None
    instance: Model | None = None
    call: tuple[Any, ...] | None = None
    rebuild: Callable[[], WriteOp] | None = None
    #: What the write stores, when its model's layout stores no write token (`_proof`).
    sent: Any = None

    @classmethod
    def of(
        cls,
        request: Request,
        model: type[Model],
        conflict: Conflict,
        on_success: Callable[[dict[str, Any]], None],
        **options: Any,
    ) -> WriteOp:
        """The WriteOp of a compiled request (`options`: the other fields).

        A model whose layout stores no write token gets the write's `Sent`, filed under its
        token, so a refusal can show that this write was applied (see `_proof`).
        """
        op = cls(request.operation, request.params, model, conflict, on_success, **options)
        if model._meta.layout.token is None and op.token is not None:
            if op.sent is None:
                op.sent = sent_of(op.operation, op.params)
            register(op.token, op.sent)
        return op

    @property
    def request(self) -> Request:
        """The compiled request this write sends (without TableName)."""
        return Request(self.operation, self.params)
