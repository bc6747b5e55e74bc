"""Static typing checks of stream changes and signal receivers.

Type-checked, never run (see check_models.py for how expected errors are marked).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from typing_extensions import assert_type

from dynorm import Model, signals, streams
from tests.models import Customer, Order


def check_parse_is_typed_by_the_models_asked_for(event: dict[str, Any]) -> None:
    assert_type(streams.parse(event, Order), list[streams.Change[Order]])
    assert_type(streams.parse(event), list[streams.Change[Model]])
    for change in streams.parse(event, Order):
        assert_type(change.new, Order | None)
        assert_type(change.old, Order | None)
        assert_type(change.event_name, streams.EventName)
        assert_type(change.keys, dict[str, str])
    streams.parse(event, Order, Customer)


def check_receiver_keeps_the_function() -> None:
    def saved(sender: type[Order], instance: Order, created: bool, **kwargs: Any) -> None: ...

    decorated = signals.receiver(signals.post_save, sender=Order)(saved)
    assert_type(decorated(Order, Order(customer_id="c", total=Decimal(1)), True), None)
    signals.post_save.connect(saved, Order)
