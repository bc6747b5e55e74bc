"""Offline tests of the pure query compiler (`QuerySet.explain()` / `compile_query`).

Nothing here talks to DynamoDB: every test compiles a QuerySet and checks the request dicts.
Besides exact shapes, every request built goes through `check_request()` (placeholders defined
and used, expressions made only of placeholders and operators, valid key conditions, ordered
BETWEEN bounds), and the sort-key range tests run the compiled request over in-memory items
with a tiny expression evaluator, so a range that misses or adds items fails.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import pytest

import dynorm
from dynorm import F, Index, Model, Q, _config, _registry
from dynorm._instance_writes import build_item
from dynorm._keys import escape
from dynorm.exceptions import DynormError, QueryError
from dynorm.query.compiler import Plan, Request, compile_query
from tests.models import Color, Counter, Customer, Event, Everything, Order

TABLE = "tbl"  # DynamoDB table names are 3 to 255 characters
BASE_MODELS = (Customer, Order, Counter, Everything, Event)
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
T0_TEXT = "2024-01-01T00:00:00.000000Z"


@pytest.fixture(autouse=True)
def _compiler_env() -> Iterator[None]:
    """Table name "tbl", and a registry holding exactly the shared test models.

    The compiler is pure (its requests never depend on which other models are registered;
    `test_compiled_requests_do_not_depend_on_the_registered_models`), but include() accepts only
    registered models, and models defined by a test must not outlive it.
    """
    saved = _config.snapshot()
    dynorm.configure(table_name=TABLE)
    with _registry.isolated_registry():
        for model in BASE_MODELS:
            _registry.register(model)
        yield
    _config.restore(saved)


# --------------------------------------------------------------------------- expression tools

_TOKEN = re.compile(
    r"\s*(?P<tok>#n\d+(?:\.#n\d+)*|:v\d+|<>|<=|>=|=|<|>|\(|\)|,"
    r"|(?:AND|OR|NOT|BETWEEN|IN|attribute_exists|attribute_not_exists|begins_with|contains"
    r"|size)\b)"
)
_EXPRESSION_KEYS = ("KeyConditionExpression", "FilterExpression", "ProjectionExpression")
_KEY_CONDITION = re.compile(
    r"(?P<pk>#n\d+) = :v\d+"
    r"(?: AND (?:(?P<sk1>#n\d+) (?:=|<|<=|>|>=) :v\d+"
    r"|(?P<sk2>#n\d+) BETWEEN :v\d+ AND :v\d+"
    r"|begins_with\((?P<sk3>#n\d+), :v\d+\)))?"
)


def tokenize(expression: str) -> list[str]:
    """Split an expression into tokens; anything that is not a placeholder or operator fails."""
    tokens: list[str] = []
    pos = 0
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        assert match is not None, f"foreign text at {pos} in {expression!r}"
        tokens.append(match.group("tok"))
        pos = match.end()
    return tokens


def _sortable(av: dict[str, Any]) -> tuple[str, Any]:
    ((kind, raw),) = av.items()
    return kind, Decimal(raw) if kind == "N" else raw


def check_request(request: Request) -> dict[str, Any]:
    """Assert the invariants every compiled request must hold; return its params."""
    params = request.params
    assert request.operation in ("Query", "Scan")
    assert params["TableName"] == TABLE
    names: dict[str, str] = params.get("ExpressionAttributeNames", {})
    values: dict[str, Any] = params.get("ExpressionAttributeValues", {})
    # DynamoDB rejects empty maps: present only when something is in them.
    assert ("ExpressionAttributeNames" in params) == bool(names)
    assert ("ExpressionAttributeValues" in params) == bool(values)
    used_names: set[str] = set()
    used_values: list[str] = []
    for key in _EXPRESSION_KEYS:
        if key not in params:
            continue
        expression = params[key]
        assert isinstance(expression, str) and expression
        tokens = tokenize(expression)  # no user text can hide in a fully tokenized expression
        for tok in tokens:
            if tok.startswith("#n"):
                used_names.update(tok.split("."))
            elif tok.startswith(":v"):
                used_values.append(tok)
        if key == "ProjectionExpression":
            assert all(t.startswith("#n") or t == "," for t in tokens), expression
    assert used_names == set(names), "every #n defined is used and every one used is defined"
    assert set(used_values) == set(values), "every :v defined is used and vice versa"
    assert len(used_values) == len(set(used_values)), "a value placeholder is never reused"
    assert len(set(names.values())) == len(names), "one placeholder per attribute name"
    for token in values:
        assert re.fullmatch(r":v\d+", token)
    for token in names:
        assert re.fullmatch(r"#n\d+", token)
    for expression in (params.get("KeyConditionExpression"), params.get("FilterExpression")):
        for low, high in re.findall(r"BETWEEN (:v\d+) AND (:v\d+)", expression or ""):
            (k1, v1), (k2, v2) = _sortable(values[low]), _sortable(values[high])
            assert k1 == k2 and v1 <= v2, f"BETWEEN bounds out of order in {expression!r}"
    if request.operation == "Query":
        key_condition = params["KeyConditionExpression"]
        match = _KEY_CONDITION.fullmatch(key_condition)
        assert match is not None, f"not a valid key condition: {key_condition!r}"
        index = params.get("IndexName")
        pk_attr, sk_attr = (f"{index}pk", f"{index}sk") if index else ("pk", "sk")
        assert names[match["pk"]] == pk_attr
        sk = match["sk1"] or match["sk2"] or match["sk3"]
        if sk is not None:
            assert names[sk] == sk_attr
        assert {"Segment", "TotalSegments"}.isdisjoint(params)
    else:
        assert "KeyConditionExpression" not in params
        assert "ScanIndexForward" not in params
    return params


def one(qs: Any) -> dict[str, Any]:
    """The params of the single request a QuerySet (or Collection) compiles to, checked."""
    requests = qs.explain()
    assert len(requests) == 1
    return check_request(requests[0])


def plan(qs: Any) -> Plan:
    return compile_query(qs._state, TABLE)


# A tiny evaluator for the expressions the compiler emits, to run requests over items.

Pred = Callable[[dict[str, Any]], bool]
Operand = Callable[[dict[str, Any]], "tuple[str, Any] | None"]


def _typed(av: Any) -> tuple[str, Any] | None:
    if av is None:
        return None
    ((kind, raw),) = av.items()
    if kind == "N":
        return "N", Decimal(raw)
    if kind in ("SS", "BS"):
        return kind, frozenset(raw)
    if kind == "NS":
        return kind, frozenset(Decimal(x) for x in raw)
    return kind, raw


_COMPARE = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class _Parser:
    def __init__(self, expression: str, names: dict[str, str], values: dict[str, Any]):
        self.tokens = tokenize(expression)
        self.pos = 0
        self.names = names
        self.values = values

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        assert tok is not None and (expected is None or tok == expected), (tok, expected)
        self.pos += 1
        return tok

    def parse(self) -> Pred:
        pred = self.disjunction()
        assert self.peek() is None
        return pred

    def disjunction(self) -> Pred:
        parts = [self.conjunction()]
        while self.peek() == "OR":
            self.take()
            parts.append(self.conjunction())
        return lambda item: any(p(item) for p in parts)

    def conjunction(self) -> Pred:
        parts = [self.negation()]
        while self.peek() == "AND":
            self.take()
            parts.append(self.negation())
        return lambda item: all(p(item) for p in parts)

    def negation(self) -> Pred:
        if self.peek() == "NOT":
            self.take()
            inner = self.negation()
            return lambda item: not inner(item)
        return self.primary()

    def path(self) -> Operand:
        attrs = [self.names[t] for t in self.take().split(".")]

        def get(item: dict[str, Any]) -> tuple[str, Any] | None:
            av: Any = item.get(attrs[0])
            for attr in attrs[1:]:
                av = av.get("M", {}).get(attr) if av else None
            return _typed(av)

        return get

    def operand(self) -> Operand:
        tok = self.peek()
        assert tok is not None
        if tok.startswith(":v"):
            value = _typed(self.values[self.take()])
            return lambda item: value
        if tok == "size":
            self.take()
            self.take("(")
            inner = self.path()
            self.take(")")

            def size(item: dict[str, Any]) -> tuple[str, Any] | None:
                got = inner(item)
                return None if got is None else ("N", Decimal(len(got[1])))

            return size
        return self.path()

    def primary(self) -> Pred:
        tok = self.peek()
        if tok == "(":
            self.take()
            inner = self.disjunction()
            self.take(")")
            return inner
        if tok in ("attribute_exists", "attribute_not_exists", "begins_with", "contains"):
            self.take()
            self.take("(")
            subject = self.path()
            if tok == "attribute_exists":
                self.take(")")
                return lambda item: subject(item) is not None
            if tok == "attribute_not_exists":
                self.take(")")
                return lambda item: subject(item) is None
            self.take(",")
            arg = self.operand()
            self.take(")")
            if tok == "begins_with":
                return lambda item: _begins_with(subject(item), arg(item))
            return lambda item: _contains(subject(item), arg(item))
        left = self.operand()
        op = self.take()
        if op == "BETWEEN":
            low = self.operand()
            self.take("AND")
            high = self.operand()
            return lambda item: (
                _cmp(low(item), left(item), "<=") and _cmp(left(item), high(item), "<=")
            )
        if op == "IN":
            self.take("(")
            options = [self.operand()]
            while self.peek() == ",":
                self.take()
                options.append(self.operand())
            self.take(")")
            return lambda item: any(_cmp(left(item), o(item), "=") for o in options)
        right = self.operand()
        return lambda item: _cmp(left(item), right(item), op)


def _cmp(a: tuple[str, Any] | None, b: tuple[str, Any] | None, op: str) -> bool:
    if a is None or b is None:
        return False
    if a[0] != b[0]:
        return op == "<>"
    return bool(_COMPARE[op](a[1], b[1]))


def _begins_with(a: tuple[str, Any] | None, b: tuple[str, Any] | None) -> bool:
    return a is not None and b is not None and a[0] == b[0] in ("S", "B") and a[1].startswith(b[1])


def _contains(a: tuple[str, Any] | None, b: tuple[str, Any] | None) -> bool:
    if a is None or b is None:
        return False
    if a[0] == b[0] == "S":
        return b[1] in a[1]
    return a[0] in ("SS", "NS", "BS") and a[0][0] == b[0] and b[1] in a[1]


def run(request: Request, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items a Query/Scan request returns from a table holding `items` (order ignored)."""
    params = check_request(request)
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    preds = [
        _Parser(params[k], names, values).parse()
        for k in ("KeyConditionExpression", "FilterExpression")
        if k in params
    ]
    return [item for item in items if all(p(item) for p in preds)]


def item_of(obj: Model) -> dict[str, Any]:
    return build_item(obj, {"version": 1})


