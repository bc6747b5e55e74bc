"""Offline tests of dynorm._codec: value encoding, decoding, limits and item sizes."""

import gzip
import json
import os
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import BaseModel, ValidationError

from dynorm import InvalidValueError, ItemTooLargeError, Model, _json, fields
from dynorm._codec import (
    ValueProblem,
    format_datetime,
    from_wire,
    number_from_wire,
    number_to_wire,
    to_wire,
)
from dynorm._constants import ITEM_SIZE_LIMIT, TTL_ATTR
from dynorm._item_size import check_item_size, item_size, value_size
from dynorm._registry import isolated_registry
from tests.models import Color, Everything, OrderLine

CODEC = Everything._meta.codec
FAST = settings(
    max_examples=int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "200")),
    deadline=None,
    database=None,
)


def encode(obj: Model) -> dict:
    codec = type(obj)._meta.codec
    assert codec is not None
    return codec.encode(obj)


def round_trip(obj: Model) -> Model:
    return type(obj).from_item(encode(obj))


def wire_number(value) -> str:
    """The N string the codec writes for an Everything number field."""
    field = "i" if isinstance(value, int) else "f" if isinstance(value, float) else "d"
    return encode(Everything(**{field: value}))[field]["N"]


# --------------------------------------------------------------------------- full round trip


def full_instance() -> Everything:
    return Everything(
        id="01HXAMPLE",
        s="héllo ✓",
        i=-42,
        f=2.5,
        d=Decimal("12.50"),
        b=True,
        raw=b"\x00\xffbinary",
        when=datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-7))),
        day=date(2024, 2, 29),
        uid=UUID("12345678-1234-5678-1234-567812345678"),
        color=Color.BLUE,
        kind="b",
        ss={"x", "y"},
        ns={1, 2, 3},
        bs={b"a", b"\x00"},
        items=[3, 1, 2],
        mapping={"one": 1, "two": 2},
        line=OrderLine(sku="SKU-1", qty=2, price=Decimal("9.99")),
        maybe=7,
        expires=datetime(2031, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        blob="compress me " * 50,
    )


def test_every_field_type_encodes_to_the_expected_attribute_values():
    item = encode(full_instance())
    assert item["id"] == {"S": "01HXAMPLE"}
    assert item["s"] == {"S": "héllo ✓"}
    assert item["i"] == {"N": "-42"}
    assert item["f"] == {"N": "2.5"}
    assert item["d"] == {"N": "12.50"}
    assert item["b"] == {"BOOL": True}
    assert item["raw"] == {"B": b"\x00\xffbinary"}
    assert item["when"] == {"S": "2024-03-01T19:30:15.123456Z"}
    assert item["day"] == {"S": "2024-02-29"}
    assert item["uid"] == {"S": "12345678-1234-5678-1234-567812345678"}
    assert item["color"] == {"S": "blue"}
    assert item["kind"] == {"S": "b"}
    assert set(item["ss"]) == {"SS"} and sorted(item["ss"]["SS"]) == ["x", "y"]
    assert set(item["ns"]) == {"NS"} and sorted(item["ns"]["NS"]) == ["1", "2", "3"]
    assert set(item["bs"]) == {"BS"} and sorted(item["bs"]["BS"]) == [b"\x00", b"a"]
    assert item["items"] == {"L": [{"N": "3"}, {"N": "1"}, {"N": "2"}]}
    assert item["mapping"] == {"M": {"one": {"N": "1"}, "two": {"N": "2"}}}
    assert item["line"] == {"M": {"sku": {"S": "SKU-1"}, "qty": {"N": "2"}, "price": {"N": "9.99"}}}
    assert item["maybe"] == {"N": "7"}
    assert item["version"] == {"N": "0"}
    # The TTL field is stored under the table's TTL attribute, as epoch seconds.
    assert "expires" not in item
    assert item[TTL_ATTR] == {"N": "1925089445"}
    assert set(item["blob"]) == {"B"}


def test_every_field_type_round_trips():
    original = full_instance()
    back = round_trip(original)
    assert back == original
    for name in Everything.model_fields:
        assert getattr(back, name) == getattr(original, name), name
    assert type(back.d) is Decimal and str(back.d) == "12.50"
    assert type(back.i) is int and type(back.f) is float
    assert back.color is Color.BLUE
    assert back.when is not None and back.when.utcoffset() == timedelta(0)


