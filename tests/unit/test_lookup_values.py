"""A lookup value that does not validate as its field's type is a QueryError naming model,
field and lookup, never the value (offline: explain() compiles without sending)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

import dynorm
from dynorm import F
from dynorm.exceptions import QueryError
from tests.models import Counter, Event, Order

# (model, the partition-key lookups that make the query a Query, field)
FIELDS = [
    (Order, {"customer_id": "c"}, "total"),  # Decimal
    (Order, {"customer_id": "c"}, "status"),  # Literal
    (Order, {"customer_id": "c"}, "created_at"),  # datetime
    (Counter, {"name": "n"}, "value"),  # int
]


def shapes(lookup: str, bad: Any) -> Any:
    """The value of `lookup` with `bad` in it (alone, in a list, in a pair)."""
    if lookup == "in":
        return [bad]
    if lookup == "between":
        return (bad, bad)
    return bad


@settings(
    max_examples=int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
)
@given(
    case=st.sampled_from(FIELDS),
    lookup=st.sampled_from(["exact", "ne", "gt", "gte", "lt", "lte", "in", "between"]),
    text=st.text(max_size=20),
)
def test_a_lookup_value_that_does_not_validate_names_model_field_and_lookup(
    case: tuple[Any, dict[str, str], str], lookup: str, text: str
) -> None:
    model, key, field = case
    bad = f"not-a-value-{uuid.uuid4().hex}{text}"  # valid for none of the field types
    with pytest.raises(QueryError) as info:
        model.objects.filter(**key, **{f"{field}__{lookup}": shapes(lookup, bad)}).explain()
    message = str(info.value)
    assert message.startswith(f"Cannot filter {model.__name__} on {field} (lookup {lookup}):")
    assert info.value.code == "bad-query"
    assert bad not in message and bad not in repr(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no pydantic echo


def test_the_report_s_example_names_total_and_the_decimal_type() -> None:
    with pytest.raises(QueryError) as info:
        Order.objects.filter(customer_id="c", total="abc").explain()
    assert str(info.value) == (
        "Cannot filter Order on total (lookup exact): the value is not a valid Decimal "
        "(decimal_parsing); pass a value of the field's type."
    )


def test_values_of_the_field_type_still_validate_and_coerce() -> None:
    [request] = Order.objects.filter(customer_id="c", total__gte="12.50").explain()
    assert {"N": "12.50"} in request.params["ExpressionAttributeValues"].values()


# (what is called, the message it starts with) for every path that takes a key or update value
# outside filter(): each validates it as the field's type before anything is sent.
def _value_paths(bad: Any) -> list[tuple[Any, str]]:
    return [
        (lambda: Event.objects.get(stream="s", seq=bad), "Cannot get Event by seq:"),
        (
            lambda: Event.objects.bulk_get([{"stream": "s", "seq": bad}]),
            "Cannot bulk_get Event by seq:",
        ),
        (
            lambda: Counter.objects.filter(name="n").update(value=bad),
            "Cannot update Counter.value:",
        ),
        (
            lambda: Counter.objects.filter(name="n").update(value=F("value").if_not_exists(bad)),
            "Cannot update Counter.value:",
        ),
    ]


@settings(
    max_examples=int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "100")),
    deadline=None,
)
@given(path=st.integers(0, 3), text=st.text(max_size=20))
def test_a_key_or_update_value_that_does_not_validate_is_a_query_error_without_the_value(
    path: int, text: str
) -> None:
    bad = f"not-a-number-{uuid.uuid4().hex}{text}"
    call, start = _value_paths(bad)[path]
    with dynorm.capture() as requests, pytest.raises(QueryError) as info:
        call()
    assert requests == []  # refused before anything was compiled into a request
    message = str(info.value)
    assert message.startswith(start)
    assert "not a valid int" in message
    assert bad not in message and bad not in repr(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no pydantic echo