def keys(items: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((i["pk"]["S"], i["sk"]["S"]) for i in items)


def assert_selects(qs: Any, objs: Sequence[Model], expected: Callable[[Any], bool]) -> None:
    """The compiled request returns exactly the objects of the queried type matching `expected`.

    `objs` may hold other entity types; they must never be returned.
    """
    items = [item_of(o) for o in objs]
    (request,) = qs.explain()
    got = run(request, items)
    want = [item_of(o) for o in objs if type(o) is qs.model and expected(o)]
    assert keys(got) == keys(want)


# --------------------------------------------------------------------------- helpers for shapes

BASE_KEY = "#n0 = :v0 AND begins_with(#n1, :v1)"


def order_query(
    filter_expression: str | None = None,
    names: Sequence[str] = (),
    values: Sequence[dict[str, Any]] = (),
    *,
    projected: Sequence[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """The Query of `Order.objects.filter(customer_id="c1", ...)` with filter parts from #n2/:v2.

    `names`/`values` are the filter's own placeholders in order; the entity-type filter
    (`_type = 'Order'`) always follows them, and `projected` names come after it.
    """
    type_name, type_value = f"#n{len(names) + 2}", f":v{len(values) + 2}"
    type_filter = f"{type_name} = {type_value}"
    params: dict[str, Any] = {
        "TableName": TABLE,
        "KeyConditionExpression": BASE_KEY,
        "FilterExpression": (
            type_filter if filter_expression is None else f"{filter_expression} AND {type_filter}"
        ),
    }
    params.update(extra)
    params["ExpressionAttributeNames"] = {
        "#n0": "pk",
        "#n1": "sk",
        **{f"#n{i + 2}": n for i, n in enumerate([*names, "_type", *projected])},
    }
    params["ExpressionAttributeValues"] = {
        ":v0": {"S": "CUSTOMER#c1"},
        ":v1": {"S": "ORDER#"},
        **{f":v{i + 2}": v for i, v in enumerate([*values, {"S": "Order"}])},
    }
    return params


def orders() -> Any:
    return Order.objects.filter(customer_id="c1")


# =========================================================================== key conditions


def test_partition_query_is_pk_and_entity_prefix() -> None:
    assert one(orders()) == order_query()
    assert plan(orders()).get_key is None


def test_table_name_comes_from_settings() -> None:
    dynorm.configure(table_name="shop")
    assert orders().explain()[0].params["TableName"] == "shop"


def test_explain_creates_no_client() -> None:
    orders().explain()
    Order.objects.scan(segments=2).explain()
    Customer.objects.filter(id="c1").include(Order).explain()
    assert _config.snapshot()[1] is None


def test_full_primary_key_is_a_get_item_plan() -> None:
    qs = Order.objects.filter(customer_id="c1", id="o1")
    assert one(qs) == {
        "TableName": TABLE,
        "KeyConditionExpression": "#n0 = :v0 AND #n1 = :v1",
        "FilterExpression": "#n2 = :v2",
        "ExpressionAttributeNames": {"#n0": "pk", "#n1": "sk", "#n2": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "CUSTOMER#c1"},
            ":v1": {"S": "ORDER#o1"},
            ":v2": {"S": "Order"},
        },
    }
    compiled = plan(qs)
    assert compiled.get_key == ("CUSTOMER#c1", "ORDER#o1")
    assert compiled.has_filter is False  # the entity-type filter alone is not a user filter
    assert compiled.key_attrs == ("pk", "sk")
    assert compiled.models == (Order,)


def test_literal_sort_key_is_a_get_item_plan() -> None:
    assert plan(Customer.objects.filter(id="c1")).get_key == ("CUSTOMER#c1", "PROFILE")
    assert plan(Counter.objects.filter(name="hits")).get_key == ("COUNTER#hits", "Counter")
    assert plan(Event.objects.filter(stream="s", seq=7)).get_key == ("STREAM#s", "EVENT#0000000007")
    assert one(Counter.objects.filter(name="hits")) == {
        "TableName": TABLE,
        "KeyConditionExpression": "#n0 = :v0 AND #n1 = :v1",
        "FilterExpression": "#n2 = :v2",
        "ExpressionAttributeNames": {"#n0": "pk", "#n1": "sk", "#n2": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "COUNTER#hits"},
            ":v1": {"S": "Counter"},
            ":v2": {"S": "Counter"},
        },
    }


def test_get_item_plan_survives_consistent_and_q_wrapping() -> None:
    assert plan(Customer.objects.filter(id="c1").consistent()).get_key == (
        "CUSTOMER#c1",
        "PROFILE",
    )
    qs = Order.objects.filter(Q(customer_id="c1") & Q(id="o1"))
    assert plan(qs).get_key == ("CUSTOMER#c1", "ORDER#o1")
    assert plan(Order.objects.filter(~~Q(customer_id="c1", id="o1"))).get_key is not None


@pytest.mark.parametrize(
    "make",
    [
        lambda: Order.objects.filter(customer_id="c1", id="o1", total=5),
        lambda: Order.objects.filter(customer_id="c1", id="o1").exclude(status="paid"),
        lambda: Order.objects.filter(customer_id="c1", id="o1").only("total"),
        lambda: Order.objects.filter(customer_id="c1", id="o1").filter(id="o2"),
        lambda: Customer.objects.filter(id="c1").include(Order),
        lambda: Order.objects.using_gsi("by_status").filter(status="open", created_at=T0),
        lambda: Order.objects.filter(customer_id="c1", id__begins_with="o1"),
        lambda: Order.objects.filter(customer_id="c1"),
        lambda: Customer.objects.scan().filter(id="c1"),
    ],
)
def test_no_get_item_plan_when_more_than_the_key_is_asked(make: Callable[[], Any]) -> None:
    qs = make()
    qs = qs._qs if not hasattr(qs, "_state") else qs  # a Collection wraps its QuerySet
    assert plan(qs).get_key is None


def test_filter_on_the_key_again_with_another_value_stays_in_the_filter() -> None:
    qs = Order.objects.filter(customer_id="c1", id="o1").filter(id="o2")
    assert one(qs) == {
        "TableName": TABLE,
        "KeyConditionExpression": "#n0 = :v0 AND #n1 = :v1",
        "FilterExpression": "#n2 = :v2 AND #n3 = :v3",
        "ExpressionAttributeNames": {"#n0": "pk", "#n1": "sk", "#n2": "id", "#n3": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "CUSTOMER#c1"},
            ":v1": {"S": "ORDER#o1"},
            ":v2": {"S": "o2"},
            ":v3": {"S": "Order"},
        },
    }


def test_key_values_are_validated_as_their_field_type() -> None:
    params = one(Event.objects.filter(stream="s", seq="42"))
    assert params["ExpressionAttributeValues"][":v1"] == {"S": "EVENT#0000000042"}
    with pytest.raises(QueryError, match=r"Cannot filter Event on seq \(lookup exact\)"):
        Event.objects.filter(stream="s", seq="forty-two").explain()


# =========================================================================== every lookup


@pytest.mark.parametrize(
    ("lookups", "expression", "names", "values"),
    [
        ({"total": 5}, "#n2 = :v2", ["total"], [{"N": "5"}]),
        ({"total__exact": Decimal("10.50")}, "#n2 = :v2", ["total"], [{"N": "10.50"}]),
        ({"total__ne": 5}, "#n2 <> :v2", ["total"], [{"N": "5"}]),
        ({"total__lt": 5}, "#n2 < :v2", ["total"], [{"N": "5"}]),
        ({"total__lte": 5}, "#n2 <= :v2", ["total"], [{"N": "5"}]),
        ({"total__gt": "5"}, "#n2 > :v2", ["total"], [{"N": "5"}]),
        ({"total__gte": 5}, "#n2 >= :v2", ["total"], [{"N": "5"}]),
        (
            {"total__between": (1, 9)},
            "#n2 BETWEEN :v2 AND :v3",
            ["total"],
            [{"N": "1"}, {"N": "9"}],
        ),
        ({"note__begins_with": "gi"}, "begins_with(#n2, :v2)", ["note"], [{"S": "gi"}]),
        (
            {"status__in": ["open", "paid"]},
            "#n2 IN (:v2, :v3)",
            ["status"],
            [{"S": "open"}, {"S": "paid"}],
        ),
        ({"tags__contains": "gift"}, "contains(#n2, :v2)", ["tags"], [{"S": "gift"}]),
        ({"note__contains": "rush"}, "contains(#n2, :v2)", ["note"], [{"S": "rush"}]),
        ({"note__exists": True}, "attribute_exists(#n2)", ["note"], []),
        ({"note__exists": False}, "attribute_not_exists(#n2)", ["note"], []),
        ({"note": None}, "attribute_not_exists(#n2)", ["note"], []),
        ({"note__exact": None}, "attribute_not_exists(#n2)", ["note"], []),
        ({"note__ne": None}, "attribute_exists(#n2)", ["note"], []),
        ({"lines__size__gt": 2}, "size(#n2) > :v2", ["lines"], [{"N": "2"}]),
        ({"lines__size": 0}, "size(#n2) = :v2", ["lines"], [{"N": "0"}]),
        ({"tags__size__ne": 1}, "size(#n2) <> :v2", ["tags"], [{"N": "1"}]),
        ({"tags__size__lte": 3}, "size(#n2) <= :v2", ["tags"], [{"N": "3"}]),
        (
            {"tags__size__between": (1, 3)},
            "size(#n2) BETWEEN :v2 AND :v3",
            ["tags"],
            [{"N": "1"}, {"N": "3"}],
        ),
        (
            {"created_at__gte": "2024-01-01T01:00:00+01:00"},
            "#n2 >= :v2",
            ["created_at"],
            [{"S": T0_TEXT}],
        ),
        (
            {"total__gt": 1, "status": "paid", "note__exists": False},
            "#n2 > :v2 AND #n3 = :v3 AND attribute_not_exists(#n4)",
            ["total", "status", "note"],
            [{"N": "1"}, {"S": "paid"}],
        ),
        (
            {"total__gt": 1, "total__lt": 9},
            "#n2 > :v2 AND #n2 < :v3",
            ["total"],
            [{"N": "1"}, {"N": "9"}],
        ),
    ],
)
def test_lookup_compiles_to_filter(
    lookups: dict[str, Any], expression: str, names: list[str], values: list[dict[str, Any]]
) -> None:
    assert one(orders().filter(**lookups)) == order_query(expression, names, values)


def test_in_lookup_takes_up_to_100_values() -> None:
    params = one(orders().filter(total__in=range(100)))
    tokens = ", ".join(f":v{i}" for i in range(2, 102))
    assert params == order_query(
        f"#n2 IN ({tokens})", ["total"], [{"N": str(i)} for i in range(100)]
    )
    assert params["ExpressionAttributeValues"][":v101"] == {"N": "99"}
    assert params["ExpressionAttributeValues"][":v102"] == {"S": "Order"}


@pytest.mark.parametrize(
    ("lookups", "expression", "names", "values"),
    [
        ({"address__city": "Oslo"}, "#n2.#n3 = :v2", ["address", "city"], [{"S": "Oslo"}]),
        (
            {"address__city__begins_with": "Os"},
            "begins_with(#n2.#n3, :v2)",
            ["address", "city"],
            [{"S": "Os"}],
        ),
        (
            {"address__zip__in": ["0150", "0151"]},
            "#n2.#n3 IN (:v2, :v3)",
            ["address", "zip"],
            [{"S": "0150"}, {"S": "0151"}],
        ),
        ({"address__city": None}, "attribute_not_exists(#n2.#n3)", ["address", "city"], []),
        ({"address__zip__exists": True}, "attribute_exists(#n2.#n3)", ["address", "zip"], []),
        ({"address__exists": False}, "attribute_not_exists(#n2)", ["address"], []),
        (
            {"address__city": "Oslo", "address__zip__ne": "0150"},
            "#n2.#n3 = :v2 AND #n2.#n4 <> :v3",
            ["address", "city", "zip"],
            [{"S": "Oslo"}, {"S": "0150"}],
        ),
    ],
)
def test_nested_map_paths(
    lookups: dict[str, Any], expression: str, names: list[str], values: list[dict[str, Any]]
) -> None:
    type_filter = f"#n{len(names) + 2} = :v{len(values) + 2}"
    assert one(Customer.objects.filter(id="c1", **lookups)) == {
        "TableName": TABLE,
        "KeyConditionExpression": "#n0 = :v0 AND #n1 = :v1",
        "FilterExpression": f"{expression} AND {type_filter}",
        "ExpressionAttributeNames": {
            "#n0": "pk",
            "#n1": "sk",
            **{f"#n{i + 2}": n for i, n in enumerate([*names, "_type"])},
        },
        "ExpressionAttributeValues": {
            ":v0": {"S": "CUSTOMER#c1"},
            ":v1": {"S": "PROFILE"},
            **{f":v{i + 2}": v for i, v in enumerate([*values, {"S": "Customer"}])},
        },
    }


