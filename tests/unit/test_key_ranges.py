"""The range guard of models with no type attribute: `_disjoint` never calls two templates
disjoint when some values render both to one key (checked against the key codec itself)."""

from __future__ import annotations

import os

from hypothesis import given, settings, strategies as st

from dynorm._key_ranges import _disjoint
from dynorm._keys import KeyTemplate

# Literal text: separators, the escape character and a few letters, so prefixes collide often.
literal = st.text(alphabet="AB#$x", max_size=4)
value = st.text(alphabet="AB#$x", max_size=4)


@st.composite
def templates(draw: st.DrawFn) -> str:
    head = draw(literal)
    if draw(st.booleans()):
        return head or "K"  # a constant key
    tail = draw(st.sampled_from(["", "#", "#T"]))
    return f"{head}{{f}}{tail}"


@settings(max_examples=int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "500")), deadline=None)
@given(a=templates(), b=templates(), va=value, vb=value)
def test_templates_called_disjoint_never_render_one_key(a: str, b: str, va: str, vb: str) -> None:
    ta = KeyTemplate(a, "A", ["f"], "partition key")
    tb = KeyTemplate(b, "B", ["f"], "partition key")
    if _disjoint(ta, tb):
        assert ta.render({"f": va}) != tb.render({"f": vb})
    assert _disjoint(ta, tb) == _disjoint(tb, ta)


def test_a_plain_field_key_meets_every_range_and_distinct_prefixes_do_not() -> None:
    def t(source: str) -> KeyTemplate:
        return KeyTemplate(source, "M", ["id"], "partition key")

    assert not _disjoint(t("{id}"), t("Task#{id}"))
    assert not _disjoint(t("Task#{id}"), t("Task#{id}#v"))
    assert not _disjoint(t("Task#{id}"), t("Task#x"))
    assert _disjoint(t("Task#{id}"), t("Doc#{id}"))
    assert _disjoint(t("PROFILE"), t("ORDER#{id}"))
    assert _disjoint(t("PROFILE"), t("ORDERS"))
    assert not _disjoint(t("PROFILE"), t("PROFILE"))
