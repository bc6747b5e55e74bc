"""D. Types: unicode, empty values, numbers, floats, datetimes, binary, sets (scenarios 17-24)."""

from __future__ import annotations

import os
import re
import unicodedata
import warnings
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from dynorm import F, Index, Model, VersionedModel, fields
from dynorm.exceptions import ConfigurationError, DynormError, InvalidValueError, QueryError
from tests.reliability.conftest import Offline
from tests.reliability.helpers import contains_empty_set, raw_get

# --------------------------------------------------------------------------- models


class RelText(Model):
    name: str
    body: str = ""

    class Meta:
        pk = "RELTEXT#{name}"


class RelEmpty(Model):
    code: str
    note: str = ""
    maybe: str | None = None
    words: list[str] = []
    labels: dict[str, str] = {}
    tags: set[str] = set()
    gkey: str | None = None

    class Meta:
        pk = "{code}"
        sk = "RELEMPTY"
        indexes = [Index("rel_empty_by_gkey", pk="{gkey}", sk="RELEMPTYG")]


class RelSets(Model):
    id: str
    tags: set[str] = set()
    nums: set[int] = set()
    blobs: set[bytes] = set()
    groups: dict[str, set[str]] = {}

    class Meta:
        pk = "RELSETS#{id}"


class RelLine(BaseModel):
    qty: int
    price: Decimal
    ratio: float


class RelNum(Model):
    id: str
    i: int = 0
    d: Decimal = Decimal(0)
    f: float = 0.0
    ints: list[int] = []
    floats: list[float] = []
    decimals: dict[str, Decimal] = {}
    int_set: set[int] = set()
    line: RelLine | None = None

    class Meta:
        pk = "RELNUM#{id}"


class RelPriced(VersionedModel):
    id: str
    price: Decimal

    class Meta:
        pk = "RELPRICED#{id}"


class RelStamp(Model):
    stream: str
    at: datetime
    label: str = ""
    expires: datetime | None = fields.TTL()

    class Meta:
        pk = "RELSTAMP#{stream}"
        sk = "RELAT#{at}"


class RelBin(Model):
    id: str
    raw: bytes = b""
    blobs: set[bytes] = set()
    parts: list[bytes] = []
    named: dict[str, bytes] = {}

    class Meta:
        pk = "RELBIN#{id}"


# --------------------------------------------------------------------------- scenario 17

UNICODE = {
    "emoji": "emoji 😀👍🏽🇳🇴",
    "cjk": "漢字かなカナ한국어",
    "rtl": "rtl \u202egnp.exe",
    "nul": "nul \x00 byte",
    "combining": "e\u0301\u0323",
    "astral": "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "bom": "\ufeffbom",
    "controls": "tab\tnew\nline\r",
}


def test_s17_unicode_round_trips_byte_exactly(dynorm_table: str) -> None:
    for label, text in UNICODE.items():
        RelText.objects.create(name=f"{label}:{text}", body=text)
    for label, text in UNICODE.items():
        got = RelText.objects.get(name=f"{label}:{text}")
        assert got.body.encode("utf-8") == text.encode("utf-8"), label
        assert got.name == f"{label}:{text}"
        pk, sk = RelText._meta.primary_key({"name": f"{label}:{text}"})
        stored = raw_get(pk, sk)
        assert stored is not None and stored["body"] == {"S": text}, label
        assert [t.body for t in RelText.objects.filter(name=f"{label}:{text}", body=text)] == [text]


def test_s17_nfc_and_nfd_keys_are_different_items(dynorm_table: str) -> None:
    nfc = unicodedata.normalize("NFC", "café")
    nfd = unicodedata.normalize("NFD", "café")
    assert nfc != nfd and len(nfc.encode()) == 5 and len(nfd.encode()) == 6
    RelText.objects.create(name=nfc, body="composed")
    RelText.objects.create(name=nfd, body="decomposed")  # no silent normalisation: no clash
    assert RelText.objects.get(name=nfc).body == "composed"
    assert RelText.objects.get(name=nfd).body == "decomposed"
    assert raw_get(f"RELTEXT#{nfd}", "RelText") is not None


def test_s17_text_that_is_not_utf8_encodable_is_a_typed_error(offline: Offline) -> None:
    with pytest.raises(InvalidValueError):
        RelText(name="ok", body="broken \ud800 surrogate").save()
    assert offline.calls == []


# --------------------------------------------------------------------------- scenario 18