@pytest.mark.parametrize(
    ("lookups", "expression", "names", "values"),
    [
        ({"b": True}, "#n2 = :v2", ["b"], [{"BOOL": True}]),
        ({"raw": b"\x00x"}, "#n2 = :v2", ["raw"], [{"B": b"\x00x"}]),
        ({"day": date(2024, 1, 2)}, "#n2 = :v2", ["day"], [{"S": "2024-01-02"}]),
        (
            {"uid": UUID(int=1)},
            "#n2 = :v2",
            ["uid"],
            [{"S": "00000000-0000-0000-0000-000000000001"}],
        ),
        ({"color": Color.BLUE}, "#n2 = :v2", ["color"], [{"S": "blue"}]),
        ({"color": "blue"}, "#n2 = :v2", ["color"], [{"S": "blue"}]),
        ({"kind__ne": "b"}, "#n2 <> :v2", ["kind"], [{"S": "b"}]),
        ({"f__gt": 1.5}, "#n2 > :v2", ["f"], [{"N": "1.5"}]),
        ({"i__lte": 3}, "#n2 <= :v2", ["i"], [{"N": "3"}]),
        ({"when__lt": T0}, "#n2 < :v2", ["when"], [{"S": T0_TEXT}]),
        ({"ns__contains": 3}, "contains(#n2, :v2)", ["ns"], [{"N": "3"}]),
        ({"ss__contains": "a"}, "contains(#n2, :v2)", ["ss"], [{"S": "a"}]),
        ({"items__contains": 3}, "contains(#n2, :v2)", ["items"], [{"N": "3"}]),
        ({"items__size__gte": 1}, "size(#n2) >= :v2", ["items"], [{"N": "1"}]),
        ({"mapping__size": 0}, "size(#n2) = :v2", ["mapping"], [{"N": "0"}]),
        ({"mapping__k": 1}, "#n2.#n3 = :v2", ["mapping", "k"], [{"N": "1"}]),
        ({"line__qty__gt": 2}, "#n2.#n3 > :v2", ["line", "qty"], [{"N": "2"}]),
        ({"maybe": None}, "attribute_not_exists(#n2)", ["maybe"], []),
        ({"maybe__exists": True}, "attribute_exists(#n2)", ["maybe"], []),
        # A TTL field is stored as epoch seconds under its own attribute name.
        ({"expires__lt": T0}, "#n2 < :v2", ["_ttl"], [{"N": "1704067200"}]),
    ],
)
def test_lookup_on_every_field_type(
    lookups: dict[str, Any], expression: str, names: list[str], values: list[dict[str, Any]]
) -> None:
    type_filter = f"#n{len(names) + 2} = :v{len(values) + 2}"
    assert one(Everything.objects.filter(id="e1", **lookups)) == {
        "TableName": TABLE,
        "KeyConditionExpression": "#n0 = :v0 AND #n1 = :v1",
        "FilterExpression": f"{expression} AND {type_filter}",
        "ExpressionAttributeNames": {
            "#n0": "pk",
            "#n1": "sk",
            **{f"#n{i + 2}": n for i, n in enumerate([*names, "_type"])},
        },
        "ExpressionAttributeValues": {
            ":v0": {"S": "EVERY#e1"},
            ":v1": {"S": "Everything"},
            **{f":v{i + 2}": v for i, v in enumerate([*values, {"S": "Everything"}])},
        },
    }


def test_set_equality_encodes_a_string_set() -> None:
    params = one(Everything.objects.filter(id="e1", ss={"b", "a"}))
    assert params["FilterExpression"] == "#n2 = :v2 AND #n3 = :v3"
    assert params["ExpressionAttributeNames"] == {
        "#n0": "pk",
        "#n1": "sk",
        "#n2": "ss",
        "#n3": "_type",
    }
    ((kind, members),) = params["ExpressionAttributeValues"][":v2"].items()
    assert kind == "SS" and sorted(members) == ["a", "b"]
    assert params["ExpressionAttributeValues"][":v3"] == {"S": "Everything"}


# =========================================================================== Q, exclude


@pytest.mark.parametrize(
    ("make", "expression", "names", "values"),
    [
        (
            lambda: Order.objects.filter(Q(status="paid") | Q(total__gt=500), customer_id="c1"),
            "(#n2 = :v2 OR #n3 > :v3)",
            ["status", "total"],
            [{"S": "paid"}, {"N": "500"}],
        ),
        (
            lambda: orders().filter(Q(status="open") & Q(total__lt=5)),
            "#n2 = :v2 AND #n3 < :v3",
            ["status", "total"],
            [{"S": "open"}, {"N": "5"}],
        ),
        (
            lambda: orders().filter(~Q(status="paid")),
            "(NOT #n2 = :v2)",
            ["status"],
            [{"S": "paid"}],
        ),
        (
            lambda: orders().filter(~(Q(status="paid") & (Q(total__gt=500) | Q(note=None)))),
            "(NOT (#n2 = :v2 AND (#n3 > :v3 OR attribute_not_exists(#n4))))",
            ["status", "total", "note"],
            [{"S": "paid"}, {"N": "500"}],
        ),
        (
            lambda: orders().filter((Q(status="paid") & Q(total__gt=5)) | Q(note__exists=False)),
            "((#n2 = :v2 AND #n3 > :v3) OR attribute_not_exists(#n4))",
            ["status", "total", "note"],
            [{"S": "paid"}, {"N": "5"}],
        ),
        (
            # plain lookups come first, then the OR/NOT groups, in filter() order
            lambda: orders().filter(Q(status="paid") | Q(status="open"), total__gte=1),
            "#n2 >= :v2 AND (#n3 = :v3 OR #n3 = :v4)",
            ["total", "status"],
            [{"N": "1"}, {"S": "paid"}, {"S": "open"}],
        ),
        (
            lambda: orders().filter(Q(status="paid") | ~Q(total__in=[1, 2])),
            "(#n2 = :v2 OR (NOT #n3 IN (:v3, :v4)))",
            ["status", "total"],
            [{"S": "paid"}, {"N": "1"}, {"N": "2"}],
        ),
        (
            lambda: orders().exclude(status="cancelled"),
            "(NOT #n2 = :v2)",
            ["status"],
            [{"S": "cancelled"}],
        ),
        (
            lambda: orders().exclude(status="cancelled", total__lt=3),
            "(NOT (#n2 = :v2 AND #n3 < :v3))",
            ["status", "total"],
            [{"S": "cancelled"}, {"N": "3"}],
        ),
        (
            lambda: orders().exclude(Q(status="paid") | Q(note=None)).exclude(total=0),
            "(NOT (#n2 = :v2 OR attribute_not_exists(#n3))) AND (NOT #n4 = :v3)",
            ["status", "note", "total"],
            [{"S": "paid"}, {"N": "0"}],
        ),
        (
            lambda: orders().exclude(id="o1"),
            "(NOT #n2 = :v2)",
            ["id"],
            [{"S": "o1"}],
        ),
    ],
)
def test_q_combinations_and_exclude(
    make: Callable[[], Any], expression: str, names: list[str], values: list[dict[str, Any]]
) -> None:
    assert one(make()) == order_query(expression, names, values)


def test_empty_q_and_empty_exclude_add_nothing() -> None:
    assert one(orders().filter(Q())) == order_query()
    assert one(orders().exclude()) == order_query()
    assert one(orders().filter(~~Q(status="paid"))) == order_query(
        "#n2 = :v2", ["status"], [{"S": "paid"}]
    )


def test_partition_key_inside_and_q_is_a_key_condition() -> None:
    assert one(Order.objects.filter(Q(customer_id="c1") & Q(total=1))) == order_query(
        "#n2 = :v2", ["total"], [{"N": "1"}]
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: Order.objects.filter(Q(customer_id="c1") | Q(customer_id="c2")),
        lambda: Order.objects.filter(~Q(customer_id="c1")),
        lambda: Order.objects.exclude(customer_id="c1"),
        lambda: Order.objects.filter(customer_id__begins_with="c1"),
        lambda: Order.objects.filter(customer_id__in=["c1"]),
        lambda: Order.objects.filter(customer_id=None),
    ],
)
def test_partition_key_must_be_plain_equality(make: Callable[[], Any]) -> None:
    with pytest.raises(QueryError) as err:
        make().explain()
    assert err.value.code == "needs-scan"


def test_q_objects_validate_in_filter() -> None:
    with pytest.raises(QueryError) as err:
        orders().filter(Q(status="paid") | Q(totl=1))
    assert err.value.code == "unknown-field"
    with pytest.raises(QueryError) as err:
        orders().exclude(Q(status="paid") | Q(total__gtx=1))
    assert err.value.code == "unknown-lookup"


def test_q_and_f_have_no_accidental_truth_or_mixing() -> None:
    with pytest.raises(TypeError):
        bool(F("total"))
    with pytest.raises(TypeError):
        bool(F("total") + 1)
    with pytest.raises(TypeError):
        Q(F("total"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Q(status="paid") & True  # type: ignore[operator]
    with pytest.raises(TypeError):
        orders().filter({"status": "paid"})  # type: ignore[arg-type]
    assert bool(Q()) is False
    assert bool(Q(status="paid")) is True
    assert Q(status="paid") == Q(status="paid")
    assert ~Q(status="paid") != Q(status="paid")


# =========================================================================== indexes, order


def test_gsi_query_uses_the_physical_index_and_a_type_filter() -> None:
    qs = Order.objects.using_gsi("by_status").filter(status="open")
    assert one(qs) == {
        "TableName": TABLE,
        "IndexName": "gsi1",
        "KeyConditionExpression": "#n0 = :v0",
        "FilterExpression": "#n1 = :v1",
        "ExpressionAttributeNames": {"#n0": "gsi1pk", "#n1": "_type"},
        "ExpressionAttributeValues": {":v0": {"S": "STATUS#open"}, ":v1": {"S": "Order"}},
    }
    compiled = plan(qs)
    assert compiled.key_attrs == ("pk", "sk", "gsi1pk", "gsi1sk")
    assert compiled.get_key is None


def test_gsi_with_filters_and_descending_order() -> None:
    qs = (
        Order.objects.using_gsi("by_status")
        .filter(status="open", created_at__gte=T0, total__gt=5)
        .order_by("-created_at")
    )
    assert one(qs) == {
        "TableName": TABLE,
        "IndexName": "gsi1",
        "KeyConditionExpression": "#n0 = :v0 AND #n1 >= :v1",
        "FilterExpression": "#n2 > :v2 AND #n3 = :v3",
        "ScanIndexForward": False,
        "ExpressionAttributeNames": {
            "#n0": "gsi1pk",
            "#n1": "gsi1sk",
            "#n2": "total",
            "#n3": "_type",
        },
        "ExpressionAttributeValues": {
            ":v0": {"S": "STATUS#open"},
            ":v1": {"S": T0_TEXT},
            ":v2": {"N": "5"},
            ":v3": {"S": "Order"},
        },
    }


def test_gsi_sort_key_equality() -> None:
    qs = Order.objects.using_gsi("by_status").filter(status="paid", created_at=T0)
    assert one(qs) == {
        "TableName": TABLE,
        "IndexName": "gsi1",
        "KeyConditionExpression": "#n0 = :v0 AND #n1 = :v1",
        "FilterExpression": "#n2 = :v2",
        "ExpressionAttributeNames": {"#n0": "gsi1pk", "#n1": "gsi1sk", "#n2": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "STATUS#paid"},
            ":v1": {"S": T0_TEXT},
            ":v2": {"S": "Order"},
        },
    }


def test_gsi_index_keyed_by_another_field() -> None:
    qs = Customer.objects.using_gsi("by_email").filter(email="a@example.com")
    assert one(qs) == {
        "TableName": TABLE,
        "IndexName": "gsi1",
        "KeyConditionExpression": "#n0 = :v0 AND #n1 = :v1",
        "FilterExpression": "#n2 = :v2",
        "ExpressionAttributeNames": {"#n0": "gsi1pk", "#n1": "gsi1sk", "#n2": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "EMAIL#a@example.com"},
            ":v1": {"S": "Customer"},
            ":v2": {"S": "Customer"},
        },
    }
    assert plan(qs).get_key is None  # a GSI key is not unique: never a GetItem


