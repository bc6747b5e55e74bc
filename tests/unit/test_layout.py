"""Physical names (`Layout`): dynorm's own bytes are unchanged; every name is checked at class
creation; plain-value keys follow the documented rule."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

import pytest

import dynorm
from dynorm import Index, Model, VersionedModel, fields
from dynorm._layout import DEFAULT
from dynorm.exceptions import ConfigurationError
from dynorm.query._compile_write import (
    Absent,
    Loaded,
    Put,
    SetFields,
    Update,
    compile_write,
)
from dynorm.tooling import table_as_code, table_properties

foreign = dynorm.Table("layout-unit", managed=False, pk_attribute="PK", sk_attribute="SK")


class PinnedOrder(Model):
    customer_id: str
    id: str
    total: Decimal = Decimal(0)

    class Meta:
        pk = "CUSTOMER#{customer_id}"
        sk = "{id}"
        indexes = [Index("by_total", pk="ALL", sk="{total}")]


def test_the_default_layout_stores_exactly_the_bytes_it_always_did() -> None:
    assert PinnedOrder._meta.layout == DEFAULT
    values = {"version": 1, "customer_id": "c#1", "id": "o$1", "total": Decimal("2.50")}
    request = compile_write(PinnedOrder._meta, Put(values), Absent(), token="t")
    assert request.params["Item"] == {
        "pk": {"S": "CUSTOMER#c$231"},
        "sk": {"S": "o$241"},  # a one-field key of dynorm's own layout is still escaped
        "_type": {"S": "PinnedOrder"},
        "gsi1pk": {"S": "ALL"},
        "gsi1sk": {"S": "2.5"},
        "version": {"N": "1"},
        "customer_id": {"S": "c#1"},
        "id": {"S": "o$1"},
        "total": {"N": "2.50"},
        "_wtok": {"S": "t"},
    }
    assert request.params["ExpressionAttributeNames"] == {"#n0": "pk"}


class Raw(Model):
    id: str
    n: int = 0

    class Meta:
        table = foreign
        pk = "{id}"
        sk = "{n}"


def test_an_unmanaged_tables_one_field_keys_are_plain_values_typed_by_the_field() -> None:
    values = {"version": 0, "id": "a#b$c", "n": 7}
    item = compile_write(Raw._meta, Put(values), Absent(), token=None).params["Item"]
    assert item["PK"] == {"S": "a#b$c"}
    assert item["SK"] == {"N": "7"}
    assert Raw._meta.layout.types == {"SK": "N"}


def _define(meta: dict[str, object], **fields_: object) -> type[Model]:
    namespace: dict[str, object] = {"__annotations__": {"id": str}, "Meta": type("Meta", (), meta)}
    namespace.update(fields_)
    return type(Model)("Probe" + str(abs(hash(repr(meta)))), (Model,), namespace)


@pytest.mark.parametrize(
    ("meta", "fragment"),
    [
        ({"pk": "{id}", "pk_attribute": ""}, "pk_attribute"),
        ({"pk": "{id}", "pk_attribute": "x" * 256}, "255"),
        ({"pk": "{id}", "sk_attribute": "pk"}, "also"),
        ({"pk": "{id}", "type_attribute": "version"}, "also"),
        ({"pk": "{id}", "version_attribute": "_wtok"}, "write_token_attribute"),
        ({"pk": "{id}", "managed": "no"}, "managed"),
        ({"pk": "{id}", "sk": "{id}", "sk_attribute": None}, "no sort key"),
    ],
)
def test_bad_physical_names_are_refused_naming_model_and_option(
    meta: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match=fragment) as caught:
        _define(meta)
    assert "Probe" in str(caught.value)


def test_a_key_attribute_that_is_a_field_needs_exactly_that_field() -> None:
    with pytest.raises(ConfigurationError, match=r"exactly '\{id\}'"):

        class Prefixed(Model):
            id: str = fields.Attr("PK")

            class Meta:
                table = foreign
                pk = "USER#{id}"


def test_a_field_stored_under_the_type_attribute_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="entity-type attribute"):

        class Sneaky(Model):
            id: str
            kind: str = fields.Attr("_type", default="")

            class Meta:
                table = foreign
                pk = "{id}"


def test_a_versioned_model_needs_a_sort_key_and_a_type_attribute() -> None:
    with pytest.raises(ConfigurationError, match="VersionedModel"):

        class Untyped(VersionedModel):
            id: str

            class Meta:
                table = foreign
                pk = "{id}"
                type_attribute = None


def test_unique_needs_text_keys() -> None:
    with pytest.raises(ConfigurationError, match="Meta.unique"):

        class Numbered(Model):
            id: int
            email: str = ""

            class Meta:
                table = foreign
                pk = "{id}"
                unique = [("email",)]


own_names = dynorm.Table("layout-own", pk_attribute="id", sk_attribute=None)


class Keyed(Model):  # a managed table with names of its own, a partition key only
    id: str
    email: str = ""
    expires: datetime | None = fields.TTL(attribute="expiresAt")

    class Meta:
        table = own_names
        pk = "{id}"
        indexes = [
            Index(
                "by_email",
                pk="{email}",
                name="EmailIndex",
                pk_attribute="email",
                sk_attribute="kind",
                projection="KEYS_ONLY",
            ),
        ]


def test_iac_emits_the_declared_layout_of_a_managed_table_with_its_own_names() -> None:
    props = table_properties("layout-own", [Keyed])
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    (gsi,) = props["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "EmailIndex"
    assert gsi["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert props["TimeToLiveSpecification"]["AttributeName"] == "expiresAt"
    text = table_as_code("terraform", "layout-own", [Keyed])
    top = text.split("attribute {")[0]
    assert re.search(r'hash_key\s*=\s*"id"', top) and "range_key" not in top


def test_iac_refuses_an_unmanaged_table() -> None:
    with pytest.raises(ConfigurationError, match="not managed by dynorm"):
        table_properties("layout-unit", [Raw])


def test_two_fields_stored_under_one_attribute_are_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"Twice\.b under the attribute 'a'.*overwrite"):

        class Twice(Model):
            id: str
            a: str = ""
            b: str = fields.Attr("a", default="")

            class Meta:
                pk = "T#{id}"


def test_an_empty_attribute_name_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="non-empty"):

        class Blank(Model):
            id: str
            a: str = fields.Attr("", default="")

            class Meta:
                pk = "B#{id}"


class Tokenless(Model):
    id: str
    text: str = ""
    n: int = 0

    class Meta:
        pk = "TOKENLESS#{id}"
        write_token_attribute = None


class RenamedToken(Model):
    id: str
    n: int = 0

    class Meta:
        pk = "RENAMED#{id}"
        write_token_attribute = "writeToken"


def test_without_a_write_token_attribute_no_write_stores_or_checks_a_token() -> None:
    meta = Tokenless._meta
    assert meta.layout.token is None
    values = {"version": 2, "id": "a", "text": "x", "n": 1}
    put = compile_write(meta, Put(values), Loaded(1, "t0"), token="t1").params
    assert "_wtok" not in put["Item"] and "t1" not in repr(put) and "t0" not in repr(put)
    fields_ = compile_write(
        meta, SetFields(("TOKENLESS#a", "Tokenless"), values, ["text"]), Loaded(1, "t0"), token="t1"
    ).params
    assert "_wtok" not in repr(fields_) and "t1" not in repr(fields_)
    update = compile_write(
        meta,
        Update(("TOKENLESS#a", "Tokenless"), {"text": "y"}, values, 2),
        Loaded(1, "t0"),
        token="t1",
        now=datetime(2026, 1, 1),
    ).params
    assert "_wtok" not in repr(update) and "t1" not in repr(update)


def test_a_renamed_write_token_is_stored_and_checked_under_its_name() -> None:
    meta = RenamedToken._meta
    values = {"version": 2, "id": "a", "n": 1}
    put = compile_write(meta, Put(values), Loaded(1, "t0"), token="t1").params
    assert put["Item"]["writeToken"] == {"S": "t1"} and "_wtok" not in put["Item"]
    assert "writeToken" in put["ExpressionAttributeNames"].values()
    assert {"S": "t0"} in put["ExpressionAttributeValues"].values()


@pytest.mark.parametrize(
    ("meta", "fragment"),
    [
        ({"pk": "{id}", "write_token_attribute": ""}, "write_token_attribute"),
        ({"pk": "{id}", "write_token_attribute": "pk"}, "also"),
        ({"pk": "{id}", "write_token_attribute": "version"}, "also"),
        ({"pk": "{id}", "write_token_attribute": 7}, "write_token_attribute"),
    ],
)
def test_bad_write_token_attributes_are_refused(meta: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment) as caught:
        _define(meta)
    assert "Probe" in str(caught.value)


tokenless_table = dynorm.Table("layout-unit-token", write_token_attribute=None)


class OnTokenlessTable(Model):
    id: str

    class Meta:
        table = tokenless_table
        pk = "{id}"


class OverridesTheTable(Model):
    id: str

    class Meta:
        table = tokenless_table
        pk = "{id}"
        write_token_attribute = "_wtok"


def test_a_table_declares_the_write_token_attribute_and_meta_overrides_it() -> None:
    assert OnTokenlessTable._meta.layout.token is None
    assert OverridesTheTable._meta.layout.token == "_wtok"
