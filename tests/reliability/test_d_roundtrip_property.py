"""Property test: every field type round-trips through DynamoDB Local (scenarios 17-24).

500 examples in CI; set DYNORM_HYPOTHESIS_EXAMPLES for more (e.g. 5000 before a release).
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings, strategies as st

from dynorm._config import get_connection
from dynorm._decode import wire_decoder
from tests.models import Color, Everything, OrderLine

EXAMPLES = int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "500"))

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
key_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10)
ints = st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1)
floats = st.floats(min_value=-1e125, max_value=1e125, allow_nan=False, allow_infinity=False).filter(
    lambda x: x == 0 or abs(x) >= 1e-125
)
decimals = st.decimals(
    min_value=Decimal("-1e20"), max_value=Decimal("1e20"), allow_nan=False, places=8
)
aware = st.datetimes(timezones=st.just(timezone.utc))
ttl = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)
).map(lambda d: d.replace(microsecond=0))

everything = st.builds(
    Everything,
    s=text,
    i=ints,
    f=floats,
    d=decimals,
    b=st.booleans(),
    raw=st.binary(max_size=40),
    when=st.none() | aware,
    day=st.none() | st.dates(),
    uid=st.none() | st.uuids(),
    color=st.sampled_from(Color),
    kind=st.sampled_from(["a", "b"]),
    ss=st.sets(text, max_size=4),
    ns=st.sets(st.integers(min_value=-(10**20), max_value=10**20), max_size=4),
    bs=st.sets(st.binary(max_size=8), max_size=4),
    items=st.lists(ints, max_size=4),
    mapping=st.dictionaries(key_text, st.integers(min_value=-1000, max_value=1000), max_size=4),
    line=st.none()
    | st.builds(OrderLine, sku=text, qty=st.integers(min_value=0, max_value=10**6), price=decimals),
    maybe=st.none() | st.integers(min_value=-(10**9), max_value=10**9),
    expires=st.none() | ttl,
    blob=text,
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(obj=everything)
def test_s17_s24_every_field_type_round_trips_through_dynamodb_local(
    dynorm_table: str, obj: Everything
) -> None:
    obj.id = str(uuid.uuid4())  # a fresh item per example (shrinking repeats values)
    obj.save()
    got = Everything.objects.get(id=obj.id)
    assert got == obj
    assert isinstance(got.i, int) and isinstance(got.f, float) and isinstance(got.d, Decimal)
    assert got.uid is None or isinstance(got.uid, uuid.UUID)
    assert isinstance(got.raw, bytes)
    listed = list(Everything.objects.filter(id=obj.id))
    assert listed == [obj]
    # The list above took the wire schema unless it refused the page: check it did not.
    conn = get_connection()
    (request,) = Everything.objects.filter(id=obj.id).explain()
    body, _ = conn.send_body(request.operation, {**request.params, "TableName": conn.table_name})
    assert body is not None
    page = wire_decoder(Everything).decode_page(body)
    assert page is not None and page[0] == [obj]