def test_order_by_ascending_is_the_default_direction() -> None:
    assert one(orders().order_by("id")) == order_query()
    assert one(Event.objects.filter(stream="s").order_by("seq"))["KeyConditionExpression"] == (
        BASE_KEY
    )


def test_order_by_descending_and_reverse() -> None:
    assert one(orders().order_by("-id")) == order_query(ScanIndexForward=False)
    assert one(orders().reverse()) == order_query(ScanIndexForward=False)
    assert one(orders().order_by("-id").reverse()) == order_query()
    assert one(orders().reverse().reverse()) == order_query()
    events = Event.objects.filter(stream="s").order_by("-seq")
    assert one(events)["ScanIndexForward"] is False


def test_exclude_with_descending_order() -> None:
    qs = orders().exclude(status="cancelled").order_by("-id")
    assert one(qs) == order_query(
        "(NOT #n2 = :v2)", ["status"], [{"S": "cancelled"}], ScanIndexForward=False
    )


def test_only_projects_keys_type_version_and_the_fields() -> None:
    assert one(orders().only("id", "total", "id")) == order_query(
        ProjectionExpression="#n0, #n1, #n2, #n3, #n4, #n5, #n6",
        projected=["version", "_wtok", "id", "total"],
    )


def test_only_reuses_names_already_in_the_expressions() -> None:
    qs = orders().filter(total__gt=5).only("total", "note")
    assert one(qs) == order_query(
        "#n2 > :v2",
        ["total"],
        [{"N": "5"}],
        projected=["version", "_wtok", "note"],
        ProjectionExpression="#n0, #n1, #n3, #n4, #n5, #n2, #n6",
    )


def test_only_on_a_gsi_projects_the_index_keys_too() -> None:
    qs = Order.objects.using_gsi("by_status").filter(status="open").only("total")
    assert one(qs) == {
        "TableName": TABLE,
        "IndexName": "gsi1",
        "KeyConditionExpression": "#n0 = :v0",
        "FilterExpression": "#n1 = :v1",
        "ProjectionExpression": "#n2, #n3, #n0, #n4, #n1, #n5, #n6, #n7",
        "ExpressionAttributeNames": {
            "#n0": "gsi1pk",
            "#n1": "_type",
            "#n2": "pk",
            "#n3": "sk",
            "#n4": "gsi1sk",
            "#n5": "version",
            "#n6": "_wtok",
            "#n7": "total",
        },
        "ExpressionAttributeValues": {":v0": {"S": "STATUS#open"}, ":v1": {"S": "Order"}},
    }


def test_only_uses_the_stored_attribute_name() -> None:
    params = one(Everything.objects.filter(id="e1").only("expires"))
    assert params["ProjectionExpression"] == "#n0, #n1, #n2, #n3, #n4, #n5"
    assert params["ExpressionAttributeNames"]["#n4"] == "_wtok"
    assert params["ExpressionAttributeNames"]["#n5"] == "_ttl"


def test_consistent_read() -> None:
    assert one(orders().consistent()) == order_query(ConsistentRead=True)
    assert "ConsistentRead" not in one(orders())


# =========================================================================== scan, include


def test_scan_filters_by_entity_type() -> None:
    assert one(Order.objects.scan().filter(total__gt=1000)) == {
        "TableName": TABLE,
        "FilterExpression": "#n0 > :v0 AND #n1 = :v1",
        "ExpressionAttributeNames": {"#n0": "total", "#n1": "_type"},
        "ExpressionAttributeValues": {":v0": {"N": "1000"}, ":v1": {"S": "Order"}},
    }
    compiled = plan(Order.objects.scan())
    assert compiled.has_filter is False and compiled.get_key is None


def test_scan_keeps_key_field_lookups_as_filters() -> None:
    assert one(Order.objects.scan().filter(customer_id="c1", id__gte="o")) == {
        "TableName": TABLE,
        "FilterExpression": "#n0 = :v0 AND #n1 >= :v1 AND #n2 = :v2",
        "ExpressionAttributeNames": {"#n0": "customer_id", "#n1": "id", "#n2": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "c1"},
            ":v1": {"S": "o"},
            ":v2": {"S": "Order"},
        },
    }


def test_parallel_scan_has_one_request_per_segment() -> None:
    requests = Order.objects.scan(segments=3).filter(Q(status="paid") | Q(total=0)).explain()
    assert [r.operation for r in requests] == ["Scan"] * 3
    common = {
        "TableName": TABLE,
        "FilterExpression": "(#n0 = :v0 OR #n1 = :v1) AND #n2 = :v2",
        "ExpressionAttributeNames": {"#n0": "status", "#n1": "total", "#n2": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "paid"},
            ":v1": {"N": "0"},
            ":v2": {"S": "Order"},
        },
        "TotalSegments": 3,
    }
    for i, request in enumerate(requests):
        assert request.params == {**common, "Segment": i}
        assert check_request(request)


def test_scan_of_an_index_with_projection() -> None:
    qs = Order.objects.using_gsi("by_status").scan().only("total")
    assert one(qs) == {
        "TableName": TABLE,
        "IndexName": "gsi1",
        "FilterExpression": "#n0 = :v0",
        "ProjectionExpression": "#n1, #n2, #n3, #n4, #n0, #n5, #n6, #n7",
        "ExpressionAttributeNames": {
            "#n0": "_type",
            "#n1": "pk",
            "#n2": "sk",
            "#n3": "gsi1pk",
            "#n4": "gsi1sk",
            "#n5": "version",
            "#n6": "_wtok",
            "#n7": "total",
        },
        "ExpressionAttributeValues": {":v0": {"S": "Order"}},
    }


def test_consistent_scan_of_the_table() -> None:
    assert one(Event.objects.scan().consistent()) == {
        "TableName": TABLE,
        "FilterExpression": "#n0 = :v0",
        "ConsistentRead": True,
        "ExpressionAttributeNames": {"#n0": "_type"},
        "ExpressionAttributeValues": {":v0": {"S": "Event"}},
    }


def test_include_fetches_the_whole_partition_for_the_listed_types() -> None:
    group = Customer.objects.filter(id="c1").include(Order)
    assert one(group) == {
        "TableName": TABLE,
        "KeyConditionExpression": "#n0 = :v0",
        "FilterExpression": "#n1 IN (:v1, :v2)",
        "ExpressionAttributeNames": {"#n0": "pk", "#n1": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "CUSTOMER#c1"},
            ":v1": {"S": "Customer"},
            ":v2": {"S": "Order"},
        },
    }
    assert plan(group._qs).models == (Customer, Order)


def test_include_with_consistent_read_and_scan() -> None:
    group = Customer.objects.filter(id="c1").consistent().include(Order)
    assert one(group)["ConsistentRead"] is True
    scanned = Customer.objects.scan().include(Order, Event)
    assert one(scanned) == {
        "TableName": TABLE,
        "FilterExpression": "#n0 IN (:v0, :v1, :v2)",
        "ExpressionAttributeNames": {"#n0": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "Customer"},
            ":v1": {"S": "Order"},
            ":v2": {"S": "Event"},
        },
    }


def test_include_rejects_an_unregistered_model() -> None:
    with _registry.isolated_registry():
        _registry.register(Customer)
        with pytest.raises(QueryError) as err:
            Customer.objects.filter(id="c1").include(Order)
    assert err.value.code == "bad-query"


# =========================================================================== sort-key ranges


@pytest.mark.parametrize(
    ("lookups", "low", "high", "filter_"),
    [
        ({"seq__gte": 5}, "EVENT#0000000005", "EVENT$", None),
        ({"seq__gt": 5}, "EVENT#0000000005", "EVENT$", ("#n2 > :v3", {"N": "5"})),
        ({"seq__lte": 5}, "EVENT#", "EVENT#0000000005", None),
        ({"seq__lt": 5}, "EVENT#", "EVENT#0000000005", ("#n2 < :v3", {"N": "5"})),
        ({"seq__between": (5, 9)}, "EVENT#0000000005", "EVENT#0000000009", None),
        ({"seq__between": ("5", 5)}, "EVENT#0000000005", "EVENT#0000000005", None),
    ],
)
def test_event_seq_range_is_a_range_inside_the_prefix(
    lookups: dict[str, Any], low: str, high: str, filter_: tuple[str, dict[str, str]] | None
) -> None:
    expected: dict[str, Any] = {
        "TableName": TABLE,
        "KeyConditionExpression": "#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2",
        "ExpressionAttributeNames": {"#n0": "pk", "#n1": "sk"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "STREAM#s"},
            ":v1": {"S": low},
            ":v2": {"S": high},
        },
    }
    # gt/lt on the last template field keep their filter (the key bound is inclusive); the
    # entity-type filter always comes last.
    if filter_ is None:
        expected["FilterExpression"] = "#n2 = :v3"
        expected["ExpressionAttributeNames"]["#n2"] = "_type"
        expected["ExpressionAttributeValues"][":v3"] = {"S": "Event"}
    else:
        expected["FilterExpression"] = f"{filter_[0]} AND #n3 = :v4"
        expected["ExpressionAttributeNames"].update({"#n2": "seq", "#n3": "_type"})
        expected["ExpressionAttributeValues"].update({":v3": filter_[1], ":v4": {"S": "Event"}})
    assert one(Event.objects.filter(stream="s", **lookups)) == expected


def test_event_two_ranges_use_one_for_the_key_and_keep_the_other() -> None:
    params = one(Event.objects.filter(stream="s", seq__gte=3, seq__lt=9))
    assert params == {
        "TableName": TABLE,
        "KeyConditionExpression": "#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2",
        "FilterExpression": "#n2 < :v3 AND #n3 = :v4",
        "ExpressionAttributeNames": {"#n0": "pk", "#n1": "sk", "#n2": "seq", "#n3": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "STREAM#s"},
            ":v1": {"S": "EVENT#0000000003"},
            ":v2": {"S": "EVENT$"},
            ":v3": {"N": "9"},
            ":v4": {"S": "Event"},
        },
    }


