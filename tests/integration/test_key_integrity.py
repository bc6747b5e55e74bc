"""Keys are faithful on DynamoDB Local: no two objects share an item, no read of a model
reaches an item of another value or another entity type."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dynorm import Model
from dynorm.exceptions import InvalidValueError

pytestmark = pytest.mark.usefixtures("dynorm_table")


class TenantDoc(Model):
    tenant: str
    region: str
    doc: str
    body: str = ""

    class Meta:
        pk = "T#{tenant}#{region}"
        sk = "DOC#{doc}"


class Invoice(Model):
    acct: str
    id: str
    total: Decimal = Decimal(0)

    class Meta:
        pk = "ACCT#{acct}"
        sk = "{id}"


class InvoiceLine(Model):
    acct: str
    id: str
    n: int
    sku: str = ""

    class Meta:
        pk = "ACCT#{acct}"
        sk = "{id}#LINE#{n}"


class OwnedFile(Model):
    tenant: str
    owner: str
    file_id: str

    class Meta:
        pk = "TENANT#{tenant}"
        sk = "FILE#{owner}#{file_id}"


class Priced(Model):
    price: Decimal
    name: str = ""

    class Meta:
        pk = "PRICE#{price}"
        sk = "P"


def test_values_containing_the_separator_name_different_items() -> None:
    one = TenantDoc.objects.create(tenant="x#y", region="z", doc="d", body="one")
    two = TenantDoc.objects.create(tenant="x", region="y#z", doc="d", body="two")
    assert one.dynamo_key != two.dynamo_key
    assert TenantDoc.objects.get(tenant="x#y", region="z", doc="d").body == "one"
    assert TenantDoc.objects.get(tenant="x", region="y#z", doc="d").body == "two"
    assert TenantDoc.objects.filter(tenant="x", region="y#z").delete() == 1
    assert TenantDoc.objects.get(tenant="x#y", region="z", doc="d").body == "one"


def test_a_read_never_builds_a_model_from_another_entity_type() -> None:
    Invoice.objects.create(acct="a", id="X")
    InvoiceLine.objects.create(acct="a", id="X", n=1, sku="s")
    forged = Invoice.objects.filter(acct="a", id="X#LINE#1")
    assert list(forged) == []
    assert forged.count() == 0
    assert not forged.exists()
    assert forged.page(size=5).items == []
    assert Invoice.objects.filter(acct="a", id__begins_with="X").count() == 1
    assert Invoice.objects.filter(acct="a", id__gte="X").count() == 1
    with pytest.raises(Invoice.DoesNotExist):
        Invoice.objects.get(acct="a", id="X#LINE#1")
    assert forged.update(total=Decimal(1)) == 0
    assert forged.delete() == 0
    assert InvoiceLine.objects.get(acct="a", id="X", n=1).sku == "s"
    assert [i.id for i in Invoice.objects.filter(acct="a")] == ["X"]
    assert Invoice.objects.filter(acct="a").delete() == 1
    assert InvoiceLine.objects.filter(acct="a", id="X").count() == 1


def test_equality_on_a_leading_sort_key_field_is_not_a_text_prefix() -> None:
    OwnedFile.objects.create(tenant="t", owner="bob", file_id="f1")
    OwnedFile.objects.create(tenant="t", owner="bob#x", file_id="f2")
    OwnedFile.objects.create(tenant="t", owner="bobby", file_id="f3")
    qs = OwnedFile.objects.filter(tenant="t", owner="bob")
    assert [f.file_id for f in qs] == ["f1"]
    assert qs.count() == 1
    assert [f.file_id for f in qs.page(size=10).items] == ["f1"]
    assert qs.delete() == 1
    assert OwnedFile.objects.filter(tenant="t").count() == 2


def test_equal_numbers_name_one_item() -> None:
    Priced.objects.create(price=Decimal("1.50"), name="stored")
    assert Priced.objects.get(price=Decimal("1.5")).name == "stored"
    assert Priced.objects.get(price=Decimal("1.500")).name == "stored"
    assert Priced.objects.get(price=Decimal("15E-1")).name == "stored"


def test_a_lower_bound_reaches_ids_made_of_the_largest_code_point() -> None:
    ids = ["a", "b", "\U0010ffff", "\U0010ffff\U0010ffff", "\U0010ffff" * 3 + "z"]
    for i in ids:
        OwnedFile.objects.create(tenant="big", owner="o", file_id=i)
    qs = OwnedFile.objects.filter(tenant="big", owner="o")
    assert sorted(f.file_id for f in qs.filter(file_id__gte="a")) == sorted(ids)
    assert qs.filter(file_id__gt="\U0010ffff").count() == 2
    assert OwnedFile.objects.filter(tenant="big", owner__gte="o").count() == len(ids)


def test_a_lone_surrogate_in_a_key_is_a_typed_error() -> None:
    with pytest.raises(InvalidValueError, match="surrogate"):
        Invoice.objects.create(acct="a\udc00", id="x")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet="ab#$ \x00", min_size=1, max_size=4),
            st.text(alphabet="ab#$ \x00", min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=6,
        unique=True,
    )
)
def test_every_owner_reads_back_exactly_its_own_files(rows: list[tuple[str, str]]) -> None:
    tenant = f"prop-{uuid.uuid4().hex}"  # hypothesis replays examples: a fresh partition each
    OwnedFile.objects.bulk_create([OwnedFile(tenant=tenant, owner=o, file_id=f) for o, f in rows])
    for owner in {o for o, _ in rows}:
        got = {f.file_id for f in OwnedFile.objects.filter(tenant=tenant, owner=owner)}
        assert got == {f for o, f in rows if o == owner}
        for prefix in {owner[:1], owner}:
            got = {
                (f.owner, f.file_id)
                for f in OwnedFile.objects.filter(tenant=tenant, owner__begins_with=prefix)
            }
            assert got == {(o, f) for o, f in rows if o.startswith(prefix)}


@pytest.mark.parametrize("lookup", ["gte", "lt", "begins_with", "between"])
def test_an_oversized_range_bound_is_refused_before_sending(lookup: str) -> None:
    bound: object = "x" * 1100
    if lookup == "between":
        bound = ("a", "x" * 1100)
    qs = OwnedFile.objects.filter(tenant="t", owner="o", **{f"file_id__{lookup}": bound})
    with pytest.raises(InvalidValueError, match="1024-byte") as info:
        qs.explain()
    assert "xxxx" not in str(info.value)
    with pytest.raises(InvalidValueError):
        list(qs)
