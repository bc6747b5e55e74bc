"""diff_table(): every change to a fitting table description that matters is reported, once,
with the right fixability; changes that do not matter are not reported.

Descriptions start from what create_table() would make for the models (table_definition), so
an unchanged description must fit; the integration tests run the same checks on real tables.
"""

from __future__ import annotations

import copy
import functools
import os
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from dynorm import AbstractModelError, ConfigurationError, Index, Model, fields
from dynorm._registry import isolated_registry
from dynorm._table import _mismatch, diff_table, table_definition


@functools.cache
def models(slots: frozenset[int], ttl: bool) -> tuple[type[Model], ...]:
    """Models using exactly these GSI slots, with or without a TTL field."""
    with isolated_registry():
        namespace: dict[str, Any] = {
            "__annotations__": {"id": str, "size": int},
            "__module__": __name__,
            "__qualname__": "Thing",
            "size": 0,
            "Meta": type(
                "Meta",
                (),
                {
                    "pk": "T#{id}",
                    "indexes": [Index(f"by_{s}", pk=f"S{s}#{{id}}", slot=s) for s in sorted(slots)],
                },
            ),
        }
        if ttl:
            namespace["__annotations__"]["ends"] = datetime | None
            namespace["ends"] = fields.TTL()
        return (type(Model)("Thing", (Model,), namespace),)


def fitting(chosen: tuple[type[Model], ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    desc = table_definition("t", chosen)
    for index in desc.get("GlobalSecondaryIndexes", []):
        index["IndexStatus"] = "ACTIVE"
    desc["TableStatus"] = "ACTIVE"
    return desc, {"TimeToLiveStatus": "ENABLED", "AttributeName": "_ttl"}


def _gsi(desc: dict[str, Any], slot: int) -> dict[str, Any]:
    return next(g for g in desc["GlobalSecondaryIndexes"] if g["IndexName"] == f"gsi{slot}")


def _types(desc: dict[str, Any]) -> dict[str, Any]:
    return {a["AttributeName"]: a for a in desc["AttributeDefinitions"]}


def rename_pk(desc: dict[str, Any], ttl: dict[str, Any]) -> None:
    desc["KeySchema"][0]["AttributeName"] = "PK"
    desc["AttributeDefinitions"].append({"AttributeName": "PK", "AttributeType": "S"})


def pk_number(desc: dict[str, Any], ttl: dict[str, Any]) -> None:
    _types(desc)["pk"]["AttributeType"] = "N"


def no_range(desc: dict[str, Any], ttl: dict[str, Any]) -> None:
    desc["KeySchema"] = desc["KeySchema"][:1]


def gsi_mutation(kind: str, slot: int) -> Any:
    def mutate(desc: dict[str, Any], ttl: dict[str, Any]) -> None:
        if kind == "drop":
            desc["GlobalSecondaryIndexes"].remove(_gsi(desc, slot))
        elif kind == "keys-only":
            _gsi(desc, slot)["Projection"] = {"ProjectionType": "KEYS_ONLY"}
        elif kind == "hash-only":
            _gsi(desc, slot)["KeySchema"] = _gsi(desc, slot)["KeySchema"][:1]
        elif kind == "number-sk":
            _types(desc)[f"gsi{slot}sk"]["AttributeType"] = "N"
        elif kind == "deleting":
            _gsi(desc, slot)["IndexStatus"] = "DELETING"

    return mutate


def ttl_mutation(kind: str) -> Any:
    def mutate(desc: dict[str, Any], ttl: dict[str, Any]) -> None:
        if kind == "disabled":
            ttl.clear()
            ttl["TimeToLiveStatus"] = "DISABLED"
        elif kind == "other":
            ttl["AttributeName"] = "expires_at"
        elif kind == "on-version":
            ttl["AttributeName"] = "version"
        elif kind == "disabling":
            ttl["TimeToLiveStatus"] = "DISABLING"

    return mutate


def harmless(desc: dict[str, Any], ttl: dict[str, Any]) -> None:
    # Indexes, attributes and settings the models do not use.
    desc.setdefault("GlobalSecondaryIndexes", []).append(
        {
            "IndexName": "gsi9",
            "KeySchema": [{"AttributeName": "gsi9pk", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
            "IndexStatus": "ACTIVE",
        }
    )
    desc["AttributeDefinitions"].append({"AttributeName": "gsi9pk", "AttributeType": "N"})
    desc["BillingModeSummary"] = {"BillingMode": "PROVISIONED"}
    desc["LocalSecondaryIndexes"] = [{"IndexName": "lsi", "KeySchema": desc["KeySchema"]}]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Any, ...]:
    slots = frozenset(draw(st.sets(st.integers(1, 4), max_size=3)))
    needs_ttl = draw(st.booleans())
    chosen = models(slots, needs_ttl)
    desc, ttl = fitting(chosen)
    expected: list[tuple[str, bool]] = []
    key = draw(st.sampled_from([None, rename_pk, pk_number, no_range]))
    if key is not None:
        key(desc, ttl)
        expected.append(("key schema", False))
    for slot in sorted(slots):
        kind = draw(
            st.sampled_from([None, "drop", "keys-only", "hash-only", "number-sk", "deleting"])
        )
        if kind is None:
            continue
        gsi_mutation(kind, slot)(desc, ttl)
        expected.append((f"index gsi{slot}", kind == "drop"))
    kind = draw(st.sampled_from([None, "disabled", "other", "on-version", "disabling"]))
    if kind is not None:
        ttl_mutation(kind)(desc, ttl)
        if needs_ttl:
            expected.append(("TTL", kind == "disabled"))
        elif kind == "on-version":
            expected.append(("TTL", False))  # DynamoDB would expire items by their version
    if draw(st.booleans()):
        harmless(desc, ttl)
    return chosen, desc, ttl, expected


@settings(
    max_examples=int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
)
@given(scenarios())
def test_every_difference_that_matters_is_reported_once_and_nothing_else(
    scenario: tuple[Any, ...],
) -> None:
    chosen, desc, ttl, expected = scenario
    before = copy.deepcopy((desc, ttl))
    differences = diff_table(desc, ttl, chosen)
    assert [(d.part, d.fixable) for d in differences] == expected
    assert (desc, ttl) == before  # a pure comparison
    for difference in differences:
        assert difference.expected != difference.found and difference.fix
    if differences:
        message = str(_mismatch("t", differences))
        assert all(str(d) in message and d.fix in message for d in differences)


def test_a_missing_table_is_one_fixable_difference() -> None:
    [difference] = diff_table(None, None, models(frozenset({1}), True))
    assert (difference.part, difference.fixable) == ("table", True)


def test_ttl_is_not_compared_without_its_description() -> None:
    chosen = models(frozenset(), True)
    desc, _ = fitting(chosen)
    assert diff_table(desc, None, chosen) == []


def test_tables_are_built_for_concrete_models_only() -> None:
    with isolated_registry():

        class Base(Model):
            ends: datetime | None = fields.TTL()

            class Meta:
                abstract = True

        for call in (
            lambda: table_definition("t", [Base]),
            lambda: diff_table(None, None, [Base]),
        ):
            with pytest.raises(AbstractModelError, match="Base"):
                call()
        with pytest.raises(ConfigurationError, match="pass dynorm model classes"):
            table_definition("t", ["tests.models"])  # type: ignore[list-item]
