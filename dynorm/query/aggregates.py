"""Aggregates for `QuerySet.aggregate()`: Count, Sum, Min, Max, Avg, computed client-side."""

from __future__ import annotations

import enum
import typing
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from .._codec import unwrap_optional
from ..exceptions import QueryError

if TYPE_CHECKING:
    from .._options import Options

__all__ = ["Aggregate", "Avg", "Count", "Max", "Min", "Sum", "collect", "evaluate"]

_NUMBERS = (int, float, Decimal)
_UNORDERED = (list, set, frozenset, dict, tuple)


class Aggregate:
    """One aggregate over the matches of a query; see the subclasses."""

    #: The name in a default alias (`total__sum`) and in messages.
    function: ClassVar[str] = ""

    def __init__(self, field: str | None = None) -> None:
        self.field = field

    def __repr__(self) -> str:
        return f"{type(self).__name__}({'' if self.field is None else repr(self.field)})"

    def __bool__(self) -> bool:
        raise TypeError(f"Cannot use {self!r} as a truth value; pass it to aggregate().")

    @property
    def default_alias(self) -> str:
        """The key of this aggregate in `aggregate()`'s result when passed positionally."""
        return self.function if self.field is None else f"{self.field}__{self.function}"

    def check(self, meta: Options) -> None:
        """Raise QueryError unless the field exists and this aggregate can read it."""
        if self.field is None:
            raise QueryError(
                f"Cannot compute {type(self).__name__}() of {meta.model_name} without a field; "
                f"name one, e.g. {type(self).__name__}('total').",
                code="bad-query",
            )
        meta.check_field(self.field, f"aggregate {type(self).__name__} over")

    def _base(self, meta: Options) -> Any:
        assert self.field is not None
        return unwrap_optional(meta.extra["annotations"][self.field])[0]

    def result(self, values: list[Any]) -> Any:
        """The aggregate of the non-None values of its field (or of every match)."""
        raise NotImplementedError


class Count(Aggregate):
    """How many matches (`Count()`), or how many have `field` set (`Count("note")`).

    `aggregate(Count())` alone is Select=COUNT, like `count()`.
    """

    function = "count"

    def check(self, meta: Options) -> None:  # noqa: D102 - a field is optional
        if self.field is not None:
            meta.check_field(self.field, "aggregate Count over")

    def result(self, values: list[Any]) -> int:  # noqa: D102
        return len(values)


class Sum(Aggregate):
    """The sum of a number field over the matches; None when no match has a value."""

    function = "sum"

    def check(self, meta: Options) -> None:  # noqa: D102
        super().check(meta)
        _require_number(self, meta)

    def result(self, values: list[Any]) -> Any:  # noqa: D102
        return sum(values[1:], values[0]) if values else None


class Avg(Aggregate):
    """The mean of a number field (Decimal for Decimal fields, else float); None if empty."""

    function = "avg"

    def check(self, meta: Options) -> None:  # noqa: D102
        super().check(meta)
        _require_number(self, meta)

    def result(self, values: list[Any]) -> Any:  # noqa: D102
        if not values:
            return None
        if all(isinstance(v, Decimal) for v in values):
            return sum(values, Decimal(0)) / len(values)
        return float(sum(float(v) for v in values) / len(values))


class Min(Aggregate):
    """The smallest value of an orderable field over the matches; None if none has one."""

    function = "min"

    def check(self, meta: Options) -> None:  # noqa: D102
        super().check(meta)
        _require_ordered(self, meta)

    def result(self, values: list[Any]) -> Any:  # noqa: D102
        return min(values) if values else None


class Max(Aggregate):
    """The largest value of an orderable field over the matches; None if none has one."""

    function = "max"

    def check(self, meta: Options) -> None:  # noqa: D102
        super().check(meta)
        _require_ordered(self, meta)

    def result(self, values: list[Any]) -> Any:  # noqa: D102
        return max(values) if values else None


def _require_number(agg: Aggregate, meta: Options) -> None:
    base = agg._base(meta)
    if base is bool or base not in _NUMBERS:
        raise QueryError(
            f"Cannot compute {type(agg).__name__} of {meta.model_name}.{agg.field}: it is not "
            "a number field (int, float or Decimal); use Min, Max or Count on it.",
            code="bad-query",
        )


def _require_ordered(agg: Aggregate, meta: Options) -> None:
    base = agg._base(meta)
    origin = typing.get_origin(base) or base
    unordered = (isinstance(origin, type) and issubclass(origin, (*_UNORDERED, BaseModel))) or (
        isinstance(base, type) and issubclass(base, enum.Enum)
    )
    if unordered or origin is typing.Union:
        raise QueryError(
            f"Cannot compute {type(agg).__name__} of {meta.model_name}.{agg.field}: its values "
            "have no order (a collection, nested model, enum or union); aggregate a scalar "
            "field.",
            code="bad-query",
        )


def collect(
    meta: Options, args: Iterable[Aggregate], named: Mapping[str, Aggregate]
) -> dict[str, Aggregate]:
    """The aggregates by result key (`total__sum`, or the keyword given), each checked."""
    out: dict[str, Aggregate] = {}
    for agg in (*args, *named.values()):
        if not isinstance(agg, Aggregate):
            raise QueryError(
                f"Cannot aggregate {meta.model_name} with a {type(agg).__name__}: pass Count, "
                "Sum, Min, Max or Avg from dynorm.",
                code="bad-query",
            )
        agg.check(meta)
    for agg in args:
        if agg.default_alias in out or agg.default_alias in named:
            raise QueryError(
                f"Cannot aggregate {meta.model_name} with {agg!r} twice under one name "
                f"({agg.default_alias!r}); name them: aggregate(a={agg!r}, ...).",
                code="bad-query",
            )
        out[agg.default_alias] = agg
    out.update(named)
    if not out:
        raise QueryError(
            f"Cannot aggregate {meta.model_name} with no aggregates; pass e.g. Count().",
            code="bad-query",
        )
    return out


def evaluate(aggs: Mapping[str, Aggregate], rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Each aggregate's result over the rows (field values of every match)."""
    seen: dict[str, list[Any]] = {key: [] for key in aggs}
    for row in rows:
        for key, agg in aggs.items():
            value = True if agg.field is None else row.get(agg.field)
            if value is not None:
                seen[key].append(value)
    return {key: agg.result(seen[key]) for key, agg in aggs.items()}