def test_s18_empty_string_round_trips_as_empty_string(dynorm_table: str) -> None:
    RelEmpty.objects.create(code="c1", note="", maybe="", words=["", "x"], labels={"k": ""})
    got = RelEmpty.objects.get(code="c1")
    assert got.note == "" and got.maybe == ""  # not None
    assert got.words == ["", "x"] and got.labels == {"k": ""}
    stored = raw_get("c1", "RELEMPTY")
    assert stored is not None and stored["note"] == {"S": ""} and stored["maybe"] == {"S": ""}
    assert [e.code for e in RelEmpty.objects.filter(code="c1", note="")] == ["c1"]


@pytest.mark.parametrize(
    ("values", "field"),
    [({"code": ""}, "code"), ({"code": "c2", "gkey": ""}, "gkey")],
    ids=["table-key", "gsi-key"],
)
def test_s18_empty_string_key_is_refused_before_sending(
    offline: Offline, values: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidValueError) as info:
        RelEmpty(**values).save()
    assert re.search(rf"\b{field}\b", str(info.value)), str(info.value)
    with pytest.raises(DynormError):
        RelEmpty.objects.bulk_create([RelEmpty(**values)])
    assert offline.calls == []


def test_s18_empty_key_in_a_query_is_refused_before_sending(offline: Offline) -> None:
    with pytest.raises(DynormError):
        list(RelEmpty.objects.filter(code=""))
    with pytest.raises(DynormError):
        list(RelEmpty.objects.using_gsi("rel_empty_by_gkey").filter(gkey=""))
    assert offline.calls == []


# --------------------------------------------------------------------------- scenario 19


def test_s19_empty_sets_are_never_sent(offline: Offline) -> None:
    obj = RelSets(id="s1", groups={"none": set()})
    obj.save()
    obj.tags = {"a"}
    obj.save()
    obj.tags = set()
    obj.save(update_fields=["tags"])
    obj.update(nums=set(), blobs=set())
    with pytest.raises(QueryError):
        obj.update(tags=F("tags").add(set()))
    with pytest.raises(QueryError):
        list(RelSets.objects.filter(id="s1", tags=set()))
    assert len(offline.calls) == 4
    for _, params in offline.calls:
        assert not contains_empty_set(params), params
    put = offline.calls[0][1]
    assert not {"tags", "nums", "blobs"} & set(put["Item"])  # empty sets: attribute left off
    update = offline.calls[2][1]
    removed = update["UpdateExpression"].split(" REMOVE ")[1]
    tag_token = next(t for t, n in update["ExpressionAttributeNames"].items() if n == "tags")
    assert tag_token in removed  # set() on an update REMOVEs the attribute


def test_s19_empty_set_round_trip_and_removal(dynorm_table: str) -> None:
    RelSets.objects.create(id="s1", groups={"none": set(), "some": {"x"}})
    got = RelSets.objects.get(id="s1")
    assert got.tags == set() and got.nums == set() and got.blobs == set()
    assert got.groups == {"none": set(), "some": {"x"}}
    got.tags, got.nums, got.blobs = {"a", "b"}, {1, 2}, {b"\x00"}
    got.save()
    stored = raw_get("RELSETS#s1", "RelSets")
    assert stored is not None and set(stored["tags"]["SS"]) == {"a", "b"}
    got.tags, got.nums, got.blobs = set(), set(), set()
    got.save()
    stored = raw_get("RELSETS#s1", "RelSets")
    assert stored is not None and not {"tags", "nums", "blobs"} & set(stored)
    again = RelSets.objects.get(id="s1")
    assert again.tags == set() and again.nums == set() and again.blobs == set()
    again.update(tags=F("tags").add({"z"}))
    assert RelSets.objects.get(id="s1").tags == {"z"}


# --------------------------------------------------------------------------- scenario 20

BIG = 10**38


def test_s20_38_digit_and_round_integers_round_trip(dynorm_table: str) -> None:
    values = {
        "max38": BIG - 1,
        "min38": -(BIG - 1),
        "pow38": BIG,  # one significant digit; boto3 alone raises decimal.Rounded here
        "pow50": 10**50,
    }
    for name, value in values.items():
        RelNum.objects.create(id=name, i=value, ints=[value, 1], int_set={value, 7})
    for name, value in values.items():
        got = RelNum.objects.get(id=name)
        assert got.i == value and type(got.i) is int, name
        assert got.ints == [value, 1] and all(type(x) is int for x in got.ints)
        assert got.int_set == {value, 7}
        assert [n.id for n in RelNum.objects.filter(id=name, i=value)] == [name]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("i", BIG + 1, "39"),
        ("i", -(BIG + 1), "39"),
        ("d", Decimal("1E+126"), "range"),
        ("d", Decimal("-1E+126"), "range"),
        ("d", Decimal("1E-131"), "range"),
        ("ints", [1, BIG + 1], "39"),
        ("decimals", {"k": Decimal("1E+126")}, "range"),
    ],
)
def test_s20_numbers_dynamodb_cannot_store_are_refused_before_sending(
    offline: Offline, field: str, value: Any, fragment: str
) -> None:
    with pytest.raises(InvalidValueError) as info:
        RelNum(id="n", **{field: value}).save()
    err = info.value
    assert err.field == field and err.model == "RelNum"
    assert fragment in str(err)
    assert str(value) not in str(err)
    if field in ("i", "d"):
        with pytest.raises(InvalidValueError):
            list(RelNum.objects.filter(id="n", **{field: value}))
    assert offline.calls == []


