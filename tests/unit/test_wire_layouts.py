"""The fast page decoder on models mapped onto other tables' physical names: it reads the
layout's key, type, version and token attributes and the fields' stored names, and returns
exactly the objects the general decoder builds."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given, settings, strategies as st

import dynorm
from dynorm import Model, fields
from dynorm._decode import WireDecoder
from dynorm._instance_writes import build_item
from tests.unit.test_wire import assert_same, body_of, wire_json

forum = dynorm.Table(
    "wire-layout-forum",
    managed=False,
    pk_attribute="ForumName",
    sk_attribute="Subject",
    type_attribute=None,
    version_attribute="Version",
)


class WThread(Model):
    forum: str = fields.Attr("ForumName")
    subject: str = fields.Attr("Subject")
    views: int = fields.Attr("Views", default=0)
    body: str | None = None
    tags: set[str] = set()
    last_post: datetime | None = fields.DateTime(None, format="pynamodb", attribute="LastPost")

    class Meta:
        table = forum
        pk = "{forum}"
        sk = "{subject}"


events = dynorm.Table("wire-layout-events", managed=False, pk_attribute="Owner", sk_attribute="Seq")


class WEvent(Model):  # a numeric plain sort key; a renamed type attribute and token
    owner: str = fields.Attr("Owner")
    seq: int = fields.Attr("Seq")
    kind: str = ""
    amount: Decimal | None = None

    class Meta:
        table = events
        pk = "{owner}"
        sk = "{seq}"
        type_attribute = "entity"
        write_token_attribute = "tok"


plain = dynorm.Table(
    "wire-layout-plain",
    managed=False,
    pk_attribute="id",
    sk_attribute=None,
    type_attribute=None,
    version_attribute=None,
    write_token_attribute=None,
)


class WDoc(Model):  # a partition key only, no type, no version, no token
    id: str
    text: str = ""
    n: int = 0

    class Meta:
        table = plain
        pk = "{id}"


single = dynorm.Table("wire-layout-single", managed=False, pk_attribute="PK", sk_attribute="SK")


class WTask(Model):  # templated keys under other names, dynorm's type attribute
    id: str
    title: str = ""
    done: bool = False

    class Meta:
        table = single
        pk = "TASK#{id}"
        sk = "TASK#{id}"


_text = st.text(max_size=12)
_key = st.text(min_size=1, max_size=12)


def _objects() -> st.SearchStrategy[Model]:
    at = st.datetimes(min_value=datetime(1990, 1, 1), timezones=st.just(timezone.utc))
    return st.one_of(
        st.builds(
            WThread,
            forum=_key,
            subject=_key,
            views=st.integers(-(10**9), 10**9),
            body=st.none() | _text,
            tags=st.sets(st.text(min_size=1, max_size=4), max_size=3),
            last_post=st.none() | at,
        ),
        st.builds(
            WEvent,
            owner=_key,
            seq=st.integers(-(10**12), 10**12),
            kind=_text,
            amount=st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=2),
        ),
        st.builds(WDoc, id=_key, text=_text, n=st.integers(0, 10**6)),
        st.builds(WTask, id=_key, title=_text, done=st.booleans()),
    )


def _stored(obj: Model, version: int, token: str) -> dict[str, Any]:
    return wire_json(build_item(obj, {"version": version}, token))


@settings(max_examples=80, deadline=None)
@given(obj=_objects(), version=st.integers(1, 1000), token=st.sampled_from(["t1", "x" * 16]))
def test_both_decoders_read_a_custom_layouts_item_into_the_same_object(
    obj: Model, version: int, token: str
) -> None:
    model = type(obj)
    item = _stored(obj, version, token)
    decoder = WireDecoder(model)
    assert decoder.page is not None, "no wire schema for a custom layout"
    slow = model.from_item(json.loads(json.dumps(item)))
    page = decoder.decode_page(body_of(item))
    assert page is not None, "the wire schema refused the page"
    (fast,) = page[0]
    assert_same(fast, slow)
    assert fast._loaded_key == slow._loaded_key is not None
    got = decoder.decode_item(json.dumps({"Item": item}).encode())
    assert got is not None and len(got) == 1
    assert_same(got[0], slow)
    batch = decoder.decode_batch(json.dumps({"Responses": {"t": [item]}}).encode(), "t")
    assert batch is not None
    ((key, one),) = batch[0].items()
    assert key == slow._loaded_key and one is not None
    assert_same(one, slow)


def test_an_item_of_another_type_is_not_this_model_on_the_fast_path() -> None:
    obj = WEvent(owner="o", seq=1)
    item = _stored(obj, 1, "t")
    item["entity"] = {"S": "SomethingElse"}
    decoder = WireDecoder(WEvent)
    assert decoder.decode_item(json.dumps({"Item": item}).encode()) == []


def test_the_loaded_key_and_token_come_from_the_layouts_attributes() -> None:
    item = _stored(WEvent(owner="o#1", seq=-5), 3, "tok-7")
    page = WireDecoder(WEvent).decode_page(body_of(item))
    assert page is not None
    (event,) = page[0]
    assert event._loaded_key == ("o#1", "-5") and event.version == 3
    assert event._writes is not None and event._writes.token == "tok-7"
    doc_item = _stored(WDoc(id="d"), 1, "unused")
    assert "_wtok" not in doc_item and "version" not in doc_item
    page = WireDecoder(WDoc).decode_page(body_of(doc_item))
    assert page is not None
    (doc,) = page[0]
    assert doc._loaded_key == ("d", "") and doc.version == 1 and doc._writes is None
