"""Properties of the key codec (dynorm._keys), for every value hypothesis can draw.

Each property runs 2,000 examples: keys round-trip, never collide, stay inside their prefix,
sort like their values, and compiled sort-key ranges select exactly the matching keys.
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dynorm import Model, _registry
from dynorm._codec import ValueProblem
from dynorm._keys import KeyTemplate, escape, render_value, successor, unescape
from dynorm.exceptions import ConfigurationError, InvalidValueError

EXAMPLES = settings(
    max_examples=int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "2000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

#: Text with the characters that matter to the codec over-represented: the separator, the
#: escape, everything below them, the largest code point, and ordinary text.
SPECIAL = '#$%\x00 !"\n\U0010ffff'
texts = st.text(
    alphabet=st.one_of(st.sampled_from(SPECIAL), st.characters(exclude_categories=["Cs"])),
    max_size=12,
)
decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: abs(d.adjusted()) < 60
)


def utf8(text: str) -> bytes:
    """DynamoDB compares string keys by their UTF-8 bytes."""
    return text.encode("utf-8")


with _registry.isolated_registry():

    class KFile(Model):
        tenant: str
        owner: str
        file_id: str

        class Meta:
            pk = "T#{tenant}"
            sk = "FILE#{owner}#{file_id}"

    class KPair(Model):
        a: str
        b: str

        class Meta:
            pk = "T#{a}#{b}"
            sk = "PAIR"

    class KNum(Model):
        amount: Decimal
        when: datetime
        day: date
        flag: bool
        seq: int

        class Meta:
            pk = "N#{amount}#{flag}"
            sk = "S#{when}#{day}#{seq:010d}"


# --------------------------------------------------------------------------- escape


@EXAMPLES
@given(texts)
def test_escape_round_trips_and_never_leaves_a_separator(value: str) -> None:
    encoded = escape(value)
    assert unescape(encoded) == value
    assert "#" not in encoded
    assert all(ord(c) > 0x24 or c == "$" for c in encoded)


@EXAMPLES
@given(texts, texts)
def test_escape_preserves_order_and_prefixes(a: str, b: str) -> None:
    ea, eb = escape(a), escape(b)
    assert (utf8(ea) < utf8(eb)) == (utf8(a) < utf8(b))
    assert ea.startswith(eb) == a.startswith(b)
    assert (ea == eb) == (a == b)


# --------------------------------------------------------------------------- templates


@EXAMPLES
@given(texts, texts, texts, texts)
def test_two_field_keys_are_injective_and_parse_back(a: str, b: str, c: str, d: str) -> None:
    if not (a and b and c and d):
        return
    k1 = KPair._meta.primary_key({"a": a, "b": b})
    k2 = KPair._meta.primary_key({"a": c, "b": d})
    assert (k1 == k2) == ((a, b) == (c, d))
    assert KPair.parse_key(*k1) == {"a": a, "b": b}


@EXAMPLES
@given(texts, texts, texts)
def test_a_fixed_field_prefix_selects_only_that_value(owner: str, other: str, file_id: str) -> None:
    assert KFile._meta.sk is not None
    prefix, fixed = KFile._meta.sk.render_prefix({"owner": owner})
    assert fixed == 1
    key = KFile._meta.sk.render({"owner": other, "file_id": file_id})
    assert key is not None
    assert key.startswith(prefix) == (owner == other)


@EXAMPLES
@given(texts, texts, texts, texts)
def test_keys_sort_like_their_leading_values(a: str, b: str, x: str, y: str) -> None:
    """Text order of `FILE#{owner}#{file_id}` is (owner, file_id) order, whatever follows."""
    assert KFile._meta.sk is not None
    ka = KFile._meta.sk.render({"owner": a, "file_id": x})
    kb = KFile._meta.sk.render({"owner": b, "file_id": y})
    assert ka is not None and kb is not None
    assert (utf8(ka) < utf8(kb)) == ((utf8(a), utf8(x)) < (utf8(b), utf8(y)))


@EXAMPLES
@given(decimals, decimals)
def test_equal_numbers_render_one_key_and_others_differ(a: Decimal, b: Decimal) -> None:
    assert (render_value(a) == render_value(b)) == (a == b)
    assert Decimal(render_value(a)) == a


@EXAMPLES
@given(
    decimals,
    st.datetimes(timezones=st.just(timezone.utc)),
    st.dates(),
    st.booleans(),
    st.integers(min_value=0, max_value=9_999_999_999),
)
def test_typed_keys_parse_back(
    amount: Decimal, when: datetime, day: date, flag: bool, seq: int
) -> None:
    values = {"amount": amount, "when": when, "day": day, "flag": flag, "seq": seq}
    parsed = KNum.parse_key(*KNum._meta.primary_key(values))
    assert parsed == values


def test_documented_examples() -> None:
    """The table in docs/concepts/models-and-keys.md."""
    assert render_value("a#b") == "a$23b"
    assert render_value("US$5") == "US$245"
    assert render_value("Ada Lovelace") == "Ada$20Lovelace"
    assert render_value(Decimal("1.50")) == render_value(Decimal("1.5")) == "1.5"
    assert render_value(Decimal("1E+2")) == "100"
    assert render_value(Decimal("-0")) == "0"
    assert render_value(7, "05d") == "00007"


@pytest.mark.parametrize(
    ("value", "spec"), [(Decimal("3.14159"), "012.2f"), (123456, "05d"), (-1, "05d")]
)
def test_a_format_spec_never_rounds_or_misorders(value: Any, spec: str) -> None:
    with pytest.raises(ValueProblem):
        render_value(value, spec)


def test_a_lone_surrogate_is_a_typed_error_naming_the_field() -> None:
    with pytest.raises(InvalidValueError) as info:
        KFile._meta.primary_key({"tenant": "t", "owner": "a\ud800", "file_id": "b"})
    assert "surrogate" in str(info.value)
    assert "owner" in str(info.value)


@pytest.mark.parametrize("template", ["{a}{b}", "{a}-{b}", "X#{a}:{b}", "{a}#{a}"], ids=repr)
def test_fields_must_be_separated_by_the_separator(template: str) -> None:
    with pytest.raises(ConfigurationError):
        KeyTemplate(template, "M", ["a", "b"], "sort key")


def test_a_format_spec_is_refused_on_a_text_field() -> None:
    with pytest.raises(ConfigurationError, match="only number fields"):
        with _registry.isolated_registry():

            class Padded(Model):
                name: str

                class Meta:
                    pk = "P#{name:>10}"


def test_parse_key_refuses_another_models_key() -> None:
    with pytest.raises(InvalidValueError):
        KFile.parse_key("OTHER#x", "FILE#a#b")
    with pytest.raises(InvalidValueError):  # an unescaped separator inside a value
        KFile.parse_key("T#x", "FILE#a#b#c")
    assert KFile.parse_key("T#x", "FILE#a$23b#c") == {"tenant": "x", "owner": "a#b", "file_id": "c"}


@EXAMPLES
@given(texts.filter(bool))
def test_successor_bounds_every_key_with_the_prefix(prefix: str) -> None:
    bound = successor(prefix)
    assert bound is not None or set(prefix) == {"\U0010ffff"}
    if bound is not None:
        assert utf8(prefix) < utf8(bound)
        assert not bound.startswith(prefix)
        bound.encode("utf-8")  # never a surrogate


# --------------------------------------------------------------------------- compiled ranges

_BETWEEN = re.compile(r"#n1 BETWEEN (:v\d+) AND (:v\d+)")
_CMP = re.compile(r"#n1 (>=|<=) (:v\d+)")
_BEGINS = re.compile(r"begins_with\(#n1, (:v\d+)\)")


def _key_range(params: dict[str, Any]) -> Any:
    """Turn a compiled sort-key condition into a predicate over key text."""
    cond = params["KeyConditionExpression"]
    values = {k: v["S"] for k, v in params["ExpressionAttributeValues"].items() if "S" in v}
    if m := _BETWEEN.search(cond):
        lo, hi = utf8(values[m.group(1)]), utf8(values[m.group(2)])
        return lambda k: lo <= utf8(k) <= hi
    if m := _CMP.search(cond):
        bound = utf8(values[m.group(2)])
        return (lambda k: utf8(k) >= bound) if m.group(1) == ">=" else (lambda k: utf8(k) <= bound)
    if m := _BEGINS.search(cond):
        start = values[m.group(1)]
        return lambda k: k.startswith(start)
    raise AssertionError(cond)


PREDICATES = {
    "gt": lambda v, x: utf8(v) > utf8(x),
    "gte": lambda v, x: utf8(v) >= utf8(x),
    "lt": lambda v, x: utf8(v) < utf8(x),
    "lte": lambda v, x: utf8(v) <= utf8(x),
    "begins_with": lambda v, x: v.startswith(x),
}


@EXAMPLES
@given(
    st.sampled_from(sorted(PREDICATES)),
    st.sampled_from(["owner", "file_id"]),
    texts.filter(bool),
    st.lists(st.tuples(texts.filter(bool), texts.filter(bool)), min_size=1, max_size=8),
)
def test_sort_key_ranges_select_exactly_the_matching_keys(
    lookup: str, field: str, bound: str, rows: list[tuple[str, str]]
) -> None:
    """On a leading field (more key text follows) and on the last field, for every lookup:
    the key condition holds exactly for matching values when the lookup left the filter, and
    at least for them when it stayed."""
    fixed = {"tenant": "t"} if field == "owner" else {"tenant": "t", "owner": rows[0][0]}
    qs = KFile.objects.filter(**fixed, **{f"{field}__{lookup}": bound})
    (request,) = qs._plan().requests
    params = request.params
    in_range = _key_range(params)
    filtered = field in params.get("ExpressionAttributeNames", {}).values()
    assert KFile._meta.sk is not None
    for owner, file_id in rows:
        key = KFile._meta.sk.render({"owner": owner, "file_id": file_id})
        assert key is not None
        value = owner if field == "owner" else file_id
        matches = owner == fixed.get("owner", owner) and PREDICATES[lookup](value, bound)
        if filtered:
            assert in_range(key) or not matches
        else:
            assert in_range(key) == matches, (lookup, owner, file_id, bound, key)