def test_s20_range_boundaries_round_trip(dynorm_table: str) -> None:
    edges = [
        Decimal("9.9999999999999999999999999999999999999E+125"),
        Decimal("-9.9999999999999999999999999999999999999E+125"),
        Decimal("1E-130"),
        Decimal("-1E-130"),
    ]
    for n, value in enumerate(edges):
        RelNum.objects.create(id=f"edge{n}", d=value)
        assert RelNum.objects.get(id=f"edge{n}").d == value


# --------------------------------------------------------------------------- scenario 21


def test_s21_float_is_stored_via_repr_and_read_back_as_float(dynorm_table: str) -> None:
    RelNum.objects.create(
        id="f",
        f=0.1,
        floats=[0.1, 1e16, 5.0],
        i=3,
        d=Decimal("2.50"),
        decimals={"a": Decimal("0.1")},
        line=RelLine(qty=2, price=Decimal("9.99"), ratio=0.3),
    )
    stored = raw_get("RELNUM#f", "RelNum")
    assert stored is not None and stored["f"] == {"N": "0.1"}
    for got in (
        RelNum.objects.get(id="f"),
        RelNum.objects.filter(id="f").first(),
        RelNum.objects.bulk_get([{"id": "f"}])[0],
    ):
        assert got is not None
        assert got.f == 0.1 and type(got.f) is float
        assert got.floats == [0.1, 1e16, 5.0] and all(type(x) is float for x in got.floats)
        assert type(got.i) is int and type(got.d) is Decimal and got.d == Decimal("2.5")
        assert type(got.decimals["a"]) is Decimal
        assert got.line is not None
        assert type(got.line.qty) is int and type(got.line.price) is Decimal
        assert type(got.line.ratio) is float and got.line.ratio == 0.3


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_s21_nan_and_infinity_are_refused(offline: Offline, value: float) -> None:
    with pytest.raises(InvalidValueError):
        RelNum(id="x", f=value).save()
    with pytest.raises(InvalidValueError):
        RelNum(id="x", floats=[1.0, value]).save()
    assert offline.calls == []