def test_defaults_round_trip_including_empty_string_and_binary():
    original = Everything(id="x")
    item = encode(original)
    assert item["s"] == {"S": ""}
    assert item["raw"] == {"B": b""}
    assert item["items"] == {"L": []}
    assert item["mapping"] == {"M": {}}
    assert round_trip(original) == original


def test_from_item_ignores_key_and_index_attributes_and_remembers_the_loaded_key():
    item = encode(Everything(id="abc", s="v"))
    item.update(
        pk={"S": "EVERY#abc"},
        sk={"S": "Everything"},
        _type={"S": "Everything"},
        gsi1pk={"S": "X"},
    )
    obj = Everything.from_item(item)
    assert obj.s == "v"
    assert obj._loaded_key == ("EVERY#abc", "Everything")


def test_from_item_without_keys_leaves_loaded_key_unset():
    obj = Everything.from_item(encode(Everything(id="abc")))
    assert obj._loaded_key is None


def test_decode_returns_only_field_values():
    data = CODEC.decode({"s": {"S": "a"}, "pk": {"S": "P"}, "unknown": {"S": "u"}})
    assert data["s"] == "a"
    assert "pk" not in data and "unknown" not in data


def test_encode_overrides_replace_instance_values():
    obj = Everything(id="x", s="old")
    assert CODEC.encode(obj, {"s": "new"})["s"] == {"S": "new"}
    assert obj.s == "old"


# --------------------------------------------------------------------------- numbers


def test_int_within_38_digits_is_exact():
    big = 10**38 - 1
    assert wire_number(big) == "9" * 38
    assert wire_number(-big) == "-" + "9" * 38
    back = round_trip(Everything(i=big))
    assert back.i == big and type(back.i) is int
    odd = 12345678901234567890123456789012345678
    assert round_trip(Everything(i=odd)).i == odd


def test_ten_to_the_38_is_sent_normalised_and_read_back_exactly():
    # 39 characters but a single significant digit: DynamoDB accepts it as 1E+38.
    assert number_to_wire(10**38) == "1E+38"
    assert number_to_wire(-(10**38)) == "-1E+38"
    back = round_trip(Everything(i=10**38))
    assert back.i == 10**38 and type(back.i) is int


def test_large_int_with_few_significant_digits_is_accepted():
    value = 12345 * 10**100
    assert Decimal(number_to_wire(value)) == value
    assert round_trip(Everything(i=value)).i == value


def test_int_with_39_significant_digits_is_rejected():
    with pytest.raises(InvalidValueError) as info:
        encode(Everything(i=10**38 + 1))
    assert info.value.field == "i"


def test_decimal_with_39_significant_digits_is_rejected():
    with pytest.raises(InvalidValueError):
        encode(Everything(d=Decimal("1" * 39)))


def test_int_above_10_38_with_38_significant_digits_is_exact():
    value = (10**37 + 1) * 10  # 38 significant digits, one trailing zero
    assert Decimal(number_to_wire(value)) == value
    assert round_trip(Everything(i=value)).i == value


def test_largest_dynamodb_number_is_accepted():
    largest = Decimal("9.9999999999999999999999999999999999999E+125")
    assert Decimal(number_to_wire(largest)) == largest


def test_38_digit_decimal_is_kept_exactly():
    value = Decimal("1.2345678901234567890123456789012345678")
    assert wire_number(value) == "1.2345678901234567890123456789012345678"
    assert round_trip(Everything(d=value)).d == value


def test_floats_are_sent_as_their_repr():
    assert wire_number(0.1) == "0.1"
    assert wire_number(1e16) == repr(1e16)
    assert wire_number(-2.5) == "-2.5"
    back = round_trip(Everything(f=0.1))
    assert back.f == 0.1 and type(back.f) is float


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinite_floats_are_rejected(value):
    with pytest.raises(InvalidValueError) as info:
        encode(Everything(f=value))
    assert info.value.model == "Everything" and info.value.field == "f"
    assert "NaN or infinite" in str(info.value)


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_nan_and_infinite_decimals_are_rejected(value):
    with pytest.raises(ValueProblem):
        number_to_wire(Decimal(value))


