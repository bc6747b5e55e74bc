"""The pydantic internals dynorm relies on (dynorm/_pydantic_internals.py) still mean what it
assumes: a pydantic release that changes one fails here, by name, not in a model later."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import BaseModel, PrivateAttr
from pydantic._internal import _model_construction

from dynorm import Model
from dynorm._pydantic_internals import (
    ModelMetaclass,
    fast_private_reads,
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


def test_fast_private_reads_read_what_pydantic_reads_in_every_state() -> None:
    class Slow(BaseModel):
        x: int = 0
        _a: int = PrivateAttr(default=1)
        _b: list[int] | None = PrivateAttr(default=None)

    class Fast(Slow):
        pass

    fast_private_reads(Fast)
    slow, fast = Slow(), Fast()
    assert (fast._a, fast._b) == (slow._a, slow._b) == (1, None)
    for obj in (slow, fast):
        obj._a, obj._b = 7, [1]  # writes still go through pydantic's __setattr__
    assert (fast._a, fast._b) == (slow._a, slow._b) == (7, [1])
    assert fast.__pydantic_private__ == slow.__pydantic_private__
    copied = fast.model_copy()
    assert (copied._a, copied._b) == (7, [1])
    bare, slow_bare = Fast.model_construct(), Slow.model_construct()
    assert (bare._a, slow_bare._a) == (1, 1)
    del fast.__pydantic_private__["_a"]
    del slow.__pydantic_private__["_a"]
    for obj in (slow, fast):  # unset: the same AttributeError pydantic raises
        with pytest.raises(AttributeError, match="_a"):
            obj._a  # noqa: B018
