"""The QuerySet's async terminals: each awaits its sync twin on a dynorm worker thread.

Bound as methods in `QuerySet`'s class body, so `Order.objects.aget(...)` types as
`Order`. Django's names (`aget`, `acount`, `async for`, `aiterator()`); the sync methods'
docstrings say what each one sends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .._async import iterate, run
from .._exactly_once import bind
from ._read_only import ReadOnly
from .expressions import Q
from .pagination import Page

if TYPE_CHECKING:
    from ..models import Model
    from .queryset import QuerySet

M = TypeVar("M", bound="Model")


async def aget(self: QuerySet[M], /, *args: Q, **lookups: Any) -> M:
    """`get()`, awaited."""
    return await run(self.get, *args, **lookups)


async def acreate(self: QuerySet[M], /, **values: Any) -> M:
    """`create()`, awaited (with `asave()`: async signal receivers are awaited)."""
    if isinstance(self, ReadOnly):
        raise self._refuse("create")
    obj = self.model(**values)
    bind(obj, self._binding())  # created in this QuerySet's table
    await obj.asave()
    return obj


async def aget_or_create(
    self: QuerySet[M], /, defaults: Mapping[str, Any] | None = None, **lookups: Any
) -> tuple[M, bool]:
    """`get_or_create()`, awaited."""
    return await run(self.get_or_create, defaults, **lookups)


async def aupdate_or_create(
    self: QuerySet[M], /, defaults: Mapping[str, Any] | None = None, **lookups: Any
) -> tuple[M, bool]:
    """`update_or_create()`, awaited."""
    return await run(self.update_or_create, defaults, **lookups)


async def acount(self: QuerySet[M]) -> int:
    """`count()`, awaited."""
    return await run(self.count)


async def aexists(self: QuerySet[M]) -> bool:
    """`exists()`, awaited."""
    return await run(self.exists)


async def afirst(self: QuerySet[M]) -> M | None:
    """`first()`, awaited."""
    return await run(self.first)


async def alast(self: QuerySet[M]) -> M | None:
    """`last()`, awaited."""
    return await run(self.last)


async def apage(self: QuerySet[M], size: int, cursor: str | None = None) -> Page[M]:
    """`page()`, awaited."""
    return await run(self.page, size, cursor)


async def aupdate(self: QuerySet[M], /, **values: Any) -> int:
    """`update()` of every match, awaited."""
    return await run(self.update, **values)


async def adelete(self: QuerySet[M]) -> int:
    """`delete()` of every match, awaited."""
    return await run(self.delete)


async def abulk_create(self: QuerySet[M], objs: Iterable[M], *, overwrite: bool = False) -> list[M]:
    """`bulk_create()`, awaited."""
    return await run(self.bulk_create, list(objs), overwrite=overwrite)


async def abulk_get(
    self: QuerySet[M], keys: Sequence[Mapping[str, Any] | M], *, consistent: bool = False
) -> list[M | None]:
    """`bulk_get()`, awaited."""
    return await run(self.bulk_get, keys, consistent=consistent)


async def aiterator(self: QuerySet[M]) -> AsyncIterator[M]:
    """Stream the matches page by page without caching them (`iterator()`, async).

    Each page is read on a worker thread when the previous one is used up; breaking out
    of the loop, an exception or a cancellation closes the page source.
    """
    pages = iterate(self._fetch_pages)
    try:
        async for page in pages:
            for item in page:
                yield item
    finally:
        await pages.aclose()


async def aiter_cached(self: QuerySet[M]) -> AsyncIterator[M]:
    """`async for o in qs`: pages read as you iterate; a completed pass fills the cache."""
    if self._cache is not None:
        for item in self._cache:
            yield item
        return
    seen: list[M] = []
    pages = iterate(self._fetch_pages)
    try:
        async for page in pages:
            seen.extend(page)
            for item in page:
                yield item
    finally:
        await pages.aclose()
    self._cache = seen


class AsyncTerminals:
    """The async terminals, as methods of `QuerySet` (which subclasses this)."""

    aget = aget
    acreate = acreate
    aget_or_create = aget_or_create
    aupdate_or_create = aupdate_or_create
    acount = acount
    aexists = aexists
    afirst = afirst
    alast = alast
    apage = apage
    aupdate = aupdate
    adelete = adelete
    abulk_create = abulk_create
    abulk_get = abulk_get
    aiterator = aiterator
    __aiter__ = aiter_cached