def test_decimal_is_kept_decimal_not_float():
    back = round_trip(Everything(d=Decimal("0.1")))
    assert type(back.d) is Decimal and back.d == Decimal("0.1")
    integral = round_trip(Everything(d=Decimal("5")))
    assert type(integral.d) is Decimal and integral.d == 5


@pytest.mark.parametrize(
    "value",
    [Decimal("9.9E+125"), Decimal("-9.9E+125"), Decimal("1E-130"), Decimal("-1E-130"), 10**125],
)
def test_numbers_at_the_edge_of_the_range_are_accepted(value):
    assert Decimal(number_to_wire(value)) == value


@pytest.mark.parametrize(
    "value",
    [Decimal("1E+126"), Decimal("-1E+126"), Decimal("1E-131"), 10**126, 1e-131, 1e200, 5e-324],
)
def test_numbers_outside_the_range_are_rejected(value):
    with pytest.raises(ValueProblem, match="outside DynamoDB's number range"):
        number_to_wire(value)


def test_number_from_wire_types():
    assert number_from_wire("42") == 42 and type(number_from_wire("42")) is int
    assert number_from_wire("-7") == -7
    for text in ("1.5", "1E+38", "1e-5"):
        assert type(number_from_wire(text)) is Decimal
    assert number_from_wire("1E+38") == 10**38


def test_zero_is_accepted_in_any_form():
    assert number_to_wire(0) == "0"
    assert Decimal(number_to_wire(Decimal("0.000"))) == 0
    assert number_to_wire(0.0) == "0.0"


# --------------------------------------------------------------------------- datetimes


def test_format_datetime_is_fixed_width_utc_with_microseconds():
    plain = format_datetime(datetime(2024, 1, 1, tzinfo=timezone.utc))
    assert plain == "2024-01-01T00:00:00.000000Z"
    shifted = format_datetime(datetime(2024, 1, 1, 10, 0, tzinfo=timezone(timedelta(hours=5))))
    assert shifted == "2024-01-01T05:00:00.000000Z"
    early = format_datetime(datetime(33, 2, 3, 4, 5, 6, 7, tzinfo=timezone.utc))
    assert early == "0033-02-03T04:05:06.000007Z"
    assert len(plain) == len(shifted) == len(early) == 27


def test_format_datetime_text_order_is_time_order():
    a = datetime(2024, 1, 1, 0, 0, 0, tzinfo=timezone.utc)
    b = a + timedelta(microseconds=1)
    c = datetime(2024, 1, 1, 10, 0, tzinfo=timezone(timedelta(hours=5)))  # 05:00 UTC
    d = datetime(2024, 1, 1, 6, 0, tzinfo=timezone.utc)
    assert format_datetime(a) < format_datetime(b)
    assert format_datetime(c) < format_datetime(d)


def test_format_datetime_rejects_naive():
    with pytest.raises(ValueProblem, match="naive"):
        format_datetime(datetime(2024, 1, 1))


class _NoOffset(tzinfo):
    """A tzinfo that does not know its offset: the datetime is effectively naive."""

    def utcoffset(self, dt):
        return None

    def dst(self, dt):
        return None

    def tzname(self, dt):
        return None


def test_format_datetime_rejects_tzinfo_without_offset():
    with pytest.raises(ValueProblem):
        format_datetime(datetime(2024, 1, 1, tzinfo=_NoOffset()))


def test_naive_datetime_field_raises_invalid_value_error_without_the_value():
    naive = datetime(1987, 6, 5, 4, 3, 2)
    with pytest.raises(InvalidValueError) as info:
        encode(Everything(when=naive))
    message = str(info.value)
    assert info.value.model == "Everything" and info.value.field == "when"
    assert "Everything.when" in message and "naive" in message
    assert "1987" not in message


def test_naive_datetime_inside_a_list_is_rejected():
    with pytest.raises(ValueProblem, match="naive"):
        to_wire([datetime(2024, 1, 1)])


def test_datetime_not_representable_in_utc_is_an_invalid_value():
    early = datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(InvalidValueError):
        encode(Everything(when=early))


# --------------------------------------------------------------------------- bytes and sets


def test_bytes_like_values_are_binary():
    assert to_wire(b"ab") == {"B": b"ab"}
    assert to_wire(bytearray(b"ab")) == {"B": b"ab"}
    assert to_wire(memoryview(b"ab")) == {"B": b"ab"}
    assert from_wire({"B": bytearray(b"ab")}) == b"ab"