@pytest.mark.parametrize(
    ("lookups", "key_condition", "sk_values", "filter_"),
    [
        (
            {"created_at__gte": T0},
            "#n0 = :v0 AND #n1 >= :v1",
            [T0_TEXT],
            None,
        ),
        (
            {"created_at__gt": T0},
            "#n0 = :v0 AND #n1 >= :v1",
            [T0_TEXT],
            ("#n2 > :v2", "created_at", {"S": T0_TEXT}),
        ),
        (
            {"created_at__lte": T0},
            "#n0 = :v0 AND #n1 <= :v1",
            [T0_TEXT],
            None,
        ),
        (
            {"created_at__lt": T0},
            "#n0 = :v0 AND #n1 <= :v1",
            [T0_TEXT],
            ("#n2 < :v2", "created_at", {"S": T0_TEXT}),
        ),
        (
            {"created_at__between": (T0, "2024-02-01T00:00:00+01:00")},
            "#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2",
            [T0_TEXT, "2024-01-31T23:00:00.000000Z"],
            None,
        ),
        (
            {"created_at__begins_with": "2024-01"},
            "#n0 = :v0 AND begins_with(#n1, :v1)",
            ["2024-01"],
            None,
        ),
    ],
)
def test_gsi_created_at_range(
    lookups: dict[str, Any],
    key_condition: str,
    sk_values: list[str],
    filter_: tuple[str, str, dict[str, str]] | None,
) -> None:
    names = {"#n0": "gsi1pk", "#n1": "gsi1sk"}
    values: dict[str, Any] = {":v0": {"S": "STATUS#open"}}
    for i, text in enumerate(sk_values, start=1):
        values[f":v{i}"] = {"S": text}
    filters = []
    if filter_ is not None:
        filters.append(filter_[0])
        names["#n2"] = filter_[1]
        values[f":v{len(values)}"] = filter_[2]
    type_name = f"#n{len(names)}"
    type_value = f":v{len(values)}"
    names[type_name] = "_type"
    values[type_value] = {"S": "Order"}
    # The index sort key has no literal prefix, and another model (Customer) shares slot 1,
    # so only the entity-type filter can keep the result to Orders.
    filters.append(f"{type_name} = {type_value}")
    qs = Order.objects.using_gsi("by_status").filter(status="open", **lookups)
    assert one(qs) == {
        "TableName": TABLE,
        "IndexName": "gsi1",
        "KeyConditionExpression": key_condition,
        "FilterExpression": " AND ".join(filters),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


@pytest.mark.parametrize(
    ("lookups", "key_condition", "sk_values", "filter_"),
    [
        ({"id__gte": "o5"}, "BETWEEN :v1 AND :v2", ["ORDER#o5", "ORDER$"], None),
        ({"id__lte": "o5"}, "BETWEEN :v1 AND :v2", ["ORDER#", "ORDER#o5"], None),
        (
            {"id__gt": "o5"},
            "BETWEEN :v1 AND :v2",
            ["ORDER#o5", "ORDER$"],
            ("#n2 > :v3", "o5"),
        ),
        (
            {"id__lt": "o5"},
            "BETWEEN :v1 AND :v2",
            ["ORDER#", "ORDER#o5"],
            ("#n2 < :v3", "o5"),
        ),
        ({"id__between": ("o1", "o5")}, "BETWEEN :v1 AND :v2", ["ORDER#o1", "ORDER#o5"], None),
    ],
)
def test_order_id_range_on_the_table(
    lookups: dict[str, Any],
    key_condition: str,
    sk_values: list[str],
    filter_: tuple[str, str] | None,
) -> None:
    values: dict[str, Any] = {":v0": {"S": "CUSTOMER#c1"}}
    for i, text in enumerate(sk_values, start=1):
        values[f":v{i}"] = {"S": text}
    names = {"#n0": "pk", "#n1": "sk"}
    expected: dict[str, Any] = {
        "TableName": TABLE,
        "KeyConditionExpression": f"#n0 = :v0 AND #n1 {key_condition}",
    }
    if filter_ is None:
        expected["FilterExpression"] = "#n2 = :v3"
        names["#n2"] = "_type"
        values[":v3"] = {"S": "Order"}
    else:
        expected["FilterExpression"] = f"{filter_[0]} AND #n3 = :v4"
        names.update({"#n2": "id", "#n3": "_type"})
        values.update({":v3": {"S": filter_[1]}, ":v4": {"S": "Order"}})
    expected["ExpressionAttributeNames"] = names
    expected["ExpressionAttributeValues"] = values
    assert one(orders().filter(**lookups)) == expected


def test_order_id_begins_with_is_a_key_prefix() -> None:
    assert one(orders().filter(id__begins_with="o1")) == {
        "TableName": TABLE,
        "KeyConditionExpression": "#n0 = :v0 AND begins_with(#n1, :v1)",
        "FilterExpression": "#n2 = :v2",
        "ExpressionAttributeNames": {"#n0": "pk", "#n1": "sk", "#n2": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "CUSTOMER#c1"},
            ":v1": {"S": "ORDER#o1"},
            ":v2": {"S": "Order"},
        },
    }
    # The value is key text: escaped like every key value, so "#" cannot reach another field.
    assert one(orders().filter(id__begins_with="o #$"))["ExpressionAttributeValues"][":v1"] == {
        "S": "ORDER#o$20$23$24"
    }


def test_non_range_sort_key_lookups_stay_in_the_filter() -> None:
    params = one(Event.objects.filter(stream="s", seq__in=[1, 2], seq__ne=3))
    assert params == {
        "TableName": TABLE,
        "KeyConditionExpression": "#n0 = :v0 AND begins_with(#n1, :v1)",
        "FilterExpression": "#n2 IN (:v2, :v3) AND #n2 <> :v4 AND #n3 = :v5",
        "ExpressionAttributeNames": {"#n0": "pk", "#n1": "sk", "#n2": "seq", "#n3": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "STREAM#s"},
            ":v1": {"S": "EVENT#"},
            ":v2": {"N": "1"},
            ":v3": {"N": "2"},
            ":v4": {"N": "3"},
            ":v5": {"S": "Event"},
        },
    }


# --- the same ranges, run over items (another entity type shares the Order partition)

SEQS = list(range(26))
SEQ_VALUES = [0, 1, 7, 24, 25, 26]


def _events() -> list[Model]:
    return [Event(stream=s, seq=n) for s in ("s", "t") for n in SEQS]


@pytest.mark.parametrize("value", SEQ_VALUES)
@pytest.mark.parametrize("lookup", ["gte", "gt", "lte", "lt", "exact"])
def test_event_seq_ranges_select_exactly_the_matches(lookup: str, value: int) -> None:
    compare = {**_COMPARE, "gte": operator.ge, "gt": operator.gt}
    compare.update(lte=operator.le, lt=operator.lt, exact=operator.eq)
    qs = Event.objects.filter(stream="s", **{f"seq__{lookup}": value})
    assert_selects(qs, _events(), lambda e: e.stream == "s" and compare[lookup](e.seq, value))


@pytest.mark.parametrize("pair", [(3, 9), (0, 0), (9, 9), (20, 30), (0, 25)])
def test_event_seq_between_selects_exactly_the_matches(pair: tuple[int, int]) -> None:
    qs = Event.objects.filter(stream="s", seq__between=pair)
    assert_selects(qs, _events(), lambda e: e.stream == "s" and pair[0] <= e.seq <= pair[1])


def test_event_two_ranges_select_exactly_the_matches() -> None:
    half_open = (
        Event.objects.filter(stream="s", seq__gte=3, seq__lt=9),
        Event.objects.filter(stream="s", seq__lt=9, seq__gte=3),
    )
    for qs in half_open:
        assert_selects(qs, _events(), lambda e: e.stream == "s" and 3 <= e.seq < 9)
    qs = Event.objects.filter(stream="s", seq__gt=3).filter(seq__lte=9)
    assert_selects(qs, _events(), lambda e: e.stream == "s" and 3 < e.seq <= 9)


#: Comparisons the lookups stand for, to state what a query must select.
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "gte": operator.ge,
    "gt": operator.gt,
    "lte": operator.le,
    "lt": operator.lt,
    "exact": operator.eq,
    "begins_with": str.startswith,
}

#: Characters that key text treats specially: the separator "#", the escape "$", the others
#: the codec escapes (space, NUL, newline), the first one it does not ("%"), and U+10FFFF.
#: Ids are prefixes of each other and of their escaped forms ("a$23" is how "a#" renders).
_AWKWARD = ["#", "$", " ", "\x00", "\n", "%", "\U0010ffff"]
ORDER_IDS = [
    *["a", "a!", "ab", "abc", "b", "b!", "ba", "c", "z", "~", "é", "\U0001f600"],
    *_AWKWARD,
    *[f"a{c}" for c in _AWKWARD],
    *["a#b", "a$23", "a$24", "a$2", "$23", "a\U0010ffff\U0010ffff", "\U0010ffffa", "a##"],
]
ID_VALUES = [
    *["", "a", "ab", "aa", "b", "b!", "bz", "é", "\U0001f600", "\U0001f601"],
    *_AWKWARD,
    *[f"a{c}" for c in _AWKWARD],
    *["a$23", "a$2", "$2", "\U0010ffff\U0010ffff"],
]


def _partition() -> list[Model]:
    """Orders of two customers, and the first customer's profile in the same partition."""
    objs: list[Model] = [Customer(id="c1", email="c1@example.com", name="C1", created_at=T0)]
    for customer in ("c1", "c2"):
        for i, oid in enumerate(ORDER_IDS):
            objs.append(
                Order(id=oid, customer_id=customer, total=i, created_at=T0 + timedelta(hours=i))
            )
    return objs


@pytest.mark.parametrize(
    ("lookup", "value"),
    [
        (lookup, value)
        for lookup in ("gte", "gt", "lte", "lt", "exact", "begins_with")
        for value in ID_VALUES
        if value or lookup != "begins_with"  # begins_with takes a non-empty string
    ],
)
def test_order_id_ranges_select_exactly_the_matches(lookup: str, value: str) -> None:
    qs = orders().filter(**{f"id__{lookup}": value})
    assert_selects(qs, _partition(), lambda o: o.customer_id == "c1" and _OPS[lookup](o.id, value))


@pytest.mark.parametrize(
    "pair",
    [
        ("a", "b"),
        ("ab", "ba"),
        ("a!", "a!"),
        ("", "\U0010fffe"),
        ("", "\U0010ffff"),
        ("a", "a$"),
        ("a#", "a$23"),
        ("\x00", " "),
        ("a\U0010ffff", "\U0010ffff"),
    ],
)
def test_order_id_between_selects_exactly_the_matches(pair: tuple[str, str]) -> None:
    qs = orders().filter(id__between=pair)
    assert_selects(qs, _partition(), lambda o: o.customer_id == "c1" and pair[0] <= o.id <= pair[1])


def test_order_partition_query_never_returns_the_customer() -> None:
    for qs in (orders(), orders().filter(total__gte=0), orders().order_by("-id")):
        assert_selects(qs, _partition(), lambda o: o.customer_id == "c1")


def _by_status() -> list[Model]:
    objs: list[Model] = [
        Customer(id=f"c{i}", email=f"STATUS#open{i}", name="n", created_at=T0) for i in range(2)
    ]
    for i in range(12):
        status = "open" if i % 3 else "paid"
        when = T0 + timedelta(hours=6 * i, microseconds=i)
        objs.append(Order(id=f"o{i}", customer_id="c1", status=status, total=i, created_at=when))
    return objs


GSI_TIMES = [
    T0,
    T0 + timedelta(hours=6, microseconds=1),
    T0 + timedelta(hours=6),
    datetime(2024, 1, 2, 2, tzinfo=timezone(timedelta(hours=2))),
    T0 - timedelta(days=1),
    T0 + timedelta(days=30),
]


@pytest.mark.parametrize("when", GSI_TIMES)
@pytest.mark.parametrize("lookup", ["gte", "gt", "lte", "lt", "exact"])
def test_gsi_created_at_ranges_select_exactly_the_matches(lookup: str, when: datetime) -> None:
    compare = {
        "gte": operator.ge,
        "gt": operator.gt,
        "lte": operator.le,
        "lt": operator.lt,
        "exact": operator.eq,
    }
    qs = Order.objects.using_gsi("by_status").filter(
        status="open", **{f"created_at__{lookup}": when}
    )
    assert_selects(
        qs, _by_status(), lambda o: o.status == "open" and compare[lookup](o.created_at, when)
    )