def test_s21_float_in_a_key_is_refused_warned_or_consistent(dynorm_table: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:

            class RelFloatKey(Model):
                x: float

                class Meta:
                    pk = "RELFLOATKEY#{x}"

        except ConfigurationError:
            return  # refused at definition: fine
    if caught:
        return  # warned: fine
    RelFloatKey(x=-0.0).save()
    assert RelFloatKey.objects.get(x=0.0).x == 0.0  # 0.0 == -0.0: the same key


# --------------------------------------------------------------------------- scenario 22


def test_s22_trailing_zeros_do_not_count_as_a_change(dynorm_table: str) -> None:
    """dynorm has no dirty tracking (save() always writes, by API); what it guarantees is
    that a value stored as 1.50 and read back as 1.5 compares equal everywhere."""
    saved = RelNum.objects.create(id="tz", d=Decimal("1.50"), decimals={"k": Decimal("2.000")})
    stored = raw_get("RELNUM#tz", "RelNum")
    assert stored is not None and stored["d"] == {"N": "1.5"}  # DynamoDB trims trailing zeros
    loaded = RelNum.objects.get(id="tz")
    assert loaded.d == Decimal("1.50") and loaded.decimals == {"k": Decimal("2")}
    assert loaded == saved  # no spurious difference between what was saved and what is read
    assert [n.id for n in RelNum.objects.filter(id="tz", d=Decimal("1.500"))] == ["tz"]

    page = RelPriced.objects.create(id="p", price=Decimal("1.50"))
    reloaded = RelPriced.objects.get(id="p")
    assert reloaded.diff(1) == {}  # version 1 (1.50) vs the stored 1.5: no field differs
    assert page.diff(1) == {}


# --------------------------------------------------------------------------- scenario 23

FIXED_WIDTH = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
UTC = timezone.utc
PLUS5 = timezone(timedelta(hours=5))


def test_s23_naive_datetimes_are_refused_before_sending(offline: Offline) -> None:
    naive = datetime(2024, 1, 1, 12, 0)
    with pytest.raises(InvalidValueError):
        RelStamp(stream="s", at=naive).save()
    with pytest.raises(InvalidValueError):
        RelStamp(stream="s", at=datetime(2024, 1, 1, tzinfo=UTC), expires=naive).save()
    with pytest.raises(DynormError):
        list(RelStamp.objects.filter(stream="s", at__gte=naive))
    assert offline.calls == []


def test_s23_datetimes_are_stored_fixed_width_utc_and_sort_chronologically(
    dynorm_table: str,
) -> None:
    t = datetime(2024, 1, 1, 6, 0, tzinfo=UTC)
    instants = {
        "t": t,  # pydantic would write ...06:00:00Z
        "t+1us": t + timedelta(microseconds=1),  # ...06:00:00.000001Z sorts before it
        "offset": datetime(2024, 1, 1, 10, 0, tzinfo=PLUS5),  # 05:00Z, earlier than t
        "year999": datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC),
        "year5": datetime(5, 1, 1, tzinfo=UTC),
        "late": datetime(2024, 1, 1, 6, 0, 0, 999999, tzinfo=UTC),
    }
    for label, at in instants.items():
        RelStamp.objects.create(stream="s", at=at, label=label)
    for label, at in instants.items():
        stored = next(i for i in _partition("RELSTAMP#s") if i["label"] == {"S": label})
        text = stored["at"]["S"]
        assert FIXED_WIDTH.match(text), text
        assert stored["sk"]["S"] == f"RELAT#{text}"
        assert datetime.fromisoformat(text.replace("Z", "+00:00")) == at
    assert _partition("RELSTAMP#s")[0]["at"]["S"] == "0005-01-01T00:00:00.000000Z"
    chronological = sorted(instants, key=lambda k: instants[k])
    listed = RelStamp.objects.filter(stream="s")
    assert [s.label for s in listed] == chronological
    assert [s.label for s in RelStamp.objects.filter(stream="s", at__gte=t)] == [
        "t",
        "t+1us",
        "late",
    ]
    for got in listed:
        assert got.at == instants[got.label]  # the instant survives the round trip
        assert got.at.utcoffset() == timedelta(0)


def _partition(pk: str) -> list[dict[str, Any]]:
    from tests.reliability.helpers import raw_partition

    return raw_partition(pk)


def test_s23_ttl_is_an_integer_epoch(dynorm_table: str) -> None:
    expires = datetime(2030, 5, 1, 12, 30, 15, 250000, tzinfo=PLUS5)
    RelStamp.objects.create(stream="ttl", at=datetime(2024, 1, 1, tzinfo=UTC), expires=expires)
    stored = _partition("RELSTAMP#ttl")[0]
    ttl = stored["_ttl"]["N"]
    assert ttl == str(int(expires.timestamp())) and "." not in ttl
    got = RelStamp.objects.get(stream="ttl", at=datetime(2024, 1, 1, tzinfo=UTC))
    assert got.expires == expires.replace(microsecond=0)


# --------------------------------------------------------------------------- scenario 24


def test_s24_bytes_round_trip_as_bytes(dynorm_table: str) -> None:
    data = bytes(range(256))
    RelBin.objects.create(
        id="b", raw=data, blobs={b"\x00", b"\xff\xfe"}, parts=[b"", b"a"], named={"k": b"\x01"}
    )
    for got in (
        RelBin.objects.get(id="b"),
        RelBin.objects.filter(id="b").first(),
        RelBin.objects.bulk_get([{"id": "b"}])[0],
    ):
        assert got is not None
        assert type(got.raw) is bytes and got.raw == data
        assert got.blobs == {b"\x00", b"\xff\xfe"} and all(type(b) is bytes for b in got.blobs)
        assert got.parts == [b"", b"a"] and all(type(b) is bytes for b in got.parts)
        assert type(got.named["k"]) is bytes
    obj = RelBin.objects.get(id="b")
    obj.refresh_from_db()
    assert type(obj.raw) is bytes


def test_s24_binary_size_counts_raw_bytes_not_base64(dynorm_table: str) -> None:
    overhead = 200
    raw = os.urandom(409_600 - overhead)  # ~546 KB as base64 on the wire
    RelBin.objects.create(id="big", raw=raw)
    assert RelBin.objects.get(id="big").raw == raw
    with pytest.raises(InvalidValueError):
        RelBin(id="bigger", raw=os.urandom(409_600)).save()
