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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel
from pydantic._internal._model_construction import init_private_attributes
from pydantic._internal._typing_extra import is_classvar_annotation

if TYPE_CHECKING:
    from pydantic._internal._model_construction import ModelMetaclass
else:
    ModelMetaclass = type(BaseModel)

__all__ = ["ModelMetaclass", "init_private_attributes", "is_classvar_annotation"]
