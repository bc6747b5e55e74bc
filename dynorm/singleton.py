"""Singleton models: one item per model (site settings, feature flags, counters)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from typing_extensions import Self

from ._async import run
from ._config import binding
from ._exactly_once import bind
from .models import Model

__all__ = ["SingletonModel"]


class SingletonModel(Model):
    """A model with exactly one stored item, under `pk = "SINGLETON#<type>"`.

    `SiteSettings.load()` returns the stored instance, or one with the defaults (version 0)
    if it was never saved; `save()` is optimistically locked like any other model.
    """

    __dynorm_singleton__: ClassVar[bool] = True

    if not TYPE_CHECKING:  # hidden from type checkers, as on Model (see there)

        class Meta:  # noqa: D106 - abstract base
            abstract = True

    @classmethod
    def load(cls) -> Self:
        """Return the stored instance (a consistent GetItem), or a new one with defaults."""
        try:
            return cls.objects.consistent().get()
        except cls.DoesNotExist:
            fresh = cls()
            bind(fresh, binding(cls, None))  # saved where it was looked for
            return fresh

    @classmethod
    async def aload(cls) -> Self:
        """`load()`, awaited."""
        return await run(cls.load)
