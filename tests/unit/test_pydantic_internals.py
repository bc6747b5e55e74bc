"""The pydantic internals dynorm relies on (dynorm/_pydantic_internals.py) still mean what it
assumes: a pydantic release that changes one fails here, by name, not in a model later."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, PrivateAttr
from pydantic._internal import _model_construction

from dynorm import Model
from dynorm._pydantic_internals import (
    ModelMetaclass,
    init_private_attributes,
    is_classvar_annotation,
)


def test_the_metaclass_is_pydantics_model_metaclass() -> None:
    assert ModelMetaclass is type(BaseModel)
    assert ModelMetaclass is _model_construction.ModelMetaclass
    assert isinstance(Model, ModelMetaclass)


def test_a_model_with_private_attributes_gets_init_private_attributes_as_its_hook() -> None:
    class WithPrivate(BaseModel):
        x: int = 0
        _seen: int = PrivateAttr(default=0)

    class Hooked(WithPrivate):
        def model_post_init(self, context: object, /) -> None:
            return None

    assert WithPrivate.model_post_init is init_private_attributes
    assert Hooked.model_post_init is not init_private_attributes
    assert WithPrivate().__pydantic_private__ == {"_seen": 0}


def test_classvar_annotations_are_recognised_as_pydantic_does() -> None:
    assert is_classvar_annotation(ClassVar[int])
    assert is_classvar_annotation(ClassVar)
    assert not is_classvar_annotation(int)
