"""Static typing checks of `transaction_get`: one model type, or a tuple typed per position.

Type-checked, never run (see check_models.py for how expected errors are marked).
"""

from __future__ import annotations

from collections.abc import Sequence

from typing_extensions import assert_type

import dynorm
from tests.models import Counter, Customer, Order


def check_one_model_type(customer: Customer) -> None:
    got = dynorm.transaction_get([(Customer, {"id": "c1"}), (Customer, {"id": "c2"})])
    assert_type(got, list[Customer | None])
    assert_type(dynorm.transaction_get([customer, customer]), list[Customer | None])
    # Instances and pairs mixed: pyright infers Customer, mypy joins to Model without context.
    mixed: list[Customer | None] = dynorm.transaction_get([customer, (Customer, {"id": "c2"})])
    assert_type(mixed, list[Customer | None])


def check_a_tuple_is_typed_per_position(order: Order) -> None:
    customer, counter = dynorm.transaction_get(
        ((Customer, {"id": "c1"}), (Counter, {"name": "visits"}))
    )
    assert_type(customer, Customer | None)
    assert_type(counter, Counter | None)
    assert_type(
        dynorm.transaction_get(((Customer, {"id": "c1"}), order, (Counter, {"name": "n"}))),
        tuple[Customer | None, Order | None, Counter | None],
    )
    assert_type(dynorm.transaction_get((order,)), tuple[Order | None])


def check_any_sequence(keys: Sequence[tuple[type[Order], dict[str, str]]]) -> None:
    assert_type(dynorm.transaction_get(keys), Sequence[Order | None])


def check_bad_keys() -> None:
    dynorm.transaction_get([(dict, {"id": "c1"})])  # type: ignore[type-var]  # pyright: ignore[reportArgumentType, reportCallIssue]
    dynorm.transaction_get([("Customer", {"id": "c1"})])  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType, reportCallIssue]
