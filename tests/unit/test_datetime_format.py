"""Per-field datetime storage formats (`fields.DateTime(format=...)`): the stored text reads
back as the datetime written, sorts like the datetimes (for sortable formats), and is the text
used everywhere a value of the field is written or compared."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from dynorm import F, Model, fields
from dynorm._datetime_format import PRESETS, DateTimeFormat
from dynorm._decode import WireDecoder
from dynorm.exceptions import ConfigurationError, InvalidValueError, QueryError
from dynorm.query._compile_write import Put, Unconditional, compile_write
from tests.unit.test_wire import assert_same

_zones = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=_zones
)
#: Sortable custom patterns (directives in significance order), and presets.
SORTABLE = [*PRESETS, "%Y%m%d%H%M%S%f", "%Y/%m/%d %H:%M:%S.%f UTC", "%z|%Y-%m-%d_%H%M%S%f"]


@settings(max_examples=150, deadline=None)
@given(value=_datetimes, spec=st.sampled_from(SORTABLE))
def test_a_stored_datetime_reads_back_as_the_datetime_written(value: datetime, spec: str) -> None:
    fmt = DateTimeFormat(spec)
    parsed = fmt.parse(fmt.render(value))
    assert parsed == value and parsed is not None and parsed.utcoffset() == timedelta(0)


@settings(max_examples=150, deadline=None)
@given(a=_datetimes, b=_datetimes, spec=st.sampled_from(SORTABLE))
def test_a_sortable_formats_text_orders_like_the_datetimes(
    a: datetime, b: datetime, spec: str
) -> None:
    fmt = DateTimeFormat(spec)
    assert fmt.sortable
    ta, tb = fmt.render(a), fmt.render(b)
    assert (ta < tb) == (a < b) and (ta == tb) == (a == b)


def test_the_presets_are_the_other_libraries_texts() -> None:
    at = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
    assert DateTimeFormat("pynamodb").render(at) == "2026-12-01T10:00:00.000000+0000"
    assert DateTimeFormat("iso").render(at) == "2026-12-01T10:00:00.000000+00:00"
    assert DateTimeFormat("dynorm").render(at) == "2026-12-01T10:00:00.000000Z"
    # PynamoDB's own strftime pattern of UTCDateTimeAttribute:
    assert DateTimeFormat("pynamodb").render(at) == at.strftime("%Y-%m-%dT%H:%M:%S.%f%z")
    other = datetime(2026, 12, 1, 5, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert DateTimeFormat("pynamodb").render(other) == "2026-12-01T10:00:00.000000+0000"
    assert DateTimeFormat("pynamodb").parse("2026-12-01T05:00:00.000000-0500") == at


def test_a_format_out_of_significance_order_is_not_sortable() -> None:
    assert not DateTimeFormat("%d.%m.%Y %H:%M:%S").sortable


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("%Y-%m-%d", "lacks %H %M %S"),
        ("%Y-%m-%dT%H:%M:%S %b", "%b is not supported"),
        ("%Y%Y-%m-%dT%H:%M:%S", "twice"),
        ("%Y-%m-%dT%H:%M:%S%", "lone"),
        ("", "preset name or a pattern"),
    ],
)
def test_a_bad_format_is_refused_at_class_creation(spec: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment) as caught:

        class BadFormat(Model):
            id: str
            at: datetime = fields.DateTime(format=spec)

            class Meta:
                pk = "BAD#{id}"

    assert "BadFormat.at" in str(caught.value)


def test_a_format_on_a_field_that_is_not_a_datetime_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not a datetime field"):

        class NotADatetime(Model):
            id: str
            at: str = fields.DateTime(format="pynamodb")

            class Meta:
                pk = "NAD#{id}"


class Stamped(Model):
    id: str
    at: datetime = fields.DateTime(format="pynamodb")
    seen: datetime | None = fields.DateTime(None, format="%Y%m%d%H%M%S", attribute="seenAt")
    local: datetime | None = fields.DateTime(None, format="%d.%m.%Y %H:%M:%S.%f")
    plain: datetime | None = None
    created: datetime = fields.CreatedAt(format="iso")

    class Meta:
        pk = "STAMPED#{id}"
        sk = "AT#{at}"


AT = datetime(2026, 12, 1, 10, 0, 0, 250000, tzinfo=timezone.utc)


def _values(**over: Any) -> dict[str, Any]:
    base = {
        "version": 1,
        "id": "s",
        "at": AT,
        "seen": AT.replace(microsecond=0),
        "local": AT,
        "plain": AT,
        "created": AT,
    }
    return {**base, **over}


def test_every_field_stores_its_own_format_and_keys_use_it() -> None:
    item = compile_write(Stamped._meta, Put(_values()), Unconditional()).params["Item"]
    assert item["sk"] == {"S": "AT#2026-12-01T10:00:00.250000+0000"}
    assert item["at"] == {"S": "2026-12-01T10:00:00.250000+0000"}
    assert item["seenAt"] == {"S": "20261201100000"}
    assert item["local"] == {"S": "01.12.2026 10:00:00.250000"}
    assert item["plain"] == {"S": "2026-12-01T10:00:00.250000Z"}
    assert item["created"] == {"S": "2026-12-01T10:00:00.250000+00:00"}


def test_both_decoders_read_a_formatted_item_into_the_same_object() -> None:
    item = compile_write(Stamped._meta, Put(_values()), Unconditional()).params["Item"]
    general = Stamped.from_item(item)
    fast = WireDecoder(Stamped).decode_page(json.dumps({"Items": [item], "Count": 1}).encode())
    assert fast is not None, "the wire schema refused the page"
    assert_same(fast[0][0], general)
    assert general.at == AT and general.seen == AT.replace(microsecond=0)
    assert general.local == AT and general.created == AT


def test_dynorms_own_text_still_reads_in_a_formatted_field() -> None:
    item = compile_write(Stamped._meta, Put(_values()), Unconditional()).params["Item"]
    item["at"] = {"S": "2026-12-01T10:00:00.250000Z"}  # written before the format was declared
    assert Stamped.from_item(item).at == AT


def test_a_value_the_format_would_truncate_is_refused_naming_model_and_field() -> None:
    with pytest.raises(InvalidValueError, match="Stamped") as caught:
        compile_write(Stamped._meta, Put(_values(seen=AT)), Unconditional())
    assert "seen" in str(caught.value) and "microseconds" in str(caught.value)
    assert "2026" not in str(caught.value)


def test_filters_and_key_conditions_compare_in_the_fields_format() -> None:
    plan = Stamped.objects.filter(id="s", at__gte=AT).explain()
    text = repr(plan)
    assert "AT#2026-12-01T10:00:00.250000+0000" in text
    filtered = repr(Stamped.objects.filter(id="s", seen__lt=AT.replace(microsecond=0)).explain())
    assert "20261201100000" in filtered
    equal = repr(Stamped.objects.filter(id="s", local=AT).explain())
    assert "01.12.2026 10:00:00.250000" in equal


def test_a_format_that_does_not_sort_refuses_range_lookups() -> None:
    with pytest.raises(QueryError, match=r"Stamped\.local"):
        Stamped.objects.filter(id="s", local__gt=AT)
    with pytest.raises(QueryError, match="sort"):
        Stamped.objects.filter(id="s", local__between=(AT, AT))


def test_f_copies_only_between_fields_of_one_format() -> None:
    obj = Stamped(id="s", at=AT)
    obj.version = 1
    with pytest.raises(QueryError, match="different formats"):
        obj._update_op({"plain": F("at")})


def test_a_key_made_of_a_formatted_datetime_parses_back() -> None:
    assert Stamped.parse_key("STAMPED#s", "AT#2026-12-01T10:00:00.250000+0000") == {
        "id": "s",
        "at": AT,
    }