def test_sets_encode_as_ss_ns_bs():
    assert to_wire({"a"}) == {"SS": ["a"]}
    assert to_wire(frozenset({1})) == {"NS": ["1"]}
    assert to_wire({b"z"}) == {"BS": [b"z"]}
    ns = to_wire({1, Decimal("2.5"), 0.5})
    assert ns is not None and sorted(ns["NS"]) == ["0.5", "1", "2.5"]


def test_sets_decode_from_ss_ns_bs():
    assert from_wire({"SS": ["a", "b"]}) == {"a", "b"}
    assert from_wire({"NS": ["1", "2.5"]}) == {1, Decimal("2.5")}
    assert from_wire({"BS": [b"x"]}) == {b"x"}


def test_empty_sets_are_omitted_on_write_and_read_back_empty():
    item = encode(Everything(id="x", ss=set(), ns=set(), bs=set()))
    assert "ss" not in item and "ns" not in item and "bs" not in item
    back = Everything.from_item(item)
    assert back.ss == set() and back.ns == set() and back.bs == set()
    assert to_wire(set()) is None and to_wire(frozenset()) is None


def test_required_empty_set_field_reads_back_empty():
    # No default to fall back on: the codec itself must supply the empty set.
    with isolated_registry():

        class Tagged(Model):
            id: str
            tags: set[str]
            codes: frozenset[int]

            class Meta:
                pk = "TAGGED#{id}"

        item = encode(Tagged(id="t", tags=set(), codes=frozenset()))
        assert "tags" not in item and "codes" not in item
        back = Tagged.from_item(item)
        assert back.tags == set() and back.codes == frozenset()


def test_number_set_with_values_equal_to_dynamodb_is_rejected():
    # 0.1 (float) and Decimal("0.1") differ in Python but both are sent as "0.1".
    with pytest.raises(ValueProblem, match="equal to DynamoDB"):
        to_wire({0.1, Decimal("0.1")})


def test_set_of_unsupported_type_is_rejected():
    with pytest.raises(ValueProblem):
        to_wire({(1, 2)})
    with pytest.raises(ValueProblem):
        to_wire({True})


def test_set_mixing_numbers_and_strings_is_rejected():
    with pytest.raises(ValueProblem):
        to_wire({0, "a"})


def test_set_mixing_numbers_and_bools_is_rejected():
    with pytest.raises(ValueProblem):
        to_wire({0, True})


class _OrderedFrozenSet(frozenset):
    """A frozenset iterating in insertion order, to pick the element _set_to_wire samples."""

    def __new__(cls, items):
        obj = super().__new__(cls, items)
        obj._order = list(items)
        return obj

    def __iter__(self):
        return iter(self._order)


def test_set_mixing_bytes_and_ints_is_rejected():
    with pytest.raises(ValueProblem):
        to_wire(_OrderedFrozenSet([b"x", 3]))


# --------------------------------------------------------------------------- None and nesting


def test_none_is_omitted_at_top_level_and_read_back_as_none():
    item = encode(Everything(id="x"))
    for name in ("when", "day", "uid", "line", "maybe"):
        assert name not in item
    assert TTL_ATTR not in item
    back = Everything.from_item(item)
    assert back.when is None and back.maybe is None and back.line is None
    assert back.expires is None


def test_none_inside_lists_and_maps_is_kept_as_null():
    assert to_wire([1, None]) == {"L": [{"N": "1"}, {"NULL": True}]}
    assert to_wire({"a": None}) == {"M": {"a": {"NULL": True}}}
    assert from_wire({"L": [{"NULL": True}]}) == [None]
    assert to_wire(None) is None


def test_nested_models_are_maps_and_round_trip():
    class Address(BaseModel):
        city: str
        zip: str | None = None
        since: datetime | None = None

    value = Address(city="Oslo", since=datetime(2020, 1, 1, tzinfo=timezone.utc))
    assert to_wire(value) == {
        "M": {
            "city": {"S": "Oslo"},
            "zip": {"NULL": True},
            "since": {"S": "2020-01-01T00:00:00.000000Z"},
        }
    }
    assert Address.model_validate(from_wire(to_wire(value))) == value


def test_dict_with_non_string_keys_is_rejected():
    with pytest.raises(ValueProblem, match="non-string keys"):
        to_wire({1: "a"})


