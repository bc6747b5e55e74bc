"""J. Security: value and name injection, mass assignment, the action allow-list (51-54)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

import dynorm
from dynorm import F, Index, Model, Q, fields
from dynorm.exceptions import DynormError, QueryError
from tests.reliability.conftest import Offline, spied_operations
from tests.reliability.helpers import (
    CONTROL_PLANE_ACTIONS,
    RUNTIME_ACTIONS,
    bare_words,
    check_placeholders,
    loaded,
    raw_get,
    without,
)

INJECTIONS = [
    "x) OR attribute_exists(pk) OR (a = :v0",
    ":v0",
    "#n0",
    "' OR '1'='1",
    '") OR 1=1 --',
    "0 OR 1=1",
    "pk = :v0",
    "x\x00y",
]


class RelMessage(Model):
    thread: str
    title: str
    note: str = ""
    attrs: dict[str, str] = {}
    password_hash: str = ""

    class Meta:
        pk = "RELMSG#{thread}"
        sk = "RELMSG#{title}"
        indexes = [Index("rel_msg_by_note", pk="RELMSGNOTE#{note}")]


class RelTenantUser(Model):
    tenant: str
    id: str = fields.ULID()
    email: str
    role: str = "member"

    class Meta:
        pk = "RELTENANT#{tenant}"
        sk = "RELUSER#{id}"


# --------------------------------------------------------------------------- scenario 51

LOOKUPS = ["note", "note__ne", "note__gt", "note__begins_with", "note__contains", "attrs__k"]


@pytest.mark.parametrize("lookup", LOOKUPS)
def test_s51_injected_values_change_only_expression_values(offline: Offline, lookup: str) -> None:
    base = RelMessage.objects.filter(thread="t", **{lookup: "x"}).explain()[0].params
    for value in INJECTIONS:
        params = RelMessage.objects.filter(thread="t", **{lookup: value}).explain()[0].params
        assert without(params, "ExpressionAttributeValues") == without(
            base, "ExpressionAttributeValues"
        ), value
        assert {"S": value} in params["ExpressionAttributeValues"].values()
        check_placeholders(params)
    in_base = RelMessage.objects.filter(thread="t", note__in=["x", "y"]).explain()[0].params
    in_bad = RelMessage.objects.filter(thread="t", note__in=INJECTIONS[:2]).explain()[0].params
    assert without(in_bad, "ExpressionAttributeValues") == without(
        in_base, "ExpressionAttributeValues"
    )
    assert offline.calls == []


def test_s51_injected_key_values_change_only_expression_values(offline: Offline) -> None:
    base = RelMessage.objects.filter(thread="t", title__begins_with="x").explain()[0].params
    gsi_base = RelMessage.objects.using_gsi("rel_msg_by_note").filter(note="x").explain()[0].params
    for value in INJECTIONS:
        params = RelMessage.objects.filter(thread=value, title__begins_with=value).explain()
        assert without(params[0].params, "ExpressionAttributeValues") == without(
            base, "ExpressionAttributeValues"
        )
        gsi = RelMessage.objects.using_gsi("rel_msg_by_note").filter(note=value).explain()
        assert without(gsi[0].params, "ExpressionAttributeValues") == without(
            gsi_base, "ExpressionAttributeValues"
        )
    assert offline.calls == []


def test_s51_injected_values_match_only_themselves(dynorm_table: str) -> None:
    for n, value in enumerate(INJECTIONS):
        RelMessage.objects.create(thread="t", title=f"{n}", note=value)
    RelMessage.objects.create(thread="t", title="plain", note="x")
    RelMessage.objects.create(thread="t", title="0 OR 1=1 is a title", note="y")
    for n, value in enumerate(INJECTIONS):
        assert [m.title for m in RelMessage.objects.filter(thread="t", note=value)] == [str(n)]
        on_gsi = RelMessage.objects.using_gsi("rel_msg_by_note").filter(note=value)
        assert [m.title for m in on_gsi] == [str(n)]
    # begins_with(sk, "0 OR 1=1") matches the one title that literally starts so, nothing else.
    found = RelMessage.objects.filter(thread="t", title__begins_with="0 OR 1=1")
    assert [m.title for m in found] == ["0 OR 1=1 is a title"]
    assert list(RelMessage.objects.filter(thread="t", title__begins_with="x) OR (1=1")) == []
    assert list(RelMessage.objects.filter(thread=INJECTIONS[0])) == []


# --------------------------------------------------------------------------- scenario 52


@pytest.mark.parametrize(
    "attempt",
    [
        lambda: RelMessage.objects.filter(**{"x = :v0 OR #n0": 1}),
        lambda: RelMessage.objects.filter(**{"note) OR (attribute_exists(pk": 1}),
        lambda: RelMessage.objects.filter(thread="t").exclude(pk="x"),
        lambda: RelMessage.objects.filter(Q(**{"#n0": 1}) | Q(note="x"), thread="t"),
        lambda: RelMessage.objects.filter(**{"note__x) OR (y": 1}),
        lambda: RelMessage.objects.filter(thread="t").order_by("pk) OR (x"),
        lambda: RelMessage.objects.filter(thread="t").order_by("-pk"),
        lambda: RelMessage.objects.filter(thread="t").only("password"),
        lambda: RelMessage.objects.filter(thread="t").only("title", "sk"),
        lambda: RelMessage.objects.using_gsi("gsi1) OR (x"),
        lambda: loaded(RelMessage, thread="t", title="a", version=1).update(**{"bad name": 1}),
        lambda: dynorm.transaction_get([(RelMessage, {"thread": "t", "title; DROP": "x"})]),
    ],
)
def test_s52_names_not_in_the_model_are_refused_before_sending(
    offline: Offline, attempt: Any
) -> None:
    with pytest.raises((QueryError, DynormError)):
        qs = attempt()
        if qs is not None and hasattr(qs, "explain"):
            qs.explain()
    assert offline.calls == []


@pytest.mark.parametrize(
    "values",
    [{"note = :v0, pk": "x"}, {"note": F("pk) OR (x")}, {"pk": "TENANT#other"}],
    ids=["name", "f-reference", "key-attribute"],
)
def test_s52_bulk_update_refuses_unknown_names_before_sending(
    offline: Offline, values: dict[str, Any]
) -> None:
    with pytest.raises(QueryError):
        RelMessage.objects.filter(thread="t").update(**values)
    assert offline.calls == []


def test_s52_expression_names_come_only_from_model_metadata(offline: Offline) -> None:
    allowed = {"pk", "sk", "_type", "version", "_wtok", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"}
    allowed |= set(RelMessage._meta.attr_names.values())
    for qs in (
        RelMessage.objects.filter(thread="t", note="x", title__gte="a").only("note"),
        RelMessage.objects.filter(Q(note="a") | ~Q(password_hash="b"), thread="t"),
        RelMessage.objects.using_gsi("rel_msg_by_note").filter(note="n"),
        RelMessage.objects.scan().filter(note__exists=True),
    ):
        for request in qs.explain():
            names = set(request.params.get("ExpressionAttributeNames", {}).values())
            assert names <= allowed, names - allowed
            assert not bare_words(request.params)
    # A map field's keys are data, not model metadata: they stay literal names behind a
    # placeholder, and the expression text is the same whatever the key says.
    base = RelMessage.objects.filter(thread="t", attrs__k="v").explain()[0].params
    odd = (
        RelMessage.objects.filter(thread="t", **{"attrs__x) OR attribute_exists(pk": "v"})
        .explain()[0]
        .params
    )
    assert odd["FilterExpression"] == base["FilterExpression"]
    assert "x) OR attribute_exists(pk" in odd["ExpressionAttributeNames"].values()
    assert offline.calls == []


# --------------------------------------------------------------------------- scenario 53


@pytest.mark.parametrize("attr", ["pk", "sk", "_type", "gsi1pk", "_wtok"])
def test_s53_key_and_bookkeeping_attributes_cannot_be_mass_assigned(
    offline: Offline, attr: str
) -> None:
    payload = {"tenant": "mine", "email": "a@example.com", attr: "TENANT#other"}
    with pytest.raises(ValidationError):
        RelTenantUser.model_validate(payload)
    with pytest.raises(ValidationError):
        RelTenantUser(**payload)
    assert offline.calls == []


def test_s53_mass_assigned_version_cannot_overwrite_an_existing_item(dynorm_table: str) -> None:
    victim = RelTenantUser.objects.create(tenant="other", email="victim@example.com", role="admin")
    before = raw_get("RELTENANT#other", f"RELUSER#{victim.id}")
    payload = {
        "tenant": "other",
        "id": victim.id,
        "email": "attacker@example.com",
        "role": "admin",
        "version": 1,
    }
    with pytest.raises((ValidationError, DynormError)):
        RelTenantUser.model_validate(payload).save()
    assert raw_get("RELTENANT#other", f"RELUSER#{victim.id}") == before


def test_s53_mass_assigned_object_cannot_create_over_an_existing_key(dynorm_table: str) -> None:
    victim = RelTenantUser.objects.create(tenant="other", email="victim@example.com")
    before = raw_get("RELTENANT#other", f"RELUSER#{victim.id}")
    payload = {"tenant": "other", "id": victim.id, "email": "attacker@example.com"}
    with pytest.raises(DynormError):
        RelTenantUser.model_validate(payload).save()  # a create: attribute_not_exists(pk)
    assert raw_get("RELTENANT#other", f"RELUSER#{victim.id}") == before


# --------------------------------------------------------------------------- scenario 54


def test_s54_runtime_operations_stay_inside_the_documented_allow_list(
    dynorm_table: str,
) -> None:
    """A workload over every runtime feature; the suite-wide spy (conftest) records each
    operation dynorm sends. Every reliability test is checked the same way at teardown."""
    user = RelTenantUser.objects.create(tenant="t", email="a@example.com")
    RelTenantUser.objects.get(tenant="t", id=user.id)
    user.role = "admin"
    user.save()
    user.save(update_fields=["role"])
    user.update(email="b@example.com")
    user.refresh_from_db()
    list(RelTenantUser.objects.filter(tenant="t"))
    RelTenantUser.objects.filter(tenant="t").count()
    RelTenantUser.objects.filter(tenant="t").exists()
    RelTenantUser.objects.filter(tenant="t").first()
    page = RelTenantUser.objects.filter(tenant="t").page(size=1)
    RelTenantUser.objects.filter(tenant="t").page(size=1, cursor=page.next_cursor)
    RelMessage.objects.create(thread="t", title="a", note="n")
    list(RelMessage.objects.using_gsi("rel_msg_by_note").filter(note="n"))
    RelTenantUser.objects.bulk_create([RelTenantUser(tenant="t", email=f"{i}@x") for i in range(3)])
    RelTenantUser.objects.bulk_create([RelTenantUser(tenant="t", email="o@x")], overwrite=True)
    RelTenantUser.objects.bulk_get([{"tenant": "t", "id": user.id}])
    RelTenantUser.objects.get_or_create(tenant="t", id="fixed", defaults={"email": "c@x"})
    RelTenantUser.objects.update_or_create(tenant="t", id="fixed", defaults={"role": "x"})
    RelTenantUser.objects.filter(tenant="t", role="x").update(role="y")
    with dynorm.transaction() as tx:
        RelTenantUser.objects.create(tenant="t", email="tx@x")
        tx.check(user)
    dynorm.transaction_get([(RelTenantUser, {"tenant": "t", "id": user.id})])
    RelTenantUser.objects.filter(tenant="t", role="y").delete()
    user.delete()
    used = set(spied_operations())
    assert "Scan" not in used  # never without an explicit .scan()
    assert not used & CONTROL_PLANE_ACTIONS
    assert used <= RUNTIME_ACTIONS
    assert {"PutItem", "GetItem", "Query", "TransactWriteItems", "BatchWriteItem"} <= used
    list(RelTenantUser.objects.scan().filter(role="member"))
    assert "Scan" in set(spied_operations())  # ...and exactly when asked for
