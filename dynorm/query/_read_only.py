"""`qs.with_blobs()` and `objects.read_only()`: a QuerySet whose writes raise.

`ReadOnly` is mixed into (a subclass of) the QuerySet's own class, so custom QuerySet methods
keep working; every write method raises `ReadOnlyError` before anything is sent, and every
object it returns is read-only too (its `save()`, `update()` and `delete()` raise).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, cast

from typing_extensions import Self, TypeVar

from ..exceptions import ReadOnlyError
from .compiler import QueryState

if TYPE_CHECKING:
    from ..models import Model
    from .pagination import Page

__all__ = ["ReadOnly", "ReadOnlyMethods", "read_only_error"]

M = TypeVar("M", bound="Model")
_classes: dict[type[Any], type[Any]] = {}


def read_only_error(model: str, action: str) -> ReadOnlyError:
    """The error of a write through a read-only manager, repository or object."""
    return ReadOnlyError(
        f"Cannot {action} {model}: it was read through a read-only manager "
        "(objects.read_only() or a read-only Repository). Use Model.objects to write.",
        model=model,
    )


class ReadOnlyMethods(Generic[M]):
    """The QuerySet methods of this module: `with_blobs()` and `read_only()`."""

    if TYPE_CHECKING:  # provided by QuerySet
        model: type[M]
        _state: QueryState

        def _clone(self, **changes: Any) -> Self: ...

    def with_blobs(self) -> Self:
        """Load every result's blob fields at once, concurrently (S3: GetObject each).

        Without it blobs load lazily, one GetObject on first access of each.
        """
        return self._clone(extra=(*self._state.extra, ("with_blobs", True)))

    def read_only(self) -> Self:
        """This QuerySet as a read-only manager: its writes, and its objects' writes, raise.

        Raises (on a write):
            ReadOnlyError: `create()`, `bulk_create()`, `update()`, `delete()`,
                `get_or_create()`, ... and `save()` / `update()` / `delete()` of its objects.
        """
        cls = type(self)
        if issubclass(cls, ReadOnly):
            return self
        frozen = _classes.get(cls)
        if frozen is None:
            frozen = _classes.setdefault(cls, type(f"ReadOnly{cls.__name__}", (ReadOnly, cls), {}))
        return cast(Self, frozen(self.model, self._state))


def _mark(obj: Any) -> Any:
    if obj is not None:
        obj._read_only = True
    return obj


class ReadOnly:
    """Mixed before a QuerySet class: writes raise, results are read-only objects."""

    model: Any

    def _parent(self) -> Any:
        return super()  # the QuerySet class this one is mixed into

    def _refuse(self, action: str) -> ReadOnlyError:
        return read_only_error(self.model._meta.model_name, action)

    def _fetch(self, limit: int | None = None) -> Iterator[Any]:
        for obj in self._parent()._fetch(limit):
            yield _mark(obj)

    def _fetch_pages(self, limit: int | None = None) -> Iterator[list[Any]]:
        for page in self._parent()._fetch_pages(limit):  # `async for` reads pages
            yield [_mark(obj) for obj in page]

    def _get_item(self, key: tuple[str, str], fields: str) -> Any:
        return _mark(self._parent()._get_item(key, fields))

    def page(self, size: int, cursor: str | None = None) -> Page[Any]:  # noqa: D102
        found: Page[Any] = self._parent().page(size, cursor)
        for obj in found.items:
            _mark(obj)
        return found

    def bulk_get(self, keys: Any, *, consistent: bool = False) -> list[Any]:  # noqa: D102
        return [_mark(o) for o in self._parent().bulk_get(keys, consistent=consistent)]

    def in_bulk(self, keys: Iterable[Any], *, consistent: bool = False) -> dict[Any, Any]:  # noqa: D102
        found: dict[Any, Any] = self._parent().in_bulk(keys, consistent=consistent)
        return {k: _mark(v) for k, v in found.items()}

    def create(self, /, **values: Any) -> Any:  # noqa: D102
        raise self._refuse("create")

    def get_or_create(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        raise self._refuse("get_or_create")

    def update_or_create(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        raise self._refuse("update_or_create")

    def bulk_create(self, objs: Iterable[Any], *, overwrite: bool = False) -> Any:  # noqa: D102
        raise self._refuse("bulk_create")

    def update(self, /, **values: Any) -> Any:  # noqa: D102
        raise self._refuse("update")

    def delete(self) -> Any:  # noqa: D102
        raise self._refuse("delete")
