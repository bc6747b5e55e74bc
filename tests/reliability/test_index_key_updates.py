"""`F()` on a field an index key is built from: a read-modify-write under the version condition.

DynamoDB cannot render key text in an UpdateExpression, so dynorm reads the stored item,
computes the new value and the index keys, and writes them conditional on the version read.
"""

from __future__ import annotations

import pytest

from dynorm import F, Index, Model
from dynorm.exceptions import QueryError, VersionConflictError
from tests.reliability.helpers import Faults, raw_get


class Player(Model):
    id: str
    board: str = "main"
    score: int = 0
    tags: list[str] = []

    class Meta:
        pk = "PLAYER#{id}"
        indexes = [Index("by_score", pk="BOARD#{board}", sk="{score:08d}")]


def _index_sk(player: Player) -> str:
    item = raw_get(*player.dynamo_key.values())
    assert item is not None
    return str(item["gsi1sk"]["S"])


def test_f_on_an_index_key_field_rewrites_the_index_key(dynorm_table: str) -> None:
    player = Player.objects.create(id="p1", score=5)
    player.update(score=F("score") + 10)
    assert player.score == 15 and player.version == 2
    assert _index_sk(player) == "00000015"
    (found,) = Player.objects.using_gsi("by_score").filter(board="main", score=15)
    assert found.id == "p1"


def test_it_is_computed_from_the_stored_value_not_unsaved_changes(dynorm_table: str) -> None:
    player = Player.objects.create(id="p1", score=5)
    player.score = 100  # not saved
    player.update(score=F("score") + 1)
    assert player.score == 6 and Player.objects.get(id="p1").score == 6
    assert _index_sk(player) == "00000006"


def test_a_change_since_the_read_is_a_conflict_not_a_lost_update(dynorm_table: str) -> None:
    player = Player.objects.create(id="p1", score=5)
    other = Player.objects.get(id="p1")
    other.update(score=F("score") + 1)
    with pytest.raises(VersionConflictError):
        player.update(score=F("score") + 1)
    player.refresh_from_db()
    player.update(score=F("score") + 1)
    assert Player.objects.get(id="p1").score == 7 and _index_sk(player) == "00000007"


def test_queryset_update_computes_each_items_key(dynorm_table: str) -> None:
    for n in range(3):
        Player.objects.create(id=f"p{n}", score=n)
    assert (
        Player.objects.using_gsi("by_score").filter(board="main").update(score=F("score") + 10) == 3
    )
    for n in range(3):
        player = Player.objects.get(id=f"p{n}")
        assert player.score == n + 10 and _index_sk(player) == f"{n + 10:08d}"
    with pytest.raises(QueryError, match="no such field"):
        Player.objects.using_gsi("by_score").filter(board="main").update(score=F("nope") + 1)


def test_a_lost_response_is_applied_once(dynorm_table: str, faults: Faults) -> None:
    player = Player.objects.create(id="p1", score=5)
    faults.lose_response("UpdateItem")
    player.update(score=F("score") + 1)  # botocore retries; the retry is recognised
    faults.clear()
    assert Player.objects.get(id="p1").score == 6 and player.score == 6


def test_an_f_the_stored_value_cannot_take_is_refused(dynorm_table: str) -> None:
    player = Player.objects.create(id="p1")
    with pytest.raises(QueryError, match="index key is built from it"):
        player.update(score=F("tags") + 1)  # a list plus a number
