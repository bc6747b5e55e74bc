"""The registry of concrete models by entity type name."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ._key_ranges import check_shared_ranges
from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from .models import Model

_models: dict[str, type[Model]] = {}


def register(model: type[Model]) -> None:
    """Register a concrete model; a different class claiming the same type name raises.

    Re-executing the same class definition (same module and qualified name, as in a
    notebook or a reloaded module) replaces the earlier class instead. A model whose key
    range can meet another's in one table, while one of them has no type attribute, raises
    too (`_key_ranges`).
    """
    name = model._meta.type_name
    existing = _models.get(name)
    if existing is not None and (
        existing.__module__ != model.__module__ or existing.__qualname__ != model.__qualname__
    ):
        raise ConfigurationError(
            f"Cannot register {model.__module__}.{model.__qualname__} as entity type {name!r}: "
            f"{existing.__module__}.{existing.__qualname__} already uses it; set a unique "
            "Meta.type_name on one of them.",
            code="duplicate-type-name",
        )
    check_shared_ranges(model._meta, (m._meta for m in _models.values()))
    _models[name] = model


def get_model(type_name: str) -> type[Model] | None:
    """Return the model registered under an entity type name, if any."""
    return _models.get(type_name)


def all_models() -> list[type[Model]]:
    """Return every registered concrete model."""
    return list(_models.values())


@contextmanager
def isolated_registry() -> Iterator[None]:
    """Run a block with an empty registry and restore the previous one afterwards (tests, docs)."""
    saved = dict(_models)
    _models.clear()
    try:
        yield
    finally:
        _models.clear()
        _models.update(saved)
