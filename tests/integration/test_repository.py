"""dynorm.contrib.repository and objects.read_only() on DynamoDB Local."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from dynorm import (
    ItemExistsError,
    Model,
    QueryError,
    ReadOnlyError,
    VersionConflictError,
    fields,
)
from dynorm.contrib.repository import ReadOnlyRepository, Repository
from tests.reliability.helpers import Faults


class Ticket(Model):
    id: str = fields.ULID()
    board: str = "main"
    title: str
    points: int = 0

    class Meta:
        pk = "TICKET#{id}"


class Card(Model):
    board: str
    id: str
    title: str = ""

    class Meta:
        pk = "BOARD#{board}"
        sk = "CARD#{id}"


class TicketIn(BaseModel):
    title: str
    points: int = 1


class TicketPatch(BaseModel):
    title: str | None = None
    points: int | None = None


def test_repository_create_get_update_delete(dynorm_table: str) -> None:
    repo = Repository(Ticket, create=TicketIn, update=TicketPatch)
    t = repo.create({"title": "write docs"})
    assert (t.version, t.points) == (1, 0)  # unset input fields take the model's defaults
    assert repo.get(t.id) == Ticket.objects.get(id=t.id)
    with pytest.raises(ValidationError):
        repo.create({"points": 3})
    updated = repo.update(t.id, {"points": 5}, expected_version=1)
    assert (updated.version, updated.points, updated.title) == (2, 5, "write docs")
    with pytest.raises(VersionConflictError) as caught:
        repo.update(t.id, {"points": 8}, expected_version=1)
    assert caught.value.current_version == 2
    assert repo.get(t.id).points == 5
    with pytest.raises(QueryError, match="key field"):
        Repository(Ticket).update(t.id, {"id": "other"})  # no patch schema to drop it
    with pytest.raises(VersionConflictError):
        repo.delete(t.id, expected_version=1)
    repo.delete(t.id, expected_version=2)
    with pytest.raises(Ticket.DoesNotExist):
        repo.get(t.id)


def test_repository_update_is_conditional_on_the_version_it_read(dynorm_table: str) -> None:
    repo = Repository(Ticket, update=TicketPatch)
    t = repo.create({"title": "race"})
    faults = Faults()

    def concurrent_write(**_: object) -> None:  # another writer between the read and the write
        faults.clear()
        other = Ticket.objects.get(id=t.id)
        other.points = 99
        other.save()

    faults.on("before-send.dynamodb.UpdateItem", concurrent_write)
    try:
        with pytest.raises(VersionConflictError):
            repo.update(t.id, {"points": 1})
    finally:
        faults.clear()
    faults.check_fired()
    assert repo.get(t.id).points == 99  # the other write was not overwritten


def test_repository_list_returns_pages_and_never_scans_silently(dynorm_table: str) -> None:
    repo = Repository(Card)
    for i in range(5):
        repo.create({"board": "b1", "id": f"c{i}"})
    repo.create({"board": "b2", "id": "x"})
    first = repo.list(size=2, board="b1")
    assert [c.id for c in first.items] == ["c0", "c1"] and first.next_cursor
    rest = repo.list(size=10, cursor=first.next_cursor, board="b1")
    assert [c.id for c in rest.items] == ["c2", "c3", "c4"] and rest.next_cursor is None
    with pytest.raises(QueryError):
        repo.list(size=10)
    assert len(repo.list(size=10, scan=True).items) == 6
    with pytest.raises(ItemExistsError):
        repo.create({"board": "b1", "id": "c0"})
    assert repo.get({"board": "b1", "id": "c3"}).id == "c3"
    with pytest.raises(QueryError, match="mapping"):
        repo.get("c3")


def test_read_only_manager_and_repository_writes_raise(dynorm_table: str) -> None:
    card = Card(board="b", id="1", title="kept")
    card.save()
    ro = Card.objects.read_only()
    with pytest.raises(ReadOnlyError):
        ro.create(board="b", id="2")
    with pytest.raises(ReadOnlyError):
        ro.filter(board="b").delete()
    with pytest.raises(ReadOnlyError):
        ro.filter(board="b").update(title="x")
    with pytest.raises(ReadOnlyError):
        ro.bulk_create([Card(board="b", id="3")])
    with pytest.raises(ReadOnlyError):
        ro.get_or_create(board="b", id="4")
    loaded = ro.get(board="b", id="1")
    loaded.title = "changed"
    for write in (loaded.save, loaded.delete, lambda: loaded.update(title="y")):
        with pytest.raises(ReadOnlyError) as caught:
            write()
        assert caught.value.model == "Card"
    for obj in [*ro.filter(board="b"), *ro.filter(board="b").page(5).items]:
        with pytest.raises(ReadOnlyError):
            obj.save()
    assert Card.objects.get(board="b", id="1").title == "kept"
    repo = ReadOnlyRepository(Card)
    assert repo.get({"board": "b", "id": "1"}).title == "kept"
    with pytest.raises(ReadOnlyError):
        repo.create({"board": "b", "id": "9"})
    with pytest.raises(ReadOnlyError):
        repo.update({"board": "b", "id": "1"}, {"title": "no"})
    with pytest.raises(ReadOnlyError):
        repo.delete({"board": "b", "id": "1"})
    assert Card.objects.get(board="b", id="1").title == "kept"
    assert not Card.objects.get(board="b", id="1")._read_only  # the writable manager