def test_unsupported_type_is_rejected():
    with pytest.raises(ValueProblem, match="has type object"):
        to_wire(object())


class _Inner(BaseModel):
    tags: set[str] = set()


def test_empty_set_inside_a_nested_model_round_trips():
    with isolated_registry():

        class Holder(Model):
            id: str
            inner: _Inner = _Inner()
            groups: list[set[int]] = []

            class Meta:
                pk = "HOLDER#{id}"

        original = Holder(id="h", inner=_Inner(tags=set()), groups=[set(), {1}])
        assert Holder.from_item(encode(original)) == original


def nest(levels: int, leaf=1):
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def test_moderate_nesting_is_accepted_and_round_trips():
    value = nest(20)
    assert from_wire(to_wire(value)) == value
    mapped = {"a": {"b": {"c": [1, {"d": None}]}}}
    assert from_wire(to_wire(mapped)) == mapped


def test_nesting_31_levels_around_a_scalar_is_accepted():
    assert from_wire(to_wire(nest(31))) == nest(31)


@pytest.mark.parametrize("levels", [33, 40, 100])
def test_deep_nesting_is_rejected(levels):
    with pytest.raises(ValueProblem, match="nests deeper"):
        to_wire(nest(levels))


def test_deep_nesting_in_a_field_is_an_invalid_value_error():
    with isolated_registry():

        class Deep(Model):
            id: str
            data: list = []

            class Meta:
                pk = "DEEP#{id}"

        with pytest.raises(InvalidValueError) as info:
            encode(Deep(id="x", data=nest(40)))
        assert info.value.field == "data"


def test_nesting_32_levels_around_a_scalar_is_rejected():
    with pytest.raises(ValueProblem):
        to_wire(nest(32))


# --------------------------------------------------------------------------- compressed and TTL


def test_compressed_str_is_gzip_binary_and_round_trips():
    text = "ünïcode " * 200
    item = encode(Everything(id="x", blob=text))
    raw = item["blob"]["B"]
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw).decode("utf-8") == text
    assert len(raw) < len(text.encode("utf-8"))
    assert Everything.from_item(item).blob == text


def test_compressed_field_reads_uncompressed_values():
    # Values written before the field was compressed: plain string or plain binary.
    assert Everything.from_item({"blob": {"S": "plain"}}).blob == "plain"
    assert Everything.from_item({"blob": {"B": b"plain bytes"}}).blob == "plain bytes"


def test_compressed_bytes_and_json_fields():
    with isolated_registry():

        class Doc(Model):
            id: str
            payload: bytes = fields.Compressed(default=b"")
            meta: dict[str, int] = fields.Compressed(default_factory=dict)
            note: str | None = fields.Compressed(default=None)

            class Meta:
                pk = "DOC#{id}"

        original = Doc(id="d", payload=b"\x1f\x8b not gzip" * 10, meta={"a": 1, "b": 2})
        item = encode(original)
        for name in ("payload", "meta"):
            assert item[name]["B"][:2] == b"\x1f\x8b"
        assert json.loads(gzip.decompress(item["meta"]["B"])) == {"a": 1, "b": 2}
        assert "note" not in item
        assert Doc.from_item(item) == original
        assert Doc.from_item({"id": {"S": "d"}, "payload": {"B": b"raw"}}).payload == b"raw"
        legacy = Doc.from_item({"id": {"S": "d"}, "meta": {"B": b'{"z": 3}'}})
        assert legacy.meta == {"z": 3}


def test_ttl_is_stored_as_epoch_seconds_and_read_back_aware():
    when = datetime(2030, 6, 1, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2)))
    item = encode(Everything(id="x", expires=when))
    assert item[TTL_ATTR] == {"N": str(int(when.timestamp()))}
    assert item[TTL_ATTR] == {"N": "1906538400"}  # 2030-06-01T10:00:00Z
    back = Everything.from_item(item).expires
    assert back == when.replace(microsecond=0)
    assert back is not None and back.utcoffset() == timedelta(0)


def test_naive_ttl_is_rejected():
    with pytest.raises(InvalidValueError) as info:
        encode(Everything(id="x", expires=datetime(2030, 1, 1)))
    assert info.value.field == "expires"


def test_ttl_with_tzinfo_without_offset_is_rejected():
    with pytest.raises(InvalidValueError):
        encode(Everything(id="x", expires=datetime(2030, 1, 1, tzinfo=_NoOffset())))


