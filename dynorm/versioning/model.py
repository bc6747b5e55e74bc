"""VersionedModel: a model that keeps every saved version, and its metaclass."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, PrivateAttr
from typing_extensions import Self, dataclass_transform

from .._async import run
from .._config import binding
from .._constants import PK, SK
from .._exactly_once import instance_table
from .._executor import write
from .._instance_writes import delete_op, save_op
from .._write_op import WriteOp
from ..exceptions import (
    ConfigurationError,
    DynormError,
    QueryError,
    TransactionCanceledError,
    VersionConflictError,
)
from ..fields import Blob, Compressed
from ..models import Model, ModelMeta
from ._compile_writes import compile_save
from ._history_codec import history_item
from ._history_reads import HistoryQuerySet, read_version
from ._querysets import _VersionedManager
from ._writes import _after_partial, _delete_writes, _prune_after_commit, _send_older, prune_plan


@dataclass_transform(
    kw_only_default=True, field_specifiers=(Field, PrivateAttr, Compressed, Blob)
)
class VersionedModelMeta(ModelMeta):  # decorated again: checkers do not inherit it (see ModelMeta)
    """Metaclass of versioned models: also checks the versioning options of `Meta`."""

    def __new__(  # noqa: D102 - documented on the class
        mcs,
        cls_name: str,
        bases: tuple[type[Any], ...],
        namespace: dict[str, Any],
        **kwargs: Any,
    ) -> type:
        # Checked before the class is built (and registered): Meta as ModelMeta merges it.
        parent = next(
            (c.__dict__["_meta"] for base in bases for c in base.__mro__ if "_meta" in c.__dict__),
            None,
        )
        raw = dict(parent.extra["raw"]) if parent is not None else {}
        own = namespace.get("Meta")
        if own is not None:
            raw.update({k: v for k, v in vars(own).items() if not k.startswith("__")})
        keep = raw.get("max_versions")
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
            raise ConfigurationError(
                f"Cannot use Meta.max_versions on {cls_name}: it must be a whole number of at "
                "least 1 (the current version's history is always kept), or None to keep "
                "every version.",
                code="model-definition",
            )
        if not isinstance(raw.get("compress", True), bool):
            raise ConfigurationError(
                f"Cannot use Meta.compress on {cls_name}: it must be True or False.",
                code="model-definition",
            )
        return super().__new__(mcs, cls_name, bases, namespace, **kwargs)


class VersionedModel(Model, metaclass=VersionedModelMeta):
    """A model that keeps every saved version: `history()`, `revert(n)`, `diff(n)`.

    Each save writes the current item and a history item in one TransactWriteItems,
    conditional on the loaded version. `Meta.max_versions` prunes the history older than
    the newest `max_versions` versions, in the same transaction; `Meta.compress` (default
    True) stores history payloads gzip-compressed.
    """

    # Unannotated, as on Model: a subclass's own `objects = MyQuerySet.as_manager()` types.
    objects = _VersionedManager()
    # Read by dynorm._blobs: each version keeps its own blob objects (history points at them).
    __dynorm_versioned__: ClassVar[bool] = True

    if not TYPE_CHECKING:  # hidden from type checkers, as on Model (see there)

        class Meta:  # noqa: D106 - abstract base
            abstract = True

    # ------------------------------------------------------------------ writes

    def delete(self) -> None:
        """Delete the object and its whole history, conditional on the loaded version.

        DynamoDB: one consistent Query of the history keys, then one TransactWriteItems
        (the current item and up to 99 versions). A longer history takes several, oldest
        versions first, each conditional on the version, the current item in the last: if
        one fails the object is still stored with its newest versions. Inside a
        `transaction()` the object and its history must fit into it.

        Raises:
            VersionConflictError: The object changed (or was deleted) since it was loaded;
                for a long history the message says how many oldest versions were deleted.
            QueryError: Inside a transaction, the history is too long for one.
        """
        super().delete()  # the signals around _delete_unsignalled()

    def _delete_unsignalled(self) -> None:
        self._writable("delete")
        done = 0
        ops = self._delete_ops(done)
        while len(ops) > 1:
            done += _send_older(ops, self._meta.model_name)
            ops = self._delete_ops(done)  # what is left: normally one last step
        built = [ops[0]]
        # The last step is the instance's write: a retry after a lost response is settled.
        write(self, ("delete",), lambda: built.pop() if built else self._delete_op(done))

    def _delete_ops(self, done: int = 0) -> list[WriteOp]:
        base = delete_op(self)
        return _delete_writes(
            type(self),
            base.request,
            lambda n: _after_partial(base.conflict, done + n),
            base.on_success,
            instance_table(self),
        )

    def _delete_op(self, done: int = 0) -> WriteOp:
        ops = self._delete_ops(done)
        while len(ops) > 1:
            done += _send_older(ops, self._meta.model_name)  # refused inside a transaction
            ops = self._delete_ops(done)
        return ops[0]

    def _save_op(self, update_fields: Iterable[str] | None) -> WriteOp:
        meta = self._meta
        if update_fields is not None:
            raise QueryError(
                f"Cannot save {meta.model_name} with update_fields: every version stores the "
                "whole object. Call save() without it.",
                code="bad-query",
            )
        base = save_op(self)
        if base.operation != "PutItem":
            raise QueryError(
                f"Cannot change a key field of the saved {meta.model_name}: its history is "
                "stored under the current key. Create a new object instead.",
                code="bad-query",
            )
        model = type(self)
        new_version = self.version + 1
        item = base.params["Item"]
        pk, sk = item[PK]["S"], item[SK]["S"]
        history = history_item(model, item, new_version)
        # Beside the transaction's two puts: the current item and its history item.
        table = instance_table(self)
        prune, prune_rest = prune_plan(model, (pk, sk), new_version, used=2, table=table)
        request = compile_save(meta, base.request, history, prune)
        name = meta.model_name
        expected = self.version

        def conflict(exc: DynormError) -> Exception | None:
            if isinstance(exc, TransactionCanceledError) and exc.reasons[:1] != [
                "ConditionalCheckFailed"
            ]:
                return VersionConflictError(
                    f"Cannot save {name}: version {new_version} was written concurrently. "
                    "Reload it with refresh_from_db() and apply the change again.",
                    model=name,
                    expected_version=expected,
                    aws_code=exc.aws_code,
                    response=exc.response,
                )
            return base.conflict(exc)

        def on_success(response: dict[str, Any]) -> None:
            base.on_success(response)
            if prune_rest is not None:
                where = table if table is not None else binding(model, None)
                _prune_after_commit(model, pk, sk, prune_rest, new_version, base.token, where)

        return WriteOp.of(request, model, conflict, on_success, token=base.token, table=table)

    def _update_op(self, values: dict[str, Any]) -> WriteOp:
        raise QueryError(
            f"Cannot update() a {self._meta.model_name}: every version stores the whole "
            "object. Assign the fields and call save().",
            code="bad-query",
        )

    # ------------------------------------------------------------------ history

    def history(self) -> HistoryQuerySet[Self]:
        """Every stored version of this object (current included), newest first.

        DynamoDB: one Query on the object's partition (`begins_with(sk, "_history#...")`).
        """
        pk, sk = self._loaded_key or self._meta.primary_key(self.__dict__)
        qs: HistoryQuerySet[Self] = HistoryQuerySet(type(self))
        table = instance_table(self)  # the table the object was read from or saved to
        return qs._clone(extra=(("history", (pk, sk)),), descending=True, table=table)

    async def ahistory(self) -> list[Self]:
        """Every stored version of this object, newest first (`history()`, awaited).

        `async for old in o.history()` streams them instead.
        """
        return await run(list, self.history())

    async def arevert(self, version: int) -> None:
        """`revert()`, awaited."""
        await run(self.revert, version)

    def _version(self, version: int) -> Self:
        pk, sk = self._loaded_key or self._meta.primary_key(self.__dict__)
        return read_version(type(self), pk, sk, version, instance_table(self))

    def revert(self, version: int) -> None:
        """Write a new version whose content is that of `version` (conditional save)."""
        old = self._version(version)
        meta = self._meta
        skip = {"version", *meta.key_fields}
        skip |= {n for n, k in meta.field_kinds.items() if k in ("created_at", "updated_at")}
        for name in meta.field_names:
            if name not in skip:
                vars(self)[name] = old.__dict__[name]
        self.save()

    def diff(self, version: int) -> dict[str, tuple[Any, Any]]:
        """Fields that differ between this object and `version`: {field: (this, that)}."""
        old = self._version(version)
        skip = {"version"} | {n for n, k in self._meta.field_kinds.items() if k == "updated_at"}
        return {
            name: (self.__dict__.get(name), old.__dict__.get(name))
            for name in self._meta.field_names
            if name not in skip and self.__dict__.get(name) != old.__dict__.get(name)
        }