def test_gsi_created_at_between_and_begins_with_select_exactly_the_matches() -> None:
    low, high = T0 + timedelta(hours=6), T0 + timedelta(days=1, hours=6, microseconds=4)
    qs = Order.objects.using_gsi("by_status").filter(status="open", created_at__between=(low, high))
    assert_selects(qs, _by_status(), lambda o: o.status == "open" and low <= o.created_at <= high)
    qs = Order.objects.using_gsi("by_status").filter(
        status="open", created_at__begins_with="2024-01-02"
    )
    assert_selects(
        qs, _by_status(), lambda o: o.status == "open" and o.created_at.date() == date(2024, 1, 2)
    )


# =========================================================================== entity-type filter


def test_every_query_filters_by_entity_type() -> None:
    """Key text alone never decides the entity type: every Query carries the `_type` filter,
    and the request is the same whichever other models are registered (the compiler is pure).
    """
    assert one(orders()) == order_query()
    assert one(Event.objects.filter(stream="s", seq__gte=1)) == {
        "TableName": TABLE,
        "KeyConditionExpression": "#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2",
        "FilterExpression": "#n2 = :v3",
        "ExpressionAttributeNames": {"#n0": "pk", "#n1": "sk", "#n2": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "STREAM#s"},
            ":v1": {"S": "EVENT#0000000001"},
            ":v2": {"S": "EVENT$"},
            ":v3": {"S": "Event"},
        },
    }
    assert one(Customer.objects.filter(id="c1")) == {
        "TableName": TABLE,
        "KeyConditionExpression": "#n0 = :v0 AND #n1 = :v1",
        "FilterExpression": "#n2 = :v2",
        "ExpressionAttributeNames": {"#n0": "pk", "#n1": "sk", "#n2": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "CUSTOMER#c1"},
            ":v1": {"S": "PROFILE"},
            ":v2": {"S": "Customer"},
        },
    }
    assert one(Order.objects.using_gsi("by_status").filter(status="open")) == {
        "TableName": TABLE,
        "IndexName": "gsi1",
        "KeyConditionExpression": "#n0 = :v0",
        "FilterExpression": "#n1 = :v1",
        "ExpressionAttributeNames": {"#n0": "gsi1pk", "#n1": "_type"},
        "ExpressionAttributeValues": {":v0": {"S": "STATUS#open"}, ":v1": {"S": "Order"}},
    }


def test_compiled_requests_do_not_depend_on_the_registered_models() -> None:
    def compile_all() -> list[list[dict[str, Any]]]:
        return [[r.params for r in make().explain()] for make in CORPUS]

    before = compile_all()
    for requests in before:
        for params in requests:
            names = params["ExpressionAttributeNames"]
            type_token = next(t for t, n in names.items() if n == "_type")
            assert re.search(
                rf"{type_token} (= :v\d+|IN \(:v\d+(, :v\d+)*\))$", params["FilterExpression"]
            ), params["FilterExpression"]

    class OrderNote(Model):  # renders keys inside Order's sort-key prefix, in its partition
        customer_id: str
        order_id: str
        n: int

        class Meta:
            pk = "CUSTOMER#{customer_id}"
            sk = "ORDER#{order_id}#NOTE#{n:04d}"

    class Ticket(Model):  # shares Order's GSI slot and its key templates
        id: str
        status: Literal["open", "paid"] = "open"
        created_at: datetime

        class Meta:
            pk = "TICKET#{id}"
            indexes = [Index("by_status", pk="STATUS#{status}", sk="{created_at}")]

    assert {OrderNote, Ticket} <= set(_registry.all_models())
    assert compile_all() == before


@pytest.fixture
def order_note() -> type[Model]:
    """A model whose sort keys start with Order's prefix, in Order's partition."""

    class OrderNote(Model):
        customer_id: str
        order_id: str
        n: int
        text: str = ""

        class Meta:
            pk = "CUSTOMER#{customer_id}"
            sk = "ORDER#{order_id}#NOTE#{n:04d}"

    return OrderNote


def test_type_filter_keeps_a_model_sharing_the_prefix_out(order_note: type[Model]) -> None:
    assert one(orders()) == order_query()
    assert one(orders().filter(id__gte="o")) == {
        "TableName": TABLE,
        "KeyConditionExpression": "#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2",
        "FilterExpression": "#n2 = :v3",
        "ExpressionAttributeNames": {"#n0": "pk", "#n1": "sk", "#n2": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "CUSTOMER#c1"},
            ":v1": {"S": "ORDER#o"},
            ":v2": {"S": "ORDER$"},
            ":v3": {"S": "Order"},
        },
    }
    notes = order_note.objects.filter(customer_id="c1", order_id="o1")
    assert one(notes) == {
        "TableName": TABLE,
        "KeyConditionExpression": "#n0 = :v0 AND begins_with(#n1, :v1)",
        "FilterExpression": "#n2 = :v2",
        "ExpressionAttributeNames": {"#n0": "pk", "#n1": "sk", "#n2": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "CUSTOMER#c1"},
            ":v1": {"S": "ORDER#o1#NOTE#"},
            ":v2": {"S": "OrderNote"},
        },
    }
    objs = [
        *_partition(),
        order_note(customer_id="c1", order_id="a", n=1),
        order_note(customer_id="c1", order_id="a#", n=2),
        order_note(customer_id="c1", order_id="\U0010ffff", n=3),
    ]
    assert_selects(orders(), objs, lambda o: o.customer_id == "c1")
    for lookup, op in _OPS.items():
        qs = orders().filter(**{f"id__{lookup}": "a"})
        assert_selects(qs, objs, lambda o, op=op: o.customer_id == "c1" and op(o.id, "a"))
    assert_selects(notes, objs, lambda n: n.customer_id == "c1" and n.order_id == "o1")
    assert_selects(
        order_note.objects.filter(customer_id="c1", order_id="a"),
        objs,
        lambda n: n.order_id == "a",
    )


@pytest.fixture
def person() -> type[Model]:
    """A model with a two-field sort key: a range on `last` is not on the last field."""

    class Person(Model):
        org: str
        last: str
        first: str

        class Meta:
            pk = "ORG#{org}"
            sk = "PERSON#{last}#{first}"

    return Person


@pytest.mark.parametrize(
    ("lookups", "low", "high"),
    [
        # Keys read PERSON#<last>#<first>: "#" sorts below every character of an escaped
        # value and "$" just above it, so every range on `last` is exact.
        ({"last__gte": "Sm"}, "PERSON#Sm", "PERSON$"),
        ({"last__gt": "Sm"}, "PERSON#Sm$", "PERSON$"),
        ({"last__lte": "Sm"}, "PERSON#", "PERSON#Sm$"),
        ({"last__lt": "Sm"}, "PERSON#", "PERSON#Sm"),
        ({"last__between": ("A", "Sm")}, "PERSON#A", "PERSON#Sm$"),
        ({"last__gte": "S m#"}, "PERSON#S$20m$23", "PERSON$"),
        # The last field: keys end with the value, so gte/lte/between are exact as they are.
        ({"last": "Smith", "first__lte": "J"}, "PERSON#Smith#", "PERSON#Smith#J"),
        ({"last": "Smith", "first__gte": "J"}, "PERSON#Smith#J", "PERSON#Smith$"),
        ({"last": "Smith", "first__between": ("A", "J")}, "PERSON#Smith#A", "PERSON#Smith#J"),
    ],
)
def test_range_on_a_sort_key_field_is_exact(
    person: type[Model], lookups: dict[str, Any], low: str, high: str
) -> None:
    assert one(person.objects.filter(org="o", **lookups)) == {
        "TableName": TABLE,
        "KeyConditionExpression": "#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2",
        "FilterExpression": "#n2 = :v3",
        "ExpressionAttributeNames": {"#n0": "pk", "#n1": "sk", "#n2": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "ORG#o"},
            ":v1": {"S": low},
            ":v2": {"S": high},
            ":v3": {"S": "Person"},
        },
    }


@pytest.mark.parametrize(
    ("lookup", "op", "low", "high"),
    [
        ("gt", ">", "PERSON#Smith#J", "PERSON#Smith$"),
        ("lt", "<", "PERSON#Smith#", "PERSON#Smith#J"),
    ],
)
def test_strict_range_on_the_last_field_keeps_its_filter(
    person: type[Model], lookup: str, op: str, low: str, high: str
) -> None:
    assert one(person.objects.filter(org="o", last="Smith", **{f"first__{lookup}": "J"})) == {
        "TableName": TABLE,
        "KeyConditionExpression": "#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2",
        "FilterExpression": f"#n2 {op} :v3 AND #n3 = :v4",
        "ExpressionAttributeNames": {"#n0": "pk", "#n1": "sk", "#n2": "first", "#n3": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "ORG#o"},
            ":v1": {"S": low},
            ":v2": {"S": high},
            ":v3": {"S": "J"},
            ":v4": {"S": "Person"},
        },
    }


def test_begins_with_on_a_leading_field_is_an_exact_key_prefix(person: type[Model]) -> None:
    assert one(person.objects.filter(org="o", last__begins_with="Smith#B")) == {
        "TableName": TABLE,
        "KeyConditionExpression": "#n0 = :v0 AND begins_with(#n1, :v1)",
        "FilterExpression": "#n2 = :v2",
        "ExpressionAttributeNames": {"#n0": "pk", "#n1": "sk", "#n2": "_type"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "ORG#o"},
            ":v1": {"S": "PERSON#Smith$23B"},
            ":v2": {"S": "Person"},
        },
    }


def test_order_by_a_later_sort_key_field_needs_the_earlier_ones(person: type[Model]) -> None:
    with pytest.raises(QueryError) as err:
        person.objects.filter(org="o").order_by("first").explain()
    assert err.value.code == "bad-order-by"
    assert "'last'" in str(err.value)
    params = one(person.objects.filter(org="o", last="Smith").order_by("-first"))
    assert params["KeyConditionExpression"] == "#n0 = :v0 AND begins_with(#n1, :v1)"
    assert params["ExpressionAttributeValues"][":v1"] == {"S": "PERSON#Smith#"}
    assert params["ScanIndexForward"] is False


_PEOPLE = [
    ("Smith", "Bob"),
    ("Smith", "Al"),
    ("Smith", ""),
    ("Smith", "#"),
    ("Smith Jones", "Ann"),
    ("Smithe", "Cy"),
    ("Smi", "Di"),
    ("Ng", "Ed"),
    *[(f"Smith{c}", "Fi") for c in _AWKWARD],
    *[(f"Smith{c}x", "Gu") for c in _AWKWARD],
    ("Smith#B", "Hal"),
    ("Smith$23B", "Ida"),
    ("Smith$", "#Jo"),
    ("", "Kim"),
    ("#", "Lu"),
    ("\U0010ffff", "Mo"),
    ("\U0010ffff\U0010ffff", ""),
]
_LAST_VALUES = [
    *["Smith", "Smithe", "Smi", "Sn", "A"],
    *[f"Smith{c}" for c in _AWKWARD],
    *["Smith#B", "Smith$23", "Smith$2", "#", "$", "\U0010ffff"],
]


@pytest.mark.parametrize("value", _LAST_VALUES)
@pytest.mark.parametrize("lookup", ["gte", "gt", "lte", "lt", "begins_with"])
def test_leading_field_ranges_select_exactly_the_matches(
    person: type[Model], lookup: str, value: str
) -> None:
    objs = [person(org="o", last=last, first=first) for last, first in _PEOPLE]
    qs = person.objects.filter(org="o", **{f"last__{lookup}": value})
    assert_selects(qs, objs, lambda p: _OPS[lookup](p.last, value))


