"""The pydantic internals dynorm relies on, in one place.

pydantic offers no public name for these; if a pydantic release moves or changes one,
importing this module fails (or `tests/unit/test_pydantic_internals.py` does) with the
name, instead of a model misbehaving later:

- `ModelMetaclass`: at run time this is `type(BaseModel)` (public); type checkers are told
  it is pydantic's `ModelMetaclass`, the name their pydantic support knows.
- `init_private_attributes`: the `model_post_init` pydantic installs on a model with private
  attributes and no hook of its own; the fast decoder compares against it to know whether
  copying a template of private values is equivalent to calling it.
- `is_classvar_annotation`: whether an annotation is a `ClassVar` (pydantic's own rule, so
  dynorm skips exactly the annotations pydantic skips).
- `fast_private_reads`: private attribute values live in the instance's
  `__pydantic_private__` dict, read through `BaseModel.__getattr__` (about 1.5 µs a read,
  an AttributeError raised and caught inside each); a class property reads the dict
  directly. Writes still go through pydantic's `__setattr__`, which handles private names
  before any descriptor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic._internal._model_construction import init_private_attributes
from pydantic._internal._typing_extra import is_classvar_annotation

if TYPE_CHECKING:
    from pydantic._internal._model_construction import ModelMetaclass
else:
    ModelMetaclass = type(BaseModel)

__all__ = [
    "ModelMetaclass",
    "fast_private_reads",
    "init_private_attributes",
    "is_classvar_annotation",
]


def _private_reader(name: str) -> property:
    def read(self: BaseModel) -> Any:
        private: Any = self.__pydantic_private__
        try:
            return private[name]
        except (KeyError, TypeError):  # not set yet (pydantic's own __getattr__ tells)
            base: Any = BaseModel
            return base.__getattr__(self, name)

    return property(read)


def fast_private_reads(cls: type[BaseModel]) -> None:
    """Read `cls`'s private attributes (and its subclasses') without `__getattr__`."""
    for name in cls.__private_attributes__:
        setattr(cls, name, _private_reader(name))
