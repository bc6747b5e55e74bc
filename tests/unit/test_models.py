"""Offline tests of model definition: Meta parsing, key templates, index slots, key limits."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum

import pytest

import dynorm
from dynorm import ConfigurationError, Index, InvalidValueError, Model, fields
from dynorm._codec import ValueProblem
from dynorm._constants import PARTITION_KEY_LIMIT, SORT_KEY_LIMIT
from dynorm._keys import KeyTemplate
from dynorm._options import assign_slots
from dynorm._registry import get_model, isolated_registry
from tests.models import Counter, Customer, Event, Order

SENTINEL = "SENTINEL-do-not-leak-7f3a"


@pytest.fixture
def registry():
    with isolated_registry():
        yield


# --------------------------------------------------------------------------- key templates


def template(source: str, known=("id", "seq", "when", "name", "flag", "amount", "color")):
    return KeyTemplate(source, "Thing", known, "partition key")


def test_template_with_format_spec():
    assert template("EVENT#{seq:08d}").render({"seq": 42}) == "EVENT#00000042"
    assert template("{amount:.2f}").render({"amount": Decimal("3.14")}) == "3.14"
    assert template("{amount:.2f}").render({"amount": Decimal("3.1")}) == "3.10"
    assert Event._meta.primary_key({"stream": "s", "seq": 7}) == ("STREAM#s", "EVENT#0000000007")


def test_a_format_spec_that_would_round_is_refused_not_rounded(registry):
    # Rounding would give 3.14159 and 3.14 one key: the value is refused instead.
    with pytest.raises(ValueProblem):
        template("{amount:.2f}").render({"amount": Decimal("3.14159")})

    class Price(Model):
        amount: Decimal

        class Meta:
            pk = "PRICE#{amount:012.2f}"

    assert Price._meta.primary_key({"amount": Decimal("3.1")}) == ("PRICE#000000003.10", "Price")
    with pytest.raises(InvalidValueError) as info:
        Price._meta.primary_key({"amount": Decimal("3.14159")})
    assert "amount" in str(info.value) and "3.14159" not in str(info.value)


def test_template_renders_datetimes_fixed_width_utc():
    when = datetime(2024, 5, 6, 9, 0, tzinfo=timezone(timedelta(hours=2)))
    assert template("AT#{when}").render({"when": when}) == "AT#2024-05-06T07:00:00.000000Z"


def test_template_renders_other_scalars():
    class Color(Enum):
        RED = "red"

    t = template("{flag}#{amount}#{color}#{seq}")
    assert t.render({"flag": True, "amount": 0.5, "color": Color.RED, "seq": 3}) == (
        "true#0.5#red#3"
    )
    # Numbers are canonical (equal values, one key); text is escaped (no raw "#" or "$").
    assert t.render({"flag": False, "amount": Decimal("1.50"), "color": "x", "seq": -1}) == (
        "false#1.5#x#-1"
    )
    assert t.render({"flag": True, "amount": Decimal("1E+2"), "color": "a#b $", "seq": 0}) == (
        "true#100#a$23b$20$24#0"
    )


def test_template_fields_must_be_separated_by_text_starting_with_the_separator():
    for source in ("{flag}|{amount}", "{id}{seq}", "X#{id}-{seq}"):
        with pytest.raises(ConfigurationError) as info:
            template(source)
        assert info.value.code == "key-template"
    assert template("X#{id}#-#{seq}").render({"id": "a", "seq": 1}) == "X#a#-#1"


def test_template_literal_prefix_and_fields():
    t = template("ORDER#{when}#{id}")
    assert t.prefix == "ORDER#"
    assert t.fields == ("when", "id")
    assert template("{id}#X").prefix == ""
    literal = template("PROFILE")
    assert literal.prefix == "PROFILE" and literal.fields == ()
    assert literal.render({}) == "PROFILE"


def test_template_escaped_braces_are_literal():
    assert template("A{{B}}#{id}").render({"id": "1"}) == "A{B}#1"


def test_template_render_returns_none_when_a_field_is_none():
    t = template("A#{id}#{seq}")
    assert t.render({"id": "x", "seq": None}) is None
    assert t.render({"id": None, "seq": 1}) is None
    assert t.render({"id": "x", "seq": 1}) == "A#x#1"


def test_template_unknown_field_raises_with_a_suggestion():
    with pytest.raises(ConfigurationError) as info:
        template("X#{nmae}")
    assert info.value.code == "key-template"
    assert "'nmae'" in str(info.value)
    assert "Perhaps you meant 'name'?" in str(info.value)


@pytest.mark.parametrize("source", ["X#{}", "X#{id!r}", "X#{id", "X#}"])
def test_template_bad_syntax_raises(source):
    with pytest.raises(ConfigurationError) as info:
        template(source)
    assert info.value.code == "key-template"


def test_unknown_template_field_fails_at_class_creation(registry):
    with pytest.raises(ConfigurationError) as info:

        class Ticket(Model):
            status: str

            class Meta:
                pk = "TICKET#{stauts}"

    message = str(info.value)
    assert "Ticket" in message and "'stauts'" in message
    assert "Perhaps you meant 'status'?" in message
    assert get_model("Ticket") is None


def test_unknown_sort_key_and_index_fields_fail_at_class_creation(registry):
    with pytest.raises(ConfigurationError, match="sort key"):

        class A(Model):
            id: str

            class Meta:
                pk = "A#{id}"
                sk = "{nope}"

    with pytest.raises(ConfigurationError, match="index 'by_x'"):

        class B(Model):
            id: str

            class Meta:
                pk = "B#{id}"
                indexes = [Index("by_x", pk="X#{missing}")]


def test_compressed_fields_cannot_be_used_in_keys(registry):
    with pytest.raises(ConfigurationError):

        class Doc(Model):
            body: str = fields.Compressed()

            class Meta:
                pk = "DOC#{body}"


# --------------------------------------------------------------------------- Meta parsing


def test_unknown_meta_option_raises(registry):
    with pytest.raises(ConfigurationError) as info:

        class Thing(Model):
            id: str

            class Meta:
                pk = "T#{id}"
                tabel = "oops"

    assert info.value.code == "model-definition"
    assert "tabel" in str(info.value) and "Thing" in str(info.value)


def test_concrete_model_without_pk_raises(registry):
    with pytest.raises(ConfigurationError, match="partition key"):

        class NoKey(Model):
            id: str


def test_type_name_defaults_to_class_name_and_sk_to_type_name():
    assert Counter._meta.type_name == "Counter"
    assert Counter._meta.sk is not None and Counter._meta.sk.source == "Counter"
    assert Counter._meta.primary_key({"name": "hits"}) == ("COUNTER#hits", "Counter")
    assert Customer._meta.sk is not None and Customer._meta.sk.source == "PROFILE"


def test_custom_type_name_is_the_default_sort_key_and_registry_name(registry):
    class Widget(Model):
        id: str

        class Meta:
            pk = "W#{id}"
            type_name = "widget_v2"
            indexes = [Index("all", pk="WIDGETS")]

    assert Widget._meta.type_name == "widget_v2"
    assert Widget._meta.primary_key({"id": "1"}) == ("W#1", "widget_v2")
    assert Widget._meta.indexes["all"].sk.source == "widget_v2"
    assert get_model("widget_v2") is Widget
    assert get_model("Widget") is None


def test_abstract_base_is_inherited_but_not_registered(registry):
    class Tenanted(Model):
        tenant: str
        id: str = fields.ULID()

        class Meta:
            abstract = True
            type_name = "base_type"
            pk = "TENANT#{tenant}"
            indexes = [Index("by_id", pk="ID#{id}")]

    class Invoice(Tenanted):
        amount: int = 0

    assert Tenanted._meta.abstract is True
    assert Tenanted._meta.pk is None
    assert get_model("Tenanted") is None and get_model("base_type") is None
    meta = Invoice._meta
    assert meta.abstract is False
    assert meta.type_name == "Invoice"  # neither abstract nor type_name is inherited
    assert meta.pk is not None and meta.pk.source == "TENANT#{tenant}"
    assert meta.sk is not None and meta.sk.source == "Invoice"
    assert list(meta.indexes) == ["by_id"]
    assert meta.indexes["by_id"].sk.source == "Invoice"
    assert meta.field_kinds["id"] == "ulid"
    assert get_model("Invoice") is Invoice
    invoice = Invoice(tenant="t1", id="i1")
    assert invoice.dynamo_key == {"pk": "TENANT#t1", "sk": "Invoice"}


def test_child_of_concrete_model_gets_its_own_type_name(registry):
    class Animal(Model):
        id: str

        class Meta:
            pk = "ANIMAL#{id}"

    class Dog(Animal):
        pass

    assert Dog._meta.type_name == "Dog"
    assert Dog._meta.primary_key({"id": "1"}) == ("ANIMAL#1", "Dog")
    assert get_model("Animal") is Animal and get_model("Dog") is Dog


def test_abstract_model_has_no_keys_and_every_model_has_a_codec():
    assert Model._meta.abstract is True
    assert Model._meta.pk is None
    assert Customer._meta.codec is not None


# --------------------------------------------------------------------------- index slots


def test_index_slots_follow_declaration_order(registry):
    class Multi(Model):
        a: str
        b: str
        c: str

        class Meta:
            pk = "M#{a}"
            indexes = [Index("x", pk="{a}"), Index("y", pk="{b}"), Index("z", pk="{c}")]

    assert [(name, ix.slot) for name, ix in Multi._meta.indexes.items()] == [
        ("x", 1),
        ("y", 2),
        ("z", 3),
    ]
    y = Multi._meta.indexes["y"]
    assert (y.physical_name, y.pk_attr, y.sk_attr) == ("gsi2", "gsi2pk", "gsi2sk")


def test_pinned_slots_are_kept_and_others_fill_the_lowest_free(registry):
    class Pinned(Model):
        a: str

        class Meta:
            pk = "P#{a}"
            indexes = [
                Index("first", pk="{a}"),
                Index("pinned_one", pk="{a}", slot=1),
                Index("second", pk="{a}"),
                Index("pinned_five", pk="{a}", slot=5),
            ]

    slots = {name: ix.slot for name, ix in Pinned._meta.indexes.items()}
    assert slots == {"first": 2, "pinned_one": 1, "second": 3, "pinned_five": 5}


def test_each_model_assigns_slots_independently():
    assert Customer._meta.indexes["by_email"].slot == 1
    assert Order._meta.indexes["by_status"].slot == 1


def test_duplicate_index_names_raise():
    with pytest.raises(ConfigurationError) as info:
        assign_slots([Index("dup", pk="A"), Index("dup", pk="B")], "Thing")
    assert info.value.code == "index" and "'dup'" in str(info.value)


def test_duplicate_pinned_slots_raise(registry):
    with pytest.raises(ConfigurationError) as info:

        class Clash(Model):
            a: str

            class Meta:
                pk = "C#{a}"
                indexes = [Index("one", pk="{a}", slot=2), Index("two", pk="{a}", slot=2)]

    assert info.value.code == "index"
    assert "'one'" in str(info.value) and "'two'" in str(info.value)


@pytest.mark.parametrize("slot", [0, -1])
def test_slots_start_at_one(slot):
    with pytest.raises(ConfigurationError, match="slots start at 1"):
        assign_slots([Index("bad", pk="A", slot=slot)], "Thing")


def test_index_list_must_hold_index_objects():
    with pytest.raises(ConfigurationError, match="dynorm.Index"):
        assign_slots([("by_x", "X#{x}")], "Thing")  # type: ignore[list-item]


# --------------------------------------------------------------------------- fields, registry


@pytest.mark.parametrize("name", ["pk", "sk", "gsi1pk", "gsi1sk", "gsi12pk"])
def test_reserved_field_names_are_rejected(registry, name):
    with pytest.raises(ConfigurationError) as info:
        type(Model)(
            "Reserved",
            (Model,),
            {
                "__annotations__": {"ident": str, name: str},
                "__module__": __name__,
                "__qualname__": "Reserved",
                "Meta": type("Meta", (), {"pk": "R#{ident}"}),
            },
        )
    assert info.value.code == "model-definition"
    assert repr(name) in str(info.value)
    assert get_model("Reserved") is None


def test_names_resembling_reserved_ones_are_allowed(registry):
    class Fine(Model):
        pkg: str
        sku: str
        gsi1pkx: str = ""

        class Meta:
            pk = "F#{pkg}"
            sk = "{sku}"

    assert Fine._meta.primary_key({"pkg": "a", "sku": "b"}) == ("F#a", "b")


def test_two_ttl_fields_raise(registry):
    with pytest.raises(ConfigurationError, match="more than one"):

        class Twice(Model):
            id: str
            a: datetime | None = fields.TTL()
            b: datetime | None = fields.TTL()

            class Meta:
                pk = "T#{id}"


def test_duplicate_entity_type_name_raises(registry):
    class First(Model):
        id: str

        class Meta:
            pk = "ONE#{id}"
            type_name = "thing"

    with pytest.raises(ConfigurationError) as info:

        class Second(Model):
            id: str

            class Meta:
                pk = "TWO#{id}"
                type_name = "thing"

    assert info.value.code == "duplicate-type-name"
    assert "'thing'" in str(info.value)
    assert "First" in str(info.value) and "Second" in str(info.value)
    assert get_model("thing") is First


def test_redefining_the_same_class_replaces_it(registry):
    defined = []
    for _ in range(2):

        class Again(Model):
            id: str

            class Meta:
                pk = "AGAIN#{id}"

        defined.append(Again)

    assert defined[0] is not defined[1]
    assert get_model("Again") is defined[1]


def test_isolated_registry_restores_the_global_models():
    assert get_model("Customer") is Customer
    with isolated_registry():
        assert get_model("Customer") is None
    assert get_model("Customer") is Customer


# --------------------------------------------------------------------------- exceptions, version


def test_per_model_exceptions_subclass_the_dynorm_roots():
    assert issubclass(Customer.DoesNotExist, dynorm.ObjectDoesNotExist)
    assert issubclass(Customer.MultipleObjectsReturned, dynorm.MultipleObjectsReturned)
    assert Customer.DoesNotExist is not Order.DoesNotExist
    assert not issubclass(Customer.DoesNotExist, Order.DoesNotExist)
    assert not issubclass(Order.MultipleObjectsReturned, Customer.MultipleObjectsReturned)
    assert Customer.DoesNotExist.__qualname__ == "Customer.DoesNotExist"
    assert Customer.DoesNotExist.__module__ == "tests.models"
    with pytest.raises(dynorm.ObjectDoesNotExist):
        raise Customer.DoesNotExist("missing")


def test_child_model_exceptions_subclass_the_parents(registry):
    class Parent(Model):
        id: str

        class Meta:
            pk = "P#{id}"

    class Child(Parent):
        pass

    assert issubclass(Child.DoesNotExist, Parent.DoesNotExist)
    assert Child.DoesNotExist is not Parent.DoesNotExist
    assert issubclass(Child.MultipleObjectsReturned, Parent.MultipleObjectsReturned)


def test_version_defaults_to_zero():
    assert Counter(name="c").version == 0
    assert "version" in Counter.model_fields
    assert Counter._meta.codec is not None
    assert Counter._meta.codec.encode(Counter(name="c"))["version"] == {"N": "0"}


# --------------------------------------------------------------------------- key values


def test_model_key_property():
    c = Customer(id="c1", email="a@b.c", name="A")
    assert c.dynamo_key == {"pk": "CUSTOMER#c1", "sk": "PROFILE"}


def test_partition_key_byte_limit():
    prefix = len("COUNTER#")
    Counter._meta.primary_key({"name": "x" * (PARTITION_KEY_LIMIT - prefix)})
    with pytest.raises(InvalidValueError) as info:
        Counter._meta.primary_key({"name": "x" * (PARTITION_KEY_LIMIT - prefix + 1)})
    assert str(PARTITION_KEY_LIMIT) in str(info.value)
    assert info.value.model == "Counter"


def test_partition_key_limit_counts_utf8_bytes():
    # 1020 two-byte characters + 8 prefix bytes = 2048 bytes; one more is over.
    Counter._meta.primary_key({"name": "é" * 1020})
    with pytest.raises(InvalidValueError):
        Counter._meta.primary_key({"name": "é" * 1021})


def test_sort_key_byte_limit():
    prefix = len("ORDER#")
    Order._meta.primary_key({"customer_id": "c", "id": "x" * (SORT_KEY_LIMIT - prefix)})
    with pytest.raises(InvalidValueError) as info:
        Order._meta.primary_key({"customer_id": "c", "id": "x" * (SORT_KEY_LIMIT - prefix + 1)})
    assert str(SORT_KEY_LIMIT) in str(info.value) and "sort key" in str(info.value)


def test_sort_key_limit_counts_utf8_bytes(registry):
    class Euro(Model):
        a: str
        b: str

        class Meta:
            pk = "{a}"
            sk = "{b}"

    # 341 * 3 = 1023 bytes fits; 342 * 3 = 1026 bytes does not.
    Euro._meta.primary_key({"a": "x", "b": "€" * 341})
    with pytest.raises(InvalidValueError):
        Euro._meta.primary_key({"a": "x", "b": "€" * 342})
    # The same text is fine as a partition key (limit 2048).
    Euro._meta.primary_key({"a": "€" * 342, "b": "x"})


def test_index_keys_have_the_same_byte_limits(registry):
    class Indexed(Model):
        id: str
        p: str = "p"
        s: str = "s"

        class Meta:
            pk = "I#{id}"
            indexes = [Index("ix", pk="{p}", sk="{s}")]

    base = {"id": "1", "p": "p", "s": "s"}
    assert Indexed._meta.index_keys({**base, "p": "x" * PARTITION_KEY_LIMIT})["gsi1pk"]
    with pytest.raises(InvalidValueError, match="index 'ix' partition key"):
        Indexed._meta.index_keys({**base, "p": "x" * (PARTITION_KEY_LIMIT + 1)})
    assert Indexed._meta.index_keys({**base, "s": "x" * SORT_KEY_LIMIT})["gsi1sk"]
    with pytest.raises(InvalidValueError, match="index 'ix' sort key"):
        Indexed._meta.index_keys({**base, "s": "x" * (SORT_KEY_LIMIT + 1)})


def test_empty_keys_are_rejected(registry):
    class Bare(Model):
        a: str
        b: str = "b"
        e: str = "e"

        class Meta:
            pk = "{a}"
            sk = "{b}"
            indexes = [Index("by_e", pk="{e}")]

    with pytest.raises(InvalidValueError, match="empty"):
        Bare._meta.primary_key({"a": "", "b": "b"})
    with pytest.raises(InvalidValueError, match="empty"):
        Bare._meta.primary_key({"a": "a", "b": ""})
    with pytest.raises(InvalidValueError, match="empty"):
        Bare._meta.index_keys({"a": "a", "b": "b", "e": ""})


def test_primary_key_with_a_none_field_raises_naming_it():
    with pytest.raises(InvalidValueError) as info:
        Order._meta.primary_key({"customer_id": None, "id": "o1"})
    assert "customer_id" in str(info.value)


def test_binary_values_cannot_be_key_parts(registry):
    class Bin(Model):
        data: bytes

        class Meta:
            pk = "B#{data}"

    with pytest.raises(InvalidValueError, match="binary"):
        Bin._meta.primary_key({"data": b"\x00"})


def test_naive_datetime_in_a_key_is_rejected(registry):
    class Log(Model):
        at: datetime

        class Meta:
            pk = "LOG"
            sk = "{at}"

    with pytest.raises(InvalidValueError, match="naive"):
        Log._meta.primary_key({"at": datetime(2024, 1, 1)})


def test_sparse_index_keys_are_none_when_a_field_is_none(registry):
    class Ticket(Model):
        id: str
        assignee: str | None = None
        due: datetime | None = None

        class Meta:
            pk = "TICKET#{id}"
            indexes = [
                Index("by_assignee", pk="USER#{assignee}", sk="{due}"),
                Index("all", pk="TICKETS"),
            ]

    meta = Ticket._meta
    due = datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert meta.index_keys({"id": "1", "assignee": None, "due": due}) == {
        "gsi1pk": None,
        "gsi1sk": None,
        "gsi2pk": "TICKETS",
        "gsi2sk": "Ticket",
    }
    # A None sort-key field also makes the whole index sparse.
    assert meta.index_keys({"id": "1", "assignee": "ann", "due": None})["gsi1pk"] is None
    assert meta.index_keys({"id": "1", "assignee": "ann", "due": due}) == {
        "gsi1pk": "USER#ann",
        "gsi1sk": "2024-01-01T00:00:00.000000Z",
        "gsi2pk": "TICKETS",
        "gsi2sk": "Ticket",
    }


def test_customer_and_order_index_keys():
    created = datetime(2024, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    keys = Order._meta.index_keys({"status": "paid", "created_at": created})
    assert keys == {"gsi1pk": "STATUS#paid", "gsi1sk": "2024-02-03T04:05:06.000000Z"}
    assert Customer._meta.index_keys({"email": "a@b.c"}) == {
        "gsi1pk": "EMAIL#a@b.c",
        "gsi1sk": "Customer",
    }


# --------------------------------------------------------------------------- no values in errors


def test_key_errors_never_contain_the_value(registry):
    class Secretive(Model):
        a: str
        b: str = "b"
        when: datetime | None = None

        class Meta:
            pk = "S#{a}"
            sk = "{b}"
            indexes = [Index("by_when", pk="W#{when}")]

    too_long = SENTINEL * (PARTITION_KEY_LIMIT // len(SENTINEL) + 1)
    with pytest.raises(InvalidValueError) as info:
        Secretive._meta.primary_key({"a": too_long, "b": "b"})
    assert SENTINEL not in str(info.value)
    with pytest.raises(InvalidValueError) as info:
        Secretive._meta.primary_key({"a": "a", "b": too_long})
    assert SENTINEL not in str(info.value)
    naive = datetime(1987, 6, 5, 4, 3, 2)
    with pytest.raises(InvalidValueError) as info:
        Secretive._meta.index_keys({"a": "a", "b": "b", "when": naive})
    assert "1987" not in str(info.value)


def test_codec_errors_never_contain_the_value(registry):
    class Holder(Model):
        id: str
        tags: set[str] = set()
        when: datetime | None = None

        class Meta:
            pk = "H#{id}"

    assert Holder._meta.codec is not None
    with pytest.raises(InvalidValueError) as info:
        Holder._meta.codec.encode(Holder(id="h", when=datetime(1987, 6, 5, 4, 3, 2)))
    assert "1987" not in str(info.value)
    assert "Holder.when" in str(info.value)