# --------------------------------------------------------------------------- sizes


def test_item_size_matches_the_documented_example():
    # DynamoDB developer guide: shirt-color="R", shirt-size="M" is 23 bytes.
    assert item_size({"shirt-color": {"S": "R"}, "shirt-size": {"S": "M"}}) == 23


def test_value_sizes():
    assert value_size({"S": ""}) == 0
    assert value_size({"S": "é€"}) == 5
    assert value_size({"B": b"\x00" * 7}) == 7
    assert value_size({"BOOL": False}) == 1
    assert value_size({"NULL": True}) == 1
    assert value_size({"N": "1"}) == 2
    assert value_size({"N": "12"}) == 2
    assert value_size({"N": "123"}) == 3
    assert value_size({"N": "1.500"}) == 3  # trailing zeros trimmed: base-100 digits 01 50
    assert value_size({"N": "1E+38"}) == 2
    assert value_size({"SS": ["ab", "é"]}) == 4
    assert value_size({"NS": ["1", "123"]}) == 5
    assert value_size({"BS": [b"ab", b"c"]}) == 3
    assert value_size({"L": []}) == 3
    assert value_size({"L": [{"S": "ab"}, {"NULL": True}]}) == 3 + (2 + 1) + (1 + 1)
    assert value_size({"M": {}}) == 3
    assert value_size({"M": {"ké": {"S": "ab"}}}) == 3 + (3 + 2 + 1)


def test_value_size_of_a_38_digit_number():
    assert value_size({"N": "1" * 38}) == 20


def test_item_size_counts_utf8_names_and_values():
    item = {"naïve": {"S": "ü"}, "n": {"N": "42"}}
    assert item_size(item) == (6 + 2) + (1 + 2)


def test_item_size_of_an_encoded_model():
    item = encode(Everything(id="ab", s="é" * 100))
    assert item_size(item) >= 100 * 2
    assert item_size(item) == sum(len(k.encode()) + value_size(v) for k, v in item.items())


def test_check_item_size_allows_exactly_the_limit():
    assert ITEM_SIZE_LIMIT == 409_600
    check_item_size({"a": {"S": "x" * (ITEM_SIZE_LIMIT - 1)}}, "Thing")


