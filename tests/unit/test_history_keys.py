"""History sort keys: one object's history key never reaches another object's history."""

from __future__ import annotations

import os

import pytest
from hypothesis import assume, given, settings, strategies as st

from dynorm._keys import KeyTemplate, escape
from dynorm.versioning import history_prefix, history_sk, parse_history_sk

# Characters the encoding treats specially (separator, escape, the end mark, low controls),
# digits that look like versions, and any other unicode (no lone surrogates: not UTF-8).
special = st.sampled_from(["#", "$", "!", "_history", "$23", "$24", "\x00", " ", "0", "9"])
chars = st.characters(blacklist_categories=("Cs",))
texts = st.lists(special | chars, max_size=12).map("".join)
versions = st.integers(min_value=0, max_value=10**12 - 1)
EXAMPLES = settings(
    max_examples=int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "2000")),
    deadline=None,
    database=None,
)


@EXAMPLES
@given(sk=texts, version=versions)
def test_a_history_key_parses_back_to_its_object_and_version(sk: str, version: int) -> None:
    key = history_sk(sk, version)
    assert parse_history_sk(key) == (sk, version)
    assert key.startswith(history_prefix(sk))


@EXAMPLES
@given(first=texts, second=texts, version=versions)
def test_a_history_prefix_never_reaches_another_objects_history(
    first: str, second: str, version: int
) -> None:
    assume(first != second)
    assert not history_sk(second, version).startswith(history_prefix(first))
    assert history_sk(first, version) != history_sk(second, version)


@EXAMPLES
@given(sk=texts, tail=texts, version=versions)
def test_an_object_key_that_extends_another_never_shares_its_history(
    sk: str, tail: str, version: int
) -> None:
    # The case of slug "a" and slug "a#b": one current key is a prefix of the other.
    assume(tail)
    for longer in (sk + tail, sk + "#" + tail, sk + "!" + tail):
        assert not history_sk(longer, version).startswith(history_prefix(sk))
        assert not history_sk(sk, version).startswith(history_prefix(longer))


@EXAMPLES
@given(sk=texts, low=versions, high=versions)
def test_history_keys_of_one_object_sort_by_version(sk: str, low: int, high: int) -> None:
    assume(low < high)
    assert history_sk(sk, low) < history_sk(sk, high)


@EXAMPLES
@given(text=texts | st.builds(lambda s, n: history_sk(s, n) + "x", texts, versions))
def test_only_a_key_history_sk_wrote_parses_as_one(text: str) -> None:
    # Any other text is refused, so parsing is injective: no two texts name one version.
    for candidate in (text, "_history#" + text, "_history#" + text + "!000000000001"):
        try:
            sk, version = parse_history_sk(candidate)
        except ValueError:
            continue
        assert history_sk(sk, version) == candidate


TEMPLATES = [
    KeyTemplate(source, "Crafted", ["a", "b", "c"], "sort key")
    for source in ("{a}", "{a}#{b}", "{a}#{b}#{c}", "_history#{a}#{b}", "_history#{a}", "X#{a}")
]
# Values an attacker would pick to forge a history key: the prefix, another object's
# escaped key, a version's digits, the end mark.
forging = st.sampled_from(["_history", "_history#", "!", "000000000001", "!000000000001"])
values = forging | texts | st.builds(escape, texts) | st.builds(lambda s: history_sk(s, 1), texts)


@EXAMPLES
@given(template=st.sampled_from(TEMPLATES), a=values, b=values, c=values)
def test_no_item_rendered_from_field_values_takes_a_history_key(
    template: KeyTemplate, a: str, b: str, c: str
) -> None:
    key = template.render({"a": a, "b": b, "c": c})
    assert key is not None
    with pytest.raises(ValueError):
        parse_history_sk(key)


def test_a_version_that_does_not_fit_twelve_digits_is_refused() -> None:
    with pytest.raises(ValueError):
        history_sk("Page", 10**12)
    with pytest.raises(ValueError):
        history_sk("Page", -1)