@pytest.mark.parametrize(
    "pair",
    [
        ("Smith", "Smith"),
        ("Smith", "Smith#"),
        ("Smith#", "Smith$"),
        ("Smi", "Smith "),
        ("", "\U0010ffff"),
        ("#", "Smith\x00"),
        ("Smith\U0010ffff", "Smith\U0010ffff"),
    ],
)
def test_leading_field_between_selects_exactly_the_matches(
    person: type[Model], pair: tuple[str, str]
) -> None:
    objs = [person(org="o", last=last, first=first) for last, first in _PEOPLE]
    qs = person.objects.filter(org="o", last__between=pair)
    assert_selects(qs, objs, lambda p: pair[0] <= p.last <= pair[1])


@pytest.mark.parametrize(
    ("lookup", "value"),
    [
        (lookup, value)
        for lookup in ("gte", "gt", "lte", "lt", "exact", "begins_with")
        for value in ("", "#", "$", " ", "A", "Al", "B", "Bob", "\U0010ffff")
        if value or lookup != "begins_with"  # begins_with takes a non-empty string
    ],
)
def test_last_field_ranges_after_a_fixed_field_select_exactly_the_matches(
    person: type[Model], lookup: str, value: str
) -> None:
    objs = [person(org="o", last=last, first=first) for last, first in _PEOPLE]
    qs = person.objects.filter(org="o", last="Smith", **{f"first__{lookup}": value})
    assert_selects(qs, objs, lambda p: p.last == "Smith" and _OPS[lookup](p.first, value))


@pytest.fixture
def reading() -> type[Model]:
    """A fixed-width number followed by more key text."""

    class Reading(Model):
        meter: str
        seq: int
        name: str

        class Meta:
            pk = "METER#{meter}"
            sk = "R#{seq:04d}#{name}"

    return Reading


@pytest.mark.parametrize("value", [0, 1, 4, 5, 9999])
@pytest.mark.parametrize("lookup", ["gte", "gt", "lte", "lt", "exact"])
def test_fixed_width_leading_field_ranges_select_exactly_the_matches(
    reading: type[Model], lookup: str, value: int
) -> None:
    objs = [
        reading(meter=m, seq=n, name=name)
        for m in ("m", "m#")
        for n in (0, 1, 5, 9999)
        for name in ("", "a", *_AWKWARD)
    ]
    qs = reading.objects.filter(meter="m", **{f"seq__{lookup}": value})
    assert_selects(qs, objs, lambda r: r.meter == "m" and _OPS[lookup](r.seq, value))
    if lookup != "exact":  # an exact range: the lookup leaves the filter
        assert one(qs)["FilterExpression"] == "#n2 = :v3"


# =========================================================================== errors


def test_needs_scan_names_the_index_that_fits() -> None:
    with pytest.raises(QueryError) as err:
        Order.objects.filter(status="shipped").explain()
    assert err.value.code == "needs-scan"
    message = str(err.value)
    assert ".using_gsi('by_status')" in message
    assert ".scan()" in message
    assert "customer_id" in message
    assert "shipped" not in message


def test_needs_scan_without_a_fitting_index_suggests_scan() -> None:
    with pytest.raises(QueryError) as err:
        Order.objects.filter(total=Decimal("12345.678")).explain()
    assert err.value.code == "needs-scan"
    assert ".scan()" in str(err.value)
    assert "using_gsi" not in str(err.value)
    assert "12345.678" not in str(err.value)
    with pytest.raises(QueryError) as err:
        Order.objects.all().explain()
    assert err.value.code == "needs-scan"


def test_needs_scan_on_an_index_suggests_the_table_key() -> None:
    with pytest.raises(QueryError) as err:
        Order.objects.using_gsi("by_status").filter(customer_id="c1").explain()
    assert err.value.code == "needs-scan"
    assert "Drop .using_gsi()" in str(err.value)
    assert ".scan()" in str(err.value)


def test_needs_scan_for_a_range_on_the_partition_key() -> None:
    with pytest.raises(QueryError) as err:
        Event.objects.filter(seq__gte=1).explain()
    assert err.value.code == "needs-scan"
    assert "stream" in str(err.value)


@pytest.mark.parametrize(
    ("call", "bad"),
    [
        (lambda: orders().filter(totl=1), "totl"),
        (lambda: orders().exclude(statsu="paid"), "statsu"),
        (lambda: orders().filter(Q(stauts="paid") | Q(total=1)), "stauts"),
        (lambda: orders().order_by("-totl"), "totl"),
        (lambda: orders().only("id", "totl"), "totl"),
        (lambda: Customer.objects.filter(id="c1", address__cty="Oslo"), "cty"),
        (lambda: Everything.objects.filter(id="e1", line__skux="A"), "skux"),
    ],
)
def test_unknown_field_suggests_a_close_match(call: Callable[[], Any], bad: str) -> None:
    with pytest.raises(QueryError) as err:
        call().explain()
    assert err.value.code == "unknown-field"
    assert repr(bad) in str(err.value)
    assert "Perhaps you meant" in str(err.value)


@pytest.mark.parametrize(
    "lookups",
    [
        {"total__gtx": 1},
        {"total__size__contains": 1},
        {"tags__size__in": [1]},
        {"customer_id__exact__gt": "a"},
        {"note__": "x"},
        {"lines__sku": "x"},
        {"note__startswith": "x"},
    ],
)
def test_unknown_lookup(lookups: dict[str, Any]) -> None:
    with pytest.raises(QueryError) as err:
        orders().filter(**lookups)
    assert err.value.code == "unknown-lookup"


def test_unknown_lookup_suggests_a_close_match() -> None:
    with pytest.raises(QueryError) as err:
        orders().filter(total__gtx=1)
    assert "Perhaps you meant 'gt'?" in str(err.value)


def test_unknown_index() -> None:
    with pytest.raises(QueryError) as err:
        Order.objects.using_gsi("by_stats")
    assert err.value.code == "unknown-index"
    assert "Perhaps you meant 'by_status'?" in str(err.value)
    with pytest.raises(QueryError) as err:
        Order.objects.using_gsi("gsi1")  # the physical name is not an index name
    assert err.value.code == "unknown-index"
    with pytest.raises(QueryError) as err:
        Event.objects.using_gsi("by_seq")
    assert err.value.code == "unknown-index"
    assert "declares no indexes" in str(err.value)


def test_unknown_index_in_a_raw_state_is_caught_by_the_compiler() -> None:
    from dynorm.query.compiler import QueryState

    with pytest.raises(QueryError) as err:
        compile_query(QueryState(Order, index="nope"), TABLE)
    assert err.value.code == "unknown-index"


@pytest.mark.parametrize(
    "make",
    [
        lambda: orders().order_by("total"),
        lambda: orders().order_by("-created_at"),
        lambda: Customer.objects.filter(id="c1").order_by("name"),
        lambda: Order.objects.using_gsi("by_status").filter(status="open").order_by("id"),
        lambda: Order.objects.scan().order_by("id"),
    ],
)
def test_order_by_a_field_that_is_not_the_sort_key(make: Callable[[], Any]) -> None:
    with pytest.raises(QueryError) as err:
        make().explain()
    assert err.value.code == "bad-order-by"


def test_consistent_read_on_a_gsi_is_refused_in_either_order() -> None:
    with pytest.raises(QueryError) as err:
        Order.objects.using_gsi("by_status").consistent()
    assert err.value.code == "consistent-gsi"
    with pytest.raises(QueryError) as err:
        Order.objects.consistent().using_gsi("by_status")
    assert err.value.code == "consistent-gsi"


@pytest.mark.parametrize(
    "lookups",
    [
        {"total__in": list(range(101))},
        {"total__in": []},
        {"total__in": "12"},
        {"total__between": (1, 2, 3)},
        {"total__between": 5},
        {"note__begins_with": ""},
        {"note__exists": 1},
        {"tags": set()},
        {"lines__size__gt": -1},
        {"lines__size__gt": "2"},
        {"note__in": ["a", None]},
    ],
)
def test_bad_lookup_values(lookups: dict[str, Any]) -> None:
    with pytest.raises(QueryError) as err:
        orders().filter(**lookups).explain()
    assert err.value.code == "bad-query"


def test_in_over_100_values_names_the_limit_not_the_values() -> None:
    with pytest.raises(QueryError) as err:
        orders().filter(total__in=[Decimal("98765.4321")] * 101)
    assert "100" in str(err.value)
    assert "98765.4321" not in str(err.value)


def test_compressed_field_cannot_be_filtered() -> None:
    with pytest.raises(QueryError) as err:
        Everything.objects.filter(id="e1", blob="x")
    assert err.value.code == "bad-query"


def test_scan_needs_at_least_one_segment() -> None:
    with pytest.raises(QueryError) as err:
        Order.objects.scan(segments=0)
    assert err.value.code == "bad-query"


def test_a_value_of_the_wrong_type_is_a_query_error_naming_the_field() -> None:
    with pytest.raises(QueryError, match=r"on status \(lookup exact\)"):
        orders().filter(status="lost")
    with pytest.raises(QueryError, match=r"on total \(lookup gt\)"):
        orders().filter(total__gt="a lot")


# =========================================================================== injection

INJECTIONS = [
    "x) OR attribute_exists(pk) OR (a = :v0",
    ") OR attribute_exists(pk",
    ":v0",
    "#n0",
    "' OR '1'='1",
    "x AND NOT #n1 = :v1",
    "\x00\n; DROP TABLE t",
]

VALUE_SLOTS: dict[str, Callable[[str], Any]] = {
    "filter": lambda v: orders().filter(note=v),
    "filter-ne": lambda v: orders().filter(note__ne=v),
    "partition-key": lambda v: Order.objects.filter(customer_id=v),
    "sort-key": lambda v: Order.objects.filter(customer_id="c1", id=v),
    "sort-key-begins": lambda v: orders().filter(id__begins_with=v),
    "sort-key-range": lambda v: orders().filter(id__gt=v),
    "gsi-key": lambda v: Customer.objects.using_gsi("by_email").filter(email=v),
    "nested": lambda v: Customer.objects.filter(id="c1", address__city=v),
    "contains": lambda v: orders().filter(tags__contains=v),
    "in": lambda v: orders().filter(note__in=[v, "y"]),
    "between": lambda v: orders().filter(note__between=(v, v + "~")),
    "or": lambda v: orders().filter(Q(note=v) | ~Q(note__begins_with=v)),
    "scan": lambda v: Order.objects.scan().filter(note__contains=v),
    "map-key": lambda v: Everything.objects.filter(id="e1", **{f"mapping__{v}": 1}),
}


#: Slots whose value is rendered into key text by the key codec.
KEY_SLOTS = {"partition-key", "sort-key", "sort-key-begins", "sort-key-range", "gsi-key"}


def _expressions(params: dict[str, Any]) -> dict[str, Any]:
    return {k: params.get(k) for k in (*_EXPRESSION_KEYS, "ExpressionAttributeNames")}


