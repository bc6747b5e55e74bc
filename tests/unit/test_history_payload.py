"""History payloads: every stored value comes back from history() exactly as saved."""

from __future__ import annotations

import gzip
import json
import os
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import given, settings, strategies as st

from dynorm import VersionedModel, _instance_writes, fields
from dynorm._codec import to_wire
from dynorm.versioning import _from_json, _to_json, decode_history, history_item
from tests.models import Color, OrderLine

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
# Map keys that once were (or might look like) markers of the payload encoding itself.
markers = st.sampled_from(["__b64__", "B", "BS", "M", "L", "S", "N", "NULL", "BOOL", "__n__"])
map_keys = markers | text.filter(bool)
numbers = st.integers(min_value=-(10**37), max_value=10**37).map(str)
scalars = st.one_of(
    text.map(lambda v: {"S": v}),
    numbers.map(lambda v: {"N": v}),
    st.binary(max_size=12).map(lambda v: {"B": v}),
    st.booleans().map(lambda v: {"BOOL": v}),
    st.just({"NULL": True}),
    st.lists(text, min_size=1, max_size=3, unique=True).map(lambda v: {"SS": v}),
    st.lists(numbers, min_size=1, max_size=3, unique=True).map(lambda v: {"NS": v}),
    st.lists(st.binary(max_size=6), min_size=1, max_size=3, unique=True).map(lambda v: {"BS": v}),
)
attribute_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.dictionaries(map_keys, inner, max_size=4).map(lambda v: {"M": v}),
        st.lists(inner, max_size=4).map(lambda v: {"L": v}),
    ),
    max_leaves=12,
)


@settings(
    max_examples=int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "2000")),
    deadline=None,
    database=None,
)
@given(av=attribute_values)
def test_every_attribute_value_survives_the_history_json(av: dict[str, Any]) -> None:
    stored = json.loads(json.dumps(_to_json(av)))  # what the gzip payload holds
    assert _from_json(stored) == av


class Snapshot(VersionedModel):
    """Every field type of tests.models.Everything, plus free-form maps, versioned."""

    id: str = fields.ULID()
    s: str = ""
    i: int = 0
    f: float = 0.0
    d: Decimal = Decimal(0)
    b: bool = False
    raw: bytes = b""
    when: datetime | None = None
    day: date | None = None
    uid: UUID | None = None
    color: Color = Color.RED
    ss: set[str] = set()
    ns: set[int] = set()
    bs: set[bytes] = set()
    items: list[int] = []
    mapping: dict[str, int] = {}
    anything: dict[str, Any] = {}
    blobs: dict[str, bytes] = {}
    line: OrderLine | None = None
    gsize: int = 0  # named like an index key attribute, but a field
    expires: datetime | None = fields.TTL()
    blob: str = fields.Compressed(default="")

    class Meta:
        pk = "SNAPSHOT#{id}"


class PlainSnapshot(Snapshot):
    class Meta:
        pk = "PLAINSNAPSHOT#{id}"
        compress = False


json_like = st.recursive(
    st.none() | st.booleans() | text | st.integers(-(10**30), 10**30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(map_keys, inner, max_size=3),
    max_leaves=10,
)
decimals = st.decimals(
    min_value=Decimal("-1e20"), max_value=Decimal("1e20"), allow_nan=False, places=6
)
snapshots = st.fixed_dictionaries(
    {
        "s": text,
        "i": st.integers(min_value=-(10**37), max_value=10**37),
        "f": st.floats(-1e100, 1e100, allow_nan=False).filter(lambda x: x == 0 or abs(x) > 1e-100),
        "d": decimals,
        "b": st.booleans(),
        "raw": st.binary(max_size=20),
        "when": st.none() | st.datetimes(timezones=st.just(timezone.utc)),
        "day": st.none() | st.dates(),
        "uid": st.none() | st.uuids(),
        "color": st.sampled_from(Color),
        "ss": st.sets(text, max_size=3),
        "ns": st.sets(st.integers(-(10**20), 10**20), max_size=3),
        "bs": st.sets(st.binary(max_size=6), max_size=3),
        "items": st.lists(st.integers(-1000, 1000), max_size=3),
        "mapping": st.dictionaries(map_keys, st.integers(-1000, 1000), max_size=3),
        "anything": st.dictionaries(map_keys, json_like, max_size=4),
        "blobs": st.dictionaries(map_keys, st.binary(max_size=8), max_size=3),
        "line": st.none() | st.builds(OrderLine, sku=text, qty=st.integers(0, 99), price=decimals),
        "gsize": st.integers(-5, 5),
        "expires": st.none()
        | st.datetimes(
            min_value=datetime(1971, 1, 1),
            max_value=datetime(2100, 1, 1),
            timezones=st.just(timezone.utc),
        ).map(lambda d: d.replace(microsecond=0)),
        "blob": text,
    }
)


@settings(
    max_examples=int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "2000")),
    deadline=None,
    database=None,
)
@given(values=snapshots, compressed=st.booleans())
def test_every_field_value_comes_back_from_its_history_item(
    values: dict[str, Any], compressed: bool
) -> None:
    model = Snapshot if compressed else PlainSnapshot
    obj = model(**values)
    item = _instance_writes.build_item(obj, {"version": 1})
    history = history_item(model, item, 1)
    if compressed:
        assert gzip.decompress(history["payload"]["B"])  # stored as gzip JSON
    # Exactly what reading the current item gives (same values, types and loaded key).
    current = model.from_item(item)
    got = decode_history(model, history)
    assert got == current and got.model_dump() == {**obj.model_dump(), "version": 1}
    assert {n: type(v) for n, v in got} == {n: type(v) for n, v in current}


def test_a_map_key_named_like_the_old_bytes_marker_is_plain_data() -> None:
    obj = Snapshot(anything={"__b64__": "not base64!"}, blobs={"__b64__": b"\x00"})
    history = history_item(Snapshot, _instance_writes.build_item(obj, {"version": 1}), 1)
    got = decode_history(Snapshot, history)
    assert got.anything == {"__b64__": "not base64!"} and got.blobs == {"__b64__": b"\x00"}
    assert to_wire(got.anything) == {"M": {"__b64__": {"S": "not base64!"}}}