def test_check_item_size_rejects_one_byte_over_without_the_value():
    sentinel = "SENTINEL-VALUE-42"
    # small: 5 + 1, big: 3 + len(big), b: 1 + 2 -> len(big) + 12 bytes in all.
    big = (sentinel * (ITEM_SIZE_LIMIT // len(sentinel) + 1))[: ITEM_SIZE_LIMIT + 1 - 12]
    item = {"small": {"S": "s"}, "big": {"S": big}, "b": {"B": b"12"}}
    assert item_size(item) == ITEM_SIZE_LIMIT + 1
    with pytest.raises(ItemTooLargeError) as info:
        check_item_size(item, "Thing")
    exc = info.value
    assert isinstance(exc, InvalidValueError)
    assert exc.size == ITEM_SIZE_LIMIT + 1
    assert exc.limit == ITEM_SIZE_LIMIT
    assert exc.largest == ["big", "small", "b"]
    assert exc.model == "Thing"
    assert "Thing" in str(exc) and str(ITEM_SIZE_LIMIT + 1) in str(exc)
    assert sentinel not in str(exc)


def test_check_item_size_counts_multibyte_characters():
    # 204,800 characters of 2 bytes each plus a 1-byte name: one byte over the limit.
    with pytest.raises(ItemTooLargeError):
        check_item_size({"a": {"S": "é" * (ITEM_SIZE_LIMIT // 2)}}, "Thing")


# --------------------------------------------------------------------------- value errors


def test_invalid_value_messages_never_contain_the_value():
    sentinel_float = 1.2345678901234e-200
    with pytest.raises(InvalidValueError) as info:
        encode(Everything(f=sentinel_float))
    assert "1.2345678901234" not in str(info.value)
    with pytest.raises(InvalidValueError) as info:
        encode(Everything(d=Decimal("7777777E+200")))
    assert "7777777" not in str(info.value)


def test_encode_field_names_model_and_field():
    with pytest.raises(InvalidValueError) as info:
        CODEC.encode_field("f", float("nan"))
    assert info.value.model == "Everything" and info.value.field == "f"
    assert CODEC.encode_field("i", 3) == {"N": "3"}


# --------------------------------------------------------------------------- properties


@FAST
@given(st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1))
def test_property_ints_within_38_digits_round_trip(value):
    back = round_trip(Everything(i=value))
    assert back.i == value and type(back.i) is int


@FAST
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_property_floats_round_trip_or_are_rejected_by_range(value):
    magnitude = abs(Decimal(repr(value)))
    storable = value == 0 or Decimal("1E-130") <= magnitude < Decimal("1E+126")
    obj = Everything(f=value)
    if storable:
        assert round_trip(obj).f == value
    else:
        with pytest.raises(InvalidValueError):
            encode(obj)


@st.composite
def storable_decimals(draw):
    digits = draw(st.lists(st.integers(0, 9), min_size=1, max_size=38))
    sign = draw(st.integers(0, 1))
    exponent = draw(st.integers(-130, 120 - len(digits) + 1))
    return Decimal((sign, tuple(digits), exponent))


@FAST
@given(storable_decimals())
def test_property_decimals_up_to_38_digits_round_trip(value):
    back = round_trip(Everything(d=value))
    assert type(back.d) is Decimal and back.d == value


@FAST
@given(st.text(), st.sets(st.text(max_size=5), max_size=5), st.lists(st.integers(-5, 5)))
def test_property_strings_sets_and_lists_round_trip(text, strings, numbers):
    original = Everything(s=text, ss=strings, items=numbers, blob=text)
    assert round_trip(original) == original


@FAST
@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=st.builds(
            timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
        ),
    ),
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
)
def test_property_datetimes_round_trip_and_sort_as_text(aware, other_naive):
    back = round_trip(Everything(when=aware))
    assert back.when == aware
    other = other_naive.replace(tzinfo=timezone.utc)
    a, b = format_datetime(aware), format_datetime(other)
    assert len(a) == len(b) == 27
    assert (a < b) == (aware < other)
    assert (a == b) == (aware == other)


def test_validation_error_is_not_swallowed():
    with pytest.raises(ValidationError):
        Everything.from_item({"i": {"S": "not a number"}})


_leaf_values = st.one_of(
    st.text(max_size=30).map(lambda s: {"S": s}),
    st.decimals(
        min_value=Decimal("-1e30"), max_value=Decimal("1e30"), allow_nan=False, places=6
    ).map(lambda d: {"N": number_to_wire(d)}),  # at most 37 digits: storable
    st.integers(min_value=-(10**37), max_value=10**37).map(lambda i: {"N": str(i)}),
    st.binary(max_size=30).map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.sets(st.text(max_size=8), min_size=1, max_size=3).map(lambda s: {"SS": sorted(s)}),
    st.sets(st.integers(-(10**9), 10**9), min_size=1, max_size=3).map(
        lambda s: {"NS": [str(n) for n in s]}
    ),
    st.sets(st.binary(max_size=8), min_size=1, max_size=3).map(lambda s: {"BS": sorted(s)}),
)
_attribute_values = st.recursive(
    _leaf_values,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda v: {"L": v}),
        st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3).map(lambda v: {"M": v}),
    ),
    max_leaves=12,
)


@FAST
@given(item=st.dictionaries(st.text(min_size=1, max_size=10), _attribute_values, max_size=6))
def test_an_items_json_is_an_upper_bound_of_its_size(item: dict) -> None:
    # check_item_size trusts this bound to skip the exact walk (tests/unit/test_codec.py).
    try:
        encoded = _json.dumps(item)
    except (TypeError, ValueError):  # lone surrogates: the exact walk handles them
        return
    assert len(encoded) >= item_size(item)


def test_an_item_just_over_the_json_bound_is_sized_exactly() -> None:
    # Its JSON is over 400 KB, its DynamoDB size is not: the exact size decides.
    item = {"pk": {"S": "p"}, "sk": {"S": "s"}, "body": {"S": "x" * (ITEM_SIZE_LIMIT - 20)}}
    assert len(_json.dumps(item)) > ITEM_SIZE_LIMIT >= item_size(item)
    check_item_size(item, "Doc")
    item["body"] = {"S": "x" * ITEM_SIZE_LIMIT}
    with pytest.raises(ItemTooLargeError):
        check_item_size(item, "Doc")