@pytest.mark.parametrize("slot", sorted(VALUE_SLOTS))
@pytest.mark.parametrize("evil", INJECTIONS)
def test_values_are_inert(slot: str, evil: str) -> None:
    make = VALUE_SLOTS[slot]
    plain = one(make("x"))
    hostile = one(make(evil))  # check_request: the expressions hold no foreign text
    if slot == "map-key":
        # A map key is data inside a dict field: it may only ever be a name placeholder.
        assert hostile["FilterExpression"] == plain["FilterExpression"]
        assert hostile["ExpressionAttributeNames"]["#n3"] == evil
        assert hostile["ExpressionAttributeValues"] == plain["ExpressionAttributeValues"]
        return
    assert _expressions(hostile) == _expressions(plain)
    assert hostile["ExpressionAttributeValues"].keys() == plain["ExpressionAttributeValues"].keys()
    if slot in KEY_SLOTS:
        # Key text holds the escaped value (no raw "#" can reach another field); a lookup
        # left in the filter compares the attribute itself, so it holds the raw value.
        in_key = set(tokenize(plain["KeyConditionExpression"]))
        expected = {
            token: (
                {"S": av["S"][:-1] + (escape(evil) if token in in_key else evil)}
                if av.get("S", "").endswith("x")
                else av
            )
            for token, av in plain["ExpressionAttributeValues"].items()
        }
        assert hostile["ExpressionAttributeValues"] == expected
        assert any(escape(evil) in text for text in _strings(expected))
    else:
        assert any(evil in text for text in _strings(hostile["ExpressionAttributeValues"]))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@pytest.mark.parametrize(
    "call",
    [
        lambda: orders().filter(**{"status) OR (1=1": 1}),
        lambda: orders().filter(**{"#n0": 1}),
        lambda: orders().filter(**{":v0": 1}),
        lambda: orders().filter(**{"total; DROP": 1}),
        lambda: orders().filter(**{"x = :v0 OR #n0": 1}),
        lambda: orders().filter(pk="CUSTOMER#other"),
        lambda: orders().filter(sk__begins_with="ORDER#"),
        lambda: orders().filter(_type="Customer"),
        lambda: orders().filter(**{"total.x": 1}),
        lambda: orders().filter(Q(**{"status) OR (1=1": 1}) | Q(total=1)),
        lambda: orders().exclude(**{"#n1": 1}),
        lambda: orders().order_by("x OR 1"),
        lambda: orders().order_by("pk) OR (x"),
        lambda: orders().order_by("-#n1"),
        lambda: orders().only("pk"),
        lambda: orders().only("_type"),
        lambda: orders().only("password_hash"),
        lambda: orders().only("id, sk"),
        lambda: Customer.objects.filter(id="c1", **{"address__) OR (1=1": 1}),
    ],
)
def test_field_names_are_never_taken_from_the_caller(call: Callable[[], Any]) -> None:
    with pytest.raises(QueryError) as err:
        call().explain()
    assert err.value.code == "unknown-field"


def test_names_in_expressions_come_from_model_metadata() -> None:
    qs = (
        Order.objects.filter(Q(status="paid") | Q(total__gt=5), customer_id="c1")
        .exclude(note=None)
        .only("total", "tags")
    )
    params = one(qs)
    allowed = {"pk", "sk", "_type", "version", "_wtok", *Order._meta.attr_names.values()}
    assert set(params["ExpressionAttributeNames"].values()) <= allowed


# =========================================================================== invariants corpus

CORPUS: list[Callable[[], Any]] = [
    lambda: orders(),
    lambda: orders().filter(total__gte=1, status__in=["open", "paid"], note__exists=False),
    lambda: orders().filter(Q(status="paid") | (Q(total__lt=3) & ~Q(tags__contains="x"))),
    lambda: orders().exclude(lines__size__between=(1, 2)).only("id", "lines").reverse(),
    lambda: orders().filter(id__between=("a", "b"), total__ne=0).consistent(),
    lambda: Order.objects.filter(customer_id="c1", id="o1").only("total"),
    lambda: Order.objects.using_gsi("by_status").filter(status="open", created_at__lt=T0),
    lambda: (
        Order.objects.using_gsi("by_status")
        .filter(status="open", created_at__between=(T0, T0), total=1)
        .only("note")
        .order_by("-created_at")
    ),
    lambda: Order.objects.scan(segments=4).filter(Q(note=None) | Q(note__begins_with="a")),
    lambda: Order.objects.using_gsi("by_status").scan().only("id"),
    lambda: Customer.objects.filter(id="c1").include(Order),
    lambda: Customer.objects.filter(id="c1", address__city__in=["a", "b"]).include(Order),
    lambda: Customer.objects.using_gsi("by_email").filter(email="e").only("name", "address"),
    lambda: Event.objects.filter(stream="s", seq__gt=3, seq__lte=9, body__contains="x"),
    lambda: Event.objects.filter(stream="s").exclude(seq__in=[1, 2, 3]).order_by("-seq"),
    lambda: Everything.objects.filter(id="e1", mapping__a__gt=1, line__qty__in=[1, 2]),
    lambda: Everything.objects.scan().filter(expires__lt=T0, ss__size=2, bs__contains=b"x"),
    # reserved words as field names: only ever placeholders
    lambda: Counter.objects.filter(name="size", value__gt=1).only("value", "name"),
]


@pytest.mark.parametrize("make", CORPUS)
def test_every_placeholder_is_defined_and_used(make: Callable[[], Any]) -> None:
    requests = make().explain()
    assert requests
    for request in requests:
        check_request(request)


def test_expression_text_does_not_depend_on_values() -> None:
    def build(a: Any, b: Any, c: Any) -> dict[str, Any]:
        qs = Order.objects.filter(
            Q(status=a) | Q(total__gt=b), customer_id=c, id__gte=c, note__in=[c, c]
        )
        return _expressions(one(qs))

    assert build("open", 1, "c1") == build("paid", Decimal("99.5"), "zz#ORDER#")


def test_invariant_checker_catches_broken_requests() -> None:
    """The helper itself must fail on the defects it is meant to find."""
    good = Request(
        "Query",
        {
            "TableName": TABLE,
            "KeyConditionExpression": "#n0 = :v0",
            "ExpressionAttributeNames": {"#n0": "pk"},
            "ExpressionAttributeValues": {":v0": {"S": "x"}},
        },
    )
    check_request(good)
    broken = [
        {"ExpressionAttributeNames": {"#n0": "pk", "#n1": "sk"}},
        {"ExpressionAttributeValues": {":v0": {"S": "x"}, ":v1": {"S": "y"}}},
        {"KeyConditionExpression": "#n0 = 'x'"},
        {"KeyConditionExpression": "#n0 = :v0 OR attribute_exists(#n0)"},
        {"FilterExpression": "#n9 = :v0"},
        {
            "KeyConditionExpression": "#n0 = :v0 AND #n0 BETWEEN :v1 AND :v2",
            "ExpressionAttributeValues": {":v0": {"S": "x"}, ":v1": {"S": "b"}, ":v2": {"S": "a"}},
        },
    ]
    for change in broken:
        with pytest.raises(AssertionError):
            check_request(Request("Query", {**good.params, **change}))


def test_evaluator_runs_the_expression_grammar() -> None:
    names = {"#n0": "a", "#n1": "m", "#n2": "k", "#n3": "s"}
    values = {":v0": {"N": "2"}, ":v1": {"S": "x"}, ":v2": {"N": "5"}}
    item = {
        "a": {"N": "3"},
        "m": {"M": {"k": {"S": "xy"}}},
        "s": {"SS": ["x", "z"]},
    }
    cases = {
        "#n0 > :v0": True,
        "#n0 BETWEEN :v0 AND :v2": True,
        "(NOT #n0 IN (:v0, :v2))": True,
        "begins_with(#n1.#n2, :v1) AND contains(#n3, :v1)": True,
        "size(#n3) = :v0 OR attribute_not_exists(#n1)": True,
        "#n0 = :v0 OR (attribute_exists(#n2) AND #n0 < :v2)": False,
        "NOT (#n0 > :v0 AND #n0 < :v2)": False,
    }
    for expression, expected in cases.items():
        assert _Parser(expression, names, values).parse()(item) is expected, expression


# =========================================================================== known bugs


@pytest.mark.parametrize(
    ("lookups", "expected"),
    [
        ({"seq__gte": -5}, lambda n: n >= -5),
        ({"seq__lte": -5}, lambda n: n <= -5),
        ({"seq__between": (-5, 3)}, lambda n: -5 <= n <= 3),
        ({"seq__gte": 2_000_000_000}, lambda n: n >= 2_000_000_000),
    ],
)
def test_event_ranges_with_numbers_the_format_does_not_order(
    lookups: dict[str, Any], expected: Callable[[int], bool]
) -> None:
    seqs = [*range(-12, 13), 2_000_000_000, 10**10]
    try:
        objs = [Event(stream="s", seq=n) for n in seqs]
        [item_of(o) for o in objs]
    except DynormError:
        return  # also correct: keys that would not sort are refused when stored
    qs = Event.objects.filter(stream="s", **lookups)
    assert_selects(qs, objs, lambda e: expected(e.seq))


@pytest.mark.parametrize(
    "lookups",
    [{"last__lt": "Smith Jones"}, {"last__lte": "Smith!"}, {"last__between": ("A", "Smith Jones")}],
)
def test_leading_field_upper_bound_below_the_separator(
    person: type[Model], lookups: dict[str, Any]
) -> None:
    ((key, value),) = lookups.items()
    lookup = key.split("__")[1]
    objs = [person(org="o", last=last, first=first) for last, first in _PEOPLE]
    matches: dict[str, Callable[[str], bool]] = {
        "lt": lambda s: s < value,
        "lte": lambda s: s <= value,
        "between": lambda s: value[0] <= s <= value[1],
    }
    qs = person.objects.filter(org="o", **lookups)
    assert_selects(qs, objs, lambda p: matches[lookup](p.last))


def test_leading_field_begins_with_containing_the_separator(person: type[Model]) -> None:
    objs = [person(org="o", last=last, first=first) for last, first in _PEOPLE]
    qs = person.objects.filter(org="o", last__begins_with="Smith#B")
    assert_selects(qs, objs, lambda p: p.last.startswith("Smith#B"))


def test_gsi_key_equality_with_a_sibling_model_in_the_slot() -> None:
    class Invoice(Model):
        id: str
        status: Literal["open", "paid"] = "open"
        issued_at: datetime

        class Meta:
            pk = "INVOICE#{id}"
            sk = "INVOICE"
            indexes = [Index("by_status", pk="STATUS#{status}", sk="{issued_at}")]

    objs: list[Model] = [
        Order(id="o1", customer_id="c1", status="open", total=1, created_at=T0),
        Invoice(id="i1", status="open", issued_at=T0),
    ]
    qs = Order.objects.using_gsi("by_status").filter(status="open", created_at=T0)
    assert_selects(qs, objs, lambda o: True)


@pytest.mark.parametrize(
    "lookups",
    [
        {"created_at": datetime(2024, 1, 1)},
        {"created_at__gte": datetime(2024, 1, 1)},
        {"created_at__lt": "2024-01-01T00:00:00"},
    ],
)
def test_naive_datetime_in_a_sort_key_lookup(lookups: dict[str, Any]) -> None:
    with pytest.raises(DynormError):
        Order.objects.using_gsi("by_status").filter(status="open", **lookups).explain()


@pytest.mark.parametrize(
    "make",
    [
        lambda: Event.objects.filter(stream="s", seq__between=(9, 5)),
        lambda: orders().filter(id__between=("b", "a")),
        lambda: orders().filter(total__between=(9, 5)),
    ],
)
def test_between_with_reversed_bounds(make: Callable[[], Any]) -> None:
    try:
        requests = make().explain()
    except QueryError:
        return
    for request in requests:
        check_request(request)


@pytest.mark.parametrize(
    "make",
    [
        lambda: orders().filter(total__begins_with="1"),
        lambda: Event.objects.filter(stream="s", seq__begins_with="1"),
    ],
)
def test_begins_with_on_a_number_field(make: Callable[[], Any]) -> None:
    with pytest.raises(QueryError):
        make().explain()


@pytest.mark.parametrize(
    "make",
    [
        lambda: orders().filter(note__gt=None),
        lambda: orders().filter(note__lte=None),
        lambda: orders().filter(note__contains=None),
        lambda: orders().filter(tags__contains=None),
        lambda: Customer.objects.filter(id="c1", address__city__lt=None),
    ],
)
def test_none_with_a_comparison_lookup_is_refused(make: Callable[[], Any]) -> None:
    with pytest.raises(QueryError) as err:
        make().explain()
    assert err.value.code == "bad-query"
