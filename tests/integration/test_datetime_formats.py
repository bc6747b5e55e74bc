"""Datetime fields in another format (`fields.DateTime(format=...)`) on DynamoDB Local: key
conditions, filters, updates and both decoders agree with the datetimes' own order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dynorm import Model, _config, fields

pytestmark = pytest.mark.usefixtures("dynorm_table")


class Reading(Model):
    sensor: str
    at: datetime = fields.DateTime(format="pynamodb")
    seen: datetime | None = fields.DateTime(None, format="%Y%m%d%H%M%S%f", attribute="seenAt")
    updated: datetime = fields.UpdatedAt(format="iso")
    value: int = 0

    class Meta:
        pk = "READING#{sensor}"
        sk = "{at}"


_zones = st.sampled_from(
    [timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
_times = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=_zones
)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    times=st.lists(_times, min_size=1, max_size=8, unique_by=lambda t: t.astimezone(timezone.utc)),
    bounds=st.tuples(_times, _times).map(sorted),
    sensor=st.uuids().map(str),
)
def test_range_lookups_on_a_formatted_sort_key_follow_time_order(
    times: list[datetime], bounds: list[datetime], sensor: str
) -> None:
    for i, at in enumerate(times):
        Reading.objects.create(sensor=sensor, at=at, seen=at, value=i)
    low, high = bounds
    ordered = sorted(times)
    queries = {
        "gte": (
            Reading.objects.filter(sensor=sensor, at__gte=low),
            [t for t in ordered if t >= low],
        ),
        "lt": (
            Reading.objects.filter(sensor=sensor, at__lt=high),
            [t for t in ordered if t < high],
        ),
        "between": (
            Reading.objects.filter(sensor=sensor, at__between=(low, high)),
            [t for t in ordered if low <= t <= high],
        ),
        "filter": (
            Reading.objects.filter(sensor=sensor, seen__gt=low),
            [t for t in ordered if t > low],
        ),
    }
    for name, (qs, expected) in queries.items():
        assert [r.at for r in qs] == expected, name  # the fast decoder (Query pages)
    newest = Reading.objects.filter(sensor=sensor).order_by("-at").first()
    assert newest is not None and newest.at == ordered[-1]
    got = Reading.objects.get(sensor=sensor, at=times[0])  # GetItem
    assert got.at == times[0] and got.seen == times[0] and got.value == 0


def test_the_stored_text_is_the_fields_format_and_updates_keep_it() -> None:
    at = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
    reading = Reading.objects.create(sensor="s", at=at, seen=at)
    reading.update(value=3, seen=at + timedelta(seconds=1))
    client = _config.get_connection().client
    item = client.get_item(
        TableName=_config.get_connection().table_name,
        Key={"pk": {"S": "READING#s"}, "sk": {"S": "2026-12-01T10:00:00.000000+0000"}},
    )["Item"]
    assert item["at"] == {"S": "2026-12-01T10:00:00.000000+0000"}
    assert item["seenAt"] == {"S": "20261201100001000000"}
    assert item["updated"]["S"].endswith("+00:00") and len(item["updated"]["S"]) == 32
    assert Reading.objects.filter(sensor="s", seen=at + timedelta(seconds=1)).count() == 1
